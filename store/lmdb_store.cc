#include "store/lmdb_store.h"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "store/journal.h"
#include "store/journal_replay.h"
#include "store/lmdb_env.h"
#include "store/lmdb_store_layout.h"
#include "store/status_macros.h"
#include "store/sync_dir.h"

namespace ballot::store {

std::string HexBytes(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (char c : bytes) {
    snprintf(buf, sizeof(buf), "%02x", static_cast<uint8_t>(c));
    out += buf;
  }
  return out;
}

namespace {

constexpr char kLockFileName[] = "store.lock";
// Pages 0 and 1 of every LMDB file are its two meta pages; data starts after them.
constexpr size_t kLmdbMetaPages = 2;
constexpr unsigned kReadersMaxLimit = 1 << 16;
constexpr size_t kMapBytesMin = 64 * 1024;
// A Write that keeps hitting MDB_MAP_FULL grows the map at most this many times before giving up.
constexpr int kWriteAttemptsMax = 8;
// Growth keeps the map at most 3/4 full after adding room for twice the batch (copy-on-write
// rewrites every touched page) plus this slack for branch pages and the free list.
constexpr size_t kGrowSlackBytes = 256 * 1024;
// Per-record LMDB overhead assumed when estimating a batch: node header, key, alignment.
constexpr size_t kRecordOverheadBytes = 32;
// A write touches at most this many "meta" records (promised, chosen_below, snapshot,
// journal_seq), each with a payload of at most kMetaPayloadBytesMax, or kSnapshotMetaBytesMax for
// the ones a snapshot writes besides its data.
constexpr size_t kMetaRecordsMax = 4;
constexpr size_t kMetaPayloadBytesMax = 16;
constexpr size_t kSnapshotMetaBytesMax = 64;
constexpr size_t kSnapshotExtraBytes =
    kMetaRecordsMax * (kRecordHeaderBytes + kSnapshotMetaBytesMax);
// The journal file is preallocated to this many checkpoints' worth of records.
constexpr size_t kJournalCheckpointsPerFile = 2;
// Copy-on-write rewrites every page a transaction touches: room for twice its bytes is asked for.
constexpr size_t kCopyOnWriteFactor = 2;
// The map is grown ahead of need while it would be fuller than 3/4; it at least doubles.
constexpr size_t kMapFullNumerator = 3;
constexpr size_t kMapFullDenominator = 4;
constexpr size_t kMapGrowthFactor = 2;
// The page size assumed if sysconf cannot tell.
constexpr size_t kDefaultPageBytes = 4096;
constexpr size_t kScratchBytesMax = 4 * kMiB;
constexpr int kBeginAttemptsMax = 3;
constexpr size_t kJournalCheckpointBytesMin = 16 * 1024;
constexpr size_t kJournalCheckpointBytesMax = 1 * kGiB;

std::string SizeText(size_t bytes) {
  char buf[32];
  if (bytes >= kMiB && bytes % kMiB == 0) {
    snprintf(buf, sizeof(buf), "%zu MiB", bytes / kMiB);
  } else if (bytes >= 1024 && bytes % 1024 == 0) {
    snprintf(buf, sizeof(buf), "%zu KiB", bytes / 1024);
  } else {
    snprintf(buf, sizeof(buf), "%zu bytes", bytes);
  }
  return buf;
}

size_t OsPageBytes() {
  const long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? static_cast<size_t>(page) : kDefaultPageBytes;
}
size_t RoundUpToPage(size_t n) {
  const size_t p = OsPageBytes();
  return (n + p - 1) / p * p;
}
size_t RoundDownToPage(size_t n) { return n / OsPageBytes() * OsPageBytes(); }

Status ValidateOptions(const LmdbOptions& options) {
  auto invalid = [](const std::string& m) {
    return Status(StatusCode::kInvalidArgument, "LmdbOptions: " + m);
  };
  if (options.dir.empty()) return invalid("dir must not be empty");
  if (options.cluster_id == 0) return invalid("cluster_id must not be 0");
  if (options.node_id == paxos::kNoNode || options.node_id > paxos::kNodeIdMax) {
    return invalid("node_id must be in 1.." + std::to_string(paxos::kNodeIdMax) + ", got " +
                   std::to_string(options.node_id));
  }
  if (options.map_bytes < kMapBytesMin) {
    return invalid("map_bytes must be at least " + SizeText(kMapBytesMin));
  }
  if (options.map_bytes_max < options.map_bytes) {
    return invalid("map_bytes_max (" + SizeText(options.map_bytes_max) +
                   ") must be at least map_bytes (" + SizeText(options.map_bytes) + ")");
  }
  if (options.readers_max < 1 || options.readers_max > kReadersMaxLimit) {
    return invalid("readers_max must be in 1.." + std::to_string(kReadersMaxLimit));
  }
  if (options.journal_checkpoint_bytes < kJournalCheckpointBytesMin ||
      options.journal_checkpoint_bytes > kJournalCheckpointBytesMax) {
    return invalid("journal_checkpoint_bytes must be in " + SizeText(kJournalCheckpointBytesMin) +
                   ".." + SizeText(kJournalCheckpointBytesMax));
  }
  return Status::Ok();
}

size_t EstimateBatchBytes(const paxos::PersistBatch& batch) {
  size_t bytes =
      kMetaRecordsMax * (kRecordHeaderBytes + kMetaPayloadBytesMax + kRecordOverheadBytes);
  for (const paxos::Entry& e : batch.entries) {
    bytes += kRecordHeaderBytes + kSlotKeyBytes + EntryPayloadBytes(e) + kRecordOverheadBytes;
  }
  return bytes;
}

int PutJournalSeq(MDB_txn* txn, MDB_dbi dbi, uint64_t seq, std::string* scratch) {
  std::string payload;
  EncodeSlot(seq, &payload);  // a u64 >= 1, like a slot
  return PutRecord(txn, dbi, kJournalSeqKey, RecordKind::kJournalSeq, payload, scratch);
}

}  // namespace

// The outcome of one step of a transaction: an LMDB code (0 = none) and the Status it maps to,
// or a Status from our own checks. `commit` marks a failure of mdb_txn_commit itself.
struct LmdbStore::Attempt {
  int rc = MDB_SUCCESS;
  Status status;
  bool commit = false;

