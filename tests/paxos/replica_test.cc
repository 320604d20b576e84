// Replicas driven by hand through a tiny in-test network: a FIFO of messages, a drop rule, and a
// runtime that "persists" each Ready::persist at once, then sends send_after_persist and calls
// Advance(). Every Ready is checked against the durability contract of paxos/ready.h as it is
// carried out (see Cluster::Process).
#include "paxos/replica.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "paxos/message.h"
#include "paxos/options.h"
#include "paxos/ready.h"
#include "paxos/types.h"

namespace ballot::paxos {

// Readable values in gtest failure messages (found by ADL, so outside the unnamed namespace).
void PrintTo(const Value& v, std::ostream* os) {
  *os << "{epoch " << ToString(v.epoch) << (v.leader_start ? " leader_start" : "") << " [";
  for (const Command& c : v.commands)
    *os << c.client_id << "/" << c.sequence << ":" << c.payload << " ";
  *os << "]}";
}

namespace {

using Kind = LeadershipEvent::Kind;

// Hard bounds so that a livelock shows up as a test failure, never as a hang.
constexpr size_t kReadiesPerNodeMax = 1000;
constexpr size_t kDeliveriesPerRoundMax = 20000;

Options BaseOptions(NodeId id, size_t n, uint64_t seed) {
  Options o;
  o.id = id;
  for (NodeId m = 1; m <= n; ++m) o.members.push_back(m);
  o.seed = seed * 1000 + id;
  return o;
}

Command Cmd(uint64_t client, uint64_t seq, std::string payload) {
  return Command{client, seq, 0, 0, 0, std::move(payload)};
}

struct Node {
  Options options;
  std::unique_ptr<Replica> replica;
  // Everything synced by this node's persist batches: what it restarts from.
  Ballot durable_promised;
  std::map<Slot, Entry> durable_entries;
  Slot durable_chosen_below = 1;
  // What the runtime did with this incarnation's Readies.
  std::vector<Entry> applied;  // in the order handed out
  std::vector<LeadershipEvent> events;
  std::vector<ReadState> reads;
  std::vector<ReadFailure> failed_reads;
  std::vector<Command> dropped;
  Slot compacted_below = 1;  // slots below this were dropped by CompactBelow
  bool disk_hung = false;
  std::optional<Ready> stuck;  // the persist batch (and what waits on it) of a hung disk
};

class Cluster {
 public:
  // true: drop the message. Rules apply when a message is sent, so a message already on its way
  // (delayed) when a partition starts still arrives.
  using Rule = std::function<bool(const Message&)>;

  explicit Cluster(size_t n, uint64_t seed = 1,
                   const std::function<void(Options*)>& tweak = nullptr) {
    for (NodeId id = 1; id <= n; ++id) {
      Node node;
      node.options = BaseOptions(id, n, seed);
      if (tweak) tweak(&node.options);
      auto created = Replica::Create(node.options, DurableState{});
      EXPECT_TRUE(created.ok()) << created.status().ToString();
      node.replica = std::move(created).value();
      nodes_.push_back(std::move(node));
    }
  }

  size_t size() const { return nodes_.size(); }
  Node& node(NodeId id) { return nodes_.at(id - 1); }
  Replica& r(NodeId id) { return *node(id).replica; }
  void SetDropRule(Rule rule) { drop_ = std::move(rule); }
  void ClearDropRule() { drop_ = nullptr; }
  // Messages matching `rule` arrive `ticks` ticks late (at the start of a later Tick()).
  void SetDelayRule(Rule rule, int ticks) {
    delay_ = std::move(rule);
    delay_ticks_ = ticks;
  }
  // Drops everything to and from `id`.
  void Isolate(NodeId id) {
    SetDropRule([id](const Message& m) { return m.from == id || m.to == id; });
  }
  size_t delivered() const { return delivered_; }
  std::vector<Message>& log() { return sent_log_; }

  // Carries out every Ready of one node: checks it, persists, sends, advances.
  void Process(NodeId id) {
    Node& n = node(id);
    for (size_t i = 0; n.replica->HasReady(); ++i) {
      if (i >= kReadiesPerNodeMax) {
        ADD_FAILURE() << "node " << id << " never runs out of Readies";
        return;
      }
      Carry(id, n.replica->TakeReady(), /*advance=*/true);
    }
  }

  // The disk of `id` stops completing syncs: its next persist batch stays outstanding (nothing
  // durable, nothing sent after it) until UnhangDisk.
  void HangDisk(NodeId id) { node(id).disk_hung = true; }
  void UnhangDisk(NodeId id) {
    Node& n = node(id);
    n.disk_hung = false;
    if (!n.stuck) return;
    Ready rd = std::move(*n.stuck);
    n.stuck.reset();
    Record(&n, *rd.persist);
    CheckAfterPersist(n, rd);
    for (Message& m : rd.send_after_persist) Send(std::move(m));
    n.replica->Advance();
    Process(id);
  }

  // Carries out one Ready: checks it, sends, persists; Advance() only if `advance` (a test that
  // holds a sync outstanding calls Replica::Advance itself later).
  void Carry(NodeId id, Ready rd, bool advance) {
    Node& n = node(id);
    CheckBeforePersist(n, rd);
    for (Message& m : rd.send_now) Send(std::move(m));
    if (rd.persist && n.disk_hung) {
      Ready stuck;
      stuck.persist = std::move(rd.persist);
      stuck.send_after_persist = std::move(rd.send_after_persist);
      n.stuck = std::move(stuck);
      rd.send_after_persist.clear();
    } else if (rd.persist) {
      Record(&n, *rd.persist);
      CheckAfterPersist(n, rd);
      for (Message& m : rd.send_after_persist) Send(std::move(m));
      if (advance) n.replica->Advance();
    } else if (!rd.send_after_persist.empty()) {
      ADD_FAILURE() << "node " << id << ": send_after_persist without a persist batch";
    }
    for (Entry& e : rd.apply) n.applied.push_back(std::move(e));
    for (auto& e : rd.events) n.events.push_back(e);
    for (auto& x : rd.reads) n.reads.push_back(x);
    for (auto& x : rd.failed_reads) n.failed_reads.push_back(x);
    for (auto& x : rd.dropped) n.dropped.push_back(std::move(x));
    if (rd.snapshot_needed) InstallSnapshotFrom(rd.snapshot_needed->from, id);
  }

  // What a runtime does on Ready::snapshot_needed: restore the state machine from the source's
  // snapshot (here: the source's applied entries below its compaction point) and tell the core.
  void InstallSnapshotFrom(NodeId source, NodeId id) {
    const Slot below = node(source).compacted_below;
    Node& n = node(id);
    Slot next = n.applied.empty() ? 1 : n.applied.back().slot + 1;
    for (const Entry& e : node(source).applied) {
      if (e.slot >= next && e.slot < below) n.applied.push_back(e);
    }
    n.replica->InstallSnapshot(below, n.replica->configuration());
    n.compacted_below = std::max(n.compacted_below, below);
  }

  void ProcessAll() {
    for (NodeId id = 1; id <= size(); ++id) Process(id);
  }

  // Delivers messages (and everything they cause) until the network is empty.
  // False (with a test failure) if it never quiets down.
  bool DeliverAll() {
    ProcessAll();
    for (size_t i = 0; !net_.empty(); ++i) {
      if (i >= kDeliveriesPerRoundMax) {
        std::ostringstream tail;
        for (size_t k = 0; k < std::min<size_t>(net_.size(), 6); ++k) {
          tail << "\n  " << ToString(net_[k]);
        }
        ADD_FAILURE() << "the network never quiets down (" << net_.size()
                      << " messages queued); first queued:" << tail.str();
        net_.clear();
        return false;
      }
      Message m = std::move(net_.front());
      net_.pop_front();
      if (m.to == kNoNode || m.to > size()) {
        ADD_FAILURE() << "message to a non-member: " << ToString(m);
        continue;
      }
      ++delivered_;
      r(m.to).Step(m);
      Process(m.to);
    }
    return true;
  }

  // One tick everywhere, then everything delivered.
  bool Tick() {
    for (auto it = delayed_.begin(); it != delayed_.end();) {
      if (--it->first <= 0) {
        net_.push_back(std::move(it->second));
        it = delayed_.erase(it);
      } else {
        ++it;
      }
    }
    for (NodeId id = 1; id <= size(); ++id) {
      r(id).Tick();
      Process(id);
    }
    return DeliverAll();
  }
  bool Ticks(int n) {
    for (int i = 0; i < n; ++i) {
      if (!Tick()) return false;
    }
    return true;
  }

  // The one replica that leads with a usable epoch, or kNoNode.
  NodeId UsableLeader() {
    NodeId found = kNoNode;
    for (NodeId id = 1; id <= size(); ++id) {
      if (r(id).IsLeader() && !r(id).UsableEpoch().IsZero()) {
        EXPECT_EQ(found, kNoNode) << "two usable leaders: " << found << " and " << id;
        found = id;
      }
    }
    return found;
  }
  // Ticks until some replica other than `not_this` leads with a usable epoch.
  NodeId TickUntilLeader(int max_ticks, NodeId not_this = kNoNode) {
    for (int i = 0; i < max_ticks; ++i) {
      NodeId l = UsableLeader();
      if (l != kNoNode && l != not_this) return l;
      if (!Tick()) return kNoNode;
    }
    NodeId l = UsableLeader();
    return l != not_this ? l : kNoNode;
  }

  // Ticks until every replica in `ids` has applied everything below `slot`.
  bool TickUntilApplied(const std::vector<NodeId>& ids, Slot slot, int max_ticks) {
    for (int i = 0; i <= max_ticks; ++i) {
      bool all = true;
      for (NodeId id : ids) all = all && r(id).status().applied_below >= slot;
      if (all) return true;
      if (!Tick()) return false;
    }
    return false;
  }

  // The restart of `id` from exactly what it synced (its state machine starts from scratch).
  void Restart(NodeId id) {
    Node& n = node(id);
    DurableState d;
    d.promised = n.durable_promised;
    for (const auto& [slot, e] : n.durable_entries) d.entries.push_back(e);
    d.chosen_below = n.durable_chosen_below;
    d.applied_below = 1;
    n.replica = std::make_unique<Replica>(n.options, std::move(d));
    n.applied.clear();
    n.events.clear();
    n.reads.clear();
    n.failed_reads.clear();
    n.dropped.clear();
  }

  void CompactBelow(NodeId id, Slot slot) {
    r(id).CompactBelow(slot);
    node(id).compacted_below = std::max(node(id).compacted_below, slot);
  }

  // Every slot applied by two replicas holds the same value, and every replica applied a
  // gap-free prefix of the log.
  void ExpectAgreement() {
    std::map<Slot, std::pair<NodeId, Value>> first;
    for (NodeId id = 1; id <= size(); ++id) {
      const std::vector<Entry>& applied = node(id).applied;
      for (size_t i = 0; i < applied.size(); ++i) {
        const Entry& e = applied[i];
        if (i > 0) {
          EXPECT_EQ(e.slot, applied[i - 1].slot + 1) << "node " << id << " skipped a slot";
        }
        auto [it, inserted] = first.try_emplace(e.slot, id, e.value);
        if (!inserted) {
          EXPECT_EQ(it->second.second, e.value)
              << "slot " << e.slot << ": node " << it->second.first << " and node " << id
              << " applied different values (" << DescribeValue(it->second.second) << " vs "
              << DescribeValue(e.value) << ")";
        }
      }
    }
  }

  static std::string DescribeValue(const Value& v) {
    std::string s = "epoch " + ToString(v.epoch) + (v.leader_start ? " start" : "") + " [";
    for (const Command& c : v.commands) s += c.payload + " ";
    return s + "]";
  }

  // The payloads a replica applied, in order (no-ops and leader starts contribute nothing).
  std::vector<std::string> AppliedPayloads(NodeId id) {
    std::vector<std::string> out;
    for (const Entry& e : node(id).applied) {
      for (const Command& c : e.value.commands) out.push_back(c.payload);
    }
    return out;
  }

