// The store when the LMDB map or the disk fills up: the write fails with kNoSpace, nothing of it
// is visible, and writes resume without loss once there is room again.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "store/lmdb_store.h"
#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::MakeCommand;
using testing::SmallOptions;
using testing::TempDir;

// One slot carrying `bytes` of payload.
paxos::PersistBatch BigBatch(paxos::Slot slot, size_t bytes) {
  paxos::PersistBatch b;
  paxos::Entry e;
  e.slot = slot;
  e.ballot = paxos::Ballot(1, 1);
  e.value.epoch = e.ballot;
  e.value.commands.push_back(
      MakeCommand(1, slot, std::string(bytes, static_cast<char>('a' + slot % 26))));
  b.entries.push_back(std::move(e));
  b.chosen_below = slot + 1;
  return b;
}

void ExpectSlots(LmdbStore* store, paxos::Slot last) {
  Result<paxos::DurableState> r = store->Load();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r.value().entries.size(), last);
  for (paxos::Slot s = 1; s <= last; ++s) {
    EXPECT_EQ(r.value().entries[s - 1],
              BigBatch(s, r.value().entries[s - 1].value.commands[0].payload.size()).entries[0]);
  }
  EXPECT_EQ(r.value().chosen_below, last + 1);
}

TEST(LmdbSpaceTest, MapGrowsBeforeItFills) {
  TempDir tmp;
  LmdbOptions o = SmallOptions(tmp.path());
  o.map_bytes = 256 * 1024;
  o.map_bytes_max = 64 * kMiB;
  auto store = std::move(LmdbStore::Open(o)).value();
  for (paxos::Slot s = 1; s <= 200; ++s) ASSERT_OK(store->Write(BigBatch(s, 20000)));
  const LmdbStats st = store->stats();
  EXPECT_GT(st.map_grows, 0u);
  EXPECT_GT(st.map_bytes, 4 * kMiB);
  EXPECT_LE(st.used_bytes, st.map_bytes);
  EXPECT_FALSE(st.no_space);
  // data.mdb is preallocated to the map, so commits never need new disk blocks.
  struct stat file;
  ASSERT_EQ(stat((tmp.path() + "/data.mdb").c_str(), &file), 0);
  EXPECT_GE(static_cast<size_t>(file.st_size), st.map_bytes);
  ExpectSlots(store.get(), 200);
  store.reset();
  store = std::move(LmdbStore::Open(o)).value();  // reopens at (at least) the grown size
  EXPECT_GE(store->stats().map_bytes, st.map_bytes);
  ExpectSlots(store.get(), 200);
}

TEST(LmdbSpaceTest, MapFullIsNoSpaceUntilTheLimitIsRaised) {
  TempDir tmp;
  LmdbOptions o = SmallOptions(tmp.path());
  o.map_bytes = 256 * 1024;
  o.map_bytes_max = 512 * 1024;
  auto store = std::move(LmdbStore::Open(o)).value();

  paxos::Slot acked = 0;
  Status failed;
  for (paxos::Slot s = 1; s <= 1000; ++s) {
    failed = store->Write(BigBatch(s, 6000));
    if (!failed.ok()) break;
    acked = s;
  }
  ASSERT_FALSE(failed.ok()) << "a 512 KiB map never filled";
  EXPECT_EQ(failed.code(), StatusCode::kNoSpace) << failed.ToString();
  EXPECT_NE(failed.message().find("map full"), std::string::npos) << failed.message();
  EXPECT_GT(acked, 10u);
  EXPECT_TRUE(store->stats().no_space);
  EXPECT_FALSE(store->stats().failed);  // full is not fatal
  // Still refused, and nothing of the refused batches is visible.
  EXPECT_EQ(store->Write(BigBatch(acked + 1, 6000)).code(), StatusCode::kNoSpace);
  ExpectSlots(store.get(), acked);

  store->SetMapBytesMax(4 * kMiB);
  for (paxos::Slot s = acked + 1; s <= acked + 50; ++s) ASSERT_OK(store->Write(BigBatch(s, 6000)));
  EXPECT_FALSE(store->stats().no_space);
  ExpectSlots(store.get(), acked + 50);

  // A restart with the old, smaller limit opens fine and keeps everything.
  store.reset();
  store = std::move(LmdbStore::Open(o)).value();
  ExpectSlots(store.get(), acked + 50);
}

