// Safe bootstrap with real ballotd processes and real LMDB directories (issue 11 item 1):
//  (a) a node whose data directory was wiped must not vote blank. The scenario: three
//      nodes serving the sequence sample; a follower is killed; next(5) hands out 1..5 from the
//      other two; both are killed; one of them comes back with an EMPTY data directory together
//      with the first follower. The wiped node must refuse to start (exit non-zero, saying its
//      data was lost) instead of forming a quorum with the follower that never saw 1..5; once the
//      third node, whose data is intact, comes back, numbers continue from 6.
//  (b) a node that kept DIR/CLUSTER but lost its LMDB store refuses too;
//  (c) data directories written before DIR/CLUSTER existed keep serving;
//  (d) a fresh cluster still bootstraps, also when one member starts long after the others have
//      created it (a late founding member is not mistaken for a wiped one).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "statemachine/samples/sequence.h"
#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {
namespace {

using samples::SequenceGenerator;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr seconds kLiveness{10};
// While no quorum can be formed, a call is given this long to (wrongly) succeed.
constexpr seconds kNoQuorumWait{4};

// next(count) through a fresh client; the block handed out, or why not.
Result<SequenceGenerator::Block> Next(const ProcessCluster& cluster, uint64_t count,
                                      milliseconds timeout) {
  std::unique_ptr<Client> client = cluster.NewClient();
  Result<Client::ProposeReply> reply =
      client->Propose(SequenceGenerator::EncodeNext(count), timeout);
  if (!reply.ok()) return reply.status();
  if (reply.value().outcome.code != StatusCode::kOk) {
    return Status(reply.value().outcome.code, reply.value().outcome.message);
  }
  return SequenceGenerator::DecodeBlock(reply.value().outcome.data);
}

paxos::NodeId OtherThan(paxos::NodeId a, paxos::NodeId b) {
  for (paxos::NodeId id : {1u, 2u, 3u}) {
    if (id != a && id != b) return id;
  }
  return paxos::kNoNode;
}

TEST(BootstrapTest, WipedNodeRefusesToStartAndNoNumberIsHandedOutTwice) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();

  // A follower goes down; the other two hand out 1..5.
  const paxos::NodeId follower = leader.value().first == 1 ? 2 : 1;
  cluster.Kill(follower);
  Result<SequenceGenerator::Block> first = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first.value(), (SequenceGenerator::Block{1, 5}));

  // Both go down; one of them loses its disk and comes back with the follower.
  cluster.KillAll();
  const paxos::NodeId wiped = leader.value().first;
  const paxos::NodeId intact = OtherThan(follower, wiped);
  std::filesystem::remove_all(cluster.dir() + "/node" + std::to_string(wiped));
  started = cluster.StartNode(follower, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  // The wiped node may exit before or after it answers its first status request.
  Status wiped_start = cluster.StartNode(wiped, Clock::now() + kStartTimeout);
  std::printf("[ bootstrap ] starting the wiped node %u: %s\n", wiped,
              wiped_start.ToString().c_str());

  // Nothing may be handed out again below 6: before the fix this returned 1..5 a second time.
  Result<SequenceGenerator::Block> again = Next(cluster, 5, kNoQuorumWait);
  if (again.ok()) {
    EXPECT_GT(again.value().first, 5u) << "numbers 1..5 were handed out twice";
  }

  // The wiped node refused, said why, and exited non-zero.
  ASSERT_TRUE(WaitUntil(Clock::now() + kLiveness, [&] {
    (void)cluster.CheckAlive();  // reaps a node that exited; its status is checked below
    return !cluster.running(wiped);
  })) << "the wiped node is still running";
  const std::string log = cluster.ReadLog(wiped);
  EXPECT_NE(log.find("is empty but cluster 0x"), std::string::npos) << log;
  EXPECT_NE(log.find("this node's data was lost"), std::string::npos) << log;
  EXPECT_NE(log.find("exited 1"), std::string::npos) << log;
  EXPECT_TRUE(cluster.running(follower));

  // The node with its data back: the cluster continues from 6.
  started = cluster.StartNode(intact, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> next = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next.value(), (SequenceGenerator::Block{6, 5}));
  // Only the wiped node exited.
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
}

// Only the LMDB store lost, DIR/CLUSTER kept: the node must not open a blank store either.
TEST(BootstrapTest, NodeWhoseStoreAloneWasLostRefusesToStart) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  cluster.Kill(2);
  ASSERT_TRUE(std::filesystem::remove(cluster.dir() + "/node2/data.mdb"));
  started = cluster.StartNode(2, Clock::now() + kStartTimeout);
  EXPECT_EQ(started.code(), StatusCode::kAborted) << started.ToString();
  EXPECT_NE(started.message().find("its store (data.mdb) is missing: this node's data was lost"),
            std::string::npos)
      << started.message();
  EXPECT_NE(cluster.ReadLog(2).find("node 2 exited 1"), std::string::npos);
}

// Data directories written before DIR/CLUSTER existed (simulated by deleting it everywhere):
// nodes with protocol state count as joined, record it, and serve on from where they were.
TEST(BootstrapTest, DataWrittenBeforeTheIdentityFileExistedKeepsServing) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> first = Next(cluster, 4, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first.value(), (SequenceGenerator::Block{1, 4}));
  // Every node holds protocol state (a node that never promised nor accepted anything is as good
  // as empty, and would rightly join as a founding member instead).
  std::string positions;
  ASSERT_TRUE(cluster.WaitForConvergence(Clock::now() + kLiveness, &positions)) << positions;
  cluster.KillAll();
  for (paxos::NodeId id : cluster.ids()) {
    ASSERT_TRUE(std::filesystem::remove(cluster.dir() + "/node" + std::to_string(id) + "/CLUSTER"));
  }
  started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> next = Next(cluster, 4, kLiveness);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next.value(), (SequenceGenerator::Block{5, 4}));
  for (paxos::NodeId id : cluster.ids()) {
    EXPECT_TRUE(std::filesystem::exists(cluster.dir() + "/node" + std::to_string(id) + "/CLUSTER"));
    EXPECT_EQ(cluster.CountLogLines(id, {"recorded the cluster identity of existing data"}), 1u);
  }
}

TEST(BootstrapTest, FreshClusterBootstrapsAndALateFoundingMemberJoins) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  // Two members create the cluster and serve before the third has ever started.
  for (paxos::NodeId id : {1u, 2u}) {
    Status started = cluster.StartNode(id, Clock::now() + kStartTimeout);
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  Result<SequenceGenerator::Block> first = Next(cluster, 3, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first.value(), (SequenceGenerator::Block{1, 3}));

  // The third, empty, joins the existing cluster: it never took part, so it has lost nothing.
  Status started = cluster.StartNode(3, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  cluster.Kill(1);
  Result<SequenceGenerator::Block> next = Next(cluster, 3, kLiveness);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next.value(), (SequenceGenerator::Block{4, 3}));
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
}

}  // namespace
}  // namespace ballot::cluster_test
