#include "tests/sim/sim_node.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include "statemachine/samples/sequence.h"

namespace ballot::sim {

namespace {

using samples::SequenceGenerator;

// Rounds of TakeReady() per input. The core settles in one or two; more means it livelocks.
constexpr int kReadyRoundsMax = 64;
// Snapshots captured but not yet safe to save.
constexpr size_t kCapturedMax = 4;
// A snapshot fetch with no answer is sent again after this long.
constexpr Time kSnapshotFetchTimeoutMs = 30 * kTickMs;

}  // namespace

DiskConfig DiskConfig::Draw(Rng* rng) {
  static constexpr Time kLatencyMaxMs[] = {1, 4, 8, 20};
  DiskConfig d;
  d.latency_max_ms = rng->Pick(kLatencyMaxMs);
  d.stall = 0.01;
  return d;
}

SimNode::SimNode(paxos::NodeId id, paxos::Options base, uint64_t run_seed, NodeHost* host)
    : id_(id), base_(std::move(base)), run_seed_(run_seed), host_(host) {}

paxos::Options SimNode::OptionsFor(uint64_t incarnation) const {
  paxos::Options o = base_;
  o.id = id_;
  o.seed = Mix64(run_seed_ ^ Mix64(id_ * 0x100000001B3ull + incarnation));
  return o;
}

void SimNode::Start() {
  CHECK(!up());
  ++incarnation_;
  Result<paxos::DurableState> durable = store_.Load();
  CHECK(durable.ok()) << durable.status().ToString();
  applier_ = std::make_unique<Applier>(std::make_unique<SequenceGenerator>());
  Result<std::optional<store::Snapshot>> snapshot = store_.LoadSnapshot();
  CHECK(snapshot.ok()) << snapshot.status().ToString();
  if (snapshot.value()) {
    const Status restored = applier_->Restore(snapshot.value()->data);
    CHECK(restored.ok()) << restored.ToString();
    CHECK_EQ(applier_->applied_below(), snapshot.value()->applied_below);
    CHECK_EQ(durable.value().applied_below, snapshot.value()->applied_below);
    host_->checker().OnNodeStart(id_, saved_fresh_);
  } else {
    host_->checker().OnNodeStart(id_);
  }
  replica_ = std::make_unique<paxos::Replica>(OptionsFor(incarnation_), std::move(durable).value());
  host_->trace().Fold({0x5741, id_, incarnation_});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " starts, incarnation " +
                                       std::to_string(incarnation_));
  Drain();
}

void SimNode::Crash() {
  CHECK(up());
  host_->trace().Fold({0xC4A5, id_, incarnation_});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " CRASHES" +
                                       (outstanding_ ? " (losing an unsynced write)" : ""));
  store_.Crash();
  // The planted bug "forget promise" models a node that never persisted its promise; the disk
  // must not remember it either.
  if (base_.planted.forget_promise_on_restart) store_.TEST_ForgetPromise();
  replica_.reset();
  applier_.reset();
  outstanding_.reset();
  waiting_commands_.clear();
  pending_reads_.clear();
  confirmed_reads_.clear();
  captured_.clear();
  snapshot_fetch_ms_ = 0;
}

void SimNode::Tick() {
  if (!up()) return;
  replica_->Tick();
  Drain();
}

void SimNode::OnPeerMessage(const paxos::Message& m) {
  if (!up()) return;
  replica_->Step(m);
  Drain();
}

void SimNode::OnClientRequest(Endpoint from, const ClientRequest& r) {
  if (!up()) return;
  if (r.kind == ClientRequest::Kind::kNext) {
    ProposeCommand(from, r);
  } else {
    StartRead(from, r);
  }
  Drain();
}

void SimNode::OnSyncDone(uint64_t incarnation) {
  if (!up() || incarnation != incarnation_) return;  // crashed meanwhile: the write is lost
  CHECK(outstanding_.has_value());
  Outstanding done = std::move(*outstanding_);
  outstanding_.reset();
  store_.Sync();
  if (done.batch.chosen_below) {
    durable_chosen_below_ = std::max(durable_chosen_below_, *done.batch.chosen_below);
  }
  host_->checker().OnDurable(id_, done.batch);
  host_->trace().Fold({0x5C, id_, done.batch.entries.size(), done.after.size()});
  if (host_->trace().verbose()) {
    std::ostringstream os;
    os << "node " << id_ << " synced " << done.batch.entries.size() << " entries"
       << (done.batch.promised ? " promise=" + paxos::ToString(*done.batch.promised) : "")
       << (done.batch.chosen_below ? " chosen_below=" + std::to_string(*done.batch.chosen_below)
                                   : "");
    host_->trace().Log(host_->now(), os.str());
  }
  for (const paxos::Message& m : done.after) SendPeer(m);
  replica_->Advance();
  Drain();
}

