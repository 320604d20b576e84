// Fuzz target: SessionTable::Deserialize (statemachine/session_table.h), the exactly-once table
// restored from a snapshot.
//
// Properties:
//   - a rejected input is kCorruption and leaves the table unchanged;
//   - an accepted one is canonical (Serialize() gives the same bytes back), and the same bytes
//     under smaller limits are accepted only if they fit them;
//   - the restored table keeps its rules: commands admitted afterwards for every restored
//     session (retries, fresh sequences, acknowledgements, new clients past the session bound)
//     never CHECK-fail, never call a sequence at or below the floor fresh, and never call a
//     command of a client with a tombstone (an evicted session) anything but expired.
#include <glog/logging.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "statemachine/session_table.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/restore_check.h"

namespace {

using ballot::SessionTable;

// A table with one recorded result, so that "unchanged" is not trivially an empty table.
SessionTable Primed(SessionTable::Limits limits) {
  SessionTable table(limits);
  ballot::paxos::Command c;
  c.client_id = 99;
  c.sequence = 1;
  auto admission = table.Admit(c, 1);
  CHECK(admission.verdict == SessionTable::Verdict::kFresh);
  table.Record(admission.ticket, ballot::Outcome{ballot::StatusCode::kOk, "r", ""});
  return table;
}

void Exercise(SessionTable& table) {
  // Commands come after every restored session's last activity, and slots grow, as the log
  // does (Applier::Restore guarantees that: the table's activity is below applied_below). A
  // restored table may name any slot, so start just above the highest one, if there is room.
  constexpr int kSlotsUsed = 16;
  if (table.last_active_slot_max() > UINT64_MAX - kSlotsUsed) return;
  ballot::paxos::Slot slot = table.last_active_slot_max() + 1;
  std::vector<uint64_t> tickets;
  for (uint64_t client_id : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{1000}}) {
    const uint64_t floor = table.floor_sequence(client_id);
    for (uint64_t sequence : {floor, floor + 1, floor + 2, uint64_t{1}}) {
      if (sequence == 0) continue;
      const bool evicted = table.has_tombstone(client_id);
      ballot::paxos::Command c;
      c.client_id = client_id;
      c.sequence = sequence;
      c.acked_sequence = sequence == floor + 2 ? floor + 1 : 0;
      auto admission = table.Admit(c, slot++);
      if (evicted) {
        CHECK(admission.verdict == SessionTable::Verdict::kExpired)
            << "a command of an evicted session was not answered \"session expired\"";
      }
      if (admission.verdict == SessionTable::Verdict::kFresh) {
        CHECK_GT(sequence, floor) << "a sequence at or below the floor was admitted as fresh";
        tickets.push_back(admission.ticket);
      }
    }
  }
  for (uint64_t t : tickets) table.Record(t, ballot::Outcome{ballot::StatusCode::kOk, "x", ""});
  CHECK(!table.has_pending());
  CHECK_LE(table.session_count(), table.limits().sessions_max);
  CHECK_LE(table.tombstone_count(), table.limits().tombstones_max);
  SessionTable copy(table.limits());
  CHECK(copy.Deserialize(table.Serialize()).ok());
  CHECK(copy == table);
}

}  // namespace

BALLOT_FUZZ_TARGET(session_table) {
  const std::string_view in = ballot::fuzz::AsView(data, size);
  SessionTable table = Primed({});
  const SessionTable before = table;
  ballot::Status s = table.Deserialize(in);
  if (!s.ok()) {
    CHECK(s.code() == ballot::StatusCode::kCorruption) << s.ToString();
    CHECK(table == before) << "a rejected input changed the table";
    return;
  }
  CHECK(table.Serialize() == in) << "Deserialize accepted what Serialize would not write";

  SessionTable small = Primed({.sessions_max = 2, .results_per_session_max = 2});
  if (small.Deserialize(in).ok()) {
    CHECK_LE(small.session_count(), 2u);
    CHECK(small.Serialize() == in);
    Exercise(small);
  }
  Exercise(table);
}
