// SimNode: one simulated server, running the same Ready driver as the real server.
#ifndef BALLOT_TESTS_SIM_SIM_NODE_H_
#define BALLOT_TESTS_SIM_SIM_NODE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/server/driver.h"
#include "paxos/options.h"
#include "paxos/replica.h"
#include "statemachine/applier.h"
#include "store/mem_journal_store.h"
#include "store/mem_snapshot_store.h"
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
  // Calls SimNode::OnBackgroundDone(incarnation) after `delay_ms`.
  virtual void ScheduleBackground(paxos::NodeId node, uint64_t incarnation, Time delay_ms) = 0;
  // The checker's record of what the state machine in node `node`'s snapshot below `below`
  // applied (nullptr if unknown).
  virtual const Checker::FreshMap* SnapshotFresh(paxos::NodeId node, paxos::Slot below) = 0;
  virtual Rng& rng() = 0;
  virtual Checker& checker() = 0;
  virtual Trace& trace() = 0;
};

// Snapshot settings of a run, drawn from its seed.
struct SnapshotConfig {
  bool on = false;
  DriverOptions driver;  // triggers, retained tail, transfer chunking and throttle
  static SnapshotConfig Off();
  static SnapshotConfig Draw(Rng* rng);
  std::string ToString() const;
};

// How a node is named in a simulated configuration (the core treats addresses as opaque).
inline std::string SimAddress(paxos::NodeId n) { return "sim:" + std::to_string(n); }

// One simulated server: the shipping Driver (net/server/driver.h) over a paxos::Replica, a MemStore
// (a disk whose unsynced writes a crash loses), a MemSnapshotStore (snapshots that survive), and an
// Applier over a SequenceGenerator. It supplies what Node supplies in production: the network
// (Envelopes), the disk's timing (ScheduleSync), background work (ScheduleBackground: snapshot
// writes and installs finish later in virtual time, and a crash before then loses them) and
// the client connections. The applier side runs at once, on the one simulated thread.
class SimNode final : public DriverHost {
 public:
  SimNode(paxos::NodeId id, paxos::Options base, uint64_t run_seed, NodeHost* host);
  ~SimNode() override;
  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  paxos::NodeId id() const { return id_; }
  bool up() const { return driver_ != nullptr; }
  uint64_t incarnation() const { return incarnation_; }
  void set_disk(const DiskConfig& disk) { disk_ = disk; }
  // Before Start(): the disk is the journaled store's model (SimConfig::journal).
  void set_journal(bool on);
  std::unique_ptr<store::CachedStore> NewDisk() const;
  // A persist batch is written but not yet synced.
  bool write_in_flight() const { return outstanding_.has_value(); }
  // The disk hangs (a gray failure): every sync issued before `until` completes only after it.
  // A crash does not end it (the disk is the same), nor does the heal.
  void HangDiskUntil(Time until) { disk_hung_until_ms_ = until; }
  Time disk_hung_until() const { return disk_hung_until_ms_; }
  void set_snapshots(const SnapshotConfig& config) { snapshots_config_ = config; }

  // Boots a fresh Driver from what the stores synced: the newest snapshot plus the log.
  void Start();
  // A joiner (a spare node, or one whose disk was wiped) starts with no bootstrap
  // configuration (paxos::Options::join) and waits to be added through the log.
  void set_joiner(bool joiner) { joiner_ = joiner; }
  bool joiner() const { return joiner_; }
  // The disk is replaced (node down): the log, the promise and every snapshot are gone.
  void WipeDisk();
  // Loses everything volatile: the Driver, the state machine, unsynced writes, background work
  // not yet done, waiting clients.
  // `fate`: what the disk keeps of a write in flight (only the journaled model tears one).
  void Crash(const store::CrashFate& fate = {});

  void Tick();
  void OnPeerMessage(const paxos::Message& m);
  void OnClientRequest(Endpoint from, const ClientRequest& r);
  void OnSyncDone(uint64_t incarnation);
  void OnBackgroundDone(uint64_t incarnation);
  // Takes a snapshot now (a random point chosen by the simulator).
  void RequestSnapshot();

  // For the simulator's liveness monitor (node must be up).
  paxos::ReplicaStatus status() const { return driver_->replica().status(); }
  bool usable_leader() const { return up() && !driver_->replica().UsableEpoch().IsZero(); }
  paxos::Ballot usable_epoch() const {
    return up() ? driver_->replica().UsableEpoch() : paxos::Ballot();
  }
  paxos::Slot applied_below() const { return driver_->applied_below(); }
  paxos::Replica& replica() { return driver_->replica(); }
  const paxos::Replica& replica() const { return driver_->replica(); }
  const Checker::FreshMap* snapshot_fresh(paxos::Slot below) const;
  const DriverCounters& counters() const { return driver_->counters(); }

 private:
  // A client request in flight at this node, by ClientTag::request.
  struct Asker {
    Endpoint client = 0;
    uint64_t client_id = 0;
    uint64_t op_id = 0;
    uint64_t sequence = 0;
    bool is_read = false;
  };

  paxos::Options OptionsFor(uint64_t incarnation) const;
  // Drains the driver and runs what came back through ToDriver, until nothing is left.
  void Settle();
  ClientTag Remember(Endpoint from, const ClientRequest& r);
  Time DrawSyncLatency();
  void SendClient(Endpoint to, ClientReply reply);

  // DriverHost.
  void SendToPeer(paxos::Message message) override;
  void Persist(paxos::PersistBatch batch) override;
  void ToApplier(std::function<void()> work) override { work(); }
  void ToDriver(std::function<void()> work) override { to_driver_.push_back(std::move(work)); }
  void InBackground(std::function<void()> work) override;
  void CommandDone(ClientTag tag, Reply& reply) override;
  void ReadDone(ClientTag tag, Outcome outcome) override;
  void Refuse(ClientTag tag, StatusCode code, std::string message,
              paxos::NodeId leader_hint) override;
  void Fatal(Status why) override;
  void OnLeadershipEvent(const paxos::LeadershipEvent& e) override;
  void OnAnnounced(bool leading, uint64_t epoch) override;
  bool BeforeApply(const std::vector<paxos::Entry>& entries) override;
  void OnApplied(const Reply& reply) override;
  void OnSnapshotTaken(paxos::Slot applied_below) override;
  void OnSnapshotRestored(paxos::NodeId source, paxos::Slot applied_below) override;

  const paxos::NodeId id_;
  const paxos::Options base_;
  const uint64_t run_seed_;
  NodeHost* const host_;
  DiskConfig disk_;
  Time disk_hung_until_ms_ = 0;
  SnapshotConfig snapshots_config_ = SnapshotConfig::Off();

  bool joiner_ = false;

  // Survives crashes: the disk (replaced only by WipeDisk).
  bool journal_ = false;
  std::unique_ptr<store::CachedStore> store_ = std::make_unique<store::MemStore>();
  std::unique_ptr<store::MemSnapshotStore> snapshots_ = std::make_unique<store::MemSnapshotStore>();
  std::map<paxos::Slot, Checker::FreshMap> snapshot_fresh_;  // goes with each snapshot
  uint64_t incarnation_ = 0;

  // Volatile: reset by Crash().
  std::unique_ptr<Driver> driver_;
  std::optional<paxos::PersistBatch> outstanding_;  // staged, waiting for its sync
  std::deque<std::function<void()>> to_driver_;
  std::deque<std::function<void()>> background_;
  std::map<uint64_t, Asker> askers_;
  uint64_t next_tag_ = 1;
};

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_SIM_NODE_H_
