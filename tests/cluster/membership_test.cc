// Membership changes with real ballotd processes, real LMDB directories and ballotctl, as an
// operator runs them (issue 11 items 2 and 4; docs/membership.md):
//  (a) the scenario: a wiped node is refused with a message saying what to do; the
//      operator removes it, adds it back (`ballotctl member add`), starts it with --join; it
//      catches up, is promoted, and no number is ever handed out twice;
//  (b) a node is replaced under the load of 16 clients: add 4, remove 3; nothing acknowledged is
//      lost and 4 is a voter;
//  (c) 3 -> 5 -> 3 members, `member list --json` checked at each step;
//  (d) removing the current leader: leadership moves first, and the removed node no longer
//      counts towards a quorum.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "statemachine/samples/sequence.h"
#include "tests/cluster/number_load.h"
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

int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  output->clear();
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// `ballotctl --cluster=<the entries of ids> <args>`, with the cluster id pinned (the lists
// differ from the one the cluster was created with). Bounded by --wait_ms / --timeout_ms.
// `pin_id`: pass --cluster_id (else ballotctl learns the id from the first server that answers).
int Ctl(const ProcessCluster& cluster, const std::vector<paxos::NodeId>& ids,
        const std::string& args, std::string* out, bool pin_id = true) {
  std::string list;
  for (paxos::NodeId id : ids) list += (list.empty() ? "" : ",") + cluster.Entry(id);
  const std::string pin =
      pin_id ? " --cluster_id=" + std::to_string(cluster.cluster_id()) : std::string();
  const std::string command = std::string(BALLOTCTL_PATH) + " --cluster=" + list + pin +
                              " --timeout_ms=2000 --wait_ms=60000 " + args;
  const int code = RunCommand(command, out);
  std::printf("[ membership ] $ ballotctl ... %s -> exit %d\n%s", args.c_str(), code, out->c_str());
  return code;
}

// What `member list --json` must print for these members (all voters unless listed in
// `learners`).
std::string ExpectedJson(const ProcessCluster& cluster, const std::vector<paxos::NodeId>& ids) {
  std::string json = "{\"members\":[";
  for (size_t i = 0; i < ids.size(); ++i) {
    json += std::string(i ? "," : "") + "{\"id\":" + std::to_string(ids[i]) + ",\"address\":\"" +
            cluster.Address(ids[i]) + "\",\"voter\":true}";
  }
  return json + "]}\n";
}

// next(count) through a fresh client of every node the cluster knows.
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

// Starts node `id` as a new member: empty data directory, --join, --cluster = `others` + itself.
Status StartJoining(ProcessCluster& cluster, paxos::NodeId id,
                    const std::vector<paxos::NodeId>& others) {
  std::string list;
  for (paxos::NodeId other : others) list += cluster.Entry(other) + ",";
  cluster.SetNodeCluster(id, list + cluster.Entry(id));
  cluster.SetNodeFlags(id, {"--join"});
  return cluster.StartNode(id, Clock::now() + kStartTimeout);
}

void PrintTook(const char* what, Clock::time_point since) {
  std::printf("[ membership ] %s took %.1f s\n", what, MsBetween(since, Clock::now()) / 1000);
}

