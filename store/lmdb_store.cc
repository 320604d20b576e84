#include "store/lmdb_store.h"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/file.h>
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
#include "store/lmdb_txn.h"
#include "store/status_macros.h"
#include "store/sync_dir.h"

namespace ballot::store {
namespace {

constexpr char kMetaDb[] = "meta";
constexpr char kLogDb[] = "log";
constexpr std::string_view kIdentityKey = "identity";
constexpr std::string_view kPromisedKey = "promised";
constexpr std::string_view kChosenBelowKey = "chosen_below";
constexpr std::string_view kSnapshotKey = "snapshot";
constexpr std::string_view kSnapshotDataKey = "snapshot_data";
constexpr std::string_view kJournalSeqKey = "journal_seq";
constexpr char kLockFileName[] = "store.lock";

constexpr unsigned kDbsMax = 2;
constexpr unsigned kReadersMaxLimit = 1 << 16;
constexpr size_t kMapBytesMin = 64 * 1024;
// A Write that keeps hitting MDB_MAP_FULL grows the map at most this many times before giving up.
constexpr int kWriteAttemptsMax = 8;
// Growth keeps the map at most 3/4 full after adding room for twice the batch (copy-on-write
// rewrites every touched page) plus this slack for branch pages and the free list.
constexpr size_t kGrowSlackBytes = 256 * 1024;
// Per-record LMDB overhead assumed when estimating a batch: node header, key, alignment.
constexpr size_t kRecordOverheadBytes = 32;
constexpr size_t kScratchBytesMax = 4 * kMiB;
constexpr int kBeginAttemptsMax = 3;
constexpr size_t kJournalCheckpointBytesMin = 16 * 1024;
constexpr size_t kJournalCheckpointBytesMax = 1 * kGiB;

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

bool IsNoSpaceError(int rc) {
  return rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT || rc == EFBIG;
}

StatusCode CodeForMdb(int rc) {
  if (IsNoSpaceError(rc)) return StatusCode::kNoSpace;
  switch (rc) {
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return StatusCode::kCorruption;
    case ENOENT:
      return StatusCode::kNotFound;
    case MDB_READERS_FULL:
      return StatusCode::kOverloaded;
    case MDB_TXN_FULL:
    case MDB_BAD_VALSIZE:
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kIoError;
  }
}

Status MdbStatus(int rc, std::string_view what) {
  return Status(CodeForMdb(rc), std::string(what) + ": " + mdb_strerror(rc));
}

Status Corrupt(std::string message) { return Status(StatusCode::kCorruption, std::move(message)); }

std::string HexBytes(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (char c : bytes) {
    snprintf(buf, sizeof(buf), "%02x", static_cast<uint8_t>(c));
    out += buf;
  }
  return out;
}

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
  return page > 0 ? static_cast<size_t>(page) : 4096;
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

std::string SlotName(paxos::Slot slot) { return "slot " + std::to_string(slot); }

// A cursor closed when it goes out of scope (before its transaction ends, for write txns).
class Cursor {
 public:
  Cursor() = default;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  int Open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &cursor_); }
  int Get(MDB_val* key, MDB_val* value, MDB_cursor_op op) {
    return mdb_cursor_get(cursor_, key, value, op);
  }
  MDB_cursor* get() const { return cursor_; }

 private:
  MDB_cursor* cursor_ = nullptr;
};

// Reads the record under `key` into *payload; *found is false if there is none.
Status GetRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, RecordKind kind,
                 std::string_view what, std::string_view* payload, bool* found) {
  MDB_val k = Val(key);
  MDB_val v;
  const int rc = mdb_get(txn, dbi, &k, &v);
  *found = false;
  if (rc == MDB_NOTFOUND) return Status::Ok();
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "reading " + std::string(what));
  STORE_RETURN_IF_ERROR(OpenRecord(kind, key, View(v), what, payload));
  *found = true;
  return Status::Ok();
}

// Reads and decodes one meta record; *out is reset if the record is absent.
template <typename T, typename Decode>
Status ReadMeta(MDB_txn* txn, MDB_dbi dbi, std::string_view key, RecordKind kind, Decode decode,
                std::optional<T>* out) {
  std::string_view payload;
  bool found = false;
  STORE_RETURN_IF_ERROR(GetRecord(txn, dbi, key, kind, key, &payload, &found));
  out->reset();
  if (!found) return Status::Ok();
  T value{};
  if (Status s = decode(payload, &value); !s.ok()) {
    return Corrupt(std::string(key) + ": " + s.message());
  }
  *out = value;
  return Status::Ok();
}

