#include "tests/sim/sim_node.h"

#include <algorithm>
#include <sstream>
#include <utility>

#include "statemachine/samples/sequence.h"

namespace ballot::sim {

namespace {

using samples::SequenceGenerator;

// Rounds of ToDriver work per input. The driver settles in a few; more means a livelock.
constexpr int kSettleRoundsMax = 10000;
// Virtual time a background job (writing or installing a snapshot) takes.
constexpr Time kBackgroundMinMs = 1;
constexpr Time kBackgroundMaxMs = 300;

}  // namespace

DiskConfig DiskConfig::Draw(Rng* rng) {
  static constexpr Time kLatencyMaxMs[] = {1, 4, 8, 20};
  DiskConfig d;
  d.latency_max_ms = rng->Pick(kLatencyMaxMs);
  d.stall = 0.01;
  return d;
}

SnapshotConfig SnapshotConfig::Off() {
  SnapshotConfig c;
  c.driver.snapshot_every_slots = 0;
  c.driver.snapshot_every_log_bytes = 0;
  return c;
}

SnapshotConfig SnapshotConfig::Draw(Rng* rng) {
  static constexpr uint64_t kEverySlots[] = {0, 5, 20, 60};
  static constexpr uint64_t kEveryBytes[] = {0, 300, 2000};
  static constexpr uint64_t kRetainSlots[] = {0, 3, 30};
  static constexpr size_t kChunkBytes[] = {16, 100, 1000, 1 << 20};
  static constexpr uint64_t kCorruptEvery[] = {0, 0, 0, 5};
  SnapshotConfig c;
  c.on = true;
  c.driver.snapshot_every_slots = rng->Pick(kEverySlots);
  c.driver.snapshot_every_log_bytes = rng->Pick(kEveryBytes);
  c.driver.log_retain_slots = rng->Pick(kRetainSlots);
  c.driver.transfer_chunk_bytes = rng->Pick(kChunkBytes);
  // From one chunk per tick (a tight throttle) to everything at once.
  c.driver.transfer_bytes_per_tick_max =
      c.driver.transfer_chunk_bytes * (rng->Chance(0.5) ? 1 : 1000);
  c.driver.transfer_retry_ticks = rng->Uniform(5, 40);
  c.driver.TEST_corrupt_every_nth_chunk = rng->Pick(kCorruptEvery);
  return c;
}

std::string SnapshotConfig::ToString() const {
  if (!on) return "snapshots off";
  std::ostringstream os;
  os << "snapshots every " << driver.snapshot_every_slots << " slots / "
     << driver.snapshot_every_log_bytes << " bytes, retain " << driver.log_retain_slots
     << ", chunks of " << driver.transfer_chunk_bytes << " bytes, "
     << driver.transfer_bytes_per_tick_max << " bytes/tick, retry " << driver.transfer_retry_ticks
     << " ticks, corrupt every " << driver.TEST_corrupt_every_nth_chunk;
  return os.str();
}

SimNode::SimNode(paxos::NodeId id, paxos::Options base, uint64_t run_seed, NodeHost* host)
    : id_(id), base_(std::move(base)), run_seed_(run_seed), host_(host) {}

SimNode::~SimNode() = default;

paxos::Options SimNode::OptionsFor(uint64_t incarnation) const {
  paxos::Options o = base_;
  o.id = id_;
  o.seed = Mix64(run_seed_ ^ Mix64(id_ * 0x100000001B3ull + incarnation));
  if (joiner_) {
    o.join = true;
    o.members.clear();
  }
  return o;
}

void SimNode::Start() {
  CHECK(!up());
  ++incarnation_;
  auto applier = std::make_unique<Applier>(std::make_unique<SequenceGenerator>());
  if (!joiner_) {
    std::vector<paxos::Member> members;
    for (paxos::NodeId n : base_.members) members.push_back({n, SimAddress(n), true});
    applier->set_configuration(paxos::Configuration(std::move(members)));
  }
  host_->checker().OnNodeStart(id_);  // replaced by OnSnapshotRestored if one is restored
  Result<Driver::Recovered> recovered =
      Driver::Recover(store_.get(), snapshots_.get(), applier.get(), id_, this);
  CHECK(recovered.ok()) << "node " << id_ << ": " << recovered.status().ToString();
  auto replica = std::make_unique<paxos::Replica>(OptionsFor(incarnation_),
                                                  std::move(recovered.value().durable));
  driver_ = std::make_unique<Driver>(snapshots_config_.driver, this, std::move(replica),
                                     std::move(applier), store_.get(), snapshots_.get(),
                                     recovered.value().store_mark);
  host_->trace().Fold({0x5741, id_, incarnation_});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " starts, incarnation " +
                                       std::to_string(incarnation_) + ", applied below " +
                                       std::to_string(driver_->applied_below()));
  Settle();
}

