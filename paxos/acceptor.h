// Acceptor: the Paxos role that promises and accepts, and holds the leader lease.
//
// Rules (each has a unit test in tests/paxos/acceptor_test.cc):
//   - promise a ballot only if it is >= every ballot promised before, and no other node's lease
//     is running;
//   - accept (ballot, value) at a slot only if ballot >= the promised ballot; accepting raises
//     the promise to that ballot;
//   - never accept, at a slot known chosen, a value other than the chosen one;
//   - after a restart, hold an anonymous lease for a full lease period, because the lease this
//     acceptor granted before the crash was not persisted.
// Writes it makes (the promise, accepted entries) become durable through the replica's persist
// batches; replies that depend on them are only sent after that.
#ifndef BALLOT_PAXOS_ACCEPTOR_H_
#define BALLOT_PAXOS_ACCEPTOR_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "paxos/slot_log.h"
#include "paxos/types.h"

namespace ballot::paxos {

class Acceptor {
 public:
  enum class Verdict {
    kOk,
    kStaleBallot,        // a higher ballot is already promised
    kLeased,             // another node's lease is running
    kConflictsWithChosen // the slot is chosen with a different value (a protocol bug elsewhere)
  };

  // `now` is the tick of construction; the restart lease runs from it.
  Acceptor(SlotLog* log, Ballot promised, uint64_t lease_ticks, uint64_t now);
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  Ballot promised() const { return promised_; }

  // Would this acceptor promise `b` to its node at `now`? Changes nothing (pre-vote).
  Verdict CheckPromise(Ballot b, uint64_t now) const;
  // Phase 1b: promises `b` if CheckPromise allows it.
  Verdict Prepare(Ballot b, uint64_t now);
  // Accepted entries at slots >= from, in slot order: the phase 1b report.
  std::vector<Entry> AcceptedFrom(Slot from) const;

  // Phase 2b: accepts the proposal under ballot `b`.
  Verdict Accept(Ballot b, Slot slot, const Value& value);
  // Records a value learned to be chosen (catch-up). The stored ballot never goes down, so a
  // later phase 1 still ranks this report at least as high as before.
  void LearnChosen(const Entry& chosen);

  // The leader of `leader` was heard at `now`: refuse other candidates until now + lease_ticks.
  void GrantLease(Ballot leader, uint64_t now);
  bool LeaseBlocks(NodeId candidate, uint64_t now) const;

 private:
  SlotLog* const log_;
  const uint64_t lease_ticks_;
  Ballot promised_;
  NodeId lease_holder_ = kNoNode;  // kNoNode with a running lease: the post-restart lease
  uint64_t lease_until_ = 0;       // exclusive
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_ACCEPTOR_H_
