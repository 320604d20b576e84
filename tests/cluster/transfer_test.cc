// Leader transfer and planned restarts with real processes (issue 11 item 3), under 16 clients of
// the sequence sample (NumberLoad):
//  (a) `ballotctl leader transfer --to=ID` moves leadership to that follower: it prints the
//      target and an epoch above the old one, the target leads, and no client call fails;
//      `leader transfer` without --to picks a voter; a target that is not a voter is refused
//      with exit 1;
//  (b) a rolling restart of all three nodes (SIGTERM, restart, next), the leader included: each
//      exits 0, a leader hands over first, and no client call fails. The worst and p99 latency
//      of the calls are printed.
// Every answered call is checked: no number twice, real-time order kept.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/cluster/number_load.h"
#include "tests/cluster/process_cluster.h"
#include "tests/cluster/tool_run.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr seconds kLiveness{10};
constexpr seconds kToolTimeout{20};
constexpr size_t kWorkers = 16;
constexpr size_t kAcksBetween = 300;

ToolResult Ctl(const ProcessCluster& cluster, std::vector<std::string> args) {
  std::vector<std::string> full = {BALLOTCTL_PATH, "--cluster=" + cluster.cluster_flag(),
                                   "--timeout_ms=10000"};
  full.insert(full.end(), args.begin(), args.end());
  return RunTool(full, Clock::now() + kToolTimeout);
}

struct Latency {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

Latency LatencyOf(const std::vector<NumberCall>& calls) {
  std::vector<double> ms;
  for (const NumberCall& c : calls) ms.push_back(MsBetween(c.sent, c.replied));
  if (ms.empty()) return {};
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) {
    return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
  };
  return {at(0.50), at(0.99), ms.back()};
}

void CheckCalls(NumberLoad& load, ProcessCluster& cluster) {
  load.Stop();
  EXPECT_EQ(load.failed_count(), 0u) << load.DescribeFailures();
  EXPECT_TRUE(load.bad_replies().empty());
  const std::vector<NumberCall> calls = load.acked();
  for (const std::string& d : FindDuplicates(calls)) ADD_FAILURE() << d;
  for (const std::string& v : FindOrderViolations(calls)) ADD_FAILURE() << v;
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
}

// "<id> <epoch>\n" as ballotctl prints it.
bool ParseLeader(const std::string& out, paxos::NodeId* id, uint64_t* epoch) {
  unsigned long long e = 0;
  unsigned i = 0;
  if (std::sscanf(out.c_str(), "%u %llu", &i, &e) != 2) return false;
  *id = i;
  *epoch = e;
  return true;
}

TEST(TransferTest, LeaderTransferUnderLoadFailsNoCall) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  NumberLoad load(cluster,
                  {.workers = kWorkers, .count_max = 5, .call_timeout = kLiveness, .seed = 31});
  load.Start();
  ASSERT_TRUE(load.WaitForEveryWorker(Clock::now() + kLiveness)) << load.DescribeFailures();

  paxos::NodeId current = leader.value().first;
  uint64_t epoch = leader.value().second;
  for (int round = 0; round < 3; ++round) {
    const paxos::NodeId target = current % 3 + 1;
    const auto asked = Clock::now();
    ToolResult r = Ctl(cluster, {"leader", "transfer", "--to=" + std::to_string(target)});
    const double took_ms = MsBetween(asked, Clock::now());
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    paxos::NodeId id = 0;
    uint64_t new_epoch = 0;
    ASSERT_TRUE(ParseLeader(r.out, &id, &new_epoch)) << r.Describe();
    EXPECT_EQ(id, target) << r.Describe();
    EXPECT_GT(new_epoch, epoch) << r.Describe();
    auto now_leads = cluster.WaitForLeader(Clock::now() + kLiveness);
    ASSERT_TRUE(now_leads.ok()) << now_leads.status().ToString();
    EXPECT_EQ(now_leads.value().first, target);
    std::printf(
        "[ transfer ] node %u -> node %u under %zu clients: epoch %llu -> %llu, ballotctl "
        "took %.0f ms\n",
        current, target, kWorkers, static_cast<unsigned long long>(epoch),
        static_cast<unsigned long long>(new_epoch), took_ms);
    current = target;
    epoch = new_epoch;
    ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), kAcksBetween, Clock::now() + kLiveness))
        << load.DescribeFailures();
  }

  // No --to: the leader picks a voter.
  ToolResult any = Ctl(cluster, {"leader", "transfer"});
  ASSERT_EQ(any.exit_code, 0) << any.Describe();
  paxos::NodeId picked = 0;
  uint64_t picked_epoch = 0;
  ASSERT_TRUE(ParseLeader(any.out, &picked, &picked_epoch)) << any.Describe();
  EXPECT_NE(picked, current);
  EXPECT_GT(picked_epoch, epoch);
  // Not a voter: refused, nothing moves.
  ToolResult bad = Ctl(cluster, {"leader", "transfer", "--to=7"});
  EXPECT_EQ(bad.exit_code, 1) << bad.Describe();
  EXPECT_NE(bad.err.find("not a voter"), std::string::npos) << bad.Describe();
  ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), kAcksBetween, Clock::now() + kLiveness))
      << load.DescribeFailures();

  CheckCalls(load, cluster);
  const Latency l = LatencyOf(load.acked());
  std::printf("[ transfer ] %zu calls, 0 failed; latency p50 %.1f ms, p99 %.1f ms, worst %.1f ms\n",
              load.acked_count(), l.p50_ms, l.p99_ms, l.max_ms);
}

