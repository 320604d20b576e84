// LmdbStore: the production Store, kept in an LMDB environment in one data directory.
//
// Layout. Two named LMDB databases:
//   "meta"  identity | promised | chosen_below | snapshot | snapshot_data   (one record each)
//   "log"   one record per accepted slot, keyed by the slot as 8 big-endian bytes
// Every value is a checksummed record (store/record_codec.h); every read verifies it, and a
// mismatch is reported as kCorruption naming the record ("slot 42"), never treated as absent.
//
// Durability. With options.journal (the default), Write() appends the batch as one checksummed
// record to the preallocated journal DIR/journal (store/journal.h) and returns Ok after ONE
// fdatasync of it. LMDB is written behind the journal: once journal_checkpoint_bytes have been
// appended, the next Write() first folds every journaled batch into LMDB in one durable LMDB
// transaction (a checkpoint, which records the last folded sequence number as "journal_seq"),
// then restarts the journal from its beginning. SaveSnapshot() is such a checkpoint too (the
// journaled batches, then the snapshot, in one transaction). Open() replays the journal records
// newer than LMDB's journal_seq into LMDB before anything else: a record cut by a crash at the
// tail is discarded (it was never acknowledged); a damaged record followed by intact newer ones
// is corruption and Open() fails. docs/durability.md gives the ordering argument.
// Without options.journal, Write() and SaveSnapshot() are each one LMDB write transaction.
// Every LMDB transaction is committed with LMDB's durable sync (fdatasync of the data pages, then
// an O_DSYNC meta page write) before it returns Ok. MDB_NOSYNC, MDB_NOMETASYNC and MDB_MAPASYNC
// are never used and Open() refuses an environment that reports any of them. A commit or journal
// append that fails with an I/O error makes the store fatal: that call and every later write
// return kIoError, because a failed sync must never be retried and then acknowledged. The
// process should restart and recover from what is on disk. (A commit failing with ENOSPC, EDQUOT
// or EFBIG is kNoSpace instead, and not fatal: LMDB writes the meta page last, so such a commit
// left the previous state intact, and a retry rewrites every page of the new transaction rather
// than trusting pages whose write-back failed. With the journal, a checkpoint that fails for
// space leaves the batches in the journal, and writes go on into the journal until it is full.)
//
// Space. The LMDB map starts at options.map_bytes and doubles (up to map_bytes_max) before a
// write could fill it, or when a write does fill it. data.mdb is preallocated (fallocate) to the
// map size whenever the map grows, so a commit never needs new disk blocks: a full disk shows up
// as a failed preallocation (kNoSpace, nothing written) instead of a short write in the middle of
// a commit, which LMDB 0.9 could only report as EIO. When neither the map nor the disk has room,
// the write returns kNoSpace, nothing of it is visible, the store logs one line and refuses
// writes until one fits again (raise the limit with SetMapBytesMax(), or free disk space).
//
// Ownership. A data directory is used by one LmdbStore at a time: Open() holds an exclusive
// flock on DIR/store.lock and refuses a second writer. OpenForInspection() takes no lock and
// opens LMDB read-only, so the verifier can run next to a live server.
//
// Threads. Every method may be called from any thread; calls are serialized by an internal mutex.
// The runtime's storage thread is meant to be the only writer.
#ifndef BALLOT_STORE_LMDB_STORE_H_
#define BALLOT_STORE_LMDB_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/ready.h"
#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/thread_annotations.h"
#include "store/record_codec.h"
#include "store/store.h"