int PutRecord(MDB_txn* txn, MDB_dbi dbi, std::string_view key, RecordKind kind,
              std::string_view payload, std::string* scratch) {
  scratch->clear();
  SealRecord(kind, key, payload, scratch);
  MDB_val k = Val(key);
  MDB_val v = Val(*scratch);
  return mdb_put(txn, dbi, &k, &v, 0);
}

size_t EstimateBatchBytes(const paxos::PersistBatch& batch) {
  size_t bytes = 4 * (kRecordHeaderBytes + 16 + kRecordOverheadBytes);
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

class LmdbStore::Txn : public LmdbTxn {};

#define STORE_RETURN_ATTEMPT_IF_ERROR(expr)                   \
  do {                                                        \
    if (::ballot::Status store_s_ = (expr); !store_s_.ok()) { \
      return Attempt::Of(std::move(store_s_));                \
    }                                                         \
  } while (0)

Status CheckDurableEnvFlags(unsigned env_flags) {
  std::string bad;
  if (env_flags & MDB_NOSYNC) bad += " MDB_NOSYNC";
  if (env_flags & MDB_NOMETASYNC) bad += " MDB_NOMETASYNC";
  if (env_flags & MDB_MAPASYNC) bad += " MDB_MAPASYNC";
  if (bad.empty()) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                "LMDB environment has asynchronous-sync flags" + bad +
                    "; protocol state must be committed with a real sync");
}

LmdbStore::LmdbStore(std::string dir, bool read_only)
    : dir_(std::move(dir)), read_only_(read_only) {}

