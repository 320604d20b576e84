#include "tests/sim/simulator.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "tests/sim/checker.h"
#include "tests/sim/client.h"
#include "tests/sim/network.h"
#include "tests/sim/rng.h"
#include "tests/sim/sim_node.h"
#include "tests/sim/trace.h"

namespace ballot::sim {

namespace {

// A hard bound on events per run; a run that needs more is a livelock (reported as such).
constexpr uint64_t kEventsMax = 50'000'000;
// In runs with membership changes: spare nodes beyond the founders, and how often a change is
// tried (in ticks, drawn per attempt).
constexpr int kSpareNodes = 2;
constexpr uint64_t kMembershipTicksMin = 20;
constexpr uint64_t kMembershipTicksMax = 150;
// In runs with snapshots, how often nodes capture their state machine and compact.
constexpr uint64_t kSnapshotEveryTicks = 50;
// In runs with drifting clocks, how often a node's clock changes its rate (per tick of its own):
// often enough that a leader elected while its clock ran fast (fast clocks time out first)
// may run slow later.
constexpr double kClockRateChangePerTick = 1.0 / 50;

// How often and how hard the chaos phase hits, drawn once per seed.
struct ChaosProfile {
  double crash_per_tick = 0;
  double partition_per_tick = 0;
  double reconfigure_per_tick = 0;  // redraw the network's behaviour
  int down_max = 0;                 // nodes down at once
  uint64_t restart_min_ticks = 5;
  uint64_t restart_max_ticks = 300;
  uint64_t cut_min_ticks = 20;
  uint64_t cut_max_ticks = 400;
  double hold_cuts = 0;       // share of cuts that hold messages and deliver them late
  double pause_per_tick = 0;  // a process pause: the node stops, then resumes its stale view
  uint64_t pause_min_ticks = 2;
  uint64_t pause_max_ticks = 300;
  double hang_per_tick = 0;  // a disk that stops completing syncs (one node at a time)
  uint64_t hang_min_ticks = 400;
  uint64_t hang_max_ticks = 2500;  // may outlast the heal: a gray failure is not a crash

  static ChaosProfile Draw(Rng* rng, int nodes) {
    static constexpr double kCrashes[] = {0, 1.0 / 1000, 1.0 / 300, 1.0 / 100};
    static constexpr double kPartitions[] = {0, 1.0 / 800, 1.0 / 300, 1.0 / 100};
    static constexpr double kHoldCuts[] = {0, 0.3, 0.7};
    static constexpr double kPauses[] = {0, 0, 1.0 / 1000, 1.0 / 200};
    ChaosProfile p;
    p.crash_per_tick = rng->Pick(kCrashes);
    p.partition_per_tick = rng->Pick(kPartitions);
    p.reconfigure_per_tick = rng->Chance(0.5) ? 1.0 / 500 : 0;
    // Mostly a minority at a time; sometimes anything goes, even every node.
    p.down_max = rng->Chance(0.7) ? (nodes - 1) / 2 : nodes;
    p.hold_cuts = rng->Pick(kHoldCuts);
    p.pause_per_tick = rng->Pick(kPauses);
    p.hang_per_tick = rng->Chance(0.25) ? 1.0 / 1000 : 0;
    return p;
  }
  std::string ToString() const {
    std::ostringstream os;
    os << "crash/tick=" << crash_per_tick << " partition/tick=" << partition_per_tick
       << " reconfigure/tick=" << reconfigure_per_tick << " down_max=" << down_max
       << " hold_cuts=" << hold_cuts << " pause/tick=" << pause_per_tick
       << " disk_hang/tick=" << hang_per_tick;
    return os.str();
  }
};

// A node's clock: from tick index base_index (at base_us virtual microseconds) on, a tick
// every period_us. Periods differ per node by up to the drift bound
// (Options::max_clock_drift_ppm) either way, and in runs with drift each node's rate changes
// now and then (a VM's clock is not steady either); the planted clock_drift_beyond_bound makes
// them differ far beyond the bound.
struct NodeClock {
  uint64_t base_us = 0;
  uint64_t base_index = 0;
  uint64_t period_us = kTickMs * 1000;
  uint64_t last_index = 0;  // the last tick index the node processed (or caught up to)
  bool paused = false;
  uint64_t missed_ticks = 0;  // ticks that came while paused
  uint64_t TickUs(uint64_t index) const {
    CHECK_GE(index, base_index) << "a tick before the clock's last rate change";
    return base_us + (index - base_index) * period_us;
  }
  Time TickMs(uint64_t index) const { return TickUs(index) / 1000; }
  // From tick `index` (not yet past) on, ticks come every `period` us.
  void SetRate(uint64_t index, uint64_t period) {
    base_us = TickUs(index);
    base_index = index;
    period_us = period;
  }
};

uint64_t DrawPeriodUs(Rng* rng, const paxos::Options& o, bool beyond_bound) {
  const uint64_t nominal = kTickMs * 1000;
  if (beyond_bound) {
    // A broken clock, or a configured bound far too small: 2-3.3x fast or 1.5-2x slow.
    return rng->Chance(0.5) ? rng->Uniform(nominal * 3 / 10, nominal / 2)
                            : rng->Uniform(nominal * 3 / 2, nominal * 2);
  }
  const uint64_t spread = nominal * o.max_clock_drift_ppm / 1'000'000;
  return rng->Uniform(nominal - spread, nominal + spread);
}

// The core's options for a run: half the seeds use the defaults, half use tight bounds and
// varied timing so that windows fill, queues overflow (kOverloaded), catch-up and accepts are
// paged, and batches split.
paxos::Options DrawOptions(Rng* rng, int nodes, std::string* description) {
  paxos::Options o;
  for (int i = 1; i <= nodes; ++i) o.members.push_back(i);
  if (rng->Chance(0.5)) {
    *description = "default options";
    return o;
  }
  static constexpr uint32_t kHeartbeatTicks[] = {1, 2, 3};
  static constexpr uint32_t kElectionTicks[] = {10, 15, 25};
  static constexpr size_t kSmall[] = {1, 2, 3, 8};
  o.heartbeat_ticks = rng->Pick(kHeartbeatTicks);
  o.election_ticks = rng->Pick(kElectionTicks);
  // At least 3: the leader's lease is lease_ticks - LeaseMarginTicks() (2 at the default drift).
  o.lease_ticks =
      static_cast<uint32_t>(rng->Uniform(std::max<uint32_t>(o.heartbeat_ticks + 1, 3), 6));
  o.check_quorum_ticks = static_cast<uint32_t>(rng->Uniform(o.lease_ticks, o.election_ticks));
  o.accept_retry_ticks = static_cast<uint32_t>(rng->Uniform(1, 5));
  o.catchup_retry_ticks = static_cast<uint32_t>(rng->Uniform(1, 5));
  o.batch_commands_max = rng->Pick(kSmall);
  o.batch_bytes_max = rng->Chance(0.5) ? 64 : o.batch_bytes_max;
  o.window_slots_max = rng->Pick(kSmall);
  o.pending_commands_max = rng->Pick(kSmall);
  o.reads_pending_max = rng->Pick(kSmall);
  o.catchup_entries_max = rng->Pick(kSmall);
  o.accept_entries_max = rng->Pick(kSmall);
  o.pace_proposals_by_sync = rng->Chance(0.5);
  static constexpr uint32_t kPersistStallTicksMax[] = {50, 100, 300};
  o.persist_stall_ticks_max = rng->Pick(kPersistStallTicksMax);
  std::ostringstream os;
  os << "tight options: heartbeat=" << o.heartbeat_ticks << " election=" << o.election_ticks
     << " lease=" << o.lease_ticks << " check_quorum=" << o.check_quorum_ticks
     << " accept_retry=" << o.accept_retry_ticks << " catchup_retry=" << o.catchup_retry_ticks
     << " batch=" << o.batch_commands_max << "/" << o.batch_bytes_max
     << "B window=" << o.window_slots_max << " pending=" << o.pending_commands_max
     << " reads=" << o.reads_pending_max << " catchup=" << o.catchup_entries_max
     << " accept_entries=" << o.accept_entries_max << " pace_by_sync=" << o.pace_proposals_by_sync
     << " persist_stall_max=" << o.persist_stall_ticks_max;
  *description = os.str();
  return o;
}

uint64_t HashMessage(const paxos::Message& m) {
  uint64_t h = Mix64(static_cast<uint64_t>(m.type) << 56 ^ uint64_t{m.from} << 40 ^
                     uint64_t{m.to} << 24 ^ m.ok);
  for (uint64_t w : {m.ballot.raw(), m.promised.raw(), m.slot, m.commit, m.round}) {
    h = Mix64(h ^ w);
  }
  for (const paxos::Entry& e : m.entries) {
    h = Mix64(h ^ e.slot ^ Mix64(e.ballot.raw()) ^ paxos::HashValue(e.value));
  }
  for (paxos::Slot s : m.slots) h = Mix64(h ^ s);
  return h;
}

class Simulator final : public NodeHost, public ClientHost {
 public:
  explicit Simulator(const SimConfig& config);
  SimResult Run();

