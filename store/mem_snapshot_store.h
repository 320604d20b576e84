// MemSnapshotStore: a SnapshotStore in memory, for tests and the simulator.
//
// Stores exactly the bytes a FileSnapshotStore would put in its files (store/snapshot_format.h),
// so ReadRaw, CreateRaw and the verifying reader behave identically. "Durable" means "in this
// object": the simulator keeps the store across a simulated crash of its node, and a sink that
// was not committed leaves nothing behind. Thread-safe; readers keep the bytes they read alive
// even if the snapshot is deleted meanwhile.
#ifndef BALLOT_STORE_MEM_SNAPSHOT_STORE_H_
#define BALLOT_STORE_MEM_SNAPSHOT_STORE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "statemachine/thread_annotations.h"
#include "store/snapshot_store.h"

namespace ballot::store {

class MemSnapshotStore final : public SnapshotStore {
 public:
  MemSnapshotStore() = default;
  MemSnapshotStore(const MemSnapshotStore&) = delete;
  MemSnapshotStore& operator=(const MemSnapshotStore&) = delete;

  Result<std::unique_ptr<SnapshotSink>> Create(paxos::Slot applied_below) override;
  Result<std::unique_ptr<SnapshotSink>> CreateRaw(paxos::Slot applied_below) override;
  Result<std::vector<SnapshotInfo>> List() override;
  Result<std::unique_ptr<SnapshotReader>> Open(paxos::Slot applied_below) override;
  Status ReadRaw(paxos::Slot applied_below, uint64_t offset, size_t bytes_max,
                 std::string* out) override;
  Status DeleteBelow(paxos::Slot applied_below) override;

  // Test hook: edits the stored raw bytes of a committed snapshot in place (to flip a byte,
  // truncate, append). False if there is no such snapshot.
  bool TEST_MutateRaw(paxos::Slot applied_below, const std::function<void(std::string*)>& edit);

 private:
  // Called by sinks on Commit: makes `raw` the snapshot for `applied_below`.
  void Install(paxos::Slot applied_below, std::string raw);
  std::shared_ptr<const std::string> Find(paxos::Slot applied_below);

  Mutex mu_;
  // applied_below -> raw bytes; shared so that open readers survive DeleteBelow.
  std::map<paxos::Slot, std::shared_ptr<const std::string>> snapshots_ GUARDED_BY(mu_);
};

}  // namespace ballot::store

#endif  // BALLOT_STORE_MEM_SNAPSHOT_STORE_H_