  size_t CountEvents(Kind kind) {
    size_t count = 0;
    for (NodeId id = 1; id <= size(); ++id) {
      for (const LeadershipEvent& e : node(id).events) count += e.kind == kind;
    }
    return count;
  }

 private:
  void Send(Message m) {
    sent_log_.push_back(m);
    if (drop_ && drop_(m)) return;
    if (delay_ && delay_(m)) {
      delayed_.emplace_back(delay_ticks_, std::move(m));
      return;
    }
    net_.push_back(std::move(m));
  }

  static void Record(Node* n, const PersistBatch& b) {
    if (b.promised) {
      EXPECT_GE(*b.promised, n->durable_promised)
          << "node " << n->options.id << ": the promise went down";
      n->durable_promised = *b.promised;
    }
    for (const Entry& e : b.entries) n->durable_entries[e.slot] = e;
    if (b.chosen_below) {
      EXPECT_GE(*b.chosen_below, n->durable_chosen_below) << "chosen_below went down";
      n->durable_chosen_below = *b.chosen_below;
    }
  }

  // A reply that vouches for state must find that state durable: an ok Promise for its ballot,
  // an ok Accepted for every slot it names at its ballot.
  static bool Backed(const Node& n, const Message& m, std::string* why) {
    if (m.type == MessageType::kPromise && m.ok && n.durable_promised < m.ballot) {
      *why = "promise of " + ToString(m.ballot) + " but durable promise is " +
             ToString(n.durable_promised);
      return false;
    }
    if (m.type == MessageType::kAccepted && m.ok) {
      for (Slot s : m.slots) {
        if (s < n.compacted_below) continue;
        auto it = n.durable_entries.find(s);
        if (it == n.durable_entries.end() || it->second.ballot != m.ballot) {
          *why = "accepted slot " + std::to_string(s) + " at " + ToString(m.ballot) +
                 " which is not durable";
          return false;
        }
      }
    }
    return true;
  }

  void CheckBeforePersist(const Node& n, const Ready& rd) {
    std::string why;
    for (const Message& m : rd.send_now) {
      EXPECT_TRUE(Backed(n, m, &why))
          << "node " << n.options.id << " send_now " << ToString(m) << ": " << why;
    }
    // Applied values must already be durable here (not merely in this batch).
    for (const Entry& e : rd.apply) {
      auto it = n.durable_entries.find(e.slot);
      EXPECT_TRUE(it != n.durable_entries.end() && it->second.value == e.value)
          << "node " << n.options.id << " applies slot " << e.slot << " before it is durable";
    }
  }

  void CheckAfterPersist(const Node& n, const Ready& rd) {
    std::string why;
    for (const Message& m : rd.send_after_persist) {
      EXPECT_TRUE(Backed(n, m, &why))
          << "node " << n.options.id << " send_after_persist " << ToString(m) << ": " << why;
    }
  }

  std::vector<Node> nodes_;
  std::deque<Message> net_;
  std::vector<Message> sent_log_;
  Rule drop_;
  Rule delay_;
  int delay_ticks_ = 0;
  std::vector<std::pair<int, Message>> delayed_;  // ticks left, message
  size_t delivered_ = 0;
};

// ----------------------------------------------------------------------------------------------
// Elections

TEST(ReplicaElectionTest, ALeaderIsElectedAndExactlyOneNodeReportsIt) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c(3, seed);
    // Nobody may lead before any timeout can have fired.
    ASSERT_TRUE(c.Ticks(5));
    EXPECT_EQ(c.CountEvents(Kind::kBecameLeader), 0u);
    const NodeId leader = c.TickUntilLeader(60);
    ASSERT_NE(leader, kNoNode) << "no leader after 65 ticks";
    ASSERT_TRUE(c.Ticks(40));  // a stable leader stays
    EXPECT_EQ(c.UsableLeader(), leader);
    EXPECT_EQ(c.CountEvents(Kind::kBecameLeader), 1u);
    EXPECT_EQ(c.CountEvents(Kind::kLostLeadership), 0u);
    ASSERT_EQ(c.node(leader).events.size(), 1u);
    const LeadershipEvent& ev = c.node(leader).events[0];
    EXPECT_EQ(ev.epoch, c.r(leader).UsableEpoch());
    EXPECT_EQ(ev.epoch.node(), leader);
    EXPECT_EQ(ev.start_slot, 1u) << "a fresh log: the leader_start entry is slot 1";
    for (NodeId id = 1; id <= 3; ++id) {
      ReplicaStatus s = c.r(id).status();
      EXPECT_EQ(s.leader, leader) << "node " << id;
      EXPECT_EQ(s.leader_epoch, ev.epoch) << "node " << id;
      EXPECT_EQ(s.role, id == leader ? Role::kLeader : Role::kFollower);
      EXPECT_GE(s.chosen_below, 2u) << "node " << id << " learned the leader_start entry";
    }
    EXPECT_TRUE(c.r(leader).status().leader_usable);
    c.ExpectAgreement();
  }
}

TEST(ReplicaElectionTest, BecameLeaderIsRaisedOnlyOnceItsStartSlotIsChosen) {
  Cluster c(3, 2);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const LeadershipEvent& ev = c.node(leader).events.at(0);
  // The leader_start entry is in the log the leader applied, at start_slot, with its epoch.
  bool found = false;
  for (const Entry& e : c.node(leader).applied) {
    if (e.slot == ev.start_slot) {
      found = true;
      EXPECT_TRUE(e.value.leader_start);
      EXPECT_EQ(e.value.epoch, ev.epoch);
    }
  }
  EXPECT_TRUE(found);
}

TEST(ReplicaElectionTest, ProposeOnAFollowerReturnsNotLeaderWithTheHint) {
  Cluster c(3, 3);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  for (NodeId id = 1; id <= 3; ++id) {
    if (id == leader) continue;
    ProposeResult p = c.r(id).Propose(Cmd(1, 1, "x"));
    EXPECT_EQ(p.kind, ProposeResult::Kind::kNotLeader);
    EXPECT_EQ(p.leader_hint, leader);
    ProposeResult rd = c.r(id).Read(9);
    EXPECT_EQ(rd.kind, ProposeResult::Kind::kNotLeader);
    EXPECT_EQ(rd.leader_hint, leader);
  }
  // Before any election nobody knows a leader.
  Cluster fresh(3, 3);
  ProposeResult p = fresh.r(1).Propose(Cmd(1, 1, "x"));
  EXPECT_EQ(p.kind, ProposeResult::Kind::kNotLeader);
  EXPECT_EQ(p.leader_hint, kNoNode);
}

// ----------------------------------------------------------------------------------------------
// Replication

TEST(ReplicaReplicationTest, ProposalsAreAppliedOnAllThreeInTheSameOrder) {
  Cluster c(3, 4, [](Options* o) { o->batch_commands_max = 3; });
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  std::vector<std::string> proposed;
  uint64_t seq = 0;
  for (int round = 0; round < 6; ++round) {
    for (int k = 0; k < 1 + round; ++k) {
      std::string payload = "c" + std::to_string(++seq);
      ProposeResult p = c.r(leader).Propose(Cmd(7, seq, payload));
      ASSERT_EQ(p.kind, ProposeResult::Kind::kOk);
      proposed.push_back(payload);
    }
    if (round % 2 == 0) {
      ASSERT_TRUE(c.DeliverAll());  // some rounds go out before the next tick
    } else {
      ASSERT_TRUE(c.Tick());
    }
  }
  const Slot target = c.r(leader).status().chosen_below;
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, target, 30));
  for (NodeId id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.AppliedPayloads(id), proposed) << "node " << id;
  }
  c.ExpectAgreement();
  // Batches respect batch_commands_max, and batching did happen.
  size_t largest = 0;
  for (const Entry& e : c.node(leader).applied) {
    EXPECT_LE(e.value.commands.size(), 3u) << "slot " << e.slot;
    largest = std::max(largest, e.value.commands.size());
  }
  EXPECT_GT(largest, 1u);
}

// Group commit drives batching: an idle leader proposes at once; commands that arrive while its
// batch syncs wait and then share one slot; a full batch does not wait. With pacing off, each
// Ready cuts its own slot.
std::vector<Entry> AcceptedSlots(const Ready& rd, NodeId to) {
  std::vector<Entry> out;
  for (const Message& m : rd.send_now) {
    if (m.type == MessageType::kAccept && m.to == to)
      out.insert(out.end(), m.entries.begin(), m.entries.end());
  }
  return out;
}

TEST(ReplicaReplicationTest, NewSlotsWaitForTheLeadersSyncAndThenShareOne) {
  for (bool pace : {true, false}) {
    SCOPED_TRACE(pace ? "paced" : "not paced");
    Cluster c(3, 6, [pace](Options* o) {
      o->pace_proposals_by_sync = pace;
      o->batch_commands_max = 4;
    });
    const NodeId leader = c.TickUntilLeader(60);
    ASSERT_NE(leader, kNoNode);
    ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, c.r(leader).status().chosen_below, 30));
    const NodeId follower = leader == 1 ? 2 : 1;
    uint64_t seq = 0;

    // Idle: the first command goes out in the same Ready that persists it.
    ASSERT_EQ(c.r(leader).Propose(Cmd(9, ++seq, "a")).kind, ProposeResult::Kind::kOk);
    Ready first = c.r(leader).TakeReady();
    ASSERT_TRUE(first.persist.has_value());
    ASSERT_EQ(AcceptedSlots(first, follower).size(), 1u);
    c.Carry(leader, std::move(first), /*advance=*/false);  // the sync stays outstanding

    // While that batch is being synced, two more commands arrive one Ready at a time.
    std::vector<Entry> sent;
    for (const char* p : {"b", "c"}) {
      ASSERT_EQ(c.r(leader).Propose(Cmd(9, ++seq, p)).kind, ProposeResult::Kind::kOk);
      Ready during = c.r(leader).TakeReady();
      EXPECT_FALSE(during.persist.has_value());  // one persist outstanding at a time
      for (Entry& e : AcceptedSlots(during, follower)) sent.push_back(std::move(e));
      c.Carry(leader, std::move(during), /*advance=*/false);
    }
    if (pace) {
      EXPECT_TRUE(sent.empty()) << "a slot was cut while the leader's sync was outstanding";
    } else {
      ASSERT_EQ(sent.size(), 2u);  // one slot per Ready
      EXPECT_EQ(sent[0].value.commands.size(), 1u);
    }
    // A full batch goes out without waiting.
    for (const char* p : {"d", "e", "f", "g"}) {
      ASSERT_EQ(c.r(leader).Propose(Cmd(9, ++seq, p)).kind, ProposeResult::Kind::kOk);
    }
    Ready full = c.r(leader).TakeReady();
    const std::vector<Entry> full_slots = AcceptedSlots(full, follower);
    ASSERT_FALSE(full_slots.empty());
    if (pace) {
      EXPECT_EQ(full_slots[0].value.commands.size(), 4u);  // b, c, d, e: batch_commands_max
    }
    c.Carry(leader, std::move(full), /*advance=*/false);
    // The sync completes: whatever still waits goes out, and every replica applies everything
    // in proposal order.
    c.r(leader).Advance();
    auto applied_by = [&c](NodeId id) {
      std::vector<std::string> out;
      for (const Entry& e : c.node(id).applied) {
        for (const Command& cmd : e.value.commands) {
          if (cmd.client_id == 9) out.push_back(cmd.payload);
        }
      }
      return out;
    };
    const std::vector<std::string> want = {"a", "b", "c", "d", "e", "f", "g"};
    for (int tick = 0; tick < 50 && applied_by(follower) != want; ++tick) ASSERT_TRUE(c.Tick());
    for (NodeId id = 1; id <= 3; ++id) EXPECT_EQ(applied_by(id), want) << "node " << id;
    c.ExpectAgreement();
  }
}