LmdbStore::~LmdbStore() {
  {
    // A clean close leaves LMDB complete (the journal all stale), so that tools and older
    // binaries that read only LMDB see everything. Best effort: the next Open() replays anyway.
    std::lock_guard<std::mutex> lock(mu_);
    if (journal_ != nullptr && journal_->tail_bytes() > 0 && fatal_.ok()) {
      if (Status s = Checkpoint("checkpoint at close", nullptr, nullptr); !s.ok()) {
        LOG(WARNING) << s.message() << "; the journal will be replayed at the next open";
      }
    }
    journal_.reset();
  }
  if (env_ != nullptr) mdb_env_close(env_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
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
  STORE_RETURN_IF_ERROR(store->LockDirectory());
  std::lock_guard<std::mutex> lock(store->mu_);
  STORE_RETURN_IF_ERROR(store->OpenWritable(options, created_dir));
  return Result<std::unique_ptr<LmdbStore>>(std::move(store));
}

Status LmdbStore::LockDirectory() {
  const std::string lock_path = dir_ + "/" + kLockFileName;
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return Status(StatusCode::kIoError, "cannot open " + lock_path + ": " + strerror(errno));
  }
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
  const int err = errno;
  if (err == EWOULDBLOCK) {
    return Status(
        StatusCode::kFailedPrecondition,
        "data directory " + dir_ + " is in use by another process (" + lock_path + " is locked)");
  }
  return Status(StatusCode::kIoError, "cannot lock " + lock_path + ": " + strerror(err));
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

Result<std::unique_ptr<LmdbStore>> LmdbStore::OpenForInspection(const std::string& dir) {
  if (dir.empty()) return Status(StatusCode::kInvalidArgument, "data_dir must not be empty");
  struct stat st;
  const std::string data_path = dir + "/data.mdb";
  if (stat(data_path.c_str(), &st) != 0) {
    return Status(StatusCode::kNotFound,
                  "no LMDB store in " + dir + " (" + data_path + ": " + strerror(errno) + ")");
  }
  std::unique_ptr<LmdbStore> store(new LmdbStore(dir, /*read_only=*/true));
  {
    std::lock_guard<std::mutex> lock(store->mu_);
    STORE_RETURN_IF_ERROR(store->OpenEnv(MDB_RDONLY | MDB_NOTLS, 0, LmdbOptions().readers_max));
    STORE_RETURN_IF_ERROR(store->OpenDatabasesReadOnly());
    store->map_bytes_max_ = store->map_bytes_;
  }
  return Result<std::unique_ptr<LmdbStore>>(std::move(store));
}

Status LmdbStore::Annotate(const Status& s) const {
  if (s.ok()) return s;
  return Status(s.code(), "lmdb store " + dir_ + ": " + s.message());
}

Status LmdbStore::OpenEnv(unsigned flags, size_t map_bytes, unsigned readers_max) {
  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) {
    env_ = nullptr;
    return Annotate(MdbStatus(rc, "mdb_env_create"));
  }
  if ((rc = mdb_env_set_maxdbs(env_, kDbsMax)) != MDB_SUCCESS ||
      (rc = mdb_env_set_maxreaders(env_, readers_max)) != MDB_SUCCESS) {
    return Annotate(MdbStatus(rc, "configuring the LMDB environment"));
  }
  // The map size is left unset here so that LMDB adopts the size the last run stored (at least
  // what the data needs); it is raised to the configured size below.
  rc = mdb_env_open(env_, dir_.c_str(), flags, 0644);
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "mdb_env_open"));

  unsigned got_flags = 0;
  if ((rc = mdb_env_get_flags(env_, &got_flags)) != MDB_SUCCESS) {
    return Annotate(MdbStatus(rc, "mdb_env_get_flags"));
  }
  STORE_RETURN_IF_ERROR(Annotate(CheckDurableEnvFlags(got_flags)));

  int dead = 0;
  if ((rc = mdb_reader_check(env_, &dead)) != MDB_SUCCESS) {
    return Annotate(MdbStatus(rc, "mdb_reader_check"));
  }
  if (dead > 0) LOG(WARNING) << "lmdb store " << dir_ << ": cleared " << dead << " stale readers";

  MDB_envinfo info;
  mdb_env_info(env_, &info);
  map_bytes_ = info.me_mapsize;
  if (read_only_) return Status::Ok();
  // A new environment (nothing committed past its two meta pages) starts at the configured
  // size; an existing one keeps the size it grew to, if larger.
  const bool fresh = info.me_last_pgno < 2;
  const size_t target =
      fresh ? RoundUpToPage(map_bytes) : std::max(RoundUpToPage(map_bytes), map_bytes_);
  if (target != map_bytes_) {
    if ((rc = mdb_env_set_mapsize(env_, target)) != MDB_SUCCESS) {
      return Annotate(MdbStatus(rc, "setting the LMDB map size to " + SizeText(target)));
    }
    mdb_env_info(env_, &info);
    map_bytes_ = info.me_mapsize;
  }
  return Status::Ok();
}

Status LmdbStore::CreateOrCheckIdentity(const StoreIdentity& want, bool* created) {
  *created = false;
  Txn txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, txn.out());
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
  Cursor cursor;
  if ((rc = cursor.Open(txn->get(), main_dbi)) != MDB_SUCCESS) {
    return MdbStatus(rc, "opening a main database cursor");
  }
  MDB_val key;
  MDB_val value;
  for (rc = cursor.Get(&key, &value, MDB_FIRST); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    const std::string_view k = View(key);
    if (k != kMetaDb && k != kLogDb) {
      return Status(StatusCode::kFailedPrecondition,
                    "not a Ballot store: its LMDB main database holds key " + HexBytes(k) +
                        "; refusing to open it");
    }
  }
  if (rc != MDB_NOTFOUND) return MdbStatus(rc, "reading the main database");
  return Status::Ok();
}

Status LmdbStore::OpenDatabasesReadOnly() {
  Txn txn;
  STORE_RETURN_IF_ERROR(BeginRead(&txn));
  const int meta_rc = mdb_dbi_open(txn.get(), kMetaDb, 0, &meta_dbi_);
  const int log_rc = mdb_dbi_open(txn.get(), kLogDb, 0, &log_dbi_);
  if (meta_rc == MDB_NOTFOUND && log_rc == MDB_NOTFOUND) return Status::Ok();  // empty store
  if (meta_rc != MDB_SUCCESS) return Annotate(MdbStatus(meta_rc, "opening the meta database"));
  if (log_rc != MDB_SUCCESS) return Annotate(MdbStatus(log_rc, "opening the log database"));
  const int rc = txn.Commit();  // keeps the database handles for later transactions
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "opening the databases"));
  have_dbs_ = true;
  return Status::Ok();
}