namespace ballot::store {

class DirectoryLock;  // store/lmdb_env.h; only store/ links LMDB.
class Journal;        // store/journal.h
class LmdbEnv;        // store/lmdb_env.h

inline constexpr size_t kMiB = size_t{1} << 20;
inline constexpr size_t kGiB = size_t{1} << 30;

struct LmdbOptions {
  std::string dir;          // created if missing (its parent must exist or be creatable)
  uint64_t cluster_id = 0;  // must be non-zero
  paxos::NodeId node_id = paxos::kNoNode;  // 1..paxos::kNodeIdMax
  size_t map_bytes = 64 * kMiB;            // initial LMDB map size (and data.mdb preallocation)
  size_t map_bytes_max = 16 * kGiB;        // the map never grows beyond this
  unsigned readers_max = 126;              // LMDB reader table slots
  // Write-ahead journal in front of LMDB: one device flush per Write() instead of two.
  bool journal = true;
  // A checkpoint (a durable LMDB commit of the journaled batches) after this many journal bytes.
  // The journal file is preallocated to twice this. A batch larger than this is committed to
  // LMDB directly instead.
  size_t journal_checkpoint_bytes = 1 * kMiB;
};

struct LmdbStats {
  uint64_t commits = 0;        // durable LMDB write transactions (checkpoints included)
  uint64_t journal_syncs = 0;  // journal records appended (one fdatasync each)
  uint64_t checkpoints = 0;    // LMDB commits that folded in journaled batches
  size_t journal_bytes = 0;    // journal bytes not yet checkpointed into LMDB
  uint64_t map_grows = 0;      // times the map was enlarged
  size_t map_bytes = 0;        // current map size
  size_t map_bytes_max = 0;    // current limit
  size_t used_bytes = 0;       // high-water mark of pages in use
  bool no_space = false;       // the last write (or the checkpoint before it) failed for space
  bool failed = false;         // a commit failed with an I/O error; writes are refused for good
};

// What LmdbStore::Inspect() reports, record by record: first the "meta" database in key order,
// then every slot of the "log" database in slot order.
class RecordVisitor {
 public:
  virtual ~RecordVisitor() = default;
  virtual void OnIdentity(const StoreIdentity& identity) = 0;
  virtual void OnPromised(paxos::Ballot promised) = 0;
  virtual void OnChosenBelow(paxos::Slot chosen_below) = 0;
  virtual void OnSnapshot(const SnapshotMeta& meta) = 0;
  // The snapshot's data record; `applied_below` is the copy stored inside it.
  virtual void OnSnapshotData(paxos::Slot applied_below, uint64_t data_bytes) = 0;
  // LMDB's "journal_seq": the last journal record folded into LMDB.
  virtual void OnJournalSeq(uint64_t /*seq*/) {}
  // `record_bytes` is the size of the stored record (header and payload).
  virtual void OnEntry(const paxos::Entry& entry, size_t record_bytes) = 0;
  // A record that failed its checksum or did not decode, or a key that should not exist.
  // `status` is kCorruption and names the record; `slot` is its slot for a log record whose key
  // is readable, else 0.
  virtual void OnBadRecord(paxos::Slot slot, const Status& status) = 0;
};

// What InspectJournal() found.
struct JournalReport {
  bool exists = false;           // DIR/journal exists
  size_t file_bytes = 0;         // its size (the preallocation)
  uint64_t checkpoint_seq = 0;   // LMDB's journal_seq
  uint64_t pending_records = 0;  // newer records (replayed at the next open)
  uint64_t pending_bytes = 0;
  bool torn_tail = false;  // the chain ends on a cut record (never acknowledged)
  Status status;           // kCorruption if recovery would refuse the journal
};

class LmdbStore final : public Store {
 public:
  // Opens (creating if needed) the store in options.dir for read and write. The first open
  // records (cluster_id, node_id) in the store; later opens must pass the same pair.
  // Errors: kInvalidArgument (bad options), kFailedPrecondition (the directory belongs to another
  // cluster or node, was written by a newer format or by something other than Ballot, is locked
  // by another process, or the LMDB environment reports an asynchronous-sync flag), kCorruption
  // (unreadable identity, or data without an identity), kNoSpace (data.mdb cannot be preallocated),
  // kIoError.
  static Result<std::unique_ptr<LmdbStore>> Open(const LmdbOptions& options);

