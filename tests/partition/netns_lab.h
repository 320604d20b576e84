// NetnsLab: a Ballot cluster of real ballotd processes, each in its own Linux network namespace,
// joined by veth pairs to a bridge in a "hub" namespace, with partitions made by nftables rules
// on that bridge. Needs root (CAP_NET_ADMIN), `ip` and `nft`.
//
//   root namespace (the test and its clients) -- veth "c" --+
//   <prefix>-n1: ballotd 1 at 10.A.B.1:7000 -- veth "n1" ---+-- bridge in <prefix>-hub, where
//   <prefix>-n2: ballotd 2 at 10.A.B.2:7000 -- veth "n2" ---+   `nft` drops frames between
//   ...                                                     |   ports to cut links
//
// Partitions cut node-to-node links only; the test's clients reach every node throughout, so a
// deposed leader that still answers (a stale lease read, an acknowledgement it cannot have)
// would show up in the clients' history.
//
// Names are unique per run (the prefix holds the test's pid), and everything is removed in the
// destructor; tests/partition/run_partition_test.sh also removes, before and after a run, the
// namespaces of runs whose process is gone (a test killed at its timeout cannot clean up).
//
// Not thread-safe: drive it from the test's main thread (children get PR_SET_PDEATHSIG from the
// forking thread). Clients from NewClient() may be used from any thread.
#ifndef BALLOT_TESTS_PARTITION_NETNS_LAB_H_
#define BALLOT_TESTS_PARTITION_NETNS_LAB_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "net/client/client.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::partition_test {

using Clock = std::chrono::steady_clock;

// Empty if this process can build labs; otherwise why not (not root, no ip, no nft, no netns).
std::string MissingPrerequisite();

class NetnsLab {
 public:
  struct Options {
    size_t nodes = 3;
    std::string ballotd_path;
    std::string state_machine = "kv";
    std::vector<std::string> extra_flags;  // appended to every ballotd command line
  };

  // Builds the namespaces, bridge and links; starts nothing. CHECK-fails if a command fails
  // (the prerequisites were checked first: nothing a test could do about it).
  explicit NetnsLab(Options options);
  // Kills the nodes, deletes every namespace (and so every link and rule); keeps the data and
  // logs directory if the test failed.
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  // Starts every node (ballotd exec'd inside its namespace) and waits until each answers a
  // status request. kTimeout / kAborted (with the log tail) as ProcessCluster does.
  Status StartAll(Clock::time_point deadline);
  // SIGTERM every node and wait for it to exit (SIGKILL at the deadline).
  void StopAll(Clock::time_point deadline);
  // Ok if every node started is still running; else kAborted naming the ones that died.
  Status CheckAlive();

  // Link control. Each is idempotent and takes effect for new and established connections.
  // Cuts both directions between a and b.
  void Cut(paxos::NodeId a, paxos::NodeId b);
  // Cuts every link between a node of `left` and a node of `right`.
  void Split(const std::set<paxos::NodeId>& left, const std::set<paxos::NodeId>& right);
  // Cuts `id` from every other node.
  void Isolate(paxos::NodeId id);
  // Removes every cut.
  void Heal();
  // The pairs currently cut, "1-2 1-3"; for messages.
  std::string Cuts() const;

  // Client::FindLeader repeated until a node other than `not_id` claims leadership (or the
  // deadline): (id, epoch).
  Result<std::pair<paxos::NodeId, uint64_t>> WaitForLeader(Clock::time_point deadline,
                                                           paxos::NodeId not_id = paxos::kNoNode);
  std::map<paxos::NodeId, Result<net::NodeStatus>> StatusAll(std::chrono::milliseconds timeout);
  // Waits until every node reports the same applied_below and chosen_below and that position
  // stays put for a moment (an idle cluster has converged). *last describes what was seen.
  bool WaitForConvergence(Clock::time_point deadline, std::string* last);

  ClientOptions client_options() const;
  std::unique_ptr<Client> NewClient() const;

  std::vector<paxos::NodeId> ids() const;
  std::string DataDir(paxos::NodeId id) const;
  std::string LogTail(paxos::NodeId id, size_t lines) const;
  const std::string& prefix() const { return prefix_; }

 private:
  struct Node {
    paxos::NodeId id = 0;
    std::string ns;  // namespace name
    std::string ip;
    std::string data_dir;
    std::string log_path;
    pid_t pid = -1;
  };

  std::string Address(const Node& n) const { return n.ip + ":" + std::to_string(kPort); }
  void Spawn(Node& n);
  void ApplyCuts();
  Node& node(paxos::NodeId id);

  static constexpr int kPort = 7000;
  const Options options_;
  std::string prefix_;  // "bp<pid>x<n>": namespaces <prefix>-hub, <prefix>-n<id>
  std::string subnet_;  // "10.A.B"
  std::string hub_;
  std::string host_veth_;  // the root namespace's end of the clients' link
  std::string dir_;        // data directories and logs
  std::string cluster_flag_;
  std::map<paxos::NodeId, Node> nodes_;
  std::set<std::pair<paxos::NodeId, paxos::NodeId>> cuts_;  // (lower id, higher id)
  std::unique_ptr<Client> admin_;
};

}  // namespace ballot::partition_test

#endif  // BALLOT_TESTS_PARTITION_NETNS_LAB_H_
