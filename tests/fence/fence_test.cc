#include "store/fence.h"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "statemachine/samples/lock.h"
#include "store/checksum.h"
#include "tests/store/test_util.h"

namespace ballot::fence {
namespace {

using store::testing::TempDir;

::testing::AssertionResult IsOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}
// Unlike test_util.h's, this one takes a message: ASSERT_OK(x) << "why".
#undef ASSERT_OK
#define ASSERT_OK(expr) ASSERT_TRUE(IsOk(expr)) << #expr

std::unique_ptr<FenceStore> MustOpen(const std::string& dir,
                                     const FenceStoreOptions& options = {}) {
  Result<std::unique_ptr<FenceStore>> store = FenceStore::Open(dir, options);
  CHECK(store.ok()) << store.status().ToString();
  return std::move(store).value();
}

std::optional<std::string> MustRead(FenceStore* store, std::string_view key) {
  Result<std::optional<std::string>> value = store->Read(key);
  CHECK(value.ok()) << value.status().ToString();
  return value.value();
}

uint64_t MustHighest(FenceStore* store, std::string_view resource) {
  Result<uint64_t> highest = store->HighestToken(resource);
  CHECK(highest.ok()) << highest.status().ToString();
  return highest.value();
}

// --- FenceGuard ---

TEST(FenceGuardTest, CheckIsTheRule) {
  EXPECT_TRUE(FenceGuard::Check("r", 5, 0).ok());
  EXPECT_TRUE(FenceGuard::Check("r", 5, 5).ok()) << "equal: the same holder writes again";
  EXPECT_TRUE(FenceGuard::Check("r", 6, 5).ok());
  const Status stale = FenceGuard::Check("db/orders", 4, 5);
  EXPECT_EQ(stale.code(), StatusCode::kAborted);
  EXPECT_EQ(stale.message(), "stale token 4 for resource db/orders: highest seen is 5");
}

TEST(FenceGuardTest, LowerRejectedEqualAcceptedHigherRecorded) {
  FenceGuard guard;
  EXPECT_EQ(guard.Highest("r"), 0u);
  ASSERT_OK(guard.Admit("r", 10));
  EXPECT_EQ(guard.Highest("r"), 10u);
  ASSERT_OK(guard.Admit("r", 10));
  EXPECT_EQ(guard.Admit("r", 9).code(), StatusCode::kAborted);
  EXPECT_EQ(guard.Highest("r"), 10u) << "a rejection records nothing";
  ASSERT_OK(guard.Admit("r", 11));
  EXPECT_EQ(guard.Highest("r"), 11u);
  // Resources are independent.
  ASSERT_OK(guard.Admit("s", 1));
  EXPECT_EQ(guard.Highest("s"), 1u);
  EXPECT_EQ(guard.size(), 2u);
}

TEST(FenceGuardTest, BadArgumentsAndAFullTable) {
  FenceGuard guard(/*resources_max=*/2);
  EXPECT_EQ(guard.Admit("", 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(guard.Admit(std::string(kResourceBytesMax + 1, 'r'), 1).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(guard.Admit("r", 0).code(), StatusCode::kInvalidArgument);
  ASSERT_OK(guard.Admit(std::string(kResourceBytesMax, 'r'), 1));
  ASSERT_OK(guard.Admit("b", 1));
  EXPECT_EQ(guard.Admit("c", 1).code(), StatusCode::kNoSpace);
  ASSERT_OK(guard.Admit("b", 2)) << "known resources still work when full";
  EXPECT_EQ(guard.size(), 2u);
}

// --- FenceStore ---

TEST(FenceStoreTest, LowerRejectedEqualAcceptedHigherAcceptedAndRecorded) {
  TempDir tmp;
  auto store = MustOpen(tmp.Sub("fence"));
  EXPECT_EQ(MustHighest(store.get(), "r"), 0u);
  EXPECT_EQ(MustRead(store.get(), "k"), std::nullopt);
  ASSERT_OK(store->Write("r", 5, "k", "v5"));
  EXPECT_EQ(MustHighest(store.get(), "r"), 5u);
  ASSERT_OK(store->Write("r", 5, "k", "v5b"));
  EXPECT_EQ(MustRead(store.get(), "k"), "v5b");
  const Status stale = store->Write("r", 4, "k", "v4");
  EXPECT_EQ(stale.code(), StatusCode::kAborted);
  EXPECT_EQ(stale.message(), "stale token 4 for resource r: highest seen is 5");
  ASSERT_OK(store->Write("r", 9, "k2", ""));
  EXPECT_EQ(MustHighest(store.get(), "r"), 9u);
  EXPECT_EQ(MustRead(store.get(), "k2"), "") << "an empty value is a value";
  EXPECT_EQ(MustHighest(store.get(), "other"), 0u) << "resources are independent";
}

TEST(FenceStoreTest, ARejectedWriteLeavesTheKeyAndTheTokenUnchanged) {
  TempDir tmp;
  auto store = MustOpen(tmp.Sub("fence"));
  ASSERT_OK(store->Write("r", 7, "k", "from 7"));
  EXPECT_EQ(store->Write("r", 6, "k", "from 6").code(), StatusCode::kAborted);
  EXPECT_EQ(store->Write("r", 6, "new-key", "from 6").code(), StatusCode::kAborted);
  EXPECT_EQ(MustRead(store.get(), "k"), "from 7");
  EXPECT_EQ(MustRead(store.get(), "new-key"), std::nullopt);
  EXPECT_EQ(MustHighest(store.get(), "r"), 7u);
}

TEST(FenceStoreTest, RegisterFencesOffOlderHoldersBeforeAnyWrite) {
  TempDir tmp;
  auto store = MustOpen(tmp.Sub("fence"));
  ASSERT_OK(store->Write("r", 3, "k", "old holder"));
  ASSERT_OK(store->Register("r", 8));  // the new holder, before it has anything to write
  EXPECT_EQ(MustHighest(store.get(), "r"), 8u);
  EXPECT_EQ(store->Write("r", 3, "k", "old holder again").code(), StatusCode::kAborted);
  EXPECT_EQ(MustRead(store.get(), "k"), "old holder");
  ASSERT_OK(store->Register("r", 8)) << "registering again is harmless";
  EXPECT_EQ(store->Register("r", 7).code(), StatusCode::kAborted);
  ASSERT_OK(store->Write("r", 8, "k", "new holder"));
}

TEST(FenceStoreTest, DurableAcrossCloseAndReopen) {
  TempDir tmp;
  const std::string dir = tmp.Sub("fence");
  {
    auto store = MustOpen(dir);
    ASSERT_OK(store->Write("a", 100, "ka", "va"));
    ASSERT_OK(store->Register("b", 200));
  }
  {
    auto store = MustOpen(dir);
    EXPECT_EQ(MustHighest(store.get(), "a"), 100u);
    EXPECT_EQ(MustHighest(store.get(), "b"), 200u);
    EXPECT_EQ(MustRead(store.get(), "ka"), "va");
    EXPECT_EQ(store->Write("a", 99, "ka", "stale").code(), StatusCode::kAborted);
    ASSERT_OK(store->Write("a", 101, "ka", "v101"));
  }
  auto store = MustOpen(dir);
  EXPECT_EQ(MustHighest(store.get(), "a"), 101u);
  EXPECT_EQ(MustRead(store.get(), "ka"), "v101");
}

TEST(FenceStoreTest, OneOwnerPerDirectory) {
  TempDir tmp;
  auto store = MustOpen(tmp.Sub("fence"));
  Result<std::unique_ptr<FenceStore>> second = FenceStore::Open(tmp.Sub("fence"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  store.reset();
  EXPECT_TRUE(FenceStore::Open(tmp.Sub("fence")).ok()) << "the lock goes with its owner";
}

TEST(FenceStoreTest, BadArgumentsChangeNothing) {
  TempDir tmp;
  FenceStoreOptions options;
  options.key_bytes_max = 8;
  options.value_bytes_max = 16;
  auto store = MustOpen(tmp.Sub("fence"), options);
  EXPECT_EQ(store->Write("r", 0, "k", "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Write("", 1, "k", "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Write("r", 1, "", "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Write("r", 1, "123456789", "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Write("r", 1, "k", std::string(17, 'v')).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Register("r", 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->HighestToken("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Read("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MustHighest(store.get(), "r"), 0u);
  ASSERT_OK(store->Write("r", 1, "12345678", std::string(16, 'v')));

  EXPECT_FALSE(FenceStore::Open("").ok());
  FenceStoreOptions bad;
  bad.key_bytes_max = 4096;  // beyond LMDB's key limit
  EXPECT_EQ(FenceStore::Open(tmp.Sub("other"), bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(FenceStoreTest, TheMapGrowsAndAFullMapWritesNothing) {
  TempDir tmp;
  FenceStoreOptions options;
  options.map_bytes = 64 * 1024;
  options.map_bytes_max = 1024 * 1024;
  options.value_bytes_max = 64 * 1024;
  auto store = MustOpen(tmp.Sub("fence"), options);
  const std::string value(60 * 1024, 'v');
  uint64_t token = 1;
  Status s;
  int written = 0;
  for (; written < 100; ++written, ++token) {
    s = store->Write("r", token, "k" + std::to_string(written), value);
    if (!s.ok()) break;
  }
  ASSERT_EQ(s.code(), StatusCode::kNoSpace) << s.ToString();
  EXPECT_GT(written, 4) << "the map should have grown beyond its initial 64 KiB";
  EXPECT_EQ(MustHighest(store.get(), "r"), token - 1) << "the failed write recorded nothing";
  EXPECT_EQ(MustRead(store.get(), "k" + std::to_string(written)), std::nullopt);
  EXPECT_EQ(MustRead(store.get(), "k0"), value);
  ASSERT_OK(store->Register("r", token)) << "small writes still fit";
}

// Overwrites one stored record with raw LMDB, as a flipped bit on disk would.
void Tamper(const std::string& dir, const char* db, std::string_view key,
            std::string_view (*edit)(std::string*)) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 3), 0);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi = 0;
  ASSERT_EQ(mdb_dbi_open(txn, db, 0, &dbi), 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v;
  ASSERT_EQ(mdb_get(txn, dbi, &k, &v), 0);
  std::string record(static_cast<const char*>(v.mv_data), v.mv_size);
  const std::string_view edited = edit(&record);
  MDB_val nv{edited.size(), const_cast<char*>(edited.data())};
  ASSERT_EQ(mdb_put(txn, dbi, &k, &nv, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

std::string_view FlipLastBit(std::string* record) {
  record->back() ^= 1;
  return *record;
}

std::string_view Truncate(std::string* record) { return std::string_view(*record).substr(0, 3); }

std::string g_seen_record;
std::string_view KeepAsIs(std::string* record) {
  g_seen_record = *record;
  return *record;
}

TEST(FenceStoreTest, TheStoredRecordFormatIsStable) {
  // Format 1, as shipped: crc32c (LE) over the database name, a NUL, the key's length (u32 LE),
  // the key, the kind byte and the payload; then the kind (2: token); then the payload (the
  // token, u64 LE). A store written by an earlier binary must still read.
  TempDir tmp;
  const std::string dir = tmp.Sub("fence");
  { ASSERT_OK(MustOpen(dir)->Register("r", 5)); }
  Tamper(dir, "tokens", "r", KeepAsIs);
  const std::string token("\x05\0\0\0\0\0\0\0", 8);
  const std::string covered = std::string("tokens\0\x01\0\0\0r", 12) + '\x02' + token;
  const uint32_t crc = store::Crc32c(covered);
  std::string want;
  for (int i = 0; i < 4; ++i) want.push_back(static_cast<char>(crc >> (8 * i)));
  want += '\x02' + token;
  EXPECT_EQ(g_seen_record, want);
  EXPECT_EQ(MustOpen(dir)->HighestToken("r").value(), 5u);
}

TEST(FenceStoreTest, ACorruptTokenRecordIsCorruptionAndBlocksWrites) {
  TempDir tmp;
  const std::string dir = tmp.Sub("fence");
  {
    auto store = MustOpen(dir);
    ASSERT_OK(store->Write("r", 5, "k", "v"));
  }
  Tamper(dir, "tokens", "r", FlipLastBit);
  auto store = MustOpen(dir);
  EXPECT_EQ(store->HighestToken("r").status().code(), StatusCode::kCorruption);
  const Status s = store->Write("r", 9, "k", "new");
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << "never treated as 'no token yet'";
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();
  EXPECT_EQ(store->Register("r", 9).code(), StatusCode::kCorruption);
  EXPECT_EQ(MustRead(store.get(), "k"), "v") << "nothing was written";
  ASSERT_OK(store->Write("other", 1, "k2", "v2")) << "other resources are unaffected";
}

TEST(FenceStoreTest, ACorruptDataRecordIsCorruption) {
  TempDir tmp;
  const std::string dir = tmp.Sub("fence");
  {
    auto store = MustOpen(dir);
    ASSERT_OK(store->Write("r", 5, "k", "value"));
    ASSERT_OK(store->Write("r", 5, "j", "value"));
  }
  Tamper(dir, "data", "k", FlipLastBit);
  Tamper(dir, "data", "j", Truncate);
  auto store = MustOpen(dir);
  EXPECT_EQ(store->Read("k").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store->Read("j").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(MustHighest(store.get(), "r"), 5u);
}

TEST(FenceStoreTest, ConcurrentWritersLeaveTheHighestTokensValue) {
  TempDir tmp;
  auto store = MustOpen(tmp.Sub("fence"));
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 25;
  std::atomic<int> rejected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Thread t sends tokens t+1, t+1+kThreads, ...: distinct across threads.
      for (int i = 0; i < kWritesPerThread; ++i) {
        const uint64_t token = 1 + t + static_cast<uint64_t>(i) * kThreads;
        const Status s = store->Write("r", token, "k", "t" + std::to_string(token));
        if (s.code() == StatusCode::kAborted) {
          rejected++;
        } else {
          CHECK(s.ok()) << s.ToString();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const uint64_t max_token = kThreads * kWritesPerThread;
  EXPECT_EQ(MustHighest(store.get(), "r"), max_token);
  // The highest write was accepted, everything older after it was refused, everything before
  // it was overwritten: the check and the write were one step.
  EXPECT_EQ(MustRead(store.get(), "k"), "t" + std::to_string(max_token));
}

// --- End to end: a lock holder that stalls past its TTL ---

TEST(FencingEndToEnd, AStaleLockHolderIsRejectedByTheResource) {
  using samples::LockService;
  TempDir tmp;
  auto store = MustOpen(tmp.Sub("fence"));
  LockService locks;
  paxos::Slot slot = 1;
  auto run = [&](uint64_t at_ms, std::string payload) {
    const AppliedCommand command{
        .slot = slot++, .epoch = 1, .client_id = 1, .stamp_ms = at_ms, .payload = payload};
    std::vector<Outcome> outcomes;
    locks.Apply({&command, 1}, &outcomes);
    CHECK_EQ(outcomes.size(), 1u);
    return outcomes[0];
  };
  auto grant = [](const Outcome& outcome) {
    CHECK(outcome.code == StatusCode::kOk) << outcome.message;
    return LockService::DecodeGrant(outcome.data).value();
  };

  // Owner 1 gets the lock with token A and writes under it.
  const LockService::Grant a = grant(run(1'000, LockService::EncodeAcquire("db", "owner-1", 500)));
  ASSERT_OK(store->Register("db", a.token));
  ASSERT_OK(store->Write("db", a.token, "balance", "100"));

  // Owner 1 stalls past its TTL (a GC pause). Leader time moves on; owner 2 gets token B > A.
  EXPECT_EQ(run(1'400, LockService::EncodeAcquire("db", "owner-2", 500)).code,
            StatusCode::kAborted);
  const LockService::Grant b = grant(run(1'600, LockService::EncodeAcquire("db", "owner-2", 500)));
  ASSERT_GT(b.token, a.token);
  ASSERT_OK(store->Write("db", b.token, "balance", "200"));

  // Owner 1 wakes up, still believing it holds the lock, and writes with token A: rejected.
  const Status stale = store->Write("db", a.token, "balance", "999");
  EXPECT_EQ(stale.code(), StatusCode::kAborted);
  EXPECT_EQ(stale.message(), "stale token " + std::to_string(a.token) +
                                 " for resource db: highest seen is " + std::to_string(b.token));
  EXPECT_EQ(MustRead(store.get(), "balance"), "200");
  // Its keepalive is refused by the lock service as well.
  EXPECT_EQ(run(1'700, LockService::EncodeKeepAlive("db", "owner-1")).code, StatusCode::kAborted);
}

TEST(FencingEndToEnd, WithoutRegisterAStaleWriteLandsFirst) {
  // The limit of fencing (docs/fencing.md): a resource only knows tokens it has seen. If the
  // new holder has not touched the resource yet, the old holder's write still lands. Register
  // closes that window.
  TempDir tmp;
  auto store = MustOpen(tmp.Sub("fence"));
  ASSERT_OK(store->Write("db", 1, "k", "a"));
  // Token 2 was granted elsewhere, but the resource has not heard of it:
  ASSERT_OK(store->Write("db", 1, "k", "stale but accepted"));
  ASSERT_OK(store->Register("db", 2));
  EXPECT_EQ(store->Write("db", 1, "k", "stale").code(), StatusCode::kAborted);
}

}  // namespace
}  // namespace ballot::fence
