// The pure Multi-Paxos core alone: commands/s through an in-memory group of three
// paxos::Replica, with no sockets, no codec, no disk and no threads. It bounds what the runtime
// can ever reach and shows what the core itself costs per command and per slot.
//
// The "runtime" here is the one of tests/paxos/replica_test.cc, minus its checks: messages go
// into a FIFO and are delivered in-process, every Ready::persist is "synced" at once (then
// send_after_persist goes out and Advance() is called), and applied entries are counted.
//
// One benchmark iteration is one round: the leader is handed `batch` commands of 16 B (Propose),
// then messages are delivered until the network is quiet, by which time the leader has applied
// them all. Rounds are not pipelined (each round waits for the previous one), so this measures
// per-round cost at a given batch size, not the window. Time does not advance inside the timed
// loop (no Tick): in a real node a tick is 10 ms, thousands of rounds.
//
// Reports items/s (commands applied at the leader), slots/s and messages/s (delivered), per
// second of CPU time of the one thread that runs all three replicas (CPU time, not wall time:
// the work is pure computation and the machine is shared, see shared/MACHINE.md).
#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "paxos/message.h"
#include "paxos/options.h"
#include "paxos/ready.h"
#include "paxos/replica.h"
#include "paxos/types.h"

namespace ballot::paxos {
namespace {

constexpr size_t kReplicas = 3;
constexpr size_t kPayloadBytes = 16;
// Bounds, so that a livelock is a CHECK failure and never a hang.
constexpr int kElectionTicksMax = 1000;
constexpr size_t kReadiesPerProcessMax = 1000;
constexpr size_t kDeliveriesPerRoundMax = 100000;
// Every replica drops its applied entries from memory this often, as a runtime does after a
// snapshot; otherwise the log would grow for the whole run.
constexpr Slot kCompactEverySlots = 4096;

// Three replicas joined by an in-process FIFO network and an instant disk.
class Group {
 public:
  Group() {
    for (NodeId id = 1; id <= kReplicas; ++id) {
      Options o;
      o.id = id;
      for (NodeId m = 1; m <= kReplicas; ++m) o.members.push_back(m);
      o.seed = 1000 + id;
      Result<std::unique_ptr<Replica>> created = Replica::Create(o, DurableState{});
      CHECK(created.ok()) << created.status().ToString();
      replicas_.push_back(std::move(created).value());
    }
    applied_commands_.assign(kReplicas + 1, 0);
  }

  Replica& r(NodeId id) { return *replicas_.at(id - 1); }
  uint64_t applied_commands(NodeId id) const { return applied_commands_.at(id); }
  uint64_t delivered() const { return delivered_; }

  // Ticks every replica until one reports kBecameLeader (its recovery is chosen and its epoch
  // usable), then lets the network quiet down. Returns the leader.
  NodeId ElectLeader() {
    for (int tick = 0; tick < kElectionTicksMax && leader_ == kNoNode; ++tick) {
      for (NodeId id = 1; id <= kReplicas; ++id) {
        r(id).Tick();
        Process(id);
      }
      DeliverAll();
    }
    CHECK_NE(leader_, kNoNode) << "no leader after " << kElectionTicksMax << " ticks";
    CHECK(r(leader_).IsLeader());
    return leader_;
  }

  // Delivers messages, and everything they cause, until the network is empty.
  void DeliverAll() {
    for (NodeId id = 1; id <= kReplicas; ++id) Process(id);
    for (size_t i = 0; !net_.empty(); ++i) {
      CHECK_LT(i, kDeliveriesPerRoundMax) << "the network never quiets down";
      Message m = std::move(net_.front());
      net_.pop_front();
      CHECK(m.to >= 1 && m.to <= kReplicas) << ToString(m);
      ++delivered_;
      r(m.to).Step(m);
      Process(m.to);
    }
  }

  // Every replica forgets the entries it has applied.
  void Compact() {
    for (NodeId id = 1; id <= kReplicas; ++id) r(id).CompactBelow(r(id).status().applied_below);
  }

 private:
  // Carries out every Ready of one replica: send, "persist" (instantly durable), advance, apply.
  void Process(NodeId id) {
    Replica& replica = r(id);
    for (size_t i = 0; replica.HasReady(); ++i) {
      CHECK_LT(i, kReadiesPerProcessMax) << "replica " << id << " never runs out of Readies";
      Ready rd = replica.TakeReady();
      for (Message& m : rd.send_now) net_.push_back(std::move(m));
      if (rd.persist) {
        for (Message& m : rd.send_after_persist) net_.push_back(std::move(m));
        replica.Advance();
      } else {
        CHECK(rd.send_after_persist.empty()) << "send_after_persist without a persist batch";
      }
      for (const Entry& e : rd.apply) applied_commands_[id] += e.value.commands.size();
      for (const LeadershipEvent& e : rd.events) {
        if (e.kind == LeadershipEvent::Kind::kBecameLeader) leader_ = id;
        if (e.kind == LeadershipEvent::Kind::kLostLeadership && leader_ == id) leader_ = kNoNode;
      }
      CHECK(rd.dropped.empty()) << "commands dropped: the leader lost its leadership";
    }
  }

  std::vector<std::unique_ptr<Replica>> replicas_;
  std::deque<Message> net_;
  std::vector<uint64_t> applied_commands_;  // by node id
  uint64_t delivered_ = 0;
  NodeId leader_ = kNoNode;
};

void BM_CoreRound(benchmark::State& state) {
  const auto batch = static_cast<size_t>(state.range(0));
  Group group;
  const NodeId leader = group.ElectLeader();
  Replica& replica = group.r(leader);

  const std::string payload(kPayloadBytes, 'p');
  const uint64_t applied_start = group.applied_commands(leader);
  const uint64_t delivered_start = group.delivered();
  const Slot chosen_start = replica.status().chosen_below;
  Slot compacted_at = chosen_start;
  uint64_t sequence = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < batch; ++i) {
      ++sequence;
      const ProposeResult result = replica.Propose(Command{42, sequence, 0, 0, 0, payload});
      CHECK(result.kind == ProposeResult::Kind::kOk) << "propose refused at command " << sequence;
    }
    group.DeliverAll();
    if (replica.status().chosen_below - compacted_at >= kCompactEverySlots) {
      group.Compact();
      compacted_at = replica.status().chosen_below;
    }
  }
  const uint64_t applied = group.applied_commands(leader) - applied_start;
  CHECK_EQ(applied, sequence) << "every proposed command must be applied at the leader";
  const auto slots = static_cast<double>(replica.status().chosen_below - chosen_start);
  const auto messages = static_cast<double>(group.delivered() - delivered_start);

  state.SetItemsProcessed(static_cast<int64_t>(applied));
  state.counters["slots/s"] = benchmark::Counter(slots, benchmark::Counter::kIsRate);
  state.counters["messages/s"] = benchmark::Counter(messages, benchmark::Counter::kIsRate);
  state.counters["cmds/slot"] = slots > 0 ? static_cast<double>(applied) / slots : 0;
  state.SetLabel(std::to_string(batch) + " x " + std::to_string(kPayloadBytes) +
                 " B commands per round, 3 replicas");
}

BENCHMARK(BM_CoreRound)
    ->ArgName("batch")
    ->Arg(1)
    ->Arg(16)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);

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
