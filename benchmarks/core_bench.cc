// The core and its driver alone: commands/s through an in-memory group of three nodes, each the
// shipping net/server/driver.h over a paxos::Replica, a MemStore that syncs instantly and an
// Applier over a state machine that does nothing. No sockets, no codec, no disk and no threads: it
// bounds what the runtime can ever reach and shows what the protocol, the driver and the
// session table cost per command and per slot.
//
// Messages go into a FIFO and are delivered in-process; every persist batch is "synced" at once
// (the driver is told after the current call returns, as a storage thread would); the applier
// side runs inline, as with apply_inline; snapshots (every kCompactEverySlots slots, into
// memory) compact the log as in a real node.
//
// One benchmark iteration is one round: the leader is handed `batch` commands of 16 B, then
// messages are delivered until the network is quiet, by which time the leader has applied them
// all. Rounds are not pipelined (each round waits for the previous one), so this measures
// per-round cost at a given batch size, not the window. Time does not advance inside the timed
// loop (no Tick): in a real node a tick is 10 ms, thousands of rounds.
//
// Reports items/s (commands answered at the leader), slots/s and messages/s (delivered), per
// second of CPU time of the one thread that runs all three nodes (CPU time, not wall time: the
// work is pure computation and the machine is shared, see shared/MACHINE.md).
#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "net/server/driver.h"
#include "paxos/message.h"
#include "paxos/options.h"
#include "paxos/replica.h"
#include "paxos/types.h"
#include "statemachine/applier.h"
#include "store/mem_snapshot_store.h"
#include "store/mem_store.h"

namespace ballot::paxos {
namespace {

constexpr size_t kReplicas = 3;
constexpr size_t kPayloadBytes = 16;
// Bounds, so that a livelock is a CHECK failure and never a hang.
constexpr int kElectionTicksMax = 1000;
constexpr size_t kDeliveriesPerRoundMax = 100000;
constexpr size_t kDeferredPerRoundMax = 1000000;
// Snapshots (and so compaction) this often, as a runtime does; otherwise the log would grow for
// the whole run.
constexpr uint64_t kCompactEverySlots = 4096;

// A state machine that answers every command with nothing: the bench measures Ballot, not it.
class NullMachine final : public StateMachine {
 public:
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override {
    outcomes->resize(outcomes->size() + batch.size());
  }
  Outcome Query(std::string_view) const override { return {}; }
  std::string Snapshot() const override { return {}; }
  Status Restore(std::string_view) override { return Status::Ok(); }
};

class Group;

// One node: the driver's host, with everything instant and in-process.
class BenchNode final : public DriverHost {
 public:
  BenchNode(NodeId id, Group* group);
  Driver& driver() { return *driver_; }
  uint64_t answered() const { return answered_; }

  void SendToPeer(Message message) override;
  void Persist(PersistBatch batch) override {
    CHECK(store_.Write(batch).ok());
    ToDriver([this] { driver_->OnPersisted(); });
  }
  void ToApplier(std::function<void()> work) override { work(); }
  void ToDriver(std::function<void()> work) override;
  void InBackground(std::function<void()> work) override { work(); }
  void CommandDone(ClientTag, Reply&) override { ++answered_; }
  void ReadDone(ClientTag, Outcome) override {}
  void Refuse(ClientTag, StatusCode code, std::string message, NodeId) override {
    LOG(FATAL) << "refused: " << StatusCodeName(code) << " " << message;
  }
  void Fatal(Status why) override { LOG(FATAL) << why.ToString(); }
  void OnAnnounced(bool leading, uint64_t) override;

 private:
  const NodeId id_;
  Group* const group_;
  store::MemStore store_;
  store::MemSnapshotStore snapshots_;
  std::unique_ptr<Driver> driver_;
  uint64_t answered_ = 0;
};

// Three nodes joined by an in-process FIFO network.
class Group {
 public:
  Group() {
    for (NodeId id = 1; id <= kReplicas; ++id) {
      nodes_.push_back(std::make_unique<BenchNode>(id, this));
    }
  }

  BenchNode& node(NodeId id) { return *nodes_.at(id - 1); }
  uint64_t delivered() const { return delivered_; }
  void Post(std::function<void()> work) { deferred_.push_back(std::move(work)); }
  void Send(Message m) { net_.push_back(std::move(m)); }
  void set_leader(NodeId id, bool leading) {
    if (leading) leader_ = id;
    if (!leading && leader_ == id) leader_ = kNoNode;
  }

  // Ticks every node until one announces leadership (its recovery applied, its epoch usable),
  // then lets the network quiet down. Returns the leader.
  NodeId ElectLeader() {
    for (int tick = 0; tick < kElectionTicksMax && leader_ == kNoNode; ++tick) {
      for (NodeId id = 1; id <= kReplicas; ++id) {
        node(id).driver().Tick();
        node(id).driver().Drain();
      }
      DeliverAll();
    }
    CHECK_NE(leader_, kNoNode) << "no leader after " << kElectionTicksMax << " ticks";
    return leader_;
  }