  static Attempt Mdb(int rc, std::string_view what) { return Attempt{rc, MdbStatus(rc, what)}; }
  static Attempt Of(Status s) { return Attempt{MDB_SUCCESS, std::move(s)}; }
  bool ok() const { return status.ok(); }
};

#define STORE_RETURN_ATTEMPT_IF_ERROR(expr)                   \
  do {                                                        \
    if (::ballot::Status store_s_ = (expr); !store_s_.ok()) { \
      return Attempt::Of(std::move(store_s_));                \
    }                                                         \
  } while (0)

LmdbStore::LmdbStore(std::string dir, bool read_only)
    : dir_(std::move(dir)), read_only_(read_only) {}

LmdbStore::~LmdbStore() {
  {
    // A clean close leaves LMDB complete (the journal all stale), so that tools and older
    // binaries that read only LMDB see everything. Best effort: the next Open() replays anyway.
    MutexLock lock(&mu_);
    if (journal_ != nullptr && journal_->tail_bytes() > 0 && fatal_.ok()) {
      if (Status s = Checkpoint("checkpoint at close", nullptr, nullptr); !s.ok()) {
        LOG(WARNING) << s.message() << "; the journal will be replayed at the next open";
      }
    }
    journal_.reset();
  }
  env_.reset();   // closes the environment
  lock_.reset();  // then releases the flock
}

Result<std::unique_ptr<LmdbStore>> LmdbStore::Open(const LmdbOptions& options) {
  STORE_RETURN_IF_ERROR(ValidateOptions(options));
  std::error_code ec;
  const bool created_dir = std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return Status(StatusCode::kIoError,
                  "cannot create data directory " + options.dir + ": " + ec.message());
  }
  std::unique_ptr<LmdbStore> store(new LmdbStore(options.dir, /*read_only=*/false));
  store->lock_ = std::make_unique<DirectoryLock>();
  STORE_RETURN_IF_ERROR(store->lock_->Lock(options.dir, kLockFileName, "data directory"));
  MutexLock lock(&store->mu_);
  STORE_RETURN_IF_ERROR(store->OpenWritable(options, created_dir));
  return Result<std::unique_ptr<LmdbStore>>(std::move(store));
}

Status LmdbStore::OpenWritable(const LmdbOptions& options, bool created_dir) {
  map_bytes_max_ = RoundDownToPage(options.map_bytes_max);
  STORE_RETURN_IF_ERROR(OpenEnv(MDB_NOTLS, options.map_bytes, options.readers_max));
  bool created_store = false;
  STORE_RETURN_IF_ERROR(CreateOrCheckIdentity(
      StoreIdentity{kStoreFormatVersion, options.cluster_id, options.node_id}, &created_store));
  if (created_store) {
    // LMDB syncs file contents, never directory entries: make data.mdb's name durable before
    // anything written into it is acknowledged, or a power loss could lose the whole file.
    STORE_RETURN_IF_ERROR(Annotate(SyncDirectory(dir_)));
    if (created_dir) {
      const std::filesystem::path parent =
          std::filesystem::path(dir_).lexically_normal().parent_path();
      STORE_RETURN_IF_ERROR(Annotate(SyncDirectory(parent.empty() ? "." : parent.string())));
    }
  }
  STORE_RETURN_IF_ERROR(Annotate(Preallocate(map_bytes_)));
  STORE_RETURN_IF_ERROR(RecoverJournal(options));
  LOG(INFO) << "opened lmdb store " << dir_ << " (cluster " << options.cluster_id << ", node "
            << options.node_id << ", map " << SizeText(map_bytes_) << ", max "
            << SizeText(map_bytes_max_) << ", used " << SizeText(UsedBytes()) << ", journal "
            << (journal_ ? "on, checkpoint every " + SizeText(journal_checkpoint_bytes_) : "off")
            << ")";
  return Status::Ok();
}

Status LmdbStore::Annotate(const Status& s) const {
  if (s.ok()) return s;
  return Status(s.code(), "lmdb store " + dir_ + ": " + s.message());
}

Status LmdbStore::OpenEnv(unsigned flags, size_t map_bytes, unsigned readers_max) {
  env_ = std::make_unique<LmdbEnv>();
  int dead = 0;
  // The map size is left unset here so that LMDB adopts the size the last run stored (at least
  // what the data needs); it is raised to the configured size below.
  STORE_RETURN_IF_ERROR(Annotate(env_->Open(
      dir_, LmdbEnvOptions{.flags = flags, .dbs_max = kDbsMax, .readers_max = readers_max},
      &dead)));
  if (dead > 0) LOG(WARNING) << "lmdb store " << dir_ << ": cleared " << dead << " stale readers";

  MDB_envinfo info;
  mdb_env_info(env_->get(), &info);
  map_bytes_ = info.me_mapsize;
  if (read_only_) return Status::Ok();
  // A new environment (nothing committed past its two meta pages) starts at the configured
  // size; an existing one keeps the size it grew to, if larger.
  const bool fresh = info.me_last_pgno < kLmdbMetaPages;
  const size_t target =
      fresh ? RoundUpToPage(map_bytes) : std::max(RoundUpToPage(map_bytes), map_bytes_);
  if (target != map_bytes_) {
    if (const int rc = mdb_env_set_mapsize(env_->get(), target); rc != MDB_SUCCESS) {
      return Annotate(MdbStatus(rc, "setting the LMDB map size to " + SizeText(target)));
    }
    map_bytes_ = env_->MapBytes();
  }
  return Status::Ok();
}