TEST(ReplicaReplicationTest, AnAcceptedReplyWaitsForThePersistOfWhatItAccepted) {
  Cluster c(3, 5);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const NodeId follower = leader == 1 ? 2 : 1;
  ASSERT_EQ(c.r(leader).Propose(Cmd(1, 1, "durable")).kind, ProposeResult::Kind::kOk);

  // Carry out the leader's Ready by hand and pick its Accept to the follower.
  Ready lr = c.r(leader).TakeReady();
  std::optional<Message> accept;
  for (const Message& m : lr.send_now) {
    if (m.type == MessageType::kAccept && m.to == follower) accept = m;
  }
  ASSERT_TRUE(accept.has_value()) << "the leader sends the new slot at once";
  ASSERT_EQ(accept->entries.size(), 1u);
  const Slot slot = accept->entries[0].slot;
  ASSERT_TRUE(lr.persist.has_value()) << "the leader's own accept is written too";
  for (const Message& m : lr.send_now) {
    EXPECT_FALSE(m.type == MessageType::kAccepted && m.to != leader)
        << "leader replied before persisting: " << ToString(m);
  }

  c.r(follower).Step(*accept);
  Ready fr = c.r(follower).TakeReady();
  ASSERT_TRUE(fr.persist.has_value());
  bool persisted = false;
  for (const Entry& e : fr.persist->entries) {
    persisted = persisted || (e.slot == slot && e.ballot == accept->ballot &&
                              e.value == accept->entries[0].value);
  }
  EXPECT_TRUE(persisted) << "the accepted entry is in this persist batch";
  for (const Message& m : fr.send_now) {
    EXPECT_NE(m.type, MessageType::kAccepted) << "sent before persist: " << ToString(m);
  }
  bool held = false;
  for (const Message& m : fr.send_after_persist) {
    if (m.type == MessageType::kAccepted && m.ok &&
        std::find(m.slots.begin(), m.slots.end(), slot) != m.slots.end()) {
      held = true;
    }
  }
  EXPECT_TRUE(held) << "the Accepted reply waits in send_after_persist";
  // While the batch is outstanding, a duplicate Accept must not get its reply out either.
  c.r(follower).Step(*accept);
  Ready during = c.r(follower).TakeReady();
  EXPECT_FALSE(during.persist.has_value()) << "at most one persist batch outstanding";
  for (const Message& m : during.send_now) EXPECT_NE(m.type, MessageType::kAccepted);
  c.r(follower).Advance();
  // Now the same Accept again accepts nothing new, so its reply may go at once.
  c.r(follower).Step(*accept);
  Ready again = c.r(follower).TakeReady();
  EXPECT_FALSE(again.persist.has_value());
  size_t acks = 0;
  for (const Message& m : again.send_now) acks += m.type == MessageType::kAccepted && m.ok;
  EXPECT_GE(acks, 1u);
  c.r(leader).Advance();
}

TEST(ReplicaReplicationTest, APromiseWaitsForThePersistOfThePromise) {
  Cluster c(3, 6);
  // Hand-made prepare from node 2 to node 1 after the restart lease is over.
  for (int i = 0; i < 7; ++i) c.r(1).Tick();
  (void)c.r(1).TakeReady();
  if (c.r(1).HasReady()) (void)c.r(1).TakeReady();
  Message prepare;
  prepare.type = MessageType::kPrepare;
  prepare.from = 2;
  prepare.to = 1;
  prepare.ballot = Ballot(5, 2);
  prepare.slot = 1;
  c.r(1).Step(prepare);
  Ready rd = c.r(1).TakeReady();
  ASSERT_TRUE(rd.persist.has_value());
  ASSERT_TRUE(rd.persist->promised.has_value());
  EXPECT_EQ(*rd.persist->promised, Ballot(5, 2));
  for (const Message& m : rd.send_now) EXPECT_NE(m.type, MessageType::kPromise) << ToString(m);
  ASSERT_EQ(rd.send_after_persist.size(), 1u);
  EXPECT_EQ(rd.send_after_persist[0].type, MessageType::kPromise);
  EXPECT_TRUE(rd.send_after_persist[0].ok);
  c.r(1).Advance();
  // A refusal promises nothing and goes at once.
  prepare.ballot = Ballot(4, 3);
  prepare.from = 3;
  c.r(1).Step(prepare);
  Ready refusal = c.r(1).TakeReady();
  EXPECT_FALSE(refusal.persist.has_value());
  ASSERT_EQ(refusal.send_now.size(), 1u);
  EXPECT_EQ(refusal.send_now[0].type, MessageType::kPromise);
  EXPECT_FALSE(refusal.send_now[0].ok);
  EXPECT_EQ(refusal.send_now[0].promised, Ballot(5, 2));
}

TEST(ReplicaReplicationTest, AFollowerThatMissedMessagesCatchesUp) {
  Cluster c(3, 7);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const NodeId lagger = leader == 3 ? 2 : 3;
  c.SetDropRule([lagger](const Message& m) { return m.to == lagger; });
  uint64_t seq = 0;
  for (int t = 0; t < 30; ++t) {
    ++seq;
    ASSERT_EQ(c.r(leader).Propose(Cmd(3, seq, "m" + std::to_string(seq))).kind,
              ProposeResult::Kind::kOk);
    ASSERT_TRUE(c.Tick());
  }
  const Slot target = c.r(leader).status().chosen_below;
  EXPECT_LT(c.r(lagger).status().applied_below, target) << "the lagger really missed slots";
  EXPECT_EQ(c.UsableLeader(), leader) << "an isolated follower must not depose the leader";
  c.ClearDropRule();
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, target, 40))
      << "lagger applied_below=" << c.r(lagger).status().applied_below << " target=" << target;
  EXPECT_EQ(c.AppliedPayloads(lagger), c.AppliedPayloads(leader));
  EXPECT_EQ(c.UsableLeader(), leader) << "rejoining must not depose the leader either";
  c.ExpectAgreement();
}

TEST(ReplicaReplicationTest, DuplicatedAndReorderedDeliveryIsHarmless) {
  Cluster c(3, 8);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  uint64_t seq = 0;
  for (int t = 0; t < 10; ++t) {
    ++seq;
    ASSERT_EQ(c.r(leader).Propose(Cmd(4, seq, "d" + std::to_string(seq))).kind,
              ProposeResult::Kind::kOk);
    ASSERT_TRUE(c.Tick());
    // Replay everything sent so far, newest first, a second time.
    std::vector<Message> replay = c.log();
    std::reverse(replay.begin(), replay.end());
    for (const Message& m : replay) {
      c.r(m.to).Step(m);
      c.Process(m.to);
    }
    c.log().clear();
    ASSERT_TRUE(c.DeliverAll());
  }
  const Slot target = c.r(leader).status().chosen_below;
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, target, 30));
  for (NodeId id = 1; id <= 3; ++id) EXPECT_EQ(c.AppliedPayloads(id).size(), 10u) << id;
  EXPECT_EQ(c.UsableLeader(), leader);
  c.ExpectAgreement();
}

// ----------------------------------------------------------------------------------------------
// Reads

TEST(ReplicaReadTest, AReadOnTheLeaderYieldsAReadState) {
  Cluster c(3, 9);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  ASSERT_EQ(c.r(leader).Propose(Cmd(1, 1, "w")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(3));
  const Slot chosen = c.r(leader).status().chosen_below;
  ASSERT_TRUE(c.r(leader).status().lease_held) << "a healthy leader holds its lease";
  ASSERT_EQ(c.r(leader).Read(77).kind, ProposeResult::Kind::kOk);
  c.Process(leader);  // served from the lease: no round trip needed
  ASSERT_EQ(c.node(leader).reads.size(), 1u);
  EXPECT_EQ(c.node(leader).reads[0].read_id, 77u);
  EXPECT_EQ(c.node(leader).reads[0].read_below, chosen)
      << "the read must see every write chosen before it";
}

TEST(ReplicaReadTest, WithoutALeaseAReadWaitsForAQuorumRound) {
  Cluster c(3, 10);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  // Lose heartbeat replies long enough for the lease (6 - 2 ticks) to run out, but not long
  // enough for check-quorum (10 ticks) to depose the leader.
  c.SetDropRule([](const Message& m) { return m.type == MessageType::kHeartbeatReply; });
  ASSERT_TRUE(c.Ticks(6));
  ASSERT_TRUE(c.r(leader).IsLeader());
  ASSERT_FALSE(c.r(leader).status().lease_held);
  ASSERT_EQ(c.r(leader).Read(5).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.DeliverAll());
  EXPECT_TRUE(c.node(leader).reads.empty()) << "no quorum has confirmed the leadership yet";
  c.ClearDropRule();
  ASSERT_TRUE(c.Tick());
  ASSERT_EQ(c.node(leader).reads.size(), 1u);
  EXPECT_EQ(c.node(leader).reads[0].read_id, 5u);
  EXPECT_GE(c.node(leader).reads[0].read_below, c.node(leader).events.at(0).start_slot + 1);
}

TEST(ReplicaReadTest, PendingReadsFailWhenLeadershipIsLost) {
  Cluster c(3, 11);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  c.Isolate(leader);
  ASSERT_TRUE(c.Ticks(7));  // lease gone, still leader (check-quorum is 10)
  ASSERT_TRUE(c.r(leader).IsLeader());
  ASSERT_EQ(c.r(leader).Read(31).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(10));
  EXPECT_FALSE(c.r(leader).IsLeader());
  EXPECT_TRUE(c.node(leader).reads.empty());
  ASSERT_EQ(c.node(leader).failed_reads.size(), 1u);
  EXPECT_EQ(c.node(leader).failed_reads[0].read_id, 31u);
}

TEST(ReplicaReadTest, ReadsWaitingForAQuorumAreBoundedByReadsPendingMax) {
  Cluster c(3, 46, [](Options* o) { o->reads_pending_max = 2; });
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  c.SetDropRule([](const Message& m) { return m.type == MessageType::kHeartbeatReply; });
  ASSERT_TRUE(c.Ticks(6));
  ASSERT_FALSE(c.r(leader).status().lease_held);
  EXPECT_EQ(c.r(leader).Read(1).kind, ProposeResult::Kind::kOk);
  EXPECT_EQ(c.r(leader).Read(2).kind, ProposeResult::Kind::kOk);
  ProposeResult third = c.r(leader).Read(3);
  EXPECT_EQ(third.kind, ProposeResult::Kind::kOverloaded);
  c.ClearDropRule();
  ASSERT_TRUE(c.Tick());
  ASSERT_EQ(c.node(leader).reads.size(), 2u);
  EXPECT_EQ(c.node(leader).reads[0].read_id, 1u);
  EXPECT_EQ(c.node(leader).reads[1].read_id, 2u);
  EXPECT_EQ(c.r(leader).Read(3).kind, ProposeResult::Kind::kOk) << "room again";
}

TEST(ReplicaReplicationTest, ProposeReturnsOverloadedAtPendingCommandsMax) {
  Cluster c(3, 47, [](Options* o) { o->pending_commands_max = 2; });
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  EXPECT_EQ(c.r(leader).Propose(Cmd(1, 1, "a")).kind, ProposeResult::Kind::kOk);
  EXPECT_EQ(c.r(leader).Propose(Cmd(1, 2, "b")).kind, ProposeResult::Kind::kOk);
  ProposeResult p = c.r(leader).Propose(Cmd(1, 3, "c"));
  EXPECT_EQ(p.kind, ProposeResult::Kind::kOverloaded);
  EXPECT_EQ(p.leader_hint, leader);
  ASSERT_TRUE(c.Ticks(2));
  EXPECT_EQ(c.r(leader).Propose(Cmd(1, 3, "c")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(2));
  EXPECT_EQ(c.AppliedPayloads(leader), std::vector<std::string>({"a", "b", "c"}));
}

TEST(ReplicaReplicationTest, MessagesForOthersAreDroppedAndStrangersMeetTheLease) {
  Cluster c(3, 48);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const NodeId f = leader == 1 ? 2 : 1;
  const ReplicaStatus before = c.r(f).status();
  const uint64_t dropped = c.r(f).counters().messages_dropped;
  Message m;
  m.type = MessageType::kPrepare;
  m.ballot = Ballot(99, 3);
  m.slot = 1;
  m.from = 3 == f ? 1 : 3;
  m.to = 6 - f - m.from;  // addressed to another replica
  c.r(f).Step(m);
  m.from = f;  // claims to come from the receiver itself
  m.to = f;
  c.r(f).Step(m);
  EXPECT_EQ(c.r(f).counters().messages_dropped, dropped + 2);
  EXPECT_FALSE(c.r(f).HasReady());
  // A node outside our configuration may talk to us (a member being added does; our view may
  // be the stale one). Its Prepare meets the acceptor's rules like anyone's: here the leader's
  // lease refuses it.
  m.ballot = Ballot(99, 9);
  m.from = 9;
  c.r(f).Step(m);
  EXPECT_EQ(c.r(f).status().promised, before.promised);
  Ready rd = c.r(f).TakeReady();
  ASSERT_EQ(rd.send_now.size(), 1u);
  EXPECT_EQ(rd.send_now[0].type, MessageType::kPromise);
  EXPECT_FALSE(rd.send_now[0].ok);
  EXPECT_EQ(rd.send_now[0].to, 9u);
}

// ----------------------------------------------------------------------------------------------
// Failover and restart

TEST(ReplicaFailoverTest, LeadershipMovesWhenTheLeaderIsCutOffWithAGreaterEpoch) {
  for (uint64_t seed = 12; seed <= 14; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c(3, seed);
    const NodeId old_leader = c.TickUntilLeader(60);
    ASSERT_NE(old_leader, kNoNode);
    const Ballot old_epoch = c.r(old_leader).UsableEpoch();
    ASSERT_EQ(c.r(old_leader).Propose(Cmd(1, 1, "before")).kind, ProposeResult::Kind::kOk);
    ASSERT_TRUE(c.Tick());

    c.Isolate(old_leader);
    ASSERT_EQ(c.r(old_leader).Propose(Cmd(1, 2, "stranded")).kind, ProposeResult::Kind::kOk);
    const NodeId new_leader = c.TickUntilLeader(80, old_leader);
    ASSERT_NE(new_leader, kNoNode) << "no new leader within 80 ticks";
    const Ballot new_epoch = c.r(new_leader).UsableEpoch();
    EXPECT_GT(new_epoch, old_epoch);
    EXPECT_EQ(new_epoch.node(), new_leader);
    ASSERT_TRUE(c.Ticks(15));
    EXPECT_FALSE(c.r(old_leader).IsLeader()) << "check-quorum makes the cut-off leader step down";
    ASSERT_FALSE(c.node(old_leader).events.empty());
    EXPECT_EQ(c.node(old_leader).events.back().kind, Kind::kLostLeadership);
    EXPECT_EQ(c.node(old_leader).events.back().epoch, old_epoch);

    // The new leader serves writes; the old one catches up after the partition heals.
    ASSERT_EQ(c.r(new_leader).Propose(Cmd(1, 3, "after")).kind, ProposeResult::Kind::kOk);
    c.ClearDropRule();
    ASSERT_TRUE(c.Ticks(5));
    const Slot target = c.r(new_leader).status().chosen_below;
    ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, target, 40));
    std::vector<std::string> want = {"before", "after"};
    for (NodeId id = 1; id <= 3; ++id) EXPECT_EQ(c.AppliedPayloads(id), want) << "node " << id;
    // "stranded" got a slot at the cut-off leader but no majority: it must never be applied.
    EXPECT_EQ(c.UsableLeader(), new_leader);
    EXPECT_EQ(c.r(old_leader).status().leader_epoch, new_epoch);
    c.ExpectAgreement();
  }
}