// (a)
TEST(MembershipTest, WipedNodeIsRemovedAddedBackAndRejoinsWithoutHandingOutANumberTwice) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();

  // The scenario: a follower goes down, the other two hand out 1..5, both go down, one
  // comes back wiped together with the follower.
  const paxos::NodeId follower = leader.value().first == 1 ? 2 : 1;
  const paxos::NodeId wiped = leader.value().first;
  const paxos::NodeId intact = 6 - follower - wiped;
  cluster.Kill(follower);
  Result<SequenceGenerator::Block> first = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first.value(), (SequenceGenerator::Block{1, 5}));
  cluster.KillAll();
  std::filesystem::remove_all(cluster.DataDir(wiped));
  started = cluster.StartNode(follower, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.Launch(wiped).ok());
  EXPECT_EQ(cluster.WaitExit(wiped, Clock::now() + kLiveness), "exited 1");
  const std::string refusal = cluster.ReadLog(wiped);
  EXPECT_NE(refusal.find("this node's data was lost"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("member remove " + std::to_string(wiped)), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("member add NEW_ID@HOST:PORT"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("--join"), std::string::npos) << refusal;

  // The operator follows it: the intact node comes back, the wiped one is removed ...
  started = cluster.StartNode(intact, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> second = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second.value(), (SequenceGenerator::Block{6, 5}));
  const std::vector<paxos::NodeId> all = {1, 2, 3};
  std::string out;
  ASSERT_EQ(Ctl(cluster, all, "member remove " + std::to_string(wiped), &out), 0) << out;
  std::vector<paxos::NodeId> rest = {std::min(follower, intact), std::max(follower, intact)};
  ASSERT_EQ(Ctl(cluster, all, "member list --json", &out), 0) << out;
  EXPECT_EQ(out, ExpectedJson(cluster, rest));

  // Its id is retired with it: the machine comes back as a new member, under a new id, started
  // with --join on its empty directory.
  EXPECT_EQ(Ctl(cluster, all, "member add " + cluster.Entry(wiped), &out), 1) << out;
  EXPECT_NE(out.find("new id"), std::string::npos) << out;
  const paxos::NodeId replacement = cluster.AddNode();
  started = StartJoining(cluster, replacement, rest);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_EQ(Ctl(cluster, all, "member add " + cluster.Entry(replacement), &out), 0) << out;
  EXPECT_NE(out.find("is a voter"), std::string::npos) << out;
  std::vector<paxos::NodeId> now = rest;
  now.push_back(replacement);
  ASSERT_EQ(Ctl(cluster, all, "member list --json", &out), 0) << out;
  EXPECT_EQ(out, ExpectedJson(cluster, now));
  EXPECT_GE(cluster.CountLogLines(replacement, {"joining cluster", "as a learner (--join)"}), 1u);

  // It votes with what it caught up: without the follower, the intact node and it form the
  // quorum, and numbers go on from 11.
  cluster.Kill(follower);
  Result<SequenceGenerator::Block> third = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third.value(), (SequenceGenerator::Block{11, 5}));
  // And it keeps its membership across a restart, whatever --cluster says then.
  cluster.SetNodeCluster(replacement, cluster.Entry(replacement));
  cluster.SetNodeFlags(replacement, {});
  started = cluster.Restart(replacement, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> fourth = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(fourth.ok()) << fourth.status().ToString();
  EXPECT_EQ(fourth.value(), (SequenceGenerator::Block{16, 5}));
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
  PrintTook("the wiped node's removal and rejoin", test_start);
}

// (a') The operator's likely mistake: the wiped node started with --join WITHOUT being removed
// and added again first. Its peers still list it as a member that joined: it must not take part
// (a blank voter would form a quorum with the stale follower and hand out 1..5 again) and must
// say what to do; once it is removed and added back it joins.
TEST(MembershipTest, WipedNodeStartedWithJoinBeforeItsRemovalWaitsAndVotesNothing) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  const paxos::NodeId stale = leader.value().first == 1 ? 2 : 1;
  const paxos::NodeId wiped = leader.value().first;
  const paxos::NodeId intact = 6 - stale - wiped;
  cluster.Kill(stale);
  Result<SequenceGenerator::Block> first = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first.value(), (SequenceGenerator::Block{1, 5}));
  cluster.KillAll();
  std::filesystem::remove_all(cluster.DataDir(wiped));
  started = cluster.StartNode(stale, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  started = StartJoining(cluster, wiped, {stale, intact});
  ASSERT_TRUE(started.ok()) << started.ToString();

  Result<SequenceGenerator::Block> again = Next(cluster, 5, kNoQuorumWait);
  if (again.ok()) {
    EXPECT_GT(again.value().first, 5u) << "numbers 1..5 were handed out twice";
  }
  EXPECT_GE(cluster.WaitForLogLines(wiped,
                                    {"lists this node as a member that joined",
                                     "member remove " + std::to_string(wiped)},
                                    1, Clock::now() + kLiveness),
            1u)
      << cluster.ReadLog(wiped);

  // The operator does it right: the intact node back, the wiped one removed and the machine
  // added again under a new id.
  started = cluster.StartNode(intact, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  const std::vector<paxos::NodeId> all = {1, 2, 3};
  std::string out;
  ASSERT_EQ(Ctl(cluster, all, "member remove " + std::to_string(wiped), &out), 0) << out;
  cluster.Kill(wiped);
  const paxos::NodeId replacement = cluster.AddNode();
  started = StartJoining(cluster, replacement, {stale, intact});
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_EQ(Ctl(cluster, all, "member add " + cluster.Entry(replacement), &out), 0) << out;
  cluster.Kill(stale);
  Result<SequenceGenerator::Block> next = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_GT(next.value().first, 5u);
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
}

// (b)
TEST(MembershipTest, ReplaceANodeUnderLoadLosesNothingAcknowledged) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  Result<SequenceGenerator::Block> zero = Next(cluster, 1, kLiveness);
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  // No change in the log, no snapshot: the bootstrap configuration recorded in DIR/CLUSTER.
  // Were --cluster taken instead, node 1 alone would be a majority of itself.
  cluster.KillAll();
  cluster.SetNodeCluster(1, cluster.Entry(1));
  started = cluster.StartNode(1, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> alone = Next(cluster, 1, kNoQuorumWait);
  EXPECT_FALSE(alone.ok()) << "node 1 alone handed out " << alone.value().first;
  started = cluster.StartNode(2, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> pair = Next(cluster, 1, kLiveness);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(pair.value(), (SequenceGenerator::Block{2, 1}));
  started = cluster.StartNode(3, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();

  const paxos::NodeId added = cluster.AddNode();
  ASSERT_EQ(added, 4u);

  NumberLoadOptions load_options;
  load_options.workers = 16;
  NumberLoad load(cluster, load_options);
  load.Start();
  ASSERT_TRUE(load.WaitForEveryWorker(Clock::now() + kLiveness));

  started = StartJoining(cluster, 4, {1, 2, 3});
  ASSERT_TRUE(started.ok()) << started.ToString();
  std::string out;
  ASSERT_EQ(Ctl(cluster, {1, 2, 3}, "member add " + cluster.Entry(4), &out), 0) << out;
  ASSERT_EQ(Ctl(cluster, {1, 2, 3, 4}, "member remove 3", &out), 0) << out;
  cluster.Kill(3);
  // The load goes on with 1, 2 and 4.
  const auto after = Clock::now();
  EXPECT_TRUE(load.WaitForAcksSentAfter(after, 100, Clock::now() + kLiveness));
  load.Stop();

  ASSERT_EQ(Ctl(cluster, {1, 2, 4}, "member list --json", &out), 0) << out;
  EXPECT_EQ(out, ExpectedJson(cluster, {1, 2, 4}));
  const std::vector<NumberCall> acked = load.acked();
  std::printf("[ membership ] %zu calls acknowledged, %zu failed (%s)\n", acked.size(),
              load.failed_count(), load.DescribeFailures().c_str());
  EXPECT_TRUE(load.bad_replies().empty());
  for (const std::string& d : FindDuplicates(acked)) ADD_FAILURE() << d;
  for (const std::string& v : FindOrderViolations(acked)) ADD_FAILURE() << v;
  // Nothing acknowledged was lost: the next number is above every number handed out, also with
  // node 1 down (2 and 4 are the quorum, so 4 holds the log).
  uint64_t highest = 0;
  for (const NumberCall& c : acked) highest = std::max(highest, c.last());
  cluster.Kill(1);
  Result<SequenceGenerator::Block> next = Next(cluster, 1, kLiveness);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_GT(next.value().first, highest);
  PrintTook("replacing node 3 by node 4 under 16 clients", test_start);
}

// (c)
TEST(MembershipTest, ThreeToFiveToThreeMembers) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  std::string out;
  ASSERT_EQ(Ctl(cluster, {1, 2, 3}, "member list --json", &out), 0) << out;
  EXPECT_EQ(out, ExpectedJson(cluster, {1, 2, 3}));
  ASSERT_EQ(Ctl(cluster, {1, 2, 3}, "member list", &out), 0) << out;
  EXPECT_EQ(out, "1 " + cluster.Address(1) + " voter\n2 " + cluster.Address(2) + " voter\n3 " +
                     cluster.Address(3) + " voter\n");

  uint64_t expected_first = 1;
  auto next_is_in_order = [&] {
    Result<SequenceGenerator::Block> b = Next(cluster, 2, kLiveness);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(b.value(), (SequenceGenerator::Block{expected_first, 2}));
    expected_first += 2;
  };
  next_is_in_order();

  std::vector<paxos::NodeId> members = {1, 2, 3};
  for (int i = 0; i < 2; ++i) {
    const paxos::NodeId id = cluster.AddNode();
    started = StartJoining(cluster, id, members);
    ASSERT_TRUE(started.ok()) << started.ToString();
    ASSERT_EQ(Ctl(cluster, members, "member add " + cluster.Entry(id), &out), 0) << out;
    members.push_back(id);
    ASSERT_EQ(Ctl(cluster, members, "member list --json", &out), 0) << out;
    EXPECT_EQ(out, ExpectedJson(cluster, members));
    // Without --cluster_id, a list that is not the bootstrap one: the id is learnt.
    ASSERT_EQ(Ctl(cluster, members, "member list --json", &out, /*pin_id=*/false), 0) << out;
    EXPECT_EQ(out, ExpectedJson(cluster, members));
    next_is_in_order();
  }
  // Adding a member twice, or removing a non-member, is refused with the leader's reason.
  EXPECT_EQ(Ctl(cluster, members, "member add " + cluster.Entry(4), &out), 1) << out;
  EXPECT_NE(out.find("already"), std::string::npos) << out;
  EXPECT_EQ(Ctl(cluster, members, "member remove 9", &out), 1) << out;
  EXPECT_EQ(Ctl(cluster, members, "member add 4", &out), 2) << out;
  EXPECT_EQ(Ctl(cluster, members, "member remove x", &out), 2) << out;

  // Back to three: two of the founding members that do not lead leave.
  auto current = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  std::vector<paxos::NodeId> leaving;
  for (paxos::NodeId id : {1u, 2u, 3u}) {
    if (id != current.value().first && leaving.size() < 2) leaving.push_back(id);
  }
  for (paxos::NodeId id : leaving) {
    ASSERT_EQ(Ctl(cluster, members, "member remove " + std::to_string(id), &out), 0) << out;
    std::erase(members, id);
    ASSERT_EQ(Ctl(cluster, members, "member list --json", &out), 0) << out;
    EXPECT_EQ(out, ExpectedJson(cluster, members));
    cluster.Kill(id);
    next_is_in_order();
  }
  // The three left are the whole cluster: one of them down, the other two serve.
  cluster.Kill(members.back() == current.value().first ? members.front() : members.back());
  next_is_in_order();
  PrintTook("3 -> 5 -> 3 members", test_start);
}

// Restarts take the membership from the data directory, not from --cluster: a founding node
// restarted with a --cluster that lists only itself (and a stranger) still knows every member,
// from its log and, after a snapshot, from the snapshot; the stranger is never dialed.
TEST(MembershipTest, RestartWithAnotherClusterFlagKeepsTheMembershipFromItsData) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  Result<SequenceGenerator::Block> zero = Next(cluster, 1, kLiveness);
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  // No change in the log, no snapshot: the bootstrap configuration recorded in DIR/CLUSTER.
  // Were --cluster taken instead, node 1 alone would be a majority of itself.
  cluster.KillAll();
  cluster.SetNodeCluster(1, cluster.Entry(1));
  started = cluster.StartNode(1, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> alone = Next(cluster, 1, kNoQuorumWait);
  EXPECT_FALSE(alone.ok()) << "node 1 alone handed out " << alone.value().first;
  started = cluster.StartNode(2, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> pair = Next(cluster, 1, kLiveness);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(pair.value(), (SequenceGenerator::Block{2, 1}));
  started = cluster.StartNode(3, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();

  const paxos::NodeId added = cluster.AddNode();
  started = StartJoining(cluster, added, {1, 2, 3});
  ASSERT_TRUE(started.ok()) << started.ToString();
  std::string out;
  ASSERT_EQ(Ctl(cluster, {1, 2, 3}, "member add " + cluster.Entry(added), &out), 0) << out;
  Result<SequenceGenerator::Block> first = Next(cluster, 5, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  for (bool snapshot : {false, true}) {
    SCOPED_TRACE(snapshot ? "configuration from a snapshot" : "configuration from the log");
    if (snapshot) {
      ASSERT_EQ(Ctl(cluster, {1, 2, 3, 4}, "snapshot --id=1", &out), 0) << out;
    }
    cluster.SetNodeCluster(1, cluster.Entry(1) + ",9@127.0.0.1:1");
    started = cluster.Restart(1, Clock::now() + kStartTimeout);
    ASSERT_TRUE(started.ok()) << started.ToString();
    // Nodes 1, 3 and 4 are a majority of the four: node 1 must reach 3 and 4 by itself.
    cluster.Kill(2);
    Result<SequenceGenerator::Block> next = Next(cluster, 5, kLiveness);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_GT(next.value().first, first.value().first);
    first = next;
    // With node 3 down too, 1 and 4 are no majority of four: node 1 did not shrink it to itself.
    cluster.Kill(3);
    Result<SequenceGenerator::Block> none = Next(cluster, 1, kNoQuorumWait);
    EXPECT_FALSE(none.ok()) << "two of four members handed out " << none.value().first;
    ASSERT_TRUE(cluster.StartNode(2, Clock::now() + kStartTimeout).ok());
    ASSERT_TRUE(cluster.StartNode(3, Clock::now() + kStartTimeout).ok());
    ASSERT_EQ(Ctl(cluster, {1, 2, 3, 4}, "member list --json", &out), 0) << out;
    EXPECT_EQ(out, ExpectedJson(cluster, {1, 2, 3, 4}));
    // The stranger from --cluster was dropped once the configuration was known.
    EXPECT_GE(cluster.CountLogLines(1, {"removed peer 9"}), 1u);
  }
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
}

// (d)
TEST(MembershipTest, RemovingTheLeaderMovesLeadershipFirstAndItNoLongerCounts) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  const paxos::NodeId old_leader = leader.value().first;
  Result<SequenceGenerator::Block> first = Next(cluster, 3, kLiveness);
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  std::string out;
  ASSERT_EQ(Ctl(cluster, {1, 2, 3}, "member remove " + std::to_string(old_leader), &out), 0) << out;
  auto successor = cluster.WaitForLeader(Clock::now() + kLiveness, old_leader);
  ASSERT_TRUE(successor.ok()) << successor.status().ToString();
  EXPECT_NE(successor.value().first, old_leader);
  EXPECT_GT(successor.value().second, leader.value().second) << "the epoch keeps growing";
  EXPECT_GE(cluster.CountLogLines(old_leader, {"asked to remove itself: handing leadership"}), 1u);
  std::vector<paxos::NodeId> rest;
  for (paxos::NodeId id : {1u, 2u, 3u}) {
    if (id != old_leader) rest.push_back(id);
  }
  ASSERT_EQ(Ctl(cluster, {1, 2, 3}, "member list --json", &out), 0) << out;
  EXPECT_EQ(out, ExpectedJson(cluster, rest));
  Result<SequenceGenerator::Block> second = Next(cluster, 3, kLiveness);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second.value(), (SequenceGenerator::Block{4, 3}));

  // The removed node, still running, no longer counts: with one of the two members down there
  // is no quorum, and nothing is handed out.
  const paxos::NodeId down = rest[0];
  cluster.Kill(down);
  Result<SequenceGenerator::Block> without = Next(cluster, 3, kNoQuorumWait);
  EXPECT_FALSE(without.ok()) << "numbers " << without.value().first
                             << ".. were handed out by one member and a removed node";
  started = cluster.StartNode(down, Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  Result<SequenceGenerator::Block> third = Next(cluster, 3, kLiveness);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_GE(third.value().first, 7u);
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
  PrintTook("removing the leader", test_start);
}

}  // namespace
}  // namespace ballot::cluster_test
