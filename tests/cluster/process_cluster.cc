#include "tests/cluster/process_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ballot::cluster_test {
namespace {

// How long one status probe may take while waiting for a node to serve.
constexpr std::chrono::milliseconds kProbeTimeout{300};
// Lines of a node's log quoted when it dies unexpectedly.
constexpr size_t kLogTailLines = 20;
// File descriptors closed in a child when close_range(2) is missing.
constexpr int kChildFdsMax = 4096;

std::string MakeTempDir() {
  const char* base = getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ballot-cluster-test-XXXXXX";
  const char* made = mkdtemp(pattern.data());
  PCHECK(made != nullptr) << "mkdtemp " << pattern;
  return made;
}

// Ports the kernel says are free now: every socket stays bound until all are picked, so the
// ports are distinct. A later bind by ballotd can still lose a race with another process; the
// node then fails to start and its log says so.
std::vector<uint16_t> PickFreePorts(size_t count) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < count; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    PCHECK(fd >= 0) << "socket";
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    PCHECK(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) << "bind port 0";
    socklen_t len = sizeof(addr);
    PCHECK(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) << "getsockname";
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  return ports;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) +
           (WCOREDUMP(status) ? " (core dumped)" : "");
  }
  return "wait status " + std::to_string(status);
}

// Async-signal-safe: runs in the child between fork and exec.
[[noreturn]] void ExecChild(pid_t parent, int log_fd, int null_fd, const char* path,
                            char* const argv[]) {
  // Die with the test: SIGKILL when the forking thread ends. If the parent is already gone
  // (it died between fork and prctl), do not run at all.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
      dup2(log_fd, STDERR_FILENO) < 0) {
    _exit(127);
  }
  // The test's sockets (clients, raw connections) must not live on in the server: a connection
  // the test closes has to look closed to the node at the other end.
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3, ~0U, 0) != 0)
#endif
  {
    for (int fd = 3; fd < kChildFdsMax; ++fd) close(fd);
  }
  // Signals blocked or ignored in the test must not leak into the server.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  execv(path, argv);
  _exit(127);
}

}  // namespace

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

ProcessCluster::ProcessCluster(ProcessClusterOptions options) : options_(std::move(options)) {
  CHECK(!options_.ballotd_path.empty()) << "ballotd_path is required";
  CHECK(options_.nodes >= 1 && options_.nodes <= 9) << "nodes: " << options_.nodes;
  dir_ = MakeTempDir();
  const std::vector<uint16_t> ports = PickFreePorts(options_.nodes);
  for (size_t i = 0; i < options_.nodes; ++i) {
    Child c;
    c.id = static_cast<paxos::NodeId>(i + 1);
    c.port = ports[i];
    c.data_dir = dir_ + "/node" + std::to_string(c.id);
    c.log_path = dir_ + "/node" + std::to_string(c.id) + ".log";
    if (!cluster_flag_.empty()) cluster_flag_ += ",";
    cluster_flag_ += std::to_string(c.id) + "@127.0.0.1:" + std::to_string(c.port);
    children_.emplace(c.id, std::move(c));
  }
  std::map<paxos::NodeId, std::string> members;
  for (const auto& [id, c] : children_) members[id] = "127.0.0.1:" + std::to_string(c.port);
  cluster_id_ = BootstrapClusterId(members, options_.cluster_token);
}

void ProcessCluster::set_cluster_id(uint64_t cluster_id) {
  cluster_id_ = cluster_id;
  admin_.reset();
}

