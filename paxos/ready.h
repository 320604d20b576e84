// What the core hands to its runtime (Ready), and the durable state it is restarted from.
//
// The durability order is part of the contract:
//   1. `send_now` may go out at once (heartbeats, prepares, accepts to peers, replies that
//      promise nothing).
//   2. `persist` must be written and synced as ONE transaction (group commit). Only after that
//      succeeds may the runtime send `send_after_persist` and call Replica::Advance().
//   3. `apply` holds chosen entries, in slot order, whose values are already durable here; the
//      runtime applies them to the state machine at once.
#ifndef BALLOT_PAXOS_READY_H_
#define BALLOT_PAXOS_READY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "paxos/message.h"
#include "paxos/types.h"

namespace ballot::paxos {

// Writes for one group commit.
struct PersistBatch {
  std::optional<Ballot> promised;  // new promised ballot, if it changed
  std::vector<Entry> entries;      // accepted (or learned chosen) values to write, by slot
  // Every slot below this is chosen and its value is written (here or earlier). Only grows.
  std::optional<Slot> chosen_below;

  bool empty() const { return !promised && entries.empty() && !chosen_below; }
};

// Leadership changes, raised in the order they happen at this replica.
struct LeadershipEvent {
  enum class Kind { kBecameLeader, kLostLeadership };
  Kind kind;
  Ballot epoch;  // the leadership's ballot
  // kBecameLeader: the slot of this leader's leader_start entry. Raised only once it and every
  // slot before it are chosen, so everything the new leader recovered is settled.
  Slot start_slot = 0;
};

// A linearizable read may be served once the state machine has applied every slot < read_below.
struct ReadState {
  uint64_t read_id = 0;
  Slot read_below = 0;
};

// Reads that can no longer be served here (leadership lost): the client retries elsewhere.
struct ReadFailure {
  uint64_t read_id = 0;
};

// This replica is missing chosen slots that the leader has compacted into a snapshot. The
// runtime fetches the leader's snapshot (covering every slot below at least `below`), restores
// its state machine from it, and calls Replica::InstallSnapshot.
struct SnapshotNeeded {
  NodeId from = kNoNode;
  Slot below = 0;
};

struct Ready {
  std::vector<Message> send_now;
  std::optional<PersistBatch> persist;  // at most one outstanding: see Replica::Advance()
  std::vector<Message> send_after_persist;
  std::vector<Entry> apply;
  std::vector<LeadershipEvent> events;
  std::vector<ReadState> reads;
  std::vector<ReadFailure> failed_reads;
  // Commands that were queued here as leader but will never be proposed by this replica
  // (leadership lost). Their clients retry elsewhere, under the same session sequence.
  std::vector<Command> dropped;
  std::optional<SnapshotNeeded> snapshot_needed;
  // The configuration now governing this replica (after every change it knows chosen), when it
  // changed: the runtime connects to new members and forgets removed ones. Set in the first
  // Ready too.
  std::optional<Configuration> configuration;

  bool empty() const {
    return send_now.empty() && !persist && send_after_persist.empty() && apply.empty() &&
           events.empty() && reads.empty() && failed_reads.empty() && dropped.empty() &&
           !snapshot_needed && !configuration;
  }
};

// What a replica restarts from: everything ever synced by PersistBatch writes.
struct DurableState {
  Ballot promised;
  std::vector<Entry> entries;  // in slot order
  Slot chosen_below = 1;       // every slot below is chosen
  // Slots below this were already applied to a state machine that the runtime restored from a
  // snapshot; the replica will not hand them out in Ready::apply again.
  Slot applied_below = 1;
  // The configuration in force at applied_below (from the snapshot that was restored). Empty:
  // none was restored, so it is Options::members (or unknown, for a joining node); changes in
  // the restored log after applied_below are applied on top.
  Configuration config;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_READY_H_
