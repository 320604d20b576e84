#include "store/mem_store.h"

#include <algorithm>

namespace ballot::store {

void MemStore::ApplyTo(const paxos::PersistBatch& batch, Image* image) {
  if (batch.promised) {
    CHECK(*batch.promised >= image->promised) << "promised ballot went backwards";
    image->promised = *batch.promised;
  }
  for (const paxos::Entry& e : batch.entries) {
    CHECK_GT(e.slot, 0u);
    image->entries[e.slot] = e;
  }
  if (batch.chosen_below) image->chosen_below = std::max(image->chosen_below, *batch.chosen_below);
}

void MemStore::Stage(const paxos::PersistBatch& batch) { staged_.push_back(batch); }

void MemStore::Sync() {
  for (const paxos::PersistBatch& b : staged_) ApplyTo(b, &durable_);
  staged_.clear();
}

void MemStore::Crash(const CrashFate& fate) {
  // One LMDB transaction is atomic: a torn commit is a lost one.
  if (fate.kind == CrashFate::kPersisted) Sync();
  staged_.clear();
}

Result<paxos::DurableState> MemStore::Load() {
  paxos::DurableState s;
  s.promised = durable_.promised;
  s.chosen_below = durable_.chosen_below;
  s.applied_below = durable_.snapshot ? durable_.snapshot->applied_below : 1;
  for (const auto& [slot, e] : durable_.entries) {
    if (slot >= s.applied_below) s.entries.push_back(e);
  }
  return s;
}

Status MemStore::SaveSnapshot(const Snapshot& snapshot) {
  durable_.snapshot = snapshot;
  // Applied implies chosen, as in LmdbStore.
  durable_.chosen_below = std::max(durable_.chosen_below, snapshot.applied_below);
  auto end = durable_.entries.lower_bound(snapshot.applied_below);
  durable_.entries.erase(durable_.entries.begin(), end);
  return Status::Ok();
}

Result<std::optional<Snapshot>> MemStore::LoadSnapshot() { return durable_.snapshot; }

}  // namespace ballot::store