Status LmdbStore::CreateOrCheckIdentity(const StoreIdentity& want, bool* created) {
  *created = false;
  Txn txn;
  int rc = mdb_txn_begin(env_->get(), nullptr, 0, txn.out());
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "beginning the first transaction"));
  STORE_RETURN_IF_ERROR(Annotate(CheckOnlyOurDatabases(&txn)));
  if ((rc = mdb_dbi_open(txn.get(), kMetaDb, MDB_CREATE, &meta_dbi_)) != MDB_SUCCESS ||
      (rc = mdb_dbi_open(txn.get(), kLogDb, MDB_CREATE, &log_dbi_)) != MDB_SUCCESS) {
    return Annotate(MdbStatus(rc, "opening the meta and log databases"));
  }
  std::optional<StoreIdentity> have;
  if (Status s = ReadMeta(txn.get(), meta_dbi_, kIdentityKey, RecordKind::kIdentity, DecodeIdentity,
                          &have);
      !s.ok()) {
    return Annotate(Status(s.code(), s.message() + "; cannot tell which cluster and node this "
                                                   "data belongs to, refusing to open it"));
  }
  if (!have) {
    MDB_stat meta_stat;
    MDB_stat log_stat;
    mdb_stat(txn.get(), meta_dbi_, &meta_stat);
    mdb_stat(txn.get(), log_dbi_, &log_stat);
    const size_t records = meta_stat.ms_entries + log_stat.ms_entries;
    if (records > 0) {
      return Annotate(Corrupt("holds " + std::to_string(records) +
                              " records but no identity record; refusing to open it"));
    }
    std::string payload;
    EncodeIdentity(want, &payload);
    rc = PutRecord(txn.get(), meta_dbi_, kIdentityKey, RecordKind::kIdentity, payload, &scratch_);
    if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "writing the identity record"));
    LOG(INFO) << "lmdb store " << dir_ << ": new store for cluster " << want.cluster_id << " node "
              << want.node_id;
  } else {
    if (have->format_version > kStoreFormatVersion) {
      return Annotate(Status(StatusCode::kFailedPrecondition,
                             "written in store format " + std::to_string(have->format_version) +
                                 ", this binary reads formats up to " +
                                 std::to_string(kStoreFormatVersion)));
    }
    if (have->cluster_id != want.cluster_id || have->node_id != want.node_id) {
      return Annotate(
          Status(StatusCode::kFailedPrecondition,
                 "data directory belongs to cluster " + std::to_string(have->cluster_id) +
                     " node " + std::to_string(have->node_id) + ", but this node is cluster " +
                     std::to_string(want.cluster_id) + " node " + std::to_string(want.node_id) +
                     "; refusing to open it (wrong --data_dir?)"));
    }
  }
  rc = txn.Commit();
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "committing the first transaction"));
  have_dbs_ = true;
  *created = !have.has_value();
  return Status::Ok();
}

// Named databases are keys of LMDB's main database; any other key there means this environment
// was written by something else, and adopting it would mix foreign data into a replica's state.
Status LmdbStore::CheckOnlyOurDatabases(Txn* txn) {
  MDB_dbi main_dbi;
  int rc = mdb_dbi_open(txn->get(), nullptr, 0, &main_dbi);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "opening the main database");
  LmdbCursor cursor;
  if ((rc = cursor.Open(txn->get(), main_dbi)) != MDB_SUCCESS) {
    return MdbStatus(rc, "opening a main database cursor");
  }
  MDB_val key;
  MDB_val value;
  for (rc = cursor.Get(&key, &value, MDB_FIRST); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    const std::string_view k = MdbView(key);
    if (k != kMetaDb && k != kLogDb) {
      return Status(StatusCode::kFailedPrecondition,
                    "not a Ballot store: its LMDB main database holds key " + HexBytes(k) +
                        "; refusing to open it");
    }
  }
  if (rc != MDB_NOTFOUND) return MdbStatus(rc, "reading the main database");
  return Status::Ok();
}

Status LmdbStore::BeginRead(Txn* txn) {
  int rc = MDB_SUCCESS;
  for (int attempt = 0; attempt < kBeginAttemptsMax; ++attempt) {
    rc = mdb_txn_begin(env_->get(), nullptr, MDB_RDONLY, txn->out());
    if (rc == MDB_SUCCESS) return Status::Ok();
    if (rc == MDB_READERS_FULL) {
      // Slots held by dead processes are reclaimed; live ones are a real overload.
      int dead = 0;
      mdb_reader_check(env_->get(), &dead);
      if (dead > 0)
        LOG(WARNING) << "lmdb store " << dir_ << ": cleared " << dead << " stale readers";
      continue;
    }
    if (rc == MDB_MAP_RESIZED) {  // another process grew the map: adopt its size
      if (mdb_env_set_mapsize(env_->get(), 0) != MDB_SUCCESS) break;
      map_bytes_ = env_->MapBytes();
      continue;
    }
    break;
  }
  return Annotate(MdbStatus(rc, "beginning a read transaction"));
}

// --- Writing ---

Status LmdbStore::CheckWritable() const {
  if (read_only_) {
    return Status(StatusCode::kFailedPrecondition,
                  "lmdb store " + dir_ + " is open for inspection only");
  }
  return fatal_;
}

Status LmdbStore::Write(const paxos::PersistBatch& batch) {
  MutexLock lock(&mu_);
  STORE_RETURN_IF_ERROR(CheckWritable());
  if (batch.empty()) return Status::Ok();
  if (journal_ != nullptr) return WriteJournaled(batch);
  return CommitWithRetry(EstimateBatchBytes(batch), "write",
                         [&](Txn* txn) REQUIRES(mu_) { return WriteBatchIn(txn, batch); });
}

