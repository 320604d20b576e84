// Node: the runtime that turns one paxos::Replica into a server process.
//
// The Ready handling itself is net/driver.h, shared with the simulator; this file adds the
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
#ifndef BALLOT_NET_NODE_H_
#define BALLOT_NET_NODE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "net/driver.h"
#include "paxos/options.h"
#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/state_machine.h"

namespace ballot {

struct NodeOptions {
  // Which cluster this node is in. 0 (the usual): the id recorded in the data directory
  // (DIR/CLUSTER) once it exists, whatever `members` says now; on a fresh data directory,
  // learnt from the first other member that answers when `join` is set, else the id of a new
  // cluster, BootstrapClusterId(members, cluster_token) (net/client.h), which every initial
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
  // Protocol tuning; id, members and seed are filled in from the fields above.
  paxos::Options paxos;
  // Apply chosen commands (and serve reads, and call the leadership hooks) on the io thread
  // instead of a thread of their own. Saves two thread hand-offs per command, which is most of
  // a round trip's latency on an idle machine; only for state machines whose Apply and Query
  // take microseconds, since heartbeats wait while they run.
  bool apply_inline = false;
  // Snapshots, compaction, snapshot transfer and the apply queue's bound (net/driver.h).
  DriverOptions driver;
  size_t map_bytes = size_t{64} << 20;
  size_t map_bytes_max = size_t{16} << 30;
  // The store's write-ahead journal (store/lmdb_store.h LmdbOptions::journal, docs/durability.md).
  bool store_journal = true;
  size_t store_journal_checkpoint_bytes = size_t{1} << 20;
  // Keep protocol state in memory instead of LMDB: nothing is durable. Only for measuring what
  // durability and replication cost (ballot-bench's single-node baseline).
  bool in_memory = false;
  int listen_port_override = -1;
  // Test hook: after this many commits, the storage thread stalls once for TEST_storage_stall
  // before the next write, as a disk occasionally does (fsyncs of ~1 s happen on this
  // hardware). 0: never.
  uint64_t TEST_stall_storage_after_commits = 0;
  std::chrono::milliseconds TEST_storage_stall{0};
  // Test hook: every background job (a snapshot write, a received snapshot's commit) starts
  // this late, as on a slow disk or with a large state. 0: at once.
  std::chrono::milliseconds TEST_background_delay{0};

  Status Validate() const;
};

// What a Node reports about itself; safe to read from any thread.
struct NodeInfo {
  uint64_t token = 0;  // the fencing token while this node leads with a usable epoch, else 0
  paxos::NodeId leader = paxos::kNoNode;
};

class Node {
 public:
  // Opens (or creates) the data directory, restores the state machine from the newest snapshot
  // and replays the chosen log after it, binds the listening port. kFailedPrecondition for a data
  // directory of another cluster or node, kCorruption for a damaged store (or DIR/CLUSTER),
  // kIoError when the port cannot be bound.
  //
  // Safe bootstrap (net/join_gate.h): the node promises and accepts nothing, and refuses client
  // commands with kNotLeader, until its peers' handshakes show that it may take part. A node
  // whose data directory is empty although the cluster remembers it stops itself: Wait() then
  // returns kFailedPrecondition saying that its data was lost. With NodeOptions::join an empty
  // directory joins an existing cluster instead (docs/membership.md).
  //
  // Membership: the configuration comes from the data directory (DIR/CLUSTER's bootstrap
  // configuration, the log and snapshots), not from `members`, once the directory has joined;
  // the node dials every member at the address the configuration gives and stops sending to
  // members that left.
  static Result<std::unique_ptr<Node>> Create(NodeOptions options,
                                              std::unique_ptr<StateMachine> machine);
  ~Node();  // Stop()s and joins every thread
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

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
  NodeInfo info() const;

  // Takes a snapshot now and blocks until it is durable; returns its applied_below. Any thread
  // but the node's own (the io thread runs the request).
  Result<paxos::Slot> TakeSnapshot();

  // Called on the apply thread (the io thread with apply_inline) when this node's leadership
  // becomes usable (with its epoch, which is the fencing token) and when it ends. Set before
  // Start().
  void OnLeadership(std::function<void(bool leading, uint64_t epoch)> callback);

  class Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The name users know it by: a Server is a Node with their StateMachine.
//   auto server = ballot::Server::Create(options, std::make_unique<MyMachine>());
//   server.value()->Start();
//   server.value()->Wait();
using Server = Node;
using ServerOptions = NodeOptions;

}  // namespace ballot

#endif  // BALLOT_NET_NODE_H_