TEST(ReplicaFailoverTest, CommandsQueuedAtALeaderThatStepsDownAreReturnedAsDropped) {
  Cluster c(3, 15, [](Options* o) {
    o->window_slots_max = 1;
    o->batch_commands_max = 1;
  });
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  c.Isolate(leader);
  // Window 1: the first command takes the only slot, the others stay queued.
  for (uint64_t s = 1; s <= 3; ++s) {
    ASSERT_EQ(c.r(leader).Propose(Cmd(2, s, "q" + std::to_string(s))).kind,
              ProposeResult::Kind::kOk);
  }
  ASSERT_TRUE(c.Ticks(15));
  ASSERT_FALSE(c.r(leader).IsLeader());
  std::vector<Command> want = {Cmd(2, 2, "q2"), Cmd(2, 3, "q3")};
  EXPECT_EQ(c.node(leader).dropped, want);
}

TEST(ReplicaRestartTest, ARestartedReplicaKeepsItsPromise) {
  Cluster c(3, 16);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const Ballot epoch = c.r(leader).UsableEpoch();
  for (uint64_t s = 1; s <= 4; ++s) {
    ASSERT_EQ(c.r(leader).Propose(Cmd(5, s, "r" + std::to_string(s))).kind,
              ProposeResult::Kind::kOk);
  }
  ASSERT_TRUE(c.Ticks(3));
  const NodeId victim = leader == 1 ? 2 : 1;
  ASSERT_EQ(c.node(victim).durable_promised, epoch) << "the harness recorded the promise";
  const std::vector<std::string> before = c.AppliedPayloads(victim);
  ASSERT_EQ(before.size(), 4u);

  c.Restart(victim);
  c.Process(victim);  // the runtime carries out the restarted replica's first Ready
  ReplicaStatus s = c.r(victim).status();
  EXPECT_EQ(s.promised, epoch) << "the promise survives the restart";
  EXPECT_EQ(s.role, Role::kFollower);
  EXPECT_GE(s.chosen_below, c.node(victim).durable_chosen_below);

  // A prepare below the promise is refused, by the restarted replica, at once.
  const NodeId other = 6 - leader - victim;
  Message prepare;
  prepare.type = MessageType::kPrepare;
  prepare.from = other;
  prepare.to = victim;
  prepare.ballot = Ballot(epoch.round(), 0);
  ASSERT_LT(prepare.ballot, epoch);
  prepare.slot = 1;
  c.r(victim).Step(prepare);
  Ready rd = c.r(victim).TakeReady();
  bool refused = false;
  for (const Message& m : rd.send_now) {
    if (m.type == MessageType::kPromise) {
      EXPECT_FALSE(m.ok);
      EXPECT_EQ(m.promised, epoch);
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  for (const Message& m : rd.send_after_persist) EXPECT_NE(m.type, MessageType::kPromise);
  // An accept below the promise is refused too.
  Message accept;
  accept.type = MessageType::kAccept;
  accept.from = other;
  accept.to = victim;
  accept.ballot = Ballot(epoch.round(), 0);
  accept.entries.push_back(Entry{50, Ballot(), Value{accept.ballot, false, {Cmd(9, 9, "no")}}});
  c.r(victim).Step(accept);
  c.Process(victim);
  EXPECT_EQ(c.node(victim).durable_entries.count(50), 0u);

  // It re-applies its durable log from the start, and keeps up afterwards.
  ASSERT_TRUE(c.DeliverAll());
  ASSERT_EQ(c.r(leader).Propose(Cmd(5, 5, "r5")).kind, ProposeResult::Kind::kOk);
  const Slot target = c.r(leader).status().chosen_below + 1;
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, target, 30));
  std::vector<std::string> want = before;
  want.push_back("r5");
  EXPECT_EQ(c.AppliedPayloads(victim), want);
  EXPECT_EQ(c.UsableLeader(), leader);
  c.ExpectAgreement();
}

TEST(ReplicaRestartTest, ARestartedLeaderComesBackWithAHigherBallot) {
  Cluster c(3, 17);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const Ballot epoch = c.r(leader).UsableEpoch();
  ASSERT_EQ(c.r(leader).Propose(Cmd(6, 1, "x")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(2));
  c.Restart(leader);
  EXPECT_FALSE(c.r(leader).IsLeader());
  EXPECT_EQ(c.r(leader).status().promised, epoch);
  const NodeId next = c.TickUntilLeader(120);
  ASSERT_NE(next, kNoNode);
  EXPECT_GT(c.r(next).UsableEpoch(), epoch);
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, c.r(next).status().chosen_below, 30));
  for (NodeId id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.AppliedPayloads(id), std::vector<std::string>({"x"})) << "node " << id;
  }
  c.ExpectAgreement();
}

TEST(ReplicaFailoverTest, ACutOffLeaderLosesItsLeaseBeforeAnyoneElseLeads) {
  for (uint64_t seed = 22; seed <= 27; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c(3, seed);
    const NodeId old_leader = c.TickUntilLeader(60);
    ASSERT_NE(old_leader, kNoNode);
    ASSERT_TRUE(c.r(old_leader).status().lease_held);
    c.Isolate(old_leader);
    bool moved = false;
    for (int t = 0; t < 80; ++t) {
      ASSERT_TRUE(c.Tick());
      const bool old_lease = c.r(old_leader).status().lease_held;
      for (NodeId id = 1; id <= 3; ++id) {
        if (id == old_leader || !c.r(id).IsLeader()) continue;
        moved = true;
        EXPECT_FALSE(old_lease) << "tick " << t << ": node " << id
                                << " leads while the cut-off leader still serves lease reads";
      }
    }
    EXPECT_TRUE(moved);
  }
}

TEST(ReplicaFiveNodeTest, ProgressNeedsAMajorityAndResumesWhenItIsBack) {
  Cluster c(5, 28);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  std::vector<NodeId> followers;
  for (NodeId id = 1; id <= 5; ++id) {
    if (id != leader) followers.push_back(id);
  }
  std::set<NodeId> cut = {followers[0], followers[1]};
  c.SetDropRule([&cut](const Message& m) { return cut.count(m.from) || cut.count(m.to); });
  ASSERT_EQ(c.r(leader).Propose(Cmd(1, 1, "with3")).kind, ProposeResult::Kind::kOk);
  const Slot target = c.r(leader).status().chosen_below + 1;
  ASSERT_TRUE(c.TickUntilApplied({leader, followers[2], followers[3]}, target, 20))
      << "three of five is a majority";
  EXPECT_EQ(c.UsableLeader(), leader);

  cut.insert(followers[2]);  // now only two of five can talk
  ASSERT_EQ(c.r(leader).Propose(Cmd(1, 2, "with2")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(40));
  for (NodeId id = 1; id <= 5; ++id) {
    EXPECT_LT(c.r(id).status().applied_below, target + 1) << "node " << id << " without a majority";
    EXPECT_TRUE(c.r(id).UsableEpoch().IsZero()) << "node " << id << " leads without a majority";
  }
  EXPECT_FALSE(c.r(leader).IsLeader()) << "check-quorum";

  c.ClearDropRule();
  const NodeId next = c.TickUntilLeader(80);
  ASSERT_NE(next, kNoNode);
  ASSERT_EQ(c.r(next).Propose(Cmd(1, 3, "healed")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(3));
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3, 4, 5}, c.r(next).status().chosen_below, 40));
  const std::vector<std::string> first = c.AppliedPayloads(next);
  EXPECT_EQ(first.front(), "with3");
  EXPECT_EQ(first.back(), "healed");
  EXPECT_LE(first.size(), 3u) << "\"with2\" may or may not survive, but only once";
  for (NodeId id = 1; id <= 5; ++id) EXPECT_EQ(c.AppliedPayloads(id), first) << "node " << id;
  c.ExpectAgreement();
}

// ----------------------------------------------------------------------------------------------
// Scenarios run twice: as they are (they must pass), and with one of Options::planted switched on
// (the checks above must then fail). The second run shows that each check has teeth.

// Runs `scenario` and returns the messages of the test failures it raised, without failing.
template <typename F>
std::vector<std::string> CaptureFailures(F&& scenario) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    scenario();
  }
  std::vector<std::string> out;
  for (int i = 0; i < results.size(); ++i) out.push_back(results.GetTestPartResult(i).message());
  return out;
}

