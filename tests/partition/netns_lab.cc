#include "tests/partition/netns_lab.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/cluster/process_cluster.h"  // WaitUntil

namespace ballot::partition_test {
namespace {

using cluster_test::WaitUntil;

constexpr std::chrono::milliseconds kProbeTimeout{300};

// Runs a shell command; returns its exit status and (merged) output.
int Run(const std::string& command, std::string* output = nullptr) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  PCHECK(pipe != nullptr) << "popen " << command;
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  if (output != nullptr) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void MustRun(const std::string& command) {
  std::string out;
  const int rc = Run(command, &out);
  CHECK_EQ(rc, 0) << "command failed: " << command << "\n" << out;
}

bool HaveTool(const char* name) {
  return Run(std::string("command -v ") + name + " >/dev/null") == 0;
}

std::string MakeTempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "ballot-partition-XXXXXX").string();
  PCHECK(mkdtemp(pattern.data()) != nullptr) << "mkdtemp";
  return pattern;
}

// A /24 in 10.0.0.0/8 that the root namespace has no route for (the clients' link lives there).
std::string FreeSubnet() {
  const unsigned pid = static_cast<unsigned>(getpid());
  for (unsigned i = 0; i < 1000; ++i) {
    const unsigned a = 100 + (pid / 256 + i) % 100;
    const unsigned b = (pid + 7 * i) % 256;
    const std::string subnet = "10." + std::to_string(a) + "." + std::to_string(b);
    std::string routes;
    Run("ip -4 route show to root " + subnet + ".0/24", &routes);
    if (routes.empty()) return subnet;
  }
  LOG(FATAL) << "no free 10.x.y.0/24 subnet";
}

// Async-signal-safe: between fork and exec.
[[noreturn]] void ExecInNamespace(pid_t parent, int netns_fd, int log_fd, int null_fd,
                                  const char* path, char* const argv[]) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
  if (setns(netns_fd, CLONE_NEWNET) != 0) _exit(126);
  if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
      dup2(log_fd, STDERR_FILENO) < 0) {
    _exit(127);
  }
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  execv(path, argv);
  _exit(127);
}

}  // namespace

std::string MissingPrerequisite() {
  if (geteuid() != 0) return "not root (network namespaces and nftables need CAP_NET_ADMIN)";
  if (!HaveTool("ip")) return "no `ip` (Debian package iproute2)";
  if (!HaveTool("nft")) return "no `nft` (Debian package nftables)";
  // The kernel must let us make a namespace and a bridge filter in it.
  const std::string probe = "bpprobe" + std::to_string(getpid());
  std::string out;
  const int rc = Run("ip netns add " + probe + " && ip netns exec " + probe +
                         " nft add table bridge probe; r=$?; ip netns del " + probe + "; exit $r",
                     &out);
  if (rc != 0) return "cannot make a network namespace with a bridge nftables table: " + out;
  return "";
}

NetnsLab::NetnsLab(Options options) : options_(std::move(options)) {
  CHECK(!options_.ballotd_path.empty());
  CHECK(options_.nodes >= 1 && options_.nodes <= 9);
  static std::atomic<int> labs{0};
  prefix_ = "bp" + std::to_string(getpid()) + "x" + std::to_string(labs++);
  subnet_ = FreeSubnet();
  hub_ = prefix_ + "-hub";
  host_veth_ = prefix_ + "-c";
  dir_ = MakeTempDir();

  MustRun("ip netns add " + hub_);
  MustRun("ip -n " + hub_ + " link add br0 type bridge");
  MustRun("ip -n " + hub_ + " link set br0 up");
  for (size_t i = 1; i <= options_.nodes; ++i) {
    Node n;
    n.id = static_cast<paxos::NodeId>(i);
    n.ns = prefix_ + "-n" + std::to_string(i);
    n.ip = subnet_ + "." + std::to_string(i);
    n.data_dir = dir_ + "/node" + std::to_string(i);
    n.log_path = dir_ + "/node" + std::to_string(i) + ".log";
    const std::string port = "n" + std::to_string(i);
    MustRun("ip netns add " + n.ns);
    MustRun("ip -n " + n.ns + " link set lo up");
    MustRun("ip -n " + hub_ + " link add " + port + " type veth peer name eth0 netns " + n.ns);
    MustRun("ip -n " + hub_ + " link set " + port + " master br0 up");
    MustRun("ip -n " + n.ns + " addr add " + n.ip + "/24 dev eth0");
    MustRun("ip -n " + n.ns + " link set eth0 up");
    if (!cluster_flag_.empty()) cluster_flag_ += ",";
    cluster_flag_ += std::to_string(n.id) + "@" + Address(n);
    nodes_.emplace(n.id, std::move(n));
  }
  MustRun("ip link add " + host_veth_ + " type veth peer name c netns " + hub_);
  MustRun("ip -n " + hub_ + " link set c master br0 up");
  MustRun("ip addr add " + subnet_ + ".254/24 dev " + host_veth_);
  MustRun("ip link set " + host_veth_ + " up");
  ApplyCuts();  // creates the (empty) nftables table
}