TEST(LmdbSpaceTest, SnapshotLargerThanTheMapIsNoSpace) {
  TempDir tmp;
  LmdbOptions o = SmallOptions(tmp.path());
  o.map_bytes = 256 * 1024;
  o.map_bytes_max = 1 * kMiB;
  auto store = std::move(LmdbStore::Open(o)).value();
  ASSERT_OK(store->Write(BigBatch(1, 100)));
  EXPECT_EQ(store->SaveSnapshot(Snapshot{2, std::string(2 * kMiB, 'x')}).code(),
            StatusCode::kNoSpace);
  EXPECT_FALSE(store->LoadSnapshot().value().has_value());
  ASSERT_OK(store->SaveSnapshot(Snapshot{2, std::string(100 * 1024, 'x')}));
  EXPECT_EQ(store->LoadSnapshot().value()->data.size(), 100u * 1024);
}

// A full disk, simulated with RLIMIT_FSIZE: growing data.mdb past the limit fails (EFBIG) just
// as it would with ENOSPC on a full file system.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    CHECK_EQ(getrlimit(RLIMIT_FSIZE, &saved_), 0);
    old_handler_ = signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    Set(bytes);
  }
  ~FileSizeLimit() {
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &saved_), 0);
    signal(SIGXFSZ, old_handler_);
  }
  void Set(rlim_t bytes) {
    rlimit r = saved_;
    r.rlim_cur = std::min<rlim_t>(bytes, saved_.rlim_max);
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &r), 0);
  }
  void Lift() { CHECK_EQ(setrlimit(RLIMIT_FSIZE, &saved_), 0); }

 private:
  rlimit saved_;
  sighandler_t old_handler_;
};

TEST(LmdbSpaceTest, DiskFullIsNoSpaceAndWritesResumeWhenSpaceReturns) {
  TempDir tmp;
  LmdbOptions o = SmallOptions(tmp.path());
  o.map_bytes = 256 * 1024;
  o.map_bytes_max = 64 * kMiB;
  auto store = std::move(LmdbStore::Open(o)).value();

  paxos::Slot acked = 0;
  Status failed;
  {
    FileSizeLimit limit(1 * kMiB);
    for (paxos::Slot s = 1; s <= 1000; ++s) {
      failed = store->Write(BigBatch(s, 6000));
      if (!failed.ok()) break;
      acked = s;
    }
    // Still full: refused again, without damage.
    if (!failed.ok()) {
      EXPECT_EQ(store->Write(BigBatch(acked + 1, 6000)).code(), StatusCode::kNoSpace);
    }
  }  // the limit is lifted: "space returns"
  ASSERT_FALSE(failed.ok()) << "the file size limit was never hit";
  EXPECT_EQ(failed.code(), StatusCode::kNoSpace) << failed.ToString();
  EXPECT_NE(failed.message().find("preallocate"), std::string::npos) << failed.message();
  EXPECT_GT(acked, 10u);
  EXPECT_FALSE(store->stats().failed);
  ExpectSlots(store.get(), acked);

  for (paxos::Slot s = acked + 1; s <= acked + 100; ++s) ASSERT_OK(store->Write(BigBatch(s, 6000)));
  EXPECT_FALSE(store->stats().no_space);
  store.reset();
  store = std::move(LmdbStore::Open(o)).value();
  ExpectSlots(store.get(), acked + 100);
}

TEST(LmdbSpaceTest, JournalThatCannotBePreallocatedIsNoSpaceAtOpen) {
  TempDir tmp;
  LmdbOptions o = SmallOptions(tmp.path());
  if (!o.journal) GTEST_SKIP() << "journal off";
  o.map_bytes = 256 * 1024;
  o.journal_checkpoint_bytes = 256 * 1024;  // a 512 KiB journal file
  {
    FileSizeLimit limit(384 * 1024);  // room for data.mdb, not for the journal
    Result<std::unique_ptr<LmdbStore>> r = LmdbStore::Open(o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kNoSpace) << r.status().ToString();
    EXPECT_NE(r.status().message().find("cannot preallocate"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("journal"), std::string::npos) << r.status().message();
  }
  // Once there is room, the same directory opens and works.
  auto store = std::move(LmdbStore::Open(o)).value();
  ASSERT_OK(store->Write(BigBatch(1, 100)));
  store.reset();
  store = std::move(LmdbStore::Open(o)).value();
  ExpectSlots(store.get(), 1);
}

}  // namespace
}  // namespace ballot::store
