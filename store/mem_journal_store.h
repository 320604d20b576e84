// MemJournalStore: the simulator's model of LmdbStore with its journal (store/journal.h), so that
// the simulator's crashes go through the journal's recovery.
//
// What is real and what is modelled:
//   real      the journal's record framing (AppendJournalRecord), the batch codec
//             (EncodeBatchPayload), recovery's scan (ScanJournal) and its replay onto the state
//             LMDB holds (ReplayJournal): the code LmdbStore runs;
//   modelled  the file (a byte buffer with a durable copy: what an fdatasync made durable) and
//             LMDB (a MemStore, written only by checkpoints, each one atomic), and the
//             checkpoint policy (every `checkpoint_bytes` of journal, restarting at offset 0,
//             as LmdbStore::WriteJournaled does).
//
// A crash with a write in flight (staged, not synced) applies a CrashFate to the record's bytes:
// lost, persisted, or torn (any subset of its 512-byte sectors new, the rest old: a stale record
// of an earlier round, zeros, or the start of the torn one). A batch too large for the journal
// goes to LMDB as one transaction, as in LmdbStore: lost or persisted whole.
//
// Load() recovers as LmdbStore::Open does: scan the durable journal from offset 0 against the
// checkpoint's seq, replay what is newer onto LMDB's state, fold it into LMDB, and restart the
// journal. A scan that reports corruption is returned as the error, which the simulator reports
// as a failure with its seed.
#ifndef BALLOT_STORE_MEM_JOURNAL_STORE_H_
#define BALLOT_STORE_MEM_JOURNAL_STORE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "store/mem_store.h"

namespace ballot::store {

class MemJournalStore final : public CachedStore {
 public:
  // Small by default so that simulated runs restart the journal often (LmdbStore's default is
  // megabytes). The file is twice as large, as in LmdbStore.
  static constexpr size_t kCheckpointBytesDefault = 4096;
  static constexpr size_t kSectorBytes = 512;

  explicit MemJournalStore(size_t checkpoint_bytes = kCheckpointBytesDefault);
  MemJournalStore(const MemJournalStore&) = delete;
  MemJournalStore& operator=(const MemJournalStore&) = delete;

  Result<paxos::DurableState> Load() override;
  Status SaveSnapshot(const Snapshot& snapshot) override;
  Result<std::optional<Snapshot>> LoadSnapshot() override;

  void Stage(const paxos::PersistBatch& batch) override;
  void Sync() override;
  void Crash(const CrashFate& fate) override;
  void TEST_ForgetPromise() override { forget_promise_ = true; }

  // What the model did, for tests and the simulator's summary.
  uint64_t checkpoints() const { return checkpoints_; }
  uint64_t torn_tails_recovered() const { return torn_tails_recovered_; }

 private:
  enum class InFlight { kNone, kJournal, kLmdb };

  // Folds every journaled record into LMDB atomically (with `snapshot`, if any) and restarts
  // the journal at offset 0. Everything journaled is synced when this runs.
  Status Checkpoint(const Snapshot* snapshot);
  // LMDB's state with the journal's newer records replayed onto it.
  Result<paxos::DurableState> Replayed(const std::string& file);

  const size_t checkpoint_bytes_;
  MemStore lmdb_;                // written only by checkpoints (and batches too large to journal)
  uint64_t checkpoint_seq_ = 0;  // the newest seq LMDB holds (stored with it, atomically)
  std::string file_;             // what the process wrote (the page cache)
  std::string durable_file_;     // what survives power loss
  size_t tail_ = 0;              // the next append's offset
  uint64_t seq_ = 0;             // the newest record's seq
  InFlight in_flight_ = InFlight::kNone;
  size_t in_flight_begin_ = 0, in_flight_end_ = 0;  // the unsynced record's bytes
  bool recovered_ = true;                           // false after a crash, until Load()
  bool forget_promise_ = false;
  uint64_t checkpoints_ = 0;
  uint64_t torn_tails_recovered_ = 0;
};

}  // namespace ballot::store

#endif  // BALLOT_STORE_MEM_JOURNAL_STORE_H_
