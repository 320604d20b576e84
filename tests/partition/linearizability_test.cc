// The checker must be able to fail: each bad history here is one a broken cluster could give.
#include "tests/partition/linearizability.h"

#include <gtest/gtest.h>

#include <random>

namespace ballot::partition_test {
namespace {

using Verdict = CheckResult::Verdict;

KvOp Write(int client, std::string value, int64_t invoke, std::optional<int64_t> complete,
           std::string key = "k") {
  return KvOp{KvOp::Kind::kWrite, client, std::move(key), std::move(value), invoke, complete};
}

KvOp Read(int client, std::optional<std::string> value, int64_t invoke, int64_t complete,
          std::string key = "k") {
  return KvOp{KvOp::Kind::kRead, client, std::move(key), std::move(value), invoke, complete};
}

TEST(Linearizability, EmptyAndSequentialHistoriesPass) {
  EXPECT_EQ(CheckLinearizable({}).verdict, Verdict::kLinearizable);
  EXPECT_EQ(CheckLinearizable({Read(1, std::nullopt, 0, 1), Write(1, "a", 2, 3), Read(2, "a", 4, 5),
                               Write(2, "b", 6, 7), Read(1, "b", 8, 9)})
                .verdict,
            Verdict::kLinearizable);
}

TEST(Linearizability, StaleReadAfterANewerWriteCompletedFails) {
  // b completed before the read began, yet the read returns a: what a deposed leader serving a
  // lease read it no longer holds would produce.
  CheckResult r = CheckLinearizable({Write(1, "a", 0, 1), Write(1, "b", 2, 3), Read(2, "a", 4, 5)});
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "k");
  EXPECT_NE(r.explanation.find("read  k = a"), std::string::npos) << r.explanation;
}

TEST(Linearizability, ReadOfAValueBeforeItsWriteWasInvokedFails) {
  EXPECT_EQ(CheckLinearizable({Read(2, "a", 0, 1), Write(1, "a", 2, 3)}).verdict,
            Verdict::kNotLinearizable);
}

TEST(Linearizability, ReadOfAValueNobodyWroteFails) {
  EXPECT_EQ(CheckLinearizable({Write(1, "a", 0, 1), Read(2, "zzz", 2, 3)}).verdict,
            Verdict::kNotLinearizable);
}

TEST(Linearizability, ReadsMustNotGoBackInTime) {
  // Two sequential reads by anyone: once b was seen, a cannot come back.
  EXPECT_EQ(CheckLinearizable(
                {Write(1, "a", 0, 1), Write(1, "b", 2, 10), Read(2, "b", 3, 4), Read(3, "a", 5, 6)})
                .verdict,
            Verdict::kNotLinearizable);
  // Concurrent with the write of b, either order is fine while the reads overlap it.
  EXPECT_EQ(CheckLinearizable(
                {Write(1, "a", 0, 1), Write(1, "b", 2, 10), Read(2, "a", 3, 4), Read(3, "b", 5, 6)})
                .verdict,
            Verdict::kLinearizable);
}

TEST(Linearizability, IndeterminateWritesMayApplyLateOrNever) {
  // The write of a timed out; it may still take effect later (seen at 20) ...
  EXPECT_EQ(CheckLinearizable(
                {Write(1, "a", 0, std::nullopt), Read(2, std::nullopt, 5, 6), Read(2, "a", 20, 21)})
                .verdict,
            Verdict::kLinearizable);
  // ... or never.
  EXPECT_EQ(
      CheckLinearizable({Write(1, "a", 0, std::nullopt), Read(2, std::nullopt, 5, 6)}).verdict,
      Verdict::kLinearizable);
  // But not before it was invoked.
  EXPECT_EQ(CheckLinearizable({Read(2, "a", 0, 1), Write(1, "a", 2, std::nullopt)}).verdict,
            Verdict::kNotLinearizable);
  // And once seen it cannot vanish again.
  EXPECT_EQ(CheckLinearizable(
                {Write(1, "a", 0, std::nullopt), Read(2, "a", 5, 6), Read(2, std::nullopt, 7, 8)})
                .verdict,
            Verdict::kNotLinearizable);
}

TEST(Linearizability, KeysAreIndependent) {
  EXPECT_EQ(CheckLinearizable({Write(1, "a", 0, 1, "x"), Read(2, std::nullopt, 2, 3, "y"),
                               Read(2, "a", 4, 5, "x")})
                .verdict,
            Verdict::kLinearizable);
  CheckResult r = CheckLinearizable(
      {Write(1, "a", 0, 1, "x"), Write(1, "b", 0, 1, "y"), Read(2, std::nullopt, 4, 5, "y")});
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "y");
}

// A long history made by a real register with clients overlapping at random is linearizable;
// changing one read to an older value makes it not. Also shows the search stays cheap at the
// sizes the partition tests produce.
TEST(Linearizability, LongRandomHistoryPassesAndOneStaleReadFails) {
  std::mt19937_64 rng(12);
  std::vector<KvOp> history;
  std::optional<std::string> current;
  int64_t now = 0;
  std::vector<std::string> written;
  for (int i = 0; i < 400; ++i) {
    // Each op takes effect at `now`; its interval covers that point, with random slack.
    const int64_t invoke = now - static_cast<int64_t>(rng() % 50);
    const int64_t complete = now + static_cast<int64_t>(rng() % 50);
    if (rng() % 2 == 0) {
      current = "v" + std::to_string(i);
      written.push_back(*current);
      history.push_back(Write(static_cast<int>(i % 4), *current, invoke, complete));
    } else {
      history.push_back(Read(static_cast<int>(i % 4), current, invoke, complete));
    }
    now += 10;
  }
  CheckResult ok = CheckLinearizable(history);
  ASSERT_EQ(ok.verdict, Verdict::kLinearizable) << ok.explanation;
  // A read far from the first write, given the first value: impossible.
  history.push_back(Read(9, written.front(), now + 1000, now + 1001));
  EXPECT_EQ(CheckLinearizable(history).verdict, Verdict::kNotLinearizable);
}

TEST(Linearizability, GivesUpRatherThanPassWhenTheBoundIsHit) {
  std::vector<KvOp> history;
  // Many fully concurrent writes and a final impossible read: the search must explore a lot.
  for (int i = 0; i < 16; ++i) history.push_back(Write(i, "w" + std::to_string(i), 0, 100));
  history.push_back(Read(99, "nope", 200, 201));
  EXPECT_EQ(CheckLinearizable(history, /*steps_max=*/100).verdict, Verdict::kGaveUp);
}

}  // namespace
}  // namespace ballot::partition_test
