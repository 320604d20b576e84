// ballot::Election end to end (issue 15 items 2 and 5): 3-node lock-sample clusters of ballotd
// processes, real TCP.
//
//  (a) Two campaigners: A is elected; B's Campaign blocks while A keeps the lease alive for
//      several TTLs; A resigns and B is elected with a higher token. An observer started before
//      sees exactly: nobody, A, nobody, B.
//  (b) A frozen leader: candidate process A (election_candidate) is elected and SIGSTOPped; B is
//      elected once A's TTL ran out (the leader's clock tick applies the expiry), with a higher
//      token. A, continued, reports the loss through its OnLost callback with its old token.
//  (c) A refused keepalive: an operator releases A's lock and takes it; A's OnLost callback runs
//      (kAborted, A's token), and A no longer leads nor holds a token.
#include "net/client/election.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "statemachine/samples/lock.h"
#include "tests/cluster/process_cluster.h"
#include "tests/cluster/tool_run.h"

namespace ballot::cluster_test {
namespace {

using samples::LockService;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr milliseconds kCallTimeout{10000};
constexpr seconds kTestBound{60};

ProcessClusterOptions LockCluster() {
  ProcessClusterOptions o = DefaultOptions(BALLOTD_PATH);
  o.state_machine = "lock";
  return o;
}

std::unique_ptr<Election> MakeElection(Client* client, const std::string& candidate,
                                       milliseconds ttl) {
  ElectionOptions eo;
  eo.name = "leader";
  eo.candidate = candidate;
  eo.ttl = ttl;
  auto e = Election::Create(client, eo);
  CHECK(e.ok()) << e.status().ToString();
  return std::move(e).value();
}

std::string Describe(const std::optional<Election::Leader>& l) {
  return l ? l->candidate + " " + std::to_string(l->token) : "-";
}

TEST(ElectionTest, OneWinsTheOtherAfterResignAndObserversSeeBoth) {
  ProcessCluster cluster(LockCluster());
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  std::unique_ptr<Client> client_a = cluster.NewClient();
  std::unique_ptr<Client> client_b = cluster.NewClient();
  std::unique_ptr<Client> client_o = cluster.NewClient();
  const milliseconds ttl(600);
  auto a = MakeElection(client_a.get(), "a", ttl);
  auto b = MakeElection(client_b.get(), "b", ttl);
  auto observer = MakeElection(client_o.get(), "observer", ttl);

  std::mutex mu;
  std::vector<std::string> observed;
  std::promise<void> observer_started;
  std::thread observing([&] {
    bool first = true;
    Status s = observer->Observe(
        [&](const std::optional<Election::Leader>& leader) {
          std::lock_guard<std::mutex> lock(mu);
          observed.push_back(Describe(leader));
          if (first) observer_started.set_value();
          first = false;
          return !(leader && leader->candidate == "b");
        },
        kTestBound);
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  observer_started.get_future().wait();

  auto token_a = a->Campaign(kCallTimeout);
  ASSERT_TRUE(token_a.ok()) << token_a.status().ToString();
  EXPECT_TRUE(a->leading());
  EXPECT_EQ(a->token(), token_a.value());

  auto campaign_b = std::async(std::launch::async, [&] { return b->Campaign(kTestBound); });
  // A keeps its lease alive well past its TTL: B stays a candidate.
  EXPECT_EQ(campaign_b.wait_for(ttl * 4), std::future_status::timeout);
  EXPECT_TRUE(a->leading());
  EXPECT_FALSE(b->leading());

  ASSERT_TRUE(a->Resign(kCallTimeout).ok());
  EXPECT_FALSE(a->leading());
  EXPECT_EQ(a->token(), 0u);
  Result<uint64_t> token_b = campaign_b.get();
  ASSERT_TRUE(token_b.ok()) << token_b.status().ToString();
  EXPECT_GT(token_b.value(), token_a.value());
  EXPECT_TRUE(b->leading());
  observing.join();
  const std::vector<std::string> expected = {"-", "a " + std::to_string(token_a.value()), "-",
                                             "b " + std::to_string(token_b.value())};
  EXPECT_EQ(observed, expected);
  auto current = observer->CurrentLeader(kCallTimeout);
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(Describe(current.value()), "b " + std::to_string(token_b.value()));
}

TEST(ElectionTest, FrozenLeaderIsReplacedAfterItsTtlAndToldOnWaking) {
  const Clock::time_point deadline = Clock::now() + kTestBound;
  ProcessCluster cluster(LockCluster());
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  const std::string out_path = cluster.dir() + "/candidate.out";
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(out_fd, 0);
  const milliseconds ttl(1000);
  const pid_t a =
      Spawn({CANDIDATE_PATH, cluster.cluster_flag(), std::to_string(cluster.cluster_id()), "leader",
             "a", std::to_string(ttl.count())},
            out_fd, -1);
  close(out_fd);
  auto lines = [&] {
    std::ifstream in(out_path);
    std::vector<std::string> result;
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  };
  auto wait_lines = [&](size_t n) {
    while (lines().size() < n && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return lines().size() >= n;
  };
  ASSERT_TRUE(wait_lines(1));
  ASSERT_EQ(lines()[0].rfind("elected ", 0), 0u) << lines()[0];
  const uint64_t token_a = std::stoull(lines()[0].substr(8));

  ASSERT_EQ(kill(a, SIGSTOP), 0);
  const Clock::time_point frozen_at = Clock::now();
  std::unique_ptr<Client> client_b = cluster.NewClient();
  auto b = MakeElection(client_b.get(), "b", ttl);
  Result<uint64_t> token_b = b->Campaign(kTestBound);
  ASSERT_TRUE(token_b.ok()) << token_b.status().ToString();
  EXPECT_GT(token_b.value(), token_a);
  // Not before A's lease could have run out (it was confirmed at most a TTL before the freeze).
  EXPECT_GE(Clock::now() - frozen_at, ttl / 3);

  ASSERT_EQ(kill(a, SIGCONT), 0);
  ASSERT_TRUE(wait_lines(2)) << testing::PrintToString(lines());
  EXPECT_EQ(lines()[1].rfind("lost " + std::to_string(token_a) + " ", 0), 0u) << lines()[1];
  int status = 0;
  pid_t reaped = 0;
  while ((reaped = waitpid(a, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (reaped == 0) {
    kill(a, SIGKILL);
    waitpid(a, &status, 0);
    FAIL() << "the candidate did not exit after reporting its loss";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(b->leading());
}

TEST(ElectionTest, RefusedKeepaliveIsReportedThroughTheCallback) {
  ProcessCluster cluster(LockCluster());
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  std::unique_ptr<Client> client_a = cluster.NewClient();
  auto a = MakeElection(client_a.get(), "a", milliseconds(900));
  std::promise<std::pair<uint64_t, Status>> lost;
  a->OnLost([&lost](uint64_t token, Status why) { lost.set_value({token, why}); });
  auto token_a = a->Campaign(kCallTimeout);
  ASSERT_TRUE(token_a.ok()) << token_a.status().ToString();

  // An operator takes the lock away.
  std::unique_ptr<Client> op = cluster.NewClient();
  auto released = op->Propose(LockService::EncodeRelease("leader", "a"), kCallTimeout);
  ASSERT_TRUE(released.ok() && released.value().outcome.code == StatusCode::kOk);
  auto taken = op->Propose(LockService::EncodeAcquire("leader", "operator", 60000), kCallTimeout);
  ASSERT_TRUE(taken.ok() && taken.value().outcome.code == StatusCode::kOk);

  auto future = lost.get_future();
  ASSERT_EQ(future.wait_for(kTestBound), std::future_status::ready);
  auto [token, why] = future.get();
  EXPECT_EQ(token, token_a.value());
  EXPECT_EQ(why.code(), StatusCode::kAborted) << why.ToString();
  EXPECT_FALSE(a->leading());
  EXPECT_EQ(a->token(), 0u);
}

}  // namespace
}  // namespace ballot::cluster_test