  Time now() const override { return now_; }
  void Send(Envelope envelope) override;
  void ScheduleSync(paxos::NodeId node, uint64_t incarnation, Time delay_ms) override;
  void ScheduleBackground(paxos::NodeId node, uint64_t incarnation, Time delay_ms) override;
  const Checker::FreshMap* SnapshotFresh(paxos::NodeId node, paxos::Slot below) override {
    return IsNode(node) && node <= nodes_.size() ? this->node(node).snapshot_fresh(below) : nullptr;
  }
  Rng& rng() override { return rng_; }
  Checker& checker() override { return checker_; }
  Trace& trace() override { return trace_; }

 private:
  enum class EventKind : uint8_t {
    kNodeTick,
    kClientTick,
    kDeliver,
    kSyncDone,
    kBackgroundDone,
    kRestart,
    kChaos,
    kHeal,
    kMonitor,
    kSnapshot,
    kResume,
    kMembership,
  };
  enum class Phase { kChaos, kLiveness, kConverge, kDone };
  struct Event {
    Time at = 0;
    uint64_t seq = 0;
    EventKind kind = EventKind::kMonitor;
    uint32_t target = 0;  // node id or client index
    uint64_t arg = 0;     // kSyncDone: incarnation; kNodeTick: tick index
    Envelope envelope;    // kDeliver
  };
  struct Later {  // heap order: earliest first, ties by insertion
    bool operator()(const Event& a, const Event& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };

  void Setup();
  void Push(Time at, EventKind kind, uint32_t target, uint64_t arg = 0, Envelope envelope = {});
  Event Pop();
  void Dispatch(Event& e);
  void DispatchEvent(Event& e);
  void Deliver(const Envelope& envelope);
  // True if `e` is an input to a paused node: it is kept and handled at the resume.
  bool HoldForPausedNode(Event& e);
  void Resume(paxos::NodeId id);
  void NoteEpochSeen(paxos::NodeId to, const paxos::Message& m);
  // The acceptor's lease rules, judged from outside (see the definition).
  void CheckLeaseGrants(paxos::NodeId to, const paxos::Message& m, paxos::Ballot promised_before);
  void CheckLeases(paxos::NodeId changed);
  void CheckAllLeases() {
    for (paxos::NodeId id = 1; id <= nodes_.size(); ++id) CheckLeases(id);
  }
  void LogDelivery(const Envelope& envelope);
  SimNode& node(paxos::NodeId id) { return *nodes_.at(id - 1); }
  int NodesDown() const;
  void ChaosStep();
  paxos::NodeId PickVictim();
  void MaybeCrash();
  void MaybePartition();
  void MaybePause();
  void MaybeHangDisk();
  // Membership changes (SimConfig::membership), drawn from member_rng_ so that runs without
  // them draw exactly what they always did.
  void MembershipStep();
  SimNode* UsableLeaderNode();
  void WipeMember(paxos::NodeId id);
  bool ConvergenceSet(paxos::NodeId id) const;
  void Heal();
  void Snapshots();
  void Monitor();
  bool Converged(std::string* why) const;
  std::string DescribeState() const;
  SimResult Finish();

