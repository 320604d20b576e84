// Watches end to end with real processes (issue 15 items 1 and 5): 3-node ballotd clusters of the
// lock sample, real TCP, ballot::Client and ballotctl as a child process.
//
//  (a) Every change, in order, across a leader kill and a reconnect: one writer grants lock "L"
//      to owner o<i> and releases it, 12 times; watcher A follows from the current state while
//      the leader is SIGKILLed after the 4th grant, and stops after the 8th; the grants 9-12
//      happen with no watcher at all; watcher B, a new client, resumes from A's last slot. A's
//      and B's changes together must be exactly "-", then (o<i>, token_i), "-" for every grant,
//      with the tokens the grants returned, in slot order, with no gap.
//  (b) "too many watches": with --watches_max=2 a third parked watch on the same node is refused
//      (kOverloaded, naming the flag); once the two are answered, a new one is accepted.
//  (c) ballotctl lock watch L prints "-", "a <token>", "-" (release), "b <token>", "-" (b's TTL
//      ran out: the leader's clock tick applies the expiry though no client sends anything), and
//      exits 0 on SIGINT.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "statemachine/samples/lock.h"
#include "statemachine/watchable.h"
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

std::string Describe(const std::optional<LockService::Holder>& h) {
  return h ? h->owner + " " + std::to_string(h->token) : "-";
}

