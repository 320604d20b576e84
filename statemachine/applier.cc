#include "statemachine/applier.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "statemachine/byte_codec.h"

namespace ballot {

namespace {

constexpr uint32_t kSnapshotMagic = 0x50414C42;  // "BLAP" little-endian
// 2: membership added, and the machine's bytes run to the end of the stream instead of being
// one length-prefixed string. Version 1 is not read: no runtime ever stored one.
// 3: each member says whether it votes (membership changes, paxos/configuration.h). Version 2
// is still read: every member it lists is a voter.
constexpr uint8_t kSnapshotVersion = 3;
constexpr uint8_t kSnapshotVersionAllVoters = 2;
// Bounds on what a snapshot header may hold, so a damaged one is refused before it is trusted.
constexpr size_t kSnapshotMembersMax = paxos::kNodeIdMax;
constexpr size_t kSnapshotMemberAddressBytesMax = 1024;

Outcome EpochChanged(uint64_t expected_epoch, uint64_t log_epoch) {
  return Outcome{StatusCode::kAborted, "",
                 "epoch changed: expected " + std::to_string(expected_epoch) + ", log epoch " +
                     std::to_string(log_epoch)};
}

Status Corrupt(const std::string& what) {
  return Status(StatusCode::kCorruption, "applier snapshot: " + what);
}

}  // namespace

// The fresh commands of one Apply call, gathered so the machine sees them in a single batch.
struct Applier::Batch {
  std::vector<AppliedCommand> commands;
  std::vector<size_t> reply_index;  // per command: its Reply in *replies
  std::vector<uint64_t> ticket;     // per command: session table ticket, 0 if none
  // (ticket, command index), in ticket order: the session table hands tickets out increasing.
  std::vector<std::pair<uint64_t, size_t>> by_ticket;
  size_t IndexOf(uint64_t ticket) const {
    auto it =
        std::lower_bound(by_ticket.begin(), by_ticket.end(), std::make_pair(ticket, size_t{0}));
    CHECK(it != by_ticket.end() && it->first == ticket);
    return it->second;
  }
  // Duplicates of commands in this batch: (reply index, command index of the original).
  std::vector<std::pair<size_t, size_t>> duplicates;
};

Applier::Applier(std::unique_ptr<StateMachine> machine, SessionTable::Limits limits)
    : machine_(std::move(machine)), sessions_(limits) {
  CHECK(machine_ != nullptr);
}

void Applier::Apply(const std::vector<paxos::Entry>& entries, std::vector<Reply>* replies) {
  CHECK(replies != nullptr);
  CHECK(!sessions_.has_pending());
  Batch batch;
  size_t commands = 0;
  for (const paxos::Entry& entry : entries) commands += entry.value.commands.size();
  replies->reserve(replies->size() + commands);
  batch.commands.reserve(commands);
  batch.reply_index.reserve(commands);
  batch.ticket.reserve(commands);
  batch.by_ticket.reserve(commands);
  for (const paxos::Entry& entry : entries) {
    CHECK_EQ(entry.slot, applied_below_) << "entries must continue exactly at applied_below";
    // A leader_start that does not raise the epoch is the stale marker of a leadership that
    // never became usable, chosen late because recovery must keep whatever might have been
    // chosen. Every replica ignores it alike, so the log's epoch only grows.
    if (entry.value.leader_start && entry.value.epoch.raw() > log_epoch_) {
      log_epoch_ = entry.value.epoch.raw();
    }
    if (entry.value.config) configuration_ = *entry.value.config;
    for (const paxos::Command& command : entry.value.commands) {
      AdmitCommand(entry.slot, command, &batch, replies);
    }
    applied_below_++;
  }
  RunBatch(&batch, replies);
  CHECK(!sessions_.has_pending());
}

void Applier::AdmitCommand(paxos::Slot slot, const paxos::Command& command, Batch* batch,
                           std::vector<Reply>* replies) {
  Reply reply{command.client_id, command.sequence, slot, log_epoch_, Outcome{}, false};
  SessionTable::Admission admission = sessions_.Admit(command, slot);
  switch (admission.verdict) {
    case SessionTable::Verdict::kDuplicate:
      reply.duplicate = true;
      if (admission.ticket == 0) {
        reply.outcome = std::move(admission.outcome);
      } else {
        // The original is earlier in this batch and not applied yet: answer once it is.
        batch->duplicates.emplace_back(replies->size(), batch->IndexOf(admission.ticket));
      }
      break;
    case SessionTable::Verdict::kExpired:
      reply.outcome = std::move(admission.outcome);
      break;
    case SessionTable::Verdict::kFresh:
      if (command.expected_epoch != 0 && command.expected_epoch != log_epoch_) {
        // Recorded like any result: a retry must get this answer, not a later epoch's.
        reply.outcome = EpochChanged(command.expected_epoch, log_epoch_);
        if (admission.ticket != 0) sessions_.Record(admission.ticket, reply.outcome);
      } else {
        AddFresh(slot, command, admission.ticket, replies->size(), batch);
      }
      break;
  }
  replies->push_back(std::move(reply));
}

void Applier::AddFresh(paxos::Slot slot, const paxos::Command& command, uint64_t ticket,
                       size_t reply_index, Batch* batch) {
  const size_t index = batch->commands.size();
  batch->commands.push_back(
      AppliedCommand{slot, log_epoch_, command.client_id, command.stamp_ms, command.payload});
  batch->reply_index.push_back(reply_index);
  batch->ticket.push_back(ticket);
  if (ticket != 0) {
    CHECK(batch->by_ticket.empty() || batch->by_ticket.back().first < ticket);
    batch->by_ticket.emplace_back(ticket, index);
  }
}

void Applier::RunBatch(Batch* batch, std::vector<Reply>* replies) {
  if (batch->commands.empty()) {
    CHECK(batch->duplicates.empty());
    return;
  }
  std::vector<Outcome> outcomes;
  outcomes.reserve(batch->commands.size());
  machine_->Apply(batch->commands, &outcomes);
  CHECK_EQ(outcomes.size(), batch->commands.size())
      << "StateMachine::Apply must append exactly one Outcome per command";
  for (size_t i = 0; i < outcomes.size(); i++) {
    if (batch->ticket[i] != 0) sessions_.Record(batch->ticket[i], outcomes[i]);
    (*replies)[batch->reply_index[i]].outcome = std::move(outcomes[i]);
  }
  for (const auto& [reply_index, original] : batch->duplicates) {
    (*replies)[reply_index].outcome = (*replies)[batch->reply_index[original]].outcome;
  }
}

namespace {

// The fixed part of the header: magic, version, applied_below, log epoch, member count.
constexpr size_t kFixedHeaderBytes = 4 + 1 + 8 + 8 + 4;
// Node id (u64 on the wire), voter flag (version 3), address length.
size_t MemberFixedBytes(uint8_t version) {
  return version == kSnapshotVersionAllVoters ? 8 + 4 : 8 + 1 + 4;
}

std::string EncodeHeader(paxos::Slot applied_below, uint64_t log_epoch,
                         const paxos::Configuration& config, const std::string& sessions) {
  CHECK_LE(config.members().size(), kSnapshotMembersMax);
  ByteWriter writer;
  writer.PutU32(kSnapshotMagic);
  writer.PutU8(kSnapshotVersion);
  writer.PutU64(applied_below);
  writer.PutU64(log_epoch);
  writer.PutU32(static_cast<uint32_t>(config.members().size()));
  for (const paxos::Member& m : config.members()) {
    CHECK_LE(m.address.size(), kSnapshotMemberAddressBytesMax) << "member " << m.id;
    writer.PutU64(m.id);
    writer.PutU8(m.voter ? 1 : 0);
    writer.PutBytes(m.address);
  }
  writer.PutU32(static_cast<uint32_t>(config.retired().size()));
  for (paxos::NodeId id : config.retired()) writer.PutU32(id);
  writer.PutBytes(sessions);
  return writer.Release();
}

Status WriteInPieces(std::string_view bytes, SnapshotWriter* out) {
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), kSnapshotChunkBytesMax);
    Status status = out->Write(bytes.substr(0, n));
    if (!status.ok()) return status;
    bytes.remove_prefix(n);
  }
  return Status::Ok();
}

