// JoinGate (safe bootstrap) as pure logic, and the DIR/CLUSTER record it is persisted in.
#include "net/server/join_gate.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "store/checksum.h"

namespace ballot {
namespace {

using net::DataState;
using net::Hello;
using store::ClusterIdentity;

constexpr uint64_t kCluster = 0xC1;

Hello Empty(paxos::NodeId from) {
  Hello h{kCluster, from};
  h.data_state = DataState::kEmpty;
  return h;
}

Hello Established(paxos::NodeId from, std::vector<paxos::NodeId> joined) {
  Hello h{kCluster, from};
  h.data_state = DataState::kEstablished;
  h.joined_members = std::move(joined);
  return h;
}

JoinGate EmptyGate(paxos::NodeId self, std::vector<paxos::NodeId> members = {1, 2, 3}) {
  return JoinGate(self, std::move(members), kCluster, std::nullopt, "/data");
}

TEST(JoinGateTest, OneNodeClusterJoinsAndTakesPartAtOnce) {
  JoinGate gate = EmptyGate(1, {1});
  JoinGate::Actions a = gate.Start();
  ASSERT_TRUE(a.save.has_value());
  EXPECT_EQ(*a.save, (ClusterIdentity{kCluster, 1, {1}}));
  EXPECT_TRUE(a.participate);
  EXPECT_TRUE(gate.participating());
}

TEST(JoinGateTest, FreshClusterIsCreatedByAMajorityOfNewMembers) {
  JoinGate gate = EmptyGate(1);
  EXPECT_FALSE(gate.Start().save.has_value());
  JoinGate::Actions a = gate.OnPeerHello(Empty(2));
  ASSERT_TRUE(a.save.has_value());
  EXPECT_TRUE(a.reconnect);
  EXPECT_FALSE(a.participate) << "not before a majority lists it";
  EXPECT_EQ(gate.data_state(), DataState::kEstablished);
  // Peer 2 joined too and, hearing node 1 joined, lists it.
  a = gate.OnPeerHello(Established(2, {1, 2}));
  ASSERT_TRUE(a.save.has_value()) << "peer 2 is recorded as joined";
  EXPECT_EQ(a.save->joined_members, (std::vector<paxos::NodeId>{1, 2}));
  EXPECT_TRUE(a.participate);
}

TEST(JoinGateTest, WipedNodeRefusesAsSoonAsAPeerListsIt) {
  JoinGate gate = EmptyGate(3);
  JoinGate::Actions a = gate.OnPeerHello(Established(1, {1, 2, 3}));
  ASSERT_TRUE(a.refuse.has_value());
  EXPECT_EQ(a.refuse->code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(a.refuse->message().find("data directory /data is empty but cluster "
                                     "0x00000000000000c1 already exists"),
            std::string::npos)
      << a.refuse->message();
  EXPECT_NE(a.refuse->message().find("this node's data was lost"), std::string::npos);
  EXPECT_FALSE(a.save.has_value());
  EXPECT_FALSE(gate.participating());
}

TEST(JoinGateTest, LateFoundingMemberJoinsAClusterThatNeverSawIt) {
  JoinGate gate = EmptyGate(5, {1, 2, 3, 4, 5});
  EXPECT_FALSE(gate.OnPeerHello(Established(1, {1, 2, 3})).save.has_value()) << "2 of 5";
  JoinGate::Actions a = gate.OnPeerHello(Established(2, {1, 2, 3}));
  ASSERT_TRUE(a.save.has_value());
  EXPECT_EQ(a.save->joined_members, (std::vector<paxos::NodeId>{5}));
  EXPECT_FALSE(a.participate);
  // Peers record it on its next hellos and list it; with itself a majority lists it.
  a = gate.OnPeerHello(Established(1, {1, 2, 3, 5}));
  EXPECT_FALSE(a.participate) << "2 of 5";
  a = gate.OnPeerHello(Established(2, {1, 2, 3, 5}));
  EXPECT_TRUE(a.participate);
  ASSERT_TRUE(a.save.has_value());
  EXPECT_EQ(a.save->joined_members, (std::vector<paxos::NodeId>{1, 2, 5}));
}

TEST(JoinGateTest, EstablishedNodeTakesPartOnlyWhenAMajorityListsIt) {
  JoinGate gate(1, {1, 2, 3, 4, 5}, kCluster, ClusterIdentity{kCluster, 1, {1, 2, 3, 4, 5}},
                "/data");
  EXPECT_FALSE(gate.Start().participate);
  EXPECT_FALSE(gate.OnPeerHello(Established(2, {1, 2})).participate);
  EXPECT_FALSE(gate.OnPeerHello(Established(3, {2, 3})).participate) << "3 does not list 1";
  EXPECT_FALSE(gate.OnPeerHello(Empty(4)).participate);
  EXPECT_TRUE(gate.OnPeerHello(Established(5, {1, 5})).participate);
}

TEST(JoinGateTest, EstablishedNodeNotesAnEmptyPeerThatHadJoined) {
  JoinGate gate(1, {1, 2, 3}, kCluster, ClusterIdentity{kCluster, 1, {1, 2}}, "/data");
  JoinGate::Actions a = gate.OnPeerHello(Empty(2));
  EXPECT_NE(a.note.find("peer 2 reports an empty data directory"), std::string::npos);
  EXPECT_FALSE(a.participate) << "an empty peer does not list anyone";
  EXPECT_TRUE(gate.OnPeerHello(Empty(2)).note.empty()) << "said once";
  EXPECT_FALSE(gate.OnPeerHello(Empty(3)).save.has_value()) << "an empty peer is not recorded";
}

// Nodes outside the bootstrap configuration (added later) do not decide whether the cluster is
// being created, but one that lists this node as joined shows that its data was lost.
TEST(JoinGateTest, NodesAddedLaterDoNotCreateTheClusterButDoRefuseAWipedNode) {
  JoinGate gate = EmptyGate(1);
  EXPECT_FALSE(gate.OnPeerHello(Empty(8)).save.has_value());
  EXPECT_FALSE(gate.OnPeerHello(Established(9, {9})).save.has_value()) << "strangers count nothing";
  EXPECT_FALSE(gate.OnPeerHello(Hello{kCluster, 2}).save.has_value()) << "kUnknown counts nothing";
  JoinGate::Actions a = gate.OnPeerHello(Established(9, {1, 9}));
  ASSERT_TRUE(a.refuse.has_value());
  EXPECT_NE(a.refuse->message().find("member remove 1`, then `ballotctl --cluster=<members> "
                                     "member add NEW_ID@HOST:PORT`, then start it with "
                                     "--id=NEW_ID --join"),
            std::string::npos)
      << a.refuse->message();
}

// An established node lists every established peer, also one added after the bootstrap, so that
// the added node is refused if it comes back empty.
TEST(JoinGateTest, EstablishedNodeListsPeersAddedLater) {
  JoinGate gate(1, {1, 2, 3}, kCluster, ClusterIdentity{kCluster, 1, {1, 2, 3}}, "/data");
  JoinGate::Actions a = gate.OnPeerHello(Established(4, {4}));
  ASSERT_TRUE(a.save.has_value());
  EXPECT_EQ(a.save->joined_members, (std::vector<paxos::NodeId>{1, 2, 3, 4}));
  EXPECT_FALSE(a.participate) << "a node outside the configuration does not vouch for this one";
}

// ballotd --join on an empty directory: once a majority of the other members given say they are
// established and do not list it, the identity (bootstrap "join") is recorded and the node takes
// part; restarted, it takes part at once.
TEST(JoinGateTest, JoiningNodeJoinsOnceAMajorityOfTheOthersDoNotListIt) {
  JoinGate gate = EmptyGate(4, {1, 2, 3, 4});
  gate.set_join(true);
  EXPECT_FALSE(gate.Start().save.has_value());
  EXPECT_FALSE(gate.OnPeerHello(Empty(1)).save.has_value()) << "an empty node is no member";
  EXPECT_FALSE(gate.OnPeerHello(Established(1, {1, 2, 3})).save.has_value()) << "1 of 3";
  JoinGate::Actions a = gate.OnPeerHello(Established(2, {1, 2, 3}));
  ASSERT_TRUE(a.save.has_value());
  ClusterIdentity expected{kCluster, 4, {4}};
  expected.bootstrap.emplace();
  EXPECT_EQ(*a.save, expected);
  EXPECT_TRUE(a.reconnect);
  EXPECT_TRUE(a.participate);
  JoinGate restarted(4, {1, 2, 3, 4}, kCluster, expected, "/data");
  restarted.set_join(true);
  a = restarted.Start();
  EXPECT_FALSE(a.save.has_value());
  EXPECT_TRUE(a.participate);
}

// Started with --join while the cluster still has it as a member (its data was lost and the
// operator did not remove it first): it waits, says what to do, and joins once the members
// have removed (and forgotten) it.
TEST(JoinGateTest, JoiningNodeStillListedWaitsUntilItIsRemoved) {
  JoinGate gate = EmptyGate(2, {1, 2, 3});
  gate.set_join(true);
  JoinGate::Actions a = gate.OnPeerHello(Established(1, {1, 2, 3}));
  EXPECT_FALSE(a.refuse.has_value());
  EXPECT_FALSE(a.save.has_value());
  EXPECT_NE(a.note.find("node 1 lists this node as a member that joined"), std::string::npos);
  EXPECT_NE(a.note.find("member remove 2"), std::string::npos) << a.note;
  EXPECT_FALSE(gate.OnPeerHello(Established(3, {1, 3})).save.has_value()) << "1 still lists it";
  EXPECT_TRUE(gate.waiting_to_join());
  // Node 1 applied the removal and forgot it.
  a = gate.OnPeerHello(Established(1, {1, 3}));
  ASSERT_TRUE(a.save.has_value());
  EXPECT_TRUE(a.participate);
  EXPECT_FALSE(gate.waiting_to_join());
}

TEST(JoinGateTest, RemovedMembersAreForgotten) {
  JoinGate gate(1, {1, 2, 3}, kCluster, ClusterIdentity{kCluster, 1, {1, 2, 3}}, "/data");
  EXPECT_FALSE(gate.ForgetRemoved({1, 2, 3, 4}).save.has_value()) << "nobody left";
  JoinGate::Actions a = gate.ForgetRemoved({1, 3, 4});
  ASSERT_TRUE(a.save.has_value());
  EXPECT_EQ(a.save->joined_members, (std::vector<paxos::NodeId>{1, 3}));
  EXPECT_EQ(gate.joined_members(), (std::vector<paxos::NodeId>{1, 3}));
  // Removed and wiped, it comes back empty: no longer listed, it is not warned about.
  EXPECT_TRUE(gate.OnPeerHello(Empty(2)).note.empty());
}

TEST(JoinGateTest, CreatedIdentityRecordsTheBootstrapConfiguration) {
  JoinGate gate = EmptyGate(1, {1});
  gate.set_bootstrap({{1, "10.0.0.1:7001"}});
  JoinGate::Actions a = gate.Start();
  ASSERT_TRUE(a.save.has_value());
  ASSERT_TRUE(a.save->bootstrap.has_value());
  EXPECT_EQ(*a.save->bootstrap, (std::map<paxos::NodeId, std::string>{{1, "10.0.0.1:7001"}}));
}

class ClusterIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/ballot-cluster-identity-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ClusterIdentityTest, AbsentSavedAndLoadedBack) {
  auto loaded = store::LoadClusterIdentity(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_FALSE(loaded.value().has_value());
  const ClusterIdentity identity{0xb19d8977ff184c27, 2, {1, 2, 3}};
  ASSERT_TRUE(store::SaveClusterIdentity(dir_, identity).ok());
  loaded = store::LoadClusterIdentity(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded.value(), identity);
  std::ifstream in(dir_ + "/CLUSTER");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("cluster_id 0xb19d8977ff184c27\nnode_id 2\njoined 1,2,3\n"),
            std::string::npos)
      << text;
}

TEST_F(ClusterIdentityTest, BootstrapConfigurationIsRecordedInFormat2) {
  ClusterIdentity identity{0xb19d8977ff184c27, 2, {1, 2, 3}};
  identity.bootstrap = std::map<paxos::NodeId, std::string>{
      {1, "10.0.0.1:7001"}, {2, "host-b:7002"}, {3, "[::1]:7003"}};
  ASSERT_TRUE(store::SaveClusterIdentity(dir_, identity).ok());
  auto loaded = store::LoadClusterIdentity(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded.value(), identity);
  std::ifstream in(dir_ + "/CLUSTER");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.rfind("ballot cluster identity 2\n", 0), 0u) << text;
  EXPECT_NE(text.find("\nbootstrap 1@10.0.0.1:7001,2@host-b:7002,3@[::1]:7003\n"),
            std::string::npos)
      << text;
  // A node that joined an existing cluster has no bootstrap configuration of its own.
  identity.bootstrap.emplace();
  ASSERT_TRUE(store::SaveClusterIdentity(dir_, identity).ok());
  loaded = store::LoadClusterIdentity(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded.value(), identity);
}

// Format 1 (before membership changes) has no bootstrap line and still loads.
TEST_F(ClusterIdentityTest, Format1StillLoads) {
  const std::string body =
      "ballot cluster identity 1\ncluster_id 0x00000000000000c1\nnode_id 1\njoined 1,2\n";
  char crc[32];
  std::snprintf(crc, sizeof crc, "crc32c 0x%08x\n", store::Crc32c(body));
  std::ofstream(dir_ + "/CLUSTER") << body << crc;
  auto loaded = store::LoadClusterIdentity(dir_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded.value(), (ClusterIdentity{kCluster, 1, {1, 2}}));
  EXPECT_FALSE(loaded.value()->bootstrap.has_value());
}

TEST_F(ClusterIdentityTest, DamagedFileIsCorruptionNeverAbsent) {
  ASSERT_TRUE(store::SaveClusterIdentity(dir_, ClusterIdentity{7, 1, {1}}).ok());
  std::string text;
  {
    std::ifstream in(dir_ + "/CLUSTER");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  text[text.find("node_id 1") + 8] = '2';  // one flipped digit
  std::ofstream(dir_ + "/CLUSTER") << text;
  auto loaded = store::LoadClusterIdentity(dir_);
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption) << loaded.status().ToString();
  std::ofstream(dir_ + "/CLUSTER") << "";
  EXPECT_EQ(store::LoadClusterIdentity(dir_).status().code(), StatusCode::kCorruption);
}

TEST_F(ClusterIdentityTest, InvalidIdentitiesAreNotWritten) {
  EXPECT_EQ(store::SaveClusterIdentity(dir_, ClusterIdentity{0, 1, {1}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store::SaveClusterIdentity(dir_, ClusterIdentity{7, 1, {2}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store::SaveClusterIdentity(dir_, ClusterIdentity{7, 1, {2, 1}}).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ballot