// Follows lock `name` from `after` (Watchable::kCurrentState: from the current state) on its own
// thread until stopped, recording each change's slot and holder line.
class Watcher {
 public:
  Watcher(std::unique_ptr<Client> client, std::string name, paxos::Slot after)
      : client_(std::move(client)), query_(LockService::EncodeGet(name)), after_(after) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Watcher() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  paxos::Slot after() const {
    std::lock_guard<std::mutex> lock(mu_);
    return after_;
  }
  int gaps() const { return gaps_.load(); }
  std::string errors() const {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  void Run() {
    while (!stop_) {
      paxos::Slot after;
      {
        std::lock_guard<std::mutex> lock(mu_);
        after = after_;
      }
      Client::WatchOptions options;
      options.linearizable = after == Watchable::kCurrentState;
      options.wait = milliseconds(300);
      Result<Client::WatchReply> r = client_->Watch(query_, after, milliseconds(3000), options);
      if (!r.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        errors_ += r.status().ToString() + "\n";
        continue;  // a dead leader, a replica that failed: resume from the same slot
      }
      if (!r.value().changed) continue;
      auto holder = LockService::DecodeGet(r.value().data);
      ASSERT_TRUE(holder.ok()) << holder.status().ToString();
      if (r.value().gap) ++gaps_;
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(Describe(holder.value()));
      after_ = r.value().slot;
    }
  }

  std::unique_ptr<Client> client_;
  const std::string query_;
  mutable std::mutex mu_;
  paxos::Slot after_;               // guarded by mu_
  std::vector<std::string> lines_;  // guarded by mu_
  std::string errors_;              // guarded by mu_
  std::atomic<int> gaps_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

ProcessClusterOptions LockCluster(std::vector<std::string> flags = {}) {
  ProcessClusterOptions o = DefaultOptions(BALLOTD_PATH);
  o.state_machine = "lock";
  o.extra_flags = std::move(flags);
  return o;
}

// Waits until `watcher` has recorded `count` lines, or the deadline.
bool WaitForLines(const Watcher& watcher, size_t count, Clock::time_point deadline) {
  while (watcher.lines().size() < count) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

TEST(WatchTest, EveryChangeInOrderAcrossLeaderKillAndReconnect) {
  const Clock::time_point deadline = Clock::now() + kTestBound;
  ProcessCluster cluster(LockCluster());
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  std::unique_ptr<Client> writer = cluster.NewClient();

  std::vector<std::string> expected = {"-"};
  auto grant_and_release = [&](int i) {
    const std::string owner = "o" + std::to_string(i);
    auto acquired = writer->Propose(LockService::EncodeAcquire("L", owner, 60000), kCallTimeout);
    ASSERT_TRUE(acquired.ok()) << acquired.status().ToString();
    ASSERT_EQ(acquired.value().outcome.code, StatusCode::kOk) << acquired.value().outcome.message;
    auto grant = LockService::DecodeGrant(acquired.value().outcome.data);
    ASSERT_TRUE(grant.ok());
    expected.push_back(owner + " " + std::to_string(grant.value().token));
    auto released = writer->Propose(LockService::EncodeRelease("L", owner), kCallTimeout);
    ASSERT_TRUE(released.ok()) << released.status().ToString();
    ASSERT_EQ(released.value().outcome.code, StatusCode::kOk) << released.value().outcome.message;
    expected.push_back("-");
  };

  auto a = std::make_unique<Watcher>(cluster.NewClient(), "L", Watchable::kCurrentState);
  ASSERT_TRUE(WaitForLines(*a, 1, deadline)) << a->errors();  // the current state: free
  for (int i = 0; i < 4; ++i) grant_and_release(i);
  // Mid-stream: the leader dies; the writer and watcher A carry on with the others.
  cluster.Kill(leader.value().first);
  for (int i = 4; i < 8; ++i) grant_and_release(i);
  ASSERT_TRUE(WaitForLines(*a, expected.size(), deadline))
      << "watcher A saw " << testing::PrintToString(a->lines()) << "; errors: " << a->errors();
  a->Stop();
  const std::vector<std::string> seen_by_a = a->lines();
  const paxos::Slot resume_at = a->after();
  EXPECT_EQ(a->gaps(), 0);

  // Changes while nobody watches, then a new client resumes from A's last slot.
  for (int i = 8; i < 12; ++i) grant_and_release(i);
  Watcher b(cluster.NewClient(), "L", resume_at);
  const size_t b_expected = expected.size() - seen_by_a.size();
  ASSERT_TRUE(WaitForLines(b, b_expected, deadline))
      << "watcher B saw " << testing::PrintToString(b.lines()) << "; errors: " << b.errors();
  b.Stop();
  EXPECT_EQ(b.gaps(), 0);

  std::vector<std::string> seen = seen_by_a;
  for (const std::string& line : b.lines()) seen.push_back(line);
  EXPECT_EQ(seen, expected);
  EXPECT_TRUE(cluster.CheckAlive().ok());
}

TEST(WatchTest, TooManyWatchesIsRefusedClearly) {
  const Clock::time_point deadline = Clock::now() + kTestBound;
  ProcessCluster cluster(LockCluster({"--watches_max=2"}));
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  std::unique_ptr<Client> client = cluster.NewClient();
  // One client, routed to the leader (a read finds it): every watch below lands on that node.
  auto read = client->Read(LockService::EncodeGet("W"), kCallTimeout);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  Client::WatchOptions current;
  current.linearizable = true;
  auto start =
      client->Watch(LockService::EncodeGet("W"), Watchable::kCurrentState, kCallTimeout, current);
  ASSERT_TRUE(start.ok() && start.value().changed);
  const paxos::Slot after = start.value().slot;

  // Two watches park (nothing changes "W" until the test acquires it). One that comes while the
  // probe below holds a place is refused and tries again.
  std::vector<std::thread> parked;
  std::atomic<int> changed{0};
  for (int i = 0; i < 2; ++i) {
    parked.emplace_back([&] {
      while (Clock::now() < deadline) {
        Client::WatchOptions o;
        o.wait = milliseconds(20000);
        auto r = client->Watch(LockService::EncodeGet("W"), after, milliseconds(40000), o);
        if (r.ok() && r.value().changed) {
          ++changed;
          return;
        }
        if (!r.ok()) std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  // A third is refused once both are parked (before that it parks until the next tick).
  Status refused;
  while (Clock::now() < deadline) {
    Client::WatchOptions o;
    o.wait = milliseconds(0);
    auto r = client->Watch(LockService::EncodeGet("W"), after, kCallTimeout, o);
    if (!r.ok()) {
      refused = r.status();
      break;
    }
  }
  EXPECT_EQ(refused.code(), StatusCode::kOverloaded) << refused.ToString();
  EXPECT_NE(refused.message().find("too many watches"), std::string::npos) << refused.ToString();
  EXPECT_NE(refused.message().find("--watches_max 2"), std::string::npos) << refused.ToString();

  // A change answers both parked watches; then there is room again.
  auto acquired = client->Propose(LockService::EncodeAcquire("W", "x", 60000), kCallTimeout);
  ASSERT_TRUE(acquired.ok() && acquired.value().outcome.code == StatusCode::kOk);
  for (std::thread& t : parked) t.join();
  EXPECT_EQ(changed.load(), 2);
  Client::WatchOptions o;
  o.wait = milliseconds(50);
  auto again = client->Watch(LockService::EncodeGet("W"), acquired.value().slot, kCallTimeout, o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_FALSE(again.value().changed);
}

TEST(WatchTest, BallotctlLockWatchPrintsEveryChangeOfHolderUntilInterrupted) {
  const Clock::time_point deadline = Clock::now() + kTestBound;
  ProcessCluster cluster(LockCluster());
  ASSERT_TRUE(cluster.StartAll(Clock::now() + kStartTimeout).ok());
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  const std::string out_path = cluster.dir() + "/watch.out";
  const std::string err_path = cluster.dir() + "/watch.err";
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(out_fd, 0);
  ASSERT_GE(err_fd, 0);
  const pid_t watch =
      Spawn({BALLOTCTL_PATH, "--cluster=" + cluster.cluster_flag(), "lock", "watch", "L"}, out_fd,
            err_fd);
  close(out_fd);
  close(err_fd);
  auto read_lines = [&] {
    std::ifstream in(out_path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  auto wait_lines = [&](size_t n) {
    while (read_lines().size() < n && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    return read_lines().size() >= n;
  };
  ASSERT_TRUE(wait_lines(1));  // the current state

  std::unique_ptr<Client> client = cluster.NewClient();
  auto token_of = [&](const std::string& owner, uint64_t ttl_ms) -> uint64_t {
    auto r = client->Propose(LockService::EncodeAcquire("L", owner, ttl_ms), kCallTimeout);
    EXPECT_TRUE(r.ok() && r.value().outcome.code == StatusCode::kOk);
    if (!r.ok() || r.value().outcome.code != StatusCode::kOk) return 0;
    return LockService::DecodeGrant(r.value().outcome.data).value().token;
  };
  const uint64_t a = token_of("a", 60000);
  ASSERT_TRUE(wait_lines(2));
  auto released = client->Propose(LockService::EncodeRelease("L", "a"), kCallTimeout);
  ASSERT_TRUE(released.ok() && released.value().outcome.code == StatusCode::kOk);
  ASSERT_TRUE(wait_lines(3));
  // b's hold runs out with no further command from any client.
  const uint64_t b = token_of("b", 300);
  ASSERT_TRUE(wait_lines(5)) << testing::PrintToString(read_lines());

  kill(watch, SIGINT);
  int status = 0;
  pid_t reaped = 0;
  while ((reaped = waitpid(watch, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (reaped == 0) {
    kill(watch, SIGKILL);
    waitpid(watch, &status, 0);
    FAIL() << "ballotctl lock watch did not exit on SIGINT";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::vector<std::string> expected = {"-", "a " + std::to_string(a), "-",
                                             "b " + std::to_string(b), "-"};
  EXPECT_EQ(read_lines(), expected);
}

}  // namespace
}  // namespace ballot::cluster_test
