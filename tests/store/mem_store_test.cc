#include "store/mem_store.h"

#include <gtest/gtest.h>

#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::MakeEntry;

paxos::PersistBatch Batch(paxos::Ballot promised, std::vector<paxos::Entry> entries,
                          paxos::Slot chosen_below) {
  paxos::PersistBatch b;
  b.promised = promised;
  b.entries = std::move(entries);
  b.chosen_below = chosen_below;
  return b;
}

TEST(MemStoreTest, CrashLosesStagedButKeepsSynced) {
  MemStore store;
  const paxos::Ballot b1(1, 1);
  const paxos::Ballot b2(2, 1);
  store.Stage(Batch(b1, {MakeEntry(1, b1), MakeEntry(2, b1)}, 2));
  store.Sync();
  store.Stage(Batch(b2, {MakeEntry(2, b2), MakeEntry(3, b2)}, 4));
  store.Crash();

  Result<paxos::DurableState> r = store.Load();
  ASSERT_TRUE(r.ok());
  const paxos::DurableState& s = r.value();
  EXPECT_EQ(s.promised, b1);
  EXPECT_EQ(s.chosen_below, 2u);
  ASSERT_EQ(s.entries.size(), 2u);
  EXPECT_EQ(s.entries[0], MakeEntry(1, b1));
  EXPECT_EQ(s.entries[1], MakeEntry(2, b1));  // slot 2's re-accept at b2 was lost

  // What was lost stays lost: a later Sync does not resurrect it.
  store.Sync();
  EXPECT_EQ(store.Load().value().promised, b1);
}

TEST(MemStoreTest, WriteIsDurableImmediately) {
  MemStore store;
  const paxos::Ballot b(3, 2);
  ASSERT_TRUE(store.Write(Batch(b, {MakeEntry(1, b)}, 1)).ok());
  store.Crash();
  const paxos::DurableState s = store.Load().value();
  EXPECT_EQ(s.promised, b);
  ASSERT_EQ(s.entries.size(), 1u);
  EXPECT_EQ(s.entries[0], MakeEntry(1, b));
}

TEST(MemStoreTest, EveryStagedBatchIsLostTogether) {
  MemStore store;
  const paxos::Ballot b(1, 1);
  store.Stage(Batch(b, {MakeEntry(1, b)}, 1));
  store.Stage(Batch(b, {MakeEntry(2, b)}, 1));
  store.Crash();
  const paxos::DurableState s = store.Load().value();
  EXPECT_TRUE(s.entries.empty());
  EXPECT_EQ(s.promised, paxos::Ballot());
}

TEST(MemStoreTest, SnapshotDropsCoveredEntries) {
  MemStore store;
  const paxos::Ballot b(1, 1);
  ASSERT_TRUE(store.Write(Batch(b, {MakeEntry(1, b), MakeEntry(2, b), MakeEntry(3, b)}, 4)).ok());
  ASSERT_TRUE(store.SaveSnapshot(Snapshot{3, "state"}).ok());
  const paxos::DurableState s = store.Load().value();
  EXPECT_EQ(s.applied_below, 3u);
  ASSERT_EQ(s.entries.size(), 1u);
  EXPECT_EQ(s.entries[0].slot, 3u);
  EXPECT_EQ(store.LoadSnapshot().value()->data, "state");
}

}  // namespace
}  // namespace ballot::store