  // Delivers messages and deferred driver work, and everything they cause, until all is quiet.
  void DeliverAll() {
    for (NodeId id = 1; id <= kReplicas; ++id) node(id).driver().Drain();
    for (size_t i = 0; !net_.empty() || !deferred_.empty(); ++i) {
      CHECK_LT(i, kDeliveriesPerRoundMax + kDeferredPerRoundMax) << "the group never quiets down";
      if (!deferred_.empty()) {
        std::function<void()> work = std::move(deferred_.front());
        deferred_.pop_front();
        work();
        continue;
      }
      Message m = std::move(net_.front());
      net_.pop_front();
      CHECK(m.to >= 1 && m.to <= kReplicas) << ToString(m);
      ++delivered_;
      Driver& d = node(m.to).driver();
      d.Step(m);
      d.Drain();
    }
  }

 private:
  std::vector<std::unique_ptr<BenchNode>> nodes_;
  std::deque<Message> net_;
  std::deque<std::function<void()>> deferred_;
  uint64_t delivered_ = 0;
  NodeId leader_ = kNoNode;
};

BenchNode::BenchNode(NodeId id, Group* group) : id_(id), group_(group) {
  Options o;
  o.id = id;
  for (NodeId m = 1; m <= kReplicas; ++m) o.members.push_back(m);
  o.seed = 1000 + id;
  Result<std::unique_ptr<Replica>> replica = Replica::Create(o, DurableState{});
  CHECK(replica.ok()) << replica.status().ToString();
  DriverOptions d;
  d.snapshot_every_slots = kCompactEverySlots;
  d.snapshot_every_log_bytes = 0;
  d.log_retain_slots = 0;
  driver_ = std::make_unique<Driver>(d, this, std::move(replica).value(),
                                     std::make_unique<Applier>(std::make_unique<NullMachine>()),
                                     &store_, &snapshots_, /*store_mark=*/1);
}

void BenchNode::SendToPeer(Message message) { group_->Send(std::move(message)); }

void BenchNode::ToDriver(std::function<void()> work) {
  group_->Post([this, work = std::move(work)] { driver_->RunOnDriver(work); });
}

void BenchNode::OnAnnounced(bool leading, uint64_t) { group_->set_leader(id_, leading); }

void BM_CoreRound(benchmark::State& state) {
  const auto batch = static_cast<size_t>(state.range(0));
  Group group;
  const NodeId leader = group.ElectLeader();
  Driver& driver = group.node(leader).driver();
  Replica& replica = driver.replica();

  const std::string payload(kPayloadBytes, 'p');
  const uint64_t answered_start = group.node(leader).answered();
  const uint64_t delivered_start = group.delivered();
  const Slot chosen_start = replica.status().chosen_below;
  uint64_t sequence = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      ++sequence;
      // Refusals are fatal (BenchNode::Refuse): every command must be taken.
      driver.Propose(Command{42, sequence, 0, 0, 0, payload}, ClientTag{1, sequence});
    }
    group.DeliverAll();
  }
  const uint64_t applied = group.node(leader).answered() - answered_start;
  CHECK_EQ(applied, sequence) << "every proposed command must be answered at the leader";
  const auto slots = static_cast<double>(replica.status().chosen_below - chosen_start);
  const auto messages = static_cast<double>(group.delivered() - delivered_start);

  state.SetItemsProcessed(static_cast<int64_t>(applied));
  state.counters["slots/s"] = benchmark::Counter(slots, benchmark::Counter::kIsRate);
  state.counters["messages/s"] = benchmark::Counter(messages, benchmark::Counter::kIsRate);
  state.counters["cmds/slot"] = slots > 0 ? static_cast<double>(applied) / slots : 0;
  state.SetLabel(std::to_string(batch) + " x " + std::to_string(kPayloadBytes) +
                 " B commands per round, 3 nodes (driver + replica + applier)");
}

BENCHMARK(BM_CoreRound)
    ->ArgName("batch")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);

// A follower far behind: one slot below everything it accepts is missing (its accept was lost
// and the leader's re-send has not come yet), so nothing becomes applicable, while accepts keep
// arriving with the leader's growing commit index. Each accept must cost the same whatever the
// gap's age: a follower that walked its unchosen log on every message fell further behind the
// longer it was behind, and never caught up from 1M slots (docs/performance.md).
void BM_FollowerBehindAGap(benchmark::State& state) {
  const auto behind = static_cast<Slot>(state.range(0));
  Options o;
  o.id = 3;
  o.members = {1, 2, 3};
  Replica f(o, DurableState{});
  for (int i = 0; i < 7; ++i) f.Tick();  // past the restart lease
  if (f.TakeReady().persist) f.Advance();
  const Ballot leader(1, 1);
  Slot slot = 2;  // slot 1 is the gap
  auto accept = [&] {
    Message m;
    m.type = MessageType::kAccept;
    m.from = 1;
    m.to = 3;
    m.ballot = leader;
    m.commit = slot;  // the leader has chosen everything before this one
    m.entries.push_back(
        Entry{slot, Ballot(), Value{leader, false, {Command{7, slot, 0, 0, 0, "v"}}}});
    f.Step(m);
    if (f.TakeReady().persist) f.Advance();  // synced at once
    ++slot;
  };
  while (slot < behind) accept();  // setup: `behind` accepted, unchosen slots
  for (auto _ : state) accept();
  CHECK_EQ(f.status().chosen_below, 1u);
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("accepts/s with " + std::to_string(behind) + "+ unchosen slots above a gap");
}

BENCHMARK(BM_FollowerBehindAGap)
    ->ArgName("behind")
    ->Arg(1000)
    ->Arg(100000)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);

}  // namespace
}  // namespace ballot::paxos

int main(int argc, char** argv) {
  FLAGS_minloglevel = google::GLOG_WARNING;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