LmdbStore::Attempt LmdbStore::WriteBatchIn(Txn* txn, const paxos::PersistBatch& batch) {
  MDB_txn* t = txn->get();
  if (batch.promised) {
    std::optional<paxos::Ballot> stored;
    STORE_RETURN_ATTEMPT_IF_ERROR(
        ReadMeta(t, meta_dbi_, kPromisedKey, RecordKind::kPromised, DecodeBallot, &stored));
    const paxos::Ballot old = stored.value_or(paxos::Ballot());
    CHECK(*batch.promised >= old) << "promised ballot went backwards: stored " << old.round() << "."
                                  << old.node() << ", new " << batch.promised->round() << "."
                                  << batch.promised->node();
    if (!stored || *batch.promised != old) {
      std::string payload;
      EncodeBallot(*batch.promised, &payload);
      const int rc =
          PutRecord(t, meta_dbi_, kPromisedKey, RecordKind::kPromised, payload, &scratch_);
      if (rc != MDB_SUCCESS) return Attempt::Mdb(rc, "writing promised");
    }
  }
  if (!batch.entries.empty()) {
    std::optional<SnapshotMeta> snapshot;
    STORE_RETURN_ATTEMPT_IF_ERROR(ReadMeta(t, meta_dbi_, kSnapshotKey, RecordKind::kSnapshotMeta,
                                           DecodeSnapshotMeta, &snapshot));
    const paxos::Slot applied_below = snapshot ? snapshot->applied_below : 1;
    for (const paxos::Entry& e : batch.entries) {
      CHECK_GT(e.slot, 0u) << "entry for slot 0";
      if (e.slot < applied_below) continue;  // already covered by the snapshot
      const std::string key = SlotKey(e.slot);
      scratch_.assign(kRecordHeaderBytes, '\0');
      EncodeEntryPayload(e, &scratch_);
      SealRecordInPlace(RecordKind::kEntry, key, scratch_.data(), scratch_.size());
      MDB_val k = MdbVal(key);
      MDB_val v = MdbVal(scratch_);
      const int rc = mdb_put(t, log_dbi_, &k, &v, 0);
      if (rc != MDB_SUCCESS) return Attempt::Mdb(rc, "writing " + SlotName(e.slot));
    }
  }
  if (batch.chosen_below) {
    CHECK_GT(*batch.chosen_below, 0u) << "chosen_below 0";
    std::optional<paxos::Slot> stored;
    STORE_RETURN_ATTEMPT_IF_ERROR(
        ReadMeta(t, meta_dbi_, kChosenBelowKey, RecordKind::kChosenBelow, DecodeSlot, &stored));
    if (*batch.chosen_below > stored.value_or(1)) {  // only grows
      std::string payload;
      EncodeSlot(*batch.chosen_below, &payload);
      const int rc =
          PutRecord(t, meta_dbi_, kChosenBelowKey, RecordKind::kChosenBelow, payload, &scratch_);
      if (rc != MDB_SUCCESS) return Attempt::Mdb(rc, "writing chosen_below");
    }
  }
  return Attempt{};
}

Status LmdbStore::SaveSnapshot(const Snapshot& snapshot) {
  MutexLock lock(&mu_);
  STORE_RETURN_IF_ERROR(CheckWritable());
  CHECK_GT(snapshot.applied_below, 0u) << "snapshot applied_below 0";
  if (journal_ != nullptr) return Checkpoint("save snapshot", nullptr, &snapshot);
  const size_t need = snapshot.data.size() + kSnapshotExtraBytes;
  return CommitWithRetry(need, "save snapshot",
                         [&](Txn* txn) REQUIRES(mu_) { return SaveSnapshotIn(txn, snapshot); });
}

LmdbStore::Attempt LmdbStore::SaveSnapshotIn(Txn* txn, const Snapshot& snapshot) {
  MDB_txn* t = txn->get();
  std::optional<SnapshotMeta> old;
  STORE_RETURN_ATTEMPT_IF_ERROR(
      ReadMeta(t, meta_dbi_, kSnapshotKey, RecordKind::kSnapshotMeta, DecodeSnapshotMeta, &old));
  CHECK(!old || old->applied_below <= snapshot.applied_below)
      << "snapshot went backwards: stored applied_below " << old->applied_below << ", new "
      << snapshot.applied_below;

  std::string payload;
  EncodeSnapshotMeta(SnapshotMeta{snapshot.applied_below, snapshot.data.size()}, &payload);
  int rc = PutRecord(t, meta_dbi_, kSnapshotKey, RecordKind::kSnapshotMeta, payload, &scratch_);
  if (rc != MDB_SUCCESS) return Attempt::Mdb(rc, "writing snapshot");

  // The data may be large: reserve its space in the map and seal it there, without a copy.
  MDB_val k = MdbVal(kSnapshotDataKey);
  MDB_val v;
  v.mv_size = kRecordHeaderBytes + sizeof(uint64_t) + snapshot.data.size();  // applied_below, data
  rc = mdb_put(t, meta_dbi_, &k, &v, MDB_RESERVE);
  if (rc != MDB_SUCCESS) return Attempt::Mdb(rc, "writing snapshot_data");
  {
    std::string prefix;
    EncodeSnapshotData(snapshot.applied_below, {}, &prefix);
    char* record = static_cast<char*>(v.mv_data);
    memcpy(record + kRecordHeaderBytes, prefix.data(), prefix.size());
    if (!snapshot.data.empty()) {
      memcpy(record + kRecordHeaderBytes + prefix.size(), snapshot.data.data(),
             snapshot.data.size());
    }
    SealRecordInPlace(RecordKind::kSnapshotData, kSnapshotDataKey, record, v.mv_size);
  }

  std::optional<paxos::Slot> chosen;
  STORE_RETURN_ATTEMPT_IF_ERROR(
      ReadMeta(t, meta_dbi_, kChosenBelowKey, RecordKind::kChosenBelow, DecodeSlot, &chosen));
  if (chosen.value_or(1) < snapshot.applied_below) {
    payload.clear();
    EncodeSlot(snapshot.applied_below, &payload);
    rc = PutRecord(t, meta_dbi_, kChosenBelowKey, RecordKind::kChosenBelow, payload, &scratch_);
    if (rc != MDB_SUCCESS) return Attempt::Mdb(rc, "writing chosen_below");
  }

  // Drop the entries the snapshot covers. Keys compare byte-wise, as LMDB orders them.
  const std::string bound = SlotKey(snapshot.applied_below);
  LmdbCursor cursor;
  if ((rc = cursor.Open(t, log_dbi_)) != MDB_SUCCESS) return Attempt::Mdb(rc, "opening a cursor");
  MDB_val key;
  MDB_val value;
  while ((rc = cursor.Get(&key, &value, MDB_FIRST)) == MDB_SUCCESS && MdbView(key) < bound) {
    if ((rc = mdb_cursor_del(cursor.get(), 0)) != MDB_SUCCESS) {
      return Attempt::Mdb(rc, "deleting entries below the snapshot");
    }
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) return Attempt::Mdb(rc, "scanning the log");
  return Attempt{};
}

