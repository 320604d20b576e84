// Store: where a replica's durable protocol state lives.
//
// The runtime hands each Ready::persist batch to Write(); Write() returns only once the batch is
// durable (synced), as one atomic transaction. Load() returns everything ever written, which is
// what paxos::Replica restarts from. Implementations: store/mem_store.h (tests, simulator) and
// store/lmdb_store.h (production).
#ifndef BALLOT_STORE_STORE_H_
#define BALLOT_STORE_STORE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "paxos/ready.h"
#include "paxos/status.h"

namespace ballot::store {

// A state-machine snapshot: the state after applying every slot below applied_below.
struct Snapshot {
  paxos::Slot applied_below = 1;
  std::string data;
};

class Store {
 public:
  virtual ~Store() = default;

  // Writes the batch atomically and durably. On error nothing of the batch is visible, and the
  // caller must not acknowledge anything that depends on it: kNoSpace when the disk or map is
  // full, kIoError when a write or sync failed. (After kIoError the bytes may still have reached
  // the disk: a restart may find the whole batch, never a part of it. That is safe, since it was
  // never acknowledged.)
  virtual Status Write(const paxos::PersistBatch& batch) = 0;

  // Everything written so far. kCorruption if a record fails its checksum or an invariant.
  virtual Result<paxos::DurableState> Load() = 0;

  // Stores a snapshot atomically; afterwards entries below snapshot.applied_below may be dropped
  // and Load() reports applied_below = snapshot.applied_below.
  virtual Status SaveSnapshot(const Snapshot& snapshot) = 0;
  // The newest snapshot, or nullopt if none was saved.
  virtual Result<std::optional<Snapshot>> LoadSnapshot() = 0;
};

}  // namespace ballot::store

#endif  // BALLOT_STORE_STORE_H_