void SimNode::TakeSnapshot() {
  if (!up() || applier_->applied_below() <= saved_below_) return;
  if (!captured_.empty() && captured_.back().snapshot.applied_below == applier_->applied_below()) {
    return;
  }
  if (captured_.size() >= kCapturedMax) captured_.erase(captured_.begin());
  captured_.push_back(
      CapturedSnapshot{store::Snapshot{applier_->applied_below(), applier_->Snapshot()},
                       host_->checker().fresh(id_)});
}

void SimNode::CompactBelow(paxos::Slot safe) {
  if (!up()) return;
  if (compact_own_) safe = durable_chosen_below_;
  // The newest capture that is safe to make durable; older ones are superseded.
  auto newest = captured_.end();
  for (auto it = captured_.begin(); it != captured_.end(); ++it) {
    if (it->snapshot.applied_below <= safe) newest = it;
  }
  if (newest == captured_.end()) return;
  const paxos::Slot below = newest->snapshot.applied_below;
  const Status saved = store_.SaveSnapshot(newest->snapshot);
  CHECK(saved.ok()) << saved.ToString();
  saved_fresh_ = std::move(newest->fresh);
  saved_below_ = below;
  captured_.erase(captured_.begin(), newest + 1);
  replica_->CompactBelow(below);
  host_->trace().Fold({0x5A9, id_, below});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " snapshots below slot " +
                                       std::to_string(below));
  Drain();
}

void SimNode::Drain() {
  for (int round = 0; round < kReadyRoundsMax; ++round) {
    if (!up() || !replica_->HasReady()) return;
    paxos::Ready ready = replica_->TakeReady();
    HandleReady(ready);
  }
  host_->checker().Fail("node " + std::to_string(id_) + ": HasReady() still true after " +
                        std::to_string(kReadyRoundsMax) + " TakeReady() rounds");
}

void SimNode::HandleReady(paxos::Ready& ready) {
  host_->trace().Fold({0x4EAD, id_, ready.send_now.size(), ready.persist.has_value(),
                       ready.send_after_persist.size(), ready.apply.size(), ready.events.size(),
                       ready.reads.size(), ready.failed_reads.size(), ready.dropped.size()});
  for (const paxos::Message& m : ready.send_now) SendPeer(m);
  HandlePersist(ready);
  for (const paxos::LeadershipEvent& e : ready.events) {
    const bool became = e.kind == paxos::LeadershipEvent::Kind::kBecameLeader;
    host_->trace().Fold({0xE7, id_, became, e.epoch.raw(), e.start_slot});
    host_->trace().Log(host_->now(),
                       "node " + std::to_string(id_) +
                           (became ? " BECOMES LEADER of " : " loses leadership of ") +
                           paxos::ToString(e.epoch) +
                           (became ? " start_slot=" + std::to_string(e.start_slot) : ""));
    host_->checker().OnLeadershipEvent(id_, e);
  }
  HandleApply(ready.apply);
  HandleReads(ready);
  HandleDropped(ready.dropped);
  if (ready.snapshot_needed) FetchSnapshot(*ready.snapshot_needed);
}

void SimNode::FetchSnapshot(const paxos::SnapshotNeeded& needed) {
  // One fetch at a time; the core raises the need again while it persists.
  if (snapshot_fetch_ms_ != 0 && host_->now() < snapshot_fetch_ms_ + kSnapshotFetchTimeoutMs) {
    return;
  }
  snapshot_fetch_ms_ = host_->now();
  host_->trace().Fold({0x5AF, id_, needed.from, needed.below});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " fetches a snapshot below " +
                                       std::to_string(needed.below) + " from node " +
                                       std::to_string(needed.from));
  host_->Send(Envelope{id_, needed.from, SnapshotRequest{needed.below}});
}

void SimNode::OnSnapshotRequest(Endpoint from, const SnapshotRequest& r) {
  if (!up() || applier_->applied_below() < r.below) return;  // cannot help: the asker retries
  SnapshotReply reply{applier_->applied_below(), applier_->Snapshot(), host_->checker().fresh(id_)};
  host_->Send(Envelope{id_, from, std::move(reply)});
}

