// Replica: one member of a Multi-Paxos group, as a pure state machine.
//
// It composes the three Paxos roles (paxos/acceptor.h, paxos/proposer.h, paxos/learner.h) with
// failure detection, leases and reads. It never touches a clock, a socket, a disk or a thread:
//   - time advances only through Tick();
//   - peer messages arrive through Step();
//   - everything to do (persist, send, apply, notify) leaves through TakeReady();
//   - the runtime reports that the last persist is durable through Advance().
// The same inputs in the same order produce the same outputs, which is what lets the simulator
// (tests/sim/) replay any run from its seed.
//
// Not thread-safe: one thread (the runtime's io thread, or the simulator) owns it.
#ifndef BALLOT_PAXOS_REPLICA_H_
#define BALLOT_PAXOS_REPLICA_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "paxos/acceptor.h"
#include "paxos/configuration.h"
#include "paxos/learner.h"
#include "paxos/message.h"
#include "paxos/options.h"
#include "paxos/prng.h"
#include "paxos/proposer.h"
#include "paxos/ready.h"
#include "paxos/slot_log.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::paxos {

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role role);

struct ProposeResult {
  enum class Kind { kOk, kNotLeader, kOverloaded };
  Kind kind = Kind::kOk;
  NodeId leader_hint = kNoNode;  // kNotLeader: who this replica believes leads (kNoNode: unknown)
};

// A snapshot of the replica's externally interesting state, for status displays and tests.
struct ReplicaStatus {
  NodeId id = kNoNode;
  Role role = Role::kFollower;
  Ballot promised;
  Ballot leader_epoch;  // the ballot of the leader this replica follows or is (zero: none)
  NodeId leader = kNoNode;
  bool leader_usable = false;  // leader only: recovery done, epoch may be used as a token
  Slot chosen_below = 1;
  Slot applied_below = 1;          // handed out in Ready::apply
  bool lease_held = false;         // leader only: may serve lease reads now
  uint64_t lease_until_ticks = 0;  // while lease_held: the tick at which it ends (exclusive)
  uint64_t now_ticks = 0;
};

class Replica {
 public:
  // `options` must pass Options::Validate(); `durable` is what this node synced before (empty for
  // a new node). Use Create() to get a Status instead of a CHECK failure on bad options.
  Replica(Options options, DurableState durable);
  static Result<std::unique_ptr<Replica>> Create(Options options, DurableState durable);

  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Advances logical time by one tick: heartbeats, election timeouts, lease expiry, retries.
  void Tick();

  // Handles one message from a peer. Messages from unknown nodes or addressed elsewhere are
  // dropped (and counted); stale ballots are answered with a rejection message, never an error.
  void Step(const Message& m);

  // Queues a command for a slot. kOk means the command is queued for proposal at this leader; the
  // runtime learns its outcome when the command comes out of Ready::apply (or Ready::dropped if
  // leadership is lost first). kNotLeader carries a hint; kOverloaded means the pending queue is
  // at Options::pending_commands_max.
  ProposeResult Propose(Command command);

  // Leader only: asks for one membership change (paxos/configuration.h). kOk means it is queued:
  // it is proposed alone once the slots in flight are chosen, and takes effect for every slot
  // after its own once chosen (Ready::configuration, and the entry in Ready::apply). Refused:
  // not the leader (or recovery not finished), a change or a transfer already under way, a
  // change the current configuration does not allow, or removing this leader (transfer first).
  Status ProposeMemberChange(const MemberChange& change);
  // True while a change is queued or proposed and not yet chosen.
  bool member_change_pending() const;
  // The configuration governing the next slot to be chosen.
  const Configuration& configuration() const { return config_; }

  // Leader only: hands leadership to voter `target` (kNoNode: the most caught-up voter). New
  // commands are refused (kNotLeader, hinting the target) and lease reads stop; once the slots
  // in flight are chosen and the target has caught up, it is told to campaign at once
  // (kTimeoutNow) and wins with a higher ballot. Abandoned after Options::transfer_ticks_max.
  Status TransferLeadership(NodeId target);
  // The transfer under way (kNoNode: none).
  NodeId transfer_target() const { return transfer_target_; }

  // Starts a linearizable read. kOk: a ReadState (or ReadFailure) with this id will appear in a
  // later Ready. Served from the lease when it holds, else confirmed by a heartbeat quorum.
  ProposeResult Read(uint64_t read_id);

