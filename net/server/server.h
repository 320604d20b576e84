// Server: the runtime that turns one paxos::Replica into a server process.
//
// The Ready handling itself is net/server/driver.h, shared with the simulator; this file adds the
// threads, the sockets, LMDB and the clock. Four threads, each owning what it touches
// (DESIGN.md §4):
//   - the io thread owns the Replica, the Transport (sockets) and the tick timer. It feeds
//     Tick/Step/Propose/Read into the core and carries out each Ready;
//   - the storage thread owns the Store's writes: it group-commits each Ready::persist batch
//     and only then lets the io thread send what depended on it and call Advance();
//   - the apply thread owns the Applier (and the user's StateMachine). A slow Apply or a slow
//     fsync never delays heartbeats, which are sent from the io thread. With apply_inline the io
//     thread applies instead (fast state machines: two hand-offs fewer per command), and then
//     every StateMachine call holds up the io thread (statemachine/state_machine.h, Threads);
//   - a background thread writes snapshots and installs received ones, so that neither the
//     io thread nor Apply waits for a snapshot's disk writes.
// Hand-offs are batched: one persist job per Ready, one apply job per Ready.
#ifndef BALLOT_NET_SERVER_SERVER_H_
#define BALLOT_NET_SERVER_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "net/server/driver_tuning.h"
#include "net/server/metrics_http.h"
#include "net/server/metrics_registry.h"
#include "paxos/status.h"
#include "paxos/tuning.h"
#include "paxos/types.h"
#include "statemachine/state_machine.h"

namespace ballot {

struct ServerOptions {
  // Which cluster this node is in. 0 (the usual): the id recorded in the data directory
  // (DIR/CLUSTER) once it exists, whatever `members` says now; on a fresh data directory,
  // learnt from the first other member that answers when `join` is set, else the id of a new
  // cluster, BootstrapClusterId(members, cluster_token) (net/cluster_config.h), which every initial
  // member derives alike. Non-zero: pinned (a data directory of another cluster is refused).
  uint64_t cluster_id = 0;
  // Mixed into a new cluster's id, so that two clusters created with the same member list
  // differ (etcd's initial-cluster-token). Only read when a fresh data directory bootstraps.
  std::string cluster_token;
  // With `join` (below), a fresh data directory learns the cluster id from the other members
  // instead of deriving a new one: within join_learn_timeout, else Create fails (kTimeout).
  std::chrono::milliseconds join_learn_timeout{60000};
  paxos::NodeId id = paxos::kNoNode;
  // Every member, this node included: id -> "host:port". This node listens on its own entry
  // (unless listen_port_override is set, e.g. 0 in tests).
  std::map<paxos::NodeId, std::string> members;
  std::string data_dir;
  // Join an existing cluster (ballotd --join): with an empty data directory the node skips the
  // bootstrap gate and starts as a learner that knows no configuration (paxos::Options::join)
  // until it learns one from the log or a snapshot; the leader promotes it once it caught up.
  // `members` then lists some current members (to reach them) and this node (its address).
  // Ignored once the data directory records how it joined (DIR/CLUSTER "bootstrap").
  bool join = false;
  std::chrono::milliseconds tick{10};
  // Protocol tuning (the seed is mixed with the clock and the id).
  paxos::Tuning paxos;
  // Apply chosen commands (and serve reads, and call the leadership hooks) on the io thread
  // instead of a thread of their own. Saves two thread hand-offs per command, which is most of
  // a round trip's latency on an idle machine; only for state machines whose Apply and Query
  // take microseconds, since heartbeats wait while they run.
  bool apply_inline = false;
  // Watches (ClientRequest::kWatch, net/server/watch_hub.h) parked on this node at most; one
  // more is refused with kOverloaded "too many watches".
  size_t watches_max = 10000;
  // Snapshots, compaction, snapshot transfer and the apply queue's bound
  // (net/server/driver_tuning.h).
  DriverTuning driver;
  size_t map_bytes = size_t{64} << 20;
  size_t map_bytes_max = size_t{16} << 30;
  // The store's write-ahead journal (store/lmdb_store.h LmdbOptions::journal, docs/durability.md).
  bool store_journal = true;
  size_t store_journal_checkpoint_bytes = size_t{1} << 20;
  // Keep protocol state in memory instead of LMDB: nothing is durable. Only for measuring what
  // durability and replication cost (ballot-bench's single-node baseline).
  bool in_memory = false;
  int listen_port_override = -1;