void SimNode::OnSnapshotReply(const SnapshotReply& r) {
  if (!up() || r.applied_below <= applier_->applied_below()) return;
  snapshot_fetch_ms_ = 0;
  const Status restored = applier_->Restore(r.data);
  CHECK(restored.ok()) << restored.ToString();
  const Status saved = store_.SaveSnapshot(store::Snapshot{r.applied_below, r.data});
  CHECK(saved.ok()) << saved.ToString();
  saved_fresh_ = r.fresh;
  saved_below_ = r.applied_below;
  durable_chosen_below_ = std::max(durable_chosen_below_, r.applied_below);
  captured_.clear();
  host_->checker().OnNodeStart(id_, r.fresh);
  replica_->InstallSnapshot(r.applied_below);
  host_->trace().Fold({0x5A1, id_, r.applied_below});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " installs a snapshot below " +
                                       std::to_string(r.applied_below));
  ServeReads();
  Drain();
}

void SimNode::HandlePersist(paxos::Ready& ready) {
  if (!ready.persist) {
    // Messages held for durability with no new batch: they wait for the outstanding one, if any
    // (sending later is always safe).
    if (outstanding_) {
      for (paxos::Message& m : ready.send_after_persist)
        outstanding_->after.push_back(std::move(m));
    } else {
      for (const paxos::Message& m : ready.send_after_persist) SendPeer(m);
    }
    return;
  }
  if (outstanding_) {
    host_->checker().Fail("node " + std::to_string(id_) +
                          ": a second persist batch was handed out before Advance()");
    return;
  }
  store_.Stage(*ready.persist);
  outstanding_ = Outstanding{std::move(*ready.persist), std::move(ready.send_after_persist)};
  host_->ScheduleSync(id_, incarnation_, DrawSyncLatency());
}

Time SimNode::DrawSyncLatency() {
  Rng& rng = host_->rng();
  if (rng.Chance(disk_.stall)) {
    const Time stall = rng.Uniform(disk_.stall_min_ms, disk_.stall_max_ms);
    host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " fsync stalls for " +
                                         std::to_string(stall) + "ms");
    return stall;
  }
  return rng.Uniform(0, disk_.latency_max_ms);
}

void SimNode::HandleApply(const std::vector<paxos::Entry>& entries) {
  if (entries.empty()) return;
  // (c): the applied sequence must continue exactly where it stopped; check before the Applier
  // (which CHECKs the same) so that a core bug is reported with its seed, not as a crash.
  paxos::Slot expected = applier_->applied_below();
  uint64_t log_epoch = applier_->log_epoch();
  for (const paxos::Entry& e : entries) {
    std::ostringstream os;
    if (e.slot != expected) {
      os << "node " << id_ << " applied slot " << e.slot << " but its next slot to apply is "
         << expected;
      host_->checker().Fail(os.str());
      return;
    }
    // (b) is checked on chosen values by the Checker. A leader_start that does not raise the
    // log's epoch is the stale marker of a leadership that never became usable: the Applier
    // ignores it, and so do we.
    if (e.value.leader_start && e.value.epoch.raw() > log_epoch) log_epoch = e.value.epoch.raw();
    ++expected;
    host_->checker().OnApply(id_, e);
    host_->trace().Fold({0xA7, id_, e.slot, paxos::HashValue(e.value)});
    if (host_->trace().verbose()) {
      host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " applies slot " +
                                           std::to_string(e.slot) + " epoch " +
                                           paxos::ToString(e.value.epoch) +
                                           (e.value.leader_start ? " leader_start" : "") + " " +
                                           std::to_string(e.value.commands.size()) + " commands");
    }
  }
  if (host_->checker().failed()) return;  // the Applier would CHECK on what the checker saw
  std::vector<Reply> replies;
  applier_->Apply(entries, &replies);
  for (const Reply& r : replies) RouteReply(r);
  ServeReads();
}

void SimNode::RouteReply(const Reply& reply) {
  // Outside the sim's control only "session expired" (kAborted) answers; next(n) with n in 1..5
  // never fails. So a non-duplicate, non-aborted reply is a command that reached the machine.
  if (!reply.duplicate && reply.outcome.code != StatusCode::kAborted) {
    host_->checker().OnFreshReply(id_, reply);
  }
  auto it = waiting_commands_.find({reply.client_id, reply.sequence});
  if (it == waiting_commands_.end()) return;
  ClientReply out;
  out.kind = ClientReply::Kind::kResult;
  out.client_id = reply.client_id;
  out.sequence = reply.sequence;
  out.outcome = reply.outcome;
  out.slot = reply.slot;
  out.duplicate = reply.duplicate;
  SendClient(it->second, std::move(out));
  waiting_commands_.erase(it);
}