bool AnyContains(const std::vector<std::string>& messages, const std::string& want) {
  for (const std::string& m : messages) {
    if (m.find(want) != std::string::npos) return true;
  }
  return false;
}

std::function<void(Options*)> Plant(PlantedBugs planted) {
  return [planted](Options* o) { o->planted = planted; };
}

// Every Accepted/Promise reply is backed by durable state (checked by Cluster::Process).
void RepliesAreBackedByDurableState(PlantedBugs planted) {
  Cluster c(3, 30, Plant(planted));
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  for (uint64_t s = 1; s <= 3; ++s) {
    ASSERT_EQ(c.r(leader).Propose(Cmd(1, s, "p")).kind, ProposeResult::Kind::kOk);
    ASSERT_TRUE(c.Tick());
  }
  c.ExpectAgreement();
}

// A value the old leader saw chosen (and applied) but never announced must survive recovery.
void RecoveryKeepsAValueOnlyTheOldLeaderKnewWasChosen(PlantedBugs planted) {
  Cluster c(3, 31, Plant(planted));
  const NodeId old_leader = c.TickUntilLeader(60);
  ASSERT_NE(old_leader, kNoNode);
  // Only the old leader's Accepts carrying entries get out: the followers accept "x", their
  // votes come back, but no commit index that covers "x" ever reaches them.
  c.SetDropRule([old_leader](const Message& m) {
    return m.from == old_leader && !(m.type == MessageType::kAccept && !m.entries.empty());
  });
  ASSERT_EQ(c.r(old_leader).Propose(Cmd(1, 1, "x")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.DeliverAll());
  ASSERT_EQ(c.AppliedPayloads(old_leader), std::vector<std::string>({"x"}));
  for (NodeId id = 1; id <= 3; ++id) {
    if (id != old_leader) {
      ASSERT_TRUE(c.AppliedPayloads(id).empty()) << "node " << id;
    }
  }
  c.Isolate(old_leader);
  const NodeId next = c.TickUntilLeader(80, old_leader);
  ASSERT_NE(next, kNoNode);
  ASSERT_TRUE(c.Ticks(3));
  EXPECT_EQ(c.AppliedPayloads(next), std::vector<std::string>({"x"}))
      << "the new leader lost a chosen value";
  c.ExpectAgreement();
}

// A restarted replica keeps the promise it synced.
void RestartKeepsThePromise(PlantedBugs planted) {
  Cluster c(3, 32, Plant(planted));
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const Ballot epoch = c.r(leader).UsableEpoch();
  const NodeId victim = leader == 1 ? 2 : 1;
  c.Restart(victim);
  c.Process(victim);
  EXPECT_EQ(c.r(victim).status().promised, epoch) << "promise forgotten across a restart";
}

// A follower that missed one slot applies nothing past it.
void AFollowerNeverAppliesPastAMissingSlot(PlantedBugs planted) {
  Cluster c(3, 33, Plant(planted));
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const NodeId f = leader == 1 ? 2 : 1;
  const Slot missing = c.r(leader).status().chosen_below;
  c.SetDropRule([f, missing](const Message& m) {
    if (m.to != f) return false;
    if (m.type == MessageType::kCatchupReply) return true;
    if (m.type != MessageType::kAccept) return false;
    for (const Entry& e : m.entries) {
      if (e.slot == missing) return true;
    }
    return false;
  });
  for (uint64_t s = 1; s <= 3; ++s) {
    ASSERT_EQ(c.r(leader).Propose(Cmd(1, s, "g" + std::to_string(s))).kind,
              ProposeResult::Kind::kOk);
    ASSERT_TRUE(c.Tick());
  }
  EXPECT_EQ(c.r(f).status().applied_below, missing) << "applied past the missing slot";
  c.ExpectAgreement();
  c.ClearDropRule();
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, c.r(leader).status().chosen_below, 20));
  EXPECT_EQ(c.AppliedPayloads(f), c.AppliedPayloads(leader));
}

// Heartbeat replies arrive 6 ticks late. The leader must time its lease from when it sent the
// heartbeat, or it still serves lease reads after the acceptors' leases ran out and someone
// else was elected. election_ticks is close to lease_ticks so an election can follow quickly.
void LeaseIsTimedFromTheSend(PlantedBugs planted) {
  for (uint64_t seed = 34; seed <= 45; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c(3, seed, [planted](Options* o) {
      o->planted = planted;
      o->election_ticks = 7;
    });
    c.SetDelayRule([](const Message& m) { return m.type == MessageType::kHeartbeatReply; }, 6);
    const NodeId old_leader = c.TickUntilLeader(80);
    ASSERT_NE(old_leader, kNoNode);
    ASSERT_TRUE(c.Ticks(10));
    ASSERT_EQ(c.UsableLeader(), old_leader);
    c.Isolate(old_leader);
    for (int t = 0; t < 30; ++t) {
      ASSERT_TRUE(c.Tick());
      const bool old_lease = c.r(old_leader).status().lease_held;
      for (NodeId id = 1; id <= 3; ++id) {
        if (id == old_leader || !c.r(id).IsLeader()) continue;
        EXPECT_FALSE(old_lease) << "tick " << t << ": node " << id
                                << " leads while the cut-off leader still serves lease reads";
      }
    }
  }
}

TEST(ReplicaTeethTest, RepliesAreBackedByDurableState) {
  RepliesAreBackedByDurableState(PlantedBugs{});
  PlantedBugs bug;
  bug.ack_accept_before_durable = true;
  auto failures = CaptureFailures([&] { RepliesAreBackedByDurableState(bug); });
  EXPECT_TRUE(AnyContains(failures, "which is not durable"))
      << "the durability check missed ack_accept_before_durable (" << failures.size()
      << " failures)";
}

TEST(ReplicaTeethTest, RecoveryKeepsAValueOnlyTheOldLeaderKnewWasChosen) {
  RecoveryKeepsAValueOnlyTheOldLeaderKnewWasChosen(PlantedBugs{});
  PlantedBugs bug;
  bug.ignore_accepted_in_recovery = true;
  auto failures = CaptureFailures([&] { RecoveryKeepsAValueOnlyTheOldLeaderKnewWasChosen(bug); });
  EXPECT_TRUE(AnyContains(failures, "applied different values"))
      << "agreement check missed ignore_accepted_in_recovery (" << failures.size() << ")";
}

TEST(ReplicaTeethTest, RestartKeepsThePromise) {
  RestartKeepsThePromise(PlantedBugs{});
  PlantedBugs bug;
  bug.forget_promise_on_restart = true;
  auto failures = CaptureFailures([&] { RestartKeepsThePromise(bug); });
  EXPECT_TRUE(AnyContains(failures, "promise forgotten")) << failures.size();
}

TEST(ReplicaTeethTest, AFollowerNeverAppliesPastAMissingSlot) {
  AFollowerNeverAppliesPastAMissingSlot(PlantedBugs{});
  PlantedBugs bug;
  bug.apply_out_of_order = true;
  auto failures = CaptureFailures([&] { AFollowerNeverAppliesPastAMissingSlot(bug); });
  EXPECT_TRUE(AnyContains(failures, "skipped a slot")) << failures.size();
  EXPECT_TRUE(AnyContains(failures, "applied past the missing slot")) << failures.size();
}

TEST(ReplicaTeethTest, LeaseIsTimedFromTheSend) {
  LeaseIsTimedFromTheSend(PlantedBugs{});
  PlantedBugs bug;
  bug.lease_from_ack_time = true;
  auto failures = CaptureFailures([&] { LeaseIsTimedFromTheSend(bug); });
  EXPECT_TRUE(AnyContains(failures, "still serves lease reads")) << failures.size();
}

// ----------------------------------------------------------------------------------------------
// Options

TEST(ReplicaOptionsTest, ValidateRejectsBadConfigsWithMessages) {
  struct Case {
    const char* what;
    std::function<void(Options*)> change;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"no id", [](Options* o) { o->id = kNoNode; }, "id must be in 1..65535"},
      {"id too big", [](Options* o) { o->id = kNodeIdMax + 1; }, "id must be in 1..65535"},
      {"no members", [](Options* o) { o->members.clear(); }, "members must not be empty"},
      {"repeated member",
       [](Options* o) {
         o->members = {1, 2, 2};
       },
       "members must not repeat"},
      {"member 0",
       [](Options* o) {
         o->members = {0, 1, 2};
       },
       "every member id must be in"},
      {"member too big",
       [](Options* o) {
         o->members = {1, 2, kNodeIdMax + 1};
       },
       "every member id must be in"},
      {"id not a member",
       [](Options* o) {
         o->members = {2, 3, 4};
       },
       "id must be one of members"},
      {"heartbeat 0", [](Options* o) { o->heartbeat_ticks = 0; },
       "heartbeat tick must be at least 1"},
      {"election <= heartbeat",
       [](Options* o) {
         o->heartbeat_ticks = 10;
         o->election_ticks = 10;
       },
       "election tick must be greater than heartbeat tick"},
      {"lease <= margin", [](Options* o) { o->lease_ticks = 2; },
       "lease ticks must be greater than the lease margin (2 ticks"},
      {"drift eats the lease",
       [](Options* o) {
         o->lease_ticks = 9;
         o->election_ticks = 20;
         o->check_quorum_ticks = 20;
         o->max_clock_drift_ppm = 50'000;  // margin 1 + ceil(0.9) = 2: still fine
         EXPECT_TRUE(o->Validate().ok());
         o->lease_ticks = 2;
       },
       "lease ticks must be greater than the lease margin"},
      {"absurd drift", [](Options* o) { o->max_clock_drift_ppm = 50'001; },
       "max clock drift ppm must be at most 50000"},
      {"persist stall <= election", [](Options* o) { o->persist_stall_ticks_max = 10; },
       "persist stall ticks max must be greater than election ticks"},
      {"lease >= election", [](Options* o) { o->lease_ticks = 10; },
       "lease ticks must be less than election ticks"},
      {"check quorum < lease", [](Options* o) { o->check_quorum_ticks = 5; },
       "check quorum ticks must be at least lease ticks"},
      {"accept retry 0", [](Options* o) { o->accept_retry_ticks = 0; },
       "retry ticks must be at least 1"},
      {"catchup retry 0", [](Options* o) { o->catchup_retry_ticks = 0; },
       "retry ticks must be at least 1"},
      {"batch commands 0", [](Options* o) { o->batch_commands_max = 0; }, "every *_max bound"},
      {"batch bytes 0", [](Options* o) { o->batch_bytes_max = 0; }, "every *_max bound"},
      {"window 0", [](Options* o) { o->window_slots_max = 0; }, "every *_max bound"},
      {"pending 0", [](Options* o) { o->pending_commands_max = 0; }, "every *_max bound"},
      {"reads 0", [](Options* o) { o->reads_pending_max = 0; }, "every *_max bound"},
      {"catchup entries 0", [](Options* o) { o->catchup_entries_max = 0; }, "every *_max bound"},
      {"accept entries 0", [](Options* o) { o->accept_entries_max = 0; }, "every *_max bound"},
  };
  ASSERT_TRUE(BaseOptions(1, 3, 1).Validate().ok()) << BaseOptions(1, 3, 1).Validate().ToString();
  for (const Case& k : cases) {
    Options o = BaseOptions(1, 3, 1);
    k.change(&o);
    Status s = o.Validate();
    EXPECT_FALSE(s.ok()) << k.what;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << k.what;
    EXPECT_NE(s.message().find(k.message), std::string::npos)
        << k.what << ": got \"" << s.message() << "\", want \"" << k.message << "\"";
    auto created = Replica::Create(o, DurableState{});
    EXPECT_FALSE(created.ok()) << k.what;
    EXPECT_EQ(created.status().message(), s.message()) << k.what;
  }
}

