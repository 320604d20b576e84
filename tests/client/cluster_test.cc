// ParseCluster, DefaultClusterId and ClientOptions::Validate: pure functions, no sockets.
#include <gtest/gtest.h>

#include <string>

#include "net/client/client.h"
#include "net/cluster_config.h"

namespace ballot {
namespace {

// What the parse error says, or "" if it parsed.
std::string ErrorOf(std::string_view cluster) {
  auto r = ParseCluster(cluster);
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(ParseClusterTest, ParsesMembersInAnyOrder) {
  auto r = ParseCluster("2@127.0.0.1:7002,1@127.0.0.1:7001,3@host-c.example:7003");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::map<paxos::NodeId, std::string> want = {
      {1, "127.0.0.1:7001"}, {2, "127.0.0.1:7002"}, {3, "host-c.example:7003"}};
  EXPECT_EQ(r.value(), want);
}

TEST(ParseClusterTest, AcceptsSpacesIpv6AndOneMember) {
  auto r = ParseCluster(" 1@[::1]:7001 ,  2@[fe80::1%eth0]:65535 ");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().at(1), "[::1]:7001");
  EXPECT_EQ(r.value().at(2), "[fe80::1%eth0]:65535");
  auto one = ParseCluster("65535@localhost:1");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one.value().size(), 1u);
}

TEST(ParseClusterTest, RejectsEmpty) {
  EXPECT_NE(ErrorOf("").find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf("   ").find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf("1@a:1,").find("entry 2 is empty"), std::string::npos);
  EXPECT_NE(ErrorOf(",1@a:1").find("entry 1 is empty"), std::string::npos);
  EXPECT_NE(ErrorOf("1@a:1,,2@b:2").find("entry 2 is empty"), std::string::npos);
}

TEST(ParseClusterTest, RejectsBadIds) {
  EXPECT_NE(ErrorOf("127.0.0.1:7001").find("not id@host:port"), std::string::npos);
  EXPECT_NE(ErrorOf("@a:1").find("node id ''"), std::string::npos);
  EXPECT_NE(ErrorOf("0@a:1").find("node id '0'"), std::string::npos);
  EXPECT_NE(ErrorOf("65536@a:1").find("1..65535"), std::string::npos);
  EXPECT_NE(ErrorOf("x@a:1").find("node id 'x'"), std::string::npos);
  EXPECT_NE(ErrorOf("-1@a:1").find("node id '-1'"), std::string::npos);
  EXPECT_NE(ErrorOf("1x@a:1").find("node id '1x'"), std::string::npos);
  EXPECT_NE(ErrorOf("99999999999999999999999@a:1").find("node id"), std::string::npos);
}

TEST(ParseClusterTest, RejectsDuplicates) {
  EXPECT_NE(ErrorOf("1@a:1,2@b:2,1@c:3").find("node id 1 appears twice"), std::string::npos);
  EXPECT_NE(ErrorOf("1@a:1,2@a:1").find("also node 1"), std::string::npos);
}

TEST(ParseClusterTest, RejectsBadAddresses) {
  EXPECT_NE(ErrorOf("1@").find("empty address"), std::string::npos);
  EXPECT_NE(ErrorOf("1@host").find("missing ':port'"), std::string::npos);
  EXPECT_NE(ErrorOf("1@host:").find("missing the port"), std::string::npos);
  EXPECT_NE(ErrorOf("1@:7001").find("no host"), std::string::npos);
  EXPECT_NE(ErrorOf("1@host:0").find("out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("1@host:65536").find("out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("1@host:99999999999999999999999").find("out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("1@host:http").find("not a number"), std::string::npos);
  EXPECT_NE(ErrorOf("1@host:70 01").find("not a number"), std::string::npos);
  EXPECT_NE(ErrorOf("1@::1:7001").find("[brackets]"), std::string::npos);
  EXPECT_NE(ErrorOf("1@[::1]7001").find("missing ':port'"), std::string::npos);
  EXPECT_NE(ErrorOf("1@[::1:7001").find("no closing ']'"), std::string::npos);
  EXPECT_NE(ErrorOf("1@[]:7001").find("no host"), std::string::npos);
  EXPECT_NE(ErrorOf("1@ho st:7001").find("invalid character"), std::string::npos);
  EXPECT_NE(ErrorOf("1@a@b:7001").find("invalid character '@'"), std::string::npos);
}

TEST(ParseClusterTest, ErrorsNameTheEntry) {
  const std::string e = ErrorOf("1@a:1,2@b:99999");
  EXPECT_NE(e.find("cluster entry 2 '2@b:99999'"), std::string::npos) << e;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

TEST(DefaultClusterIdTest, IsFnv1aOfMembersInIdOrder) {
  EXPECT_EQ(DefaultClusterId("1@a:1,2@b:2"), Fnv1a("1@a:1,2@b:2,"));
  EXPECT_EQ(DefaultClusterId("2@b:2,1@a:1"), Fnv1a("1@a:1,2@b:2,"));
  EXPECT_EQ(DefaultClusterId(" 2@b:2 , 1@a:1"), DefaultClusterId("1@a:1,2@b:2"));
  EXPECT_EQ(DefaultClusterId("10@a:1,9@b:2"), Fnv1a("9@b:2,10@a:1,"));  // numeric id order
}

TEST(BootstrapClusterIdTest, ATokenSeparatesClustersWithTheSameMembers) {
  const std::map<paxos::NodeId, std::string> members = {{1, "a:1"}, {2, "b:2"}};
  EXPECT_EQ(BootstrapClusterId(members, ""), DefaultClusterId("1@a:1,2@b:2"));
  EXPECT_EQ(BootstrapClusterId(members, "prod-7"), Fnv1a("1@a:1,2@b:2,token=prod-7"));
  EXPECT_NE(BootstrapClusterId(members, "prod-7"), BootstrapClusterId(members, "prod-8"));
  EXPECT_NE(BootstrapClusterId(members, "prod-7"), BootstrapClusterId(members, ""));
}

TEST(DefaultClusterIdTest, DiffersBetweenClustersAndIsNeverZero) {
  EXPECT_NE(DefaultClusterId("1@a:1,2@b:2"), DefaultClusterId("1@a:1,2@b:3"));
  EXPECT_NE(DefaultClusterId("1@a:1,2@b:2"), DefaultClusterId("1@b:2,2@a:1"));
  EXPECT_NE(DefaultClusterId("1@a:1"), 0u);
  EXPECT_NE(DefaultClusterId(""), 0u);
  EXPECT_EQ(DefaultClusterId("garbage"), Fnv1a("garbage"));  // unparsable: hashed as written
}

TEST(ClientOptionsTest, ValidateNamesTheProblem) {
  ClientOptions o;
  EXPECT_NE(o.Validate().message().find("members"), std::string::npos);
  o.members = {{1, "127.0.0.1:1"}};
  EXPECT_TRUE(o.Validate().ok());
  o.members = {{0, "127.0.0.1:1"}};
  EXPECT_NE(o.Validate().message().find("member id 0"), std::string::npos);
  o.members = {{1, "127.0.0.1"}};
  EXPECT_NE(o.Validate().message().find("member 1"), std::string::npos);
  o.members = {{1, "127.0.0.1:1"}};
  o.attempt_timeout = std::chrono::milliseconds(0);
  EXPECT_NE(o.Validate().message().find("attempt_timeout"), std::string::npos);
  o.attempt_timeout = std::chrono::milliseconds(1);
  o.in_flight_max = 0;
  EXPECT_NE(o.Validate().message().find("in_flight_max"), std::string::npos);
  EXPECT_FALSE(Client::Create(o).ok());
}

}  // namespace
}  // namespace ballot
