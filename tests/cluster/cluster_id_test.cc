// The cluster id with real ballotd processes (issue 11 item 1): created once at bootstrap,
// stored in every data directory, learnt by clients and by joining nodes; no longer tied to the
// member list.
//  (a) ballotctl given a list that differs from the servers' --cluster (another order, a dead
//      address added, a member killed, the leader left out) works without being told the id; a
//      server of another cluster in the list is refused with a message naming both ids, and
//      --cluster_id pins the id (then that other server is refused whatever the order).
//  (b) the id is derived at bootstrap from the initial members and --cluster_token; restarted
//      with another token and another member list, every node keeps the stored id and serves on.
//  (c) a node started with --join on a fresh data directory learns the id from a member.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "net/client/sequence_numbers.h"
#include "statemachine/samples/sequence.h"
#include "store/cluster_identity.h"
#include "tests/cluster/process_cluster.h"
#include "tests/cluster/tool_run.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr seconds kToolTimeout{20};

std::string Address(const ProcessCluster& cluster, paxos::NodeId id) {
  return "127.0.0.1:" + std::to_string(cluster.port(id));
}

// A port on 127.0.0.1 where nothing listens (found by binding port 0, then closed).
std::string DeadAddress() {
  ProcessCluster scratch(DefaultOptions(BALLOTD_PATH, 1));  // picks a free port, starts nothing
  return Address(scratch, 1);
}

ToolResult Ctl(const std::string& cluster_flag, std::vector<std::string> args) {
  std::vector<std::string> full = {BALLOTCTL_PATH, "--cluster=" + cluster_flag,
                                   "--timeout_ms=10000"};
  full.insert(full.end(), args.begin(), args.end());
  return RunTool(full, Clock::now() + kToolTimeout);
}

uint64_t StoredClusterId(const ProcessCluster& cluster, paxos::NodeId id) {
  auto identity = store::LoadClusterIdentity(cluster.DataDir(id));
  EXPECT_TRUE(identity.ok()) << identity.status().ToString();
  if (!identity.ok() || !identity.value().has_value()) return 0;
  return identity.value()->cluster_id;
}

