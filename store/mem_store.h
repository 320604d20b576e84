// MemStore: an in-memory Store for tests and the simulator.
//
// It models a disk with a volatile cache: Stage() puts a batch in the cache, Sync() makes what
// is staged durable, Crash() decides what of the cache survives. Write() is Stage() followed by
// Sync(). store/mem_journal_store.h models the journaled LmdbStore the same way.
#ifndef BALLOT_STORE_MEM_STORE_H_
#define BALLOT_STORE_MEM_STORE_H_

#include <map>
#include <optional>
#include <vector>

#include "store/store.h"

namespace ballot::store {

// What a crash (power loss) leaves of the write in flight, the one staged and not yet synced.
// The simulator draws it; a real disk decides it.
struct CrashFate {
  enum Kind {
    kLost,       // none of it reached the disk
    kPersisted,  // all of it did: the write finished, only its acknowledgement was lost
    kTorn,       // some of its 512-byte sectors did, others kept their old bytes
  };
  Kind kind = kLost;
  uint64_t tear_seed = 0;  // which sectors survive a tear (any subset, deterministic in the seed)
};

// A Store over a simulated disk with a volatile cache: Stage() puts one batch in the cache,
// Sync() makes it durable, Crash() decides what of the cache survives. Write() is Stage()
// followed by Sync(). Used by the simulator, which stages one batch at a time.
class CachedStore : public Store {
 public:
  virtual void Stage(const paxos::PersistBatch& batch) = 0;
  virtual void Sync() = 0;
  virtual void Crash(const CrashFate& fate) = 0;
  // Test hook: pretend the disk forgot the promised ballot (planted bug "forget promise").
  virtual void TEST_ForgetPromise() = 0;

  Status Write(const paxos::PersistBatch& batch) final {
    Stage(batch);
    Sync();
    return Status::Ok();
  }
};

// The unjournaled LMDB store's model: a batch is one transaction, so a torn write is a lost one.
class MemStore final : public CachedStore {
 public:
  MemStore() = default;
  MemStore(const MemStore&) = delete;
  MemStore& operator=(const MemStore&) = delete;

  Result<paxos::DurableState> Load() override;
  Status SaveSnapshot(const Snapshot& snapshot) override;
  Result<std::optional<Snapshot>> LoadSnapshot() override;

  void Stage(const paxos::PersistBatch& batch) override;
  void Sync() override;
  void Crash(const CrashFate& fate) override;
  // Crash({kLost}): what the simulator's runs without the journal use.
  void Crash() { Crash(CrashFate{}); }
  void TEST_ForgetPromise() override { durable_.promised = {}; }

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
