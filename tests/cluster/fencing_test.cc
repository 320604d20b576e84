// Fencing tokens end to end with real processes (issue 5 item 4): 3-node ballotd clusters, the
// sample fenced resource ballot-fenced-kv as a child process on port 0, and ballotctl.
//
//  (a) A paused leader is fenced off by its successor. The leader's epoch is shown usable (a
//      command with expected_epoch = that epoch runs), its holder writes to the resource with
//      it, and the leader is SIGSTOPped. A successor with a higher epoch (FindLeader, then a
//      fenced command in that epoch) registers its epoch with the resource and writes. The old
//      leader is SIGCONTed and a write carrying its old epoch is REJECTED; the resource still
//      holds the successor's value and its highest token is the new epoch. A command with
//      expected_epoch = the old epoch is refused by every replica (kAborted) while one with the
//      new epoch runs. (ballotd does not write to resources itself: the test acts as each
//      leader's resource client, with the token that leader would hold.)
//  (b) A stalled lock holder is fenced off after its TTL. On a --state_machine=lock cluster, A
//      acquires lock "job" (ballotctl, TTL 300 ms), registers and writes with its token, then
//      stalls (no keepalive). B's first acquire, sent before the TTL ran out, is refused (exit
//      3); B retries until granted, which must be no earlier than A's TTL after A asked, with a
//      strictly higher token; B registers and writes. A wakes: its keepalive is refused and its
//      write with the old token is REJECTED; B's value stays. If the machine is so slow that B's
//      first try cannot be sent before A's TTL ran out, the round is repeated with a longer TTL.
//  (c) A resumed old leader answers no read from stale state (see the test's comment).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/client/sequence_numbers.h"
#include "statemachine/samples/lock.h"
#include "statemachine/samples/sequence.h"
#include "tests/cluster/process_cluster.h"
#include "tests/cluster/tool_run.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SystemClock = std::chrono::system_clock;

constexpr seconds kStartTimeout{30};
// How long the cluster may take to serve again after a fault (failover is well under a second
// on a quiet machine).
constexpr seconds kLiveness{10};
constexpr milliseconds kCallTimeout{5000};
// A one-shot tool run (ballotctl, the fenced-kv client) must end by then.
constexpr seconds kToolTimeout{15};
constexpr milliseconds kStatusTimeout{1000};
// One request line over a fresh TCP connection to 127.0.0.1:port; the reply line, or why not.
Result<std::string> LineRequest(uint16_t port, const std::string& line,
                                Clock::time_point deadline) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  PCHECK(fd >= 0) << "socket";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string why = strerror(errno);
    close(fd);
    return Status(StatusCode::kIoError, "connect: " + why);
  }
  const std::string request = line + "\n";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return Status(StatusCode::kIoError, "send failed");
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  while (reply.find('\n') == std::string::npos && reply.size() < kOutputBytesMax) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char chunk[4096];
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  const size_t newline = reply.find('\n');
  if (newline == std::string::npos) {
    return Status(StatusCode::kTimeout, "no reply line to '" + line + "' (got '" + reply + "')");
  }
  return reply.substr(0, newline);
}

// ballot-fenced-kv as a child process on a free port, its store in `dir`, its log in
// `dir`.log. SIGKILLed and reaped on destruction.
class FencedKv {
 public:
  explicit FencedKv(std::string dir) : dir_(std::move(dir)) {}
  ~FencedKv() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  FencedKv(const FencedKv&) = delete;
  FencedKv& operator=(const FencedKv&) = delete;

