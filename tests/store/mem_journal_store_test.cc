// The simulator's model of the journaled store (store/mem_journal_store.h): whatever a crash
// leaves of the write in flight (lost, persisted, torn across sectors), recovery through the
// real journal scan and replay gives exactly the state before that write or exactly the state
// after it, never a part of it and never an error, across many journal restarts.
#include "store/mem_journal_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::MakeEntry;

void ExpectSameState(const paxos::DurableState& got, const paxos::DurableState& want,
                     const std::string& where) {
  EXPECT_EQ(got.promised, want.promised) << where;
  EXPECT_EQ(got.chosen_below, want.chosen_below) << where;
  EXPECT_EQ(got.applied_below, want.applied_below) << where;
  ASSERT_EQ(got.entries.size(), want.entries.size()) << where;
  for (size_t i = 0; i < got.entries.size(); ++i) {
    EXPECT_EQ(got.entries[i], want.entries[i]) << where << ", entry " << i;
  }
}

bool SameState(const paxos::DurableState& a, const paxos::DurableState& b) {
  return a.promised == b.promised && a.chosen_below == b.chosen_below &&
         a.applied_below == b.applied_below && a.entries == b.entries;
}

paxos::DurableState LoadOrDie(Store* store) {
  Result<paxos::DurableState> r = store->Load();
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : paxos::DurableState{};
}

// A random history of writes, crashes with every fate, and snapshots, checked against MemStore
// (the reference: a batch is there or not). The checkpoint is small (1 KiB) so that the journal
// restarts at offset 0 every few batches and torn records land on stale ones.
TEST(MemJournalStoreTest, EveryCrashFateRecoversTheStateBeforeOrAfterTheWrite) {
  std::mt19937_64 rng(20261203);
  MemJournalStore journaled(1024);
  auto with_store = std::make_unique<MemStore>();  // the reference: what must be there
  paxos::Ballot promised(1, 1);
  paxos::Slot next_slot = 1;
  paxos::Slot chosen_below = 1;
  int crashes = 0, survived = 0, lost = 0;
  for (int step = 0; step < 3000; ++step) {
    paxos::PersistBatch batch;
    if (rng() % 5 == 0) {
      promised = paxos::Ballot(promised.round() + 1, 1 + rng() % 3);
      batch.promised = promised;
    }
    const int entries = static_cast<int>(rng() % 4);
    for (int i = 0; i < entries; ++i) {
      // Mostly new slots, sometimes a re-accept of a recent one at the current ballot.
      // (A batch names a slot once, as the core's batches do.)
      const paxos::Slot slot =
          (i == 0 && rng() % 4 == 0 && next_slot > chosen_below) ? next_slot - 1 : next_slot++;
      batch.entries.push_back(MakeEntry(slot, promised, 1 + static_cast<int>(rng() % 3)));
    }
    if (rng() % 3 == 0 && chosen_below < next_slot) {
      chosen_below = next_slot;
      batch.chosen_below = chosen_below;
    }
    if (batch.empty()) continue;
    journaled.Stage(batch);
    if (rng() % 6 != 0) {  // most writes complete
      journaled.Sync();
      with_store->Stage(batch);
      with_store->Sync();
    } else {
      ++crashes;
      CrashFate fate;
      fate.kind = static_cast<CrashFate::Kind>(rng() % 3);
      fate.tear_seed = rng();
      const paxos::DurableState before = LoadOrDie(with_store.get());
      journaled.Crash(fate);
      const paxos::DurableState got = LoadOrDie(&journaled);
      with_store->Stage(batch);
      with_store->Sync();
      const paxos::DurableState after = LoadOrDie(with_store.get());
      const std::string where =
          "step " + std::to_string(step) + ", fate " + std::to_string(fate.kind);
      if (fate.kind == CrashFate::kLost) {
        ExpectSameState(got, before, where);
      } else if (fate.kind == CrashFate::kPersisted) {
        ExpectSameState(got, after, where);
      } else {
        // Torn: all or nothing, whichever the surviving sectors make it.
        ExpectSameState(got, SameState(got, after) ? after : before, where);
      }
      // The reference follows what the journaled store now holds.
      if (!SameState(got, after)) {
        ++lost;
        Result<std::optional<Snapshot>> snapshot = with_store->LoadSnapshot();
        ASSERT_TRUE(snapshot.ok());
        with_store = std::make_unique<MemStore>();
        if (snapshot.value()) {
          ASSERT_TRUE(with_store->SaveSnapshot(*snapshot.value()).ok());
        }
        paxos::PersistBatch all;
        all.promised = before.promised;
        all.entries = before.entries;
        all.chosen_below = before.chosen_below;
        ASSERT_TRUE(with_store->Write(all).ok());
        promised = before.promised;  // the lost promise may be made again
        chosen_below = before.chosen_below;
        // The lost slots are written again later: none may be skipped below chosen_below.
        next_slot =
            std::max(chosen_below, before.entries.empty() ? 1 : before.entries.back().slot + 1);
      } else {
        ++survived;
      }
      if (HasFailure()) return;
    }
    if (rng() % 200 == 0 && chosen_below > 1) {
      const Snapshot snapshot{chosen_below, "state below " + std::to_string(chosen_below)};
      ASSERT_TRUE(journaled.SaveSnapshot(snapshot).ok());
      ASSERT_TRUE(with_store->SaveSnapshot(snapshot).ok());
    }
  }
  ExpectSameState(LoadOrDie(&journaled), LoadOrDie(with_store.get()), "end");
  // The history went where it must to mean anything.
  EXPECT_GT(crashes, 300);
  EXPECT_GT(survived, 100);
  EXPECT_GT(lost, 100);
  EXPECT_GT(journaled.checkpoints(), 200u);
  EXPECT_GT(journaled.torn_tails_recovered(), 20u);
}