TEST(ClusterIdTest, CtlLearnsTheIdFromAnyLiveMemberAndRefusesAnotherCluster) {
  ProcessCluster a(DefaultOptions(BALLOTD_PATH));
  ASSERT_TRUE(a.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(a.WaitForLeader(Clock::now() + kStartTimeout).ok());
  // Another cluster of one node, on the same machine.
  ProcessCluster b(DefaultOptions(BALLOTD_PATH, 1));
  ASSERT_TRUE(b.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_NE(a.cluster_id(), b.cluster_id());
  const std::string dead = DeadAddress();

  // Not the servers' --cluster: another order, a dead address added.
  const std::string other_list =
      "3@" + Address(a, 3) + ",7@" + dead + ",1@" + Address(a, 1) + ",2@" + Address(a, 2);
  ToolResult r = Ctl(other_list, {"seq", "next", "--count=3"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "1\n2\n3\n") << r.Describe();

  // Node 1 killed but listed first: the id is learnt from the next member that answers.
  a.Kill(1);
  const std::string first_dead =
      "1@" + Address(a, 1) + ",2@" + Address(a, 2) + ",3@" + Address(a, 3) + ",7@" + dead;
  r = Ctl(first_dead, {"seq", "next", "--count=2"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "4\n5\n") << r.Describe();
  ASSERT_TRUE(a.StartNode(1, Clock::now() + kStartTimeout).ok());

  // Cluster b's node in the list, after a's members: learnt from a's node 1, b's refused.
  const std::string mixed = a.cluster_flag() + ",9@" + Address(b, 1);
  r = Ctl(mixed, {"status", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  const std::string refusal = "node 9 (" + Address(b, 1) + ") is in cluster " +
                              store::FormatClusterId(b.cluster_id()) + ", not in cluster " +
                              store::FormatClusterId(a.cluster_id()) + " (learnt from node 1)";
  EXPECT_NE(r.out.find(refusal), std::string::npos) << r.Describe();
  EXPECT_EQ(r.out.find("\"id\":9,\"address\":\"" + Address(b, 1) + "\",\"reachable\":true"),
            std::string::npos)
      << r.Describe();
  r = Ctl(mixed, {"seq", "next"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "6\n") << r.Describe();

  // b's node listed first: without --cluster_id the client learns b's id (the first server that
  // answers) and refuses a's; --cluster_id pins a's id and b's node is the one refused.
  const std::string b_first = "1@" + Address(b, 1) + ",2@" + Address(a, 2) + ",3@" + Address(a, 3);
  r = Ctl(b_first, {"status"});
  EXPECT_NE(r.out.find("is in cluster " + store::FormatClusterId(a.cluster_id()) +
                       ", not in cluster " + store::FormatClusterId(b.cluster_id())),
            std::string::npos)
      << r.Describe();
  r = Ctl(b_first, {"--cluster_id=" + std::to_string(a.cluster_id()), "seq", "next"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "7\n") << r.Describe();
  r = Ctl(b_first, {"--cluster_id=" + std::to_string(a.cluster_id()), "status"});
  EXPECT_NE(r.out.find("node 1 (" + Address(b, 1) + ") is in cluster " +
                       store::FormatClusterId(b.cluster_id()) + ", not in cluster " +
                       store::FormatClusterId(a.cluster_id()) + " (given by --cluster_id)"),
            std::string::npos)
      << r.Describe();
  // A list without the leader (a follower and a dead address): the follower's hint names the
  // leader's address, and the client goes there.
  auto leader = a.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  const paxos::NodeId follower = leader.value().first % 3 + 1;
  const std::string no_leader =
      std::to_string(follower) + "@" + Address(a, follower) + ",7@" + dead;
  r = Ctl(no_leader, {"seq", "next"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "8\n") << r.Describe();
  ASSERT_TRUE(a.CheckAlive().ok());
  ASSERT_TRUE(b.CheckAlive().ok());
}

TEST(ClusterIdTest, StoredIdOutlivesTheMemberListAndTheToken) {
  ProcessClusterOptions options = DefaultOptions(BALLOTD_PATH);
  options.cluster_token = "orders-eu-1";
  ProcessCluster cluster(options);
  std::map<paxos::NodeId, std::string> members;
  for (paxos::NodeId id : cluster.ids()) members[id] = Address(cluster, id);
  const uint64_t bootstrapped = BootstrapClusterId(members, "orders-eu-1");
  ASSERT_NE(bootstrapped, DefaultClusterId(cluster.cluster_flag()));  // the token changes it
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());

  // Clients learn the id.
  auto client = Client::Create([&] {
    ClientOptions o = cluster.client_options();
    o.cluster_id = 0;
    return o;
  }());
  ASSERT_TRUE(client.ok());
  auto first = NextNumbers(*client.value(), 5, seconds(10));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(client.value()->cluster_id(), bootstrapped);
  for (paxos::NodeId id : cluster.ids()) EXPECT_EQ(StoredClusterId(cluster, id), bootstrapped);

  // Every node restarts with another token, and node 3 with a member list that names a fourth
  // member (as after `member add`): the stored id stands.
  const std::string longer = cluster.cluster_flag() + ",4@" + DeadAddress();
  for (paxos::NodeId id : cluster.ids()) {
    std::vector<std::string> flags = {"--cluster_token=something-else"};
    if (id == 3) flags.push_back("--cluster=" + longer);
    cluster.SetNodeFlags(id, flags);
    ASSERT_TRUE(cluster.Restart(id, Clock::now() + kStartTimeout).ok());
  }
  auto after = NextNumbers(*client.value(), 5, seconds(20));
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after.value().first, first.value().first + 5);
  for (paxos::NodeId id : cluster.ids()) EXPECT_EQ(StoredClusterId(cluster, id), bootstrapped);
  ToolResult r = Ctl(longer, {"seq", "next"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, std::to_string(first.value().first + 10) + "\n") << r.Describe();
  ASSERT_TRUE(cluster.CheckAlive().ok());

  // --cluster_id pinning another id: refused at start, naming both.
  cluster.SetNodeFlags(2, {"--cluster_id=12345"});
  Status pinned = cluster.Restart(2, Clock::now() + kStartTimeout);
  EXPECT_FALSE(pinned.ok());
  EXPECT_NE(pinned.message().find("belongs to cluster " + store::FormatClusterId(bootstrapped)),
            std::string::npos)
      << pinned.ToString();
}

TEST(ClusterIdTest, JoiningNodeLearnsTheIdFromAMember) {
  // Four addresses; nodes 1-3 create the cluster (their --cluster has only them), node 4 joins.
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH, 4));
  std::string founders;
  for (paxos::NodeId id : {1u, 2u, 3u}) {
    founders += (founders.empty() ? "" : ",") + std::to_string(id) + "@" + Address(cluster, id);
  }
  std::map<paxos::NodeId, std::string> initial;
  for (paxos::NodeId id : {1u, 2u, 3u}) initial[id] = Address(cluster, id);
  const uint64_t id = BootstrapClusterId(initial, "t");
  cluster.set_cluster_id(id);
  for (paxos::NodeId node : {1u, 2u, 3u}) {
    cluster.SetNodeFlags(node, {"--cluster=" + founders, "--cluster_token=t"});
    ASSERT_TRUE(cluster.StartNode(node, Clock::now() + kStartTimeout).ok());
  }
  // Node 1 is down: the joiner asks the next member.
  cluster.Kill(1);
  cluster.SetNodeFlags(4, {"--join"});
  ASSERT_TRUE(cluster.StartNode(4, Clock::now() + kStartTimeout).ok());
  EXPECT_EQ(cluster.WaitForLogLines(
                4, {"joining cluster " + store::FormatClusterId(id) + " (learnt from"}, 1,
                Clock::now() + kStartTimeout),
            1u)
      << cluster.ReadLog(4);
  // It then goes on as a joining learner of that cluster (membership_test.cc adds it).
  EXPECT_EQ(cluster.WaitForLogLines(
                4, {"joining cluster " + store::FormatClusterId(id) + " as a learner"}, 1,
                Clock::now() + kStartTimeout),
            1u)
      << cluster.ReadLog(4);
  ASSERT_TRUE(cluster.CheckAlive().ok());
}

}  // namespace
}  // namespace ballot::cluster_test