// Issue 12 item 3: the margin is derived from the drift bound, always at least one tick for the
// acceptors' tick granularity plus a ceil of the drift part, so rounding cannot eat it.
TEST(ReplicaOptionsTest, LeaseMarginFollowsTheClockDriftBound) {
  struct Case {
    uint32_t ppm;
    uint32_t lease_ticks;
    uint32_t margin;
  };
  for (const Case& k : std::vector<Case>{{0, 6, 1},
                                         {1, 6, 2},
                                         {1000, 6, 2},
                                         {50'000, 6, 2},
                                         {50'000, 20, 3},
                                         {1000, 500, 2},
                                         {1000, 501, 3}}) {
    Options o = BaseOptions(1, 3, 1);
    o.max_clock_drift_ppm = k.ppm;
    o.lease_ticks = k.lease_ticks;
    EXPECT_EQ(o.LeaseMarginTicks(), k.margin) << k.ppm << " ppm, lease " << k.lease_ticks;
  }
}

TEST(ReplicaReadTest, TheLeadersLeaseRunsFromTheSendMinusTheDriftMargin) {
  Cluster c(3, 9);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  ASSERT_TRUE(c.Ticks(2));
  // In this harness replies arrive within the tick of the send, so the lease runs until the
  // last send + lease_ticks - margin, i.e. lease_ticks - margin ticks after "now".
  const ReplicaStatus s = c.r(leader).status();
  ASSERT_TRUE(s.lease_held);
  const Options defaults;
  EXPECT_EQ(s.lease_until_ticks, s.now_ticks + defaults.lease_ticks - defaults.LeaseMarginTicks());
}

// ----------------------------------------------------------------------------------------------
// Issue 12 item 4: a node never announces an epoch lower than one it has seen.

// Drives one replica by hand: every Ready is carried out at once (persist is instant).
struct HandDriven {
  explicit HandDriven(Options o) : r(std::move(o), DurableState{}) {}
  void Drain() {
    for (int i = 0; r.HasReady() && i < 100; ++i) {
      Ready rd = r.TakeReady();
      for (Message& m : rd.send_now) out.push_back(std::move(m));
      for (Message& m : rd.send_after_persist) out.push_back(std::move(m));
      for (auto& e : rd.events) events.push_back(e);
      if (rd.persist) r.Advance();
    }
  }
  const Message* Find(MessageType type, NodeId to) const {
    for (const Message& m : out) {
      if (m.type == type && m.to == to) return &m;
    }
    return nullptr;
  }
  Replica r;
  std::vector<Message> out;
  std::vector<LeadershipEvent> events;
};

// Node 1 wins phase 1 with its own promise and node 2's, then node 3's (delayed) refusal shows
// that node 3 promised a newer ballot; a delayed Accepted from node 2 then completes node 1's
// recovery. Announcing now would announce an epoch lower than one node 1 has seen.
void NoAnnouncementBelowASeenEpoch(PlantedBugs planted) {
  Options o = BaseOptions(1, 3, 5);
  o.planted = planted;
  HandDriven h(o);
  for (int t = 0; t < 60 && h.Find(MessageType::kPreVote, 2) == nullptr; ++t) {
    h.r.Tick();
    h.Drain();
  }
  const Message* prevote = h.Find(MessageType::kPreVote, 2);
  ASSERT_NE(prevote, nullptr);
  Message yes{.type = MessageType::kPreVoteReply, .from = 2, .to = 1, .ballot = prevote->ballot};
  yes.ok = true;
  h.r.Step(yes);
  h.Drain();
  const Message* prepare = h.Find(MessageType::kPrepare, 2);
  ASSERT_NE(prepare, nullptr);
  const Ballot mine = prepare->ballot;
  Message promise{.type = MessageType::kPromise,
                  .from = 2,
                  .to = 1,
                  .ballot = mine,
                  .promised = mine,
                  .commit = 1};
  promise.ok = true;
  h.r.Step(promise);
  h.Drain();
  ASSERT_TRUE(h.r.IsLeader());
  ASSERT_TRUE(h.r.UsableEpoch().IsZero()) << "recovery is not chosen yet";
  const Message* accept = h.Find(MessageType::kAccept, 2);
  ASSERT_NE(accept, nullptr);
  ASSERT_FALSE(accept->entries.empty());

  const Ballot newer(mine.round() + 1, 3);
  Message refusal{.type = MessageType::kPromise,
                  .from = 3,
                  .to = 1,
                  .ballot = mine,
                  .promised = newer,
                  .commit = 1};
  h.r.Step(refusal);
  h.Drain();
  Message accepted{
      .type = MessageType::kAccepted, .from = 2, .to = 1, .ballot = mine, .promised = mine};
  accepted.ok = true;
  for (const Entry& e : accept->entries) accepted.slots.push_back(e.slot);
  h.r.Step(accepted);
  h.Drain();
  for (const LeadershipEvent& e : h.events) {
    EXPECT_FALSE(e.kind == LeadershipEvent::Kind::kBecameLeader && e.epoch < newer)
        << "announced " << ToString(e.epoch) << " after seeing " << ToString(newer);
  }
  EXPECT_TRUE(h.r.UsableEpoch().IsZero()) << "usable below a seen epoch";
  EXPECT_FALSE(h.r.IsLeader()) << "a leader that saw a newer epoch steps down";
}

TEST(ReplicaEpochTest, ALeaderThatSawANewerEpochNeverAnnouncesItsOwn) {
  NoAnnouncementBelowASeenEpoch(PlantedBugs{});
}

TEST(ReplicaTeethTest, AnnouncingAnOlderEpochIsCaught) {
  PlantedBugs bug;
  bug.announce_older_epoch = true;
  auto failures = CaptureFailures([&] { NoAnnouncementBelowASeenEpoch(bug); });
  EXPECT_TRUE(AnyContains(failures, "after seeing")) << failures.size();
}

// ----------------------------------------------------------------------------------------------
// Issue 12 item 6: a leader whose disk hangs steps down and lets the others elect.

void AHungLeaderDiskDoesNotStallTheGroup(PlantedBugs planted) {
  Cluster c(3, 21, [planted](Options* o) {
    o->planted = planted;
    o->persist_stall_ticks_max = 40;
  });
  const NodeId old_leader = c.TickUntilLeader(60);
  ASSERT_NE(old_leader, kNoNode);
  c.HangDisk(old_leader);
  ASSERT_EQ(c.r(old_leader).Propose(Cmd(1, 1, "stuck")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(40));
  ASSERT_TRUE(c.r(old_leader).IsLeader()) << "not before persist_stall_ticks_max";
  const NodeId next = c.TickUntilLeader(60, old_leader);
  EXPECT_NE(next, kNoNode) << "nobody replaced the leader whose disk hangs";
  EXPECT_FALSE(c.r(old_leader).IsLeader());
  if (next == kNoNode) return;
  // It stays silent while its disk hangs: no heartbeats, and no campaign.
  const size_t sent_before = c.log().size();
  ASSERT_TRUE(c.Ticks(100));
  for (size_t i = sent_before; i < c.log().size(); ++i) {
    const Message& m = c.log()[i];
    EXPECT_FALSE(m.from == old_leader &&
                 (m.type == MessageType::kHeartbeat || m.type == MessageType::kPreVote ||
                  m.type == MessageType::kPrepare))
        << ToString(m);
  }
  EXPECT_TRUE(c.r(next).IsLeader()) << "the new leader keeps leading";
  ASSERT_EQ(c.r(next).Propose(Cmd(2, 1, "after")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(5));
  // "stuck" was accepted by both followers, so the new leader recovered it.
  EXPECT_EQ(c.AppliedPayloads(next), std::vector<std::string>({"stuck", "after"}));
  // Once the disk completes, the old leader catches up like any follower.
  c.UnhangDisk(old_leader);
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3}, c.r(next).status().chosen_below, 60));
  c.ExpectAgreement();
}

TEST(ReplicaPersistStallTest, ALeaderWhoseDiskHangsStepsDownAndOthersElect) {
  AHungLeaderDiskDoesNotStallTheGroup(PlantedBugs{});
}

TEST(ReplicaTeethTest, AHungLeaderDiskIsCaught) {
  PlantedBugs bug;
  bug.no_persist_stall_stepdown = true;
  auto failures = CaptureFailures([&] { AHungLeaderDiskDoesNotStallTheGroup(bug); });
  EXPECT_TRUE(AnyContains(failures, "nobody replaced the leader")) << failures.size();
}

// ----------------------------------------------------------------------------------------------
// Core bugs found while writing these tests. Each asserts the behaviour the design promises.

// A group of one is valid (Options::Validate accepts it), so it must serve reads.
TEST(ReplicaSingleNodeTest, ASingleReplicaGroupElectsItselfWritesAndReads) {
  Cluster c(1, 18);
  const NodeId leader = c.TickUntilLeader(40);
  ASSERT_EQ(leader, 1u);
  ASSERT_EQ(c.r(1).Propose(Cmd(1, 1, "solo")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(2));
  EXPECT_EQ(c.AppliedPayloads(1), std::vector<std::string>({"solo"}));
  ASSERT_EQ(c.r(1).Read(1).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(20));
  EXPECT_EQ(c.node(1).reads.size(), 1u)
      << "a read on the only replica never completes: with no peers, no HeartbeatReply ever "
         "arrives, so neither the lease (UpdateLease) nor the read-index round is confirmed";
}

// A replica compacts (CompactBelow) what it applied. Later a replica that missed those slots
// becomes leader: phase 1 from its own chosen_below gets no report for the compacted slots, so
// it fills them with no-ops, and the compacted acceptor answers kOk for any slot below its
// snapshot (Acceptor::Accept) without holding the value. The no-ops are "chosen" over slots
// that were chosen with other values: the replicas disagree.
TEST(ReplicaCompactionTest, ALaggingLeaderCannotOverwriteSlotsACompactedAcceptorDropped) {
  Cluster c(3, 19);
  const NodeId old_leader = c.TickUntilLeader(60);
  ASSERT_NE(old_leader, kNoNode);
  const NodeId compacted = old_leader == 1 ? 2 : 1;
  const NodeId lagger = 6 - old_leader - compacted;
  c.Isolate(lagger);
  for (uint64_t s = 1; s <= 4; ++s) {
    ASSERT_EQ(c.r(old_leader).Propose(Cmd(8, s, "k" + std::to_string(s))).kind,
              ProposeResult::Kind::kOk);
  }
  const Slot done = c.r(old_leader).status().chosen_below;
  ASSERT_TRUE(c.TickUntilApplied({old_leader, compacted}, done + 1, 20));
  const Slot applied = c.r(compacted).status().applied_below;
  ASSERT_GT(applied, 2u);
  c.CompactBelow(compacted, applied);  // its state machine took a snapshot of everything

  // The old leader goes away; the lagger comes back. The compacted replica's own campaign
  // messages are lost, so the lagger is the one to run.
  c.SetDropRule([=](const Message& m) {
    if (m.from == old_leader || m.to == old_leader) return true;
    return m.from == compacted &&
           (m.type == MessageType::kPreVote || m.type == MessageType::kPrepare);
  });
  (void)c.TickUntilLeader(120, old_leader);
  NodeId now_leading = c.UsableLeader();
  if (now_leading != kNoNode) {
    (void)c.r(now_leading).Propose(Cmd(9, 1, "new"));
  }
  ASSERT_TRUE(c.Ticks(30));
  c.ExpectAgreement();
  // Whatever the fix, the replicas still agree once everyone is back.
  c.ClearDropRule();
  (void)c.Ticks(60);
  c.ExpectAgreement();
}

// Catch-up from a leader that compacted the slots the follower is missing: the follower must
// not stay behind forever, and the request/reply exchange must not spin without progress.
TEST(ReplicaCompactionTest, AFollowerBehindACompactedLeaderIsNotStuckAndDoesNotSpin) {
  Cluster c(3, 20);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const NodeId lagger = leader == 3 ? 2 : 3;
  c.SetDropRule([lagger](const Message& m) { return m.to == lagger; });
  for (uint64_t s = 1; s <= 4; ++s) {
    ASSERT_EQ(c.r(leader).Propose(Cmd(8, s, "k" + std::to_string(s))).kind,
              ProposeResult::Kind::kOk);
  }
  ASSERT_TRUE(c.Ticks(5));
  const Slot applied = c.r(leader).status().applied_below;
  for (NodeId id = 1; id <= 3; ++id) {
    if (id != lagger) c.CompactBelow(id, c.r(id).status().applied_below);
  }
  c.ClearDropRule();
  const bool quiet = c.Ticks(10);
  EXPECT_TRUE(quiet) << "catch-up requests and empty replies ping-pong without end";
  EXPECT_GE(c.r(lagger).status().chosen_below, applied)
      << "the lagger can never learn the compacted slots (no snapshot hand-off in the core)";
}

// The Options contract says a replica missing chosen values "asks again after
// catchup_retry_ticks". After a reply that taught it nothing, OnCatchupReply asks again at once,
// so a leader that cannot serve the slots (compacted them, or is behind the commit index the
// follower heard from an earlier leader) and the follower ping-pong one request per round trip,
// without end.
TEST(ReplicaCatchupTest, AReplyThatTaughtNothingDoesNotTriggerAnImmediateRequest) {
  Options o = BaseOptions(3, 3, 29);
  Replica f(o, DurableState{});
  for (int i = 0; i < 7; ++i) f.Tick();  // past the restart lease; no election yet
  (void)f.TakeReady();
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = 1;
  hb.to = 3;
  hb.ballot = Ballot(1, 1);
  hb.commit = 5;
  hb.round = 1;
  f.Step(hb);
  auto requests = [](const Ready& rd) {
    size_t n = 0;
    for (const Message& m : rd.send_now) n += m.type == MessageType::kCatchupRequest;
    return n;
  };
  Ready first = f.TakeReady();
  ASSERT_EQ(requests(first), 1u) << "commit 5 is ahead of chosen_below 1: ask the leader";

  Message empty;
  empty.type = MessageType::kCatchupReply;
  empty.from = 1;
  empty.to = 3;
  empty.ballot = Ballot(1, 1);
  empty.commit = 5;
  empty.ok = true;
  f.Step(empty);
  Ready after = f.TakeReady();
  EXPECT_EQ(requests(after), 0u) << "a reply without progress must not be answered at once";
  // It still retries on the timer.
  size_t later = 0;
  for (uint32_t t = 0; t < o.catchup_retry_ticks + 1; ++t) {
    f.Tick();
    later += requests(f.TakeReady());
  }
  EXPECT_GE(later, 1u) << "the timer-driven retry must remain";
}

// ----------------------------------------------------------------------------------------------
// Membership changes (paxos/configuration.h) and leader transfer.

// Nodes 1..3 bootstrap the group; nodes above 3 start as joiners with an unknown configuration.
std::function<void(Options*)> ThreeFoundersPlusJoiners(bool auto_promote = true) {
  return [auto_promote](Options* o) {
    o->members = {1, 2, 3};
    o->join = o->id > 3;
    if (o->join) o->members.clear();
    o->auto_promote_learners = auto_promote;
  };
}

MemberChange Add(NodeId id) {
  return MemberChange{MemberChange::Kind::kAddLearner, id, "host:" + std::to_string(id)};
}
MemberChange Promote(NodeId id) { return MemberChange{MemberChange::Kind::kPromote, id, ""}; }
MemberChange Remove(NodeId id) { return MemberChange{MemberChange::Kind::kRemove, id, ""}; }

// Proposes `count` commands at `leader` and ticks until `ids` applied them all.
void ProposeAndApply(Cluster* c, NodeId leader, const std::vector<NodeId>& ids, int count,
                     uint64_t* seq) {
  for (int i = 0; i < count; ++i) {
    ++*seq;
    ASSERT_EQ(c->r(leader).Propose(Cmd(5, *seq, "m" + std::to_string(*seq))).kind,
              ProposeResult::Kind::kOk);
  }
  ASSERT_TRUE(c->Ticks(2));
  ASSERT_TRUE(c->TickUntilApplied(ids, c->r(leader).status().chosen_below, 60));
}

// Ticks until `pred` holds (false after max_ticks).
bool TickUntil(Cluster* c, int max_ticks, const std::function<bool()>& pred) {
  for (int i = 0; i <= max_ticks; ++i) {
    if (pred()) return true;
    if (!c->Tick()) return false;
  }
  return false;
}

TEST(ReplicaMembershipTest, ALearnerCatchesUpIsPromotedAndItsVoteThenCounts) {
  Cluster c(4, 61, ThreeFoundersPlusJoiners());
  const NodeId leader = c.TickUntilLeader(80);
  ASSERT_NE(leader, kNoNode);
  ASSERT_NE(leader, 4u) << "a joiner never campaigns";
  uint64_t seq = 0;
  ProposeAndApply(&c, leader, {1, 2, 3}, 20, &seq);
  EXPECT_TRUE(c.r(4).configuration().empty());
  EXPECT_EQ(c.r(4).status().applied_below, 1u) << "nobody talks to a stranger yet";

  ASSERT_TRUE(c.r(leader).ProposeMemberChange(Add(4)).ok());
  EXPECT_TRUE(c.r(leader).member_change_pending());
  // Added as a learner, it catches up; then the leader promotes it by itself.
  ASSERT_TRUE(TickUntil(&c, 100, [&] { return c.r(4).configuration().IsVoter(4); }));
  EXPECT_EQ(c.r(4).counters().elections_started, 0u) << "a learner never campaigns";
  for (NodeId id = 1; id <= 4; ++id) {
    EXPECT_EQ(c.r(id).configuration().voters(), (std::vector<NodeId>{1, 2, 3, 4})) << id;
    EXPECT_EQ(c.r(id).configuration().Find(4)->address, "host:4");
  }
  // Four voters: a quorum is three. With one founder cut off, progress needs node 4's vote.
  const NodeId cut = leader == 1 ? 2 : 1;
  c.Isolate(cut);
  std::vector<NodeId> rest;
  for (NodeId id = 1; id <= 4; ++id) {
    if (id != cut) rest.push_back(id);
  }
  ProposeAndApply(&c, leader, rest, 5, &seq);
  c.SetDropRule(
      [cut](const Message& m) { return m.from == cut || m.to == cut || m.from == 4 || m.to == 4; });
  const Slot before = c.r(leader).status().chosen_below;
  ASSERT_EQ(c.r(leader).Propose(Cmd(5, ++seq, "needs 3 of 4")).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(5));
  EXPECT_EQ(c.r(leader).status().chosen_below, before) << "2 of 4 voters are not a majority";
  c.ClearDropRule();
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3, 4}, before + 1, 80));
  c.ExpectAgreement();
  EXPECT_EQ(c.AppliedPayloads(4), c.AppliedPayloads(leader));
}