// Fills the journal until a checkpoint restarts it at offset 0, leaving the first record of the
// new round in flight over the stale records of the round before. Records span several sectors.
std::unique_ptr<MemJournalStore> FirstRecordOfARoundInFlight(std::vector<paxos::Entry>* synced,
                                                             paxos::Entry* in_flight) {
  auto store = std::make_unique<MemJournalStore>(4096);
  const paxos::Ballot b(3, 1);
  for (paxos::Slot slot = 1;; ++slot) {
    paxos::PersistBatch batch;
    batch.promised = b;
    batch.entries.push_back(MakeEntry(slot, b, 20));  // over 512 bytes: several sectors
    const uint64_t checkpoints = store->checkpoints();
    store->Stage(batch);
    if (slot > 1 && store->checkpoints() != checkpoints) {
      *in_flight = batch.entries.back();
      return store;
    }
    store->Sync();
    synced->push_back(batch.entries.back());
  }
}

// Recovery sees a torn tail (not corruption) and keeps everything synced; the torn record is
// there whole or not at all.
TEST(MemJournalStoreTest, ATornFirstRecordOverStaleOnesIsATornTail) {
  int torn = 0, whole = 0, none = 0;
  for (uint64_t seed = 0; seed < 128; ++seed) {
    std::vector<paxos::Entry> synced;
    paxos::Entry in_flight;
    std::unique_ptr<MemJournalStore> store = FirstRecordOfARoundInFlight(&synced, &in_flight);
    store->Crash(CrashFate{CrashFate::kTorn, seed});
    Result<paxos::DurableState> got = store->Load();
    ASSERT_TRUE(got.ok()) << "seed " << seed << ": " << got.status().ToString();
    const std::vector<paxos::Entry>& entries = got.value().entries;
    ASSERT_GE(entries.size(), synced.size()) << "seed " << seed;
    for (size_t i = 0; i < synced.size(); ++i) EXPECT_EQ(entries[i], synced[i]) << seed;
    if (entries.size() == synced.size() + 1) {
      EXPECT_EQ(entries.back(), in_flight) << "seed " << seed;
      ++whole;
    } else {
      ASSERT_EQ(entries.size(), synced.size()) << "seed " << seed;
      ++none;
    }
    torn += store->torn_tails_recovered() > 0;
  }
  // Over 128 seeds every outcome shows up: a real tear, a record kept whole, one lost whole.
  EXPECT_GT(torn, 0) << "whole " << whole << ", none " << none;
  EXPECT_GT(whole, 0);
  EXPECT_GT(none, 0);
}

}  // namespace
}  // namespace ballot::store