  const SimConfig config_;
  const int total_nodes_;  // founders plus spares
  const Time chaos_end_ms_;
  Rng rng_;
  Rng member_rng_;
  // What a crash leaves of a write in flight (SimConfig::journal), drawn from disk_rng_ so that
  // runs without the journal keep their older traces.
  Rng disk_rng_;
  store::CrashFate DrawCrashFate();
  std::vector<bool> refused_;  // by node id: a member whose disk was wiped, kept down
  Trace trace_;
  Checker checker_;
  Network network_;
  ChaosProfile chaos_;
  std::vector<std::unique_ptr<SimNode>> nodes_;  // node id i at index i - 1
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<NodeClock> clocks_;                  // by node id
  std::vector<std::vector<Event>> paused_inputs_;  // by node id: held while it is paused
  uint32_t election_ticks_ = 0;
  paxos::Options clock_base_options_;
  bool drifting_clocks_ = false;
  uint32_t lease_ticks_ = 0;
  Time disk_hang_end_ms_ = 0;    // the latest end of a disk hang
  Time end_ms_ = 0;              // the run stops here at the latest
  struct LeaseView {             // per node, as of its last input
    paxos::Ballot lease_epoch;   // zero unless it holds a leader lease
    Time lease_end_ms = 0;       // virtual time at which its clock reaches the lease's end
    paxos::Ballot usable_epoch;  // zero unless it is a usable leader
  };
  std::vector<LeaseView> lease_views_;  // by node id
  struct Granted {                      // per acceptor: the leases it granted, as seen from outside
    paxos::Ballot holder;               // the highest ballot it followed (across restarts)
    uint64_t until_index = 0;           // its clock's tick index at which every grant has run out
    paxos::Ballot incarnation_max;      // the highest ballot it followed in this incarnation
  };
  std::vector<Granted> granted_;  // by node id
  std::vector<Event> heap_;
  Time now_ = 0;
  uint64_t next_seq_ = 0;
  Phase phase_ = Phase::kChaos;
  Time phase_start_ms_ = 0;
  std::string liveness_failure_;
  SimResult stats_;
};

Simulator::Simulator(const SimConfig& config)
    : config_(config),
      total_nodes_(config.nodes + (config.membership ? kSpareNodes : 0)),
      chaos_end_ms_(config.chaos_ticks * kTickMs),
      rng_(Mix64(config.seed) ^ config.seed),
      member_rng_(Mix64(config.seed ^ 0x4D454D4245525321ull)),
      disk_rng_(Mix64(config.seed ^ 0x4A4F55524E414C21ull)),
      refused_(total_nodes_ + 1),
      trace_(config.verbose, config.log),
      checker_(total_nodes_, config.nodes),
      network_(total_nodes_, &rng_),
      clocks_(total_nodes_ + 1),
      paused_inputs_(total_nodes_ + 1),
      lease_views_(total_nodes_ + 1),
      granted_(total_nodes_ + 1) {
  CHECK(config.nodes >= 1 && total_nodes_ <= kNodesMax);
  stats_.seed = config.seed;
  checker_.TEST_SetObserver(config.observer);
}

void Simulator::Setup() {
  network_.Configure(NetworkConfig::Draw(&rng_));
  chaos_ = ChaosProfile::Draw(&rng_, config_.nodes);
  const DiskConfig disk = DiskConfig::Draw(&rng_);
  const int clients = config_.clients > 0 ? config_.clients : static_cast<int>(rng_.Uniform(3, 6));
  trace_.Log(0, "seed " + std::to_string(config_.seed) + ": " + std::to_string(config_.nodes) +
                    " nodes, " + std::to_string(clients) + " clients; network " +
                    network_.config().ToString() + "; chaos " + chaos_.ToString() +
                    "; disk latency_max_ms=" + std::to_string(disk.latency_max_ms));
  std::string options;
  paxos::Options base = DrawOptions(&rng_, config_.nodes, &options);
  base.planted = config_.planted;
  if (config_.planted.clock_drift_beyond_bound) {
    // The longest lease the options allow, so that clocks beyond the bound show at once: the
    // acceptors' lease and the followers' election timeout then protect the leader's lease by
    // only a little more than the drift margin.
    base.lease_ticks = base.election_ticks - 1;
    base.check_quorum_ticks = std::max(base.check_quorum_ticks, base.lease_ticks);
    options += "; lease_ticks=" + std::to_string(base.lease_ticks) + " (clocks beyond the bound)";
  }
  CHECK(base.members.size() == static_cast<size_t>(config_.nodes));
  trace_.Log(0, options);
  // In 40% of runs nodes take snapshots (by slots and bytes as drawn, and at random points),
  // compact, and ship snapshots to replicas that lag behind or restart.
  const SnapshotConfig snapshots =
      rng_.Chance(0.4) ? SnapshotConfig::Draw(&rng_) : SnapshotConfig::Off();
  trace_.Log(0, snapshots.ToString());
  for (int i = 1; i <= total_nodes_; ++i) {
    nodes_.push_back(std::make_unique<SimNode>(i, base, config_.seed, this));
    nodes_.back()->set_disk(disk);
    nodes_.back()->set_journal(config_.journal);
    nodes_.back()->set_snapshots(snapshots);
    nodes_.back()->set_joiner(i > config_.nodes);  // a spare: joins when the group adds it
  }
  for (int i = 0; i < clients; ++i)
    clients_.push_back(std::make_unique<Client>(i, total_nodes_, this));
  // Clocks: in half the runs every node ticks at exactly the nominal rate; in the other half
  // each runs fast or slow within the drift bound (or far beyond it, planted).
  const bool drift = config_.planted.clock_drift_beyond_bound || rng_.Chance(0.5);
  clock_base_options_ = base;
  drifting_clocks_ = drift;
  election_ticks_ = base.election_ticks;
  lease_ticks_ = base.lease_ticks;
  std::ostringstream clocks;
  clocks << "tick periods (us):";
  for (auto& n : nodes_) {
    NodeClock& c = clocks_[n->id()];
    c.base_us = rng_.Uniform(0, kTickMs - 1) * 1000;  // each its own phase
    if (drift) c.period_us = DrawPeriodUs(&rng_, base, config_.planted.clock_drift_beyond_bound);
    clocks << " " << c.period_us;
    n->Start();
    Push(c.TickMs(0), EventKind::kNodeTick, n->id(), 0);
  }
  trace_.Log(0, clocks.str());
  for (int i = 0; i < clients; ++i) Push(rng_.Uniform(0, kTickMs - 1), EventKind::kClientTick, i);
  Push(0, EventKind::kChaos, 0);
  Push(chaos_end_ms_, EventKind::kHeal, 0);
  if (snapshots.on) Push(kSnapshotEveryTicks * kTickMs, EventKind::kSnapshot, 0);
  if (config_.membership) {
    trace_.Log(0, "membership changes on: nodes " + std::to_string(config_.nodes + 1) + ".." +
                      std::to_string(total_nodes_) + " are spares");
    Push(member_rng_.Uniform(kMembershipTicksMin, kMembershipTicksMax) * kTickMs,
         EventKind::kMembership, 0);
  }
}

void Simulator::Push(Time at, EventKind kind, uint32_t target, uint64_t arg, Envelope envelope) {
  heap_.push_back(Event{at, next_seq_++, kind, target, arg, std::move(envelope)});
  std::push_heap(heap_.begin(), heap_.end(), Later());
}

Simulator::Event Simulator::Pop() {
  std::pop_heap(heap_.begin(), heap_.end(), Later());
  Event e = std::move(heap_.back());
  heap_.pop_back();
  return e;
}

void Simulator::Send(Envelope envelope) {
  ++stats_.messages_sent;
  const Fate fate = network_.Route(envelope.from, envelope.to, now_);
  trace_.Fold({0x5E4D, envelope.from, envelope.to, static_cast<uint64_t>(fate.copies),
               fate.delay_ms[0], fate.delay_ms[1]});
  for (int i = 0; i < fate.copies; ++i) {
    Push(now_ + fate.delay_ms[i], EventKind::kDeliver, 0, 0,
         i + 1 == fate.copies ? std::move(envelope) : envelope);
  }
}

void Simulator::ScheduleSync(paxos::NodeId node, uint64_t incarnation, Time delay_ms) {
  Push(now_ + delay_ms, EventKind::kSyncDone, node, incarnation);
}

void Simulator::ScheduleBackground(paxos::NodeId node, uint64_t incarnation, Time delay_ms) {
  Push(now_ + delay_ms, EventKind::kBackgroundDone, node, incarnation);
}

void Simulator::Dispatch(Event& e) {
  if (HoldForPausedNode(e)) return;
  DispatchEvent(e);
  if (e.kind == EventKind::kDeliver && IsNode(e.envelope.to)) CheckLeases(e.envelope.to);
  if (e.kind == EventKind::kNodeTick || e.kind == EventKind::kSyncDone ||
      e.kind == EventKind::kBackgroundDone || e.kind == EventKind::kRestart) {
    CheckLeases(e.target);
  }
  if (e.kind == EventKind::kChaos || e.kind == EventKind::kHeal || e.kind == EventKind::kResume) {
    CheckAllLeases();  // crashes, resumes
  }
}

bool Simulator::HoldForPausedNode(Event& e) {
  paxos::NodeId id = 0;
  switch (e.kind) {
    case EventKind::kDeliver:
      if (!IsNode(e.envelope.to)) return false;
      id = e.envelope.to;
      break;
    case EventKind::kSyncDone:
    case EventKind::kBackgroundDone:
      id = e.target;
      break;
    default:
      return false;
  }
  if (!clocks_[id].paused) return false;
  paused_inputs_[id].push_back(std::move(e));
  return true;
}

// What the real server does after a pause (net/server/server.cc CatchUpTicks): feed the ticks that
// elapsed (capped at a few election timeouts, after which every lease and timer has run out),
// then handle the input that waited, in order.
void Simulator::Resume(paxos::NodeId id) {
  NodeClock& c = clocks_[id];
  if (!c.paused) return;
  c.paused = false;
  const uint64_t cap = uint64_t{4} * election_ticks_ + 4;
  trace_.Log(now_, "node " + std::to_string(id) + " resumes after " +
                       std::to_string(c.missed_ticks) + " ticks");
  trace_.Fold({0x9E5, id, c.missed_ticks});
  for (uint64_t i = 0; i < std::min(c.missed_ticks, cap); ++i) node(id).Tick();
  c.last_index += c.missed_ticks;
  c.missed_ticks = 0;
  CheckLeases(id);
  std::vector<Event> inputs = std::exchange(paused_inputs_[id], {});
  for (Event& e : inputs) {
    if (checker_.failed()) return;
    Dispatch(e);
  }
}

// "A lease belongs to a ballot: an acceptor that granted a lease to ballot b refuses to promise
// any other node's ballot until it expires, and never hands it back to a lower ballot"
// (DESIGN.md). An acceptor grants a lease when it takes a heartbeat or accept of a leader
// (it then follows that leader). Judged in the acceptor's own clock ticks: its replica counts
// no more ticks than its clock (a pause's catch-up is capped), so the acceptor's own lease is
// never shorter than this one. Across a restart the grants stay: the post-restart lease must
// cover them. Within one incarnation a grant never goes to a lower ballot.
void Simulator::CheckLeaseGrants(paxos::NodeId to, const paxos::Message& m,
                                 paxos::Ballot promised_before) {
  const paxos::ReplicaStatus st = node(to).status();
  const uint64_t index = clocks_[to].last_index;
  Granted& g = granted_[to];
  if (m.type == paxos::MessageType::kHeartbeat || m.type == paxos::MessageType::kAccept) {
    if (st.role != paxos::Role::kFollower || st.leader != m.from || st.leader_epoch != m.ballot) {
      return;  // refused: nothing granted
    }
    if (m.ballot < g.incarnation_max) {
      checker_.Fail("node " + std::to_string(to) + " granted a lease to " +
                    paxos::ToString(m.ballot) + " after granting one to the newer " +
                    paxos::ToString(g.incarnation_max));
      return;
    }
    g.incarnation_max = m.ballot;
    g.holder = std::max(g.holder, m.ballot);
    g.until_index = std::max(g.until_index, index + lease_ticks_);
    return;
  }
  if (m.type != paxos::MessageType::kPrepare) return;
  if (!(st.promised == m.ballot && promised_before < m.ballot)) return;  // nothing promised
  if (g.holder.IsZero() || g.holder.node() == m.ballot.node() || index >= g.until_index) return;
  // A leader transfer: the lease's holder handed over (and stopped using its lease first). A
  // handover from a ballot above the holder's is one step of a chain of handovers, each of
  // which was judged here when it was promised (the acceptor could not have promised the later
  // ballot while the holder's lease ran otherwise).
  if (!m.promised.IsZero() && m.promised >= g.holder) return;
  checker_.Fail("node " + std::to_string(to) + " promised " + paxos::ToString(m.ballot) +
                " at its tick " + std::to_string(index) + " while the lease it granted to " +
                paxos::ToString(g.holder) + " runs until tick " + std::to_string(g.until_index));
}

// The core's own rule for "seen" (Replica::NoteEpochSeen), fed to the checker.
void Simulator::NoteEpochSeen(paxos::NodeId to, const paxos::Message& m) {
  checker_.OnEpochSeen(to, m.promised);
  switch (m.type) {
    case paxos::MessageType::kAccept:
    case paxos::MessageType::kHeartbeat:
    case paxos::MessageType::kCatchupRequest:
    case paxos::MessageType::kCatchupReply:
      checker_.OnEpochSeen(to, m.ballot);
      break;
    default:
      break;
  }
}

// A leader's lease must end before any newer leader becomes usable: acceptors grant a lease
// from when a heartbeat arrives, which is no earlier than when the leader sent it, and a new
// leader needs a promise from some acceptor in the lease's majority. Clocks run at different
// rates, so the lease is judged in virtual (real) time: it ends when the holder's own clock
// reaches the lease's last tick, whatever inputs the holder has or has not handled by then
// (a paused node's clock keeps running). The core's drift margin must make this hold for every
// rate within Options::max_clock_drift_ppm. Checked after every input to `changed`, against the
// other nodes' views cached after their own last input.
void Simulator::CheckLeases(paxos::NodeId changed) {
  const SimNode& n = node(changed);
  LeaseView& v = lease_views_.at(changed);
  // A paused node has not changed since its last input: keep its view (its clock may have
  // changed rate since, so the view is not recomputed from it).
  if (!clocks_[changed].paused) v = LeaseView{};
  if (n.up() && !clocks_[changed].paused) {
    const paxos::ReplicaStatus s = n.status();
    if (s.lease_held) {
      const NodeClock& c = clocks_[changed];
      v.lease_epoch = s.leader_epoch;
      v.lease_end_ms = c.TickMs(c.last_index + (s.lease_until_ticks - s.now_ticks));
    }
    v.usable_epoch = n.usable_epoch();
  }
  auto holds = [this](const LeaseView& x) {
    return !x.lease_epoch.IsZero() && now_ < x.lease_end_ms;
  };
  if (!holds(v) && v.usable_epoch.IsZero()) return;
  for (paxos::NodeId other = 1; other <= nodes_.size(); ++other) {
    const LeaseView& o = lease_views_[other];
    paxos::NodeId holder = 0, newer = 0;
    if (holds(v) && o.usable_epoch > v.lease_epoch) {
      holder = changed;
      newer = other;
    } else if (holds(o) && v.usable_epoch > o.lease_epoch) {
      holder = other;
      newer = changed;
    } else {
      continue;
    }
    checker_.Fail("node " + std::to_string(holder) + " holds a leader lease for " +
                  paxos::ToString(lease_views_[holder].lease_epoch) + " (until " +
                  std::to_string(lease_views_[holder].lease_end_ms) + " ms) while node " +
                  std::to_string(newer) + " leads the newer epoch " +
                  paxos::ToString(lease_views_[newer].usable_epoch));
    return;
  }
}

void Simulator::DispatchEvent(Event& e) {
  switch (e.kind) {
    case EventKind::kNodeTick: {
      NodeClock& c = clocks_[e.target];
      if (c.paused) {
        ++c.missed_ticks;
      } else {
        node(e.target).Tick();
        c.last_index = e.arg;
      }
      if (drifting_clocks_ && rng_.Chance(kClockRateChangePerTick)) {
        c.SetRate(e.arg + 1, DrawPeriodUs(&rng_, clock_base_options_,
                                          config_.planted.clock_drift_beyond_bound));
        if (trace_.verbose()) {
          trace_.Log(now_, "node " + std::to_string(e.target) + " clock: a tick every " +
                               std::to_string(c.period_us) + " us");
        }
      }
      Push(c.TickMs(e.arg + 1), EventKind::kNodeTick, e.target, e.arg + 1);
      break;
    }
    case EventKind::kResume:
      Resume(e.target);
      break;
    case EventKind::kClientTick:
      clients_.at(e.target)->Tick();
      Push(now_ + kTickMs, EventKind::kClientTick, e.target);
      break;
    case EventKind::kDeliver:
      Deliver(e.envelope);
      break;
    case EventKind::kSyncDone:
      node(e.target).OnSyncDone(e.arg);
      break;
    case EventKind::kBackgroundDone:
      node(e.target).OnBackgroundDone(e.arg);
      break;
    case EventKind::kRestart:
      if (!node(e.target).up() && !refused_[e.target]) {
        granted_[e.target].incarnation_max = paxos::Ballot();
        node(e.target).Start();
      }
      break;
    case EventKind::kChaos:
      if (phase_ != Phase::kChaos) break;
      ChaosStep();
      Push(now_ + kTickMs, EventKind::kChaos, 0);
      break;
    case EventKind::kHeal:
      Heal();
      break;
    case EventKind::kMonitor:
      Monitor();
      Push(now_ + kTickMs, EventKind::kMonitor, 0);
      break;
    case EventKind::kSnapshot:
      Snapshots();
      Push(now_ + kSnapshotEveryTicks * kTickMs, EventKind::kSnapshot, 0);
      break;
    case EventKind::kMembership:
      MembershipStep();
      Push(now_ + member_rng_.Uniform(kMembershipTicksMin, kMembershipTicksMax) * kTickMs,
           EventKind::kMembership, 0);
      break;
  }
}

void Simulator::Deliver(const Envelope& envelope) {
  if (IsNode(envelope.to) && !node(envelope.to).up()) return;  // nobody listening
  if (trace_.verbose()) LogDelivery(envelope);
  if (const auto* m = std::get_if<paxos::Message>(&envelope.payload)) {
    trace_.Fold({0xDE1, HashMessage(*m)});
    if (IsNode(envelope.to)) {
      NoteEpochSeen(envelope.to, *m);
      const paxos::Ballot promised_before = node(envelope.to).status().promised;
      node(envelope.to).OnPeerMessage(*m);
      if (node(envelope.to).up()) {
        CheckLeaseGrants(envelope.to, *m, promised_before);
        const paxos::Ballot usable = node(envelope.to).usable_epoch();
        if (!usable.IsZero() && usable < checker_.epoch_seen(envelope.to)) {
          checker_.Fail("node " + std::to_string(envelope.to) + " still leads epoch " +
                        paxos::ToString(usable) + " after it saw the newer epoch " +
                        paxos::ToString(checker_.epoch_seen(envelope.to)));
        }
      }
    }
  } else if (const auto* r = std::get_if<ClientRequest>(&envelope.payload)) {
    trace_.Fold({0xDE2, envelope.to, r->client_id, r->op_id});
    if (IsNode(envelope.to)) node(envelope.to).OnClientRequest(envelope.from, *r);
  } else if (const auto* r = std::get_if<ClientReply>(&envelope.payload)) {
    trace_.Fold(
        {0xDE3, envelope.from, envelope.to, static_cast<uint64_t>(r->kind), r->op_id, r->sequence});
    const uint64_t index = envelope.to - kClientEndpointBase;
    if (envelope.to >= kClientEndpointBase && index < clients_.size()) {
      clients_[index]->OnReply(envelope.from, *r);
    }
  }
}

void Simulator::LogDelivery(const Envelope& envelope) {
  std::ostringstream os;
  if (const auto* m = std::get_if<paxos::Message>(&envelope.payload)) {
    os << paxos::ToString(*m);
    trace_.Log(now_, os.str());
    return;
  }
  os << envelope.from << "->" << envelope.to << " ";
  if (const auto* r = std::get_if<ClientRequest>(&envelope.payload)) {
    os << (r->kind == ClientRequest::Kind::kRead ? "read" : "next") << " op " << r->op_id << " seq "
       << r->sequence;
  } else if (const auto* r = std::get_if<ClientReply>(&envelope.payload)) {
    static constexpr const char* kKinds[] = {"result", "not-leader", "retry"};
    os << kKinds[static_cast<int>(r->kind)] << " op " << r->op_id << " seq " << r->sequence
       << " hint " << r->hint;
  }
  trace_.Log(now_, os.str());
}

int Simulator::NodesDown() const {
  return static_cast<int>(
      std::count_if(nodes_.begin(), nodes_.end(), [](const auto& n) { return !n->up(); }));
}

void Simulator::ChaosStep() {
  network_.ExpireCuts(now_);
  MaybeCrash();
  MaybePartition();
  MaybePause();
  MaybeHangDisk();
  if (rng_.Chance(chaos_.reconfigure_per_tick)) {
    network_.Configure(NetworkConfig::Draw(&rng_));
    trace_.Log(now_, "network now " + network_.config().ToString());
  }
}

paxos::NodeId Simulator::PickVictim() {
  // Half the time the leader (if any): leader changes are where the bugs live.
  if (rng_.Chance(0.5)) {
    for (const auto& n : nodes_) {
      if (n->up() && n->status().role == paxos::Role::kLeader) return n->id();
    }
  }
  return static_cast<paxos::NodeId>(rng_.Uniform(1, total_nodes_));
}

store::CrashFate Simulator::DrawCrashFate() {
  if (!config_.journal) return store::CrashFate{};
  store::CrashFate fate;
  const uint64_t draw = disk_rng_.Uniform(0, 99);
  fate.kind = draw < 40   ? store::CrashFate::kLost
              : draw < 70 ? store::CrashFate::kPersisted
                          : store::CrashFate::kTorn;
  fate.tear_seed = disk_rng_.Next();
  return fate;
}

void Simulator::MaybeCrash() {
  if (!rng_.Chance(chaos_.crash_per_tick)) return;
  SimNode& victim = node(PickVictim());
  if (!victim.up() || clocks_[victim.id()].paused || NodesDown() >= chaos_.down_max) return;
  ++stats_.crashes;
  const store::CrashFate fate = DrawCrashFate();
  if (fate.kind == store::CrashFate::kTorn && victim.write_in_flight()) ++stats_.torn_writes;
  victim.Crash(fate);
  const uint64_t down_ticks = rng_.Uniform(chaos_.restart_min_ticks, chaos_.restart_max_ticks);
  Push(now_ + down_ticks * kTickMs, EventKind::kRestart, victim.id());
}

void Simulator::MaybePartition() {
  if (!rng_.Chance(chaos_.partition_per_tick)) return;
  std::string what;
  const uint64_t links =
      rng_.Chance(0.3) ? network_.IsolateCut(PickVictim(), &what) : network_.DrawCut(&what);
  const uint64_t ticks = rng_.Uniform(chaos_.cut_min_ticks, chaos_.cut_max_ticks);
  const bool hold = rng_.Chance(chaos_.hold_cuts);
  if (!network_.AddCut(links, now_ + ticks * kTickMs, hold)) return;
  ++stats_.partitions;
  trace_.Fold({0xC07, links, ticks, hold});
  trace_.Log(now_, "partition " + what + " for " + std::to_string(ticks) + " ticks" +
                       (hold ? " (holding: delivered late)" : ""));
}

void Simulator::MaybePause() {
  if (!rng_.Chance(chaos_.pause_per_tick)) return;
  const paxos::NodeId id = PickVictim();
  NodeClock& c = clocks_[id];
  if (!node(id).up() || c.paused) return;
  const uint64_t ticks = rng_.Uniform(chaos_.pause_min_ticks, chaos_.pause_max_ticks);
  c.paused = true;
  trace_.Fold({0x9A05, id, ticks});
  trace_.Log(now_,
             "node " + std::to_string(id) + " PAUSES for " + std::to_string(ticks) + " ticks");
  Push(now_ + ticks * kTickMs, EventKind::kResume, id);
}

void Simulator::MaybeHangDisk() {
  if (!rng_.Chance(chaos_.hang_per_tick) || now_ < disk_hang_end_ms_) return;
  SimNode& victim = node(PickVictim());
  const uint64_t ticks = rng_.Uniform(chaos_.hang_min_ticks, chaos_.hang_max_ticks);
  disk_hang_end_ms_ = now_ + ticks * kTickMs;
  victim.HangDiskUntil(disk_hang_end_ms_);
  // Convergence waits for the disk; give the run room to see it.
  end_ms_ = std::max(end_ms_, disk_hang_end_ms_ + (config_.converge_ticks + 10) * kTickMs);
  trace_.Fold({0xD15C, victim.id(), ticks});
  trace_.Log(now_, "node " + std::to_string(victim.id()) + " DISK HANGS for " +
                       std::to_string(ticks) + " ticks");
}

SimNode* Simulator::UsableLeaderNode() {
  for (auto& n : nodes_) {
    if (n->usable_leader() && !clocks_[n->id()].paused) return n.get();
  }
  return nullptr;
}

// Who must have applied everything at the end: every node without membership changes; with
// them, the members of the leader's configuration that are up (spares never added, removed
// nodes and refused ones are out of the group).
bool Simulator::ConvergenceSet(paxos::NodeId id) const {
  const SimNode& n = *nodes_.at(id - 1);
  if (!config_.membership) return true;
  if (!n.up()) return false;
  for (const auto& l : nodes_) {
    if (l->usable_leader()) return l->replica().configuration().IsMember(id);
  }
  return true;
}

void Simulator::WipeMember(paxos::NodeId id) {
  SimNode& n = node(id);
  if (n.up()) n.Crash(DrawCrashFate());
  n.WipeDisk();
  checker_.OnNodeStart(id);
  if (config_.planted.wiped_disk_votes_blank && id <= static_cast<paxos::NodeId>(config_.nodes)) {
    // BUG, planted for the simulator's teeth: back at once as a voter that remembers nothing.
    granted_[id] = Granted{};
    n.Start();
    return;
  }
  // The safe-bootstrap gate (net/server/join_gate) refuses an empty data directory of a cluster
  // that exists: the node stays down until the group removes it and it rejoins with --join.
  refused_[id] = true;
}

void Simulator::MembershipStep() {
  SimNode* leader = UsableLeaderNode();
  if (leader == nullptr) return;
  paxos::Replica& r = leader->replica();
  if (r.member_change_pending() || r.transfer_target() != paxos::kNoNode) return;
  const paxos::Configuration config = r.configuration();
  auto propose = [&](const paxos::MemberChange& change) {
    Status s = r.ProposeMemberChange(change);
    trace_.Fold({0x3E3B, change.id, static_cast<uint64_t>(change.kind), s.ok() ? 1u : 0u});
    trace_.Log(now_, "leader " + std::to_string(leader->id()) + ": member " +
                         paxos::MemberChangeKindName(change.kind) + " " +
                         std::to_string(change.id) + (s.ok() ? "" : " refused: " + s.message()));
  };
  // A wiped member is removed. Its id is retired with it (paxos/configuration.h): the
  // machine would come back under a new id, which here is a spare's, so it stays down.
  for (paxos::NodeId id = 1; id <= static_cast<paxos::NodeId>(total_nodes_); ++id) {
    if (refused_[id] && config.IsMember(id) && id != leader->id()) {
      return propose({paxos::MemberChange::Kind::kRemove, id, ""});
    }
  }
  if (phase_ != Phase::kChaos) return;
  std::vector<paxos::NodeId> voters = config.voters();
  std::vector<paxos::NodeId> joinable, removable, outsiders;
  for (paxos::NodeId id = 1; id <= static_cast<paxos::NodeId>(total_nodes_); ++id) {
    const bool member = config.IsMember(id);
    if (!member && node(id).up() && node(id).joiner() && !config.IsRetired(id)) {
      joinable.push_back(id);
    }
    if (!member && !refused_[id]) outsiders.push_back(id);
    if (member && id != leader->id()) removable.push_back(id);
  }
  size_t refused_voters = 0;
  for (paxos::NodeId id : voters) refused_voters += refused_[id] ? 1 : 0;
  const double action = member_rng_.Uniform(0, 99) / 100.0;
  if (action < 0.30 && !joinable.empty()) {
    const paxos::NodeId id = joinable[member_rng_.Uniform(0, joinable.size() - 1)];
    propose({paxos::MemberChange::Kind::kAddLearner, id, SimAddress(id)});
  } else if (action < 0.55 && voters.size() > 3 && !removable.empty()) {
    propose({paxos::MemberChange::Kind::kRemove,
             removable[member_rng_.Uniform(0, removable.size() - 1)], ""});
  } else if (action < 0.70 && voters.size() > 1) {
    Status s = r.TransferLeadership(paxos::kNoNode);
    trace_.Log(now_, "leader " + std::to_string(leader->id()) + ": transfer leadership" +
                         (s.ok() ? " to " + std::to_string(r.transfer_target())
                                 : " refused: " + s.message()));
  } else if (action < 0.80 && !outsiders.empty()) {
    // A spare never added is wiped and starts again blank: still a joiner nobody counts.
    const paxos::NodeId id = outsiders[member_rng_.Uniform(0, outsiders.size() - 1)];
    if (!node(id).joiner() || config.IsRetired(id) || !node(id).up()) return;
    node(id).Crash(DrawCrashFate());
    node(id).WipeDisk();
    checker_.OnNodeStart(id);
    granted_[id] = Granted{};
    node(id).Start();
  } else if (action < 0.95 && !removable.empty()) {
    // A member's disk is replaced while the group still counts it: only while a majority of
    // the voters stays untouched, since losing a majority's disks loses data by definition.
    const paxos::NodeId id = removable[member_rng_.Uniform(0, removable.size() - 1)];
    // And only with four voters or more: the group then removes it and still has three, so a
    // disk hang or a crash afterwards does not cost it its majority.
    const bool voter = config.IsVoter(id);
    const bool planted = config_.planted.wiped_disk_votes_blank;  // back at once: no refusal
    if (voter && !planted && (voters.size() < 4 || refused_voters + 1 > (voters.size() - 1) / 2)) {
      return;
    }
    // A refused node stays down until removed, which needs a leader: in runs whose other
    // faults can take a second voter away for long (any number of crashes, disk hangs that
    // outlast the heal), the group could lose its majority for good, which no protocol survives.
    if (!planted && (NodesDown() >= chaos_.down_max || chaos_.down_max > (config_.nodes - 1) / 2 ||
                     chaos_.hang_per_tick > 0)) {
      return;
    }
    trace_.Log(now_, "member " + std::to_string(id) + "'s disk is replaced");
    WipeMember(id);
  }
}

void Simulator::Heal() {
  trace_.Log(now_, "HEAL: faults stop, crashed nodes restart");
  phase_ = Phase::kLiveness;
  phase_start_ms_ = now_;
  network_.ClearCuts();
  network_.Configure(NetworkConfig::Calm());
  for (auto& n : nodes_) {
    n->set_disk(DiskConfig::Calm());  // a hung disk stays hung (HangDiskUntil)
    Resume(n->id());
    if (!n->up() && !refused_[n->id()]) {
      granted_[n->id()].incarnation_max = paxos::Ballot();
      n->Start();
    }
  }
  for (auto& c : clients_) c->Drain(1);
  Push(now_, EventKind::kMonitor, 0);
}

void Simulator::Snapshots() {
  // Snapshots at random points, on top of the drawn slot and byte triggers.
  for (auto& n : nodes_) {
    if (rng_.Chance(0.3) && !clocks_[n->id()].paused) n->RequestSnapshot();
  }
  CheckAllLeases();
}

void Simulator::Monitor() {
  const Time elapsed_ms = now_ - phase_start_ms_;
  if (phase_ == Phase::kLiveness) {
    const bool clients_done =
        std::all_of(clients_.begin(), clients_.end(), [](const auto& c) { return c->done(); });
    const bool leader =
        std::any_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n->usable_leader(); });
    if (clients_done && leader) {
      stats_.liveness_ticks = elapsed_ms / kTickMs;
      trace_.Log(now_, "liveness reached after " + std::to_string(elapsed_ms / kTickMs) + " ticks");
      phase_ = Phase::kConverge;
      phase_start_ms_ = now_;
    } else if (elapsed_ms > config_.liveness_ticks * kTickMs) {
      liveness_failure_ = "liveness: " + std::string(leader ? "" : "no usable leader, ") +
                          "operations still pending " + std::to_string(config_.liveness_ticks) +
                          " ticks after the heal: " + DescribeState();
    }
    return;
  }
  // A disk that still hangs holds its node's applying back; convergence is due once it works.
  const Time from_ms = std::max(phase_start_ms_, disk_hang_end_ms_);
  const Time converge_elapsed_ms = now_ > from_ms ? now_ - from_ms : 0;
  std::string why;
  if (Converged(&why)) {
    stats_.converge_ticks = elapsed_ms / kTickMs;
    trace_.Log(now_, "converged after " + std::to_string(elapsed_ms / kTickMs) + " ticks");
    phase_ = Phase::kDone;
  } else if (converge_elapsed_ms > config_.converge_ticks * kTickMs) {
    liveness_failure_ = "replicas did not converge within " +
                        std::to_string(config_.converge_ticks) + " ticks: " + why + "; " +
                        DescribeState();
  }
}

bool Simulator::Converged(std::string* why) const {
  paxos::Slot chosen_max = 0;
  for (const auto& n : nodes_) {
    if (n->up()) chosen_max = std::max(chosen_max, n->status().chosen_below);
  }
  for (const auto& n : nodes_) {
    if (!ConvergenceSet(n->id())) continue;
    if (n->applied_below() != chosen_max) {
      *why = "node " + std::to_string(n->id()) + " applied below " +
             std::to_string(n->applied_below()) + ", chosen below " + std::to_string(chosen_max);
      return false;
    }
  }
  return true;
}

std::string Simulator::DescribeState() const {
  std::ostringstream os;
  for (const auto& n : nodes_) {
    os << "[node " << n->id();
    if (!n->up()) {
      os << " down] ";
      continue;
    }
    const paxos::ReplicaStatus s = n->status();
    if (n->disk_hung_until() > now_) os << " disk-hung";
    os << " " << paxos::RoleName(s.role) << " promised " << paxos::ToString(s.promised)
       << " leader " << s.leader << " usable " << s.leader_usable << " chosen_below "
       << s.chosen_below << " applied_below " << n->applied_below() << "] ";
  }
  for (const auto& c : clients_) os << "[" << c->Describe() << "] ";
  return os.str();
}

SimResult Simulator::Run() {
  end_ms_ = chaos_end_ms_ + (config_.liveness_ticks + config_.converge_ticks + 10) * kTickMs;
  Setup();
  uint64_t events = 0;
  for (; events < kEventsMax && !heap_.empty(); ++events) {
    Event e = Pop();
    if (e.at > end_ms_) break;
    now_ = e.at;
    Dispatch(e);
    if (checker_.failed() || phase_ == Phase::kDone || !liveness_failure_.empty()) break;
  }
  if (events == kEventsMax) liveness_failure_ = "livelock: more than kEventsMax events";
  if (!checker_.failed() && phase_ != Phase::kDone && liveness_failure_.empty()) {
    liveness_failure_ = "run ended before the liveness checks finished: " + DescribeState();
  }
  return Finish();
}

SimResult Simulator::Finish() {
  if (!checker_.failed()) {
    std::vector<paxos::NodeId> converged;
    if (phase_ == Phase::kDone) {
      for (const auto& n : nodes_) {
        if (ConvergenceSet(n->id())) converged.push_back(n->id());
      }
    }
    checker_.FinalChecks(converged);
  }
  SimResult r = stats_;
  r.violation = checker_.failed() ? checker_.violation() : liveness_failure_;
  if (checker_.failed() && !liveness_failure_.empty())
    r.violation += " (and " + liveness_failure_ + ")";
  trace_.Fold({checker_.ops_acked(), checker_.leader_changes(), now_});
  r.trace_hash = trace_.hash();
  r.ops_acked = checker_.ops_acked();
  r.leader_changes = checker_.leader_changes();
  r.end_ms = now_;
  if (!r.ok()) trace_.Log(now_, "VIOLATION: " + r.violation);
  return r;
}

// The run in progress, for the CHECK-failure reporter (the simulator is single-threaded).
SimConfig g_running;
bool g_is_running = false;

[[noreturn]] void ReportCheckFailure() {
  if (g_is_running) {
    std::fprintf(stdout, "VIOLATION seed=%llu nodes=%d: CHECK failure (see the log above)\n",
                 static_cast<unsigned long long>(g_running.seed), g_running.nodes);
    std::fprintf(stdout, "replay: %s\n", ReplayCommand(g_running).c_str());
    std::fflush(stdout);
  }
  std::abort();
}

}  // namespace

