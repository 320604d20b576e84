#include "statemachine/samples/lock.h"

#include <glog/logging.h>

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "statemachine/byte_codec.h"

namespace ballot::samples {

namespace {

// Every payload starts with an operation byte, then the operation's fields (byte strings are
// length-prefixed, integers fixed-width little-endian: statemachine/byte_codec.h).
constexpr uint8_t kOpAcquire = 1;
constexpr uint8_t kOpKeepAlive = 2;
constexpr uint8_t kOpRelease = 3;
constexpr uint8_t kOpGet = 4;
constexpr uint8_t kOpTick = 5;
// Version 2 adds the change slots watches need; version 1 snapshots still restore (with no
// change slots: watches of their locks wait for the next change). A state with no change slots
// is written as version 1, so that every snapshot has one canonical form (Restore(s) then
// Snapshot() gives s back: tests/fuzz/restore_check.h).
constexpr uint8_t kSnapshotVersion1 = 1;
constexpr uint8_t kSnapshotVersion = 2;

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > kU64Max - b ? kU64Max : a + b; }

Outcome Aborted(std::string message) {
  return Outcome{StatusCode::kAborted, "", std::move(message)};
}

Outcome Invalid(std::string message) {
  return Outcome{StatusCode::kInvalidArgument, "", std::move(message)};
}

std::string EncodeGrantData(LockService::Grant grant) {
  ByteWriter writer;
  writer.PutU64(grant.token);
  writer.PutU64(grant.expires_at_ms);
  return writer.Release();
}

std::string EncodeNameOwner(uint8_t op, std::string_view name, std::string_view owner) {
  ByteWriter writer;
  writer.PutU8(op);
  writer.PutBytes(name);
  writer.PutBytes(owner);
  return writer.Release();
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

// A decoded payload. The views point into the payload, which outlives it.
struct LockService::Request {
  uint8_t op = 0;
  std::string_view name;
  std::string_view owner;  // not for get
  uint64_t ttl_ms = 0;     // acquire only
};

namespace {

// False if the payload is malformed: unknown operation, truncated, or trailing bytes.
template <typename Request>
bool DecodeRequest(std::string_view payload, Request* request) {
  ByteReader reader(payload);
  if (!reader.GetU8(&request->op) || !reader.GetBytes(&request->name)) return false;
  switch (request->op) {
    case kOpAcquire:
      if (!reader.GetBytes(&request->owner) || !reader.GetU64(&request->ttl_ms)) return false;
      break;
    case kOpKeepAlive:
    case kOpRelease:
      if (!reader.GetBytes(&request->owner)) return false;
      break;
    case kOpGet:
    case kOpTick:
      break;
    default:
      return false;
  }
  return reader.empty();
}

}  // namespace

std::string LockService::EncodeAcquire(std::string_view name, std::string_view owner,
                                       uint64_t ttl_ms) {
  ByteWriter writer;
  writer.PutU8(kOpAcquire);
  writer.PutBytes(name);
  writer.PutBytes(owner);
  writer.PutU64(ttl_ms);
  return writer.Release();
}

std::string LockService::EncodeKeepAlive(std::string_view name, std::string_view owner) {
  return EncodeNameOwner(kOpKeepAlive, name, owner);
}

std::string LockService::EncodeRelease(std::string_view name, std::string_view owner) {
  return EncodeNameOwner(kOpRelease, name, owner);
}

std::string LockService::EncodeGet(std::string_view name) {
  ByteWriter writer;
  writer.PutU8(kOpGet);
  writer.PutBytes(name);
  return writer.Release();
}

std::string LockService::EncodeTick() {
  ByteWriter writer;
  writer.PutU8(kOpTick);
  writer.PutBytes("");
  return writer.Release();
}

Result<LockService::Grant> LockService::DecodeGrant(std::string_view data) {
  ByteReader reader(data);
  Grant grant;
  if (!reader.GetU64(&grant.token) || !reader.GetU64(&grant.expires_at_ms) || !reader.empty() ||
      grant.token == 0) {
    return Status(StatusCode::kInvalidArgument, "lock: malformed grant");
  }
  return grant;
}

Result<std::optional<LockService::Holder>> LockService::DecodeGet(std::string_view data) {
  const Status malformed(StatusCode::kInvalidArgument, "lock: malformed get reply");
  ByteReader reader(data);
  uint8_t present = 0;
  if (!reader.GetU8(&present) || present > 1) return malformed;
  if (present == 0) {
    if (!reader.empty()) return malformed;
    return std::optional<Holder>();
  }
  Holder holder;
  std::string_view owner;
  if (!reader.GetBytes(&owner) || !reader.GetU64(&holder.token) ||
      !reader.GetU64(&holder.expires_at_ms) || !reader.empty() || holder.token == 0) {
    return malformed;
  }
  holder.owner = owner;
  return std::optional<Holder>(std::move(holder));
}

LockService::LockService(Limits limits) : limits_(limits) {
  CHECK_GE(limits_.name_bytes_max, 1u);
  CHECK_GE(limits_.owner_bytes_max, 1u);
  CHECK_GE(limits_.ttl_ms_min, 1u);
  CHECK_LE(limits_.ttl_ms_min, limits_.ttl_ms_max);
  CHECK_GE(limits_.locks_max, 1u);
}

void LockService::Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) {
  CHECK(outcomes != nullptr);
  // One command at a time, in order, each at its own stamp: that is what makes the result
  // independent of how the commands were batched.
  for (const AppliedCommand& command : batch) {
    outcomes->push_back(ApplyOne(command));
  }
}

Outcome LockService::ApplyOne(const AppliedCommand& command) {
  // Time first, whatever the command: the leader's stamps are non-decreasing in the log, and the
  // max() keeps `now` monotonic even if a new leader's clock is behind.
  now_ms_ = std::max(now_ms_, command.stamp_ms);
  ExpireDue(command.slot);
  Request request;
  if (!DecodeRequest(command.payload, &request) || request.op == kOpGet) {
    return Invalid("lock: malformed command");
  }
  if (request.op == kOpTick) {
    if (!request.name.empty()) return Invalid("lock: malformed command");
    return Outcome{StatusCode::kOk, "", ""};
  }
  // A refused command must leave the locks as they were: validate before touching them.
  if (Status s = CheckRequest(request); !s.ok()) return Invalid(s.message());
  switch (request.op) {
    case kOpAcquire:
      return Acquire(command.slot, request.name, request.owner, request.ttl_ms);
    case kOpKeepAlive:
      return KeepAlive(request.name, request.owner);
    case kOpRelease:
      return Release(command.slot, request.name, request.owner);
  }
  LOG(FATAL) << "DecodeRequest accepted unknown op " << int{request.op};
}

Status LockService::CheckRequest(const Request& request) const {
  std::string problem;
  if (request.name.empty() || request.name.size() > limits_.name_bytes_max) {
    problem = "name is " + std::to_string(request.name.size()) + " bytes, must be 1.." +
              std::to_string(limits_.name_bytes_max);
  } else if (request.op != kOpGet &&
             (request.owner.empty() || request.owner.size() > limits_.owner_bytes_max)) {
    problem = "owner is " + std::to_string(request.owner.size()) + " bytes, must be 1.." +
              std::to_string(limits_.owner_bytes_max);
  } else if (request.op == kOpAcquire &&
             (request.ttl_ms < limits_.ttl_ms_min || request.ttl_ms > limits_.ttl_ms_max)) {
    problem = "ttl_ms " + std::to_string(request.ttl_ms) + " is outside [" +
              std::to_string(limits_.ttl_ms_min) + ", " + std::to_string(limits_.ttl_ms_max) + "]";
  }
  if (problem.empty()) return Status::Ok();
  return Status(StatusCode::kInvalidArgument, "lock: " + problem);
}

LockService::Lock* LockService::HeldLock(std::string_view name) {
  auto it = locks_.find(name);
  if (it == locks_.end() || it->second.expires_at_ms <= now_ms_) return nullptr;
  return &it->second;
}

const LockService::Lock* LockService::HeldLock(std::string_view name) const {
  auto it = locks_.find(name);
  if (it == locks_.end() || it->second.expires_at_ms <= now_ms_) return nullptr;
  return &it->second;
}

Outcome LockService::Acquire(paxos::Slot slot, std::string_view name, std::string_view owner,
                             uint64_t ttl_ms) {
  const uint64_t expires_at_ms = SaturatingAdd(now_ms_, ttl_ms);
  if (Lock* held = HeldLock(name); held != nullptr) {
    if (held->owner != owner) {
      return Aborted("lock " + Quoted(name) + " is held by " + Quoted(held->owner) + " (token " +
                     std::to_string(held->token) + ") until " +
                     std::to_string(held->expires_at_ms) + " ms, now " + std::to_string(now_ms_) +
                     " ms");
    }
    SetExpiry(name, held->expires_at_ms, expires_at_ms);
    held->ttl_ms = ttl_ms;
    held->expires_at_ms = expires_at_ms;
    return Outcome{StatusCode::kOk, EncodeGrantData({held->token, expires_at_ms}), ""};
  }
  // A free lock: it is new, released (absent), or expired (still in the table).
  auto it = locks_.find(name);
  if (it == locks_.end() && locks_.size() >= limits_.locks_max) {
    ForgetExpired();
    if (locks_.size() >= limits_.locks_max) {
      return Aborted("lock: table full (locks_max " + std::to_string(limits_.locks_max) + ")");
    }
  }
  if (last_token_ == kU64Max) return Aborted("lock: tokens exhausted");
  const uint64_t token = std::max(last_token_ + 1, slot);
  CHECK_GT(token, last_token_);
  last_token_ = token;
  Lock lock{std::string(owner), token, ttl_ms, expires_at_ms};
  if (it == locks_.end()) {
    locks_.emplace(std::string(name), std::move(lock));
  } else {
    it->second = std::move(lock);  // expired: no longer in expiries_
  }
  SetExpiry(name, 0, expires_at_ms);
  RecordChange(slot, name, Holder{std::string(owner), token, expires_at_ms});
  return Outcome{StatusCode::kOk, EncodeGrantData({token, expires_at_ms}), ""};
}

Outcome LockService::KeepAlive(std::string_view name, std::string_view owner) {
  Lock* held = HeldLock(name);
  if (held == nullptr || held->owner != owner) {
    std::string why = held == nullptr ? "it is free" : "the holder is " + Quoted(held->owner);
    return Aborted("lock " + Quoted(name) + " is not held by " + Quoted(owner) + " (" + why + ")");
  }
  const uint64_t expires_at_ms = SaturatingAdd(now_ms_, held->ttl_ms);
  SetExpiry(name, held->expires_at_ms, expires_at_ms);
  held->expires_at_ms = expires_at_ms;
  return Outcome{StatusCode::kOk, EncodeGrantData({held->token, held->expires_at_ms}), ""};
}

Outcome LockService::Release(paxos::Slot slot, std::string_view name, std::string_view owner) {
  const Lock* held = HeldLock(name);
  if (held == nullptr || held->owner != owner) {
    std::string why = held == nullptr ? "it is free" : "the holder is " + Quoted(held->owner);
    return Aborted("lock " + Quoted(name) + " is not held by " + Quoted(owner) + " (" + why + ")");
  }
  SetExpiry(name, held->expires_at_ms, 0);
  locks_.erase(locks_.find(name));
  RecordChange(slot, name, std::nullopt);
  return Outcome{StatusCode::kOk, "", ""};
}

void LockService::SetExpiry(std::string_view name, uint64_t old_expires_at_ms,
                            uint64_t new_expires_at_ms) {
  if (old_expires_at_ms != 0) expiries_.erase({old_expires_at_ms, std::string(name)});
  if (new_expires_at_ms != 0) expiries_.emplace(new_expires_at_ms, std::string(name));
}

void LockService::ExpireDue(paxos::Slot slot) {
  while (!expiries_.empty() && expiries_.begin()->first <= now_ms_) {
    RecordChange(slot, expiries_.begin()->second, std::nullopt);
    expiries_.erase(expiries_.begin());
  }
}

void LockService::RecordChange(paxos::Slot slot, std::string_view name,
                               std::optional<Holder> holder) {
  auto it = changes_.find(name);
  if (it == changes_.end()) {
    // Any change of this name at or after forgotten_below_ would have left a record.
    it = changes_.emplace(std::string(name), ChangeRecord{0, forgotten_below_, {}}).first;
  }
  ChangeRecord& record = it->second;
  record.slot = slot;
  if (!record.recent.empty() && record.recent.back().slot == slot) {
    record.recent.back().holder = std::move(holder);  // one change per slot: the last
  } else {
    record.recent.push_back(Change{slot, std::move(holder)});
    if (record.recent.size() > kRecentChangesMax) {
      record.complete_from = record.recent.front().slot + 1;
      record.recent.pop_front();
    }
  }
  // Bounded: forget the oldest change slot of a name nobody holds. Deterministic (every replica
  // forgets the same one at the same command), so snapshots stay identical.
  if (changes_.size() > 2 * limits_.locks_max) {
    auto oldest = changes_.end();
    for (auto c = changes_.begin(); c != changes_.end(); ++c) {
      if (c->first == name || locks_.contains(c->first)) continue;
      if (oldest == changes_.end() || c->second.slot < oldest->second.slot) oldest = c;
    }
    if (oldest != changes_.end()) {
      forgotten_below_ = std::max(forgotten_below_, oldest->second.slot + 1);
      changes_.erase(oldest);
    }
  }
}

std::string LockService::EncodeHolder(const Lock* held) {
  ByteWriter writer;
  writer.PutU8(held == nullptr ? 0 : 1);
  if (held != nullptr) {
    writer.PutBytes(held->owner);
    writer.PutU64(held->token);
    writer.PutU64(held->expires_at_ms);
  }
  return writer.Release();
}

Result<std::optional<WatchChange>> LockService::NextChange(std::string_view query,
                                                           paxos::Slot after) const {
  Request request;
  if (!DecodeRequest(query, &request) || request.op != kOpGet) {
    return Status(StatusCode::kInvalidArgument, "lock: malformed watch query");
  }
  if (Status s = CheckRequest(request); !s.ok()) return s;
  auto data_of = [](const std::optional<Holder>& holder) {
    if (!holder) return EncodeHolder(nullptr);
    Lock lock{holder->owner, holder->token, 0, holder->expires_at_ms};
    return EncodeHolder(&lock);
  };
  const std::string current = EncodeHolder(HeldLock(request.name));
  auto it = changes_.find(request.name);
  if (after == kCurrentState) {
    const paxos::Slot last = it != changes_.end()   ? it->second.slot
                             : forgotten_below_ > 0 ? forgotten_below_ - 1
                                                    : 0;
    return std::optional<WatchChange>(WatchChange{last, current, false});
  }
  if (it == changes_.end()) {
    // Never changed, or its change slot was forgotten (below forgotten_below_); free either way.
    if (after + 1 >= forgotten_below_) return std::optional<WatchChange>();
    return std::optional<WatchChange>(WatchChange{forgotten_below_ - 1, current, true});
  }
  const ChangeRecord& record = it->second;
  if (record.slot <= after) return std::optional<WatchChange>();
  for (const Change& change : record.recent) {
    if (change.slot > after) {
      return std::optional<WatchChange>(
          WatchChange{change.slot, data_of(change.holder), after + 1 < record.complete_from});
    }
  }
  // Restored from a snapshot: only the last change is known, and the state has not changed
  // since, so the current state is the state right after it.
  return std::optional<WatchChange>(WatchChange{record.slot, current, after + 1 < record.slot});
}

uint64_t LockService::NextDeadlineMs() const {
  return expiries_.empty() ? 0 : expiries_.begin()->first;
}

void LockService::ForgetExpired() {
  // Expired locks are free already; forgetting them changes no answer, only makes room. Every
  // replica does it at the same command, so the table (and the snapshot) stays identical.
  std::erase_if(locks_,
                [this](const auto& entry) { return entry.second.expires_at_ms <= now_ms_; });
}

Outcome LockService::Query(std::string_view request_bytes) const {
  Request request;
  if (!DecodeRequest(request_bytes, &request) || request.op != kOpGet) {
    return Invalid("lock: malformed query");
  }
  if (Status s = CheckRequest(request); !s.ok()) return Invalid(s.message());
  return Outcome{StatusCode::kOk, EncodeHolder(HeldLock(request.name)), ""};
}

std::string LockService::Snapshot() const {
  const bool watched = forgotten_below_ != 0 || !changes_.empty();
  ByteWriter writer;
  writer.PutU8(watched ? kSnapshotVersion : kSnapshotVersion1);
  writer.PutU64(now_ms_);
  writer.PutU64(last_token_);
  writer.PutU64(locks_.size());
  for (const auto& [name, lock] : locks_) {
    writer.PutBytes(name);
    writer.PutBytes(lock.owner);
    writer.PutU64(lock.token);
    writer.PutU64(lock.ttl_ms);
    writer.PutU64(lock.expires_at_ms);
  }
  if (!watched) return writer.Release();
  writer.PutU64(forgotten_below_);
  writer.PutU64(changes_.size());
  for (const auto& [name, record] : changes_) {
    writer.PutBytes(name);
    writer.PutU64(record.slot);
  }
  return writer.Release();
}

bool LockService::ValidLock(std::string_view name, const Lock& lock, uint64_t now_ms,
                            uint64_t last_token) const {
  return !name.empty() && name.size() <= limits_.name_bytes_max && !lock.owner.empty() &&
         lock.owner.size() <= limits_.owner_bytes_max && lock.token >= 1 &&
         lock.token <= last_token && lock.ttl_ms >= limits_.ttl_ms_min &&
         lock.ttl_ms <= limits_.ttl_ms_max &&
         lock.expires_at_ms <= SaturatingAdd(now_ms, lock.ttl_ms);
}

Status LockService::Restore(std::string_view snapshot) {
  const Status corrupt(StatusCode::kCorruption, "lock snapshot: malformed");
  ByteReader reader(snapshot);
  uint8_t version = 0;
  uint64_t now_ms = 0;
  uint64_t last_token = 0;
  uint64_t count = 0;
  if (!reader.GetU8(&version) || (version != kSnapshotVersion && version != kSnapshotVersion1) ||
      !reader.GetU64(&now_ms) || !reader.GetU64(&last_token) || !reader.GetU64(&count) ||
      count > limits_.locks_max) {
    return corrupt;
  }
  // Build aside and swap at the end, so a bad snapshot leaves the current state untouched.
  LockMap locks;
  std::set<uint64_t> tokens;  // every grant had its own token
  for (uint64_t i = 0; i < count; i++) {
    std::string_view name;
    std::string_view owner;
    Lock lock;
    if (!reader.GetBytes(&name) || !reader.GetBytes(&owner) || !reader.GetU64(&lock.token) ||
        !reader.GetU64(&lock.ttl_ms) || !reader.GetU64(&lock.expires_at_ms)) {
      return corrupt;
    }
    lock.owner = owner;
    if (!ValidLock(name, lock, now_ms, last_token)) return corrupt;
    if (!tokens.insert(lock.token).second) return corrupt;
    // Snapshot() writes names in increasing order; anything else was not written by it.
    if (!locks.empty() && name <= locks.rbegin()->first) return corrupt;
    locks.emplace_hint(locks.end(), std::string(name), std::move(lock));
  }
  paxos::Slot forgotten_below = 0;
  std::map<std::string, ChangeRecord, std::less<>> changes;
  if (version != kSnapshotVersion1) {
    uint64_t records = 0;
    if (!reader.GetU64(&forgotten_below) || !reader.GetU64(&records) ||
        records > 2 * limits_.locks_max + 1) {
      return corrupt;
    }
    for (uint64_t i = 0; i < records; i++) {
      std::string_view name;
      ChangeRecord record;
      if (!reader.GetBytes(&name) || !reader.GetU64(&record.slot) || record.slot == 0 ||
          name.empty() || name.size() > limits_.name_bytes_max) {
        return corrupt;
      }
      if (!changes.empty() && name <= changes.rbegin()->first) return corrupt;
      // The history in memory starts empty: it is complete from the slot after the last change.
      record.complete_from = record.slot + 1;
      changes.emplace_hint(changes.end(), std::string(name), std::move(record));
    }
    if (forgotten_below == 0 && changes.empty()) return corrupt;  // written as version 1
  }
  if (!reader.empty()) return corrupt;
  now_ms_ = now_ms;
  last_token_ = last_token;
  locks_ = std::move(locks);
  forgotten_below_ = forgotten_below;
  changes_ = std::move(changes);
  expiries_.clear();
  for (const auto& [name, lock] : locks_) {
    if (lock.expires_at_ms > now_ms_) expiries_.emplace(lock.expires_at_ms, name);
  }
  return Status::Ok();
}

}  // namespace ballot::samples