NetnsLab::~NetnsLab() {
  admin_.reset();
  for (auto& [id, n] : nodes_) {
    if (n.pid > 0) {
      kill(n.pid, SIGKILL);
      waitpid(n.pid, nullptr, 0);
      n.pid = -1;
    }
  }
  for (const auto& [id, n] : nodes_) Run("ip netns del " + n.ns);
  Run("ip netns del " + hub_);
  Run("ip link del " + host_veth_);  // gone with the hub already, normally
  if (::testing::Test::HasFailure() || getenv("BALLOT_KEEP_TEST_DIRS") != nullptr) {
    std::fprintf(stderr, "netns lab: keeping %s (node logs: node<id>.log)\n", dir_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

NetnsLab::Node& NetnsLab::node(paxos::NodeId id) {
  auto it = nodes_.find(id);
  CHECK(it != nodes_.end()) << "no node " << id;
  return it->second;
}

std::vector<paxos::NodeId> NetnsLab::ids() const {
  std::vector<paxos::NodeId> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

std::string NetnsLab::DataDir(paxos::NodeId id) const { return nodes_.at(id).data_dir; }

void NetnsLab::Spawn(Node& n) {
  std::vector<std::string> args = {options_.ballotd_path, "--id=" + std::to_string(n.id),
                                   "--cluster=" + cluster_flag_, "--data_dir=" + n.data_dir,
                                   "--state_machine=" + options_.state_machine};
  args.insert(args.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const std::string ns_path = "/run/netns/" + n.ns;
  const int netns_fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  PCHECK(netns_fd >= 0) << "open " << ns_path;
  const int log_fd = open(n.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  PCHECK(log_fd >= 0) << "open " << n.log_path;
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  PCHECK(null_fd >= 0);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecInNamespace(parent, netns_fd, log_fd, null_fd, argv[0], argv.data());
  PCHECK(pid > 0) << "fork";
  close(netns_fd);
  close(log_fd);
  close(null_fd);
  n.pid = pid;
}

Status NetnsLab::StartAll(Clock::time_point deadline) {
  for (auto& [id, n] : nodes_) {
    if (n.pid <= 0) Spawn(n);
  }
  for (auto& [id, n] : nodes_) {
    const bool up = WaitUntil(
        deadline,
        [&] {
          if (Status s = CheckAlive(); !s.ok()) return true;
          if (admin_ == nullptr) admin_ = NewClient();
          return admin_->Status(id, kProbeTimeout).ok();
        },
        std::chrono::milliseconds(50));
    if (Status s = CheckAlive(); !s.ok()) return s;
    if (!up) return Status(StatusCode::kTimeout, "node " + std::to_string(id) + " did not answer");
  }
  return Status::Ok();
}

void NetnsLab::StopAll(Clock::time_point deadline) {
  for (auto& [id, n] : nodes_) {
    if (n.pid > 0) kill(n.pid, SIGTERM);
  }
  for (auto& [id, n] : nodes_) {
    if (n.pid <= 0) continue;
    WaitUntil(deadline, [&] { return waitpid(n.pid, nullptr, WNOHANG) == n.pid; });
    if (kill(n.pid, 0) == 0) {
      kill(n.pid, SIGKILL);
      waitpid(n.pid, nullptr, 0);
    }
    n.pid = -1;
  }
}

Status NetnsLab::CheckAlive() {
  std::string dead;
  for (auto& [id, n] : nodes_) {
    if (n.pid <= 0) continue;
    int status = 0;
    if (waitpid(n.pid, &status, WNOHANG) != n.pid) continue;
    n.pid = -1;
    dead += "node " + std::to_string(id) + " exited (status " + std::to_string(status) +
            "); log tail:\n" + LogTail(id, 20);
  }
  if (dead.empty()) return Status::Ok();
  return Status(StatusCode::kAborted, dead);
}

std::string NetnsLab::LogTail(paxos::NodeId id, size_t lines) const {
  std::ifstream in(nodes_.at(id).log_path);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "  | " + all[i] + "\n";
  }
  return out;
}

// The whole rule set is replaced at once (`nft -f` is atomic): a cut is in place for every
// link before the next packet is forwarded.
void NetnsLab::ApplyCuts() {
  std::ostringstream rules;
  rules << "table bridge ballot_cuts\ndelete table bridge ballot_cuts\n"
        << "table bridge ballot_cuts {\n  chain forward {\n"
        << "    type filter hook forward priority 0; policy accept;\n";
  for (const auto& [a, b] : cuts_) {
    rules << "    iifname \"n" << a << "\" oifname \"n" << b << "\" drop\n";
    rules << "    iifname \"n" << b << "\" oifname \"n" << a << "\" drop\n";
  }
  rules << "  }\n}\n";
  const std::string file = dir_ + "/cuts.nft";
  std::ofstream(file) << rules.str();
  MustRun("ip netns exec " + hub_ + " nft -f " + file);
}

void NetnsLab::Cut(paxos::NodeId a, paxos::NodeId b) {
  CHECK_NE(a, b);
  node(a);
  node(b);
  cuts_.insert({std::min(a, b), std::max(a, b)});
  ApplyCuts();
}

void NetnsLab::Split(const std::set<paxos::NodeId>& left, const std::set<paxos::NodeId>& right) {
  for (paxos::NodeId a : left) {
    for (paxos::NodeId b : right) {
      CHECK_NE(a, b) << "a node on both sides";
      cuts_.insert({std::min(a, b), std::max(a, b)});
    }
  }
  ApplyCuts();
}

void NetnsLab::Isolate(paxos::NodeId id) {
  std::set<paxos::NodeId> others;
  for (paxos::NodeId other : ids()) {
    if (other != id) others.insert(other);
  }
  Split({id}, others);
}

void NetnsLab::Heal() {
  cuts_.clear();
  ApplyCuts();
}

std::string NetnsLab::Cuts() const {
  std::string out;
  for (const auto& [a, b] : cuts_) {
    out += (out.empty() ? "" : " ") + std::to_string(a) + "-" + std::to_string(b);
  }
  return out.empty() ? "none" : out;
}

ClientOptions NetnsLab::client_options() const {
  ClientOptions o;
  o.cluster_id = DefaultClusterId(cluster_flag_);
  for (const auto& [id, n] : nodes_) o.members[id] = Address(n);
  o.attempt_timeout = std::chrono::milliseconds(500);
  return o;
}

std::unique_ptr<Client> NetnsLab::NewClient() const {
  auto client = Client::Create(client_options());
  CHECK(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

Result<std::pair<paxos::NodeId, uint64_t>> NetnsLab::WaitForLeader(Clock::time_point deadline,
                                                                   paxos::NodeId not_id) {
  if (admin_ == nullptr) admin_ = NewClient();
  Result<std::pair<paxos::NodeId, uint64_t>> last = Status(StatusCode::kTimeout, "no leader found");
  WaitUntil(
      deadline,
      [&] {
        last = admin_->FindLeader(std::chrono::milliseconds(500));
        return last.ok() && last.value().first != not_id;
      },
      std::chrono::milliseconds(50));
  if (last.ok() && last.value().first == not_id) {
    return Status(StatusCode::kTimeout, "node " + std::to_string(not_id) + " still leads");
  }
  return last;
}

std::map<paxos::NodeId, Result<net::NodeStatus>> NetnsLab::StatusAll(
    std::chrono::milliseconds timeout) {
  if (admin_ == nullptr) admin_ = NewClient();
  return admin_->StatusAll(timeout);
}

bool NetnsLab::WaitForConvergence(Clock::time_point deadline, std::string* last) {
  std::string previous;
  int stable = 0;
  return WaitUntil(
      deadline,
      [&] {
        auto all = StatusAll(kProbeTimeout);
        std::string now;
        bool same = true;
        const net::NodeStatus* first = nullptr;
        for (const auto& [id, st] : all) {
          if (!st.ok()) {
            now += "node " + std::to_string(id) + ": " + st.status().ToString() + "; ";
            same = false;
            continue;
          }
          now += "node " + std::to_string(id) + " " + st.value().role + " chosen_below " +
                 std::to_string(st.value().chosen_below) + " applied_below " +
                 std::to_string(st.value().applied_below) + "; ";
          if (first == nullptr) first = &st.value();
          same = same && st.value().chosen_below == first->chosen_below &&
                 st.value().applied_below == first->applied_below;
        }
        *last = now;
        stable = same && now == previous ? stable + 1 : 0;
        previous = now;
        return stable >= 2;
      },
      std::chrono::milliseconds(200));
}

}  // namespace ballot::partition_test
