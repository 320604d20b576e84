// Configuration of one replica of the core. Times are in ticks: the runtime decides how long a
// tick is (the server uses 10 ms) and calls Replica::Tick() once per tick.
#ifndef BALLOT_PAXOS_OPTIONS_H_
#define BALLOT_PAXOS_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "paxos/status.h"
#include "paxos/tuning.h"
#include "paxos/types.h"

namespace ballot::paxos {

// Deliberately planted bugs, used only by the simulator's regression tests to prove that it
// catches each of them ("teeth"). Never set outside tests.
struct PlantedBugs {
  bool ack_accept_before_durable = false;    // Accepted sent before the accept is synced
  bool ignore_accepted_in_recovery = false;  // new leader drops values reported in phase 1
  bool forget_promise_on_restart = false;    // promised ballot is not persisted
  bool apply_out_of_order = false;           // learner applies chosen slots past a gap
  bool lease_from_ack_time = false;          // leader times its lease from the ack, not the send
  bool lease_to_lower_ballot = false;        // a late heartbeat of a lower ballot takes the lease
  bool announce_older_epoch = false;         // a leader that saw a newer epoch still becomes usable
  bool no_persist_stall_stepdown = false;    // a leader whose disk hangs keeps leading
  // Not a core bug: the simulator runs nodes' clocks faster and slower than
  // Options::max_clock_drift_ppm allows (the core ignores this field).
  bool clock_drift_beyond_bound = false;
  // Not a core bug either: the simulator (with membership changes) restarts a founding member
  // whose disk was wiped as a voter with a blank memory, as if no safe-bootstrap gate existed.
  bool wiped_disk_votes_blank = false;
};

// The tuning (paxos/tuning.h) plus who this replica is and the planted bugs, which only tests set.
struct Options : Tuning {
  Options() = default;
  explicit Options(const Tuning& tuning) : Tuning(tuning) {}

  NodeId id = kNoNode;
  // The bootstrap configuration: every member of a new group, all voters, including id. Used
  // only when DurableState::config is empty (nothing was restored); afterwards membership comes
  // from the log (paxos/configuration.h).
  std::vector<NodeId> members;
  // This node joins an existing group: with nothing restored it starts with an unknown
  // configuration, as a learner that never campaigns, until the log makes it a voter. `members`
  // may then be empty.
  bool join = false;

  PlantedBugs planted;  // tests only

  // Checks the configuration; the message names the offending field and why.
  Status Validate() const;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_OPTIONS_H_
