// Applier: turns chosen log entries into StateMachine::Apply calls, replica-side.
//
// For every entry, in slot order, it tracks the log's current epoch (leader_start entries),
// rejects commands whose expected_epoch does not match it, answers retried commands from the
// replicated session table (exactly-once), and passes fresh commands to the user's state
// machine in one batch. Its snapshot holds the session table, the epoch and the user's snapshot.
// Single-threaded; deterministic.
#ifndef BALLOT_STATEMACHINE_APPLIER_H_
#define BALLOT_STATEMACHINE_APPLIER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/session_table.h"
#include "statemachine/state_machine.h"

namespace ballot {

// The answer to one command, routed by the runtime to the waiting client (if this node has one).
struct Reply {
  uint64_t client_id = 0;
  uint64_t sequence = 0;
  paxos::Slot slot = 0;
  uint64_t epoch = 0;  // the log's epoch at that slot (the fencing token it ran under)
  Outcome outcome;
  bool duplicate = false;  // answered from the session table, not applied again
};

class Applier {
 public:
  explicit Applier(std::unique_ptr<StateMachine> machine, SessionTable::Limits limits = {});
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  // Applies entries that must continue exactly at applied_below(), in slot order (CHECKed).
  // Appends one Reply per command to *replies, in log order. The fresh commands of the call go
  // to the machine in one StateMachine::Apply; a duplicate of a command earlier in the same call
  // is answered with that command's outcome. Replicas may group entries into calls differently:
  // the replies and the resulting state do not depend on the grouping.
  void Apply(const std::vector<paxos::Entry>& entries, std::vector<Reply>* replies);

  Outcome Query(std::string_view request) const { return machine_->Query(request); }

  paxos::Slot applied_below() const { return applied_below_; }
  uint64_t log_epoch() const { return log_epoch_; }
  StateMachine& machine() { return *machine_; }
  const SessionTable& sessions() const { return sessions_; }

  // Everything needed to resume at applied_below(): checksummed by the store, not here.
  std::string Snapshot() const;
  // Replaces the state with a Snapshot() output. Malformed input returns kCorruption with this
  // Applier unchanged; if the machine's own Restore() fails, its status is returned, this
  // Applier's session table and indexes are unchanged, and the machine must not be served from.
  Status Restore(std::string_view snapshot);

 private:
  struct Batch;
  void AdmitCommand(paxos::Slot slot, const paxos::Command& command, Batch* batch,
                    std::vector<Reply>* replies);
  void AddFresh(paxos::Slot slot, const paxos::Command& command, uint64_t ticket,
                size_t reply_index, Batch* batch);
  void RunBatch(Batch* batch, std::vector<Reply>* replies);

  std::unique_ptr<StateMachine> machine_;
  SessionTable sessions_;
  paxos::Slot applied_below_ = 1;
  uint64_t log_epoch_ = 0;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_APPLIER_H_
