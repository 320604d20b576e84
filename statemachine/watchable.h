// Watchable: what a state machine offers so that clients can wait for changes instead of
// polling (net/server/watch_hub.h serves them; docs/fencing.md "Election and watches").
//
// A state machine opts in by also deriving from Watchable. It remembers, for each thing it lets
// clients watch (a lock, a key), the slot of the command that last changed it, and keeps that in
// its snapshot, so that a replica restored from a snapshot still answers "nothing changed after
// slot S" correctly. It may also keep a short history of recent changes in memory, so that a
// watcher that fell a few changes behind sees each of them instead of only the newest.
//
// Called on the thread that applies (like StateMachine::Query), never concurrently with Apply.
// Deterministic in the machine's state, like everything else it does.
#ifndef BALLOT_STATEMACHINE_WATCHABLE_H_
#define BALLOT_STATEMACHINE_WATCHABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot {

// One change of a watched thing, as NextChange reports it.
struct WatchChange {
  paxos::Slot slot = 0;  // the command's slot; several changes in one slot count as one (the last)
  std::string data;      // what StateMachine::Query(query) answered right after that slot
  // True when the machine no longer knows every change between the watcher's position and
  // `slot` (they were dropped from its bounded history, or it was restored from a snapshot):
  // `data` is then the first state it still knows, not necessarily the next one.
  bool gap = false;

  friend bool operator==(const WatchChange&, const WatchChange&) = default;
};

class Watchable {
 public:
  // As `after`: answer at once with the current state and the slot of its last change (0 if the
  // machine knows none): where a new watcher starts (then it watches after that slot).
  static constexpr paxos::Slot kCurrentState = ~paxos::Slot{0};

  virtual ~Watchable() = default;

  // The first change of what `query` names (in the machine's Query format) in a slot above
  // `after`, or std::nullopt if there is none in what the machine has applied so far.
  // kInvalidArgument for a query that names nothing watchable.
  virtual Result<std::optional<WatchChange>> NextChange(std::string_view query,
                                                        paxos::Slot after) const = 0;

  // Changes that happen by time alone (a lock's TTL running out) happen when a command whose
  // stamp_ms is at least their time is applied. The earliest such time, or 0 if none is due:
  // the leader proposes TickCommand() once its clock passed it, so that watchers learn of an
  // expiry even when no client sends anything.
  virtual uint64_t NextDeadlineMs() const { return 0; }
  // A command that changes nothing but the machine's time. Empty: the machine has none.
  virtual std::string TickCommand() const { return {}; }
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_WATCHABLE_H_
