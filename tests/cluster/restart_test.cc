// Restarts with real processes and real LMDB directories:
//  (a) every node is SIGKILLed at once under load and restarted: whatever was acknowledged before
//      survives, so every number handed out afterwards is greater than every number acknowledged
//      before (kKillAllRounds times);
//  (b) a follower killed while the others keep taking writes is restarted and catches up to the
//      others' applied position, then carries a quorum on its own with one of them.
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

constexpr seconds kLiveness{10};
constexpr seconds kStartTimeout{30};
// Catching up replays what the node missed over the network: generous on a busy machine.
constexpr seconds kCatchUpTimeout{30};
constexpr milliseconds kStatusTimeout{1000};
constexpr int kKillAllRounds = 3;
// Calls answered between kill-all rounds, and while the follower is down.
constexpr size_t kAcksPerRound = 200;
constexpr size_t kAcksMissed = 1500;

void CheckCalls(const NumberLoad& load) {
  const std::vector<NumberCall> calls = load.acked();
  EXPECT_TRUE(load.bad_replies().empty()) << load.bad_replies().front();
  for (const std::string& d : FindDuplicates(calls)) ADD_FAILURE() << d;
  for (const std::string& v : FindOrderViolations(calls)) ADD_FAILURE() << v;
}

// Stops the load, then checks every node is still alive and every answered call is sound.
void FinishLoad(NumberLoad* load, ProcessCluster* cluster, const char* test,
                Clock::time_point test_start) {
  load->Stop();
  Status alive = cluster->CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
  std::printf("[ restart ] %zu calls answered, %zu failed (%s)\n", load->acked_count(),
              load->failed_count(), load->DescribeFailures().c_str());
  CheckCalls(*load);
  std::printf("[ restart ] %s test took %.1f s\n", test,
              MsBetween(test_start, Clock::now()) / 1000);
}

std::string Describe(const std::map<paxos::NodeId, paxos::Slot>& positions) {
  std::string out;
  for (const auto& [id, applied] : positions) {
    out += (out.empty() ? "" : ", ") + std::string("node ") + std::to_string(id) +
           " applied below " + std::to_string(applied);
  }
  return out;
}

TEST(RestartTest, KillingEveryNodeUnderLoadLosesNothingAcknowledged) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());

  NumberLoad load(cluster, {.workers = 4, .count_max = 5, .call_timeout = kLiveness, .seed = 11});
  load.Start();
  ASSERT_TRUE(load.WaitForEveryWorker(Clock::now() + kLiveness)) << load.DescribeFailures();

  for (int round = 1; round <= kKillAllRounds; ++round) {
    SCOPED_TRACE("kill-all round " + std::to_string(round));
    ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), kAcksPerRound, Clock::now() + kLiveness))
        << load.DescribeFailures();
    cluster.KillAll();  // workers have calls in flight: the kill lands under load
    // No node runs from here until the restart: every reply a client reads before then was
    // written before the kill.
    const auto restart_at = Clock::now();
    uint64_t highest_before = 0;
    size_t acked_before = 0;
    for (const NumberCall& c : load.acked()) {
      if (c.replied > restart_at) continue;
      highest_before = std::max(highest_before, c.last());
      ++acked_before;
    }
    Status restarted = cluster.StartAll(Clock::now() + kStartTimeout);
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
    auto served = load.WaitForAckSentAfter(restart_at, restart_at + kStartTimeout);
    ASSERT_TRUE(served.has_value())
        << "no call succeeded after the restart; " << load.DescribeFailures();
    std::printf(
        "[ restart ] round %d: all 3 nodes SIGKILLed after %zu acknowledged calls "
        "(highest number %llu); first call sent after the restart began answered "
        "after %.0f ms\n",
        round, acked_before, static_cast<unsigned long long>(highest_before),
        MsBetween(restart_at, *served));
    ASSERT_TRUE(load.WaitForAcksSentAfter(restart_at, kAcksPerRound, restart_at + kStartTimeout))
        << load.DescribeFailures();
    size_t acked_after = 0;
    for (const NumberCall& c : load.acked()) {
      if (c.sent < restart_at) continue;
      ++acked_after;
      EXPECT_GT(c.first, highest_before)
          << "number " << c.first << " handed out after the restart, but " << highest_before
          << " was acknowledged before it";
    }
    EXPECT_GE(acked_after, kAcksPerRound);
  }
  FinishLoad(&load, &cluster, "kill-all", test_start);
}

