#include "statemachine/session_table.h"

#include <glog/logging.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "statemachine/byte_codec.h"

namespace ballot {

namespace {

// 1: sessions only. 2: sessions, then tombstones; written only when there is a tombstone, so a
// table without any keeps the encoding earlier releases read and write.
constexpr uint8_t kFormatVersionSessions = 1;
constexpr uint8_t kFormatVersionTombstones = 2;
constexpr std::string_view kExpiredPrefix = "session expired: ";

Outcome ExpiredOutcome(std::string message) {
  return Outcome{StatusCode::kAborted, "", std::string(kExpiredPrefix) + std::move(message)};
}

void EncodeOutcome(const Outcome& outcome, ByteWriter* writer) {
  writer->PutU8(static_cast<uint8_t>(outcome.code));
  writer->PutBytes(outcome.data);
  writer->PutBytes(outcome.message);
}

bool DecodeOutcome(ByteReader* reader, Outcome* outcome) {
  uint8_t code = 0;
  std::string_view data;
  std::string_view message;
  if (!reader->GetU8(&code) || !reader->GetBytes(&data) || !reader->GetBytes(&message)) {
    return false;
  }
  if (code > static_cast<uint8_t>(StatusCode::kAborted)) return false;
  *outcome = Outcome{static_cast<StatusCode>(code), std::string(data), std::string(message)};
  return true;
}

Status Corrupt(const std::string& what) {
  return Status(StatusCode::kCorruption, "session table: " + what);
}

}  // namespace

bool IsSessionExpired(const Outcome& outcome) {
  return outcome.code == StatusCode::kAborted && outcome.message.starts_with(kExpiredPrefix);
}

SessionTable::SessionTable(Limits limits) : limits_(limits) {
  CHECK_GE(limits_.sessions_max, 1u) << "sessions_max must be at least 1";
  CHECK_GE(limits_.results_per_session_max, 1u) << "results_per_session_max must be at least 1";
  CHECK_GE(limits_.tombstones_max, 1u) << "tombstones_max must be at least 1";
}

SessionTable::Admission SessionTable::Admit(const paxos::Command& command, paxos::Slot slot) {
  if (command.sequence == 0) return Admission{};  // no session: fresh, nothing to record

  auto it = sessions_.find(command.client_id);
  if (it == sessions_.end()) {
    if (tombstones_.contains(command.client_id)) {
      Bury(command.client_id, slot);  // a client still retrying keeps its tombstone
      return Admission{Verdict::kExpired,
                       ExpiredOutcome("the session of client " + std::to_string(command.client_id) +
                                      " was evicted (more than sessions_max clients); whether "
                                      "its commands were applied is unknown; use a new client id"),
                       0};
    }
    if (command.acked_sequence > 0) {
      return Admission{Verdict::kExpired,
                       ExpiredOutcome("client " + std::to_string(command.client_id) +
                                      " has no session but acknowledges sequence " +
                                      std::to_string(command.acked_sequence)),
                       0};
    }
    it = sessions_.emplace(command.client_id, Session{}).first;
    it->second.last_active_slot = slot;
    by_activity_.emplace(slot, command.client_id);
    EvictSessionsOverLimit(command.client_id, slot);
  } else {
    Touch(command.client_id, &it->second, slot);
  }
  Session& session = it->second;
  Forget(&session, command.acked_sequence);

  auto found = session.results.find(command.sequence);
  if (found != session.results.end()) {
    return Admission{Verdict::kDuplicate, found->second.outcome, found->second.ticket};
  }
  if (command.sequence <= session.floor_sequence) {
    return Admission{
        Verdict::kExpired,
        ExpiredOutcome("client " + std::to_string(command.client_id) + " sequence " +
                       std::to_string(command.sequence) + " is at or below forgotten sequence " +
                       std::to_string(session.floor_sequence)),
        0};
  }
  const uint64_t ticket = next_ticket_++;
  Reserve(command.client_id, &session, command.sequence, ticket);
  return Admission{Verdict::kFresh, Outcome{}, ticket};
}

void SessionTable::Record(uint64_t ticket, Outcome outcome) {
  CHECK_NE(ticket, 0u);
  CHECK_LT(ticket, next_ticket_) << "ticket was never handed out";
  auto it = pending_.find(ticket);
  if (it == pending_.end()) return;  // acknowledged or evicted since Admit: nothing to keep
  const auto [client_id, sequence] = it->second;
  auto session = sessions_.find(client_id);
  CHECK(session != sessions_.end());
  auto result = session->second.results.find(sequence);
  CHECK(result != session->second.results.end());
  CHECK_EQ(result->second.ticket, ticket);
  result->second.outcome = std::move(outcome);
  result->second.ticket = 0;
  pending_spares_.Keep(pending_.extract(it));
}

size_t SessionTable::result_count(uint64_t client_id) const {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? 0 : it->second.results.size();
}

uint64_t SessionTable::floor_sequence(uint64_t client_id) const {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? 0 : it->second.floor_sequence;
}

void SessionTable::Touch(uint64_t client_id, Session* session, paxos::Slot slot) {
  CHECK_GE(slot, session->last_active_slot) << "slots went backwards for client " << client_id;
  if (slot == session->last_active_slot) return;  // commands of one batch share their slot
  // Re-keyed in place: the set's node is reused, not freed and allocated again.
  auto node = by_activity_.extract({session->last_active_slot, client_id});
  CHECK(!node.empty());
  node.value() = {slot, client_id};
  by_activity_.insert(std::move(node));
  session->last_active_slot = slot;
}

void SessionTable::Forget(Session* session, uint64_t acked_sequence) {
  if (acked_sequence <= session->floor_sequence) return;
  auto end = session->results.upper_bound(acked_sequence);
  for (auto it = session->results.begin(); it != end;) {
    if (it->second.ticket != 0) ErasePending(it->second.ticket);
    result_spares_.Keep(session->results.extract(it++));
  }
  session->floor_sequence = acked_sequence;
}

void SessionTable::ErasePending(uint64_t ticket) {
  auto it = pending_.find(ticket);
  if (it != pending_.end()) pending_spares_.Keep(pending_.extract(it));
}

void SessionTable::Reserve(uint64_t client_id, Session* session, uint64_t sequence,
                           uint64_t ticket) {
  CHECK_GT(sequence, session->floor_sequence);
  CHECK(!session->results.contains(sequence));
  result_spares_.Insert(&session->results, sequence, StoredResult{Outcome{}, ticket});
  pending_spares_.Insert(&pending_, ticket, Key{client_id, sequence});
  // The lowest sequences go first: a client retries its oldest requests least often, and the
  // floor keeps answering them "expired" rather than applying them again.
  while (session->results.size() > limits_.results_per_session_max) {
    auto lowest = session->results.begin();
    if (lowest->second.ticket != 0) ErasePending(lowest->second.ticket);
    session->floor_sequence = std::max(session->floor_sequence, lowest->first);
    result_spares_.Keep(session->results.extract(lowest));
  }
  CHECK_LE(session->results.size(), limits_.results_per_session_max);
}

void SessionTable::EvictSessionsOverLimit(uint64_t keep_client_id, paxos::Slot slot) {
  while (sessions_.size() > limits_.sessions_max) {
    // Oldest activity first, ties by lower client id; never the session being admitted.
    auto victim = by_activity_.begin();
    if (victim->second == keep_client_id) victim = std::next(victim);
    CHECK(victim != by_activity_.end());
    const uint64_t client_id = victim->second;
    auto session = sessions_.find(client_id);
    CHECK(session != sessions_.end());
    DropPending(session->second);
    const paxos::Slot last_active = session->second.last_active_slot;
    sessions_.erase(session);
    by_activity_.erase(victim);
    Bury(client_id, std::max(slot, last_active));
  }
  CHECK_EQ(by_activity_.size(), sessions_.size());
}

void SessionTable::Bury(uint64_t client_id, paxos::Slot slot) {
  auto [it, inserted] = tombstones_.emplace(client_id, slot);
  if (!inserted) {
    if (slot <= it->second) return;
    tombstones_by_slot_.erase({it->second, client_id});
    it->second = slot;
  }
  tombstones_by_slot_.emplace(slot, client_id);
  while (tombstones_.size() > limits_.tombstones_max) {
    auto oldest = tombstones_by_slot_.begin();
    tombstones_.erase(oldest->second);
    tombstones_by_slot_.erase(oldest);
  }
  CHECK_EQ(tombstones_by_slot_.size(), tombstones_.size());
}

void SessionTable::DropPending(const Session& session) {
  for (const auto& [sequence, result] : session.results) {
    if (result.ticket != 0) pending_.erase(result.ticket);
  }
}

std::string SessionTable::Serialize() const {
  CHECK(pending_.empty()) << "Serialize with unrecorded results";
  ByteWriter writer;
  writer.PutU8(tombstones_.empty() ? kFormatVersionSessions : kFormatVersionTombstones);
  writer.PutU64(sessions_.size());
  for (const auto& [client_id, session] : sessions_) {
    writer.PutU64(client_id);
    writer.PutU64(session.floor_sequence);
    writer.PutU64(session.last_active_slot);
    writer.PutU64(session.results.size());
    for (const auto& [sequence, result] : session.results) {
      writer.PutU64(sequence);
      EncodeOutcome(result.outcome, &writer);
    }
  }
  if (!tombstones_.empty()) {
    writer.PutU64(tombstones_.size());
    for (const auto& [client_id, slot] : tombstones_) {
      writer.PutU64(client_id);
      writer.PutU64(slot);
    }
  }
  return writer.Release();
}

Status SessionTable::Deserialize(std::string_view data) {
  CHECK(pending_.empty()) << "Deserialize with unrecorded results";
  ByteReader reader(data);
  uint8_t version = 0;
  uint64_t session_count = 0;
  if (!reader.GetU8(&version) ||
      (version != kFormatVersionSessions && version != kFormatVersionTombstones)) {
    return Corrupt("bad version");
  }
  if (!reader.GetU64(&session_count)) return Corrupt("truncated header");
  if (session_count > limits_.sessions_max) return Corrupt("more sessions than sessions_max");

  SessionTable table(limits_);
  table.next_ticket_ = next_ticket_;
  for (uint64_t i = 0; i < session_count; i++) {
    uint64_t client_id = 0;
    Session session;
    Status status = DecodeSession(&reader, &client_id, &session);
    if (!status.ok()) return status;
    if (!table.sessions_.empty() && client_id <= table.sessions_.rbegin()->first) {
      return Corrupt("client ids not strictly increasing");
    }
    table.by_activity_.emplace(session.last_active_slot, client_id);
    table.sessions_.emplace_hint(table.sessions_.end(), client_id, std::move(session));
  }
  if (version == kFormatVersionTombstones) {
    Status status = table.DecodeTombstones(&reader);
    if (!status.ok()) return status;
  }
  if (!reader.empty()) return Corrupt("trailing bytes");
  table.CheckInvariants();
  *this = std::move(table);
  return Status::Ok();
}

Status SessionTable::DecodeSession(ByteReader* reader, uint64_t* client_id,
                                   Session* session) const {
  uint64_t result_count = 0;
  if (!reader->GetU64(client_id) || !reader->GetU64(&session->floor_sequence) ||
      !reader->GetU64(&session->last_active_slot) || !reader->GetU64(&result_count)) {
    return Corrupt("truncated session");
  }
  if (result_count > limits_.results_per_session_max) {
    return Corrupt("more results than results_per_session_max");
  }
  uint64_t previous = session->floor_sequence;
  for (uint64_t i = 0; i < result_count; i++) {
    uint64_t sequence = 0;
    StoredResult result;
    if (!reader->GetU64(&sequence) || !DecodeOutcome(reader, &result.outcome)) {
      return Corrupt("truncated or invalid result");
    }
    if (sequence <= previous) return Corrupt("result sequences not above floor and increasing");
    previous = sequence;
    session->results.emplace_hint(session->results.end(), sequence, std::move(result));
  }
  return Status::Ok();
}

// Into a table holding the decoded sessions and nothing else.
Status SessionTable::DecodeTombstones(ByteReader* reader) {
  uint64_t count = 0;
  if (!reader->GetU64(&count)) return Corrupt("truncated tombstone count");
  if (count == 0) return Corrupt("version 2 without tombstones (written as version 1)");
  if (count > limits_.tombstones_max) return Corrupt("more tombstones than tombstones_max");
  for (uint64_t i = 0; i < count; i++) {
    uint64_t client_id = 0;
    paxos::Slot slot = 0;
    if (!reader->GetU64(&client_id) || !reader->GetU64(&slot)) {
      return Corrupt("truncated tombstone");
    }
    if (!tombstones_.empty() && client_id <= tombstones_.rbegin()->first) {
      return Corrupt("tombstone client ids not strictly increasing");
    }
    if (sessions_.contains(client_id)) return Corrupt("a client with a session and a tombstone");
    tombstones_.emplace_hint(tombstones_.end(), client_id, slot);
    tombstones_by_slot_.emplace(slot, client_id);
  }
  return Status::Ok();
}

void SessionTable::CheckInvariants() const {
  CHECK_LE(sessions_.size(), limits_.sessions_max);
  CHECK_EQ(by_activity_.size(), sessions_.size());
  for (const auto& [client_id, session] : sessions_) {
    CHECK(by_activity_.contains({session.last_active_slot, client_id}));
    CHECK_LE(session.results.size(), limits_.results_per_session_max);
    if (!session.results.empty()) CHECK_GT(session.results.begin()->first, session.floor_sequence);
  }
  CHECK_LE(tombstones_.size(), limits_.tombstones_max);
  CHECK_EQ(tombstones_by_slot_.size(), tombstones_.size());
  for (const auto& [client_id, slot] : tombstones_) {
    CHECK(tombstones_by_slot_.contains({slot, client_id}));
    CHECK(!sessions_.contains(client_id));
  }
}

}  // namespace ballot
