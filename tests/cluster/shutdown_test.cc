// Graceful shutdown with real processes (issue 11 item 3): ballotd stops on SIGTERM or SIGINT by
// finishing the persist in progress, closing its store and exiting 0.
//  (a) every node of a cluster under load gets SIGTERM at the same instant: each exits 0 within
//      the deadline and says it closed its store; restarted, no node replays its journal (the
//      store was folded in at close) and every number handed out afterwards is above every
//      number acknowledged before;
//  (b) SIGINT does the same for one node, and a SIGTERM while a node waits for its peers (an
//      empty data directory, no quorum yet) stops it cleanly too.
#include <gtest/gtest.h>
#include <signal.h>

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

constexpr seconds kStartTimeout{30};
constexpr seconds kLiveness{10};
// A clean stop takes milliseconds; this bounds a hang.
constexpr seconds kStopTimeout{10};
constexpr size_t kAcksBefore = 300;

const std::vector<std::string> kStoppedCleanly = {"stopped cleanly; store closed"};
const std::vector<std::string> kReplayed = {"replayed", "journal records"};

TEST(ShutdownTest, SigtermToEveryNodeUnderLoadLosesNothingAcknowledged) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  NumberLoad load(cluster, {.workers = 8, .count_max = 5, .call_timeout = kLiveness, .seed = 23});
  load.Start();
  ASSERT_TRUE(load.WaitForAcksSentAfter(Clock::now(), kAcksBefore, Clock::now() + kLiveness))
      << load.DescribeFailures();

  // Every node at once, while calls are in flight.
  const auto stop_at = Clock::now();
  const std::map<paxos::NodeId, std::string> how = cluster.TerminateAll(stop_at + kStopTimeout);
  const double stop_ms = MsBetween(stop_at, Clock::now());
  load.Stop();
  uint64_t highest = 0;
  for (const NumberCall& c : load.acked()) highest = std::max(highest, c.last());
  std::printf(
      "[ shutdown ] SIGTERM to all three under load: all exited within %.0f ms; %zu calls "
      "acknowledged before, highest number %llu\n",
      stop_ms, load.acked_count(), static_cast<unsigned long long>(highest));
  std::map<paxos::NodeId, size_t> replays_before;
  for (paxos::NodeId id : cluster.ids()) {
    EXPECT_EQ(how.at(id), "exited 0") << "node " << id << "; log in " << cluster.LogPath(id);
    EXPECT_EQ(cluster.CountLogLines(id, kStoppedCleanly), 1u) << cluster.LogPath(id);
    replays_before[id] = cluster.CountLogLines(id, kReplayed);
  }

  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  for (paxos::NodeId id : cluster.ids()) {
    EXPECT_EQ(cluster.CountLogLines(id, kReplayed), replays_before[id])
        << "node " << id << " replayed its journal after a clean stop; log in "
        << cluster.LogPath(id);
  }
  std::unique_ptr<Client> client = cluster.NewClient();
  auto next = NextNumbers(*client, 1, kLiveness);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_GT(next.value().first, highest) << "a number acknowledged before SIGTERM was lost";
  EXPECT_TRUE(FindDuplicates(load.acked()).empty());
  ASSERT_TRUE(cluster.CheckAlive().ok());
}

TEST(ShutdownTest, SigintAndSigtermWhileWaitingForPeersStopCleanly) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  // Node 1 alone: an empty data directory, waiting to hear whether the cluster exists.
  ASSERT_TRUE(cluster.StartNode(1, Clock::now() + kStartTimeout).ok());
  EXPECT_EQ(cluster.Terminate(1, Clock::now() + kStopTimeout), "exited 0") << cluster.ReadLog(1);
  EXPECT_EQ(cluster.CountLogLines(1, kStoppedCleanly), 1u) << cluster.ReadLog(1);

  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  std::unique_ptr<Client> client = cluster.NewClient();
  auto first = NextNumbers(*client, 10, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::map<paxos::NodeId, std::string> how =
      cluster.TerminateAll(Clock::now() + kStopTimeout, SIGINT);
  for (paxos::NodeId id : cluster.ids()) {
    EXPECT_EQ(how.at(id), "exited 0") << "node " << id << "; log in " << cluster.LogPath(id);
  }
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  auto next = NextNumbers(*client, 1, kLiveness);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next.value().first, first.value().first + 10);
}

}  // namespace
}  // namespace ballot::cluster_test