LmdbStore::Attempt LmdbStore::Commit(Txn* txn) {
  int rc;
  if (test_commit_error_ != 0) {
    rc = std::exchange(test_commit_error_, 0);
    txn->Abort();
  } else {
    rc = txn->Commit();
  }
  if (rc != MDB_SUCCESS) {
    Attempt a = Attempt::Mdb(rc, "mdb_txn_commit");
    a.commit = true;
    return a;
  }
  ++commits_;
  return Attempt{};
}

template <typename Body>
Status LmdbStore::CommitWithRetry(size_t need_bytes, const char* what, Body body) {
  // Grow ahead of need. Failing to grow here is not yet an error: the write may still fit.
  if (Status s = GrowMap(need_bytes, /*map_full=*/false);
      !s.ok() && s.code() != StatusCode::kNoSpace) {
    return Fatal(s);
  }
  Attempt a;
  for (int attempt = 0; attempt < kWriteAttemptsMax; ++attempt) {
    if (attempt > 0) {  // the previous attempt filled the map
      if (Status s = GrowMap(need_bytes, /*map_full=*/true); !s.ok()) {
        return s.code() == StatusCode::kNoSpace ? NoSpace(s) : Fatal(s);
      }
    }
    Txn txn;
    const int rc = mdb_txn_begin(env_->get(), nullptr, 0, txn.out());
    if (rc == MDB_PANIC) return Fatal(MdbStatus(rc, "mdb_txn_begin"));
    if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "mdb_txn_begin"));
    a = body(&txn);
    if (a.ok()) a = Commit(&txn);
    if (scratch_.capacity() > kScratchBytesMax) std::string().swap(scratch_);
    if (a.ok()) {
      if (no_space_) {
        LOG(WARNING) << "lmdb store " << dir_ << ": space available again, writes resumed";
        no_space_ = false;
      }
      return Status::Ok();
    }
    txn.Abort();
    if (a.rc != MDB_MAP_FULL) break;
  }
  if (IsNoSpaceError(a.rc)) {
    // A commit that failed for lack of space never reached its sync or its meta page (LMDB
    // writes the meta page last, and a failed meta write makes the environment panic), so the
    // previous state is intact and the whole transaction can be redone later.
    std::string why = a.rc == MDB_MAP_FULL ? "LMDB map full at " + SizeText(map_bytes_) +
                                                 " (map_bytes_max " + SizeText(map_bytes_max_) + ")"
                                           : a.status.message();
    return NoSpace(Status(StatusCode::kNoSpace, std::string(what) + ": " + why));
  }
  if (a.commit) return Fatal(a.status);
  return Annotate(Status(a.status.code(), std::string(what) + ": " + a.status.message()));
}

Status LmdbStore::NoSpace(Status status) {
  Status s = Annotate(Status(StatusCode::kNoSpace, status.message()));
  if (!no_space_) {
    LOG(ERROR) << s.message()
               << "; refusing writes until space returns (free disk space or raise "
                  "map_bytes_max); nothing of the failed write was persisted";
    no_space_ = true;
  }
  return s;
}

Status LmdbStore::Fatal(Status status) {
  if (fatal_.ok()) {
    fatal_ = Annotate(Status(StatusCode::kIoError,
                             status.message() +
                                 "; the store refuses all further writes (a failed sync is "
                                 "never retried); restart to recover from what is on disk"));
    LOG(ERROR) << fatal_.message();
  }
  return fatal_;
}

// --- Journal ---

Status LmdbStore::ReadJournalSeq(Txn* txn, uint64_t* seq) {
  *seq = 0;
  if (!have_dbs_) return Status::Ok();
  std::optional<paxos::Slot> stored;
  STORE_RETURN_IF_ERROR(ReadMeta(txn->get(), meta_dbi_, kJournalSeqKey, RecordKind::kJournalSeq,
                                 DecodeSlot, &stored));
  *seq = stored.value_or(0);
  return Status::Ok();
}

Status LmdbStore::PendingPayloads(uint64_t checkpoint_seq, std::string* bytes,
                                  std::vector<std::string_view>* payloads) {
  payloads->clear();
  if (journal_ != nullptr) {
    if (journal_->tail_bytes() == 0) return Status::Ok();
    STORE_RETURN_IF_ERROR(journal_->ReadPending(bytes));
  } else if (read_only_) {
    // Inspection: whatever the file holds beyond LMDB's checkpoint.
    if (Status s = Journal::ReadFile(dir_, bytes); !s.ok()) {
      return s.code() == StatusCode::kNotFound ? Status::Ok() : s;
    }
  } else {
    return Status::Ok();  // journal off: Open() folded every record into LMDB
  }
  Result<JournalScan> scan = ScanJournal(*bytes, checkpoint_seq);
  if (!scan.ok()) return scan.status();
  if (journal_ != nullptr && scan.value().last_seq != journal_seq_) {
    return Corrupt("journal: expected records up to seq " + std::to_string(journal_seq_) +
                   " since the checkpoint at seq " + std::to_string(checkpoint_seq) +
                   ", read up to seq " + std::to_string(scan.value().last_seq));
  }
  for (const JournalRecord& r : scan.value().records) payloads->push_back(r.payload);
  return Status::Ok();
}

LmdbStore::Attempt LmdbStore::ReplayIn(Txn* txn, const std::vector<std::string_view>& payloads) {
  for (std::string_view payload : payloads) {
    paxos::PersistBatch batch;
    if (Status s = DecodeBatchPayload(payload, &batch); !s.ok()) {
      return Attempt::Of(Corrupt("journal record: " + s.message()));
    }
    Attempt a = WriteBatchIn(txn, batch);
    if (!a.ok()) return a;
  }
  return Attempt{};
}

