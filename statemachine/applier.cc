#include "statemachine/applier.h"

#include <algorithm>
#include <utility>

#include <glog/logging.h>

#include "statemachine/byte_codec.h"

namespace ballot {

namespace {

constexpr uint32_t kSnapshotMagic = 0x50414C42;  // "BLAP" little-endian
constexpr uint8_t kSnapshotVersion = 1;

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
  std::vector<size_t> reply_index;       // per command: its Reply in *replies
  std::vector<uint64_t> ticket;          // per command: session table ticket, 0 if none
  // (ticket, command index), in ticket order: the session table hands tickets out increasing.
  std::vector<std::pair<uint64_t, size_t>> by_ticket;
  size_t IndexOf(uint64_t ticket) const {
    auto it = std::lower_bound(by_ticket.begin(), by_ticket.end(), std::make_pair(ticket, size_t{0}));
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

std::string Applier::Snapshot() const {
  ByteWriter writer;
  writer.PutU32(kSnapshotMagic);
  writer.PutU8(kSnapshotVersion);
  writer.PutU64(applied_below_);
  writer.PutU64(log_epoch_);
  writer.PutBytes(sessions_.Serialize());
  writer.PutBytes(machine_->Snapshot());
  return writer.Release();
}

Status Applier::Restore(std::string_view snapshot) {
  ByteReader reader(snapshot);
  uint32_t magic = 0;
  uint8_t version = 0;
  uint64_t applied_below = 0;
  uint64_t log_epoch = 0;
  std::string_view sessions_bytes;
  std::string_view machine_bytes;
  if (!reader.GetU32(&magic) || magic != kSnapshotMagic) return Corrupt("bad magic");
  if (!reader.GetU8(&version) || version != kSnapshotVersion) return Corrupt("bad version");
  if (!reader.GetU64(&applied_below) || !reader.GetU64(&log_epoch) ||
      !reader.GetBytes(&sessions_bytes) || !reader.GetBytes(&machine_bytes)) {
    return Corrupt("truncated");
  }
  if (!reader.empty()) return Corrupt("trailing bytes");
  if (applied_below == 0) return Corrupt("applied_below is 0; slots start at 1");

  SessionTable sessions(sessions_.limits());
  Status status = sessions.Deserialize(sessions_bytes);
  if (!status.ok()) return status;
  // Last, because it is the one step that changes state even when it fails.
  status = machine_->Restore(machine_bytes);
  if (!status.ok()) return status;
  sessions_ = std::move(sessions);
  applied_below_ = applied_below;
  log_epoch_ = log_epoch;
  return Status::Ok();
}

}  // namespace ballot
