#include "paxos/acceptor.h"

#include <glog/logging.h>

#include <algorithm>

namespace ballot::paxos {

Acceptor::Acceptor(SlotLog* log, Ballot promised, uint64_t lease_ticks, uint64_t now,
                   bool lease_to_lower_ballot)
    : log_(log),
      lease_ticks_(lease_ticks),
      lease_to_lower_ballot_(lease_to_lower_ballot),
      promised_(promised) {
  // Whatever lease this acceptor granted before a restart, it may still be running at the old
  // leader, so honour one full lease period for nobody. A grant during it does not end it: the
  // lost lease may belong to a higher ballot than the one heard now.
  anonymous_until_ticks_ = now + lease_ticks_;
  lease_until_ticks_ = anonymous_until_ticks_;
}

bool Acceptor::LeaseBlocks(NodeId candidate, uint64_t now, Ballot handover) const {
  if (now < anonymous_until_ticks_ && !lease_to_lower_ballot_) return true;
  if (now >= lease_until_ticks_) return false;
  if (!handover.IsZero() && handover == lease_ballot_) return false;  // its holder handed over
  return lease_ballot_.IsZero() || lease_ballot_.node() != candidate;
}

Acceptor::Verdict Acceptor::CheckPromise(Ballot b, uint64_t now, Ballot handover) const {
  if (b < promised_) return Verdict::kStaleBallot;
  if (b > promised_ && LeaseBlocks(b.node(), now, handover)) return Verdict::kLeased;
  return Verdict::kOk;
}

Acceptor::Verdict Acceptor::Prepare(Ballot b, uint64_t now, Ballot handover) {
  Verdict v = CheckPromise(b, now, handover);
  if (v != Verdict::kOk) return v;
  if (b > promised_) {
    promised_ = b;
  }
  return Verdict::kOk;
}

std::vector<Entry> Acceptor::AcceptedFrom(Slot from) const {
  std::vector<Entry> out;
  for (auto it = log_->LowerBound(std::max(from, log_->dropped_below())); it != log_->end(); ++it) {
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

bool Acceptor::GrantLease(Ballot leader, uint64_t now) {
  if (leader < promised_) return false;
  if (lease_to_lower_ballot_) {
    // BUG, planted for tests: the holder is replaced without raising the promise, so a stale
    // leader whose ballot still equals the promise takes over a newer ballot's lease.
    lease_ballot_ = leader;
    lease_until_ticks_ = std::max(lease_until_ticks_, now + lease_ticks_);
    return true;
  }
  // Implicit promise: from now on lower ballots are stale here, so the lease (which only ever
  // goes to a ballot >= the promise) can never move down.
  promised_ = leader;
  CHECK(leader >= lease_ballot_) << "a lease must never move to a lower ballot: "
                                 << ToString(leader) << " < " << ToString(lease_ballot_);
  lease_ballot_ = leader;
  lease_until_ticks_ = std::max(lease_until_ticks_, now + lease_ticks_);
  return true;
}

}  // namespace ballot::paxos