void SimNode::set_journal(bool on) {
  CHECK(!up());
  journal_ = on;
  store_ = NewDisk();
}

std::unique_ptr<store::CachedStore> SimNode::NewDisk() const {
  if (journal_) return std::make_unique<store::MemJournalStore>();
  return std::make_unique<store::MemStore>();
}

void SimNode::Crash(const store::CrashFate& fate) {
  CHECK(up());
  host_->trace().Fold({0xC4A5, id_, incarnation_});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " CRASHES" +
                                       (outstanding_ ? " (losing an unsynced write)" : "") +
                                       (background_.empty() ? "" : " (losing background work)"));
  store_->Crash(fate);
  // The planted bug "forget promise" models a node that never persisted its promise; the disk
  // must not remember it either.
  if (base_.planted.forget_promise_on_restart) store_->TEST_ForgetPromise();
  driver_.reset();
  outstanding_.reset();
  to_driver_.clear();
  background_.clear();
  askers_.clear();
}

void SimNode::WipeDisk() {
  CHECK(!up());
  host_->trace().Fold({0x3A9E, id_, incarnation_});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " DISK WIPED");
  store_ = NewDisk();
  snapshots_ = std::make_unique<store::MemSnapshotStore>();
  // snapshot_fresh_ stays: a peer may still install a snapshot it copied from the old disk.
}

void SimNode::Tick() {
  if (!up()) return;
  driver_->Tick();
  Settle();
}

void SimNode::OnPeerMessage(const paxos::Message& m) {
  if (!up()) return;
  driver_->Step(m);
  Settle();
}

void SimNode::OnClientRequest(Endpoint from, const ClientRequest& r) {
  if (!up()) return;
  const ClientTag tag = Remember(from, r);
  if (r.kind == ClientRequest::Kind::kNext) {
    paxos::Command c;
    c.client_id = r.client_id;
    c.sequence = r.sequence;
    c.acked_sequence = r.acked_sequence;
    c.stamp_ms = host_->now();
    c.payload = SequenceGenerator::EncodeNext(r.count);
    host_->trace().Fold({0x9709, id_, r.client_id, r.sequence});
    driver_->Propose(std::move(c), tag);
  } else {
    host_->trace().Fold({0x4EAD0, id_, r.client_id, r.op_id});
    driver_->Read(SequenceGenerator::EncodePeek(), tag);
  }
  Settle();
}

void SimNode::OnSyncDone(uint64_t incarnation) {
  if (!up() || incarnation != incarnation_) return;  // crashed meanwhile: the write is lost
  CHECK(outstanding_.has_value());
  paxos::PersistBatch done = std::move(*outstanding_);
  outstanding_.reset();
  store_->Sync();
  host_->checker().OnDurable(id_, done);
  host_->trace().Fold({0x5C, id_, done.entries.size()});
  if (host_->trace().verbose()) {
    std::ostringstream os;
    os << "node " << id_ << " synced " << done.entries.size() << " entries"
       << (done.promised ? " promise=" + paxos::ToString(*done.promised) : "")
       << (done.chosen_below ? " chosen_below=" + std::to_string(*done.chosen_below) : "");
    host_->trace().Log(host_->now(), os.str());
  }
  driver_->OnPersisted();
  Settle();
}

void SimNode::OnBackgroundDone(uint64_t incarnation) {
  if (!up() || incarnation != incarnation_ || background_.empty()) return;
  std::function<void()> job = std::move(background_.front());
  background_.pop_front();
  job();
  Settle();
}

