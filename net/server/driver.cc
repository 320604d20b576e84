#include "net/server/driver.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "store/checksum.h"

namespace ballot {

using paxos::Message;
using paxos::MessageType;
using paxos::NodeId;
using paxos::Slot;

namespace {

Status Invalid(const std::string& why) { return Status(StatusCode::kInvalidArgument, why); }

size_t CommandsIn(const std::vector<paxos::Entry>& entries) {
  size_t commands = 0;
  // A leader_start or no-op entry still costs the applier a step: count it as one.
  for (const paxos::Entry& e : entries) commands += e.value.commands.size() + 1;
  return commands;
}

}  // namespace

Status DriverTuning::Validate() const {
  if (apply_queue_commands_max == 0) return Invalid("apply queue bound must be at least 1");
  if (transfer_chunk_bytes == 0 || transfer_chunk_bytes > kSnapshotChunkBytesMax * 4) {
    return Invalid("snapshot transfer chunk must be 1.." +
                   std::to_string(kSnapshotChunkBytesMax * 4) + " bytes");
  }
  if (transfer_bytes_per_tick_max < transfer_chunk_bytes) {
    return Invalid("snapshot transfer rate per tick must be at least one chunk");
  }
  if (transfer_retry_ticks == 0) return Invalid("snapshot transfer retry must be at least 1 tick");
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Recovery

Result<Driver::Recovered> Driver::Recover(store::Store* store, store::SnapshotStore* snapshots,
                                          Applier* applier, NodeId self, DriverHost* host) {
  Result<paxos::DurableState> loaded = store->Load();
  if (!loaded.ok()) return loaded.status();
  Recovered out{std::move(loaded).value(), 1};
  out.store_mark = out.durable.applied_below;
  Result<std::vector<store::SnapshotInfo>> list = snapshots->List();
  if (!list.ok()) return list.status();
  Slot restored = 0;
  for (const store::SnapshotInfo& info : list.value()) {
    // Older than the mark: the log that would follow it is gone.
    if (info.applied_below < out.store_mark) break;
    Status verified = store::VerifySnapshot(snapshots, info.applied_below);
    if (!verified.ok()) {
      LOG(ERROR) << "node " << self << ": snapshot below slot " << info.applied_below
                 << " is unusable, trying an older one: " << verified.ToString();
      continue;
    }
    Result<std::unique_ptr<SnapshotReader>> reader = snapshots->Open(info.applied_below);
    if (!reader.ok()) return reader.status();
    Status s = applier->RestoreFrom(reader.value().get());
    if (!s.ok()) {
      return Status(s.code(), "restoring the snapshot below slot " +
                                  std::to_string(info.applied_below) + ": " + s.message());
    }
    restored = info.applied_below;
    break;
  }
  if (restored == 0 && out.store_mark > 1) {
    return Status(StatusCode::kCorruption,
                  "the log below slot " + std::to_string(out.store_mark) +
                      " was compacted, but no valid snapshot at or above it remains; this node "
                      "cannot serve from its data directory");
  }
  if (restored != 0) {
    CHECK_EQ(applier->applied_below(), restored);
    out.durable.applied_below = restored;
    // Applied implies chosen (a snapshot received from a peer may be ahead of our log).
    out.durable.chosen_below = std::max(out.durable.chosen_below, restored);
    if (host != nullptr) host->OnSnapshotRestored(self, restored);
  }
  // The snapshot's membership, or the bootstrap one the host gave the applier (empty for a
  // joining node): the replica applies the log's changes after applied_below on top.
  out.durable.config = applier->configuration();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Construction

Driver::Driver(DriverOptions options, DriverHost* host, std::unique_ptr<paxos::Replica> replica,
               std::unique_ptr<Applier> applier, store::Store* store,
               store::SnapshotStore* snapshots, Slot store_mark)
    : options_(std::move(options)),
      host_(host),
      store_(store),
      snapshots_(snapshots),
      self_(replica->status().id),
      replica_(std::move(replica)),
      applier_(std::move(applier)),
      store_mark_(store_mark) {
  CHECK(options_.Validate().ok()) << options_.Validate().ToString();
  const Slot applied = applier_->applied_below();
  applied_below_.store(applied);
  last_snapshot_below_ = applied;
  if (applied > 1) {
    newest_snapshot_below_ = applied;  // restored from it
    previous_snapshot_below_ = applied;
  }
}

Driver::~Driver() = default;

// ---------------------------------------------------------------------------------------------
// Inputs

void Driver::Tick() {
  ++now_ticks_;
  transfer_bytes_this_tick_ = 0;
  replica_->Tick();
  TickTransfer();
  ExpireServing();
}

void Driver::Step(const Message& message) {
  switch (message.type) {
    case MessageType::kSnapshotRequest:
      OnSnapshotRequest(message);
      return;
    case MessageType::kSnapshotChunk:
      OnSnapshotChunk(message);
      return;
    default:
      replica_->Step(message);
  }
}

void Driver::Propose(paxos::Command command, ClientTag tag) {
  if (apply_queue_commands_.load() >= options_.apply_queue_commands_max) {
    return host_->Refuse(tag, StatusCode::kOverloaded, "apply queue full", replica_->leader());
  }
  if (command.client_id == 0 || command.sequence == 0) {
    // Replies are routed by session; without one a retry could also apply twice.
    return host_->Refuse(tag, StatusCode::kInvalidArgument,
                         "a proposal needs a client id and a sequence number", paxos::kNoNode);
  }
  auto key = std::make_pair(command.client_id, command.sequence);
  paxos::ProposeResult r = replica_->Propose(std::move(command));
  switch (r.kind) {
    case paxos::ProposeResult::Kind::kOk:
      waiting_commands_.emplace(key, tag);
      return;
    case paxos::ProposeResult::Kind::kOverloaded:
      return host_->Refuse(tag, StatusCode::kOverloaded, "proposal queue full", r.leader_hint);
    case paxos::ProposeResult::Kind::kNotLeader:
      return host_->Refuse(tag, StatusCode::kNotLeader, "not the leader", r.leader_hint);
  }
}

void Driver::Read(std::string query, ClientTag tag) {
  const uint64_t read_id = ++last_read_id_;
  paxos::ProposeResult r = replica_->Read(read_id);
  if (r.kind != paxos::ProposeResult::Kind::kOk) {
    const bool overloaded = r.kind == paxos::ProposeResult::Kind::kOverloaded;
    return host_->Refuse(tag, overloaded ? StatusCode::kOverloaded : StatusCode::kNotLeader,
                         overloaded ? "read queue full" : "not the leader", r.leader_hint);
  }
  waiting_reads_[read_id] = WaitingRead{tag, std::move(query)};
}

void Driver::RequestSnapshot(std::function<void(Result<Slot>)> done) {
  snapshot_waiters_.push_back(std::move(done));
  host_->ToApplier([this] {
    // A request that comes while a snapshot is written is answered by that one (its waiter is
    // already queued, and OnSnapshotSaved answers every waiter): a client that retries while
    // a large state is written must not cause one snapshot per attempt.
    if (snapshot_in_progress_) return;
    snapshot_requested_ = true;
    MaybeSnapshot();
  });
}

void Driver::RunOnDriver(const std::function<void()>& work) {
  work();
  Drain();
}

// ---------------------------------------------------------------------------------------------
// Ready

void Driver::Drain() {
  // The core settles in a pass or two; each pass either hands out a persist batch (then waits
  // for the disk) or output that does not feed back. More passes than this is a livelock.
  static constexpr int kDrainPassesMax = 64;
  for (int pass = 0; pass < kDrainPassesMax && replica_->HasReady(); ++pass) {
    HandleReady(replica_->TakeReady());
  }
  leader_.store(replica_->leader());
}

void Driver::HandleReady(paxos::Ready ready) {
  // First: the messages below may go to a member this configuration just added.
  if (ready.configuration) host_->OnConfiguration(*ready.configuration);
  for (Message& m : ready.send_now) host_->SendToPeer(std::move(m));
  HandlePersist(ready);
  // Entries before events: a new leader's announcement waits on the applier side until its
  // recovered slots are applied, and they must be queued ahead of it.
  if (!ready.apply.empty()) HandleApply(std::move(ready.apply));
  for (const paxos::LeadershipEvent& e : ready.events) HandleEvent(e);
  HandleReads(ready);
  for (const paxos::Command& c : ready.dropped) {
    FailCommand(c.client_id, c.sequence, "leadership lost; retry with the same sequence");
  }
  if (ready.snapshot_needed) StartTransfer(*ready.snapshot_needed);
}

void Driver::HandlePersist(paxos::Ready& ready) {
  if (!ready.persist) {
    // Held for durability with no new batch: they wait for the outstanding one, if any.
    if (persist_outstanding_) {
      for (Message& m : ready.send_after_persist) after_persist_.push_back(std::move(m));
    } else {
      for (Message& m : ready.send_after_persist) host_->SendToPeer(std::move(m));
    }
    return;
  }
  CHECK(!persist_outstanding_) << "a second persist batch before Advance()";
  persist_outstanding_ = true;
  after_persist_ = std::move(ready.send_after_persist);
  host_->Persist(std::move(*ready.persist));
}

void Driver::OnPersisted() {
  CHECK(persist_outstanding_) << "OnPersisted() without an outstanding batch";
  persist_outstanding_ = false;
  std::vector<Message> after = std::exchange(after_persist_, {});
  for (Message& m : after) host_->SendToPeer(std::move(m));
  replica_->Advance();
  Drain();
}

void Driver::HandleApply(std::vector<paxos::Entry> entries) {
  const size_t commands = CommandsIn(entries);
  apply_queue_commands_ += commands;
  host_->ToApplier(
      [this, entries = std::move(entries), commands] { ApplyEntries(entries, commands); });
}

void Driver::HandleEvent(const paxos::LeadershipEvent& e) {
  host_->OnLeadershipEvent(e);
  const uint64_t epoch = e.epoch.raw();
  if (e.kind == paxos::LeadershipEvent::Kind::kBecameLeader) {
    host_->ToApplier([this, epoch, start = e.start_slot] {
      pending_announcements_.push_back(PendingAnnouncement{epoch, start});
      MaybeAnnounce();
    });
    return;
  }
  // Commands already in slots may still be chosen by the next leader; their clients retry
  // there under the same session sequence and get the one result.
  FailAllWaiting();
  host_->ToApplier([this, epoch] {
    std::erase_if(pending_announcements_,
                  [epoch](const PendingAnnouncement& p) { return p.epoch == epoch; });
    if (announced_leading_ && announced_epoch_ == epoch) Announce(false, epoch);
  });
}

void Driver::HandleReads(paxos::Ready& ready) {
  for (const paxos::ReadState& r : ready.reads) {
    auto it = waiting_reads_.find(r.read_id);
    if (it == waiting_reads_.end()) continue;
    host_->ToApplier([this, id = r.read_id, below = r.read_below, query = it->second.query] {
      reads_waiting_apply_.push_back(ServeRead{id, below, query});
      ServeReads();
    });
  }
  for (const paxos::ReadFailure& f : ready.failed_reads) {
    auto it = waiting_reads_.find(f.read_id);
    if (it == waiting_reads_.end()) continue;
    host_->Refuse(it->second.tag, StatusCode::kNotLeader,
                  "leadership lost before the read was confirmed", replica_->leader());
    waiting_reads_.erase(it);
  }
}

void Driver::OnReplies(std::vector<Reply> replies) {
  for (Reply& r : replies) {
    auto [begin, end] = waiting_commands_.equal_range({r.client_id, r.sequence});
    for (auto it = begin; it != end; ++it) host_->CommandDone(it->second, r);
    waiting_commands_.erase(begin, end);
  }
}

void Driver::OnReadServed(uint64_t read_id, Outcome outcome) {
  auto it = waiting_reads_.find(read_id);
  if (it == waiting_reads_.end()) return;
  host_->ReadDone(it->second.tag, std::move(outcome));
  waiting_reads_.erase(it);
}

void Driver::FailCommand(uint64_t client_id, uint64_t sequence, const std::string& why) {
  auto [begin, end] = waiting_commands_.equal_range({client_id, sequence});
  for (auto it = begin; it != end; ++it) {
    host_->Refuse(it->second, StatusCode::kNotLeader, why, replica_->leader());
  }
  waiting_commands_.erase(begin, end);
}

void Driver::FailAllWaiting() {
  for (const auto& [key, tag] : waiting_commands_) {
    host_->Refuse(tag, StatusCode::kNotLeader, "leadership lost; retry with the same sequence",
                  replica_->leader());
  }
  waiting_commands_.clear();
}

// ---------------------------------------------------------------------------------------------
// Applier side

void Driver::ApplyEntries(const std::vector<paxos::Entry>& entries, size_t commands) {
  if (!host_->BeforeApply(entries)) return;
  std::vector<Reply> replies;
  applier_->Apply(entries, &replies);
  apply_queue_commands_ -= commands;
  applied_below_.store(applier_->applied_below());
  for (const Reply& r : replies) host_->OnApplied(r);
  host_->AfterApply(entries, *applier_);
  for (const paxos::Entry& e : entries) log_bytes_since_snapshot_ += e.value.ByteSize();
  host_->ToDriver([this, r = std::move(replies)]() mutable { OnReplies(std::move(r)); });
  ServeReads();
  MaybeAnnounce();
  MaybeSnapshot();
}

void Driver::ServeReads() {
  // Reads arrive in read_below order (the commit index only grows), so serve from the front.
  while (!reads_waiting_apply_.empty() &&
         reads_waiting_apply_.front().read_below <= applier_->applied_below()) {
    ServeRead r = std::move(reads_waiting_apply_.front());
    reads_waiting_apply_.pop_front();
    Outcome o = applier_->Query(r.query);
    host_->ToDriver(
        [this, id = r.read_id, o = std::move(o)]() mutable { OnReadServed(id, std::move(o)); });
  }
}

void Driver::MaybeAnnounce() {
  // A leadership is announced once the state machine has applied its leader_start entry (and
  // so every slot before it): code that acts as leader sees every acknowledged write. An epoch
  // lower than one already announced, or than the log's, is stale and never announced.
  while (!pending_announcements_.empty()) {
    const PendingAnnouncement p = pending_announcements_.front();
    if (applier_->applied_below() <= p.start_slot) return;
    pending_announcements_.erase(pending_announcements_.begin());
    if (p.epoch <= announced_epoch_ || p.epoch < applier_->log_epoch()) continue;
    Announce(true, p.epoch);
  }
}

void Driver::Announce(bool leading, uint64_t epoch) {
  if (leading) {
    CHECK_GT(epoch, announced_epoch_) << "announcements must only go forward";
    announced_epoch_ = epoch;
  }
  announced_leading_ = leading;
  token_.store(leading ? epoch : 0);
  if (leading) {
    applier_->machine().OnLeaderStart(epoch);
  } else {
    applier_->machine().OnLeaderStop(epoch);
  }
  host_->OnAnnounced(leading, epoch);
}

// ---------------------------------------------------------------------------------------------
// Snapshots

void Driver::MaybeSnapshot() {
  if (snapshot_in_progress_) return;
  const Slot applied = applier_->applied_below();
  const bool by_slots = options_.snapshot_every_slots != 0 &&
                        applied - last_snapshot_below_ >= options_.snapshot_every_slots;
  const bool by_bytes = options_.snapshot_every_log_bytes != 0 &&
                        log_bytes_since_snapshot_ >=
                            std::max(options_.snapshot_every_log_bytes, last_snapshot_bytes_);
  if (!snapshot_requested_ && !by_slots && !by_bytes) return;
  if (applied <= 1 && !snapshot_requested_) return;
  snapshot_requested_ = false;
  BeginSnapshot();
}

void Driver::BeginSnapshot() {
  std::shared_ptr<PendingSnapshot> pending = applier_->BeginSnapshot();
  const Slot below = pending->applied_below();
  host_->OnSnapshotTaken(below);
  snapshot_in_progress_ = true;
  last_snapshot_below_ = below;
  log_bytes_since_snapshot_ = 0;
  const Slot previous = previous_snapshot_below_;
  host_->InBackground([this, pending, below, previous] {
    Status s = WriteSnapshot(pending.get(), below);
    // The store keeps its log from the previous snapshot on, so that the one before the newest
    // remains a fallback if the newest is ever found damaged.
    // A snapshot a peer is copying from here stays (with the log after it) until the copy
    // ends: deleted, the peer would start over with a newer one, and a copy that takes longer
    // than two snapshot intervals would never finish. A later raise catches up.
    const Slot serving = serving_below_.load();
    const Slot mark = serving != 0 ? std::min(previous, serving) : previous;
    if (s.ok() && mark > 1) s = RaiseStoreMark(mark);
    host_->ToDriver(
        [this, below, s, bytes = SnapshotBytes(below)] { OnSnapshotSaved(below, s, bytes); });
  });
}

Status Driver::WriteSnapshot(PendingSnapshot* pending, Slot below) {
  Result<std::unique_ptr<store::SnapshotSink>> sink = snapshots_->Create(below);
  if (!sink.ok()) return sink.status();
  Status s = pending->WriteTo(sink.value().get());
  if (s.ok()) s = sink.value()->Commit();
  return s;
}

uint64_t Driver::SnapshotBytes(Slot below) const {
  Result<std::vector<store::SnapshotInfo>> list = snapshots_->List();
  if (!list.ok()) return 0;
  for (const store::SnapshotInfo& info : list.value()) {
    if (info.applied_below == below) return info.raw_bytes;
  }
  return 0;
}

Status Driver::RaiseStoreMark(Slot below) {
  MutexLock lock(&mark_mu_);
  if (below <= store_mark_) return Status::Ok();
  Status s = store_->SaveSnapshot(store::Snapshot{below, {}});
  if (!s.ok()) return s;
  store_mark_ = below;
  return snapshots_->DeleteBelow(below);
}

void Driver::OnSnapshotSaved(Slot below, Status status, uint64_t bytes) {
  host_->OnSnapshotSaved(below, status.ok(), bytes);
  if (status.ok()) {
    ++counters_.snapshots_taken;
    newest_snapshot_below_ = std::max(newest_snapshot_below_, below);
    CompactMemory();
    LOG(INFO) << "node " << self_ << ": snapshot below slot " << below << " is durable";
  } else {
    ++counters_.snapshots_failed;
    LOG(ERROR) << "node " << self_ << ": snapshot below slot " << below
               << " failed: " << status.ToString();
    // The snapshot files are expendable, the store is not: a store that failed a sync is fatal.
    if (status.code() == StatusCode::kIoError || status.code() == StatusCode::kCorruption) {
      host_->Fatal(status);
    }
  }
  std::vector<std::function<void(Result<Slot>)>> waiters = std::exchange(snapshot_waiters_, {});
  for (auto& done : waiters) {
    if (status.ok()) {
      done(below);
    } else {
      done(status);
    }
  }
  host_->ToApplier([this, below, bytes, ok = status.ok()] {
    snapshot_in_progress_ = false;
    if (ok) previous_snapshot_below_ = std::max(previous_snapshot_below_, below);
    if (ok) last_snapshot_bytes_ = bytes;
    MaybeSnapshot();  // a request that came while this one was written
  });
}

void Driver::CompactMemory() {
  const Slot below = newest_snapshot_below_;
  if (below <= options_.log_retain_slots + 1) return;
  paxos::SlotLog::Records dropped = replica_->CompactBelow(
      std::min<Slot>(below - options_.log_retain_slots, replica_->status().applied_below));
  if (dropped.empty()) return;
  // Freed in the background: ~10k slots of ~80 commands took this thread 110-160 ms to free
  // (256 clients), longer than check_quorum_ticks, and the leader stepped down after every
  // snapshot (docs/performance.md, "60 s without a leader change").
  auto garbage = std::make_shared<paxos::SlotLog::Records>(std::move(dropped));
  host_->InBackground([garbage] { garbage->clear(); });
}

// ---------------------------------------------------------------------------------------------
// Snapshot transfer: the sending side

void Driver::OnSnapshotRequest(const Message& m) {
  Message reply;
  reply.type = MessageType::kSnapshotChunk;
  reply.to = m.from;
  reply.from = self_;
  // Continue the snapshot the receiver is copying if it is still here, else the newest that
  // covers what it needs (the receiver then starts over).
  Slot below = 0;
  Result<std::vector<store::SnapshotInfo>> list = snapshots_->List();
  uint64_t total = 0;
  if (list.ok()) {
    // Only snapshots this node wrote, installed or restored from. A newer file is one that
    // Recover found damaged and fell back from: served, it would fail the receiver's whole-file
    // check every time, and the receiver would never get a snapshot.
    std::erase_if(list.value(), [this](const store::SnapshotInfo& info) {
      return info.applied_below > newest_snapshot_below_;
    });
    for (const store::SnapshotInfo& info : list.value()) {
      if (m.round != 0 && info.applied_below == m.round) {
        below = info.applied_below;
        total = info.raw_bytes;
        break;
      }
    }
    if (below == 0 && !list.value().empty() && list.value().front().applied_below >= m.slot) {
      below = list.value().front().applied_below;
      total = list.value().front().raw_bytes;
    }
  }
  const uint64_t offset = below == m.round ? m.commit : 0;
  if (below != 0) {
    Status s = snapshots_->ReadRaw(below, offset, options_.transfer_chunk_bytes, &reply.data);
    if (!s.ok()) {
      LOG(WARNING) << "node " << self_ << ": cannot serve snapshot " << below << " to node "
                   << m.from << ": " << s.ToString();
      below = 0;
      reply.data.clear();
    }
  }
  reply.slot = below;
  reply.commit = below != 0 ? offset : 0;
  reply.round = total;
  reply.ok = below != 0 && offset + reply.data.size() >= total;
  if (below != 0 && !reply.ok) {
    serving_[m.from] = Serving{below, now_ticks_};
  } else {
    serving_.erase(m.from);
  }
  UpdateServingBelow();
  reply.checksum = store::Crc32c(reply.data);
  if (options_.TEST_corrupt_every_nth_chunk != 0 && !reply.data.empty() &&
      ++chunks_served_ % options_.TEST_corrupt_every_nth_chunk == 0) {
    reply.data[reply.data.size() / 2] ^= 0x20;  // after the checksum: damaged in transit
  }
  ++counters_.transfer_chunks_sent;
  host_->SendToPeer(std::move(reply));
}

void Driver::ExpireServing() {
  // A receiver asks again at least every transfer_retry_ticks while it copies; one silent for
  // a few of those has stopped (it crashed, or got the snapshot elsewhere).
  const uint64_t silent_ticks_max = 3 * options_.transfer_retry_ticks;
  const size_t before = serving_.size();
  std::erase_if(serving_, [&](const auto& entry) {
    return now_ticks_ - entry.second.last_request_tick > silent_ticks_max;
  });
  if (serving_.size() != before) UpdateServingBelow();
}

void Driver::UpdateServingBelow() {
  Slot lowest = 0;
  for (const auto& [peer, serving] : serving_) {
    lowest = lowest == 0 ? serving.below : std::min(lowest, serving.below);
  }
  serving_below_.store(lowest);
}

// ---------------------------------------------------------------------------------------------
// Snapshot transfer: the receiving side

void Driver::StartTransfer(const paxos::SnapshotNeeded& needed) {
  // One transfer at a time; the core raises the need again while it waits.
  if (transfer_.active) return;
  transfer_ = Transfer{};
  transfer_.active = true;
  transfer_.from = needed.from;
  transfer_.needed_below = needed.below;
  LOG(INFO) << "node " << self_ << ": fetching a snapshot covering slots below " << needed.below
            << " from node " << needed.from;
  RequestChunk();
}

void Driver::RequestChunk() {
  if (transfer_bytes_this_tick_ >= options_.transfer_bytes_per_tick_max) {
    transfer_.request_due = true;  // throttled: the next tick asks
    return;
  }
  transfer_.request_due = false;
  transfer_.last_progress_tick = now_ticks_;
  Message m;
  m.type = MessageType::kSnapshotRequest;
  m.from = self_;
  m.to = transfer_.from;
  m.slot = transfer_.needed_below;
  m.round = transfer_.snapshot_below;
  m.commit = transfer_.offset;
  host_->SendToPeer(std::move(m));
}

void Driver::TickTransfer() {
  if (!transfer_.active || transfer_.committing) return;
  if (transfer_.request_due) return RequestChunk();
  if (now_ticks_ - transfer_.last_progress_tick >= options_.transfer_retry_ticks) {
    ++counters_.transfer_retries;
    if (++transfer_.silent_retries > kTransferSilentRetriesMax) {
      // The peer is gone (down for good, removed): the core raises the need again, towards
      // whoever leads by then.
      return AbandonTransfer("node " + std::to_string(transfer_.from) + " does not answer");
    }
    RequestChunk();  // resumes at the offset: a lost request, chunk or connection costs a retry
  }
}

void Driver::OnSnapshotChunk(const Message& m) {
  if (!transfer_.active || transfer_.committing || m.from != transfer_.from) return;
  ++counters_.transfer_chunks_received;
  transfer_.silent_retries = 0;
  if (m.slot == 0) {
    // The peer has no snapshot that new (any more: its disk may have been replaced, or it fell
    // back to an older one). Asking it again would never end; the core raises the need again,
    // towards whoever leads by then.
    return AbandonTransfer("node " + std::to_string(m.from) + " has no snapshot to continue from");
  }
  if (store::Crc32c(m.data) != m.checksum) {
    ++counters_.transfer_chunks_refused;
    LOG(WARNING) << "node " << self_ << ": snapshot chunk at offset " << m.commit
                 << " failed its checksum; asking again";
    return RequestChunk();
  }
  if (m.slot != transfer_.snapshot_below) {
    // A different (newer) snapshot: start it from its first byte.
    if (m.commit != 0) return RequestChunk();
    Result<std::unique_ptr<store::SnapshotSink>> sink = snapshots_->CreateRaw(m.slot);
    if (!sink.ok()) return AbandonTransfer(sink.status().ToString());
    transfer_.sink = std::move(sink).value();
    transfer_.snapshot_below = m.slot;
    transfer_.offset = 0;
  }
  if (m.commit != transfer_.offset) {
    ++counters_.transfer_chunks_refused;
    return RequestChunk();
  }
  Status s = transfer_.sink->Write(m.data);
  if (!s.ok()) return AbandonTransfer(s.ToString());
  transfer_.offset += m.data.size();
  transfer_bytes_this_tick_ += m.data.size();
  if (!m.ok) return RequestChunk();
  // Committing verifies the whole and fsyncs: slow, so off the driver thread.
  transfer_.committing = true;
  host_->InBackground([this, sink = transfer_.sink, below = transfer_.snapshot_below] {
    Status committed = sink->Commit();
    host_->ToDriver([this, below, committed] { OnTransferCommitted(below, committed); });
  });
}

void Driver::OnTransferCommitted(Slot below, Status status) {
  if (!status.ok()) return AbandonTransfer(status.ToString());
  const NodeId from = transfer_.from;
  host_->ToApplier([this, from, below] { InstallOnApplier(from, below); });
}

void Driver::InstallOnApplier(NodeId from, Slot below) {
  if (below <= applier_->applied_below()) {
    // The log got us here meanwhile: nothing to install.
    host_->ToDriver([this, below] { OnInstalled(below, false, {}); });
    return;
  }
  Result<std::unique_ptr<SnapshotReader>> reader = snapshots_->Open(below);
  Status s = reader.ok() ? applier_->RestoreFrom(reader.value().get()) : reader.status();
  if (!s.ok()) {
    // The machine may be half restored: it must not serve.
    return host_->Fatal(Status(s.code(), "installing the snapshot below slot " +
                                             std::to_string(below) + ": " + s.message()));
  }
  applied_below_.store(applier_->applied_below());
  host_->OnSnapshotRestored(from, below);
  last_snapshot_below_ = below;
  log_bytes_since_snapshot_ = 0;
  last_snapshot_bytes_ = SnapshotBytes(below);
  previous_snapshot_below_ = std::max(previous_snapshot_below_, below);
  // Everything below is now in the snapshot: the old log and snapshots are useless.
  s = RaiseStoreMark(below);
  if (!s.ok()) return host_->Fatal(s);
  ServeReads();
  host_->ToDriver(
      [this, below, config = applier_->configuration()] { OnInstalled(below, true, config); });
}

void Driver::OnInstalled(Slot below, bool installed, const paxos::Configuration& config) {
  // Verified whole when it was committed: this node may serve it on, installed or not.
  newest_snapshot_below_ = std::max(newest_snapshot_below_, below);
  if (installed) {
    replica_->InstallSnapshot(below, config);
    ++counters_.snapshots_installed;
    LOG(INFO) << "node " << self_ << ": installed the snapshot below slot " << below
              << " from node " << transfer_.from;
  }
  transfer_ = Transfer{};
}

void Driver::AbandonTransfer(const std::string& why) {
  LOG(WARNING) << "node " << self_ << ": snapshot transfer from node " << transfer_.from
               << " abandoned: " << why;
  transfer_ = Transfer{};  // the core raises the need again, and we start over
}

}  // namespace ballot
