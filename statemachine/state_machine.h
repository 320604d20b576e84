// StateMachine: the interface a user subclasses to get a replicated service.
//
// Ballot chooses commands with Multi-Paxos and hands them to every replica's StateMachine in the
// same order. Contract for implementers:
//   - Deterministic: Apply() must compute its results and its new state only from the current
//     state and the batch. No clocks (use AppliedCommand::stamp_ms, stamped by the leader), no
//     randomness, no iteration over unordered containers whose order could differ, no I/O whose
//     outcome could differ between replicas.
//   - Batch-independent: replicas may split the same commands into batches differently, so
//     applying a batch must give the same outcomes and state as applying its commands one by one,
//     in order.
//   - Threads: Ballot calls Apply, Query, TakeSnapshotView, RestoreFrom/Restore and the leader
//     hooks from one thread at a time, never concurrently with each other: the node's apply
//     thread, or its io thread when ServerOptions::apply_inline is set (the default). With
//     apply_inline a slow Apply also delays heartbeats, so keep it to microseconds or turn
//     apply_inline off. The one exception is SnapshotView::WriteTo, which runs on a background
//     thread while the others continue (statemachine/snapshot_stream.h).
//   - Exactly-once is handled for you: retried commands are answered from the replicated session
//     table (statemachine/session_table.h) and never reach Apply twice.
//   - Errors: a command the rules refuse (e.g. a lock held by another owner) is a result with
//     code kAborted and a message, not a failure of the state machine. A malformed payload is
//     kInvalidArgument. Neither changes state. Restore() returning non-ok means the snapshot is
//     unusable and the replica will not serve.
#ifndef BALLOT_STATEMACHINE_STATE_MACHINE_H_
#define BALLOT_STATEMACHINE_STATE_MACHINE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/snapshot_stream.h"

namespace ballot {

// One command as a state machine sees it.
struct AppliedCommand {
  paxos::Slot slot = 0;
  // The log's current epoch: the epoch of the newest leader_start entry at or before this slot.
  // Strictly increases across leader changes; usable as a fencing token.
  uint64_t epoch = 0;
  uint64_t client_id = 0;
  uint64_t stamp_ms = 0;  // leader's wall clock when proposed; non-decreasing in the log
  std::string_view payload;
};

// The typed answer to one command, returned to the proposer's client.
struct Outcome {
  StatusCode code = StatusCode::kOk;  // kOk, kAborted (refused by the rules), kInvalidArgument
  std::string data;                   // the answer, encoded by the state machine (on kOk)
  std::string message;                // why, when code != kOk

  friend bool operator==(const Outcome&, const Outcome&) = default;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies a batch of chosen commands, in log order. Must append exactly one Outcome per
  // command to *outcomes.
  virtual void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) = 0;

  // Answers a read-only request from the current state (a linearizable read once Ballot has
  // confirmed leadership). Must not change state.
  virtual Outcome Query(std::string_view request) const = 0;

  // Snapshots. Override ONE of the two pairs:
  //
  // The simple pair, for states of a few megabytes: the whole state as one string. Ballot calls
  // Snapshot() on the apply thread, so Apply waits while it runs; Restore(Snapshot()) must give
  // an equal state. kCorruption / kInvalidArgument if a snapshot cannot be read.
  virtual std::string Snapshot() const;
  virtual Status Restore(std::string_view snapshot);
  //
  // The streaming pair, for large states (statemachine/snapshot_stream.h): TakeSnapshotView()
  // captures a point-in-time view quickly; the view is serialised on a background thread while
  // Apply continues. RestoreFrom() reads a stream written by such a view and replaces the state;
  // on kCorruption the machine must not be served from (Ballot stops the node).
  // Defaults: a view holding a copy of Snapshot(), and RestoreFrom() reading the whole stream
  // into memory for Restore().
  virtual std::unique_ptr<SnapshotView> TakeSnapshotView();
  virtual Status RestoreFrom(SnapshotReader* in);

  // Called on the leader's node when its leadership becomes usable (epoch = its fencing token)
  // and when it ends. Not replicated; default: nothing.
  virtual void OnLeaderStart(uint64_t epoch) { (void)epoch; }
  virtual void OnLeaderStop(uint64_t epoch) { (void)epoch; }
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_STATE_MACHINE_H_