void SimNode::RequestSnapshot() {
  if (!up()) return;
  driver_->RequestSnapshot([](Result<paxos::Slot>) {});
  Settle();
}

const Checker::FreshMap* SimNode::snapshot_fresh(paxos::Slot below) const {
  auto it = snapshot_fresh_.find(below);
  return it == snapshot_fresh_.end() ? nullptr : &it->second;
}

void SimNode::Settle() {
  if (!up()) return;
  driver_->Drain();
  for (int round = 0; round < kSettleRoundsMax; ++round) {
    if (!up() || to_driver_.empty()) return;
    std::function<void()> work = std::move(to_driver_.front());
    to_driver_.pop_front();
    driver_->RunOnDriver(work);
  }
  host_->checker().Fail("node " + std::to_string(id_) + ": the driver did not settle after " +
                        std::to_string(kSettleRoundsMax) + " rounds");
}

ClientTag SimNode::Remember(Endpoint from, const ClientRequest& r) {
  const uint64_t tag = next_tag_++;
  askers_[tag] =
      Asker{from, r.client_id, r.op_id, r.sequence, r.kind == ClientRequest::Kind::kRead};
  return ClientTag{from, tag};
}

Time SimNode::DrawSyncLatency() {
  Rng& rng = host_->rng();
  if (host_->now() < disk_hung_until_ms_) {
    return disk_hung_until_ms_ - host_->now() + rng.Uniform(0, disk_.latency_max_ms);
  }
  if (rng.Chance(disk_.stall)) {
    const Time stall = rng.Uniform(disk_.stall_min_ms, disk_.stall_max_ms);
    host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " fsync stalls for " +
                                         std::to_string(stall) + "ms");
    return stall;
  }
  return rng.Uniform(0, disk_.latency_max_ms);
}

void SimNode::SendClient(Endpoint to, ClientReply reply) {
  host_->Send(Envelope{id_, to, std::move(reply)});
}

// ---------------------------------------------------------------------------------------------
// DriverHost

void SimNode::SendToPeer(paxos::Message message) {
  const Endpoint to = message.to;
  host_->Send(Envelope{id_, to, std::move(message)});
}

void SimNode::Persist(paxos::PersistBatch batch) {
  if (outstanding_) {
    host_->checker().Fail("node " + std::to_string(id_) +
                          ": a second persist batch was handed out before Advance()");
    return;
  }
  store_->Stage(batch);
  outstanding_ = std::move(batch);
  host_->ScheduleSync(id_, incarnation_, DrawSyncLatency());
}

void SimNode::InBackground(std::function<void()> work) {
  background_.push_back(std::move(work));
  host_->ScheduleBackground(id_, incarnation_,
                            host_->rng().Uniform(kBackgroundMinMs, kBackgroundMaxMs));
}

void SimNode::CommandDone(ClientTag tag, Reply& reply) {
  auto it = askers_.find(tag.request);
  if (it == askers_.end()) return;
  ClientReply out;
  out.kind = ClientReply::Kind::kResult;
  out.client_id = reply.client_id;
  out.sequence = reply.sequence;
  out.outcome = reply.outcome;
  out.slot = reply.slot;
  out.duplicate = reply.duplicate;
  SendClient(it->second.client, std::move(out));
  askers_.erase(it);
}

void SimNode::ReadDone(ClientTag tag, Outcome outcome) {
  auto it = askers_.find(tag.request);
  if (it == askers_.end()) return;
  ClientReply out;
  out.kind = ClientReply::Kind::kResult;
  out.client_id = it->second.client_id;
  out.op_id = it->second.op_id;
  out.is_read = true;
  out.outcome = std::move(outcome);
  host_->trace().Fold({0x4EAD5, id_, it->second.op_id, driver_->applied_below()});
  SendClient(it->second.client, std::move(out));
  askers_.erase(it);
}

void SimNode::Refuse(ClientTag tag, StatusCode code, std::string message,
                     paxos::NodeId leader_hint) {
  (void)message;
  auto it = askers_.find(tag.request);
  if (it == askers_.end()) return;
  ClientReply out;
  out.kind =
      code == StatusCode::kNotLeader ? ClientReply::Kind::kNotLeader : ClientReply::Kind::kRetry;
  out.client_id = it->second.client_id;
  out.op_id = it->second.op_id;
  out.sequence = it->second.sequence;
  out.is_read = it->second.is_read;
  out.hint = leader_hint;
  SendClient(it->second.client, std::move(out));
  askers_.erase(it);
}

