#include "tests/sim/checker.h"

#include <algorithm>
#include <bit>
#include <set>
#include <sstream>

namespace ballot::sim {

namespace {

std::string SlotBallotString(paxos::Slot slot, uint64_t ballot) {
  std::ostringstream os;
  os << "slot " << slot << " ballot " << paxos::ToString(paxos::Ballot::FromRaw(ballot));
  return os.str();
}

std::string OpString(const AckedOp& op) {
  std::ostringstream os;
  os << "client " << op.client_id << (op.is_read ? " read" : " next") << " op " << op.op_id;
  if (!op.is_read) os << " seq " << op.sequence;
  os << " sent@" << op.sent_ms << "ms acked@" << op.acked_ms << "ms ";
  if (op.is_read) {
    os << "saw next=" << op.lo;
  } else {
    os << "got [" << op.lo << "," << op.hi << "]";
  }
  return os.str();
}

}  // namespace

Checker::Checker(int nodes, int founders)
    : nodes_(nodes),
      fixed_voters_(founders == 0 || founders == nodes),
      fresh_(nodes + 1),
      epoch_seen_(nodes + 1) {
  chosen_.resize(1);  // slot 0 is never used
  const int voters = founders > 0 ? founders : nodes;
  voters_from_[1] = voters >= 32 ? ~0u : (1u << voters) - 1;
}

uint32_t Checker::VotersAt(paxos::Slot slot) const {
  return std::prev(voters_from_.upper_bound(slot))->second;
}

void Checker::JudgeVotes(const SlotBallot& key) {
  Votes& v = votes_[key];
  if (v.chosen) return;
  const uint32_t voters = VotersAt(key.slot);
  const int needed = std::popcount(voters) / 2 + 1;
  if (std::popcount(v.nodes & voters) < needed) return;
  v.chosen = true;
  std::ostringstream os;
  os << "acceptor quorum " << std::hex << v.nodes << " of voters " << voters << std::dec << " at "
     << SlotBallotString(key.slot, key.ballot);
  Choose(key.slot, v.value, v.hash, os.str());
}

void Checker::AdvancePrefix() {
  if (advancing_) return;  // JudgeVotes -> Choose -> here: the loop below picks it up
  advancing_ = true;
  for (;;) {
    const paxos::Slot before = prefix_;
    while (prefix_ < chosen_.size() && chosen_[prefix_].known) {
      if (chosen_[prefix_].config_voters)
        voters_from_[prefix_ + 1] = *chosen_[prefix_].config_voters;
      ++prefix_;
    }
    // Votes at slots up to prefix_ can be judged now (all slots below them are known).
    bool judged = false;
    while (!unjudged_.empty() && unjudged_.begin()->first <= prefix_) {
      std::vector<SlotBallot> keys = std::move(unjudged_.begin()->second);
      unjudged_.erase(unjudged_.begin());
      for (const SlotBallot& key : keys) JudgeVotes(key);
      judged = true;
    }
    if (prefix_ == before && !judged) break;
  }
  advancing_ = false;
}

void Checker::Fail(const std::string& what) {
  if (violation_.empty()) violation_ = what;
}

void Checker::OnNodeStart(paxos::NodeId n, FreshMap fresh) {
  fresh_.at(n) = std::move(fresh);
  // A restart forgets what was seen (but for the durable promise, which it may not exceed
  // anyway); also reset on a snapshot restore, which only makes the check weaker, never wrong.
  epoch_seen_.at(n) = paxos::Ballot();
}

void Checker::OnDurable(paxos::NodeId n, const paxos::PersistBatch& batch) {
  for (const paxos::Entry& e : batch.entries) {
    const uint64_t hash = paxos::HashValue(e.value);
    Votes& v = votes_[SlotBallot{e.slot, e.ballot.raw()}];
    if (v.nodes != 0 && v.hash != hash) {
      std::ostringstream os;
      os << "two different values accepted at " << SlotBallotString(e.slot, e.ballot.raw())
         << " (node " << n << " wrote hash " << std::hex << hash << ", earlier " << v.hash << ")";
      Fail(os.str());
      return;
    }
    v.hash = hash;
    if (v.nodes == 0) v.value = e.value;
    v.nodes |= 1u << (n - 1);
    const SlotBallot key{e.slot, e.ballot.raw()};
    if (fixed_voters_ || e.slot <= prefix_) {
      JudgeVotes(key);
    } else {
      unjudged_[e.slot].push_back(key);
    }
  }
  AdvancePrefix();
}

void Checker::OnApply(paxos::NodeId n, const paxos::Entry& e) {
  if (observer_ != nullptr) observer_->OnApply(n, e);
  std::ostringstream os;
  os << "apply at node " << n;
  Choose(e.slot, e.value, paxos::HashValue(e.value), os.str());
  AdvancePrefix();
}

void Checker::Choose(paxos::Slot slot, const paxos::Value& v, uint64_t hash,
                     const std::string& source) {
  CHECK_GT(slot, 0u);
  if (slot >= chosen_.size()) chosen_.resize(slot + 1);
  Chosen& c = chosen_[slot];
  if (!c.known) {
    c = Chosen{true, v.leader_start, hash, v.epoch.raw(), source, std::nullopt};
    if (v.config) {
      uint32_t voters = 0;
      for (paxos::NodeId id : v.config->voters()) voters |= 1u << (id - 1);
      c.config_voters = voters;
    }
    return;
  }
  if (c.hash == hash) return;
  std::ostringstream os;
  os << "two different values chosen for slot " << slot << ": " << std::hex << c.hash << std::dec
     << " (" << c.source << ") vs " << std::hex << hash << std::dec << " (" << source << ")";
  Fail(os.str());
}

paxos::Slot Checker::known_chosen_below() const {
  paxos::Slot s = 1;
  while (s < chosen_.size() && chosen_[s].known) ++s;
  return s;
}

void Checker::OnFreshReply(paxos::NodeId n, const Reply& r) {
  if (r.sequence == 0) return;  // no session: not deduplicated
  const SessionKey key{r.client_id, r.sequence};
  auto [it, inserted] = fresh_.at(n).emplace(key, r.slot);
  if (!inserted) {
    std::ostringstream os;
    os << "command client " << r.client_id << " seq " << r.sequence << " applied twice at node "
       << n << " (slots " << it->second << " and " << r.slot << ")";
    Fail(os.str());
    return;
  }
  auto [first, is_first] = first_apply_.emplace(key, FirstApply{r.slot, r.outcome});
  if (is_first) return;
  if (first->second.slot != r.slot || first->second.outcome != r.outcome) {
    std::ostringstream os;
    os << "command client " << r.client_id << " seq " << r.sequence << " applied at slot " << r.slot
       << " on node " << n << " but at slot " << first->second.slot
       << " elsewhere (or with another outcome)";
    Fail(os.str());
  }
}

void Checker::OnLeadershipEvent(paxos::NodeId n, const paxos::LeadershipEvent& e) {
  if (observer_ != nullptr) observer_->OnLeadershipEvent(n, e);
  if (e.kind != paxos::LeadershipEvent::Kind::kBecameLeader) return;
  std::ostringstream os;
  auto [it, inserted] = epochs_led_.emplace(e.epoch.raw(), n);
  if (!inserted) {
    os << "epoch " << paxos::ToString(e.epoch) << " led twice: by node " << it->second
       << ", then by node " << n;
    Fail(os.str());
    return;
  }
  if (e.epoch.node() != n) {
    os << "node " << n << " became leader of an epoch of node " << e.epoch.node() << ": "
       << paxos::ToString(e.epoch);
    Fail(os.str());
    return;
  }
  if (e.epoch < epoch_seen_.at(n)) {
    os << "node " << n << " announced epoch " << paxos::ToString(e.epoch)
       << " after it had seen the newer epoch " << paxos::ToString(epoch_seen_.at(n));
    Fail(os.str());
    return;
  }
  leader_starts_.push_back(LeaderStart{n, e.epoch.raw(), e.start_slot});
}

void Checker::OnEpochSeen(paxos::NodeId n, paxos::Ballot epoch) {
  epoch_seen_.at(n) = std::max(epoch_seen_.at(n), epoch);
}

void Checker::OnAnnounced(paxos::NodeId n, uint64_t epoch, paxos::Slot applied_below) {
  // Code that acts as leader must see every write acknowledged before it was told it leads.
  for (const AckedOp& op : acked_) {
    if (op.is_read) continue;
    auto it = first_apply_.find(SessionKey{op.client_id, op.sequence});
    if (it == first_apply_.end() || it->second.slot < applied_below) continue;
    std::ostringstream os;
    os << "node " << n << " announced leadership of epoch "
       << paxos::ToString(paxos::Ballot::FromRaw(epoch)) << " with its state applied below slot "
       << applied_below << ", missing the acknowledged " << OpString(op) << " at slot "
       << it->second.slot;
    Fail(os.str());
    return;
  }
}

void Checker::OnAck(const AckedOp& op) {
  if (!op.is_read) {
    auto it = first_apply_.find(SessionKey{op.client_id, op.sequence});
    if (it == first_apply_.end()) {
      Fail("acknowledged a command no replica applied: " + OpString(op));
      return;
    }
    if (it->second.outcome != op.outcome) {
      Fail("client got another outcome than the one applied: " + OpString(op));
      return;
    }
  }
  acked_.push_back(op);
}

void Checker::FinalChecks(const std::vector<paxos::NodeId>& converged) {
  CheckLeaderStarts();
  CheckUnique();
  CheckRealTimeOrder();
  CheckExactlyOnce(converged);
}

void Checker::CheckLeaderStarts() {
  // (b) in log order: the leader_start entry of every leadership that was announced (raised
  // kBecameLeader) carries an epoch greater than every leader_start before it in the log. A
  // leader that never became usable may leave a stale marker behind a newer one (recovery must
  // keep any value that might have been chosen); the Applier ignores it, so it is allowed here.
  std::set<uint64_t> announced;
  for (const LeaderStart& ls : leader_starts_) announced.insert(ls.epoch);
  uint64_t max_epoch = 0;
  paxos::Slot max_slot = 0;
  for (paxos::Slot s = 1; s < chosen_.size(); ++s) {
    const Chosen& c = chosen_[s];
    if (!c.known || !c.leader_start) continue;
    if (announced.count(c.epoch) && c.epoch <= max_epoch) {
      std::ostringstream os;
      os << "leader_start epochs not increasing in the log: slot " << max_slot << " has "
         << paxos::ToString(paxos::Ballot::FromRaw(max_epoch)) << ", later slot " << s
         << " has the announced " << paxos::ToString(paxos::Ballot::FromRaw(c.epoch));
      Fail(os.str());
      return;
    }
    if (c.epoch > max_epoch) {
      max_epoch = c.epoch;
      max_slot = s;
    }
  }
  for (const LeaderStart& ls : leader_starts_) {
    if (ls.start_slot >= chosen_.size() || !chosen_[ls.start_slot].known) continue;
    const Chosen& c = chosen_[ls.start_slot];
    if (!c.leader_start || c.epoch != ls.epoch) {
      std::ostringstream os;
      os << "node " << ls.node << " became leader of "
         << paxos::ToString(paxos::Ballot::FromRaw(ls.epoch)) << " at start slot " << ls.start_slot
         << ", but the chosen value there is not its leader_start entry";
      Fail(os.str());
      return;
    }
  }
}

void Checker::CheckUnique() {
  std::vector<const AckedOp*> blocks;
  for (const AckedOp& op : acked_) {
    if (!op.is_read) blocks.push_back(&op);
  }
  std::sort(blocks.begin(), blocks.end(),
            [](const AckedOp* a, const AckedOp* b) { return a->lo < b->lo; });
  for (size_t i = 1; i < blocks.size(); ++i) {
    if (blocks[i - 1]->hi >= blocks[i]->lo) {
      Fail("two clients received the same number: " + OpString(*blocks[i - 1]) + " / " +
           OpString(*blocks[i]));
      return;
    }
  }
}

// For every B: every A acknowledged before B was sent has A.hi < B.lo. Sorting by ack time and
// keeping a running maximum of hi makes this O(n log n).
void Checker::CheckRealTimeOrder() {
  std::vector<const AckedOp*> by_ack;
  for (const AckedOp& op : acked_) by_ack.push_back(&op);
  std::sort(by_ack.begin(), by_ack.end(),
            [](const AckedOp* a, const AckedOp* b) { return a->acked_ms < b->acked_ms; });
  std::vector<size_t> argmax(by_ack.size());
  for (size_t i = 0; i < by_ack.size(); ++i) {
    argmax[i] = (i > 0 && by_ack[argmax[i - 1]]->hi >= by_ack[i]->hi) ? argmax[i - 1] : i;
  }
  for (const AckedOp& b : acked_) {
    auto end = std::lower_bound(by_ack.begin(), by_ack.end(), b.sent_ms,
                                [](const AckedOp* a, Time t) { return a->acked_ms < t; });
    if (end == by_ack.begin()) continue;
    const AckedOp& a = *by_ack[argmax[end - by_ack.begin() - 1]];
    if (a.hi >= b.lo) {
      Fail("not linearizable: " + OpString(a) + " was acknowledged before " + OpString(b) +
           " was sent");
      return;
    }
  }
}

void Checker::CheckExactlyOnce(const std::vector<paxos::NodeId>& converged) {
  for (const AckedOp& op : acked_) {
    if (op.is_read) continue;
    for (paxos::NodeId n : converged) {
      if (!fresh_.at(n).contains(SessionKey{op.client_id, op.sequence})) {
        std::ostringstream os;
        os << "acknowledged command never applied at node " << n << ": " << OpString(op);
        Fail(os.str());
        return;
      }
    }
  }
}

}  // namespace ballot::sim
