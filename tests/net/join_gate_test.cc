// JoinGate (safe bootstrap) as pure logic, and the DIR/CLUSTER record it is persisted in.
#include "net/join_gate.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

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

TEST(JoinGateTest, HellosFromStrangersAndClientsAreIgnored) {
  JoinGate gate = EmptyGate(1);
  EXPECT_FALSE(gate.OnPeerHello(Established(9, {1, 9})).refuse.has_value());
  EXPECT_FALSE(gate.OnPeerHello(Hello{kCluster, 2}).save.has_value()) << "kUnknown counts nothing";
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
