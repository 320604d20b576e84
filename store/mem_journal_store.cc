#include "store/mem_journal_store.h"

#include <glog/logging.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "store/journal.h"
#include "store/journal_replay.h"
#include "store/record_codec.h"

namespace ballot::store {
namespace {

// splitmix64: picks the surviving sectors of a tear from CrashFate::tear_seed.
uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

MemJournalStore::MemJournalStore(size_t checkpoint_bytes)
    : checkpoint_bytes_(checkpoint_bytes),
      // Preallocated and zero-filled, as Journal::Open leaves a new file.
      file_(2 * checkpoint_bytes, '\0'),
      durable_file_(file_) {}

Result<paxos::DurableState> MemJournalStore::Replayed(const std::string& file) {
  Result<JournalScan> scan = ScanJournal(file, checkpoint_seq_);
  if (!scan.ok()) return scan.status();
  if (recovered_ && scan.value().last_seq != seq_) {
    // Not after a crash: every record this store appended was synced, and must read back.
    return Status(StatusCode::kCorruption, "journal: expected records up to seq " +
                                               std::to_string(seq_) + ", found up to " +
                                               std::to_string(scan.value().last_seq));
  }
  if (!recovered_ && scan.value().torn_tail) ++torn_tails_recovered_;
  std::vector<std::string_view> payloads;
  for (const JournalRecord& r : scan.value().records) payloads.push_back(r.payload);
  Result<paxos::DurableState> state = lmdb_.Load();
  if (!state.ok()) return state.status();
  if (Status s = ReplayJournal(payloads, &state.value()); !s.ok()) return s;
  seq_ = scan.value().last_seq;
  return state;
}

Status MemJournalStore::Checkpoint(const Snapshot* snapshot) {
  CHECK(in_flight_ == InFlight::kNone) << "a checkpoint with a write in flight";
  Result<paxos::DurableState> state = Replayed(file_);
  if (!state.ok()) return state.status();
  paxos::PersistBatch fold;
  fold.promised = state.value().promised;
  fold.entries = std::move(state.value().entries);
  fold.chosen_below = state.value().chosen_below;
  // One LMDB transaction: the fold, the snapshot and the new checkpoint seq land together.
  if (Status s = lmdb_.Write(fold); !s.ok()) return s;
  if (snapshot != nullptr) {
    if (Status s = lmdb_.SaveSnapshot(*snapshot); !s.ok()) return s;
  }
  checkpoint_seq_ = seq_;
  tail_ = 0;
  ++checkpoints_;
  return Status::Ok();
}

void MemJournalStore::Stage(const paxos::PersistBatch& batch) {
  CHECK(recovered_) << "a write before Load() after a crash";
  CHECK(in_flight_ == InFlight::kNone) << "a second write staged before the first was synced";
  std::string payload;
  EncodeBatchPayload(batch, &payload);
  const size_t record_bytes = JournalRecordBytes(payload.size());
  if (record_bytes > checkpoint_bytes_) {
    // Too large for the journal: LMDB, one transaction, after what the journal holds.
    Status s = Checkpoint(nullptr);
    CHECK(s.ok()) << "journal model: checkpoint failed: " << s.ToString();
    lmdb_.Stage(batch);
    in_flight_ = InFlight::kLmdb;
    return;
  }
  if (tail_ >= checkpoint_bytes_ || record_bytes > file_.size() - tail_) {
    Status s = Checkpoint(nullptr);
    CHECK(s.ok()) << "journal model: checkpoint failed: " << s.ToString();
  }
  std::string record;
  AppendJournalRecord(seq_ + 1, payload, &record);
  file_.replace(tail_, record.size(), record);
  in_flight_ = InFlight::kJournal;
  in_flight_begin_ = tail_;
  in_flight_end_ = tail_ + record.size();
  tail_ = in_flight_end_;
  ++seq_;
}

void MemJournalStore::Sync() {
  switch (in_flight_) {
    case InFlight::kNone:
      break;
    case InFlight::kJournal:
      std::copy(file_.begin() + in_flight_begin_, file_.begin() + in_flight_end_,
                durable_file_.begin() + in_flight_begin_);
      break;
    case InFlight::kLmdb:
      lmdb_.Sync();
      break;
  }
  in_flight_ = InFlight::kNone;
}

void MemJournalStore::Crash(const CrashFate& fate) {
  if (in_flight_ == InFlight::kLmdb) lmdb_.Crash(fate);
  if (in_flight_ == InFlight::kJournal && fate.kind != CrashFate::kLost) {
    for (size_t at = in_flight_begin_; at < in_flight_end_;) {
      const size_t sector = at / kSectorBytes;
      const size_t end = std::min(in_flight_end_, (sector + 1) * kSectorBytes);
      const bool survives =
          fate.kind == CrashFate::kPersisted || (Mix(fate.tear_seed ^ sector) & 1);
      if (survives) std::copy(file_.begin() + at, file_.begin() + end, durable_file_.begin() + at);
      at = end;
    }
  }
  in_flight_ = InFlight::kNone;
  file_ = durable_file_;  // the page cache is gone
  recovered_ = false;
}

Result<paxos::DurableState> MemJournalStore::Load() {
  CHECK(in_flight_ == InFlight::kNone) << "Load() with a write in flight";
  // As LmdbStore::Open: replay the journal into LMDB, then restart it at offset 0.
  Status s = Checkpoint(nullptr);
  if (!s.ok()) return s;
  recovered_ = true;
  if (forget_promise_) {
    lmdb_.TEST_ForgetPromise();
    forget_promise_ = false;
  }
  return lmdb_.Load();
}

Status MemJournalStore::SaveSnapshot(const Snapshot& snapshot) {
  // LmdbStore serializes Write and SaveSnapshot under its mutex: a write in flight finishes
  // (durably) first.
  Sync();
  return Checkpoint(&snapshot);
}

Result<std::optional<Snapshot>> MemJournalStore::LoadSnapshot() { return lmdb_.LoadSnapshot(); }

}  // namespace ballot::store
