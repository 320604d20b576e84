// The timing handshake with real ballotd processes (issue 12 item 3): three nodes of which one
// runs with --tick_ms=20 next to two with the default 10. A node with a longer tick believes in
// a longer lease than its peers grant, so the odd node must never take part: the other two
// elect and serve on their own, every side logs the refusal naming both values, and the odd
// node never leads nor counts in a quorum (with one of the two down, nothing is chosen).
#include <fcntl.h>
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "statemachine/samples/sequence.h"
#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {
namespace {

using samples::SequenceGenerator;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr seconds kLiveness{10};
constexpr seconds kNoQuorumWait{3};

// One ballotd started by hand, for flags that differ from the harness's: SIGKILLed and reaped
// when destroyed, and dead with the test (PR_SET_PDEATHSIG) if the test dies first.
class HandStartedNode {
 public:
  HandStartedNode(std::vector<std::string> args, const std::string& log_path) {
    const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(log_fd >= 0 && null_fd >= 0);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    CHECK(pid_ >= 0);
    if (pid_ == 0) {
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
      if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
          dup2(log_fd, STDERR_FILENO) < 0) {
        _exit(127);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    close(null_fd);
  }
  ~HandStartedNode() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  HandStartedNode(const HandStartedNode&) = delete;
  HandStartedNode& operator=(const HandStartedNode&) = delete;

  bool running() const { return waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

size_t CountIn(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

TEST(HandshakeTest, NodeWithAnotherTickIsRefusedAndNeverCounts) {
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  for (paxos::NodeId id : {1u, 2u}) {
    Status started = cluster.StartNode(id, Clock::now() + kStartTimeout);
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  const std::string odd_log = cluster.dir() + "/odd3.log";
  HandStartedNode odd(
      {BALLOTD_PATH, "--id=3", "--cluster=" + cluster.cluster_flag(),
       "--data_dir=" + cluster.dir() + "/odd3", "--state_machine=sequence", "--tick_ms=20"},
      odd_log);

  // The two with the same timing elect and serve.
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  ASSERT_NE(leader.value().first, 3u);
  std::unique_ptr<Client> client = cluster.NewClient();
  Result<Client::ProposeReply> reply = client->Propose(SequenceGenerator::EncodeNext(5), kLiveness);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply.value().outcome.code, StatusCode::kOk);

  // Both sides of every refused connection say why, with both values.
  for (paxos::NodeId id : {1u, 2u}) {
    EXPECT_GE(cluster.WaitForLogLines(id,
                                      {"peer 3 has tick_ms=20, this node 10: refusing; every node "
                                       "must run with the same timing flags"},
                                      1, Clock::now() + kLiveness),
              1u)
        << cluster.ReadLog(id);
  }
  std::string log;
  ASSERT_TRUE(WaitUntil(Clock::now() + kLiveness, [&] {
    log = ReadFileOrEmpty(odd_log);
    return CountIn(log, "peer 1 has tick_ms=10, this node 20: refusing") > 0 &&
           CountIn(log, "peer 2 has tick_ms=10, this node 20: refusing") > 0;
  })) << log;

  // The odd node answers status requests (clients are not peers) but never leads.
  Result<net::NodeStatus> odd_status = cluster.NodeStatus(3, milliseconds(2000));
  ASSERT_TRUE(odd_status.ok()) << odd_status.status().ToString();
  EXPECT_NE(odd_status.value().role, "leader");

  // Without one of the two, the odd node does not make a quorum: nothing is chosen.
  const paxos::NodeId follower = leader.value().first == 1 ? 2 : 1;
  cluster.Kill(follower);
  reply = client->Propose(SequenceGenerator::EncodeNext(5), kNoQuorumWait);
  EXPECT_FALSE(reply.ok()) << "a command was chosen with the odd node in the quorum";
  EXPECT_TRUE(odd.running());
  log = ReadFileOrEmpty(odd_log);
  EXPECT_EQ(CountIn(log, " leads with epoch"), 0u) << log;
  EXPECT_EQ(CountIn(log, "taking part"), 0u) << log;
}

}  // namespace
}  // namespace ballot::cluster_test
