#include "paxos/acceptor.h"

#include <algorithm>

#include <glog/logging.h>

namespace ballot::paxos {

Acceptor::Acceptor(SlotLog* log, Ballot promised, uint64_t lease_ticks, uint64_t now)
    : log_(log), lease_ticks_(lease_ticks), promised_(promised) {
  // Whatever lease this acceptor granted before a restart, it may still be running at the old
  // leader, so honour one full lease period for nobody.
  lease_until_ = now + lease_ticks_;
}

bool Acceptor::LeaseBlocks(NodeId candidate, uint64_t now) const {
  return now < lease_until_ && lease_holder_ != candidate;
}

Acceptor::Verdict Acceptor::CheckPromise(Ballot b, uint64_t now) const {
  if (b < promised_) return Verdict::kStaleBallot;
  if (b > promised_ && LeaseBlocks(b.node(), now)) return Verdict::kLeased;
  return Verdict::kOk;
}

Acceptor::Verdict Acceptor::Prepare(Ballot b, uint64_t now) {
  Verdict v = CheckPromise(b, now);
  if (v != Verdict::kOk) return v;
  if (b > promised_) {
    promised_ = b;
  }
  return Verdict::kOk;
}

std::vector<Entry> Acceptor::AcceptedFrom(Slot from) const {
  std::vector<Entry> out;
  for (auto it = log_->LowerBound(std::max(from, log_->dropped_below())); it != log_->end();
       ++it) {
    out.push_back(it->second.entry);
  }
  return out;
}

Acceptor::Verdict Acceptor::Accept(Ballot b, Slot slot, const Value& value) {
  if (b < promised_) return Verdict::kStaleBallot;
  if (b > promised_) {
    promised_ = b;
  }
  // Below our snapshot the slot is chosen and we no longer hold its value. Voting for the
  // proposal is still safe: every proposal is safe for every slot from its leader's phase-1
  // start, because no acceptor promises a leader that starts below its snapshot (see
  // Replica::OnPrepare), so the value proposed here is the chosen one. Refusing would leave a
  // leader whose other followers compacted too unable to finish its recovery.
  if (slot < log_->dropped_below()) return Verdict::kOk;
  const SlotRecord* r = log_->Find(slot);
  if (r != nullptr && r->chosen && !(r->entry.value == value)) {
    // Only a stale leader (its ballot below the one the value was chosen at, which this
    // acceptor may know only from catch-up) can propose another value here.
    VLOG(1) << "slot " << slot << " is chosen with another value; refusing the proposal of "
            << ToString(b);
    return Verdict::kConflictsWithChosen;
  }
  if (r != nullptr && r->entry.ballot == b && r->entry.value == value) return Verdict::kOk;
  log_->Write(Entry{slot, b, value});
  return Verdict::kOk;
}

void Acceptor::LearnChosen(const Entry& chosen) {
  if (chosen.slot < log_->dropped_below()) return;
  const SlotRecord* r = log_->Find(chosen.slot);
  Entry e = chosen;
  if (r != nullptr) {
    if (r->entry.value == chosen.value && r->entry.ballot >= chosen.ballot) return;
    e.ballot = std::max(r->entry.ballot, chosen.ballot);
  }
  log_->Write(e);
}

void Acceptor::GrantLease(Ballot leader, uint64_t now) {
  lease_holder_ = leader.node();
  lease_until_ = std::max(lease_until_, now + lease_ticks_);
}

}  // namespace ballot::paxos
