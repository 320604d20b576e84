// store/lmdb_env.h: the LMDB mechanics LmdbStore and FenceStore share, on real LMDB files.
#include "store/lmdb_env.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <cerrno>
#include <memory>
#include <string>

#include "store/record_codec.h"
#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::TempDir;

TEST(LmdbEnvTest, StatusMappingNamesWhatWentWrong) {
  EXPECT_EQ(MdbStatus(MDB_MAP_FULL, "x").code(), StatusCode::kNoSpace);
  EXPECT_EQ(MdbStatus(ENOSPC, "x").code(), StatusCode::kNoSpace);
  EXPECT_EQ(MdbStatus(EDQUOT, "x").code(), StatusCode::kNoSpace);
  EXPECT_EQ(MdbStatus(MDB_CORRUPTED, "x").code(), StatusCode::kCorruption);
  EXPECT_EQ(MdbStatus(MDB_PAGE_NOTFOUND, "x").code(), StatusCode::kCorruption);
  EXPECT_EQ(MdbStatus(MDB_READERS_FULL, "x").code(), StatusCode::kOverloaded);
  EXPECT_EQ(MdbStatus(MDB_BAD_VALSIZE, "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MdbStatus(EIO, "x").code(), StatusCode::kIoError);
  const Status s = MdbStatus(MDB_MAP_FULL, "writing slot 3");
  EXPECT_EQ(s.message().rfind("writing slot 3: ", 0), 0u) << s.message();
}

TEST(LmdbEnvTest, ASecondLockOnADirectoryIsRefusedUntilTheFirstIsGone) {
  TempDir tmp;
  auto first = std::make_unique<DirectoryLock>();
  ASSERT_TRUE(first->Lock(tmp.path(), "x.lock", "test dir").ok());
  DirectoryLock second;
  const Status refused = second.Lock(tmp.path(), "x.lock", "test dir");
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition) << refused.ToString();
  EXPECT_NE(refused.message().find("test dir " + tmp.path() + " is in use"), std::string::npos)
      << refused.message();
  first.reset();
  DirectoryLock third;
  EXPECT_TRUE(third.Lock(tmp.path(), "x.lock", "test dir").ok());
}

TEST(LmdbEnvTest, OpenRefusesAnEnvironmentThatWouldNotSync) {
  for (unsigned flag : {MDB_NOSYNC, MDB_NOMETASYNC, MDB_MAPASYNC | MDB_WRITEMAP}) {
    TempDir tmp;
    LmdbEnv env;
    const Status s = env.Open(tmp.path(), LmdbEnvOptions{.flags = MDB_NOTLS | flag}, nullptr);
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << flag << ": " << s.ToString();
  }
}

TEST(LmdbEnvTest, RecordsRoundTripAndAreBoundToTheirScope) {
  TempDir tmp;
  LmdbEnv env;
  int dead = -1;
  ASSERT_TRUE(env.Open(tmp.path(), LmdbEnvOptions{.dbs_max = 1, .map_bytes = 1 << 20}, &dead).ok());
  EXPECT_EQ(dead, 0);
  EXPECT_GE(env.MapBytes(), size_t{1} << 20);

  LmdbTxn txn;
  ASSERT_EQ(mdb_txn_begin(env.get(), nullptr, 0, txn.out()), MDB_SUCCESS);
  MDB_dbi dbi = 0;
  ASSERT_EQ(mdb_dbi_open(txn.get(), "d", MDB_CREATE, &dbi), MDB_SUCCESS);
  std::string scratch;
  ASSERT_EQ(PutRecord(txn.get(), dbi, "k", 7, "scope-a", "payload", &scratch), MDB_SUCCESS);

  std::string_view payload;
  bool found = false;
  ASSERT_TRUE(
      GetRecord(txn.get(), dbi, "k", 7, "seven", "scope-a", "rec k", &payload, &found).ok());
  EXPECT_TRUE(found);
  EXPECT_EQ(payload, "payload");
  // The same bytes read as bound to another scope, or as another kind, are corrupt.
  Status s = GetRecord(txn.get(), dbi, "k", 7, "seven", "scope-b", "rec k", &payload, &found);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("rec k: checksum mismatch"), std::string::npos) << s.message();
  s = GetRecord(txn.get(), dbi, "k", 8, "eight", "scope-a", "rec k", &payload, &found);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("(eight)"), std::string::npos) << s.message();
  // Absent is not an error.
  ASSERT_TRUE(GetRecord(txn.get(), dbi, "j", 7, "seven", "j", "rec j", &payload, &found).ok());
  EXPECT_FALSE(found);
  EXPECT_EQ(txn.Commit(), MDB_SUCCESS);
  EXPECT_GT(env.UsedBytes(), 0u);
}

}  // namespace
}  // namespace ballot::store