Status LmdbStore::BeginRead(Txn* txn) {
  int rc = MDB_SUCCESS;
  for (int attempt = 0; attempt < kBeginAttemptsMax; ++attempt) {
    rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, txn->out());
    if (rc == MDB_SUCCESS) return Status::Ok();
    if (rc == MDB_READERS_FULL) {
      // Slots held by dead processes are reclaimed; live ones are a real overload.
      int dead = 0;
      mdb_reader_check(env_, &dead);
      if (dead > 0)
        LOG(WARNING) << "lmdb store " << dir_ << ": cleared " << dead << " stale readers";
      continue;
    }
    if (rc == MDB_MAP_RESIZED) {  // another process grew the map: adopt its size
      if (mdb_env_set_mapsize(env_, 0) != MDB_SUCCESS) break;
      MDB_envinfo info;
      mdb_env_info(env_, &info);
      map_bytes_ = info.me_mapsize;
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
  std::lock_guard<std::mutex> lock(mu_);
  STORE_RETURN_IF_ERROR(CheckWritable());
  if (batch.empty()) return Status::Ok();
  if (journal_ != nullptr) return WriteJournaled(batch);
  return CommitWithRetry(EstimateBatchBytes(batch), "write",
                         [&](Txn* txn) { return WriteBatchIn(txn, batch); });
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
      MDB_val k = Val(key);
      MDB_val v = Val(scratch_);
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
  std::lock_guard<std::mutex> lock(mu_);
  STORE_RETURN_IF_ERROR(CheckWritable());
  CHECK_GT(snapshot.applied_below, 0u) << "snapshot applied_below 0";
  if (journal_ != nullptr) return Checkpoint("save snapshot", nullptr, &snapshot);
  const size_t need = snapshot.data.size() + 4 * (kRecordHeaderBytes + 64);
  return CommitWithRetry(need, "save snapshot",
                         [&](Txn* txn) { return SaveSnapshotIn(txn, snapshot); });
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
  MDB_val k = Val(kSnapshotDataKey);
  MDB_val v;
  v.mv_size = kRecordHeaderBytes + 8 + snapshot.data.size();
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
  Cursor cursor;
  if ((rc = cursor.Open(t, log_dbi_)) != MDB_SUCCESS) return Attempt::Mdb(rc, "opening a cursor");
  MDB_val key;
  MDB_val value;
  while ((rc = cursor.Get(&key, &value, MDB_FIRST)) == MDB_SUCCESS && View(key) < bound) {
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
    const int rc = mdb_txn_begin(env_, nullptr, 0, txn.out());
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
    STORE_RETURN_IF_ERROR(CommitWithRetry(2 * js.end_offset, "journal replay", [&](Txn* txn) {
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
      Journal::Open(dir_, 2 * options.journal_checkpoint_bytes);
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
  const auto fits = [&] {
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
  size_t need = 2 * bytes.size();
  if (batch != nullptr) need += EstimateBatchBytes(*batch);
  if (snapshot != nullptr) need += snapshot->data.size() + 4 * (kRecordHeaderBytes + 64);
  STORE_RETURN_IF_ERROR(CommitWithRetry(need, what, [&](Txn* txn) {
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

Result<JournalReport> LmdbStore::InspectJournal() {
  std::lock_guard<std::mutex> lock(mu_);
  JournalReport report;
  std::string bytes;
  if (Status s = Journal::ReadFile(dir_, &bytes); !s.ok()) {
    if (s.code() == StatusCode::kNotFound) return report;
    return Annotate(s);
  }
  report.exists = true;
  report.file_bytes = bytes.size();
  if (have_dbs_) {
    Txn txn;
    STORE_RETURN_IF_ERROR(BeginRead(&txn));
    STORE_RETURN_IF_ERROR(Annotate(ReadJournalSeq(&txn, &report.checkpoint_seq)));
  }
  Result<JournalScan> scan = ScanJournal(bytes, report.checkpoint_seq);
  if (!scan.ok()) {
    report.status = Annotate(scan.status());
    return report;
  }
  report.pending_records = scan.value().records.size();
  for (const JournalRecord& r : scan.value().records) {
    report.pending_bytes += JournalRecordBytes(r.payload.size());
  }
  report.torn_tail = scan.value().torn_tail;
  return report;
}

// --- Space ---

size_t LmdbStore::UsedBytes() {
  MDB_envinfo info;
  MDB_stat stat;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &stat);
  return (info.me_last_pgno + 1) * stat.ms_psize;
}

Status LmdbStore::GrowMap(size_t need_bytes, bool map_full) {
  const size_t want = UsedBytes() + 2 * need_bytes + kGrowSlackBytes;
  if (!map_full && want <= map_bytes_ / 4 * 3) return Status::Ok();
  size_t target = std::max(map_bytes_ * 2, RoundUpToPage(want / 3 * 4));
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
  const int rc = mdb_env_set_mapsize(env_, map_bytes);
  if (rc != MDB_SUCCESS) {
    // LMDB has unmapped the old map and could not map the new one: the environment is unusable.
    fatal_ = Annotate(MdbStatus(rc, "resizing the LMDB map to " + SizeText(map_bytes)));
    LOG(ERROR) << fatal_.message();
    return fatal_;
  }
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  if (info.me_mapsize > map_bytes_) {
    ++map_grows_;
    LOG(INFO) << "lmdb store " << dir_ << ": map grown from " << SizeText(map_bytes_) << " to "
              << SizeText(info.me_mapsize);
  }
  map_bytes_ = info.me_mapsize;
  return Status::Ok();
}

Status LmdbStore::Preallocate(size_t bytes) {
  if (!preallocate_ || read_only_) return Status::Ok();
  int fd = -1;
  if (mdb_env_get_fd(env_, &fd) != MDB_SUCCESS || fd < 0) return Status::Ok();
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
  std::lock_guard<std::mutex> lock(mu_);
  map_bytes_max_ = std::max(RoundDownToPage(map_bytes_max), map_bytes_);
  LOG(INFO) << "lmdb store " << dir_ << ": map_bytes_max set to " << SizeText(map_bytes_max_);
}

LmdbStats LmdbStore::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  LmdbStats s;
  s.commits = commits_;
  s.map_grows = map_grows_;
  s.map_bytes = map_bytes_;
  s.map_bytes_max = map_bytes_max_;
  s.used_bytes = env_ != nullptr ? UsedBytes() : 0;
  s.no_space = no_space_;
  s.failed = !fatal_.ok();
  s.journal_syncs = journal_ ? journal_->syncs() : 0;
  s.checkpoints = checkpoints_;
  s.journal_bytes = journal_ ? journal_->tail_bytes() : 0;
  return s;
}

void LmdbStore::TEST_FailNextCommit(int error) {
  std::lock_guard<std::mutex> lock(mu_);
  test_commit_error_ = error;
}

// --- Reading ---

Result<paxos::DurableState> LmdbStore::Load() {
  std::lock_guard<std::mutex> lock(mu_);
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

  Cursor cursor;
  int rc = cursor.Open(t, log_dbi_);
  if (rc != MDB_SUCCESS) return MdbStatus(rc, "opening a log cursor");
  const std::string start = SlotKey(state->applied_below);
  MDB_val key = Val(start);
  MDB_val value;
  paxos::Slot expect = state->applied_below;  // next slot that must exist below chosen_below
  for (rc = cursor.Get(&key, &value, MDB_SET_RANGE); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    paxos::Slot slot = 0;
    if (Status s = DecodeSlotKey(View(key), &slot); !s.ok()) {
      return Corrupt("log key " + HexBytes(View(key)) + ": " + s.message());
    }
    std::string_view payload;
    STORE_RETURN_IF_ERROR(
        OpenRecord(RecordKind::kEntry, View(key), View(value), SlotName(slot), &payload));
    paxos::Entry entry;
    if (Status s = DecodeEntryPayload(slot, payload, &entry); !s.ok()) {
      return Corrupt(SlotName(slot) + ": " + s.message());
    }
    if (slot < state->chosen_below) {
      if (slot != expect) return MissingChosenSlot(expect, state->chosen_below, state->applied_below);
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
  std::lock_guard<std::mutex> lock(mu_);
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
  std::lock_guard<std::mutex> lock(mu_);
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

Status LmdbStore::Inspect(RecordVisitor* visitor) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!have_dbs_) return Status::Ok();
  Txn txn;
  STORE_RETURN_IF_ERROR(BeginRead(&txn));
  STORE_RETURN_IF_ERROR(InspectMeta(&txn, visitor));
  return InspectLog(&txn, visitor);
}

Status LmdbStore::InspectMeta(Txn* txn, RecordVisitor* visitor) {
  Cursor cursor;
  int rc = cursor.Open(txn->get(), meta_dbi_);
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "opening a meta cursor"));
  MDB_val key;
  MDB_val value;
  for (rc = cursor.Get(&key, &value, MDB_FIRST); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    const std::string_view k = View(key);
    const std::string_view record = View(value);
    std::string_view payload;
    Status s;
    if (k == kIdentityKey) {
      StoreIdentity id;
      s = OpenRecord(RecordKind::kIdentity, k, record, k, &payload);
      if (s.ok()) s = DecodeIdentity(payload, &id);
      if (s.ok()) visitor->OnIdentity(id);
    } else if (k == kPromisedKey) {
      paxos::Ballot b;
      s = OpenRecord(RecordKind::kPromised, k, record, k, &payload);
      if (s.ok()) s = DecodeBallot(payload, &b);
      if (s.ok()) visitor->OnPromised(b);
    } else if (k == kChosenBelowKey) {
      paxos::Slot slot = 0;
      s = OpenRecord(RecordKind::kChosenBelow, k, record, k, &payload);
      if (s.ok()) s = DecodeSlot(payload, &slot);
      if (s.ok()) visitor->OnChosenBelow(slot);
    } else if (k == kSnapshotKey) {
      SnapshotMeta meta;
      s = OpenRecord(RecordKind::kSnapshotMeta, k, record, k, &payload);
      if (s.ok()) s = DecodeSnapshotMeta(payload, &meta);
      if (s.ok()) visitor->OnSnapshot(meta);
    } else if (k == kJournalSeqKey) {
      paxos::Slot seq = 0;
      s = OpenRecord(RecordKind::kJournalSeq, k, record, k, &payload);
      if (s.ok()) s = DecodeSlot(payload, &seq);
      if (s.ok()) visitor->OnJournalSeq(seq);
    } else if (k == kSnapshotDataKey) {
      paxos::Slot applied_below = 0;
      std::string data;
      s = OpenRecord(RecordKind::kSnapshotData, k, record, k, &payload);
      if (s.ok()) s = DecodeSnapshotData(payload, &applied_below, &data);
      if (s.ok()) visitor->OnSnapshotData(applied_below, data.size());
    } else {
      s = Corrupt("unknown meta key " + HexBytes(k));
    }
    if (!s.ok()) {
      const bool named = s.message().rfind(std::string(k) + ":", 0) == 0;
      visitor->OnBadRecord(0, named ? s : Corrupt(std::string(k) + ": " + s.message()));
    }
  }
  if (rc != MDB_NOTFOUND) return Annotate(MdbStatus(rc, "reading the meta database"));
  return Status::Ok();
}

Status LmdbStore::InspectLog(Txn* txn, RecordVisitor* visitor) {
  Cursor cursor;
  int rc = cursor.Open(txn->get(), log_dbi_);
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "opening a log cursor"));
  MDB_val key;
  MDB_val value;
  for (rc = cursor.Get(&key, &value, MDB_FIRST); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    paxos::Slot slot = 0;
    if (Status s = DecodeSlotKey(View(key), &slot); !s.ok()) {
      visitor->OnBadRecord(0, Corrupt("log key " + HexBytes(View(key)) + ": " + s.message()));
      continue;
    }
    std::string_view payload;
    paxos::Entry entry;
    Status s = OpenRecord(RecordKind::kEntry, View(key), View(value), SlotName(slot), &payload);
    if (s.ok()) {
      if (Status d = DecodeEntryPayload(slot, payload, &entry); !d.ok()) {
        s = Corrupt(SlotName(slot) + ": " + d.message());
      }
    }
    if (s.ok()) {
      visitor->OnEntry(entry, value.mv_size);
    } else {
      visitor->OnBadRecord(slot, s);
    }
  }
  if (rc != MDB_NOTFOUND) return Annotate(MdbStatus(rc, "reading the log"));
  return Status::Ok();
}

}  // namespace ballot::store
