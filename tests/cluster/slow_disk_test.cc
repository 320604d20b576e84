// A sync that takes over a second (it happens on this hardware) must not cost the leadership:
// heartbeats and heartbeat replies are sent from the io thread, never behind the disk.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "tests/cluster/number_load.h"
#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::seconds;
constexpr seconds kStartTimeout{30};
constexpr seconds kLiveness{10};

TEST(SlowDiskTest, ASecondLongSyncOnEveryNodeDoesNotChangeTheLeader) {
  ProcessClusterOptions options = DefaultOptions(BALLOTD_PATH);
  // Every node's storage thread stalls once, for 1.5 s, after its 60th commit: leader and
  // followers alike, under load.
  options.extra_flags.push_back("--TEST_stall_storage_after_commits=60");
  options.extra_flags.push_back("--TEST_storage_stall_ms=1500");
  ProcessCluster cluster(options);
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto before = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  NumberLoad load(cluster, {.workers = 2, .count_max = 3, .call_timeout = kLiveness, .seed = 5});
  load.Start();
  // Enough commits that every node passed its stall, then some more.
  ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), 400, Clock::now() + seconds(60)))
      << load.DescribeFailures();
  const auto after_stall = Clock::now();
  ASSERT_TRUE(load.WaitForAcksSentAfter(after_stall, 50, after_stall + kLiveness))
      << load.DescribeFailures();
  load.Stop();

  for (paxos::NodeId id = 1; id <= 3; ++id) {
    EXPECT_EQ(cluster.CountLogLines(id, {"TEST stall of the storage thread"}), 1u)
        << "node " << id << " should have stalled once";
  }
  auto after = cluster.WaitForLeader(Clock::now() + kLiveness);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  std::printf("[ slow disk ] leader %u epoch %llu before, leader %u epoch %llu after\n",
              before.value().first, static_cast<unsigned long long>(before.value().second),
              after.value().first, static_cast<unsigned long long>(after.value().second));
  EXPECT_EQ(after.value(), before.value()) << "a slow sync changed the leader";
  EXPECT_TRUE(load.bad_replies().empty());
}

}  // namespace
}  // namespace ballot::cluster_test