SimResult RunSimulation(const SimConfig& config) {
  g_running = config;
  g_running.log = nullptr;
  g_running.observer = nullptr;
  g_is_running = true;
  Simulator sim(config);
  SimResult result = sim.Run();
  g_is_running = false;
  return result;
}

void InstallCheckFailureReporter() { google::InstallFailureFunction(&ReportCheckFailure); }

bool SetPlant(std::string_view name, paxos::PlantedBugs* planted) {
  if (name == "ack_before_durable") {
    planted->ack_accept_before_durable = true;
  } else if (name == "ignore_accepted") {
    planted->ignore_accepted_in_recovery = true;
  } else if (name == "forget_promise") {
    planted->forget_promise_on_restart = true;
  } else if (name == "apply_out_of_order") {
    planted->apply_out_of_order = true;
  } else if (name == "lease_from_ack") {
    planted->lease_from_ack_time = true;
  } else if (name == "lease_to_lower_ballot") {
    planted->lease_to_lower_ballot = true;
  } else if (name == "announce_older_epoch") {
    planted->announce_older_epoch = true;
  } else if (name == "no_persist_stall_stepdown") {
    planted->no_persist_stall_stepdown = true;
  } else if (name == "clock_drift_beyond_bound") {
    planted->clock_drift_beyond_bound = true;
  } else if (name == "wiped_disk_votes_blank") {
    planted->wiped_disk_votes_blank = true;
  } else {
    return false;
  }
  return true;
}

