#include "store/lmdb_store.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "store/lmdb_env.h"
#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::MakeEntry;
using testing::SmallOptions;
using testing::TempDir;

std::unique_ptr<LmdbStore> MustOpen(const LmdbOptions& options) {
  Result<std::unique_ptr<LmdbStore>> r = LmdbStore::Open(options);
  CHECK(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

paxos::PersistBatch Batch(std::optional<paxos::Ballot> promised, std::vector<paxos::Entry> entries,
                          std::optional<paxos::Slot> chosen_below) {
  paxos::PersistBatch b;
  b.promised = promised;
  b.entries = std::move(entries);
  b.chosen_below = chosen_below;
  return b;
}

TEST(LmdbStoreTest, EmptyStoreLoadsDefaults) {
  TempDir tmp;
  auto store = MustOpen(SmallOptions(tmp.Sub("new/data")));  // creates missing directories
  const paxos::DurableState s = store->Load().value();
  EXPECT_TRUE(s.promised.IsZero());
  EXPECT_TRUE(s.entries.empty());
  EXPECT_EQ(s.chosen_below, 1u);
  EXPECT_EQ(s.applied_below, 1u);
  EXPECT_FALSE(store->LoadSnapshot().value().has_value());
  const StoreIdentity id = store->LoadIdentity().value();
  EXPECT_EQ(id.cluster_id, 7u);
  EXPECT_EQ(id.node_id, 1u);
}

TEST(LmdbStoreTest, WritesSurviveReopenInSlotOrder) {
  TempDir tmp;
  const paxos::Ballot b1(1, 2);
  const paxos::Ballot b2(2, 1);
  std::vector<paxos::Entry> want;
  {
    auto store = MustOpen(SmallOptions(tmp.path()));
    // Slots written out of order and across byte boundaries of the big-endian key.
    ASSERT_OK(store->Write(
        Batch(b1, {MakeEntry(256, b1), MakeEntry(3, b1), MakeEntry(255, b1)}, std::nullopt)));
    ASSERT_OK(
        store->Write(Batch(b2, {MakeEntry(1, b2), MakeEntry(2, b2), MakeEntry(65536, b2)}, 4)));
    ASSERT_OK(store->Write(Batch(std::nullopt, {MakeEntry(3, b2)}, std::nullopt)));  // re-accept
    ASSERT_OK(store->Write(Batch(std::nullopt, {}, 3)));  // chosen_below never goes down
    // Durable writes: LMDB commits without the journal, journal appends with it.
    EXPECT_EQ(store->stats().commits + store->stats().journal_syncs, 4u);
  }
  auto store = MustOpen(SmallOptions(tmp.path()));
  const paxos::DurableState s = store->Load().value();
  EXPECT_EQ(s.promised, b2);
  EXPECT_EQ(s.chosen_below, 4u);
  EXPECT_EQ(s.applied_below, 1u);
  want = {MakeEntry(1, b2),   MakeEntry(2, b2),   MakeEntry(3, b2),
          MakeEntry(255, b1), MakeEntry(256, b1), MakeEntry(65536, b2)};
  EXPECT_EQ(s.entries, want);
}

TEST(LmdbStoreTest, EmptyBatchCommitsNothing) {
  TempDir tmp;
  auto store = MustOpen(SmallOptions(tmp.path()));
  ASSERT_OK(store->Write(paxos::PersistBatch{}));
  EXPECT_EQ(store->stats().commits, 0u);
  EXPECT_EQ(store->stats().journal_syncs, 0u);
}

// The death-test child re-runs the test body with a TempDir of its own and dies in a CHECK,
// skipping destructors: this failure function removes that directory first.
std::string* death_child_dir = nullptr;
[[noreturn]] void RemoveDirAndAbort() {
  std::error_code ec;
  if (death_child_dir != nullptr) std::filesystem::remove_all(*death_child_dir, ec);
  abort();
}

TEST(LmdbStoreDeathTest, PromiseGoingBackwardsIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir tmp;
  auto store = MustOpen(SmallOptions(tmp.path()));
  ASSERT_OK(store->Write(Batch(paxos::Ballot(5, 1), {}, std::nullopt)));
  EXPECT_DEATH(
      {
        static std::string dir = tmp.path();
        death_child_dir = &dir;
        google::InstallFailureFunction(&RemoveDirAndAbort);
        (void)store->Write(Batch(paxos::Ballot(4, 3), {}, std::nullopt));
      },
      "promised ballot went backwards");
  store.reset();
  auto again = MustOpen(SmallOptions(tmp.path()));
  EXPECT_EQ(again->Load().value().promised, paxos::Ballot(5, 1));
}

TEST(LmdbStoreTest, SnapshotDropsCoveredEntriesInOneTransaction) {
  TempDir tmp;
  const paxos::Ballot b(1, 1);
  {
    auto store = MustOpen(SmallOptions(tmp.path()));
    std::vector<paxos::Entry> entries;
    for (paxos::Slot s = 1; s <= 20; ++s) entries.push_back(MakeEntry(s, b));
    ASSERT_OK(store->Write(Batch(b, entries, 15)));
    ASSERT_OK(store->SaveSnapshot(Snapshot{11, "state after slot 10"}));
    // An entry below applied_below is covered by the snapshot and not stored again.
    ASSERT_OK(store->Write(Batch(std::nullopt, {MakeEntry(5, b), MakeEntry(21, b)}, std::nullopt)));
  }
  auto store = MustOpen(SmallOptions(tmp.path()));
  const paxos::DurableState s = store->Load().value();
  EXPECT_EQ(s.applied_below, 11u);
  EXPECT_EQ(s.chosen_below, 15u);
  ASSERT_EQ(s.entries.size(), 11u);
  EXPECT_EQ(s.entries.front().slot, 11u);
  EXPECT_EQ(s.entries.back().slot, 21u);
  const std::optional<Snapshot> snap = store->LoadSnapshot().value();
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ(snap->applied_below, 11u);
  EXPECT_EQ(snap->data, "state after slot 10");
}

TEST(LmdbStoreTest, SnapshotAboveChosenRaisesChosenBelow) {
  TempDir tmp;
  auto store = MustOpen(SmallOptions(tmp.path()));
  const paxos::Ballot b(1, 1);
  ASSERT_OK(store->Write(Batch(b, {MakeEntry(1, b), MakeEntry(2, b), MakeEntry(3, b)}, 2)));
  ASSERT_OK(store->SaveSnapshot(Snapshot{3, std::string(100000, 's')}));  // large data
  const paxos::DurableState s = store->Load().value();
  EXPECT_EQ(s.chosen_below, 3u);
  EXPECT_EQ(s.applied_below, 3u);
  ASSERT_EQ(s.entries.size(), 1u);
  EXPECT_EQ(store->LoadSnapshot().value()->data, std::string(100000, 's'));
  ASSERT_OK(store->SaveSnapshot(Snapshot{3, ""}));  // same point again, empty data
  EXPECT_EQ(store->LoadSnapshot().value()->data, "");
}

TEST(LmdbStoreTest, OtherClusterOrNodeIsRefused) {
  TempDir tmp;
  MustOpen(SmallOptions(tmp.path(), /*cluster=*/7, /*node=*/1)).reset();

  Result<std::unique_ptr<LmdbStore>> r = LmdbStore::Open(SmallOptions(tmp.path(), 8, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("belongs to cluster 7 node 1"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("this node is cluster 8 node 1"), std::string::npos);

  r = LmdbStore::Open(SmallOptions(tmp.path(), 7, 2));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("node 2"), std::string::npos) << r.status().message();

  EXPECT_TRUE(LmdbStore::Open(SmallOptions(tmp.path(), 7, 1)).ok());
}

TEST(LmdbStoreTest, ForeignLmdbEnvironmentIsRefused) {
  TempDir tmp;
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_open(env, tmp.path().c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi), 0);
  MDB_val key{5, const_cast<char*>("users")};
  MDB_val value{3, const_cast<char*>("bob")};
  ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  Result<std::unique_ptr<LmdbStore>> r = LmdbStore::Open(SmallOptions(tmp.path()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("not a Ballot store"), std::string::npos)
      << r.status().message();
}

TEST(LmdbStoreTest, SecondWriterIsRefusedButInspectionWorks) {
  TempDir tmp;
  auto store = MustOpen(SmallOptions(tmp.path()));
  ASSERT_OK(store->Write(Batch(paxos::Ballot(1, 1), {MakeEntry(1, paxos::Ballot(1, 1))}, 1)));
  Result<std::unique_ptr<LmdbStore>> second = LmdbStore::Open(SmallOptions(tmp.path()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos);

  Result<std::unique_ptr<LmdbStore>> ro = LmdbStore::OpenForInspection(tmp.path());
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  LmdbStore& inspect = *ro.value();
  EXPECT_TRUE(inspect.read_only());
  EXPECT_EQ(inspect.Load().value().entries.size(), 1u);
  EXPECT_EQ(inspect.LoadIdentity().value().cluster_id, 7u);
  const Status w = inspect.Write(Batch(paxos::Ballot(2, 1), {}, std::nullopt));
  EXPECT_EQ(w.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(inspect.SaveSnapshot(Snapshot{1, ""}).code(), StatusCode::kFailedPrecondition);

  // The writer keeps going while the inspector is open; the inspector sees new commits.
  ASSERT_OK(store->Write(Batch(std::nullopt, {MakeEntry(2, paxos::Ballot(1, 1))}, 3)));
  EXPECT_EQ(inspect.Load().value().entries.size(), 2u);
}

TEST(LmdbStoreTest, InspectionOfMissingStoreIsNotFound) {
  TempDir tmp;
  Result<std::unique_ptr<LmdbStore>> r = LmdbStore::OpenForInspection(tmp.Sub("nothing"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(LmdbStoreTest, BadOptionsAreRefused) {
  TempDir tmp;
  LmdbOptions o = SmallOptions(tmp.path());
  o.cluster_id = 0;
  EXPECT_EQ(LmdbStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o = SmallOptions(tmp.path());
  o.node_id = 0;
  EXPECT_EQ(LmdbStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.node_id = paxos::kNodeIdMax + 1;
  EXPECT_EQ(LmdbStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o = SmallOptions(tmp.path());
  o.map_bytes_max = o.map_bytes - 1;
  EXPECT_EQ(LmdbStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o = SmallOptions(tmp.path());
  o.readers_max = 0;
  EXPECT_EQ(LmdbStore::Open(o).status().code(), StatusCode::kInvalidArgument);
  o = SmallOptions("");
  EXPECT_EQ(LmdbStore::Open(o).status().code(), StatusCode::kInvalidArgument);
}

TEST(LmdbStoreTest, AsynchronousSyncFlagsAreRefused) {
  EXPECT_TRUE(CheckDurableEnvFlags(0).ok());
  EXPECT_TRUE(CheckDurableEnvFlags(MDB_NOTLS | MDB_RDONLY | MDB_NORDAHEAD).ok());
  for (unsigned flag : {MDB_NOSYNC, MDB_NOMETASYNC, MDB_MAPASYNC}) {
    const Status s = CheckDurableEnvFlags(MDB_NOTLS | flag);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << flag;
  }
  EXPECT_NE(CheckDurableEnvFlags(MDB_NOSYNC).message().find("MDB_NOSYNC"), std::string::npos);
}

TEST(LmdbStoreTest, FailedCommitIsFatalAndNothingIsVisible) {
  TempDir tmp;
  const paxos::Ballot b(1, 1);
  {
    auto store = MustOpen(SmallOptions(tmp.path()));
    ASSERT_OK(store->Write(Batch(b, {MakeEntry(1, b)}, std::nullopt)));
    store->TEST_FailNextCommit(EIO);
    const Status failed = store->Write(Batch(paxos::Ballot(2, 1), {MakeEntry(2, b)}, 2));
    EXPECT_EQ(failed.code(), StatusCode::kIoError);
    EXPECT_NE(failed.message().find("refuses all further writes"), std::string::npos)
        << failed.message();
    EXPECT_TRUE(store->stats().failed);
    // Every later write is refused without being tried, including snapshots.
    EXPECT_EQ(store->Write(Batch(std::nullopt, {MakeEntry(3, b)}, std::nullopt)).code(),
              StatusCode::kIoError);
    EXPECT_EQ(store->SaveSnapshot(Snapshot{1, ""}).code(), StatusCode::kIoError);
    EXPECT_EQ(store->stats().commits + store->stats().journal_syncs, 1u);
    // Reads still show the last durable state.
    EXPECT_EQ(store->Load().value().promised, b);
  }
  auto store = MustOpen(SmallOptions(tmp.path()));  // a restart recovers from disk
  const paxos::DurableState s = store->Load().value();
  EXPECT_EQ(s.promised, b);
  ASSERT_EQ(s.entries.size(), 1u);
  EXPECT_OK(store->Write(Batch(paxos::Ballot(2, 1), {MakeEntry(2, b)}, std::nullopt)));
}

TEST(LmdbStoreTest, CommitOutOfSpaceIsNotFatal) {
  TempDir tmp;
  auto store = MustOpen(SmallOptions(tmp.path()));
  const paxos::Ballot b(1, 1);
  store->TEST_FailNextCommit(ENOSPC);
  const Status s = store->Write(Batch(b, {MakeEntry(1, b)}, std::nullopt));
  EXPECT_EQ(s.code(), StatusCode::kNoSpace);
  EXPECT_TRUE(store->stats().no_space);
  EXPECT_TRUE(store->Load().value().entries.empty());
  ASSERT_OK(store->Write(Batch(b, {MakeEntry(1, b)}, std::nullopt)));
  EXPECT_FALSE(store->stats().no_space);
  EXPECT_EQ(store->Load().value().entries.size(), 1u);
}

TEST(LmdbStoreTest, StaleReadersAreClearedAndTheTableIsSized) {
  TempDir tmp;
  LmdbOptions o = SmallOptions(tmp.path());
  o.readers_max = 3;
  auto store = MustOpen(o);
  ASSERT_OK(store->Write(Batch(paxos::Ballot(1, 1), {}, std::nullopt)));
  // Readers left behind by a killed process holding read transactions.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    MDB_env* env = nullptr;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 2);
    mdb_env_set_maxreaders(env, 3);
    if (mdb_env_open(env, tmp.path().c_str(), MDB_RDONLY | MDB_NOTLS, 0644) != 0) _exit(2);
    MDB_txn* txns[3];
    for (MDB_txn*& t : txns) {
      if (mdb_txn_begin(env, nullptr, MDB_RDONLY, &t) != 0) _exit(3);
    }
    _exit(0);  // dies holding every reader slot
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // Every slot is taken by a dead process; reads still succeed after clearing them.
  EXPECT_EQ(store->Load().value().promised, paxos::Ballot(1, 1));
  EXPECT_OK(store->Write(Batch(paxos::Ballot(2, 1), {}, std::nullopt)));
}

}  // namespace
}  // namespace ballot::store