void SimNode::Fatal(Status why) {
  host_->checker().Fail("node " + std::to_string(id_) + " stopped: " + why.ToString());
}

void SimNode::OnLeadershipEvent(const paxos::LeadershipEvent& e) {
  const bool became = e.kind == paxos::LeadershipEvent::Kind::kBecameLeader;
  host_->trace().Fold({0xE7, id_, became, e.epoch.raw(), e.start_slot});
  host_->trace().Log(
      host_->now(),
      "node " + std::to_string(id_) + (became ? " BECOMES LEADER of " : " loses leadership of ") +
          paxos::ToString(e.epoch) + (became ? " start_slot=" + std::to_string(e.start_slot) : ""));
  host_->checker().OnLeadershipEvent(id_, e);
}

void SimNode::OnAnnounced(bool leading, uint64_t epoch) {
  host_->trace().Fold({0xA770, id_, leading, epoch});
  host_->trace().Log(host_->now(),
                     "node " + std::to_string(id_) +
                         (leading ? " announces leadership of " : " announces end of ") +
                         paxos::ToString(paxos::Ballot::FromRaw(epoch)));
  if (leading) host_->checker().OnAnnounced(id_, epoch, driver_->applier().applied_below());
}

bool SimNode::BeforeApply(const std::vector<paxos::Entry>& entries) {
  if (host_->checker().failed()) return false;  // the Applier would CHECK on what it saw
  // (c): the applied sequence must continue exactly where it stopped; checked before the
  // Applier (which CHECKs the same) so that a core bug is reported with its seed.
  paxos::Slot expected = driver_->applier().applied_below();
  for (const paxos::Entry& e : entries) {
    if (e.slot != expected) {
      std::ostringstream os;
      os << "node " << id_ << " applied slot " << e.slot << " but its next slot to apply is "
         << expected;
      host_->checker().Fail(os.str());
      return false;
    }
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
  return !host_->checker().failed();
}

void SimNode::OnApplied(const Reply& reply) {
  // Outside the sim's control only "session expired" (kAborted) answers; next(n) with n in 1..5
  // never fails. So a non-duplicate, non-aborted reply is a command that reached the machine.
  if (!reply.duplicate && reply.outcome.code != StatusCode::kAborted) {
    host_->checker().OnFreshReply(id_, reply);
  }
}

void SimNode::OnSnapshotTaken(paxos::Slot applied_below) {
  snapshot_fresh_[applied_below] = host_->checker().fresh(id_);
  host_->trace().Fold({0x5A9, id_, applied_below});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " snapshots below slot " +
                                       std::to_string(applied_below));
}

void SimNode::OnSnapshotRestored(paxos::NodeId source, paxos::Slot applied_below) {
  const Checker::FreshMap* fresh = host_->SnapshotFresh(source, applied_below);
  // A snapshot received from a peer but not installed (the log got this node there first)
  // stays in the store, and a restart restores it as its own: look it up at every node. Any
  // node's snapshot below the same slot holds the same commands (that is what the checker's
  // agreement checks guarantee), so any record of it will do.
  for (paxos::NodeId n = 1; fresh == nullptr && n <= kNodesMax; ++n) {
    fresh = host_->SnapshotFresh(n, applied_below);
  }
  if (fresh == nullptr) {
    host_->checker().Fail("node " + std::to_string(id_) + " restored a snapshot below " +
                          std::to_string(applied_below) + " from node " + std::to_string(source) +
                          " that the simulator never saw taken");
    return;
  }
  Checker::FreshMap copy = *fresh;
  snapshot_fresh_[applied_below] = copy;
  host_->checker().OnNodeStart(id_, std::move(copy));
  host_->trace().Fold({0x5A1, id_, source, applied_below});
  host_->trace().Log(host_->now(), "node " + std::to_string(id_) + " restores the snapshot below " +
                                       std::to_string(applied_below) + " taken by node " +
                                       std::to_string(source));
}

}  // namespace ballot::sim