  // True if TakeReady() would return something.
  bool HasReady() const;
  // Everything there is to do. At most one persist batch is outstanding: while one is, later
  // writes accumulate (group commit) and the next Ready carries no persist.
  Ready TakeReady();
  // The persist batch of the last Ready that had one is now durable.
  void Advance();

  // Tells the replica that the runtime's state machine now holds a snapshot covering every slot
  // below `applied_below`; entries below it may be discarded from memory. Returns the discarded
  // records for the caller to free where a long free does no harm (SlotLog::DropBelow).
  SlotLog::Records CompactBelow(Slot applied_below);
  // The runtime restored its state machine from a snapshot covering every slot below
  // `applied_below` (after Ready::snapshot_needed), whose configuration is `config`: the
  // replica continues from there.
  void InstallSnapshot(Slot applied_below, const Configuration& config);

  ReplicaStatus status() const;
  bool IsLeader() const { return role_ == Role::kLeader; }
  // Who this replica believes leads (itself included); kNoNode if it knows of none.
  NodeId leader() const { return leader_; }
  // The epoch of this leader once usable (recovery chosen); zero otherwise.
  Ballot UsableEpoch() const;
  // Counters for operators: dropped messages, rejections, elections.
  struct Counters {
    uint64_t messages_dropped = 0;
    uint64_t elections_started = 0;
    uint64_t leader_changes_seen = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  static constexpr size_t kRoundsRemembered = 64;

