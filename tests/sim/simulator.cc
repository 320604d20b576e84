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
// In runs with snapshots, how often nodes capture their state machine and compact.
constexpr uint64_t kSnapshotEveryTicks = 50;

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

  static ChaosProfile Draw(Rng* rng, int nodes) {
    static constexpr double kCrashes[] = {0, 1.0 / 1000, 1.0 / 300, 1.0 / 100};
    static constexpr double kPartitions[] = {0, 1.0 / 800, 1.0 / 300, 1.0 / 100};
    ChaosProfile p;
    p.crash_per_tick = rng->Pick(kCrashes);
    p.partition_per_tick = rng->Pick(kPartitions);
    p.reconfigure_per_tick = rng->Chance(0.5) ? 1.0 / 500 : 0;
    // Mostly a minority at a time; sometimes anything goes, even every node.
    p.down_max = rng->Chance(0.7) ? (nodes - 1) / 2 : nodes;
    return p;
  }
  std::string ToString() const {
    std::ostringstream os;
    os << "crash/tick=" << crash_per_tick << " partition/tick=" << partition_per_tick
       << " reconfigure/tick=" << reconfigure_per_tick << " down_max=" << down_max;
    return os.str();
  }
};

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
  o.lease_ticks = static_cast<uint32_t>(rng->Uniform(std::max<uint32_t>(o.heartbeat_ticks + 1, 3), 6));
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
  std::ostringstream os;
  os << "tight options: heartbeat=" << o.heartbeat_ticks << " election=" << o.election_ticks
     << " lease=" << o.lease_ticks << " check_quorum=" << o.check_quorum_ticks
     << " accept_retry=" << o.accept_retry_ticks << " catchup_retry=" << o.catchup_retry_ticks
     << " batch=" << o.batch_commands_max << "/" << o.batch_bytes_max
     << "B window=" << o.window_slots_max << " pending=" << o.pending_commands_max
     << " reads=" << o.reads_pending_max << " catchup=" << o.catchup_entries_max
     << " accept_entries=" << o.accept_entries_max
     << " pace_by_sync=" << o.pace_proposals_by_sync;
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
  };
  enum class Phase { kChaos, kLiveness, kConverge, kDone };
  struct Event {
    Time at = 0;
    uint64_t seq = 0;
    EventKind kind = EventKind::kMonitor;
    uint32_t target = 0;  // node id or client index
    uint64_t arg = 0;     // kSyncDone: incarnation
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
  void Heal();
  void Snapshots();
  void Monitor();
  bool Converged(std::string* why) const;
  std::string DescribeState() const;
  SimResult Finish();

  const SimConfig config_;
  const Time chaos_end_ms_;
  Rng rng_;
  Trace trace_;
  Checker checker_;
  Network network_;
  ChaosProfile chaos_;
  std::vector<std::unique_ptr<SimNode>> nodes_;  // node id i at index i - 1
  std::vector<std::unique_ptr<Client>> clients_;
  struct LeaseView {             // per node, as of its last input
    paxos::Ballot lease_epoch;   // zero unless it holds a leader lease
    paxos::Ballot usable_epoch;  // zero unless it is a usable leader
  };
  std::vector<LeaseView> lease_views_;  // by node id
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
      chaos_end_ms_(config.chaos_ticks * kTickMs),
      rng_(Mix64(config.seed) ^ config.seed),
      trace_(config.verbose, config.log),
      checker_(config.nodes),
      network_(config.nodes, &rng_),
      lease_views_(config.nodes + 1) {
  CHECK(config.nodes >= 1 && config.nodes <= kNodesMax);
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
  CHECK(base.members.size() == static_cast<size_t>(config_.nodes));
  trace_.Log(0, options);
  // In 40% of runs nodes take snapshots (by slots and bytes as drawn, and at random points),
  // compact, and ship snapshots to replicas that lag behind or restart.
  const SnapshotConfig snapshots =
      rng_.Chance(0.4) ? SnapshotConfig::Draw(&rng_) : SnapshotConfig::Off();
  trace_.Log(0, snapshots.ToString());
  for (int i = 1; i <= config_.nodes; ++i) {
    nodes_.push_back(std::make_unique<SimNode>(i, base, config_.seed, this));
    nodes_.back()->set_disk(disk);
    nodes_.back()->set_snapshots(snapshots);
  }
  for (int i = 0; i < clients; ++i)
    clients_.push_back(std::make_unique<Client>(i, config_.nodes, this));
  for (auto& n : nodes_) {
    n->Start();
    Push(rng_.Uniform(0, kTickMs - 1), EventKind::kNodeTick, n->id());  // each its own phase
  }
  for (int i = 0; i < clients; ++i) Push(rng_.Uniform(0, kTickMs - 1), EventKind::kClientTick, i);
  Push(0, EventKind::kChaos, 0);
  Push(chaos_end_ms_, EventKind::kHeal, 0);
  if (snapshots.on) Push(kSnapshotEveryTicks * kTickMs, EventKind::kSnapshot, 0);
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
  const Fate fate = network_.Route(envelope.from, envelope.to);
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
  DispatchEvent(e);
  if (e.kind == EventKind::kDeliver && IsNode(e.envelope.to)) CheckLeases(e.envelope.to);
  if (e.kind == EventKind::kNodeTick || e.kind == EventKind::kSyncDone ||
      e.kind == EventKind::kBackgroundDone || e.kind == EventKind::kRestart) {
    CheckLeases(e.target);
  }
  if (e.kind == EventKind::kChaos || e.kind == EventKind::kHeal) CheckAllLeases();  // crashes
}

// A leader's lease must end before any newer leader becomes usable: acceptors grant a lease
// from when a heartbeat arrives, which is no earlier than when the leader sent it, and a new
// leader needs a promise from some acceptor in the lease's majority. (Only clocks that run at
// one rate make this hold; the simulator's do.) Checked after every input to `changed`, against
// the other nodes' views cached after their own last input.
void Simulator::CheckLeases(paxos::NodeId changed) {
  const SimNode& n = node(changed);
  LeaseView& v = lease_views_.at(changed);
  v = LeaseView{};
  if (n.up()) {
    const paxos::ReplicaStatus s = n.status();
    v.lease_epoch = s.lease_held ? s.leader_epoch : paxos::Ballot();
    v.usable_epoch = n.usable_epoch();
  }
  if (v.lease_epoch.IsZero() && v.usable_epoch.IsZero()) return;
  for (paxos::NodeId other = 1; other <= nodes_.size(); ++other) {
    const LeaseView& o = lease_views_[other];
    paxos::NodeId holder = 0, newer = 0;
    if (!v.lease_epoch.IsZero() && o.usable_epoch > v.lease_epoch) {
      holder = changed;
      newer = other;
    } else if (!o.lease_epoch.IsZero() && v.usable_epoch > o.lease_epoch) {
      holder = other;
      newer = changed;
    } else {
      continue;
    }
    checker_.Fail("node " + std::to_string(holder) + " holds a leader lease for " +
                  paxos::ToString(lease_views_[holder].lease_epoch) + " while node " +
                  std::to_string(newer) + " leads the newer epoch " +
                  paxos::ToString(lease_views_[newer].usable_epoch));
    return;
  }
}

void Simulator::DispatchEvent(Event& e) {
  switch (e.kind) {
    case EventKind::kNodeTick:
      node(e.target).Tick();
      Push(now_ + kTickMs, EventKind::kNodeTick, e.target);
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
      if (!node(e.target).up()) node(e.target).Start();
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
  }
}

void Simulator::Deliver(const Envelope& envelope) {
  if (IsNode(envelope.to) && !node(envelope.to).up()) return;  // nobody listening
  if (trace_.verbose()) LogDelivery(envelope);
  if (const auto* m = std::get_if<paxos::Message>(&envelope.payload)) {
    trace_.Fold({0xDE1, HashMessage(*m)});
    if (IsNode(envelope.to)) node(envelope.to).OnPeerMessage(*m);
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
  return static_cast<paxos::NodeId>(rng_.Uniform(1, config_.nodes));
}

void Simulator::MaybeCrash() {
  if (!rng_.Chance(chaos_.crash_per_tick)) return;
  SimNode& victim = node(PickVictim());
  if (!victim.up() || NodesDown() >= chaos_.down_max) return;
  ++stats_.crashes;
  victim.Crash();
  const uint64_t down_ticks = rng_.Uniform(chaos_.restart_min_ticks, chaos_.restart_max_ticks);
  Push(now_ + down_ticks * kTickMs, EventKind::kRestart, victim.id());
}

void Simulator::MaybePartition() {
  if (!rng_.Chance(chaos_.partition_per_tick)) return;
  std::string what;
  const uint64_t links =
      rng_.Chance(0.3) ? network_.IsolateCut(PickVictim(), &what) : network_.DrawCut(&what);
  const uint64_t ticks = rng_.Uniform(chaos_.cut_min_ticks, chaos_.cut_max_ticks);
  if (!network_.AddCut(links, now_ + ticks * kTickMs)) return;
  ++stats_.partitions;
  trace_.Fold({0xC07, links, ticks});
  trace_.Log(now_, "partition " + what + " for " + std::to_string(ticks) + " ticks");
}

void Simulator::Heal() {
  trace_.Log(now_, "HEAL: faults stop, crashed nodes restart");
  phase_ = Phase::kLiveness;
  phase_start_ms_ = now_;
  network_.ClearCuts();
  network_.Configure(NetworkConfig::Calm());
  for (auto& n : nodes_) {
    n->set_disk(DiskConfig::Calm());
    if (!n->up()) n->Start();
  }
  for (auto& c : clients_) c->Drain(1);
  Push(now_, EventKind::kMonitor, 0);
}

void Simulator::Snapshots() {
  // Snapshots at random points, on top of the drawn slot and byte triggers.
  for (auto& n : nodes_) {
    if (rng_.Chance(0.3)) n->RequestSnapshot();
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
  std::string why;
  if (Converged(&why)) {
    stats_.converge_ticks = elapsed_ms / kTickMs;
    trace_.Log(now_, "converged after " + std::to_string(elapsed_ms / kTickMs) + " ticks");
    phase_ = Phase::kDone;
  } else if (elapsed_ms > config_.converge_ticks * kTickMs) {
    liveness_failure_ = "replicas did not converge within " +
                        std::to_string(config_.converge_ticks) + " ticks: " + why + "; " +
                        DescribeState();
  }
}

bool Simulator::Converged(std::string* why) const {
  paxos::Slot chosen_max = 0;
  for (const auto& n : nodes_) chosen_max = std::max(chosen_max, n->status().chosen_below);
  for (const auto& n : nodes_) {
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
    os << " " << paxos::RoleName(s.role) << " promised " << paxos::ToString(s.promised)
       << " leader " << s.leader << " usable " << s.leader_usable << " chosen_below "
       << s.chosen_below << " applied_below " << n->applied_below() << "] ";
  }
  for (const auto& c : clients_) os << "[" << c->Describe() << "] ";
  return os.str();
}

SimResult Simulator::Run() {
  Setup();
  const Time end_ms =
      chaos_end_ms_ + (config_.liveness_ticks + config_.converge_ticks + 10) * kTickMs;
  uint64_t events = 0;
  for (; events < kEventsMax && !heap_.empty(); ++events) {
    Event e = Pop();
    if (e.at > end_ms) break;
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
      for (const auto& n : nodes_) converged.push_back(n->id());
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
  const std::string plants = PlantNames(config.planted);
  if (!plants.empty()) os << " --plant=" << plants;
  return os.str();
}

}  // namespace ballot::sim