ProcessCluster::~ProcessCluster() {
  admin_.reset();
  KillAll();
  const bool failed = ::testing::Test::HasFailure();
  if (failed || getenv("BALLOT_KEEP_TEST_DIRS") != nullptr) {
    std::fprintf(stderr, "process cluster: keeping %s (node logs: node<id>.log)\n", dir_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

ProcessCluster::Child& ProcessCluster::child(paxos::NodeId id) {
  auto it = children_.find(id);
  CHECK(it != children_.end()) << "no node " << id;
  return it->second;
}

const ProcessCluster::Child& ProcessCluster::child(paxos::NodeId id) const {
  auto it = children_.find(id);
  CHECK(it != children_.end()) << "no node " << id;
  return it->second;
}

paxos::NodeId ProcessCluster::AddNode() {
  Child c;
  c.id = children_.rbegin()->first + 1;
  c.port = PickFreePorts(1)[0];
  c.data_dir = dir_ + "/node" + std::to_string(c.id);
  c.log_path = dir_ + "/node" + std::to_string(c.id) + ".log";
  const paxos::NodeId id = c.id;
  children_.emplace(id, std::move(c));
  admin_.reset();  // the admin client must know the new node
  return id;
}

void ProcessCluster::SetNodeCluster(paxos::NodeId id, std::string cluster_flag) {
  child(id).cluster_flag = std::move(cluster_flag);
}

std::string ProcessCluster::Address(paxos::NodeId id) const {
  return "127.0.0.1:" + std::to_string(child(id).port);
}

std::string ProcessCluster::Entry(paxos::NodeId id) const {
  return std::to_string(id) + "@" + Address(id);
}

Status ProcessCluster::Launch(paxos::NodeId id) {
  Child& c = child(id);
  if (c.pid > 0) return Status(StatusCode::kFailedPrecondition, "already running");
  return Spawn(c);
}

std::string ProcessCluster::WaitExit(paxos::NodeId id, Clock::time_point deadline) {
  Child& c = child(id);
  std::string how;
  WaitUntil(deadline, [&] { return ReapIfExited(c, &how); });
  return how;
}

std::vector<paxos::NodeId> ProcessCluster::ids() const {
  std::vector<paxos::NodeId> out;
  for (const auto& [id, c] : children_) out.push_back(id);
  return out;
}

uint16_t ProcessCluster::port(paxos::NodeId id) const { return child(id).port; }
bool ProcessCluster::running(paxos::NodeId id) const { return child(id).pid > 0; }
bool ProcessCluster::stopped(paxos::NodeId id) const { return child(id).stopped; }
int ProcessCluster::starts(paxos::NodeId id) const { return child(id).starts; }
std::string ProcessCluster::LogPath(paxos::NodeId id) const { return child(id).log_path; }
std::string ProcessCluster::DataDir(paxos::NodeId id) const { return child(id).data_dir; }

ClientOptions ProcessCluster::client_options() const {
  ClientOptions o;
  o.cluster_id = cluster_id_;
  for (const auto& [id, c] : children_) o.members[id] = "127.0.0.1:" + std::to_string(c.port);
  o.attempt_timeout = options_.attempt_timeout;
  return o;
}

std::unique_ptr<Client> ProcessCluster::NewClient() const {
  auto client = Client::Create(client_options());
  CHECK(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

Client& ProcessCluster::admin() {
  if (admin_ == nullptr) admin_ = NewClient();
  return *admin_;
}

void ProcessCluster::AppendToLog(const Child& c, const std::string& line) const {
  std::ofstream out(c.log_path, std::ios::app);
  out << "=== process_cluster: " << line << " ===\n";
}

Status ProcessCluster::Spawn(Child& c) {
  std::vector<std::string> args = {
      options_.ballotd_path,
      "--id=" + std::to_string(c.id),
      "--cluster=" + (c.cluster_flag.empty() ? cluster_flag_ : c.cluster_flag),
      "--data_dir=" + c.data_dir,
      "--state_machine=" + options_.state_machine,
  };
  if (!options_.cluster_token.empty()) args.push_back("--cluster_token=" + options_.cluster_token);
  if (!c.cluster_flag.empty()) args.push_back("--cluster_id=" + std::to_string(cluster_id_));
  args.insert(args.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  args.insert(args.end(), c.extra_flags.begin(), c.extra_flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  ++c.starts;
  AppendToLog(c, "start #" + std::to_string(c.starts) + " of node " + std::to_string(c.id));
  const int log_fd = open(c.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0)
    return Status(StatusCode::kIoError, "open " + c.log_path + ": " + strerror(errno));
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) {
    close(log_fd);
    return Status(StatusCode::kIoError, std::string("open /dev/null: ") + strerror(errno));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(parent, log_fd, null_fd, argv[0], argv.data());
  const int fork_errno = errno;
  close(log_fd);
  close(null_fd);
  if (pid < 0) return Status(StatusCode::kIoError, std::string("fork: ") + strerror(fork_errno));
  c.pid = pid;
  c.stopped = false;
  return Status::Ok();
}

bool ProcessCluster::ReapIfExited(Child& c, std::string* how) {
  if (c.pid <= 0) return true;
  int status = 0;
  const pid_t r = waitpid(c.pid, &status, WNOHANG);
  if (r == 0) return false;
  PCHECK(r == c.pid) << "waitpid " << c.pid;
  *how = DescribeWaitStatus(status);
  AppendToLog(c, "node " + std::to_string(c.id) + " " + *how);
  c.pid = -1;
  c.stopped = false;
  return true;
}

std::string ProcessCluster::LogTail(const Child& c, size_t lines) const {
  std::istringstream in(ReadLog(c.id));
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "  | " + all[i] + "\n";
  }
  return out;
}

Status ProcessCluster::WaitServing(Child& c, Clock::time_point deadline) {
  Status last(StatusCode::kTimeout, "no status asked yet");
  while (true) {
    std::string how;
    if (ReapIfExited(c, &how)) {
      return Status(StatusCode::kAborted, "node " + std::to_string(c.id) + " " + how +
                                              " while starting; its log ends:\n" +
                                              LogTail(c, kLogTailLines));
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      return Status(StatusCode::kTimeout,
                    "node " + std::to_string(c.id) + " does not answer status: " + last.ToString());
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    auto s = admin().Status(c.id, std::min(left, kProbeTimeout));
    if (s.ok()) return Status::Ok();
    last = s.status();
  }
}

Status ProcessCluster::StartNode(paxos::NodeId id, Clock::time_point deadline) {
  Child& c = child(id);
  if (c.pid > 0) {
    return Status(StatusCode::kFailedPrecondition, "node " + std::to_string(id) + " is running");
  }
  Status s = Spawn(c);
  if (!s.ok()) return s;
  return WaitServing(c, deadline);
}

Status ProcessCluster::StartAll(Clock::time_point deadline) {
  for (auto& [id, c] : children_) {
    if (c.pid > 0) continue;
    Status s = Spawn(c);
    if (!s.ok()) return s;
  }
  for (auto& [id, c] : children_) {
    Status s = WaitServing(c, deadline);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ProcessCluster::CheckAlive() {
  std::string dead;
  for (auto& [id, c] : children_) {
    std::string how;
    if (c.pid <= 0 || !ReapIfExited(c, &how)) continue;
    dead += "node " + std::to_string(id) + " " + how + " on its own; its log ends:\n" +
            LogTail(c, kLogTailLines);
  }
  if (dead.empty()) return Status::Ok();
  return Status(StatusCode::kAborted, dead);
}

void ProcessCluster::SetNodeFlags(paxos::NodeId id, std::vector<std::string> flags) {
  child(id).extra_flags = std::move(flags);
}

Status ProcessCluster::Restart(paxos::NodeId id, Clock::time_point deadline) {
  Kill(id);
  return StartNode(id, deadline);
}

void ProcessCluster::Kill(paxos::NodeId id) {
  Child& c = child(id);
  if (c.pid <= 0) return;
  PCHECK(kill(c.pid, SIGKILL) == 0) << "kill " << c.pid;
  int status = 0;
  PCHECK(waitpid(c.pid, &status, 0) == c.pid) << "waitpid " << c.pid;
  AppendToLog(c, "node " + std::to_string(id) + " " + DescribeWaitStatus(status));
  c.pid = -1;
  c.stopped = false;
}

void ProcessCluster::KillAll() {
  for (auto& [id, c] : children_) {
    if (c.pid > 0) PCHECK(kill(c.pid, SIGKILL) == 0) << "kill " << c.pid;
  }
  for (auto& [id, c] : children_) Kill(id);
}

std::string ProcessCluster::Terminate(paxos::NodeId id, Clock::time_point deadline) {
  Child& c = child(id);
  if (c.pid <= 0) return "not running";
  if (c.stopped) Cont(id);
  PCHECK(kill(c.pid, SIGTERM) == 0) << "kill " << c.pid;
  std::string how;
  if (WaitUntil(deadline, [&] { return ReapIfExited(c, &how); })) return how;
  Kill(id);
  return "did not exit by the deadline; killed";
}

std::map<paxos::NodeId, std::string> ProcessCluster::TerminateAll(Clock::time_point deadline,
                                                                  int sig) {
  std::map<paxos::NodeId, std::string> out;
  for (auto& [id, c] : children_) {
    if (c.pid <= 0) continue;
    if (c.stopped) Cont(id);
    PCHECK(kill(c.pid, sig) == 0) << "kill " << c.pid;
    out[id] = "";
  }
  for (auto& [id, how] : out) {
    Child& c = child(id);
    if (!WaitUntil(deadline, [&] { return ReapIfExited(c, &how); })) {
      Kill(id);
      how = "did not exit by the deadline; killed";
    }
  }
  return out;
}

void ProcessCluster::Stop(paxos::NodeId id) {
  Child& c = child(id);
  CHECK(c.pid > 0 && !c.stopped) << "node " << id << " is not running";
  PCHECK(kill(c.pid, SIGSTOP) == 0) << "kill " << c.pid;
  int status = 0;
  PCHECK(waitpid(c.pid, &status, WUNTRACED) == c.pid) << "waitpid " << c.pid;
  CHECK(WIFSTOPPED(status)) << "node " << id << ": " << DescribeWaitStatus(status);
  c.stopped = true;
}

void ProcessCluster::Cont(paxos::NodeId id) {
  Child& c = child(id);
  CHECK(c.pid > 0 && c.stopped) << "node " << id << " is not stopped";
  PCHECK(kill(c.pid, SIGCONT) == 0) << "kill " << c.pid;
  int status = 0;
  PCHECK(waitpid(c.pid, &status, WCONTINUED) == c.pid) << "waitpid " << c.pid;
  CHECK(WIFCONTINUED(status)) << "node " << id << ": " << DescribeWaitStatus(status);
  c.stopped = false;
}

Result<std::pair<paxos::NodeId, uint64_t>> ProcessCluster::WaitForLeader(Clock::time_point deadline,
                                                                         paxos::NodeId not_id) {
  Status last(StatusCode::kTimeout, "no leader asked yet");
  while (true) {
    const auto now = Clock::now();
    if (now >= deadline) {
      return Status(StatusCode::kTimeout, "no leader by the deadline: " + last.ToString());
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    auto r = admin().FindLeader(std::min(left, std::chrono::milliseconds(1000)));
    if (r.ok() && r.value().first != not_id) return r;
    // FindLeader paces its own rounds; the excluded node may still claim leadership for a
    // moment (e.g. just resumed from SIGSTOP), so pause before asking again.
    if (r.ok()) {
      last = Status(StatusCode::kNotFound, "only node " + std::to_string(not_id) + " leads");
      WaitUntil(std::min(deadline, Clock::now() + std::chrono::milliseconds(20)),
                [] { return false; });
    } else {
      last = r.status();
    }
  }
}

Result<net::NodeStatus> ProcessCluster::NodeStatus(paxos::NodeId id,
                                                   std::chrono::milliseconds timeout) {
  return admin().Status(id, timeout);
}

std::map<paxos::NodeId, Result<net::NodeStatus>> ProcessCluster::StatusAll(
    std::chrono::milliseconds timeout) {
  return admin().StatusAll(timeout);
}

std::map<paxos::NodeId, paxos::Slot> ProcessCluster::AppliedPositions(
    std::chrono::milliseconds timeout) {
  std::map<paxos::NodeId, paxos::Slot> out;
  for (auto& [id, status] : StatusAll(timeout)) {
    if (status.ok()) out[id] = status.value().applied_below;
  }
  return out;
}

bool ProcessCluster::WaitForConvergence(Clock::time_point deadline, std::string* last) {
  return WaitUntil(deadline, [&] {
    const auto positions = AppliedPositions(kProbeTimeout);
    last->clear();
    for (const auto& [id, applied] : positions) {
      *last += (last->empty() ? "" : ", ") + std::string("node ") + std::to_string(id) +
               " applied below " + std::to_string(applied);
    }
    if (positions.size() != children_.size()) return false;
    for (const auto& [id, applied] : positions) {
      if (applied != positions.begin()->second) return false;
    }
    return true;
  });
}

std::string ProcessCluster::ReadLog(paxos::NodeId id) const {
  std::ifstream in(child(id).log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ProcessCluster::LogLines(paxos::NodeId id,
                                                  const std::vector<std::string>& needles) const {
  std::istringstream in(ReadLog(id));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    bool all = true;
    for (const std::string& needle : needles) all = all && line.find(needle) != std::string::npos;
    if (all) out.push_back(line);
  }
  return out;
}

size_t ProcessCluster::CountLogLines(paxos::NodeId id,
                                     const std::vector<std::string>& needles) const {
  return LogLines(id, needles).size();
}

size_t ProcessCluster::WaitForLogLines(paxos::NodeId id, const std::vector<std::string>& needles,
                                       size_t at_least, Clock::time_point deadline) const {
  size_t n = 0;
  WaitUntil(deadline, [&] {
    n = CountLogLines(id, needles);
    return n >= at_least;
  });
  return n;
}

}  // namespace ballot::cluster_test