Status LmdbStore::RecoverJournal(const LmdbOptions& options) {
  journal_checkpoint_bytes_ = options.journal_checkpoint_bytes;
  std::string bytes;
  if (Status s = Journal::ReadFile(dir_, &bytes); !s.ok() && s.code() != StatusCode::kNotFound) {
    return Annotate(s);
  }
  {
    Txn txn;
    STORE_RETURN_IF_ERROR(BeginRead(&txn));
    STORE_RETURN_IF_ERROR(Annotate(ReadJournalSeq(&txn, &checkpoint_seq_)));
  }
  journal_seq_ = checkpoint_seq_;
  Result<JournalScan> scan = ScanJournal(bytes, checkpoint_seq_);
  if (!scan.ok()) {
    return Annotate(
        Status(StatusCode::kCorruption, scan.status().message() + " (LMDB's checkpoint is at seq " +
                                            std::to_string(checkpoint_seq_) +
                                            "); refusing to open: see docs/durability.md"));
  }
  const JournalScan& js = scan.value();
  if (js.torn_tail) {
    LOG(WARNING) << "lmdb store " << dir_ << ": the journal ends in a record cut by a crash at "
                 << "offset " << js.end_offset << "; it was never acknowledged and is discarded";
  }
  if (!js.records.empty()) {
    std::vector<std::string_view> payloads;
    for (const JournalRecord& r : js.records) payloads.push_back(r.payload);
    journal_seq_ = js.last_seq;
    STORE_RETURN_IF_ERROR(CommitWithRetry(
        kCopyOnWriteFactor * js.end_offset, "journal replay", [&](Txn* txn) REQUIRES(mu_) {
          Attempt a = ReplayIn(txn, payloads);
          if (!a.ok()) return a;
          const int rc = PutJournalSeq(txn->get(), meta_dbi_, journal_seq_, &scratch_);
          return rc == MDB_SUCCESS ? Attempt{} : Attempt::Mdb(rc, "writing journal_seq");
        }));
    LOG(INFO) << "lmdb store " << dir_ << ": replayed " << js.records.size()
              << " journal records (seq " << js.records.front().seq << ".." << js.last_seq
              << ") into LMDB";
    checkpoint_seq_ = journal_seq_;
  }
  if (!options.journal) return Status::Ok();
  {
    // A damaged promise does not stop the store from opening (Load() reports it); a write
    // that must check a new promise against it is refused instead, as without the journal.
    Txn txn;
    STORE_RETURN_IF_ERROR(BeginRead(&txn));
    std::optional<paxos::Ballot> promised;
    promised_status_ = Annotate(ReadMeta(txn.get(), meta_dbi_, kPromisedKey, RecordKind::kPromised,
                                         DecodeBallot, &promised));
    promised_ = promised.value_or(paxos::Ballot());
  }
  Result<std::unique_ptr<Journal>> journal =
      Journal::Open(dir_, kJournalCheckpointsPerFile * options.journal_checkpoint_bytes);
  if (!journal.ok()) return Annotate(journal.status());
  journal_ = std::move(journal).value();
  return Status::Ok();
}

Status LmdbStore::WriteJournaled(const paxos::PersistBatch& batch) {
  if (batch.promised && !promised_status_.ok()) return promised_status_;
  if (batch.promised) {
    CHECK(*batch.promised >= promised_)
        << "promised ballot went backwards: stored " << promised_.round() << "." << promised_.node()
        << ", new " << batch.promised->round() << "." << batch.promised->node();
  }
  for (const paxos::Entry& e : batch.entries) CHECK_GT(e.slot, 0u) << "entry for slot 0";
  if (batch.chosen_below) CHECK_GT(*batch.chosen_below, 0u) << "chosen_below 0";
  journal_scratch_.clear();
  EncodeBatchPayload(batch, &journal_scratch_);
  const size_t record_bytes = JournalRecordBytes(journal_scratch_.size());
  if (record_bytes > journal_checkpoint_bytes_) {
    // Too large for the journal: one durable LMDB transaction, journaled batches first.
    return Checkpoint("write", &batch, nullptr);
  }
  const auto fits = [&]() REQUIRES(mu_) {
    return record_bytes <= journal_->capacity_bytes() - journal_->tail_bytes();
  };
  bool lmdb_full = false;
  if (journal_->tail_bytes() >= journal_checkpoint_bytes_ || !fits()) {
    Status s = Checkpoint("checkpoint", nullptr, nullptr);
    lmdb_full = !s.ok();
    // A checkpoint that failed for space leaves everything in the journal: go on while it has room.
    if (!s.ok() && (s.code() != StatusCode::kNoSpace || !fits())) {
      if (s.code() != StatusCode::kNoSpace) return s;
      return Annotate(
          Status(StatusCode::kNoSpace,
                 "write: the journal is full and the checkpoint into LMDB failed: " + s.message()));
    }
  }
  if (test_commit_error_ != 0) {  // TEST_FailNextCommit: the append fails before writing
    const int err = std::exchange(test_commit_error_, 0);
    const Status s(IsNoSpaceError(err) ? StatusCode::kNoSpace : StatusCode::kIoError,
                   std::string("journal append: ") + strerror(err));
    return s.code() == StatusCode::kNoSpace ? NoSpace(s) : Fatal(s);
  }
  if (Status s = journal_->Append(journal_seq_ + 1, journal_scratch_); !s.ok()) {
    return s.code() == StatusCode::kNoSpace ? NoSpace(s) : Fatal(s);
  }
  ++journal_seq_;
  if (batch.promised) promised_ = *batch.promised;
  if (no_space_ && !lmdb_full) {
    LOG(WARNING) << "lmdb store " << dir_ << ": space available again, writes resumed";
    no_space_ = false;
  }
  if (journal_scratch_.capacity() > kScratchBytesMax) std::string().swap(journal_scratch_);
  return Status::Ok();
}

