// Replaying journal records onto the state LMDB holds: the one rule shared by LmdbStore's
// recovery (store/lmdb_store.cc) and the simulator's model of the journaled disk
// (store/mem_journal_store.h), so that the simulator's crashes exercise the replay that ships.
#ifndef BALLOT_STORE_JOURNAL_REPLAY_H_
#define BALLOT_STORE_JOURNAL_REPLAY_H_

#include <string_view>
#include <vector>

#include "paxos/ready.h"
#include "paxos/status.h"

namespace ballot::store {

// Applies journaled batches (payloads of EncodeBatchPayload, oldest first) to a state loaded
// from LMDB, exactly as a checkpoint would write them: the promise and chosen_below only grow,
// entries below the snapshot (state->applied_below) are skipped. Afterwards state->entries is in
// slot order and every slot in [applied_below, chosen_below) must be present: kCorruption if a
// payload does not decode or a chosen slot is missing.
Status ReplayJournal(const std::vector<std::string_view>& payloads, paxos::DurableState* state);

// The error for a chosen slot that the log lacks (shared with LmdbStore::Load's own check).
Status MissingChosenSlot(paxos::Slot slot, paxos::Slot chosen_below, paxos::Slot applied_below);

}  // namespace ballot::store

#endif  // BALLOT_STORE_JOURNAL_REPLAY_H_