TEST(ReplicaMembershipTest, ARemovedVoterNoLongerCountsAndCannotDisruptTheGroup) {
  Cluster c(3, 62);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const NodeId gone = leader == 3 ? 2 : 3;
  const NodeId stays = 6 - leader - gone;
  uint64_t seq = 0;
  ProposeAndApply(&c, leader, {1, 2, 3}, 5, &seq);
  // The node to remove misses its own removal: it will campaign with a stale configuration.
  c.Isolate(gone);
  ASSERT_TRUE(c.r(leader).ProposeMemberChange(Remove(gone)).ok());
  ASSERT_TRUE(TickUntil(&c, 60, [&] {
    return !c.r(stays).configuration().IsMember(gone) &&
           !c.r(leader).configuration().IsMember(gone);
  }));
  const Ballot epoch = c.r(leader).UsableEpoch();
  // Two voters, both needed. The removed node times out and asks for votes: refused.
  ASSERT_TRUE(c.Ticks(40));  // isolated: it keeps campaigning on its own
  EXPECT_GT(c.r(gone).counters().elections_started + c.r(gone).status().promised.round(), 0u);
  c.ClearDropRule();
  ASSERT_TRUE(c.Ticks(60));
  EXPECT_EQ(c.UsableLeader(), leader);
  EXPECT_EQ(c.r(leader).UsableEpoch(), epoch) << "the removed node deposed nobody";
  ProposeAndApply(&c, leader, {leader, stays}, 5, &seq);
  c.ExpectAgreement();
  // Its id is retired: a node that comes back needs a new one.
  EXPECT_TRUE(c.r(leader).configuration().IsRetired(gone));
  Status again = c.r(leader).ProposeMemberChange(Add(gone));
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(again.message().find("new id"), std::string::npos) << again.message();
}

