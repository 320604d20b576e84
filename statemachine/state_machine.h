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
//   - Single-threaded: Ballot calls every method from one thread (the apply thread), never
//     concurrently. Apply may be slow without hurting heartbeats, but it delays replies.
//   - Exactly-once is handled for you: retried commands are answered from the replicated session
//     table (statemachine/session_table.h) and never reach Apply twice.
//   - Errors: a command the rules refuse (e.g. a lock held by another owner) is a result with
//     code kAborted and a message, not a failure of the state machine. A malformed payload is
//     kInvalidArgument. Neither changes state. Restore() returning non-ok means the snapshot is
//     unusable and the replica will not serve.
#ifndef BALLOT_STATEMACHINE_STATE_MACHINE_H_
#define BALLOT_STATEMACHINE_STATE_MACHINE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"

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

  // Serializes the whole state. Restore(Snapshot()) must give an equal state.
  virtual std::string Snapshot() const = 0;
  // Replaces the state with a snapshot. kCorruption / kInvalidArgument if it cannot be read.
  virtual Status Restore(std::string_view snapshot) = 0;

  // Called on the leader's node when its leadership becomes usable (epoch = its fencing token)
  // and when it ends. Not replicated; default: nothing.
  virtual void OnLeaderStart(uint64_t epoch) { (void)epoch; }
  virtual void OnLeaderStop(uint64_t epoch) { (void)epoch; }
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_STATE_MACHINE_H_
