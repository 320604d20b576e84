// Acceptor: the Paxos role that promises and accepts, and holds the leader lease.
//
// Rules (each has a unit test in tests/paxos/acceptor_test.cc):
//   - promise a ballot only if it is >= every ballot promised before, and no other node's lease
//     is running;
//   - accept (ballot, value) at a slot only if ballot >= the promised ballot; accepting raises
//     the promise to that ballot;
//   - never accept, at a slot known chosen, a value other than the chosen one;
//   - a lease belongs to a ballot: it is granted only to a ballot >= the promise, and granting it
//     raises the promise to that ballot (a heartbeat or accept from ballot b acts as an implicit
//     promise of b), so a lower ballot's late message can never take over a higher ballot's
//     lease;
//   - after a restart, hold an anonymous lease for a full lease period, because the lease this
//     acceptor granted before the crash was not persisted.
//
// Why a lease needs no durable write: the promise raised by GrantLease is persisted lazily (with
// the next batch) and the heartbeat reply does not wait for it. That is safe because
//   (1) a heartbeat reply is not a Paxos vote: it accepts no value and promises no phase-1
//       report, so the Paxos safety argument never relies on this promise being durable; it only
//       makes this acceptor refuse lower ballots sooner;
//   (2) the lease itself lives in memory only. A restart forgets it, and the anonymous lease
//       after a restart blocks every candidate - including ones whose heartbeats arrive during
//       it - for a full lease period from the restart, which ends no earlier than any lease
//       granted before the crash. After that, the promise read back from disk may be lower than
//       the ballot the lost lease belonged to, but that lease has run out too, so letting a
//       lower ballot lease this acceptor again hands no running lease to anybody else.
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
    kStaleBallot,         // a higher ballot is already promised
    kLeased,              // another node's lease is running
    kConflictsWithChosen  // the slot is chosen with a different value (a protocol bug elsewhere)
  };

  // `now` is the tick of construction; the restart lease runs from it.
  // `lease_to_lower_ballot` plants the old bug for the simulator's teeth tests: any ballot >= the
  // promise takes the lease over and the promise is not raised. Never set outside tests.
  Acceptor(SlotLog* log, Ballot promised, uint64_t lease_ticks, uint64_t now,
           bool lease_to_lower_ballot = false);
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  Ballot promised() const { return promised_; }

  // Would this acceptor promise `b` to its node at `now`? Changes nothing (pre-vote).
  // `handover`: the candidate was handed leadership by the leader of that ballot (a transfer);
  // a running lease that belongs to that ballot does not block it, since its holder gave it up.
  Verdict CheckPromise(Ballot b, uint64_t now, Ballot handover = Ballot()) const;
  // Phase 1b: promises `b` if CheckPromise allows it.
  Verdict Prepare(Ballot b, uint64_t now, Ballot handover = Ballot());
  // Accepted entries at slots >= from, in slot order: the phase 1b report.
  std::vector<Entry> AcceptedFrom(Slot from) const;

  // Phase 2b: accepts the proposal under ballot `b`.
  Verdict Accept(Ballot b, Slot slot, const Value& value);
  // Records a value learned to be chosen (catch-up). The stored ballot never goes down, so a
  // later phase 1 still ranks this report at least as high as before.
  void LearnChosen(const Entry& chosen);

  // The leader of ballot `leader` was heard at `now`. If `leader` is below the promise, nothing
  // is granted and false is returned (the caller answers "stale"). Otherwise the promise is
  // raised to `leader` and every other node's candidates are refused until now + lease_ticks.
  // The lease moves only upwards: a running lease of a higher ballot is never handed to a lower
  // one (the raised promise already refuses it).
  bool GrantLease(Ballot leader, uint64_t now);
  // Would a promise to a candidate of node `candidate` break a running lease?
  bool LeaseBlocks(NodeId candidate, uint64_t now, Ballot handover = Ballot()) const;
  Ballot lease_ballot() const { return lease_ballot_; }

 private:
  SlotLog* const log_;
  const uint64_t lease_ticks_;
  const bool lease_to_lower_ballot_;  // planted bug, tests only
  Ballot promised_;
  Ballot lease_ballot_;             // the ballot whose leader holds the lease (zero: none yet)
  uint64_t lease_until_ticks_ = 0;  // exclusive
  // The post-restart lease, for nobody: it blocks every candidate whatever is granted meanwhile.
  uint64_t anonymous_until_ticks_ = 0;  // exclusive
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_ACCEPTOR_H_
