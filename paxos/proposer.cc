#include "paxos/proposer.h"

#include <glog/logging.h>

#include <algorithm>

namespace ballot::paxos {

Proposer::Proposer(const Options& options, const Configuration* config)
    : options_(options), config_(config) {}

void Proposer::StartPhase1(Ballot ballot, Slot from) {
  CHECK(ballot > ballot_) << "phase 1 must use a fresh, higher ballot";
  Reset();
  ballot_ = ballot;
  recovering_ = true;
  recover_next_ = from;
  next_slot_ = from;
  newer_leader_ = Ballot();
}

bool Proposer::HasPromiseQuorum() const { return config_->IsQuorum(promised_by_); }

std::vector<NodeId> Proposer::VotersNotPromised() const {
  std::vector<NodeId> out;
  for (NodeId n : config_->voters()) {
    if (std::find(promised_by_.begin(), promised_by_.end(), n) == promised_by_.end()) {
      out.push_back(n);
    }
  }
  return out;
}

bool Proposer::AddPromise(NodeId from, const std::vector<Entry>& accepted) {
  if (!recovering_) return false;
  if (std::find(promised_by_.begin(), promised_by_.end(), from) != promised_by_.end()) {
    return false;  // duplicate delivery
  }
  const bool had_quorum = HasPromiseQuorum();
  promised_by_.push_back(from);
  if (!options_.planted.ignore_accepted_in_recovery) {
    for (const Entry& e : accepted) {
      if (e.slot < recover_next_) continue;
      auto it = reported_.find(e.slot);
      if (it == reported_.end() || e.ballot > it->second.ballot) reported_[e.slot] = e;
      if (e.value.leader_start) {
        Ballot& seen = leader_starts_[e.slot];
        seen = std::max(seen, e.value.epoch);
      }
    }
  }
  return !had_quorum && HasPromiseQuorum();
}

std::vector<Entry> Proposer::RecoverNext(uint64_t now) {
  CHECK(recovering_ && HasPromiseQuorum() && in_flight_.empty());
  Slot last = reported_.empty() ? recover_next_ - 1 : reported_.rbegin()->first;
  std::vector<Entry> out;
  Slot s = recover_next_;
  for (; s <= last; ++s) {
    auto it = reported_.find(s);
    // The highest-ballot value may already be chosen; any other choice could contradict it.
    // Except: a value accepted below the epoch of a leader_start reported at an earlier slot was
    // never chosen (that leader's phase 1 would have seen it and started after it), so it
    // becomes a no-op. This keeps a stale leader's leftovers out of the log.
    bool keep = it != reported_.end() && it->second.ballot >= newer_leader_;
    Value v = keep ? it->second.value : Value{ballot_, false, {}};
    auto ls = leader_starts_.find(s);
    if (ls != leader_starts_.end()) newer_leader_ = std::max(newer_leader_, ls->second);
    const bool change = v.config.has_value();
    out.push_back(Entry{s, ballot_, std::move(v)});
    if (change) break;  // the slots after it belong to the new configuration: next stage
  }
  if (s > last) {
    out.push_back(Entry{last + 1, ballot_, Value{ballot_, true, {}}});
    recovering_ = false;
    reported_.clear();
    leader_starts_.clear();
    next_slot_ = last + 2;
  } else {
    recover_next_ = s + 1;
    next_slot_ = s + 1;
    reported_.erase(reported_.begin(), reported_.lower_bound(recover_next_));
  }
  for (const Entry& e : out) Track(e, now);
  return out;
}

void Proposer::SkipRecoveryTo(Slot slot, Ballot newer_leader) {
  if (!recovering_ || slot <= recover_next_) return;
  CHECK(in_flight_.empty());
  recover_next_ = slot;
  next_slot_ = std::max(next_slot_, slot);
  newer_leader_ = std::max(newer_leader_, newer_leader);
  reported_.erase(reported_.begin(), reported_.lower_bound(slot));
}

Proposer::EnqueueResult Proposer::Enqueue(Command command) {
  if (pending_.size() >= options_.pending_commands_max) return EnqueueResult::kOverloaded;
  pending_.push_back(std::move(command));
  return EnqueueResult::kOk;
}

bool Proposer::CanPropose(Slot chosen_below) const {
  return !recovering_ && !pending_.empty() &&
         next_slot_ - std::min(next_slot_, chosen_below) < options_.window_slots_max;
}

Value Proposer::TakeBatch() {
  Value v{ballot_, false, {}};
  v.commands.reserve(std::min(pending_.size(), options_.batch_commands_max));
  size_t bytes = 0;
  while (!pending_.empty() && v.commands.size() < options_.batch_commands_max) {
    size_t size = pending_.front().payload.size();
    // A single oversized command still gets a slot of its own rather than starving.
    if (!v.commands.empty() && bytes + size > options_.batch_bytes_max) break;
    bytes += size;
    v.commands.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  return v;
}

std::vector<Entry> Proposer::ProposeBatches(Slot chosen_below, uint64_t now) {
  std::vector<Entry> out;
  while (CanPropose(chosen_below)) {
    Entry e{next_slot_++, ballot_, TakeBatch()};
    Track(e, now);
    out.push_back(std::move(e));
  }
  return out;
}

Entry Proposer::ProposeValue(Value value, uint64_t now) {
  CHECK(!recovering_);
  Entry e{next_slot_++, ballot_, std::move(value)};
  Track(e, now);
  return e;
}

void Proposer::Track(const Entry& entry, uint64_t now) {
  InFlight f;
  f.entry = entry;
  f.sent_at = now;
  in_flight_.emplace(entry.slot, std::move(f));
}

std::vector<Slot> Proposer::AddAccepted(NodeId from, const std::vector<Slot>& slots) {
  std::vector<Slot> chosen;
  for (Slot s : slots) {
    auto it = in_flight_.find(s);
    if (it == in_flight_.end()) continue;
    std::vector<NodeId>& acks = it->second.acks;
    if (std::find(acks.begin(), acks.end(), from) != acks.end()) continue;
    acks.push_back(from);
    // Every slot in flight is governed by the current configuration (one change at a time,
    // nothing proposed after a change until it is chosen: paxos/configuration.h).
    if (config_->IsQuorum(acks)) {
      chosen.push_back(s);
      in_flight_.erase(it);
    }
  }
  return chosen;
}

std::map<NodeId, std::vector<Entry>> Proposer::CollectRetries(uint64_t now, uint64_t retry_ticks) {
  std::map<NodeId, std::vector<Entry>> out;
  for (auto& [slot, f] : in_flight_) {
    if (f.sent_at + retry_ticks > now) continue;
    f.sent_at = now;
    for (const Member& member : config_->members()) {
      const NodeId peer = member.id;
      if (std::find(f.acks.begin(), f.acks.end(), peer) != f.acks.end()) continue;
      std::vector<Entry>& batch = out[peer];
      if (batch.size() < options_.accept_entries_max) batch.push_back(f.entry);
    }
  }
  return out;
}

std::vector<Command> Proposer::Reset() {
  std::vector<Command> dropped(std::make_move_iterator(pending_.begin()),
                               std::make_move_iterator(pending_.end()));
  pending_.clear();
  in_flight_.clear();
  promised_by_.clear();
  reported_.clear();
  leader_starts_.clear();
  recovering_ = false;
  return dropped;
}

}  // namespace ballot::paxos