Status LmdbStore::Checkpoint(const char* what, const paxos::PersistBatch* batch,
                             const Snapshot* snapshot) {
  std::string bytes;
  std::vector<std::string_view> payloads;
  if (Status s = PendingPayloads(checkpoint_seq_, &bytes, &payloads); !s.ok()) {
    return Fatal(s);  // our own synced records no longer read back
  }
  size_t need = kCopyOnWriteFactor * bytes.size();
  if (batch != nullptr) need += EstimateBatchBytes(*batch);
  if (snapshot != nullptr) need += snapshot->data.size() + kSnapshotExtraBytes;
  STORE_RETURN_IF_ERROR(CommitWithRetry(need, what, [&](Txn* txn) REQUIRES(mu_) {
    Attempt a = ReplayIn(txn, payloads);
    if (a.ok() && batch != nullptr) a = WriteBatchIn(txn, *batch);
    if (a.ok() && snapshot != nullptr) a = SaveSnapshotIn(txn, *snapshot);
    if (a.ok() && journal_seq_ != checkpoint_seq_) {
      const int rc = PutJournalSeq(txn->get(), meta_dbi_, journal_seq_, &scratch_);
      if (rc != MDB_SUCCESS) a = Attempt::Mdb(rc, "writing journal_seq");
    }
    return a;
  }));
  // LMDB now durably holds everything journaled: the journal may be overwritten.
  checkpoint_seq_ = journal_seq_;
  if (journal_ != nullptr) journal_->Restart();
  if (!payloads.empty()) ++checkpoints_;
  if (batch != nullptr && batch->promised) promised_ = std::max(promised_, *batch->promised);
  return Status::Ok();
}

// --- Space ---

size_t LmdbStore::UsedBytes() { return env_->UsedBytes(); }

Status LmdbStore::GrowMap(size_t need_bytes, bool map_full) {
  const size_t want = UsedBytes() + kCopyOnWriteFactor * need_bytes + kGrowSlackBytes;
  if (!map_full && want <= map_bytes_ / kMapFullDenominator * kMapFullNumerator) {
    return Status::Ok();
  }
  size_t target = std::max(map_bytes_ * kMapGrowthFactor,
                           RoundUpToPage(want / kMapFullNumerator * kMapFullDenominator));
  target = std::min(target, map_bytes_max_);
  if (target <= map_bytes_) {
    if (!map_full) return Status::Ok();  // cannot grow ahead; the write may still fit
    return Status(StatusCode::kNoSpace, "LMDB map full at " + SizeText(map_bytes_) +
                                            " (map_bytes_max " + SizeText(map_bytes_max_) + ")");
  }
  STORE_RETURN_IF_ERROR(Preallocate(target));
  return ResizeMap(target);
}

Status LmdbStore::ResizeMap(size_t map_bytes) {
  // Only called with mu_ held and no transaction open, as mdb_env_set_mapsize requires.
  const int rc = mdb_env_set_mapsize(env_->get(), map_bytes);
  if (rc != MDB_SUCCESS) {
    // LMDB has unmapped the old map and could not map the new one: the environment is unusable.
    fatal_ = Annotate(MdbStatus(rc, "resizing the LMDB map to " + SizeText(map_bytes)));
    LOG(ERROR) << fatal_.message();
    return fatal_;
  }
  const size_t now_bytes = env_->MapBytes();
  if (now_bytes > map_bytes_) {
    ++map_grows_;
    LOG(INFO) << "lmdb store " << dir_ << ": map grown from " << SizeText(map_bytes_) << " to "
              << SizeText(now_bytes);
  }
  map_bytes_ = now_bytes;
  return Status::Ok();
}

Status LmdbStore::Preallocate(size_t bytes) {
  if (!preallocate_ || read_only_) return Status::Ok();
  int fd = -1;
  if (mdb_env_get_fd(env_->get(), &fd) != MDB_SUCCESS || fd < 0) return Status::Ok();
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return Status(StatusCode::kIoError, std::string("fstat data.mdb: ") + strerror(errno));
  }
  const auto have = static_cast<size_t>(st.st_size);
  if (have >= bytes) return Status::Ok();
  // No fsync afterwards, on purpose: the allocation becomes durable with the first commit that
  // writes into it, and an fsync of LMDB's descriptor here could consume a write-back error
  // that LMDB's own sync must see.
  int rc;
  do {
    rc = fallocate(fd, 0, static_cast<off_t>(have), static_cast<off_t>(bytes - have));
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return Status::Ok();
  const int err = errno;
  if (err == EOPNOTSUPP || err == ENOSYS) {
    LOG(WARNING) << "lmdb store " << dir_ << ": the file system cannot preallocate ("
                 << strerror(err) << "); a full disk may then surface as an I/O error";
    preallocate_ = false;
    return Status::Ok();
  }
  const StatusCode code = IsNoSpaceError(err) ? StatusCode::kNoSpace : StatusCode::kIoError;
  return Status(code, "cannot preallocate data.mdb to " + SizeText(bytes) + ": " + strerror(err));
}

void LmdbStore::SetMapBytesMax(size_t map_bytes_max) {
  MutexLock lock(&mu_);
  map_bytes_max_ = std::max(RoundDownToPage(map_bytes_max), map_bytes_);
  LOG(INFO) << "lmdb store " << dir_ << ": map_bytes_max set to " << SizeText(map_bytes_max_);
}

LmdbStats LmdbStore::stats() {
  MutexLock lock(&mu_);
  LmdbStats s;
  s.commits = commits_;
  s.map_grows = map_grows_;
  s.map_bytes = map_bytes_;
  s.map_bytes_max = map_bytes_max_;
  s.used_bytes = env_ != nullptr && env_->is_open() ? UsedBytes() : 0;
  s.no_space = no_space_;
  s.failed = !fatal_.ok();
  s.journal_syncs = journal_ ? journal_->syncs() : 0;
  s.checkpoints = checkpoints_;
  s.journal_bytes = journal_ ? journal_->tail_bytes() : 0;
  return s;
}

void LmdbStore::TEST_FailNextCommit(int error) {
  MutexLock lock(&mu_);
  test_commit_error_ = error;
}

// --- Reading ---

