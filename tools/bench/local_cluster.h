// LocalCluster: ballotd processes on 127.0.0.1 started by a tool (ballot-bench), on free ports,
// with data in a temporary directory. Killing and restarting nodes is how failover is measured.
#ifndef BALLOT_TOOLS_BENCH_LOCAL_CLUSTER_H_
#define BALLOT_TOOLS_BENCH_LOCAL_CLUSTER_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::bench {

class LocalCluster {
 public:
  struct Options {
    std::string ballotd;  // path of the ballotd binary
    int nodes = 3;
    std::string state_machine = "sequence";
    std::vector<std::string> extra_flags;  // passed to every ballotd
  };

  // Picks free ports and starts every node.
  static Result<std::unique_ptr<LocalCluster>> Start(Options options);
  ~LocalCluster();  // SIGKILLs every node and removes the data
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  const std::string& cluster_flag() const { return cluster_flag_; }
  int nodes() const { return options_.nodes; }
  Status StartNode(paxos::NodeId id);
  void KillNode(paxos::NodeId id);  // SIGKILL, then reap
  // SIGTERM (a planned stop: a leader hands over first), then reap; SIGKILL after `wait_ms`.
  // kAborted if it did not exit 0 by itself.
  Status TerminateNode(paxos::NodeId id, int wait_ms);
  // CPU time (user + system) the running nodes have used so far, from /proc/<pid>/stat; the
  // difference over a point divided by its operations is the servers' cost per operation.
  double CpuSeconds() const;

 private:
  LocalCluster(Options options, std::string dir) : options_(std::move(options)), dir_(dir) {}

  Options options_;
  std::string dir_;
  std::string cluster_flag_;
  std::map<paxos::NodeId, pid_t> pids_;
};

}  // namespace ballot::bench

#endif  // BALLOT_TOOLS_BENCH_LOCAL_CLUSTER_H_