TEST(TransferTest, RollingRestartWithSigtermFailsNoCall) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  NumberLoad load(cluster,
                  {.workers = kWorkers, .count_max = 5, .call_timeout = kLiveness, .seed = 37});
  load.Start();
  ASSERT_TRUE(load.WaitForEveryWorker(Clock::now() + kLiveness)) << load.DescribeFailures();

  // The leader last, so that every kind of stop is seen: two followers, then a leader that has
  // to hand over. Should leadership have moved meanwhile (an election on a busy machine), it is
  // moved back to the last node first.
  auto leader = cluster.WaitForLeader(Clock::now() + kLiveness);
  ASSERT_TRUE(leader.ok());
  std::vector<paxos::NodeId> order;
  for (paxos::NodeId id : cluster.ids()) {
    if (id != leader.value().first) order.push_back(id);
  }
  order.push_back(leader.value().first);
  for (const paxos::NodeId id : order) {
    SCOPED_TRACE("node " + std::to_string(id));
    auto leads = cluster.WaitForLeader(Clock::now() + kLiveness);
    ASSERT_TRUE(leads.ok()) << leads.status().ToString();
    if (id == order.back() && leads.value().first != id) {
      ToolResult moved = Ctl(cluster, {"leader", "transfer", "--to=" + std::to_string(id)});
      ASSERT_EQ(moved.exit_code, 0) << moved.Describe();
      leads = cluster.WaitForLeader(Clock::now() + kLiveness);
      ASSERT_TRUE(leads.ok() && leads.value().first == id);
    }
    const bool was_leader = leads.value().first == id;
    const size_t before = cluster.CountLogLines(id, {"handing leadership to node"});
    const auto stop_at = Clock::now();
    const std::string how = cluster.Terminate(id, stop_at + kLiveness);
    EXPECT_EQ(how, "exited 0") << cluster.LogPath(id);
    const size_t handed = cluster.CountLogLines(id, {"handing leadership to node"}) - before;
    if (was_leader) {
      EXPECT_EQ(handed, 1u) << "the leader stopped without handing over";
    }
    std::printf("[ rolling ] node %u: SIGTERM -> %s in %.0f ms%s\n", id, how.c_str(),
                MsBetween(stop_at, Clock::now()), handed ? " (handed leadership over first)" : "");
    ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), kAcksBetween, Clock::now() + kLiveness))
        << "no progress with node " << id << " down; " << load.DescribeFailures();
    ASSERT_TRUE(cluster.StartNode(id, Clock::now() + kStartTimeout).ok());
    // Caught up with where the others were when it came back, before the next one stops.
    const auto positions = cluster.AppliedPositions(milliseconds(1000));
    paxos::Slot want = 0;
    for (const auto& [node, applied] : positions) want = std::max(want, applied);
    ASSERT_TRUE(WaitUntil(Clock::now() + kStartTimeout,
                          [&] {
                            auto s = cluster.NodeStatus(id, milliseconds(1000));
                            return s.ok() && s.value().applied_below >= want;
                          }))
        << "node " << id << " did not catch up to " << want;
    ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), kAcksBetween, Clock::now() + kLiveness))
        << load.DescribeFailures();
  }

  CheckCalls(load, cluster);
  const Latency l = LatencyOf(load.acked());
  std::printf(
      "[ rolling ] %zu calls under %zu clients, 0 failed; latency p50 %.1f ms, p99 %.1f "
      "ms, worst %.1f ms\n",
      load.acked_count(), kWorkers, l.p50_ms, l.p99_ms, l.max_ms);
}

}  // namespace
}  // namespace ballot::cluster_test
