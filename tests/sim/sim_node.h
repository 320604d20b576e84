// SimNode: one simulated server. It owns a paxos::Replica, the MemStore it persists to (a disk
// whose unsynced writes a crash loses), and an Applier over a SequenceGenerator, and it carries
// out the Replica's Ready exactly as the contract in paxos/ready.h demands: send_now at once;
// persist staged, synced after a simulated disk latency, and only then send_after_persist and
// Advance(); apply in slot order; reads served once applied far enough.
#ifndef BALLOT_TESTS_SIM_SIM_NODE_H_
#define BALLOT_TESTS_SIM_SIM_NODE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "paxos/options.h"
#include "paxos/replica.h"
#include "statemachine/applier.h"
#include "store/mem_store.h"
#include "tests/sim/checker.h"
#include "tests/sim/network.h"
#include "tests/sim/rng.h"
#include "tests/sim/trace.h"

namespace ballot::sim {

// The simulated disk's sync latency.
struct DiskConfig {
  Time latency_max_ms = 4;  // a normal sync takes 0..latency_max_ms
  double stall = 0;         // probability that one sync stalls (fsync stall)
  Time stall_min_ms = 500;
  Time stall_max_ms = 1500;

  static DiskConfig Calm() { return DiskConfig{}; }
  static DiskConfig Draw(Rng* rng);
};

// What a node needs from the simulator.
class NodeHost {
 public:
  virtual ~NodeHost() = default;
  virtual Time now() const = 0;
  virtual void Send(Envelope envelope) = 0;
  // Calls SimNode::OnSyncDone(incarnation) after `delay_ms`.
  virtual void ScheduleSync(paxos::NodeId node, uint64_t incarnation, Time delay_ms) = 0;
  virtual Rng& rng() = 0;
  virtual Checker& checker() = 0;
  virtual Trace& trace() = 0;
};

class SimNode {
 public:
  SimNode(paxos::NodeId id, paxos::Options base, uint64_t run_seed, NodeHost* host);
  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  paxos::NodeId id() const { return id_; }
  bool up() const { return replica_ != nullptr; }
  uint64_t incarnation() const { return incarnation_; }
  void set_disk(const DiskConfig& disk) { disk_ = disk; }

  // Boots a fresh Replica from what the store synced, with an empty state machine.
  void Start();
  // Loses everything volatile: the Replica, the state machine, unsynced writes, waiting clients.
  void Crash();

  void Tick();
  void OnPeerMessage(const paxos::Message& m);
  void OnClientRequest(Endpoint from, const ClientRequest& r);
  void OnSyncDone(uint64_t incarnation);
  void OnSnapshotRequest(Endpoint from, const SnapshotRequest& r);
  void OnSnapshotReply(const SnapshotReply& r);

  // Snapshots. TakeSnapshot() captures the state machine (kept in memory, not yet durable).
  // CompactBelow(safe) saves the newest captured snapshot that covers only slots below `safe`,
  // and tells the replica to drop what it covers. The simulator passes the lowest durable
  // chosen_below over all nodes as `safe`: the protocol has no snapshot transfer, so no node may
  // compact a slot that another node might still need to learn from it.
  void TakeSnapshot();
  void CompactBelow(paxos::Slot safe);
  void set_compact_own(bool own) { compact_own_ = own; }
  // With compact_own, a node compacts below its own durable chosen_below and lagging nodes
  // fetch snapshots (Ready::snapshot_needed) instead.
  // Every slot below this is chosen and written in this node's synced store.
  paxos::Slot durable_chosen_below() const { return durable_chosen_below_; }

  // For the simulator's liveness monitor (node must be up).
  paxos::ReplicaStatus status() const { return replica_->status(); }
  bool usable_leader() const { return up() && !replica_->UsableEpoch().IsZero(); }
  paxos::Ballot usable_epoch() const { return up() ? replica_->UsableEpoch() : paxos::Ballot(); }
  paxos::Slot applied_below() const { return applier_->applied_below(); }

 private:
  struct PendingRead {
    Endpoint client;
    uint64_t client_id;
    uint64_t op_id;
  };
  struct CapturedSnapshot {
    store::Snapshot snapshot;
    Checker::FreshMap fresh;  // the checker's view of what the snapshot's machine applied
  };
  struct Outstanding {  // the persist batch between Stage() and Sync()
    paxos::PersistBatch batch;
    std::vector<paxos::Message> after;
  };

  paxos::Options OptionsFor(uint64_t incarnation) const;
  void Drain();
  void HandleReady(paxos::Ready& ready);
  void HandlePersist(paxos::Ready& ready);
  void HandleApply(const std::vector<paxos::Entry>& entries);
  void RouteReply(const Reply& reply);
  void HandleReads(const paxos::Ready& ready);
  void ServeReads();
  void HandleDropped(const std::vector<paxos::Command>& dropped);
  void FetchSnapshot(const paxos::SnapshotNeeded& needed);
  void ProposeCommand(Endpoint from, const ClientRequest& r);
  void StartRead(Endpoint from, const ClientRequest& r);
  void SendPeer(const paxos::Message& m);
  void SendClient(Endpoint to, ClientReply reply);
  void RejectClient(Endpoint to, const ClientRequest& r, const paxos::ProposeResult& result);
  Time DrawSyncLatency();

  const paxos::NodeId id_;
  const paxos::Options base_;
  const uint64_t run_seed_;
  NodeHost* const host_;
  DiskConfig disk_;
  bool compact_own_ = false;

  // Survives crashes: the disk.
  store::MemStore store_;
  paxos::Slot durable_chosen_below_ = 1;
  Checker::FreshMap saved_fresh_;  // goes with the store's snapshot
  paxos::Slot saved_below_ = 1;    // the store's snapshot covers every slot below
  uint64_t incarnation_ = 0;

  // Volatile: reset by Crash().
  std::unique_ptr<paxos::Replica> replica_;
  std::unique_ptr<Applier> applier_;
  std::optional<Outstanding> outstanding_;
  std::map<std::pair<uint64_t, uint64_t>, Endpoint> waiting_commands_;  // (client, seq) -> client
  std::map<uint64_t, PendingRead> pending_reads_;                       // by read id
  std::vector<paxos::ReadState> confirmed_reads_;  // waiting for the applier to catch up
  uint64_t next_read_id_ = 1;
  Time snapshot_fetch_ms_ = 0;  // when the outstanding snapshot fetch was sent (0: none)
  std::vector<CapturedSnapshot> captured_;  // oldest first, at most kCapturedMax
};

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_SIM_NODE_H_