  // Opens an existing store read-only, without checking its identity or taking the directory
  // lock. Write() and SaveSnapshot() return kFailedPrecondition. kNotFound if there is no store.
  static Result<std::unique_ptr<LmdbStore>> OpenForInspection(const std::string& dir);

  ~LmdbStore() override;
  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

  // Store. See store/store.h for the contracts; in addition:
  // Write(): CHECK-fails if batch.promised is lower than the stored promise or an entry has slot
  // 0 (bugs in the caller). chosen_below is raised, never lowered. Entries below the snapshot's
  // applied_below are already covered by the snapshot and are not written. After kNoSpace the
  // caller must retry the same batch (or one containing it) before writing anything later.
  Status Write(const paxos::PersistBatch& batch) override;
  // Entries from the snapshot's applied_below on, in slot order, every checksum verified.
  // kCorruption also if a slot in [applied_below, chosen_below) is missing or applied_below >
  // chosen_below: the node must not serve from such a state.
  Result<paxos::DurableState> Load() override;
  // Writes the snapshot and deletes every entry below snapshot.applied_below in one durable
  // transaction; raises chosen_below to applied_below if it was lower (applied implies chosen).
  // CHECK-fails if applied_below is 0 or lower than the stored snapshot's.
  Status SaveSnapshot(const Snapshot& snapshot) override;
  Result<std::optional<Snapshot>> LoadSnapshot() override;

  // The identity recorded in the store; kNotFound if none (an inspection of an empty store).
  Result<StoreIdentity> LoadIdentity();

  // Visits every record (see RecordVisitor), decoding and verifying each; bad records are
  // reported to the visitor, not returned. Returns non-ok only if LMDB itself cannot be read.
  Status Inspect(RecordVisitor* visitor);

  // What DIR/journal holds beyond LMDB's checkpoint (see JournalReport). Reads the file; on a
  // live server the journal may move underneath, so a kCorruption here is worth a second look.
  Result<JournalReport> InspectJournal();

  // Raises (or lowers, down to the current map size) the growth limit. A store refusing writes
  // with kNoSpace because its map is at the limit accepts them again once the limit is raised.
  void SetMapBytesMax(size_t map_bytes_max);

  LmdbStats stats();
  const std::string& dir() const { return dir_; }
  bool read_only() const { return read_only_; }

  // Test hook: the next commit (with the journal: the next journal append, or the checkpoint
  // before it) is aborted instead and reported as failing with `error` (an errno or LMDB code),
  // as if the disk had failed at that moment.
  void TEST_FailNextCommit(int error);

 private:
  struct Attempt;
  class Txn;

  LmdbStore(std::string dir, bool read_only);
  Status OpenWritable(const LmdbOptions& options, bool created_dir) REQUIRES(mu_);
  Status OpenEnv(unsigned flags, size_t map_bytes, unsigned readers_max) REQUIRES(mu_);
  // Opens the databases; records `want` in a new store (*created = true) or checks it.
  Status CreateOrCheckIdentity(const StoreIdentity& want, bool* created) REQUIRES(mu_);
  Status CheckOnlyOurDatabases(Txn* txn) REQUIRES(mu_);
  Status OpenDatabasesReadOnly() REQUIRES(mu_);

  Status Annotate(const Status& s) const;  // prefixes "lmdb store DIR: "
  Status CheckWritable() const REQUIRES(mu_);
  template <typename Body>
  Status CommitWithRetry(size_t need_bytes, const char* what, Body body) REQUIRES(mu_);
  Attempt WriteBatchIn(Txn* txn, const paxos::PersistBatch& batch) REQUIRES(mu_);
  Attempt SaveSnapshotIn(Txn* txn, const Snapshot& snapshot) REQUIRES(mu_);
  Attempt Commit(Txn* txn) REQUIRES(mu_);
  Status NoSpace(Status status) REQUIRES(mu_);
  Status Fatal(Status status) REQUIRES(mu_);

