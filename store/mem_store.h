// MemStore: an in-memory Store for tests and the simulator.
//
// It models a disk with a volatile cache: Stage() puts a batch in the cache, Sync() makes what
// is staged durable, Crash() throws the cache away. Write() is Stage() followed by Sync().
#ifndef BALLOT_STORE_MEM_STORE_H_
#define BALLOT_STORE_MEM_STORE_H_

#include <map>
#include <optional>
#include <vector>

#include "store/store.h"

namespace ballot::store {

class MemStore final : public Store {
 public:
  MemStore() = default;
  MemStore(const MemStore&) = delete;
  MemStore& operator=(const MemStore&) = delete;

  Status Write(const paxos::PersistBatch& batch) override;
  Result<paxos::DurableState> Load() override;
  Status SaveSnapshot(const Snapshot& snapshot) override;
  Result<std::optional<Snapshot>> LoadSnapshot() override;

  // The simulated disk: staged batches are lost by Crash() until Sync() makes them durable.
  void Stage(const paxos::PersistBatch& batch);
  void Sync();
  void Crash();
  // Test hook: pretend the disk forgot the promised ballot (planted bug "forget promise").
  void TEST_ForgetPromise() { durable_.promised = {}; }

 private:
  struct Image {
    paxos::Ballot promised;
    std::map<paxos::Slot, paxos::Entry> entries;
    paxos::Slot chosen_below = 1;
    std::optional<Snapshot> snapshot;
  };
  static void ApplyTo(const paxos::PersistBatch& batch, Image* image);

  Image durable_;
  std::vector<paxos::PersistBatch> staged_;
};

}  // namespace ballot::store

#endif  // BALLOT_STORE_MEM_STORE_H_
