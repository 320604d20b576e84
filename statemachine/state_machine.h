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
//   - Threads. Ballot never runs two of Apply, Query, Snapshot/TakeSnapshotView,
//     Restore/RestoreFrom and the leader hooks at the same time, and each call sees everything
//     the previous one did: the machine needs no lock of its own for them. Which thread calls:
//       * Server::Create's caller, once, before Start(): RestoreFrom() of the newest snapshot.
//       * Then, without ServerOptions::apply_inline (the library's default), the server's apply
//         thread: a slow call delays applying and reads, not the protocol.
//       * With apply_inline (ballotd's default, --apply_inline), the server's io thread, which
//         also runs the network, the election timer and heartbeats. Every call then holds up the
//         whole node while it runs: Apply and Query, but also Snapshot() or TakeSnapshotView() at
//         each snapshot, and RestoreFrom() of a snapshot received from a peer (it reads all of
//         it). A call that takes longer than the election timeout makes the others elect a new
//         leader. So apply_inline is only for machines whose calls all take microseconds: one
//         whose Snapshot() copies megabytes should override TakeSnapshotView() with a cheap view
//         (statemachine/snapshot_stream.h) or leave apply_inline off.
//     The one exception is SnapshotView::WriteTo, which runs on a background thread while the
//     calls above continue (statemachine/snapshot_stream.h). No call may wait for its own server
//     (a synchronous Client call to its cluster, Server::TakeSnapshot): the server needs the
//     calling thread to make that progress, so the wait never ends. The machine is destroyed
//     after the server's threads have ended.
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
  // Snapshot() on the thread that applies (see Threads above), so Apply waits while it runs, and
  // with apply_inline the whole node does; Restore(Snapshot()) must give an equal state.
  // kCorruption / kInvalidArgument if a snapshot cannot be read.
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
  // and when it ends, on the thread that applies. Not replicated; default: nothing.
  virtual void OnLeaderStart(uint64_t epoch) { (void)epoch; }
  virtual void OnLeaderStop(uint64_t epoch) { (void)epoch; }
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_STATE_MACHINE_H_