// A rolling restart with SIGTERM under load: each node stops cleanly (exit code 0) within the
// deadline, and the other two keep serving meanwhile.
TEST(RestartTest, RollingCleanRestartUnderLoad) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());

  NumberLoad load(cluster, {.workers = 4, .count_max = 5, .call_timeout = kLiveness, .seed = 17});
  load.Start();
  ASSERT_TRUE(load.WaitForEveryWorker(Clock::now() + kLiveness)) << load.DescribeFailures();
  for (const paxos::NodeId id : cluster.ids()) {
    SCOPED_TRACE("node " + std::to_string(id));
    const auto stop_at = Clock::now();
    const std::string how = cluster.Terminate(id, stop_at + kLiveness);
    EXPECT_EQ(how, "exited 0") << "SIGTERM under load; log in " << cluster.LogPath(id);
    std::printf("[ restart ] node %u SIGTERMed under load: %s after %.0f ms\n", id, how.c_str(),
                MsBetween(stop_at, Clock::now()));
    const auto down_at = Clock::now();
    ASSERT_TRUE(load.WaitForAcksSentAfter(down_at, kAcksPerRound / 2, down_at + kLiveness))
        << "no progress with node " << id << " stopped; " << load.DescribeFailures();
    Status restarted = cluster.StartNode(id, Clock::now() + kStartTimeout);
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
    ASSERT_TRUE(
        load.WaitForAcksSentAfter(Clock::now(), kAcksPerRound / 2, Clock::now() + kLiveness))
        << load.DescribeFailures();
  }
  FinishLoad(&load, &cluster, "rolling restart", test_start);
}

TEST(RestartTest, RestartedFollowerCatchesUpWithTheOthers) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  const paxos::NodeId leader_id = leader.value().first;
  const paxos::NodeId follower = leader_id == 1 ? 2 : 1;
  const paxos::NodeId other = 6 - leader_id - follower;  // ids are 1, 2, 3

  NumberLoad load(cluster, {.workers = 4, .count_max = 5, .call_timeout = kLiveness, .seed = 13});
  load.Start();
  ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), 50, Clock::now() + kLiveness))
      << load.DescribeFailures();

  // Kill the follower and let the other two take writes without it.
  auto before_kill = cluster.NodeStatus(follower, kStatusTimeout);
  ASSERT_TRUE(before_kill.ok()) << before_kill.status().ToString();
  cluster.Kill(follower);
  const auto killed_at = Clock::now();
  ASSERT_TRUE(load.WaitForAcksSentAfter(killed_at, kAcksMissed, killed_at + kStartTimeout))
      << "no progress without follower " << follower << "; " << load.DescribeFailures();

  // Restart it while the load goes on; it must reach where the others were when it came back.
  Status restarted = cluster.StartNode(follower, Clock::now() + kStartTimeout);
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  const auto restarted_at = Clock::now();
  auto target = cluster.AppliedPositions(kStatusTimeout);
  ASSERT_TRUE(target.count(leader_id) && target.count(other)) << Describe(target);
  const paxos::Slot want = std::max(target[leader_id], target[other]);
  ASSERT_GT(want, before_kill.value().applied_below)
      << "the others took no writes while node " << follower << " was down";
  std::printf(
      "[ restart ] follower %u killed at applied %llu; restarted while the others are "
      "at %s\n",
      follower, static_cast<unsigned long long>(before_kill.value().applied_below),
      Describe(target).c_str());
  paxos::Slot reached = 0;
  const bool caught_up = WaitUntil(restarted_at + kCatchUpTimeout, [&] {
    auto s = cluster.NodeStatus(follower, kStatusTimeout);
    if (s.ok()) reached = s.value().applied_below;
    return reached >= want;
  });
  ASSERT_TRUE(caught_up) << "node " << follower << " reached applied " << reached << ", wanted "
                         << want << " within " << kCatchUpTimeout.count() << " s";
  std::printf(
      "[ restart ] follower %u reached applied %llu (under load) %.0f ms after its "
      "restart\n",
      follower, static_cast<unsigned long long>(want), MsBetween(restarted_at, Clock::now()));

  // Once the load stops, every node ends at the same position.
  load.Stop();
  std::string positions;
  EXPECT_TRUE(cluster.WaitForConvergence(Clock::now() + kCatchUpTimeout, &positions))
      << "idle cluster did not converge: " << positions;
  std::printf("[ restart ] idle cluster converged: %s\n", positions.c_str());

  // The restarted node now holds the log: with the old leader gone, it and the third node must
  // serve, after everything handed out so far.
  uint64_t highest = 0;
  for (const NumberCall& c : load.acked()) highest = std::max(highest, c.last());
  cluster.Kill(leader_id);
  auto client = cluster.NewClient();
  auto fresh = NextNumbers(*client, 1, kLiveness);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_GT(fresh.value().first, highest);

  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
  std::printf("[ restart ] %zu calls answered, %zu failed (%s)\n", load.acked_count(),
              load.failed_count(), load.DescribeFailures().c_str());
  CheckCalls(load);
  std::printf("[ restart ] catch-up test took %.1f s\n",
              MsBetween(test_start, Clock::now()) / 1000);
}

}  // namespace
}  // namespace ballot::cluster_test