Result<paxos::DurableState> LmdbStore::Load() {
  MutexLock lock(&mu_);
  paxos::DurableState state;
  if (!have_dbs_) return state;
  Txn txn;
  STORE_RETURN_IF_ERROR(BeginRead(&txn));
  if (Status s = LoadIn(&txn, &state); !s.ok()) return Annotate(s);
  // Batches journaled since LMDB's checkpoint come on top, exactly as replay would apply them.
  uint64_t checkpoint_seq = 0;
  STORE_RETURN_IF_ERROR(Annotate(ReadJournalSeq(&txn, &checkpoint_seq)));
  txn.Abort();
  std::string bytes;
  std::vector<std::string_view> payloads;
  STORE_RETURN_IF_ERROR(Annotate(PendingPayloads(checkpoint_seq, &bytes, &payloads)));
  if (!payloads.empty()) STORE_RETURN_IF_ERROR(Annotate(ReplayJournal(payloads, &state)));
  return state;
}

Status LmdbStore::LoadIn(Txn* txn, paxos::DurableState* state) {
  MDB_txn* t = txn->get();
  std::optional<paxos::Ballot> promised;
  std::optional<paxos::Slot> chosen_below;
  std::optional<SnapshotMeta> snapshot;
  STORE_RETURN_IF_ERROR(
      ReadMeta(t, meta_dbi_, kPromisedKey, RecordKind::kPromised, DecodeBallot, &promised));
  STORE_RETURN_IF_ERROR(
      ReadMeta(t, meta_dbi_, kChosenBelowKey, RecordKind::kChosenBelow, DecodeSlot, &chosen_below));
  STORE_RETURN_IF_ERROR(ReadMeta(t, meta_dbi_, kSnapshotKey, RecordKind::kSnapshotMeta,
                                 DecodeSnapshotMeta, &snapshot));
  state->promised = promised.value_or(paxos::Ballot());
  state->chosen_below = chosen_below.value_or(1);
  state->applied_below = snapshot ? snapshot->applied_below : 1;
  if (state->applied_below > state->chosen_below) {
    return Corrupt("snapshot applied_below " + std::to_string(state->applied_below) +
                   " is above chosen_below " + std::to_string(state->chosen_below));
  }

  LmdbCursor cursor;
  int rc = cursor.Open(t, log_dbi_);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "opening a log cursor");
  const std::string start = SlotKey(state->applied_below);
  MDB_val key = MdbVal(start);
  MDB_val value;
  paxos::Slot expect = state->applied_below;  // next slot that must exist below chosen_below
  for (rc = cursor.Get(&key, &value, MDB_SET_RANGE); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    paxos::Slot slot = 0;
    if (Status s = DecodeSlotKey(MdbView(key), &slot); !s.ok()) {
      return Corrupt("log key " + HexBytes(MdbView(key)) + ": " + s.message());
    }
    std::string_view payload;
    STORE_RETURN_IF_ERROR(
        OpenRecord(RecordKind::kEntry, MdbView(key), MdbView(value), SlotName(slot), &payload));
    paxos::Entry entry;
    if (Status s = DecodeEntryPayload(slot, payload, &entry); !s.ok()) {
      return Corrupt(SlotName(slot) + ": " + s.message());
    }
    if (slot < state->chosen_below) {
      if (slot != expect)
        return MissingChosenSlot(expect, state->chosen_below, state->applied_below);
      ++expect;
    }
    state->entries.push_back(std::move(entry));
  }
  if (rc != MDB_NOTFOUND) return MdbStatus(rc, "reading the log");
  if (expect < state->chosen_below) {
    return MissingChosenSlot(expect, state->chosen_below, state->applied_below);
  }
  return Status::Ok();
}

Result<std::optional<Snapshot>> LmdbStore::LoadSnapshot() {
  MutexLock lock(&mu_);
  if (!have_dbs_) return std::optional<Snapshot>();
  Txn txn;
  STORE_RETURN_IF_ERROR(BeginRead(&txn));
  std::optional<SnapshotMeta> meta;
  if (Status s = ReadMeta(txn.get(), meta_dbi_, kSnapshotKey, RecordKind::kSnapshotMeta,
                          DecodeSnapshotMeta, &meta);
      !s.ok()) {
    return Annotate(s);
  }
  if (!meta) return std::optional<Snapshot>();
  std::string_view payload;
  bool found = false;
  if (Status s = GetRecord(txn.get(), meta_dbi_, kSnapshotDataKey, RecordKind::kSnapshotData,
                           kSnapshotDataKey, &payload, &found);
      !s.ok()) {
    return Annotate(s);
  }
  if (!found) {
    return Annotate(Corrupt("snapshot_data is missing for the snapshot at applied_below " +
                            std::to_string(meta->applied_below)));
  }
  Snapshot snapshot;
  paxos::Slot data_applied_below = 0;
  if (Status s = DecodeSnapshotData(payload, &data_applied_below, &snapshot.data); !s.ok()) {
    return Annotate(Corrupt("snapshot_data: " + s.message()));
  }
  if (data_applied_below != meta->applied_below || snapshot.data.size() != meta->data_bytes) {
    return Annotate(Corrupt(
        "snapshot_data (applied_below " + std::to_string(data_applied_below) + ", " +
        std::to_string(snapshot.data.size()) + " bytes) does not match snapshot (applied_below " +
        std::to_string(meta->applied_below) + ", " + std::to_string(meta->data_bytes) + " bytes)"));
  }
  snapshot.applied_below = meta->applied_below;
  return std::optional<Snapshot>(std::move(snapshot));
}

Result<StoreIdentity> LmdbStore::LoadIdentity() {
  MutexLock lock(&mu_);
  if (!have_dbs_) return Status(StatusCode::kNotFound, "lmdb store " + dir_ + " has no identity");
  Txn txn;
  STORE_RETURN_IF_ERROR(BeginRead(&txn));
  std::optional<StoreIdentity> identity;
  if (Status s = ReadMeta(txn.get(), meta_dbi_, kIdentityKey, RecordKind::kIdentity, DecodeIdentity,
                          &identity);
      !s.ok()) {
    return Annotate(s);
  }
  if (!identity) return Status(StatusCode::kNotFound, "lmdb store " + dir_ + " has no identity");
  return *identity;
}

}  // namespace ballot::store
