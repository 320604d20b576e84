// LmdbStore's offline inspection (store/lmdb_store.h: OpenForInspection, Inspect,
// InspectJournal): reading a store read-only, record by record, next to a live server or after a
// crash. store/store_inspect.h builds `ballotctl store verify|dump` on it.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "store/journal.h"
#include "store/lmdb_env.h"
#include "store/lmdb_store.h"
#include "store/lmdb_store_layout.h"
#include "store/status_macros.h"

namespace ballot::store {

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
    MutexLock lock(&store->mu_);
    STORE_RETURN_IF_ERROR(store->OpenEnv(MDB_RDONLY | MDB_NOTLS, 0, LmdbOptions().readers_max));
    STORE_RETURN_IF_ERROR(store->OpenDatabasesReadOnly());
    store->map_bytes_max_ = store->map_bytes_;
  }
  return Result<std::unique_ptr<LmdbStore>>(std::move(store));
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

Result<JournalReport> LmdbStore::InspectJournal() {
  MutexLock lock(&mu_);
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

Status LmdbStore::Inspect(RecordVisitor* visitor) {
  MutexLock lock(&mu_);
  if (!have_dbs_) return Status::Ok();
  Txn txn;
  STORE_RETURN_IF_ERROR(BeginRead(&txn));
  STORE_RETURN_IF_ERROR(InspectMeta(&txn, visitor));
  return InspectLog(&txn, visitor);
}

Status LmdbStore::InspectMeta(Txn* txn, RecordVisitor* visitor) {
  LmdbCursor cursor;
  int rc = cursor.Open(txn->get(), meta_dbi_);
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "opening a meta cursor"));
  MDB_val key;
  MDB_val value;
  for (rc = cursor.Get(&key, &value, MDB_FIRST); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    const std::string_view k = MdbView(key);
    const std::string_view record = MdbView(value);
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
  LmdbCursor cursor;
  int rc = cursor.Open(txn->get(), log_dbi_);
  if (rc != MDB_SUCCESS) return Annotate(MdbStatus(rc, "opening a log cursor"));
  MDB_val key;
  MDB_val value;
  for (rc = cursor.Get(&key, &value, MDB_FIRST); rc == MDB_SUCCESS;
       rc = cursor.Get(&key, &value, MDB_NEXT)) {
    paxos::Slot slot = 0;
    if (Status s = DecodeSlotKey(MdbView(key), &slot); !s.ok()) {
      visitor->OnBadRecord(0, Corrupt("log key " + HexBytes(MdbView(key)) + ": " + s.message()));
      continue;
    }
    std::string_view payload;
    paxos::Entry entry;
    Status s =
        OpenRecord(RecordKind::kEntry, MdbView(key), MdbView(value), SlotName(slot), &payload);
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
