// Failover with real processes: four clients draw numbers from a 3-node cluster while its leader
// is SIGKILLed and restarted three times, a follower is SIGSTOPped and resumed, and the leader
// is SIGSTOPped (so that it wakes up deposed) and resumed. Afterwards every acknowledged number
// must be unique, the numbers must respect real-time order, and the cluster must serve again.
//
// The failover time (from a kill to the first success of a call sent after it) is printed, not
// asserted: only a generous liveness bound is (kLiveness).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "net/client/sequence_numbers.h"
#include "tests/cluster/number_load.h"
#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// How long the cluster may take to serve again after any one fault. Failover takes well under a
// second here when the machine is quiet; this only catches a cluster that stopped serving.
constexpr seconds kLiveness{10};
// Starting processes (and LMDB) on a busy machine can be slow.
constexpr seconds kStartTimeout{30};
constexpr int kLeaderKills = 3;
// Calls that must complete under each configuration before the next fault.
constexpr size_t kAcksBetweenFaults = 100;

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Both places commands can be applied: inline on the io thread (ballotd's default) and on an
// apply thread of their own.
class FailoverTest : public ::testing::TestWithParam<const char*> {};

TEST_P(FailoverTest, NumbersStayUniqueAndOrderedAcrossLeaderKillsAndStops) {
  const auto test_start = Clock::now();
  ProcessClusterOptions options = DefaultOptions(BALLOTD_PATH);
  options.extra_flags.push_back(GetParam());
  ProcessCluster cluster(options);
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto first_leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(first_leader.ok()) << first_leader.status().ToString();

  NumberLoad load(cluster, {.workers = 4, .count_max = 5, .call_timeout = kLiveness, .seed = 7});
  load.Start();
  ASSERT_TRUE(load.WaitForEveryWorker(Clock::now() + kLiveness)) << load.DescribeFailures();

  // 1. SIGKILL the leader, wait for a successor to serve, restart the old leader.
  std::vector<double> failover_ms;
  for (int kill = 1; kill <= kLeaderKills; ++kill) {
    SCOPED_TRACE("leader kill " + std::to_string(kill));
    ASSERT_TRUE(
        load.WaitForAcksSentAfter(Clock::now(), kAcksBetweenFaults, Clock::now() + kLiveness))
        << load.DescribeFailures();
    auto leader = cluster.WaitForLeader(Clock::now() + kLiveness);
    ASSERT_TRUE(leader.ok()) << leader.status().ToString();
    const auto killed_at = Clock::now();
    cluster.Kill(leader.value().first);
    auto served = load.WaitForAckSentAfter(killed_at, killed_at + kLiveness);
    ASSERT_TRUE(served.has_value()) << "no call sent after the kill succeeded within "
                                    << kLiveness.count() << " s; " << load.DescribeFailures();
    failover_ms.push_back(MsBetween(killed_at, *served));
    std::printf(
        "[ failover ] kill %d: leader %u (epoch %llu) SIGKILLed; first call sent after "
        "it answered after %.0f ms\n",
        kill, leader.value().first, static_cast<unsigned long long>(leader.value().second),
        failover_ms.back());
    Status restarted = cluster.Restart(leader.value().first, Clock::now() + kStartTimeout);
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  }

  // 2. SIGSTOP a follower: the other two keep serving; then resume it.
  {
    auto leader = cluster.WaitForLeader(Clock::now() + kLiveness);
    ASSERT_TRUE(leader.ok()) << leader.status().ToString();
    const paxos::NodeId follower = leader.value().first == 1 ? 2 : 1;
    cluster.Stop(follower);
    const auto stopped_at = Clock::now();
    // Long enough (several election timeouts) for its timers to be overdue when it resumes.
    ASSERT_TRUE(
        load.WaitForAcksSentAfter(stopped_at, 2 * kAcksBetweenFaults, stopped_at + kLiveness))
        << "no progress with follower " << follower << " stopped; " << load.DescribeFailures();
    std::printf("[ failover ] follower %u SIGSTOPped: %zu calls answered in %.0f ms meanwhile\n",
                follower, 2 * kAcksBetweenFaults, MsBetween(stopped_at, Clock::now()));
    cluster.Cont(follower);
    const auto resumed_at = Clock::now();
    ASSERT_TRUE(load.WaitForAcksSentAfter(resumed_at, kAcksBetweenFaults, resumed_at + kLiveness))
        << "no progress after resuming follower " << follower << "; " << load.DescribeFailures();
    auto after = cluster.WaitForLeader(Clock::now() + kLiveness);
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    std::printf(
        "[ failover ] follower %u resumed: leader %u epoch %llu before, leader %u epoch "
        "%llu after\n",
        follower, leader.value().first, static_cast<unsigned long long>(leader.value().second),
        after.value().first, static_cast<unsigned long long>(after.value().second));
  }

  // 3. SIGSTOP the leader until a successor serves, then resume it: it wakes up believing it
  //    leads, and must not hand out anything out of order.
  {
    ASSERT_TRUE(
        load.WaitForAcksSentAfter(Clock::now(), kAcksBetweenFaults, Clock::now() + kLiveness))
        << load.DescribeFailures();
    auto leader = cluster.WaitForLeader(Clock::now() + kLiveness);
    ASSERT_TRUE(leader.ok()) << leader.status().ToString();
    cluster.Stop(leader.value().first);
    const auto stopped_at = Clock::now();
    auto served = load.WaitForAckSentAfter(stopped_at, stopped_at + kLiveness);
    ASSERT_TRUE(served.has_value())
        << "no call sent after stopping the leader succeeded; " << load.DescribeFailures();
    std::printf(
        "[ failover ] leader %u SIGSTOPped: first call sent after it answered after "
        "%.0f ms\n",
        leader.value().first, MsBetween(stopped_at, *served));
    cluster.Cont(leader.value().first);
    const auto resumed_at = Clock::now();
    ASSERT_TRUE(load.WaitForAcksSentAfter(resumed_at, kAcksBetweenFaults, resumed_at + kLiveness))
        << "no progress after resuming the old leader; " << load.DescribeFailures();
  }

  load.Stop();
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();

  const std::vector<NumberCall> calls = load.acked();
  std::printf(
      "[ failover ] %zu calls answered, %zu failed (%s); failover median %.0f ms, "
      "max %.0f ms over %d kills\n",
      calls.size(), load.failed_count(), load.DescribeFailures().c_str(), Median(failover_ms),
      *std::max_element(failover_ms.begin(), failover_ms.end()), kLeaderKills);
  EXPECT_TRUE(load.bad_replies().empty()) << load.bad_replies().front();
  for (const std::string& d : FindDuplicates(calls)) ADD_FAILURE() << d;
  for (const std::string& v : FindOrderViolations(calls)) ADD_FAILURE() << v;

  // The cluster serves again, after everything handed out so far.
  uint64_t highest = 0;
  for (const NumberCall& c : calls) highest = std::max(highest, c.last());
  auto client = cluster.NewClient();
  auto fresh = NextNumbers(*client, 1, kLiveness);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_GT(fresh.value().first, highest);

  // Every node, the restarted and the resumed ones included, ends at the same position.
  std::string positions;
  EXPECT_TRUE(cluster.WaitForConvergence(Clock::now() + kStartTimeout, &positions))
      << "idle cluster did not converge: " << positions;
  std::printf("[ failover ] idle cluster converged: %s\n", positions.c_str());
  std::printf("[ failover ] took %.1f s\n", MsBetween(test_start, Clock::now()) / 1000);
}

INSTANTIATE_TEST_SUITE_P(ApplyThread, FailoverTest,
                         ::testing::Values("--apply_inline=true", "--apply_inline=false"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.index == 0 ? "Inline" : "OwnThread");
                         });

}  // namespace
}  // namespace ballot::cluster_test