// The state captured by BeginSnapshot: copies of the Applier's own (small, bounded) state and
// the machine's point-in-time view, so nothing here refers back to the Applier.
class ApplierPendingSnapshot final : public PendingSnapshot {
 public:
  ApplierPendingSnapshot(paxos::Slot applied_below, uint64_t log_epoch, std::string header,
                         std::unique_ptr<SnapshotView> view)
      : applied_below_(applied_below),
        log_epoch_(log_epoch),
        header_(std::move(header)),
        view_(std::move(view)) {
    CHECK(view_ != nullptr) << "StateMachine::TakeSnapshotView returned null";
  }

  paxos::Slot applied_below() const override { return applied_below_; }
  uint64_t log_epoch() const override { return log_epoch_; }

  Status WriteTo(SnapshotWriter* out) override {
    CHECK(!written_) << "PendingSnapshot::WriteTo is called once";
    written_ = true;
    Status status = WriteInPieces(header_, out);
    if (!status.ok()) return status;
    std::string().swap(header_);  // the session table copy is no longer needed
    return view_->WriteTo(out);
  }

 private:
  const paxos::Slot applied_below_;
  const uint64_t log_epoch_;
  std::string header_;
  std::unique_ptr<SnapshotView> view_;
  bool written_ = false;
};