void SimNode::HandleReads(const paxos::Ready& ready) {
  for (const paxos::ReadState& rs : ready.reads) confirmed_reads_.push_back(rs);
  for (const paxos::ReadFailure& f : ready.failed_reads) {
    auto it = pending_reads_.find(f.read_id);
    if (it == pending_reads_.end()) continue;
    ClientReply out;
    out.kind = ClientReply::Kind::kRetry;
    out.client_id = it->second.client_id;
    out.op_id = it->second.op_id;
    out.is_read = true;
    SendClient(it->second.client, std::move(out));
    pending_reads_.erase(it);
  }
  ServeReads();
}

void SimNode::ServeReads() {
  const paxos::Slot applied = applier_->applied_below();
  std::erase_if(confirmed_reads_, [&](const paxos::ReadState& rs) {
    if (rs.read_below > applied) return false;
    auto it = pending_reads_.find(rs.read_id);
    if (it == pending_reads_.end()) return true;
    ClientReply out;
    out.kind = ClientReply::Kind::kResult;
    out.client_id = it->second.client_id;
    out.op_id = it->second.op_id;
    out.is_read = true;
    out.outcome = applier_->Query(SequenceGenerator::EncodePeek());
    host_->trace().Fold({0x4EAD5, id_, rs.read_id, rs.read_below, applied});
    SendClient(it->second.client, std::move(out));
    pending_reads_.erase(it);
    return true;
  });
}

void SimNode::HandleDropped(const std::vector<paxos::Command>& dropped) {
  for (const paxos::Command& c : dropped) {
    auto it = waiting_commands_.find({c.client_id, c.sequence});
    if (it == waiting_commands_.end()) continue;
    ClientReply out;
    out.kind = ClientReply::Kind::kRetry;
    out.client_id = c.client_id;
    out.sequence = c.sequence;
    SendClient(it->second, std::move(out));
    waiting_commands_.erase(it);
  }
}

void SimNode::ProposeCommand(Endpoint from, const ClientRequest& r) {
  paxos::Command c;
  c.client_id = r.client_id;
  c.sequence = r.sequence;
  c.acked_sequence = r.acked_sequence;
  c.stamp_ms = host_->now();
  c.payload = SequenceGenerator::EncodeNext(r.count);
  const paxos::ProposeResult result = replica_->Propose(std::move(c));
  host_->trace().Fold({0x9709, id_, r.client_id, r.sequence, static_cast<uint64_t>(result.kind)});
  if (result.kind != paxos::ProposeResult::Kind::kOk) {
    RejectClient(from, r, result);
    return;
  }
  // One waiting entry per client: older sequences are answered or abandoned by now.
  auto first = waiting_commands_.lower_bound({r.client_id, 0});
  auto last = waiting_commands_.lower_bound({r.client_id, r.sequence});
  waiting_commands_.erase(first, last);
  waiting_commands_[{r.client_id, r.sequence}] = from;
}

void SimNode::StartRead(Endpoint from, const ClientRequest& r) {
  const uint64_t read_id = next_read_id_++;
  const paxos::ProposeResult result = replica_->Read(read_id);
  host_->trace().Fold({0x4EAD0, id_, r.client_id, r.op_id, static_cast<uint64_t>(result.kind)});
  if (result.kind != paxos::ProposeResult::Kind::kOk) {
    RejectClient(from, r, result);
    return;
  }
  pending_reads_[read_id] = PendingRead{from, r.client_id, r.op_id};
}

void SimNode::RejectClient(Endpoint to, const ClientRequest& r,
                           const paxos::ProposeResult& result) {
  ClientReply out;
  out.kind = result.kind == paxos::ProposeResult::Kind::kNotLeader ? ClientReply::Kind::kNotLeader
                                                                   : ClientReply::Kind::kRetry;
  out.client_id = r.client_id;
  out.op_id = r.op_id;
  out.sequence = r.sequence;
  out.is_read = r.kind == ClientRequest::Kind::kRead;
  out.hint = result.leader_hint;
  SendClient(to, std::move(out));
}

void SimNode::SendPeer(const paxos::Message& m) { host_->Send(Envelope{id_, m.to, m}); }

void SimNode::SendClient(Endpoint to, ClientReply reply) {
  host_->Send(Envelope{id_, to, std::move(reply)});
}

}  // namespace ballot::sim