  // Role changes, in one place.
  void BecomeFollower(Ballot leader_epoch, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void StepDown();

  void TickFollower();
  void TickCandidate();
  void TickLeader();
  // The persist batch handed out has been outstanding for more than persist_stall_ticks_max.
  bool PersistStalled() const;
  // Epochs: what this node has seen of newer leaderships (see NoteEpochSeen).
  void NoteEpochSeen(const Message& m);
  bool NewerEpochSeen() const;

  void OnPreVote(const Message& m);
  void OnPreVoteReply(const Message& m);
  void OnPrepare(const Message& m);
  void OnPromise(const Message& m);
  void OnAccept(const Message& m);
  void OnAccepted(const Message& m);
  void OnHeartbeat(const Message& m);
  void OnHeartbeatReply(const Message& m);
  void OnCatchupRequest(const Message& m);
  void OnCatchupReply(const Message& m);
  void OnTimeoutNow(const Message& m);

  // Membership. Applies every change chosen since the last call (slots below chosen_below), in
  // slot order, and what follows from it: stepping down if this leader is no longer a voter,
  // continuing a staged recovery, announcing the configuration to the runtime.
  void ApplyChosenConfigs();
  void SetConfiguration(Configuration config);
  // Role consequences of a new configuration: a campaign restarts under the new voters, a
  // leader that is no longer a voter steps down, a staged recovery goes on.
  void OnConfigurationChanged();
  // Leader: proposes the next recovery stage, or asks new voters for their promises.
  void ContinueRecovery();
  // Leader: promotes a learner that has caught up (one change at a time).
  void MaybePromoteLearner();
  void TickTransfer();
  // Sends kTimeoutNow once everything proposed is chosen and the target has caught up.
  void MaybeSendTimeoutNow();
  void EndTransfer();
  // A leader's message with ballot >= our promise: follow it, reset the timer, grant the lease.
  // False if the ballot is stale.
  bool AcceptLeader(const Message& m);
  // Learn what the leader's commit index implies and ask for what is missing.
  void LearnCommit(Ballot leader_ballot, Slot commit);
  void MaybeRequestCatchup();

  void SendHeartbeats();
  bool ProposalsDue() const;
  bool ChangeDue() const;
  void FlushProposals();
  void SendAccepts(const std::vector<Entry>& entries, bool include_self);
  void SendAcceptTo(NodeId peer, std::vector<Entry> entries);
  void OnChosen(const std::vector<Slot>& slots);
  void CheckLeadershipUsable();
  bool LeaseHeld() const;
  void UpdateLease();
  void ResolveReads();
  void FailPendingReads();
  void ResetElectionTimer();

  bool HasWrites() const;
  void TakePersistBatch();
  void ReleaseHeld();

  void Send(Message m);         // goes out now (to self: handled at once)
  void SendDurable(Message m);  // goes out once everything written so far is synced
  void Broadcast(const Message& m, bool include_self);
  void DeliverToSelf(const Message& m);
  bool IsVoter(NodeId n) const { return config_.IsVoter(n); }
  // Do the voters among `nodes` (plus this node, if a voter) form a majority?
  bool QuorumWithSelf(std::vector<NodeId> nodes) const;

  // Constant after construction.
  const Options options_;

  // Membership (before the roles: the proposer holds a pointer to config_).
  Configuration config_;       // governs slot chosen_below and later (until the next change)
  std::vector<NodeId> peers_;  // members of config_ other than us, voters and learners
  Slot config_scan_from_ = 1;  // chosen slots below this were checked for changes
  // A joining node (Options::join) neither promises nor accepts until it has learnt the chosen
  // change that added it: until then it is blank where its id may have had a past (a removed
  // member whose disk was replaced, rejoining under its old id), and a candidate still working
  // from an older configuration would count its empty report as that past member's. Once the
  // change is learnt, so is every slot below it (a change is proposed with nothing in flight).
  bool may_vote_ = true;
  bool config_changed_ = true;  // announce config_ in the next Ready
  // Leader: a change waiting for the window to drain, and the slot of the one in flight.
  std::optional<Value> queued_change_;
  Slot change_in_flight_ = 0;
  bool recovery_prepare_sent_ = false;  // this stage's Prepare to new voters went out
  std::vector<Slot> follower_commit_;   // by node id: chosen_below it last reported to us
  // Leader transfer.
  NodeId transfer_target_ = kNoNode;
  uint64_t transfer_deadline_ = 0;
  bool timeout_now_sent_ = false;
  // Set once this leadership handed over (or tried to): its lease is never used again, since
  // the target's handover Prepare may still arrive and bypass the acceptors' leases.
  bool lease_given_up_ = false;
  // Candidate: the leadership that handed over to us (zero: an ordinary election).
  Ballot handover_from_;

  Prng prng_;
  SlotLog log_;  // before the roles: they hold pointers to it
  Acceptor acceptor_;
  Learner learner_;
  Proposer proposer_;

  Role role_ = Role::kFollower;
  Ballot leader_epoch_;  // the leadership we follow or hold
  NodeId leader_ = kNoNode;
  uint64_t now_ = 0;
  uint64_t election_deadline_ = 0;
  uint64_t max_round_seen_ = 0;
  // The highest epoch some acceptor promised or some leader used, as seen here: a leader never
  // becomes usable (announces) below it, so announcements never go backwards at a node.
  Ballot highest_epoch_seen_;

  // Catch-up.
  Slot leader_commit_ = 1;
  // LearnCommit's progress under one leader ballot: slots below learnt_commit_ were already
  // looked at for that ballot (see LearnCommit).
  Ballot learnt_ballot_;
  Slot learnt_commit_ = 0;
  uint64_t last_catchup_request_ = 0;
  bool catchup_wanted_ = false;
  // Who to ask when no leader is known: a candidate whose Prepare showed it knows more chosen
  // slots (a node that cannot vote until it catches up must not depend on a leader to exist).
  NodeId catchup_peer_ = kNoNode;

  // Pre-candidate / candidate.
  Ballot candidate_ballot_;
  std::vector<NodeId> votes_;

  // Leader: heartbeat rounds for the lease and read-index.
  uint64_t heartbeat_round_ = 0;
  uint64_t confirmed_round_ = 0;  // newest round acknowledged by a majority
  uint64_t next_heartbeat_ = 0;
  bool heartbeat_wanted_ = false;
  std::map<uint64_t, uint64_t> round_sent_at_;  // round -> tick, the newest kRoundsRemembered
  std::vector<uint64_t> acked_round_;           // by node id
  std::vector<uint64_t> last_heard_;            // by node id: tick last heard from
  uint64_t lease_until_ = 0;                    // exclusive
  bool leadership_usable_ = false;
  Slot leader_start_slot_ = 0;  // 0 while recovery has not proposed it yet

  struct PendingRead {
    uint64_t read_id;
    Slot read_below;
    uint64_t needs_round;
  };
  std::deque<PendingRead> pending_reads_;

  // Durability bookkeeping.
  Ballot persisted_promised_;
  Slot persisted_chosen_below_ = 1;
  bool persist_outstanding_ = false;
  uint64_t persist_stalled_ticks_ = 0;  // ticks the outstanding batch has waited so far
  WrittenVersions outstanding_versions_;
  std::vector<Message> held_;                // wait for everything written so far to be synced
  std::vector<Message> self_after_persist_;  // our own votes, delivered at Advance()

  Ready out_;
  Counters counters_;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_REPLICA_H_