std::string PlantNames(const paxos::PlantedBugs& p) {
  std::string out;
  auto add = [&out](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ",";
    out += name;
  };
  add(p.ack_accept_before_durable, "ack_before_durable");
  add(p.ignore_accepted_in_recovery, "ignore_accepted");
  add(p.forget_promise_on_restart, "forget_promise");
  add(p.apply_out_of_order, "apply_out_of_order");
  add(p.lease_from_ack_time, "lease_from_ack");
  add(p.lease_to_lower_ballot, "lease_to_lower_ballot");
  add(p.announce_older_epoch, "announce_older_epoch");
  add(p.no_persist_stall_stepdown, "no_persist_stall_stepdown");
  add(p.clock_drift_beyond_bound, "clock_drift_beyond_bound");
  add(p.wiped_disk_votes_blank, "wiped_disk_votes_blank");
  return out;
}

std::string ReplayCommand(const SimConfig& config) {
  const SimConfig defaults;
  std::ostringstream os;
  os << "ballot-sim --nodes=" << config.nodes << " --first_seed=" << config.seed
     << " --seeds=1 --verbose";
  if (config.clients != defaults.clients) os << " --clients=" << config.clients;
  if (config.chaos_ticks != defaults.chaos_ticks) os << " --chaos_ticks=" << config.chaos_ticks;
  if (config.liveness_ticks != defaults.liveness_ticks) {
    os << " --liveness_ticks=" << config.liveness_ticks;
  }
  if (config.converge_ticks != defaults.converge_ticks) {
    os << " --converge_ticks=" << config.converge_ticks;
  }
  if (config.membership) os << " --membership";
  if (config.journal) os << " --journal";
  const std::string plants = PlantNames(config.planted);
  if (!plants.empty()) os << " --plant=" << plants;
  return os.str();
}

}  // namespace ballot::sim
