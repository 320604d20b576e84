// ProcessCluster: a Ballot cluster of real ballotd processes on this machine, for tests.
//
// Each node is a child process (fork + exec of ballotd) listening on 127.0.0.1 at a port that
// was free when the cluster was made (found by binding port 0), with its data directory and its
// log file (the child's stdout and stderr, appended across restarts) in a fresh mkdtemp
// directory. That directory is removed when the cluster is destroyed, unless the current test
// has failed or BALLOT_KEEP_TEST_DIRS is set in the environment: then its path is printed.
//
// No orphans: the destructor SIGKILLs and reaps every child, and every child is started with
// PR_SET_PDEATHSIG = SIGKILL, so it dies with the test even when the test process is killed.
// The death signal follows the thread that forked the child: create, start and restart nodes
// from the test's main thread (all the tests here do).
//
// Waiting is always on a condition with a deadline (a node answering its status, a leader being
// found, a log line appearing), never a bare sleep.
//
// Threads: not thread-safe; drive a ProcessCluster from one thread. Clients made with
// NewClient() may be used from any thread, as ballot::Client allows.
#ifndef BALLOT_TESTS_CLUSTER_PROCESS_CLUSTER_H_
#define BALLOT_TESTS_CLUSTER_PROCESS_CLUSTER_H_

#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "net/client/client.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::cluster_test {

using Clock = std::chrono::steady_clock;

struct ProcessClusterOptions {
  size_t nodes = 3;
  std::string ballotd_path;  // required: the ballotd binary
  // Appended to every node's command line, e.g. "--tick_ms=10".
  std::vector<std::string> extra_flags;
  // --state_machine of every node: sequence | kv | lock.
  std::string state_machine = "sequence";
  // --cluster_token of every node (when not empty): the cluster's id is then
  // BootstrapClusterId(members, cluster_token).
  std::string cluster_token;
  // The attempt timeout of clients from NewClient() and of the harness's own admin client.
  std::chrono::milliseconds attempt_timeout{500};
};

// The usual options: `nodes` nodes of the given ballotd with default flags.
inline ProcessClusterOptions DefaultOptions(std::string ballotd_path, size_t nodes = 3) {
  ProcessClusterOptions o;
  o.nodes = nodes;
  o.ballotd_path = std::move(ballotd_path);
  return o;
}

class ProcessCluster {
 public:
  // Makes the temporary directory and picks the ports; starts nothing. CHECK-fails if the
  // directory or a port cannot be had (nothing a test could do about either).
  explicit ProcessCluster(ProcessClusterOptions options);
  // SIGKILLs and reaps every child; removes the directory unless the test failed.
  ~ProcessCluster();
  ProcessCluster(const ProcessCluster&) = delete;
  ProcessCluster& operator=(const ProcessCluster&) = delete;

  // Starts every node that is not running, then waits until each answers a status request.
  // kTimeout (naming the node) if one does not answer by `deadline`; kAborted if one exited
  // (the message holds the tail of its log).
  Status StartAll(Clock::time_point deadline);
  // Starts one node (with its existing data directory, if any) and waits until it answers a
  // status request. Errors as StartAll. kFailedPrecondition if it is already running.
  Status StartNode(paxos::NodeId id, Clock::time_point deadline);
  // Flags appended to this node's command line from its next start on, after the cluster's own
  // (so "--cluster=..." here overrides the cluster's list for this node).
  void SetNodeFlags(paxos::NodeId id, std::vector<std::string> flags);
  // Kill(id) then StartNode(id).
  Status Restart(paxos::NodeId id, Clock::time_point deadline);

  // SIGKILL and reap (a stopped node too). No-op if the node is not running.
  void Kill(paxos::NodeId id);
  // SIGKILLs every running node first, then reaps them all, so they die at (nearly) one instant.
  void KillAll();
  // SIGTERM and wait for a clean exit until `deadline`; returns the exit status as a string
  // ("exited 0", "killed by signal 9", ...), SIGKILLing it at the deadline.
  std::string Terminate(paxos::NodeId id, Clock::time_point deadline);
  // Sends `sig` (SIGTERM, SIGINT) to every running node at once, then waits for each to exit
  // until `deadline` (SIGKILLing the late ones); returns how each ended, as Terminate.
  std::map<paxos::NodeId, std::string> TerminateAll(Clock::time_point deadline, int sig = SIGTERM);
  // SIGSTOP / SIGCONT, each returning once the kernel reports the child stopped / continued.
  void Stop(paxos::NodeId id);
  void Cont(paxos::NodeId id);

  // Ok if every node the harness started and did not kill is still alive; else kAborted naming
  // each node that exited on its own (a crash: CHECK failure, storage error), with how it ended
  // and the tail of its log. Reaps those nodes.
  Status CheckAlive();

  bool running(paxos::NodeId id) const;
  bool stopped(paxos::NodeId id) const;
  // How many times the node has been started.
  int starts(paxos::NodeId id) const;