// What Applier::RestoreFrom reads before handing the rest of the stream to the machine.
struct DecodedHeader {
  paxos::Slot applied_below = 0;
  uint64_t log_epoch = 0;
  paxos::Configuration config;
  std::string sessions;
};

Status ReadMembers(SnapshotReader* in, uint8_t version, uint32_t count,
                   paxos::Configuration* config) {
  if (count > kSnapshotMembersMax) return Corrupt("too many members: " + std::to_string(count));
  std::string bytes;
  std::vector<paxos::Member> members;
  for (uint32_t i = 0; i < count; i++) {
    Status status = in->ReadExact(MemberFixedBytes(version), &bytes);
    if (!status.ok()) return status;
    ByteReader reader(bytes);
    uint64_t id = 0;
    uint8_t voter = 1;
    uint32_t address_bytes = 0;
    CHECK(reader.GetU64(&id));
    if (version != kSnapshotVersionAllVoters) CHECK(reader.GetU8(&voter));
    CHECK(reader.GetU32(&address_bytes));
    if (id == paxos::kNoNode || id > paxos::kNodeIdMax) return Corrupt("bad member id");
    if (voter > 1) return Corrupt("bad voter flag " + std::to_string(voter));
    if (address_bytes > kSnapshotMemberAddressBytesMax) return Corrupt("member address too long");
    status = in->ReadExact(address_bytes, &bytes);
    if (!status.ok()) return status;
    for (const paxos::Member& m : members) {
      if (m.id == id) return Corrupt("member listed twice");
    }
    if (version != kSnapshotVersionAllVoters && !members.empty() && members.back().id > id) {
      return Corrupt("members out of id order");  // one encoding per configuration
    }
    members.push_back(paxos::Member{static_cast<paxos::NodeId>(id), bytes, voter == 1});
  }
  *config = paxos::Configuration(std::move(members));
  if (!config->empty() && config->voter_count() == 0) return Corrupt("no member votes");
  if (version == kSnapshotVersionAllVoters) return Status::Ok();
  // Version 3: the retired ids follow, increasing.
  Status status = in->ReadExact(4, &bytes);
  if (!status.ok()) return status;
  uint32_t retired_count = 0;
  CHECK(ByteReader(bytes).GetU32(&retired_count));
  if (retired_count > kSnapshotMembersMax) return Corrupt("too many retired ids");
  std::vector<paxos::NodeId> retired;
  for (uint32_t i = 0; i < retired_count; i++) {
    status = in->ReadExact(4, &bytes);
    if (!status.ok()) return status;
    uint32_t id = 0;
    CHECK(ByteReader(bytes).GetU32(&id));
    if (id == paxos::kNoNode || id > paxos::kNodeIdMax) return Corrupt("bad retired id");
    if (!retired.empty() && retired.back() >= id) return Corrupt("retired ids out of order");
    if (config->IsMember(id)) return Corrupt("a retired id is a member");
    retired.push_back(id);
  }
  config->set_retired(std::move(retired));
  return Status::Ok();
}

