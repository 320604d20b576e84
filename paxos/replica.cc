#include "paxos/replica.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

namespace ballot::paxos {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

namespace {

Ballot PromisedAfterRestart(const Options& options, const DurableState& durable) {
  if (options.planted.forget_promise_on_restart) return Ballot();  // BUG, planted for tests
  // A promise is implied by every accept; take the max in case the store lost nothing but the
  // promise key was never written (a node that only ever accepted).
  Ballot b = durable.promised;
  for (const Entry& e : durable.entries) b = std::max(b, e.ballot);
  return b;
}

SlotLog* RestoreLog(SlotLog* log, const DurableState& durable) {
  for (const Entry& e : durable.entries) {
    if (e.slot >= durable.applied_below) log->Restore(e);
  }
  log->DropBelow(durable.applied_below);
  return log;
}

}  // namespace

Result<std::unique_ptr<Replica>> Replica::Create(Options options, DurableState durable) {
  Status s = options.Validate();
  if (!s.ok()) return s;
  return std::make_unique<Replica>(std::move(options), std::move(durable));
}

Replica::Replica(Options options, DurableState durable)
    : options_(std::move(options)),
      prng_(options_.seed ^ (0x5851F42D4C957F2Dull * options_.id)),
      acceptor_(RestoreLog(&log_, durable), PromisedAfterRestart(options_, durable),
                options_.lease_ticks, /*now=*/0, options_.planted.lease_to_lower_ballot),
      learner_(&log_, durable.chosen_below, durable.applied_below, options_.planted),
      proposer_(options_, &config_) {
  Status s = options_.Validate();
  CHECK(s.ok()) << s.ToString();
  may_vote_ = !options_.join;
  if (!durable.config.empty()) {
    SetConfiguration(durable.config);
  } else if (!options_.join) {
    SetConfiguration(Configuration::AllVoters(options_.members));
  }
  config_scan_from_ = learner_.applied_below();
  ApplyChosenConfigs();  // changes in the restored log
  follower_commit_.assign(kNodeIdMax + 1, 0);
  max_round_seen_ = acceptor_.promised().round();
  highest_epoch_seen_ = acceptor_.promised();
  persisted_promised_ = acceptor_.promised();
  persisted_chosen_below_ = learner_.chosen_below();
  acked_round_.assign(kNodeIdMax + 1, 0);
  last_heard_.assign(kNodeIdMax + 1, 0);
  ResetElectionTimer();
}

// ---------------------------------------------------------------------------------------------
// Inputs

void Replica::Tick() {
  ++now_;
  if (persist_outstanding_) ++persist_stalled_ticks_;
  switch (role_) {
    case Role::kFollower:
      TickFollower();
      break;
    case Role::kPreCandidate:
    case Role::kCandidate:
      TickCandidate();
      break;
    case Role::kLeader:
      TickLeader();
      break;
  }
  MaybeRequestCatchup();
}

void Replica::Step(const Message& m) {
  // Any node of the cluster may write to us (a member being added is not in our configuration
  // yet; the transport's handshake checked the cluster id). Votes count only from voters.
  if (m.to != options_.id || m.from == kNoNode || m.from > kNodeIdMax || m.from == options_.id) {
    ++counters_.messages_dropped;
    return;
  }
  max_round_seen_ = std::max({max_round_seen_, m.ballot.round(), m.promised.round()});
  NoteEpochSeen(m);
  switch (m.type) {
    case MessageType::kPreVote:
      OnPreVote(m);
      break;
    case MessageType::kPreVoteReply:
      OnPreVoteReply(m);
      break;
    case MessageType::kPrepare:
      OnPrepare(m);
      break;
    case MessageType::kPromise:
      OnPromise(m);
      break;
    case MessageType::kAccept:
      OnAccept(m);
      break;
    case MessageType::kAccepted:
      OnAccepted(m);
      break;
    case MessageType::kHeartbeat:
      OnHeartbeat(m);
      break;
    case MessageType::kHeartbeatReply:
      OnHeartbeatReply(m);
      break;
    case MessageType::kCatchupRequest:
      OnCatchupRequest(m);
      break;
    case MessageType::kCatchupReply:
      OnCatchupReply(m);
      break;
    case MessageType::kTimeoutNow:
      OnTimeoutNow(m);
      break;
    case MessageType::kNone:
    case MessageType::kSnapshotRequest:  // the runtime's, not ours
    case MessageType::kSnapshotChunk:
      ++counters_.messages_dropped;
      break;
  }
  if (role_ == Role::kLeader && NewerEpochSeen() && !options_.planted.announce_older_epoch) {
    // A newer leadership exists (or is being established): ours is over, even if a delayed
    // reply could still complete its recovery.
    StepDown();
  }
  ApplyChosenConfigs();
}

void Replica::NoteEpochSeen(const Message& m) {
  // Ballots that prove an epoch was promised by some acceptor or is led by some node: the
  // promise an acceptor reports, and the ballot of a leader's messages (or of the leader a
  // catch-up peer follows). A pre-vote's or a Prepare's ballot is only a candidate's wish; a
  // candidate that wins shows up through them.
  highest_epoch_seen_ = std::max(highest_epoch_seen_, m.promised);
  switch (m.type) {
    case MessageType::kAccept:
    case MessageType::kHeartbeat:
    case MessageType::kCatchupRequest:
    case MessageType::kCatchupReply:
      highest_epoch_seen_ = std::max(highest_epoch_seen_, m.ballot);
      break;
    default:
      break;
  }
}

bool Replica::NewerEpochSeen() const {
  return std::max(highest_epoch_seen_, acceptor_.promised()) > leader_epoch_;
}

ProposeResult Replica::Propose(Command command) {
  if (role_ != Role::kLeader) return {ProposeResult::Kind::kNotLeader, leader_};
  if (transfer_target_ != kNoNode) return {ProposeResult::Kind::kNotLeader, transfer_target_};
  if (proposer_.Enqueue(std::move(command)) == Proposer::EnqueueResult::kOverloaded) {
    return {ProposeResult::Kind::kOverloaded, options_.id};
  }
  return {ProposeResult::Kind::kOk, options_.id};
}

ProposeResult Replica::Read(uint64_t read_id) {
  if (role_ != Role::kLeader) return {ProposeResult::Kind::kNotLeader, leader_};
  if (pending_reads_.size() >= options_.reads_pending_max) {
    return {ProposeResult::Kind::kOverloaded, options_.id};
  }
  if (leadership_usable_ && LeaseHeld()) {
    out_.reads.push_back(ReadState{read_id, learner_.chosen_below()});
    return {ProposeResult::Kind::kOk, options_.id};
  }
  // Read-index: the read is served once a heartbeat round sent after it is acknowledged by a
  // majority, which proves nobody else was leader when the read arrived.
  pending_reads_.push_back(PendingRead{read_id, learner_.chosen_below(), heartbeat_round_ + 1});
  heartbeat_wanted_ = true;
  return {ProposeResult::Kind::kOk, options_.id};
}

// ---------------------------------------------------------------------------------------------
// Output

bool Replica::HasReady() const {
  if (!out_.empty() || heartbeat_wanted_ || config_changed_) return true;
  if (role_ == Role::kLeader && (ProposalsDue() || ChangeDue())) return true;
  if (learner_.HasApplicable()) return true;
  if (!persist_outstanding_) {
    if (HasWrites()) return true;
    if (!held_.empty()) return true;
  }
  return false;
}

bool Replica::HasWrites() const {
  // chosen_below alone is not worth a sync: it rides along with the next batch, and a restart
  // that finds an older value only re-learns what is chosen. Syncing it by itself would make
  // the next command wait behind that sync.
  return log_.HasDirty() || acceptor_.promised() != persisted_promised_;
}

Ready Replica::TakeReady() {
  if (role_ == Role::kLeader) {
    FlushProposals();
    if (heartbeat_wanted_) SendHeartbeats();
  }
  heartbeat_wanted_ = false;
  if (!persist_outstanding_) {
    if (HasWrites()) {
      TakePersistBatch();
    } else {
      ReleaseHeld();  // everything they depend on is already durable
    }
  }
  learner_.TakeApplicable(&out_.apply);
  if (config_changed_) {
    out_.configuration = config_;
    config_changed_ = false;
  }
  return std::exchange(out_, Ready{});
}

void Replica::TakePersistBatch() {
  PersistBatch batch;
  if (acceptor_.promised() != persisted_promised_) {
    batch.promised = acceptor_.promised();
    persisted_promised_ = acceptor_.promised();
  }
  batch.entries = log_.TakeDirty(&outstanding_versions_);
  if (learner_.chosen_below() != persisted_chosen_below_) {
    batch.chosen_below = learner_.chosen_below();
    persisted_chosen_below_ = learner_.chosen_below();
  }
  for (Message& m : held_) {
    if (m.to == options_.id) {
      self_after_persist_.push_back(std::move(m));
    } else {
      out_.send_after_persist.push_back(std::move(m));
    }
  }
  held_.clear();
  out_.persist = std::move(batch);
  persist_outstanding_ = true;
}

void Replica::ReleaseHeld() {
  std::vector<Message> held = std::exchange(held_, {});
  for (Message& m : held) {
    if (m.to == options_.id) {
      DeliverToSelf(m);
    } else {
      out_.send_now.push_back(std::move(m));
    }
  }
}

void Replica::Advance() {
  CHECK(persist_outstanding_) << "Advance() without an outstanding persist batch";
  persist_outstanding_ = false;
  persist_stalled_ticks_ = 0;
  log_.MarkDurable(outstanding_versions_);
  outstanding_versions_.clear();
  std::vector<Message> self = std::exchange(self_after_persist_, {});
  for (const Message& m : self) DeliverToSelf(m);
  ApplyChosenConfigs();
}

void Replica::InstallSnapshot(Slot applied_below, const Configuration& config) {
  if (applied_below <= learner_.applied_below()) return;
  log_.DropBelow(applied_below);
  learner_.SkipTo(applied_below);
  if (!config.empty() && !(config == config_)) {
    SetConfiguration(config);
    OnConfigurationChanged();
  }
  config_scan_from_ = std::max(config_scan_from_, applied_below);
  ApplyChosenConfigs();
}

SlotLog::Records Replica::CompactBelow(Slot applied_below) {
  CHECK_LE(applied_below, learner_.applied_below()) << "snapshot beyond what was applied";
  return log_.DropBelow(applied_below);
}

// ---------------------------------------------------------------------------------------------
// Sending

void Replica::Send(Message m) {
  m.from = options_.id;
  if (m.to == options_.id) {
    DeliverToSelf(m);
  } else {
    out_.send_now.push_back(std::move(m));
  }
}

void Replica::SendDurable(Message m) {
  m.from = options_.id;
  held_.push_back(std::move(m));
}

void Replica::Broadcast(const Message& m, bool include_self) {
  for (const Member& member : config_.members()) {
    if (member.id == options_.id && !include_self) continue;
    Message copy = m;
    copy.to = member.id;
    Send(std::move(copy));
  }
}

void Replica::DeliverToSelf(const Message& m) {
  // Our own acceptor and proposer talk through the same handlers as remote ones, so the local
  // vote obeys exactly the same durability rules.
  switch (m.type) {
    case MessageType::kPrepare:
      OnPrepare(m);
      break;
    case MessageType::kPromise:
      OnPromise(m);
      break;
    case MessageType::kAccept:
      OnAccept(m);
      break;
    case MessageType::kAccepted:
      OnAccepted(m);
      break;
    default:
      LOG(FATAL) << "unexpected message to self: " << ToString(m);
  }
}

bool Replica::QuorumWithSelf(std::vector<NodeId> nodes) const {
  nodes.push_back(options_.id);
  return config_.IsQuorum(nodes);
}

// ---------------------------------------------------------------------------------------------
// Roles

void Replica::ResetElectionTimer() {
  election_deadline_ = now_ + options_.election_ticks + prng_.Below(options_.election_ticks);
}

void Replica::BecomeFollower(Ballot leader_epoch, NodeId leader) {
  if (role_ == Role::kLeader) {
    if (leadership_usable_) {
      out_.events.push_back({LeadershipEvent::Kind::kLostLeadership, proposer_.ballot(), 0});
    }
    std::vector<Command> dropped = proposer_.Reset();
    for (Command& c : dropped) out_.dropped.push_back(std::move(c));
    FailPendingReads();
    queued_change_.reset();
    change_in_flight_ = 0;
    EndTransfer();
  }
  handover_from_ = Ballot();
  if (leader != leader_ && leader != kNoNode) ++counters_.leader_changes_seen;
  role_ = Role::kFollower;
  leader_epoch_ = leader_epoch;
  leader_ = leader;
  leadership_usable_ = false;
  lease_until_ = 0;
  ResetElectionTimer();
}

void Replica::BecomePreCandidate() {
  if (role_ == Role::kLeader) BecomeFollower(Ballot(), kNoNode);
  role_ = Role::kPreCandidate;
  handover_from_ = Ballot();  // an ordinary election from here on
  leader_ = kNoNode;
  leader_epoch_ = Ballot();
  candidate_ballot_ = Ballot(max_round_seen_ + 1, options_.id);
  votes_.assign(1, options_.id);
  ResetElectionTimer();
  Message m;
  m.type = MessageType::kPreVote;
  m.ballot = candidate_ballot_;
  Broadcast(m, /*include_self=*/false);
  if (config_.IsQuorum(votes_)) BecomeCandidate();
}

void Replica::BecomeCandidate() {
  ++counters_.elections_started;
  role_ = Role::kCandidate;
  candidate_ballot_ = Ballot(max_round_seen_ + 1, options_.id);
  max_round_seen_ = candidate_ballot_.round();
  proposer_.StartPhase1(candidate_ballot_, learner_.chosen_below());
  ResetElectionTimer();
  Message m;
  m.type = MessageType::kPrepare;
  m.ballot = candidate_ballot_;
  m.slot = learner_.chosen_below();
  m.promised = handover_from_;
  for (NodeId n : config_.voters()) {
    m.to = n;
    Send(m);
  }
}

void Replica::BecomeLeader() {
  role_ = Role::kLeader;
  leader_ = options_.id;
  leader_epoch_ = candidate_ballot_;
  leadership_usable_ = false;
  lease_until_ = 0;
  std::fill(acked_round_.begin(), acked_round_.end(), 0);
  std::fill(follower_commit_.begin(), follower_commit_.end(), 0);
  for (NodeId n : peers_) last_heard_[n] = now_;
  round_sent_at_.clear();
  leader_start_slot_ = 0;
  lease_given_up_ = false;
  handover_from_ = Ballot();
  ContinueRecovery();
  SendHeartbeats();
  CheckLeadershipUsable();
}

void Replica::ContinueRecovery() {
  if (role_ != Role::kLeader || !proposer_.recovering()) return;
  if (proposer_.in_flight() > 0) return;  // the stage before is not chosen yet
  // Slots learnt chosen meanwhile (a catch-up reply that arrived late) are settled: their
  // changes are in config_ already, and peers that compacted them would refuse a Prepare from
  // below their snapshot.
  if (learner_.chosen_below() > proposer_.recover_from()) {
    Ballot newer_leader;
    for (auto it = log_.LowerBound(proposer_.recover_from()); it != log_.end(); ++it) {
      if (it->first >= learner_.chosen_below()) break;
      if (it->second.entry.value.leader_start) {
        newer_leader = std::max(newer_leader, it->second.entry.value.epoch);
      }
    }
    proposer_.SkipRecoveryTo(learner_.chosen_below(), newer_leader);
  }
  if (!proposer_.HasPromiseQuorum()) {
    // A membership change was recovered and is now chosen: the slots after it need the
    // promises (and reports) of a majority of the new voters.
    if (recovery_prepare_sent_) return;
    recovery_prepare_sent_ = true;
    Message m;
    m.type = MessageType::kPrepare;
    m.ballot = leader_epoch_;
    m.slot = proposer_.recover_from();
    for (NodeId n : proposer_.VotersNotPromised()) {
      m.to = n;
      Send(m);
    }
    return;
  }
  recovery_prepare_sent_ = false;
  std::vector<Entry> stage = proposer_.RecoverNext(now_);
  if (!proposer_.recovering()) leader_start_slot_ = stage.back().slot;
  SendAccepts(stage, /*include_self=*/true);
}

void Replica::StepDown() { BecomeFollower(Ballot(), kNoNode); }

// ---------------------------------------------------------------------------------------------
// Timers

bool Replica::PersistStalled() const {
  return persist_stalled_ticks_ > options_.persist_stall_ticks_max;
}

void Replica::TickFollower() {
  if (now_ < election_deadline_) return;
  if (!IsVoter(options_.id)) {
    // A learner (or a removed member) never campaigns: its vote does not count. Having heard
    // from no leader for an election timeout, it stops naming one (a removed node would
    // otherwise send clients to a leader that may be long gone).
    leader_ = kNoNode;
    leader_epoch_ = Ballot();
    ResetElectionTimer();
    return;
  }
  if (PersistStalled() && !options_.planted.no_persist_stall_stepdown) {
    // A node whose disk hangs could not keep a promise or an accept anyway; leading would stall
    // the group again. Wait (and let the others elect) until the disk completes.
    ResetElectionTimer();
    return;
  }
  BecomePreCandidate();
}

void Replica::TickCandidate() {
  if (now_ < election_deadline_) return;
  if (PersistStalled() && !options_.planted.no_persist_stall_stepdown) {
    BecomeFollower(Ballot(), kNoNode);  // as in TickFollower: no campaign on a hung disk
    return;
  }
  BecomePreCandidate();  // split vote or lost messages: retry
}

void Replica::TickLeader() {
  if (PersistStalled() && !options_.planted.no_persist_stall_stepdown) {
    // Gray failure: heartbeats without progress would keep everyone else from electing a leader
    // whose disk works. Step down and stay silent.
    StepDown();
    return;
  }
  if (NewerEpochSeen() && !options_.planted.announce_older_epoch) {
    StepDown();  // e.g. our own vote, delivered at Advance(), made us leader after a newer epoch
    return;
  }
  if (now_ >= next_heartbeat_) SendHeartbeats();
  std::vector<NodeId> heard;
  for (NodeId n : peers_) {
    if (last_heard_[n] + options_.check_quorum_ticks > now_) heard.push_back(n);
  }
  if (!QuorumWithSelf(std::move(heard))) {
    // Cut off from a majority: someone else may be leader now. Stop claiming it.
    StepDown();
    return;
  }
  std::map<NodeId, std::vector<Entry>> retries =
      proposer_.CollectRetries(now_, options_.accept_retry_ticks);
  for (auto& [peer, entries] : retries) {
    if (peer == options_.id) continue;  // our own vote waits on our own disk, not the network
    SendAcceptTo(peer, std::move(entries));
  }
  if (proposer_.recovering() && now_ % options_.accept_retry_ticks == 0) {
    recovery_prepare_sent_ = false;  // ask the new voters again
    ContinueRecovery();
  }
  TickTransfer();
  MaybePromoteLearner();
}

// ---------------------------------------------------------------------------------------------
// Leader duties

void Replica::SendHeartbeats() {
  ++heartbeat_round_;
  round_sent_at_[heartbeat_round_] = now_;
  while (round_sent_at_.size() > kRoundsRemembered) round_sent_at_.erase(round_sent_at_.begin());
  next_heartbeat_ = now_ + options_.heartbeat_ticks;
  heartbeat_wanted_ = false;
  // Our own acceptor is part of the lease majority. (Should it have promised a newer ballot, it
  // refuses, and the next Step or Tick steps us down.)
  (void)acceptor_.GrantLease(leader_epoch_, now_);
  Message m;
  m.type = MessageType::kHeartbeat;
  m.ballot = leader_epoch_;
  m.commit = learner_.chosen_below();
  m.round = heartbeat_round_;
  Broadcast(m, /*include_self=*/false);
  UpdateLease();  // we ack our own round at once; alone in a group, that is the majority
  ResolveReads();
}

// Group commit drives batching: while the leader's own previous batch is being synced, new
// commands wait in the queue and then go out together in one slot, so the slot count (and the
// messages, syncs and acks per slot) follows the disk instead of the arrival rate. An idle leader
// cuts a slot at once (no added latency), and a full batch never waits.
bool Replica::ProposalsDue() const {
  if (!proposer_.CanPropose(learner_.chosen_below())) return false;
  return !options_.pace_proposals_by_sync || !persist_outstanding_ ||
         proposer_.pending() >= options_.batch_commands_max;
}

bool Replica::ChangeDue() const {
  // A change goes alone: once every slot in flight is chosen (they are governed by the current
  // configuration).
  return queued_change_.has_value() && change_in_flight_ == 0 && proposer_.in_flight() == 0;
}

void Replica::FlushProposals() {
  if (change_in_flight_ != 0) return;  // nothing after a change until it is chosen
  if (queued_change_) {
    if (!ChangeDue()) return;
    Entry e = proposer_.ProposeValue(std::move(*queued_change_), now_);
    queued_change_.reset();
    change_in_flight_ = e.slot;
    SendAccepts({e}, /*include_self=*/true);
    return;
  }
  if (!ProposalsDue()) return;
  std::vector<Entry> batches = proposer_.ProposeBatches(learner_.chosen_below(), now_);
  if (!batches.empty()) SendAccepts(batches, /*include_self=*/true);
}

void Replica::SendAccepts(const std::vector<Entry>& entries, bool include_self) {
  for (const Member& member : config_.members()) {
    if (member.id == options_.id && !include_self) continue;
    SendAcceptTo(member.id, entries);
  }
}

void Replica::SendAcceptTo(NodeId peer, std::vector<Entry> entries) {
  // Split into messages of at most accept_entries_max slots and about message_bytes_max bytes.
  size_t i = 0;
  while (i < entries.size()) {
    Message m;
    m.type = MessageType::kAccept;
    m.to = peer;
    m.ballot = leader_epoch_;
    m.commit = learner_.chosen_below();
    size_t bytes = 0;
    while (i < entries.size() && m.entries.size() < options_.accept_entries_max) {
      size_t size = entries[i].value.ByteSize();
      if (!m.entries.empty() && bytes + size > options_.message_bytes_max) break;
      bytes += size;
      m.entries.push_back(std::move(entries[i++]));
    }
    Send(std::move(m));
  }
}

void Replica::OnChosen(const std::vector<Slot>& slots) {
  for (Slot s : slots) learner_.MarkChosen(s);
  CheckLeadershipUsable();
}

void Replica::CheckLeadershipUsable() {
  if (role_ != Role::kLeader || leadership_usable_) return;
  if (leader_start_slot_ == 0 || learner_.chosen_below() <= leader_start_slot_) return;
  // Never announce an epoch lower than one this node has seen (Step then steps down).
  if (NewerEpochSeen() && !options_.planted.announce_older_epoch) return;
  leadership_usable_ = true;
  out_.events.push_back({LeadershipEvent::Kind::kBecameLeader, leader_epoch_, leader_start_slot_});
  ResolveReads();
}

bool Replica::LeaseHeld() const {
  // Only once recovery is done: before that this leader may not know its configuration yet
  // (a change still to be found in phase 1), and a majority of a stale one proves nothing.
  return role_ == Role::kLeader && leadership_usable_ && !lease_given_up_ && now_ < lease_until_;
}

void Replica::UpdateLease() {
  // The newest round acknowledged by a majority of the voters (counting ourselves for every
  // round). Rounds acknowledged before a membership change still count: each acknowledging
  // acceptor did grant the lease, and any majority that could elect someone else - of the old
  // configuration or the new, which differ by one voter - contains one of them.
  std::vector<uint64_t> rounds;
  if (IsVoter(options_.id)) rounds.push_back(heartbeat_round_);
  for (NodeId n : peers_) {
    if (IsVoter(n)) rounds.push_back(acked_round_[n]);
  }
  std::sort(rounds.rbegin(), rounds.rend());
  const size_t quorum = config_.QuorumSize();
  if (rounds.size() < quorum) return;
  uint64_t quorum_round = rounds[quorum - 1];
  if (quorum_round == 0) return;
  confirmed_round_ = std::max(confirmed_round_, quorum_round);
  auto it = round_sent_at_.find(quorum_round);
  if (it == round_sent_at_.end()) return;
  // Acceptors started their lease when the heartbeat arrived, which is no earlier than when we
  // sent it; so timing ours from the send (minus a drift margin) keeps it inside theirs.
  uint64_t start = options_.planted.lease_from_ack_time ? now_ : it->second;
  lease_until_ = std::max(lease_until_, start + options_.lease_ticks - options_.LeaseMarginTicks());
}

void Replica::ResolveReads() {
  if (!leadership_usable_) return;
  while (!pending_reads_.empty()) {
    PendingRead& r = pending_reads_.front();
    if (r.needs_round > confirmed_round_) return;
    // A read that arrived before the leadership was usable reads at least everything recovered.
    out_.reads.push_back(ReadState{r.read_id, std::max(r.read_below, leader_start_slot_ + 1)});
    pending_reads_.pop_front();
  }
}

void Replica::FailPendingReads() {
  for (const PendingRead& r : pending_reads_) out_.failed_reads.push_back({r.read_id});
  pending_reads_.clear();
}

// ---------------------------------------------------------------------------------------------
// Messages: elections

void Replica::OnPreVote(const Message& m) {
  Message reply;
  reply.type = MessageType::kPreVoteReply;
  reply.to = m.from;
  reply.ballot = m.ballot;
  // A live leader (or anyone who heard one within the lease) says no: no disruption. (Whether
  // the candidate is a voter is not judged here: our configuration may be the stale one, and
  // refusing a new voter could leave no majority able to elect anyone. A removed node that
  // missed its removal meets the lease like anyone else, and if it ever wins, its recovery
  // finds the removal and it steps down.)
  reply.ok = role_ != Role::kLeader && may_vote_ &&
             acceptor_.CheckPromise(m.ballot, now_) == Acceptor::Verdict::kOk &&
             m.ballot > acceptor_.promised();
  reply.promised = acceptor_.promised();
  Send(std::move(reply));
}

void Replica::OnPreVoteReply(const Message& m) {
  if (role_ != Role::kPreCandidate || m.ballot != candidate_ballot_ || !m.ok) return;
  if (std::find(votes_.begin(), votes_.end(), m.from) != votes_.end()) return;
  votes_.push_back(m.from);
  if (config_.IsQuorum(votes_)) BecomeCandidate();
}

void Replica::OnPrepare(const Message& m) {
  if (m.slot > learner_.chosen_below() && m.from != options_.id) {
    // The candidate knows more slots chosen: learn them from it whether or not we promise (a
    // replica that cannot vote until it has caught up may be the vote that is missing).
    catchup_peer_ = m.from;
    leader_commit_ = std::max(leader_commit_, m.slot);
    catchup_wanted_ = true;
    MaybeRequestCatchup();
  }
  // A candidate that starts below what we compacted could not learn those chosen values from
  // us, and might fill them with no-ops: it is too far behind to lead, so we do not promise.
  // Likewise a candidate so far behind that our report would not fit one message.
  const bool too_far_behind = m.slot < log_.dropped_below() ||
                              learner_.chosen_below() > m.slot + options_.promise_entries_max;
  Acceptor::Verdict v = too_far_behind || !may_vote_
                            ? Acceptor::Verdict::kStaleBallot
                            : acceptor_.Prepare(m.ballot, now_, m.promised);
  Message reply;
  reply.type = MessageType::kPromise;
  reply.to = m.from;
  reply.ballot = m.ballot;
  reply.promised = acceptor_.promised();
  reply.commit = learner_.chosen_below();
  if (v != Acceptor::Verdict::kOk) {
    Send(std::move(reply));  // a refusal promises nothing, so it need not wait for the disk
    return;
  }
  if (m.from != options_.id && m.ballot > leader_epoch_) {
    // We promised someone else a higher ballot: whoever led before no longer does.
    if (role_ != Role::kFollower || leader_ != kNoNode) BecomeFollower(Ballot(), kNoNode);
  }
  reply.entries = acceptor_.AcceptedFrom(m.slot);
  size_t bytes = 0;
  for (const Entry& e : reply.entries) bytes += e.value.ByteSize();
  if (reply.entries.size() > options_.promise_entries_max || bytes > options_.message_bytes_max) {
    // Promised, but the report cannot travel: tell the candidate no (it cannot win with us),
    // and keep the promise, which only makes us refuse lower ballots.
    reply.entries.clear();
    SendDurable(std::move(reply));
    return;
  }
  reply.ok = true;
  SendDurable(std::move(reply));
}

void Replica::OnPromise(const Message& m) {
  if (!m.ok) {
    if (m.promised > candidate_ballot_ && role_ == Role::kCandidate) StepDown();
    if (role_ == Role::kLeader && m.ballot == leader_epoch_ && proposer_.recovering() &&
        m.commit > proposer_.recover_from()) {
      // A later recovery stage asked a new voter that knows more slots chosen than we do and
      // compacted them: it will never report them, and a leader does not catch up. Let a
      // replica that knows them lead (we cannot win again until we have caught up).
      StepDown();
    }
    return;
  }
  if (m.ballot != candidate_ballot_) return;
  if (role_ == Role::kCandidate) {
    if (proposer_.AddPromise(m.from, m.entries)) BecomeLeader();
  } else if (role_ == Role::kLeader && m.ballot == leader_epoch_) {
    // A later stage of recovery waiting for the new voters' promises.
    if (proposer_.AddPromise(m.from, m.entries)) ContinueRecovery();
  }
}

// ---------------------------------------------------------------------------------------------
// Messages: phase 2, heartbeats

bool Replica::AcceptLeader(const Message& m) {
  if (m.ballot < acceptor_.promised()) return false;
  if (m.from == options_.id) return true;
  if (role_ != Role::kFollower || leader_epoch_ != m.ballot) BecomeFollower(m.ballot, m.from);
  leader_epoch_ = m.ballot;
  leader_ = m.from;
  ResetElectionTimer();
  CHECK(acceptor_.GrantLease(m.ballot, now_)) << "the ballot was checked against the promise";
  return true;
}

void Replica::OnAccept(const Message& m) {
  Message reply;
  reply.type = MessageType::kAccepted;
  reply.to = m.from;
  reply.ballot = m.ballot;
  if (!AcceptLeader(m)) {
    reply.promised = acceptor_.promised();
    Send(std::move(reply));
    return;
  }
  if (!may_vote_) {
    // Not added yet (or not caught up to our addition): learn the commit index, vote nothing.
    if (m.from != options_.id) LearnCommit(m.ballot, m.commit);
    reply.promised = acceptor_.promised();
    Send(std::move(reply));
    return;
  }
  for (const Entry& e : m.entries) {
    Acceptor::Verdict v = acceptor_.Accept(m.ballot, e.slot, e.value);
    if (v != Acceptor::Verdict::kOk) continue;
    reply.slots.push_back(e.slot);
    // Below the commit already learnt from this leader: chosen now (LearnCommit will not walk
    // back here).
    if (m.ballot == learnt_ballot_ && e.slot < learnt_commit_ &&
        e.slot >= learner_.chosen_below()) {
      learner_.MarkChosen(e.slot);
    }
  }
  reply.ok = true;
  reply.promised = acceptor_.promised();
  if (m.from != options_.id) LearnCommit(m.ballot, m.commit);
  if (options_.planted.ack_accept_before_durable) {
    Send(std::move(reply));  // BUG, planted for tests: the vote counts before it is synced
  } else {
    SendDurable(std::move(reply));
  }
}

void Replica::OnAccepted(const Message& m) {
  if (!m.ok) {
    if (m.promised > leader_epoch_ && role_ == Role::kLeader) StepDown();
    return;
  }
  if (role_ != Role::kLeader || m.ballot != leader_epoch_) return;
  last_heard_[m.from] = now_;
  OnChosen(proposer_.AddAccepted(m.from, m.slots));
}

void Replica::OnHeartbeat(const Message& m) {
  Message reply;
  reply.type = MessageType::kHeartbeatReply;
  reply.to = m.from;
  reply.ballot = m.ballot;
  reply.round = m.round;
  reply.ok = AcceptLeader(m);
  reply.promised = acceptor_.promised();
  reply.commit = learner_.chosen_below();
  if (reply.ok) LearnCommit(m.ballot, m.commit);
  Send(std::move(reply));
}

void Replica::OnHeartbeatReply(const Message& m) {
  if (!m.ok) {
    if (m.promised > leader_epoch_ && role_ == Role::kLeader) StepDown();
    return;
  }
  if (role_ != Role::kLeader || m.ballot != leader_epoch_) return;
  last_heard_[m.from] = now_;
  acked_round_[m.from] = std::max(acked_round_[m.from], m.round);
  follower_commit_[m.from] = std::max(follower_commit_[m.from], m.commit);
  if (m.from == transfer_target_) MaybeSendTimeoutNow();  // at once, not at the next tick
  UpdateLease();
  ResolveReads();
}

// ---------------------------------------------------------------------------------------------
// Messages: learning and catch-up

void Replica::LearnCommit(Ballot leader_ballot, Slot commit) {
  // A value we accepted under the leader's current ballot is the one it proposed there, so if
  // the leader says the slot is chosen, that value is chosen. Each slot is looked at once per
  // leader ballot: the walk resumes where the last one ended (a follower far behind, with a gap
  // below everything it accepts, would otherwise walk its whole unchosen log on every message).
  // OnAccept marks slots that arrive below that point itself.
  if (leader_ballot != learnt_ballot_) {
    learnt_ballot_ = leader_ballot;
    learnt_commit_ = 0;
  }
  for (auto it = log_.LowerBound(std::max(learner_.chosen_below(), learnt_commit_));
       it != log_.end(); ++it) {
    if (it->first >= commit) break;
    if (!it->second.chosen && it->second.entry.ballot == leader_ballot) {
      learner_.MarkChosen(it->first);
    }
  }
  learnt_commit_ = std::max(learnt_commit_, commit);
  leader_commit_ = std::max(leader_commit_, commit);
  if (learner_.chosen_below() < leader_commit_ && !catchup_wanted_) {
    catchup_wanted_ = true;
    MaybeRequestCatchup();
  }
}

void Replica::MaybeRequestCatchup() {
  if (!catchup_wanted_) return;
  if (learner_.chosen_below() >= leader_commit_ || role_ == Role::kLeader) {
    catchup_wanted_ = false;
    return;
  }
  const NodeId from = leader_ != kNoNode && leader_ != options_.id ? leader_ : catchup_peer_;
  if (from == kNoNode || from == options_.id) return;
  if (last_catchup_request_ != 0 && last_catchup_request_ + options_.catchup_retry_ticks > now_) {
    return;
  }
  last_catchup_request_ = std::max<uint64_t>(now_, 1);
  Message m;
  m.type = MessageType::kCatchupRequest;
  m.to = from;
  m.ballot = leader_epoch_;
  m.slot = learner_.chosen_below();
  Send(std::move(m));
}

void Replica::OnCatchupRequest(const Message& m) {
  Message reply;
  reply.type = MessageType::kCatchupReply;
  reply.to = m.from;
  reply.ballot = leader_epoch_;
  reply.commit = learner_.chosen_below();
  if (m.slot < log_.dropped_below()) {
    reply.slot = log_.dropped_below();  // !ok: only a snapshot can bring it this far
    Send(std::move(reply));
    return;
  }
  size_t bytes = 0;
  for (auto it = log_.LowerBound(m.slot); it != log_.end(); ++it) {
    if (reply.entries.size() >= options_.catchup_entries_max) break;
    if (!it->second.chosen) break;  // only a gap-free run is useful to the follower
    bytes += it->second.entry.value.ByteSize();
    if (!reply.entries.empty() && bytes > options_.message_bytes_max) break;
    reply.entries.push_back(it->second.entry);
  }
  reply.ok = true;
  Send(std::move(reply));
}

void Replica::OnCatchupReply(const Message& m) {
  if (!m.ok) {
    // The leader compacted what we miss: the runtime must fetch a snapshot from it.
    if (m.slot > learner_.chosen_below()) {
      out_.snapshot_needed = SnapshotNeeded{m.from, m.slot};
    }
    return;
  }
  const Slot before = learner_.chosen_below();
  for (const Entry& e : m.entries) {
    if (learner_.IsChosen(e.slot)) continue;
    acceptor_.LearnChosen(e);
    learner_.MarkChosen(e.slot);
  }
  leader_commit_ = std::max(leader_commit_, m.commit);
  // Ask for the next part right away only if this part helped; otherwise wait for the retry
  // timer, so a leader that cannot help does not get one request per round trip.
  if (learner_.chosen_below() > before) last_catchup_request_ = 0;
  catchup_wanted_ = learner_.chosen_below() < leader_commit_;
  MaybeRequestCatchup();
}

// ---------------------------------------------------------------------------------------------
// Membership and leader transfer

void Replica::SetConfiguration(Configuration config) {
  config_ = std::move(config);
  if (config_.IsMember(options_.id)) may_vote_ = true;
  peers_.clear();
  for (const Member& m : config_.members()) {
    if (m.id != options_.id) peers_.push_back(m.id);
  }
  config_changed_ = true;
}

void Replica::ApplyChosenConfigs() {
  const Slot chosen_below = learner_.chosen_below();
  if (config_scan_from_ >= chosen_below) return;
  bool changed = false;
  for (auto it = log_.LowerBound(config_scan_from_); it != log_.end(); ++it) {
    if (it->first >= chosen_below) break;
    if (it->second.entry.value.config) {
      SetConfiguration(*it->second.entry.value.config);
      changed = true;
      if (it->first == change_in_flight_) change_in_flight_ = 0;
    }
  }
  config_scan_from_ = chosen_below;
  if (changed) OnConfigurationChanged();
}

void Replica::OnConfigurationChanged() {
  if (role_ == Role::kCandidate || role_ == Role::kPreCandidate) {
    // Votes were counted against the old voters: campaign again under the new ones.
    BecomeFollower(Ballot(), kNoNode);
  } else if (role_ == Role::kLeader && !IsVoter(options_.id)) {
    StepDown();  // removed (by a change this leader recovered): the voters elect one of theirs
  } else if (role_ == Role::kLeader) {
    // The lease is re-counted among the new voters (the grants themselves stay valid: each
    // acknowledging acceptor did grant it).
    lease_until_ = 0;
    UpdateLease();
    if (transfer_target_ != kNoNode && !IsVoter(transfer_target_)) EndTransfer();
    ContinueRecovery();
  }
}

Status Replica::ProposeMemberChange(const MemberChange& change) {
  auto refuse = [](StatusCode code, std::string why) { return Status(code, std::move(why)); };
  if (role_ != Role::kLeader) {
    return refuse(StatusCode::kNotLeader, "not the leader");
  }
  if (!leadership_usable_) {
    return refuse(StatusCode::kNotLeader, "the leader is still recovering");
  }
  if (member_change_pending()) {
    return refuse(StatusCode::kFailedPrecondition,
                  "another membership change is under way; one at a time");
  }
  if (transfer_target_ != kNoNode) {
    return refuse(StatusCode::kFailedPrecondition, "a leader transfer is under way");
  }
  if (change.kind == MemberChange::Kind::kRemove && change.id == options_.id) {
    return refuse(StatusCode::kFailedPrecondition,
                  "node " + std::to_string(change.id) +
                      " is the leader: transfer leadership before removing it");
  }
  Result<Configuration> next = ApplyMemberChange(config_, change);
  if (!next.ok()) return next.status();
  Value v{leader_epoch_, false, {}};
  v.config = std::move(next).value();
  queued_change_ = std::move(v);
  return Status::Ok();
}

bool Replica::member_change_pending() const {
  return queued_change_.has_value() || change_in_flight_ != 0;
}

void Replica::MaybePromoteLearner() {
  if (role_ != Role::kLeader || !leadership_usable_ || member_change_pending() ||
      transfer_target_ != kNoNode || !options_.auto_promote_learners) {
    return;
  }
  for (NodeId n : config_.learners()) {
    const Slot commit = follower_commit_[n];
    // Caught up with this leadership: past its start, and close to our commit index.
    if (commit <= leader_start_slot_ ||
        commit + options_.promote_lag_slots_max < learner_.chosen_below()) {
      continue;
    }
    Status s = ProposeMemberChange(MemberChange{MemberChange::Kind::kPromote, n, ""});
    if (s.ok()) return;
  }
}

Status Replica::TransferLeadership(NodeId target) {
  if (role_ != Role::kLeader || !leadership_usable_) {
    return Status(StatusCode::kNotLeader, "not the leader");
  }
  if (transfer_target_ != kNoNode) {
    return Status(StatusCode::kFailedPrecondition,
                  "a transfer to node " + std::to_string(transfer_target_) + " is under way");
  }
  if (member_change_pending()) {
    return Status(StatusCode::kFailedPrecondition, "a membership change is under way");
  }
  if (target == kNoNode) {
    // The most caught-up voter (the lowest id among equals, for determinism).
    for (NodeId n : config_.voters()) {
      if (n == options_.id) continue;
      if (target == kNoNode || follower_commit_[n] > follower_commit_[target]) target = n;
    }
    if (target == kNoNode) {
      return Status(StatusCode::kFailedPrecondition, "no other voter to transfer to");
    }
  }
  if (target == options_.id) {
    return Status(StatusCode::kFailedPrecondition,
                  "node " + std::to_string(target) + " already leads");
  }
  if (!IsVoter(target)) {
    return Status(StatusCode::kInvalidArgument,
                  "node " + std::to_string(target) + " is not a voter");
  }
  transfer_target_ = target;
  transfer_deadline_ = now_ + options_.transfer_ticks_max;
  timeout_now_sent_ = false;
  // From here on a handover Prepare may reach the acceptors at any time and bypass the lease:
  // stop serving reads from it (read-index reads still work).
  lease_given_up_ = true;
  lease_until_ = 0;
  heartbeat_wanted_ = true;  // learn the target's progress now
  return Status::Ok();
}

void Replica::TickTransfer() {
  if (transfer_target_ == kNoNode) return;
  if (now_ >= transfer_deadline_) {
    EndTransfer();  // the target did not take over: lead on (without the lease)
    return;
  }
  MaybeSendTimeoutNow();
}

void Replica::MaybeSendTimeoutNow() {
  if (role_ != Role::kLeader || transfer_target_ == kNoNode || timeout_now_sent_) return;
  // Everything this leader proposed is chosen and the target knows it.
  if (proposer_.in_flight() > 0 || proposer_.pending() > 0) return;
  if (follower_commit_[transfer_target_] < learner_.chosen_below()) return;
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = transfer_target_;
  m.ballot = leader_epoch_;
  Send(std::move(m));
  timeout_now_sent_ = true;
}

void Replica::EndTransfer() {
  transfer_target_ = kNoNode;
  transfer_deadline_ = 0;
  timeout_now_sent_ = false;
}

void Replica::OnTimeoutNow(const Message& m) {
  // Only from the leader we follow, under its current ballot, and only if we may vote.
  if (role_ != Role::kFollower || m.from != leader_ || m.ballot != leader_epoch_ ||
      !IsVoter(options_.id)) {
    return;
  }
  if (PersistStalled()) return;
  handover_from_ = m.ballot;
  BecomeCandidate();
}

// ---------------------------------------------------------------------------------------------
// Status

Ballot Replica::UsableEpoch() const {
  return role_ == Role::kLeader && leadership_usable_ ? leader_epoch_ : Ballot();
}

ReplicaStatus Replica::status() const {
  ReplicaStatus s;
  s.id = options_.id;
  s.role = role_;
  s.promised = acceptor_.promised();
  s.leader_epoch = leader_epoch_;
  s.leader = leader_;
  s.leader_usable = leadership_usable_;
  s.chosen_below = learner_.chosen_below();
  s.applied_below = learner_.applied_below();
  s.lease_held = LeaseHeld();
  s.lease_until_ticks = LeaseHeld() ? lease_until_ : 0;
  s.now_ticks = now_;
  return s;
}

}  // namespace ballot::paxos