TEST(ReplicaMembershipTest, ChangesAreOneAtATimeAndALeaderDoesNotRemoveItself) {
  Cluster c(4, 63, ThreeFoundersPlusJoiners(/*auto_promote=*/false));
  const NodeId leader = c.TickUntilLeader(80);
  ASSERT_NE(leader, kNoNode);
  const NodeId follower = leader == 1 ? 2 : 1;
  EXPECT_EQ(c.r(follower).ProposeMemberChange(Add(4)).code(), StatusCode::kNotLeader);
  Status self = c.r(leader).ProposeMemberChange(Remove(leader));
  EXPECT_EQ(self.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(self.message().find("transfer leadership"), std::string::npos) << self.message();
  EXPECT_EQ(c.r(leader).ProposeMemberChange(Promote(4)).code(), StatusCode::kFailedPrecondition)
      << "not a member yet";
  ASSERT_TRUE(c.r(leader).ProposeMemberChange(Add(4)).ok());
  EXPECT_EQ(c.r(leader).ProposeMemberChange(Remove(follower)).code(),
            StatusCode::kFailedPrecondition)
      << "one change at a time";
  ASSERT_TRUE(TickUntil(&c, 40, [&] { return !c.r(leader).member_change_pending(); }));
  EXPECT_EQ(c.r(leader).ProposeMemberChange(Add(4)).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(TickUntil(&c, 40, [&] { return c.r(4).configuration().IsMember(4); }));
  EXPECT_FALSE(c.r(4).configuration().IsVoter(4)) << "promotion is off in this test";
  ASSERT_TRUE(c.Ticks(20));
  EXPECT_FALSE(c.r(leader).configuration().IsVoter(4));
  ASSERT_TRUE(c.r(leader).ProposeMemberChange(Promote(4)).ok());
  ASSERT_TRUE(TickUntil(&c, 40, [&] { return c.r(4).configuration().IsVoter(4); }));
}

// The staged recovery: a change chosen by the old leader that the new leader only finds in its
// phase 1. The slots after it belong to the new voters, so the new leader must also hear from a
// majority of those before it decides them.
TEST(ReplicaMembershipTest, ANewLeaderFindsAChosenChangeAndAsksTheNewVotersBeforeGoingOn) {
  Cluster c(4, 64, ThreeFoundersPlusJoiners(/*auto_promote=*/false));
  const NodeId old_leader = c.TickUntilLeader(80);
  ASSERT_NE(old_leader, kNoNode);
  uint64_t seq = 0;
  ProposeAndApply(&c, old_leader, {1, 2, 3}, 5, &seq);
  ASSERT_TRUE(c.r(old_leader).ProposeMemberChange(Add(4)).ok());
  ASSERT_TRUE(TickUntil(&c, 60, [&] { return c.r(4).configuration().IsMember(4); }));
  ASSERT_TRUE(c.TickUntilApplied({1, 2, 3, 4}, c.r(old_leader).status().chosen_below, 60));
  // The promotion reaches one other founder only, and nobody but the old leader learns that it
  // was chosen: the old leader then dies.
  const NodeId witness = old_leader == 1 ? 2 : 1;
  c.SetDropRule([&](const Message& m) {
    return m.from == old_leader && !(m.type == MessageType::kAccept && m.to == witness);
  });
  const Slot promote_slot = c.r(old_leader).status().chosen_below;
  ASSERT_TRUE(c.r(old_leader).ProposeMemberChange(Promote(4)).ok());
  ASSERT_TRUE(c.DeliverAll());
  ASSERT_TRUE(c.r(old_leader).configuration().IsVoter(4))
      << "chosen by the old leader and " << witness;
  for (NodeId id = 1; id <= 4; ++id) {
    if (id != old_leader) {
      ASSERT_FALSE(c.r(id).configuration().IsVoter(4)) << "node " << id << " must not know yet";
    }
  }
  c.Isolate(old_leader);
  c.log().clear();
  const NodeId new_leader = c.TickUntilLeader(200, old_leader);
  ASSERT_NE(new_leader, kNoNode);
  ASSERT_NE(new_leader, 4u);
  // It recovered the promotion, then asked node 4 (a voter from the slot after it on).
  bool asked_4 = false;
  for (const Message& m : c.log()) {
    if (m.type == MessageType::kPrepare && m.from == new_leader && m.to == 4 &&
        m.slot == promote_slot + 1) {
      asked_4 = true;
    }
  }
  EXPECT_TRUE(asked_4) << "no Prepare from slot " << promote_slot + 1 << " to the new voter";
  EXPECT_TRUE(c.r(new_leader).configuration().IsVoter(4));
  // Voters 1..4 with the old leader gone: the other three carry on.
  std::vector<NodeId> live;
  for (NodeId id = 1; id <= 4; ++id) {
    if (id != old_leader) live.push_back(id);
  }
  ProposeAndApply(&c, new_leader, live, 5, &seq);
  c.ExpectAgreement();
}

// A node started blank to join (a replaced disk, maybe under an id the group used before) may
// have had a past it no longer remembers: until it has learnt the chosen change that added it
// (and with it every slot below), it neither promises nor accepts, so nobody counts its empty
// memory as that past member's.
TEST(ReplicaMembershipTest, ABlankJoinerVotesNothingUntilItLearntItsOwnAddition) {
  Cluster c(4, 68, ThreeFoundersPlusJoiners());
  const NodeId leader = c.TickUntilLeader(80);
  ASSERT_NE(leader, kNoNode);
  uint64_t seq = 0;
  ProposeAndApply(&c, leader, {1, 2, 3}, 5, &seq);
  // A candidate working from a configuration in which 4 votes asks it directly.
  Message prepare;
  prepare.type = MessageType::kPrepare;
  prepare.from = leader == 1 ? 2 : 1;
  prepare.to = 4;
  prepare.ballot = Ballot(50, prepare.from);
  prepare.slot = 1;
  c.r(4).Step(prepare);
  Ready rd = c.r(4).TakeReady();
  ASSERT_FALSE(rd.send_now.empty());
  EXPECT_EQ(rd.send_now.back().type, MessageType::kPromise);
  EXPECT_FALSE(rd.send_now.back().ok) << "a blank joiner promised";
  EXPECT_FALSE(rd.persist.has_value());
  c.Carry(4, std::move(rd), /*advance=*/true);
  // The leader's own Accept (as if it counted 4 under an old configuration): no vote either.
  Message accept;
  accept.type = MessageType::kAccept;
  accept.from = leader;
  accept.to = 4;
  accept.ballot = c.r(leader).UsableEpoch();
  accept.commit = c.r(leader).status().chosen_below;
  const Slot next = accept.commit + 10;
  accept.entries.push_back(Entry{next, Ballot(), Value{accept.ballot, false, {Cmd(9, 1, "x")}}});
  c.r(4).Step(accept);
  rd = c.r(4).TakeReady();
  bool replied = false;
  for (const Message& m : rd.send_now) {
    if (m.type != MessageType::kAccepted) continue;
    replied = true;
    EXPECT_TRUE(m.slots.empty()) << "a blank joiner accepted";
  }
  EXPECT_TRUE(replied);
  EXPECT_TRUE(rd.send_after_persist.empty());
  c.Carry(4, std::move(rd), /*advance=*/true);
  // Once added (and caught up to its addition) it votes like anyone: promoted, it counts.
  c.log().clear();
  ASSERT_TRUE(c.r(leader).ProposeMemberChange(Add(4)).ok());
  ASSERT_TRUE(TickUntil(&c, 100, [&] { return c.r(4).configuration().IsVoter(4); }));
  ProposeAndApply(&c, leader, {1, 2, 3, 4}, 3, &seq);
  size_t votes = 0;
  for (const Message& m : c.log()) {
    votes += m.type == MessageType::kAccepted && m.from == 4 && m.ok && !m.slots.empty();
  }
  EXPECT_GT(votes, 0u);
  c.ExpectAgreement();
}

TEST(ReplicaMembershipTest, MembershipSurvivesARestartFromTheLog) {
  Cluster c(4, 65, ThreeFoundersPlusJoiners());
  const NodeId leader = c.TickUntilLeader(80);
  ASSERT_NE(leader, kNoNode);
  ASSERT_TRUE(c.r(leader).ProposeMemberChange(Add(4)).ok());
  ASSERT_TRUE(TickUntil(&c, 100, [&] { return c.r(4).configuration().IsVoter(4); }));
  // Later batches carry the commit index past the changes to every disk.
  uint64_t seq = 0;
  ProposeAndApply(&c, leader, {1, 2, 3, 4}, 3, &seq);
  ProposeAndApply(&c, leader, {1, 2, 3, 4}, 3, &seq);
  for (NodeId id = 1; id <= 4; ++id) {
    const Configuration before = c.r(id).configuration();
    ASSERT_TRUE(before.IsVoter(4));
    c.Restart(id);
    EXPECT_EQ(c.r(id).configuration().ToString(), before.ToString()) << "node " << id;
  }
  ProposeAndApply(&c, c.TickUntilLeader(100), {1, 2, 3, 4}, 3, &seq);
  c.ExpectAgreement();
}

TEST(ReplicaTransferTest, TheTargetTakesOverAtOnceWithAHigherEpoch) {
  Cluster c(3, 66);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  uint64_t seq = 0;
  ProposeAndApply(&c, leader, {1, 2, 3}, 5, &seq);
  const Ballot epoch = c.r(leader).UsableEpoch();
  const NodeId target = leader == 3 ? 1 : leader + 1;
  EXPECT_EQ(c.r(leader).TransferLeadership(leader).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(c.r(target).TransferLeadership(leader).code(), StatusCode::kNotLeader);
  ASSERT_TRUE(c.r(leader).TransferLeadership(target).ok());
  EXPECT_EQ(c.r(leader).transfer_target(), target);
  ProposeResult refused = c.r(leader).Propose(Cmd(5, ++seq, "during"));
  EXPECT_EQ(refused.kind, ProposeResult::Kind::kNotLeader);
  EXPECT_EQ(refused.leader_hint, target);
  EXPECT_FALSE(c.r(leader).status().lease_held) << "no lease reads once handing over";
  // Well inside the lease, which an ordinary candidate would have to wait out.
  const uint32_t lease_ticks = c.node(leader).options.lease_ticks;
  ASSERT_TRUE(
      TickUntil(&c, static_cast<int>(lease_ticks) - 1, [&] { return c.UsableLeader() == target; }));
  EXPECT_GT(c.r(target).UsableEpoch(), epoch);
  EXPECT_FALSE(c.r(leader).IsLeader());
  ProposeAndApply(&c, target, {1, 2, 3}, 5, &seq);
  c.ExpectAgreement();
}

TEST(ReplicaTransferTest, AnUnreachableTargetIsGivenUpAndTheLeaderGoesOnWithoutItsLease) {
  Cluster c(3, 67);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  const NodeId target = leader == 3 ? 1 : leader + 1;
  c.Isolate(target);
  ASSERT_TRUE(c.r(leader).TransferLeadership(target).ok());
  const uint32_t give_up = c.node(leader).options.transfer_ticks_max;
  ASSERT_TRUE(c.Ticks(static_cast<int>(give_up) + 1));
  EXPECT_EQ(c.r(leader).transfer_target(), kNoNode);
  EXPECT_EQ(c.UsableLeader(), leader);
  uint64_t seq = 0;
  ProposeAndApply(&c, leader, {leader, 6 - leader - target}, 3, &seq);
  EXPECT_FALSE(c.r(leader).status().lease_held)
      << "a handover Prepare may still be on its way: this leadership keeps no lease";
  ASSERT_EQ(c.r(leader).Read(77).kind, ProposeResult::Kind::kOk);
  ASSERT_TRUE(c.Ticks(3));
  ASSERT_FALSE(c.node(leader).reads.empty()) << "read-index reads still work";
  EXPECT_EQ(c.node(leader).reads.back().read_id, 77u);
}

}  // namespace
}  // namespace ballot::paxos

namespace ballot::paxos {
namespace {

// A follower learns that accepted slots are chosen from the leader's commit index without
// walking its whole unchosen log on every message (a node far behind would spend all its time
// there). A slot that arrives, re-sent, below the point the leader's commit was already learnt
// up to must still be learnt as chosen.
TEST(ReplicaLearnTest, ASlotResentBelowTheLearntCommitIsStillChosen) {
  Options o = BaseOptions(3, 3, 31);
  Replica f(o, DurableState{});
  for (int i = 0; i < 7; ++i) f.Tick();  // past the restart lease; no election yet
  (void)f.TakeReady();
  const Ballot leader(1, 1);
  auto accept = [&](Slot slot, Slot commit) {
    Message m;
    m.type = MessageType::kAccept;
    m.from = 1;
    m.to = 3;
    m.ballot = leader;
    m.commit = commit;
    m.entries.push_back(Entry{slot, Ballot(), Value{leader, false, {Cmd(7, slot, "v")}}});
    f.Step(m);
  };
  // Slots 2..10 arrive; slot 1's accept was lost.
  for (Slot s = 2; s <= 10; ++s) accept(s, 1);
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = 1;
  hb.to = 3;
  hb.ballot = leader;
  hb.commit = 11;
  hb.round = 1;
  f.Step(hb);
  EXPECT_EQ(f.status().chosen_below, 1u) << "slot 1 is missing: nothing can be applied yet";
  // The leader re-sends slot 1; with it, everything below 11 is chosen.
  accept(1, 11);
  EXPECT_EQ(f.status().chosen_below, 11u);
}
// CompactBelow hands the records it drops back to the caller instead of freeing them: the
// runtime frees them on its background thread. Freeing ~10k slots of ~80 commands in place took
// 110-160 ms on the event loop (measured under 256 clients), longer than check_quorum_ticks, and
// the leader stepped down after every snapshot.
TEST(ReplicaCompactionTest, CompactBelowReturnsWhatItDrops) {
  Cluster c(3, 23);
  const NodeId leader = c.TickUntilLeader(60);
  ASSERT_NE(leader, kNoNode);
  for (uint64_t s = 1; s <= 6; ++s) {  // one slot each: ticks between the proposals
    ASSERT_EQ(c.r(leader).Propose(Cmd(8, s, "k" + std::to_string(s))).kind,
              ProposeResult::Kind::kOk);
    ASSERT_TRUE(c.TickUntilApplied({leader}, c.r(leader).status().chosen_below + 1, 20));
  }
  const Slot applied = c.r(leader).status().applied_below;
  ASSERT_GT(applied, 4u);
  const Slot below = applied - 1;
  SlotLog::Records dropped = c.r(leader).CompactBelow(below);
  ASSERT_FALSE(dropped.empty());
  EXPECT_LT(dropped.rbegin()->first, below);
  for (const auto& [slot, record] : dropped) {
    EXPECT_EQ(record.entry.slot, slot);
    EXPECT_TRUE(record.chosen) << "slot " << slot;
  }
  // Every slot below the mark that the log held came back, once; nothing at or above it.
  EXPECT_EQ(dropped.size(), static_cast<size_t>(below - dropped.begin()->first));
  EXPECT_TRUE(c.r(leader).CompactBelow(below).empty()) << "a second compaction drops nothing";
}

}  // namespace
}  // namespace ballot::paxos
