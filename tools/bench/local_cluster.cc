#include "tools/bench/local_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

namespace ballot::bench {

namespace {

// Binds port 0 and reads the port back. The socket is closed again, so another process could
// take the port in between; on loopback in a test run that does not happen in practice.
Result<int> FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status(StatusCode::kIoError, "socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  if (port <= 0) return Status(StatusCode::kIoError, "no free port");
  return port;
}

}  // namespace

Result<std::unique_ptr<LocalCluster>> LocalCluster::Start(Options options) {
  char tmpl[] = "/tmp/ballot-bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Status(StatusCode::kIoError, "mkdtemp failed");
  std::unique_ptr<LocalCluster> c(new LocalCluster(std::move(options), tmpl));
  for (int id = 1; id <= c->options_.nodes; ++id) {
    Result<int> port = FreePort();
    if (!port.ok()) return port.status();
    if (!c->cluster_flag_.empty()) c->cluster_flag_ += ",";
    c->cluster_flag_ += std::to_string(id) + "@127.0.0.1:" + std::to_string(port.value());
  }
  for (int id = 1; id <= c->options_.nodes; ++id) {
    Status s = c->StartNode(static_cast<paxos::NodeId>(id));
    if (!s.ok()) return s;
  }
  return c;
}

Status LocalCluster::StartNode(paxos::NodeId id) {
  std::string node = std::to_string(id);
  std::vector<std::string> args = {options_.ballotd, "--id=" + node, "--cluster=" + cluster_flag_,
                                   "--data_dir=" + dir_ + "/node" + node,
                                   "--state_machine=" + options_.state_machine};
  for (const std::string& f : options_.extra_flags) args.push_back(f);
  std::string log = dir_ + "/node" + node + ".log";
  pid_t pid = fork();
  if (pid < 0) return Status(StatusCode::kIoError, "fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pids_[id] = pid;
  return Status::Ok();
}

double LocalCluster::CpuSeconds() const {
  static const double kTicksPerSecond = static_cast<double>(sysconf(_SC_CLK_TCK));
  double total = 0;
  for (const auto& [id, pid] : pids_) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int n = 3; n <= 15 && fields >> field; ++n) {
      if (n == 14) utime = std::stoull(field);
      if (n == 15) stime = std::stoull(field);
    }
    total += (utime + stime) / kTicksPerSecond;
  }
  return total;
}

void LocalCluster::KillNode(paxos::NodeId id) {
  auto it = pids_.find(id);
  if (it == pids_.end()) return;
  kill(it->second, SIGKILL);
  waitpid(it->second, nullptr, 0);
  pids_.erase(it);
}

Status LocalCluster::TerminateNode(paxos::NodeId id, int wait_ms) {
  auto it = pids_.find(id);
  if (it == pids_.end()) return Status(StatusCode::kNotFound, "node not running");
  const pid_t pid = it->second;
  pids_.erase(it);
  kill(pid, SIGTERM);
  int status = 0;
  for (int waited_ms = 0;; ++waited_ms) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (waited_ms >= wait_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return Status(StatusCode::kAborted, "did not exit within " + std::to_string(wait_ms) + " ms");
    }
    usleep(1000);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return Status(StatusCode::kAborted,
                "did not exit cleanly (wait status " + std::to_string(status) + ")");
}

LocalCluster::~LocalCluster() {
  while (!pids_.empty()) KillNode(pids_.begin()->first);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace ballot::bench
