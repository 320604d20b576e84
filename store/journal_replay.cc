#include "store/journal_replay.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "store/record_codec.h"

namespace ballot::store {

Status MissingChosenSlot(paxos::Slot slot, paxos::Slot chosen_below, paxos::Slot applied_below) {
  return Status(StatusCode::kCorruption, "slot " + std::to_string(slot) +
                                             " is missing although chosen_below is " +
                                             std::to_string(chosen_below) + " (applied_below " +
                                             std::to_string(applied_below) + ")");
}

Status ReplayJournal(const std::vector<std::string_view>& payloads, paxos::DurableState* state) {
  std::map<paxos::Slot, paxos::Entry> entries;
  for (paxos::Entry& e : state->entries) entries.emplace(e.slot, std::move(e));
  for (std::string_view payload : payloads) {
    paxos::PersistBatch batch;
    if (Status s = DecodeBatchPayload(payload, &batch); !s.ok()) {
      return Status(StatusCode::kCorruption, "journal record: " + s.message());
    }
    if (batch.promised && *batch.promised > state->promised) state->promised = *batch.promised;
    for (paxos::Entry& e : batch.entries) {
      if (e.slot >= state->applied_below) entries[e.slot] = std::move(e);
    }
    if (batch.chosen_below) {
      state->chosen_below = std::max(state->chosen_below, *batch.chosen_below);
    }
  }
  state->entries.clear();
  paxos::Slot expect = state->applied_below;  // the next slot that must exist below chosen_below
  for (auto& [slot, e] : entries) {
    if (slot < state->chosen_below) {
      if (slot != expect)
        return MissingChosenSlot(expect, state->chosen_below, state->applied_below);
      ++expect;
    }
    state->entries.push_back(std::move(e));
  }
  if (expect < state->chosen_below) {
    return MissingChosenSlot(expect, state->chosen_below, state->applied_below);
  }
  return Status::Ok();
}

}  // namespace ballot::store