  // Starts the server and reads "listening on PORT" from its stdout.
  Status Start(Clock::time_point deadline) {
    int out_pipe[2];
    PCHECK(pipe2(out_pipe, O_CLOEXEC) == 0) << "pipe2";
    const int log_fd =
        open((dir_ + ".log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    PCHECK(log_fd >= 0) << "open " << dir_ << ".log";
    pid_ = Spawn({FENCED_KV_PATH, "--port=0", "--data_dir=" + dir_}, out_pipe[1], log_fd);
    close(out_pipe[1]);
    close(log_fd);
    std::string line;
    while (line.find('\n') == std::string::npos && line.size() < kOutputBytesMax) {
      pollfd p{out_pipe[0], POLLIN, 0};
      const int ready = poll(&p, 1, MillisLeft(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) break;
      char c;
      const ssize_t n = read(out_pipe[0], &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      line.push_back(c);
    }
    close(out_pipe[0]);  // the server prints nothing else to stdout
    unsigned port = 0;
    if (std::sscanf(line.c_str(), "listening on %u", &port) != 1 || port == 0 || port > 65535) {
      return Status(StatusCode::kAborted,
                    "ballot-fenced-kv did not say where it listens: '" + Trim(line) + "'");
    }
    port_ = static_cast<uint16_t>(port);
    return Status::Ok();
  }

  uint16_t port() const { return port_; }

  // One request line; the reply line ("" and a test failure if there is none).
  std::string Send(const std::string& line) {
    auto reply = LineRequest(port_, line, Clock::now() + kToolTimeout);
    EXPECT_TRUE(reply.ok()) << line << ": " << reply.status().ToString();
    return reply.ok() ? reply.value() : "";
  }

  // The same request through the binary's own client mode (exit 0 ok, 3 rejected).
  ToolResult SendWithClient(const std::string& line) {
    return RunTool(
        {FENCED_KV_PATH, "--connect=127.0.0.1:" + std::to_string(port_), "--send=" + line},
        Clock::now() + kToolTimeout);
  }

 private:
  const std::string dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// Proposes next(1) to the sequence generator, fenced to `expected_epoch`.
Result<Client::ProposeReply> FencedNext(Client& client, uint64_t expected_epoch) {
  return client.Propose(samples::SequenceGenerator::EncodeNext(1), kCallTimeout, expected_epoch);
}

struct Leadership {
  paxos::NodeId id = paxos::kNoNode;
  uint64_t epoch = 0;
};

// Waits for a leader other than `not_id` whose epoch is usable end to end: a command fenced to
// that epoch runs, answered by that leader, under that epoch. (A leader found by FindLeader
// might still lose a race with another candidate; then ask again.)
Result<Leadership> WaitForUsableLeader(ProcessCluster& cluster, Client& client,
                                       Clock::time_point deadline,
                                       paxos::NodeId not_id = paxos::kNoNode) {
  Status last(StatusCode::kTimeout, "no leader asked yet");
  while (Clock::now() < deadline) {
    auto leader = cluster.WaitForLeader(deadline, not_id);
    if (!leader.ok()) return leader.status();
    const auto [id, epoch] = leader.value();
    auto reply = FencedNext(client, epoch);
    if (reply.ok() && reply.value().outcome.code == StatusCode::kOk &&
        reply.value().epoch == epoch && reply.value().leader == id) {
      return Leadership{id, epoch};
    }
    last = reply.ok() ? Status(reply.value().outcome.code, reply.value().outcome.message)
                      : reply.status();
  }
  return Status(StatusCode::kTimeout, "no usable leader by the deadline: " + last.ToString());
}

TEST(FencingTest, PausedLeaderIsFencedOffByItsSuccessor) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  FencedKv kv(cluster.dir() + "/fenced-kv");  // after the cluster: destroyed before its dir
  Status kv_started = kv.Start(Clock::now() + kStartTimeout);
  ASSERT_TRUE(kv_started.ok()) << kv_started.ToString();
  auto client = cluster.NewClient();
  const std::string resource = "epoch:orders";

  // The first leader and its usable epoch; its holder registers and writes.
  auto old_leader = WaitForUsableLeader(cluster, *client, Clock::now() + kStartTimeout);
  ASSERT_TRUE(old_leader.ok()) << old_leader.status().ToString();
  const auto [old_id, old_epoch] = old_leader.value();
  const std::string old_value =
      "by-node-" + std::to_string(old_id) + "-epoch-" + std::to_string(old_epoch);
  EXPECT_EQ(kv.Send("REGISTER " + resource + " " + std::to_string(old_epoch)), "OK");
  EXPECT_EQ(kv.Send("WRITE " + resource + " " + std::to_string(old_epoch) + " owner " + old_value),
            "OK");

  // Pause it; a successor with a higher, usable epoch takes over.
  cluster.Stop(old_id);
  const auto stopped_at = Clock::now();
  auto new_leader = WaitForUsableLeader(cluster, *client, stopped_at + kLiveness, old_id);
  ASSERT_TRUE(new_leader.ok()) << new_leader.status().ToString();
  const auto [new_id, new_epoch] = new_leader.value();
  std::printf(
      "[ fencing ] leader %u (epoch %llu) SIGSTOPped; node %u leads epoch %llu, seen usable "
      "after %.0f ms (FindLeader waits out the silent node each round)\n",
      old_id, static_cast<unsigned long long>(old_epoch), new_id,
      static_cast<unsigned long long>(new_epoch), MsBetween(stopped_at, Clock::now()));
  ASSERT_NE(new_id, old_id);
  ASSERT_GT(new_epoch, old_epoch) << "a successor's epoch must be higher";

  // Fenced commands: the old epoch is refused by the state machine, the new one runs.
  auto stale_command = FencedNext(*client, old_epoch);
  ASSERT_TRUE(stale_command.ok()) << stale_command.status().ToString();
  EXPECT_EQ(stale_command.value().outcome.code, StatusCode::kAborted)
      << stale_command.value().outcome.message;
  EXPECT_EQ(stale_command.value().epoch, new_epoch);
  auto fresh_command = FencedNext(*client, new_epoch);
  ASSERT_TRUE(fresh_command.ok()) << fresh_command.status().ToString();
  EXPECT_EQ(fresh_command.value().outcome.code, StatusCode::kOk)
      << fresh_command.value().outcome.message;
  EXPECT_EQ(fresh_command.value().epoch, new_epoch);

  // The successor registers its epoch first, then writes.
  const std::string new_value =
      "by-node-" + std::to_string(new_id) + "-epoch-" + std::to_string(new_epoch);
  EXPECT_EQ(kv.Send("REGISTER " + resource + " " + std::to_string(new_epoch)), "OK");
  EXPECT_EQ(kv.Send("WRITE " + resource + " " + std::to_string(new_epoch) + " owner " + new_value),
            "OK");

  // The old leader wakes up, still holding its old token, and writes: refused.
  cluster.Cont(old_id);
  auto woken = cluster.NodeStatus(old_id, kStatusTimeout);
  if (woken.ok()) {
    std::printf("[ fencing ] node %u resumed; its first status: role %s epoch %llu lease %s\n",
                old_id, woken.value().role.c_str(),
                static_cast<unsigned long long>(woken.value().epoch),
                woken.value().lease_held ? "held" : "not held");
    // A lease on the old epoch while a newer leader is usable would allow stale local reads.
    EXPECT_FALSE(woken.value().lease_held && woken.value().epoch < new_epoch)
        << "node " << old_id << " claims a leader lease on epoch " << woken.value().epoch
        << " after node " << new_id << " led epoch " << new_epoch;
  }
  const std::string stale_write =
      "WRITE " + resource + " " + std::to_string(old_epoch) + " owner stale-" + old_value;
  const ToolResult refused = kv.SendWithClient(stale_write);
  EXPECT_EQ(refused.exit_code, 3) << refused.Describe();
  EXPECT_EQ(refused.out.rfind("REJECTED", 0), 0u) << refused.Describe();
  EXPECT_NE(refused.out.find("stale token " + std::to_string(old_epoch)), std::string::npos)
      << refused.Describe();
  const std::string raw_refusal = kv.Send(stale_write);  // and over the raw protocol
  EXPECT_EQ(raw_refusal.rfind("REJECTED", 0), 0u) << raw_refusal;
  EXPECT_EQ(kv.Send("READ owner"), "VALUE " + new_value);
  EXPECT_EQ(kv.Send("HIGHEST " + resource), "TOKEN " + std::to_string(new_epoch));
  std::printf("[ fencing ] old leader's write with token %llu: %s\n",
              static_cast<unsigned long long>(old_epoch), Trim(refused.out).c_str());

  // The old leader steps down; the old epoch stays refused by the state machine; the cluster's
  // current epoch (the successor's, unless leadership moved again) runs.
  EXPECT_TRUE(WaitUntil(Clock::now() + kLiveness,
                        [&] {
                          auto s = cluster.NodeStatus(old_id, kStatusTimeout);
                          return s.ok() &&
                                 !(s.value().role == "leader" && s.value().epoch == old_epoch);
                        }))
      << "node " << old_id << " still leads epoch " << old_epoch << " after its resume";
  auto stale_after = FencedNext(*client, old_epoch);
  ASSERT_TRUE(stale_after.ok()) << stale_after.status().ToString();
  EXPECT_EQ(stale_after.value().outcome.code, StatusCode::kAborted);
  auto current = WaitForUsableLeader(cluster, *client, Clock::now() + kLiveness);
  ASSERT_TRUE(current.ok()) << current.status().ToString();
  EXPECT_GE(current.value().epoch, new_epoch);
  std::printf("[ fencing ] after the resume node %u leads epoch %llu (%s)\n", current.value().id,
              static_cast<unsigned long long>(current.value().epoch),
              current.value().epoch == new_epoch ? "unchanged" : "leadership moved again");

  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
  std::printf("[ fencing ] took %.1f s\n", MsBetween(test_start, Clock::now()) / 1000);
}

// (c) A leader lease is the one place where time, not tokens, guards correctness: a leader
// answers reads locally while its lease holds. The core counts lease time in ticks, and a
// SIGSTOPped process runs none, so a paused leader comes back with its lease clock behind the
// acceptors'. A read is queued at the paused old leader (over a client that knows only that
// node) after its successor handed out numbers; once resumed, the old leader must not answer
// it from its stale state (it may refuse: "not the leader").
TEST(FencingTest, ResumedLeaderServesNoStaleRead) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto client = cluster.NewClient();
  auto old_leader = WaitForUsableLeader(cluster, *client, Clock::now() + kStartTimeout);
  ASSERT_TRUE(old_leader.ok()) << old_leader.status().ToString();
  const paxos::NodeId old_id = old_leader.value().id;
  ClientOptions only_old = cluster.client_options();
  only_old.members = {{old_id, only_old.members.at(old_id)}};
  only_old.attempt_timeout = milliseconds(5000);
  auto old_client = Client::Create(only_old);
  ASSERT_TRUE(old_client.ok()) << old_client.status().ToString();
  const std::string peek = samples::SequenceGenerator::EncodePeek();
  auto before = old_client.value()->Read(peek, kCallTimeout);  // connects while it leads
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  cluster.Stop(old_id);
  auto new_leader = WaitForUsableLeader(cluster, *client, Clock::now() + kLiveness, old_id);
  ASSERT_TRUE(new_leader.ok()) << new_leader.status().ToString();
  auto block = NextNumbers(*client, 5, kCallTimeout);
  ASSERT_TRUE(block.ok()) << block.status().ToString();
  const uint64_t handed_out = block.value().first + block.value().count - 1;

  Result<Outcome> read = Status(StatusCode::kAborted, "not run");
  const uint64_t attempts = old_client.value()->counters().attempts;
  // Short: after its resume the old leader either answers or keeps saying "not the leader".
  std::thread reader([&] { read = old_client.value()->Read(peek, milliseconds(1000)); });
  WaitUntil(
      Clock::now() + kLiveness, [&] { return old_client.value()->counters().attempts > attempts; },
      milliseconds(1));
  cluster.Cont(old_id);
  reader.join();
  if (read.ok() && read.value().code == StatusCode::kOk) {
    auto next = samples::SequenceGenerator::DecodePeek(read.value().data);
    ASSERT_TRUE(next.ok());
    std::printf(
        "[ fencing ] read queued at the paused leader %u answered: next is %llu "
        "(the successor handed out up to %llu)\n",
        old_id, static_cast<unsigned long long>(next.value()),
        static_cast<unsigned long long>(handed_out));
    EXPECT_GT(next.value(), handed_out)
        << "stale read: resumed old leader " << old_id << " answered from state older than "
        << "numbers its successor " << new_leader.value().id << " had handed out";
  } else {
    std::printf("[ fencing ] read queued at the paused leader %u: %s\n", old_id,
                read.ok() ? read.value().message.c_str() : read.status().ToString().c_str());
  }
}

// ballotctl against the cluster.
ToolResult Ctl(const ProcessCluster& cluster, std::vector<std::string> args) {
  std::vector<std::string> full = {BALLOTCTL_PATH, "--cluster=" + cluster.cluster_flag(),
                                   "--timeout_ms=" + std::to_string(kCallTimeout.count())};
  full.insert(full.end(), args.begin(), args.end());
  return RunTool(full, Clock::now() + kToolTimeout);
}

std::optional<uint64_t> ParseToken(const std::string& out) {
  unsigned long long token = 0;
  if (std::sscanf(out.c_str(), "%llu", &token) != 1 || token == 0) return std::nullopt;
  return token;
}

double MsSince(SystemClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SystemClock::now() - t).count();
}

// One round of (b) with `ttl`. Returns false if it was inconclusive: B's first try could not be
// sent before A's TTL ran out (a very slow machine), so it proved nothing about the refusal.
bool StalledHolderRound(ProcessCluster& cluster, FencedKv& kv, Client& client,
                        const std::string& name, milliseconds ttl) {
  const std::string ttl_flag = "--ttl_ms=" + std::to_string(ttl.count());
  const std::string resource = "lock:" + name;
  const std::string key = name + "-output";

  // A acquires and acts. Lock TTLs run on the leader's wall clock, stamped no earlier than
  // this moment: A's hold ends no earlier than a_sent + ttl.
  const auto a_sent = SystemClock::now();
  const ToolResult a = Ctl(cluster, {"lock", "acquire", name, "--owner=A", ttl_flag});
  EXPECT_EQ(a.exit_code, 0) << a.Describe();
  const std::optional<uint64_t> token_a = ParseToken(a.out);
  EXPECT_TRUE(token_a.has_value()) << a.Describe();
  if (a.exit_code != 0 || !token_a) return true;
  EXPECT_EQ(kv.Send("REGISTER " + resource + " " + std::to_string(*token_a)), "OK");
  EXPECT_EQ(kv.Send("WRITE " + resource + " " + std::to_string(*token_a) + " " + key + " A"), "OK");

  // A stalls. B tries at once: refused while A's hold lasts.
  const auto b_first_sent = SystemClock::now();
  const ToolResult b_first = Ctl(cluster, {"lock", "acquire", name, "--owner=B", ttl_flag});
  const double b_first_ms = MsSince(a_sent);
  if (b_first.exit_code == 0) {
    // Granted: legitimate only if A's TTL may have run out by the time B was answered.
    EXPECT_GE(b_first_ms, static_cast<double>(ttl.count()))
        << "B was granted " << name << " " << b_first_ms << " ms after A asked for a "
        << ttl.count() << " ms hold: " << b_first.Describe();
    std::printf(
        "[ fencing ] inconclusive with ttl %lld ms: B's first try, sent %.0f ms after A "
        "asked, was answered only after %.0f ms; retrying with a longer TTL\n",
        static_cast<long long>(ttl.count()),
        std::chrono::duration<double, std::milli>(b_first_sent - a_sent).count(), b_first_ms);
    return false;
  }
  EXPECT_EQ(b_first.exit_code, 3) << b_first.Describe();
  EXPECT_NE(b_first.err.find("held by 'A'"), std::string::npos) << b_first.Describe();

  // B retries until A's hold has expired.
  ToolResult b;
  int b_tries = 1;
  const bool granted = WaitUntil(
      Clock::now() + ttl + kLiveness,
      [&] {
        ++b_tries;
        b = Ctl(cluster, {"lock", "acquire", name, "--owner=B", ttl_flag});
        EXPECT_TRUE(b.exit_code == 0 || b.exit_code == 3) << b.Describe();
        return b.exit_code == 0;
      },
      milliseconds(25));
  const double b_granted_ms = MsSince(a_sent);
  EXPECT_TRUE(granted) << "B never got " << name << ": " << b.Describe();
  if (!granted) return true;
  const std::optional<uint64_t> token_b = ParseToken(b.out);
  EXPECT_TRUE(token_b.has_value()) << b.Describe();
  if (!token_b) return true;
  EXPECT_GE(b_granted_ms, static_cast<double>(ttl.count()))
      << "B was granted " << name << " before A's " << ttl.count() << " ms TTL could run out";
  EXPECT_GT(*token_b, *token_a) << "a new holder's token must be strictly higher";
  auto holder = client.Read(samples::LockService::EncodeGet(name), kCallTimeout);
  EXPECT_TRUE(holder.ok()) << holder.status().ToString();
  if (holder.ok()) {
    auto decoded = samples::LockService::DecodeGet(holder.value().data);
    EXPECT_TRUE(decoded.ok() && decoded.value().has_value()) << holder.value().message;
    if (decoded.ok() && decoded.value().has_value()) {
      EXPECT_EQ(decoded.value()->owner, "B");
      EXPECT_EQ(decoded.value()->token, *token_b);
    }
  }
  std::printf(
      "[ fencing ] lock %s: A got token %llu; B refused at first, granted token %llu "
      "on try %d, %.0f ms after A asked (ttl %lld ms)\n",
      name.c_str(), static_cast<unsigned long long>(*token_a),
      static_cast<unsigned long long>(*token_b), b_tries, b_granted_ms,
      static_cast<long long>(ttl.count()));
  EXPECT_EQ(kv.Send("REGISTER " + resource + " " + std::to_string(*token_b)), "OK");
  EXPECT_EQ(kv.Send("WRITE " + resource + " " + std::to_string(*token_b) + " " + key + " B"), "OK");

  // A wakes up: its keepalive is refused, and its late write with the old token bounces.
  const ToolResult keepalive = Ctl(cluster, {"lock", "keepalive", name, "--owner=A"});
  EXPECT_EQ(keepalive.exit_code, 3) << keepalive.Describe();
  const ToolResult late = kv.SendWithClient("WRITE " + resource + " " + std::to_string(*token_a) +
                                            " " + key + " A-late");
  EXPECT_EQ(late.exit_code, 3) << late.Describe();
  EXPECT_EQ(late.out.rfind("REJECTED", 0), 0u) << late.Describe();
  EXPECT_EQ(kv.Send("READ " + key), "VALUE B");
  EXPECT_EQ(kv.Send("HIGHEST " + resource), "TOKEN " + std::to_string(*token_b));
  std::printf("[ fencing ] A's late write with token %llu: %s\n",
              static_cast<unsigned long long>(*token_a), Trim(late.out).c_str());
  return true;
}

TEST(FencingTest, StalledLockHolderIsFencedOffAfterItsTtl) {
  const auto test_start = Clock::now();
  ProcessClusterOptions options = DefaultOptions(BALLOTD_PATH);
  options.extra_flags = {"--state_machine=lock"};  // the last --state_machine wins
  ProcessCluster cluster(options);
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  FencedKv kv(cluster.dir() + "/fenced-kv");
  Status kv_started = kv.Start(Clock::now() + kStartTimeout);
  ASSERT_TRUE(kv_started.ok()) << kv_started.ToString();
  auto client = cluster.NewClient();

  bool conclusive = false;
  std::string name = "job";
  for (milliseconds ttl : {milliseconds(300), milliseconds(1200), milliseconds(4800)}) {
    conclusive = StalledHolderRound(cluster, kv, *client, name, ttl);
    if (conclusive || ::testing::Test::HasFailure()) break;
    name = "job-ttl-" + std::to_string(ttl.count() * 4);  // A may still hold the old one
  }
  EXPECT_TRUE(conclusive) << "B's first try never reached the leader within A's TTL";

  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
  std::printf("[ fencing ] took %.1f s\n", MsBetween(test_start, Clock::now()) / 1000);
}

}  // namespace
}  // namespace ballot::cluster_test
