// Proposer: the leader's half of Multi-Paxos.
//
// Phase 1 runs once per leadership, over every slot from the first one this replica does not
// know to be chosen: the promises report what each acceptor accepted there, and recovery
// re-proposes the highest-ballot value of every open slot, fills gaps with no-ops, and appends
// the leader_start entry that marks the new epoch in the log. After that, each batch of commands
// needs only phase 2: one round trip to a majority.
//
// Recovery goes in stages when it finds membership changes (paxos/configuration.h): the slots up
// to and including the first change are proposed first; only once they are chosen, and a
// majority of the new configuration's voters have promised (their reports merged in), are the
// slots after it decided. Slots after a change may have been chosen by the new voters, which the
// old majority need not have seen.
//
// It owns the bounded queue of commands waiting for a slot and the bounded window of slots in
// flight. It does not send anything itself; the Replica does.
#ifndef BALLOT_PAXOS_PROPOSER_H_
#define BALLOT_PAXOS_PROPOSER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "paxos/options.h"
#include "paxos/types.h"

namespace ballot::paxos {

class Proposer {
 public:
  // `config` is the configuration governing the slots in flight (the Replica's, kept current).
  Proposer(const Options& options, const Configuration* config);
  Proposer(const Proposer&) = delete;
  Proposer& operator=(const Proposer&) = delete;

  // --- Phase 1 ---
  void StartPhase1(Ballot ballot, Slot from);
  // Adds one promise with its accepted entries (those below the next slot to recover are
  // ignored: decided already). True when the promises now form a majority of the configuration.
  bool AddPromise(NodeId from, const std::vector<Entry>& accepted);
  bool HasPromiseQuorum() const;
  // Voters of the configuration that have not promised ballot().
  std::vector<NodeId> VotersNotPromised() const;
  // The next stage of recovery, to propose at ballot() (tracked as in flight): every slot from
  // the next undecided one up to and including the first membership change, or to the end plus
  // the leader_start entry. Requires HasPromiseQuorum() and nothing in flight.
  std::vector<Entry> RecoverNext(uint64_t now);
  bool recovering() const { return recovering_; }
  // Every slot below `slot` is known chosen here (learnt meanwhile): recovery need not decide
  // them again, nor ask for reports about them. `newer_leader` is the highest epoch of the
  // leader_start entries among them (for RecoverNext's rule about stale leftovers).
  void SkipRecoveryTo(Slot slot, Ballot newer_leader);
  // The slot recovery must continue from (for a Prepare to new voters).
  Slot recover_from() const { return recover_next_; }
  Ballot ballot() const { return ballot_; }

  // --- Phase 2 ---
  enum class EnqueueResult { kOk, kOverloaded };
  EnqueueResult Enqueue(Command command);
  bool CanPropose(Slot chosen_below) const;
  // Cuts the queued commands into batches, one slot each, while the window allows.
  std::vector<Entry> ProposeBatches(Slot chosen_below, uint64_t now);
  // Proposes `value` alone in the next slot (a membership change).
  Entry ProposeValue(Value value, uint64_t now);
  // `from` accepted these slots at ballot(). Returns the slots that now have a majority.
  std::vector<Slot> AddAccepted(NodeId from, const std::vector<Slot>& slots);
  // In-flight entries sent at least retry_ticks ago, grouped by each peer that has not accepted
  // them yet (at most accept_entries_max per peer); they count as sent again at `now`.
  std::map<NodeId, std::vector<Entry>> CollectRetries(uint64_t now, uint64_t retry_ticks);

  // Leadership over: returns the commands that were queued but never given a slot.
  std::vector<Command> Reset();
  size_t pending() const { return pending_.size(); }
  size_t in_flight() const { return in_flight_.size(); }

 private:
  struct InFlight {
    Entry entry;
    std::vector<NodeId> acks;
    uint64_t sent_at = 0;
  };
  void Track(const Entry& entry, uint64_t now);
  Value TakeBatch();

  const Options& options_;
  const Configuration* const config_;

  Ballot ballot_;
  std::vector<NodeId> promised_by_;
  std::map<Slot, Entry> reported_;        // highest-ballot accepted entry per slot
  std::map<Slot, Ballot> leader_starts_;  // highest leader_start epoch reported per slot
  bool recovering_ = false;
  Slot recover_next_ = 1;  // the next slot recovery decides
  Ballot newer_leader_;    // see RecoverNext

  Slot next_slot_ = 1;
  std::map<Slot, InFlight> in_flight_;
  std::deque<Command> pending_;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_PROPOSER_H_