  // Client::FindLeader, asked again until a node claims leadership or the deadline passes.
  // `not_id` (if not kNoNode) is never accepted as the answer: use it to wait for a successor.
  Result<std::pair<paxos::NodeId, uint64_t>> WaitForLeader(Clock::time_point deadline,
                                                           paxos::NodeId not_id = paxos::kNoNode);
  // The status of one node / of every node (a dead or stopped node: an error).
  Result<net::NodeStatus> NodeStatus(paxos::NodeId id, std::chrono::milliseconds timeout);
  std::map<paxos::NodeId, Result<net::NodeStatus>> StatusAll(std::chrono::milliseconds timeout);

  // applied_below of every node that answers within `timeout`.
  std::map<paxos::NodeId, paxos::Slot> AppliedPositions(std::chrono::milliseconds timeout);
  // Waits until every node answers with the same applied_below (an idle cluster has converged).
  // Returns false at the deadline; *last describes the positions seen last.
  bool WaitForConvergence(Clock::time_point deadline, std::string* last);

  // A new client of this cluster (its own io thread and connections).
  std::unique_ptr<Client> NewClient() const;
  ClientOptions client_options() const;

  // The node's log so far (every incarnation), and how many of its lines contain every one of
  // `needles`.
  std::string ReadLog(paxos::NodeId id) const;
  std::vector<std::string> LogLines(paxos::NodeId id,
                                    const std::vector<std::string>& needles) const;
  size_t CountLogLines(paxos::NodeId id, const std::vector<std::string>& needles) const;
  // Waits until CountLogLines(id, needles) >= at_least; returns the count then (or at the
  // deadline).
  size_t WaitForLogLines(paxos::NodeId id, const std::vector<std::string>& needles, size_t at_least,
                         Clock::time_point deadline) const;
  std::string LogPath(paxos::NodeId id) const;
  // The node's --data_dir (it exists once the node has been started).
  std::string DataDir(paxos::NodeId id) const;

  // Membership changes (tests/cluster/membership_test.cc). AddNode makes a new node (the next
  // id, a free port, its own directory) and starts nothing; clients made afterwards know it.
  // A node whose --cluster was set with SetNodeCluster is started with that list and with
  // --cluster_id pinned to the cluster's (the id derived from its own list would differ).
  // SetNodeFlags (above) gives such a node its own flags, e.g. {"--join"}.
  paxos::NodeId AddNode();
  void SetNodeCluster(paxos::NodeId id, std::string cluster_flag);
  // "127.0.0.1:<port>" and "<id>@127.0.0.1:<port>".
  std::string Address(paxos::NodeId id) const;
  std::string Entry(paxos::NodeId id) const;
  // Starts the node without waiting for it to answer (e.g. one expected to refuse and exit).
  Status Launch(paxos::NodeId id);
  // Waits until the node exits on its own; its exit status ("exited 1", ...) or "" at the
  // deadline (it keeps running).
  std::string WaitExit(paxos::NodeId id, Clock::time_point deadline);

  std::vector<paxos::NodeId> ids() const;
  uint16_t port(paxos::NodeId id) const;
  const std::string& cluster_flag() const { return cluster_flag_; }
  // The id the nodes bootstrap with (what clients from NewClient() are pinned to).
  uint64_t cluster_id() const { return cluster_id_; }
  // For tests whose nodes bootstrap with other flags (SetNodeFlags): pins clients to this id.
  void set_cluster_id(uint64_t cluster_id);
  const std::string& dir() const { return dir_; }

 private:
  struct Child {
    paxos::NodeId id = paxos::kNoNode;
    uint16_t port = 0;
    std::string data_dir;
    std::string log_path;
    std::vector<std::string> extra_flags;  // SetNodeFlags
    pid_t pid = -1;                        // -1: not running
    bool stopped = false;
    int starts = 0;
    std::string cluster_flag;  // empty: the cluster's
  };

  Child& child(paxos::NodeId id);
  const Child& child(paxos::NodeId id) const;
  Status Spawn(Child& c);
  Status WaitServing(Child& c, Clock::time_point deadline);
  // Reaps the child if it has exited; true if it has (pid is reset then).
  bool ReapIfExited(Child& c, std::string* how);
  void AppendToLog(const Child& c, const std::string& line) const;
  std::string LogTail(const Child& c, size_t lines) const;
  Client& admin();

  const ProcessClusterOptions options_;
  std::string dir_;
  std::string cluster_flag_;
  uint64_t cluster_id_ = 0;
  std::map<paxos::NodeId, Child> children_;
  std::unique_ptr<Client> admin_;  // made lazily
};

// Runs `done` until it returns true or the deadline passes, pausing `poll` between tries.
// Returns the last result. This is the one place tests wait on a condition.
template <typename Pred>
bool WaitUntil(Clock::time_point deadline, Pred done,
               std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  while (true) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(poll, deadline - Clock::now()));
  }
}

// Milliseconds from `a` to `b`, as a double.
double MsBetween(Clock::time_point a, Clock::time_point b);

}  // namespace ballot::cluster_test

#endif  // BALLOT_TESTS_CLUSTER_PROCESS_CLUSTER_H_