Status ReadHeader(SnapshotReader* in, DecodedHeader* header) {
  std::string bytes;
  Status status = in->ReadExact(kFixedHeaderBytes, &bytes);
  if (!status.ok()) return status;
  ByteReader reader(bytes);
  uint32_t magic = 0;
  uint8_t version = 0;
  uint32_t member_count = 0;
  CHECK(reader.GetU32(&magic) && reader.GetU8(&version) && reader.GetU64(&header->applied_below) &&
        reader.GetU64(&header->log_epoch) && reader.GetU32(&member_count));
  if (magic != kSnapshotMagic) return Corrupt("bad magic");
  if (version != kSnapshotVersion && version != kSnapshotVersionAllVoters) {
    return Corrupt("bad version " + std::to_string(version));
  }
  if (header->applied_below == 0) return Corrupt("applied_below is 0; slots start at 1");
  status = ReadMembers(in, version, member_count, &header->config);
  if (!status.ok()) return status;
  status = in->ReadExact(4, &bytes);
  if (!status.ok()) return status;
  uint32_t sessions_bytes = 0;
  ByteReader length(bytes);
  CHECK(length.GetU32(&sessions_bytes));
  return in->ReadExact(sessions_bytes, &header->sessions);
}

}  // namespace

std::unique_ptr<PendingSnapshot> Applier::BeginSnapshot() {
  CHECK(!sessions_.has_pending());
  std::string header =
      EncodeHeader(applied_below_, log_epoch_, configuration_, sessions_.Serialize());
  return std::make_unique<ApplierPendingSnapshot>(applied_below_, log_epoch_, std::move(header),
                                                  machine_->TakeSnapshotView());
}

Status Applier::RestoreFrom(SnapshotReader* in) {
  CHECK(in != nullptr);
  DecodedHeader header;
  Status status = ReadHeader(in, &header);
  if (!status.ok()) return status;
  SessionTable sessions(sessions_.limits());
  status = sessions.Deserialize(header.sessions);
  if (!status.ok()) return status;
  // Sessions and tombstones are touched by the commands of their clients, so all at slots
  // below applied_below; a session above it would make the next Apply CHECK-fail (slots going
  // backwards for that client).
  if (sessions.last_active_slot_max() >= header.applied_below) {
    return Corrupt("a session or tombstone was touched at slot " +
                   std::to_string(sessions.last_active_slot_max()) +
                   ", at or above applied_below " + std::to_string(header.applied_below));
  }
  // Last, because it is the one step that changes state even when it fails.
  status = machine_->RestoreFrom(in);
  if (!status.ok()) return status;
  status = in->ExpectEnd();
  if (!status.ok()) return status;
  sessions_ = std::move(sessions);
  applied_below_ = header.applied_below;
  log_epoch_ = header.log_epoch;
  configuration_ = std::move(header.config);
  return Status::Ok();
}

std::string Applier::Snapshot() {
  StringSnapshotWriter writer;
  Status status = BeginSnapshot()->WriteTo(&writer);
  CHECK(status.ok()) << "a string writer cannot fail: " << status.ToString();
  return std::move(writer.data());
}

Status Applier::Restore(std::string_view snapshot) {
  StringSnapshotReader reader(snapshot);
  return RestoreFrom(&reader);
}

}  // namespace ballot