  // The journal (store/journal.h).
  Status RecoverJournal(const LmdbOptions& options) REQUIRES(mu_);
  Status WriteJournaled(const paxos::PersistBatch& batch) REQUIRES(mu_);
  // One durable LMDB transaction: the journaled batches, then `batch` and/or `snapshot` if given,
  // then journal_seq. Restarts the journal on success.
  Status Checkpoint(const char* what, const paxos::PersistBatch* batch, const Snapshot* snapshot)
      REQUIRES(mu_);
  Attempt ReplayIn(Txn* txn, const std::vector<std::string_view>& payloads) REQUIRES(mu_);
  Status ReadJournalSeq(Txn* txn, uint64_t* seq) REQUIRES(mu_);
  // The payloads of the journal records newer than `checkpoint_seq`, in order; *bytes holds them.
  Status PendingPayloads(uint64_t checkpoint_seq, std::string* bytes,
                         std::vector<std::string_view>* payloads) REQUIRES(mu_);

  Status GrowMap(size_t need_bytes, bool map_full) REQUIRES(mu_);
  Status ResizeMap(size_t map_bytes) REQUIRES(mu_);
  Status Preallocate(size_t bytes) REQUIRES(mu_);
  size_t UsedBytes() REQUIRES(mu_);
  Status BeginRead(Txn* txn) REQUIRES(mu_);
  Status LoadIn(Txn* txn, paxos::DurableState* state) REQUIRES(mu_);
  Status InspectMeta(Txn* txn, RecordVisitor* visitor) REQUIRES(mu_);
  Status InspectLog(Txn* txn, RecordVisitor* visitor) REQUIRES(mu_);

  // Constant after Open.
  const std::string dir_;
  const bool read_only_;
  // Held from Open() until the destructor, after env_ is closed; null when inspecting.
  std::unique_ptr<DirectoryLock> lock_;

  Mutex mu_;  // guards everything below, and every LMDB call
  std::unique_ptr<LmdbEnv> env_ GUARDED_BY(mu_);
  unsigned meta_dbi_ GUARDED_BY(mu_) = 0;
  unsigned log_dbi_ GUARDED_BY(mu_) = 0;
  bool have_dbs_ GUARDED_BY(mu_) = false;  // false only when inspecting a store that has none yet
  size_t map_bytes_ GUARDED_BY(mu_) = 0;
  size_t map_bytes_max_ GUARDED_BY(mu_) = 0;
  bool preallocate_ GUARDED_BY(mu_) = true;  // cleared if the file system cannot fallocate
  bool no_space_ GUARDED_BY(mu_) = false;
  Status fatal_ GUARDED_BY(mu_);  // non-ok once a commit failed with an I/O error
  uint64_t commits_ GUARDED_BY(mu_) = 0;
  uint64_t map_grows_ GUARDED_BY(mu_) = 0;
  int test_commit_error_ GUARDED_BY(mu_) = 0;
  std::string scratch_ GUARDED_BY(mu_);  // record encoding buffer, reused across writes
  // Null without options.journal (or read-only).
  std::unique_ptr<Journal> journal_ GUARDED_BY(mu_);
  size_t journal_checkpoint_bytes_ GUARDED_BY(mu_) = 0;
  // The last journal record appended (or folded into LMDB).
  uint64_t journal_seq_ GUARDED_BY(mu_) = 0;
  uint64_t checkpoint_seq_ GUARDED_BY(mu_) = 0;  // LMDB's journal_seq
  paxos::Ballot promised_ GUARDED_BY(mu_);       // the newest promise, journaled or in LMDB
  // Non-ok if LMDB's promise could not be read at open.
  Status promised_status_ GUARDED_BY(mu_);
  uint64_t checkpoints_ GUARDED_BY(mu_) = 0;
  std::string journal_scratch_ GUARDED_BY(mu_);  // batch encoding buffer, reused across writes
};

}  // namespace ballot::store

#endif  // BALLOT_STORE_LMDB_STORE_H_
