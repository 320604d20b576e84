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
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/session_table.h"
#include "statemachine/snapshot_stream.h"
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

// A snapshot in the making (Applier::BeginSnapshot). Owns copies of everything it writes, so
// it may outlive neither nor depend on the Applier: WriteTo runs while the Applier applies on.
class PendingSnapshot {
 public:
  virtual ~PendingSnapshot() = default;
  // Every slot below this is covered.
  virtual paxos::Slot applied_below() const = 0;
  // The log's epoch at applied_below (the newest leader_start's epoch).
  virtual uint64_t log_epoch() const = 0;
  // Writes the whole snapshot: a header (format, applied_below, epoch, membership, session
  // table), then the machine's view. Once; on any thread.
  virtual Status WriteTo(SnapshotWriter* out) = 0;
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

  // The membership at applied_below: the bootstrap configuration (set by the runtime), then
  // every membership change applied from the log (paxos/configuration.h). Recorded in every
  // snapshot, so a replica restored from one knows its configuration.
  void set_configuration(paxos::Configuration config) { configuration_ = std::move(config); }
  const paxos::Configuration& configuration() const { return configuration_; }

  // Starts a snapshot of the state at applied_below(): captures the session table, the epoch,
  // the membership and the machine's point-in-time view (StateMachine::TakeSnapshotView). Call
  // on the apply thread; quick. The result is written later, on any thread, by WriteTo.
  std::unique_ptr<PendingSnapshot> BeginSnapshot();
  // Replaces the state with a stream written by PendingSnapshot::WriteTo. kCorruption on a
  // malformed stream; the machine's RestoreFrom status if it fails. On failure the Applier's own
  // indexes and session table are unchanged, but the machine may be half restored and must not
  // be served from.
  Status RestoreFrom(SnapshotReader* in);

  // The same, through one string: for small states and tests.
  std::string Snapshot();
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
  paxos::Configuration configuration_;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_APPLIER_H_