  Status Validate() const;
};

// What a Server reports about itself; safe to read from any thread.
struct ServerInfo {
  uint64_t token = 0;  // the fencing token while this node leads with a usable epoch, else 0
  paxos::NodeId leader = paxos::kNoNode;
};

class Server {
 public:
  // Opens (or creates) the data directory, restores the state machine from the newest snapshot
  // and replays the chosen log after it, binds the listening port. kFailedPrecondition for a data
  // directory of another cluster or node, kCorruption for a damaged store (or DIR/CLUSTER),
  // kIoError when the port cannot be bound.
  //
  // Safe bootstrap (net/server/join_gate.h): the node promises and accepts nothing, and refuses
  // client commands with kNotLeader, until its peers' handshakes show that it may take part. A node
  // whose data directory is empty although the cluster remembers it stops itself: Wait() then
  // returns kFailedPrecondition saying that its data was lost. With ServerOptions::join an empty
  // directory joins an existing cluster instead (docs/membership.md).
  //
  // Membership: the configuration comes from the data directory (DIR/CLUSTER's bootstrap
  // configuration, the log and snapshots), not from `members`, once the directory has joined;
  // the node dials every member at the address the configuration gives and stops sending to
  // members that left.
  static Result<std::unique_ptr<Server>> Create(ServerOptions options,
                                                std::unique_ptr<StateMachine> machine);
  ~Server();  // Stop()s and joins every thread
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts the io, storage and apply threads. Returns at once.
  void Start();
  // Asks every thread to finish; thread-safe and idempotent. Wait() returns afterwards.
  void Stop();
  // A planned stop (ballotd on SIGTERM): a leader first hands leadership to the most
  // up-to-date voter (paxos::Replica::TransferLeadership) and answers the commands it still
  // held with the new leader as hint, so that clients barely notice; then, or after
  // `transfer_wait` at most, or at once for a follower, it Stop()s. Thread-safe; returns at once.
  void Shutdown(std::chrono::milliseconds transfer_wait);
  // Blocks until Stop() was called (by anyone, or by a fatal storage error) and threads ended.
  // Returns the reason: OK for a requested stop, else the error that stopped the node.
  Status Wait();

  uint16_t port() const;
  // Thread-safe.
  ServerInfo info() const;

  // The node's metrics (names in README.md "Metrics"; net/server/server_metrics.h records them),
  // for MetricsHttpServer (net/server/metrics_http.h, what ballotd --metrics_port serves) or any
  // exporter of the library user's. Valid as long as the node; thread-safe.
  MetricsRegistry& metrics();
  // What GET /healthz answers: serving while the node has joined its cluster, its io thread
  // ticks and it is not stopping; the detail names its role and leader. Thread-safe.
  HealthReport Health() const;

  // Takes a snapshot now and blocks until it is durable; returns its applied_below. Any thread
  // but the node's own (the io thread runs the request).
  Result<paxos::Slot> TakeSnapshot();

  // Called on the apply thread (the io thread with apply_inline) when this node's leadership
  // becomes usable (with its epoch, which is the fencing token) and when it ends. Set before
  // Start().
  void OnLeadership(std::function<void(bool leading, uint64_t epoch)> callback);

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Usage: a Server is one member of the cluster serving the user's StateMachine.
//   auto server = ballot::Server::Create(options, std::make_unique<MyMachine>());
//   server.value()->Start();
//   server.value()->Wait();

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_SERVER_H_
