#include "statemachine/samples/kv.h"

#include <utility>

#include <glog/logging.h>

#include "statemachine/byte_codec.h"

namespace ballot::samples {

namespace {

// Every payload starts with an operation byte, then the operation's fields, each a
// length-prefixed byte string (statemachine/byte_codec.h). Explicit bytes rather than a struct
// dump, so that every replica and every client agrees on them whatever its compiler.
constexpr uint8_t kOpPut = 1;
constexpr uint8_t kOpDelete = 2;
constexpr uint8_t kOpCompareAndSet = 3;
constexpr uint8_t kOpGet = 4;
constexpr uint8_t kSnapshotVersion = 1;

// A decoded payload. The views point into the payload, which outlives it.
struct Request {
  uint8_t op = 0;
  std::string_view key;
  std::optional<std::string_view> expected;  // compare_and_set only
  std::string_view value;                    // put and compare_and_set only
};

// False if the payload is malformed: unknown operation, truncated, or trailing bytes.
bool DecodeRequest(std::string_view payload, Request* request) {
  ByteReader reader(payload);
  if (!reader.GetU8(&request->op) || !reader.GetBytes(&request->key)) return false;
  switch (request->op) {
    case kOpPut:
      if (!reader.GetBytes(&request->value)) return false;
      break;
    case kOpCompareAndSet: {
      uint8_t has_expected = 0;
      std::string_view expected;
      if (!reader.GetU8(&has_expected) || has_expected > 1) return false;
      if (has_expected == 1) {
        if (!reader.GetBytes(&expected)) return false;
        request->expected = expected;
      }
      if (!reader.GetBytes(&request->value)) return false;
      break;
    }
    case kOpDelete:
    case kOpGet:
      break;
    default:
      return false;
  }
  return reader.empty();
}

Outcome Ok() { return Outcome{StatusCode::kOk, "", ""}; }

Outcome Aborted(std::string message) {
  return Outcome{StatusCode::kAborted, "", std::move(message)};
}

Outcome Invalid(std::string message) {
  return Outcome{StatusCode::kInvalidArgument, "", std::move(message)};
}

}  // namespace

std::string KvStore::EncodePut(std::string_view key, std::string_view value) {
  ByteWriter writer;
  writer.PutU8(kOpPut);
  writer.PutBytes(key);
  writer.PutBytes(value);
  return writer.Release();
}

std::string KvStore::EncodeDelete(std::string_view key) {
  ByteWriter writer;
  writer.PutU8(kOpDelete);
  writer.PutBytes(key);
  return writer.Release();
}

std::string KvStore::EncodeCompareAndSet(std::string_view key,
                                         std::optional<std::string_view> expected,
                                         std::string_view value) {
  ByteWriter writer;
  writer.PutU8(kOpCompareAndSet);
  writer.PutBytes(key);
  writer.PutU8(expected.has_value() ? 1 : 0);
  if (expected.has_value()) writer.PutBytes(*expected);
  writer.PutBytes(value);
  return writer.Release();
}

std::string KvStore::EncodeGet(std::string_view key) {
  ByteWriter writer;
  writer.PutU8(kOpGet);
  writer.PutBytes(key);
  return writer.Release();
}

Result<std::optional<std::string>> KvStore::DecodeGet(std::string_view data) {
  ByteReader reader(data);
  uint8_t present = 0;
  std::string_view value;
  if (!reader.GetU8(&present) || present > 1 || (present == 1 && !reader.GetBytes(&value)) ||
      !reader.empty()) {
    return Status(StatusCode::kInvalidArgument, "kv: malformed get reply");
  }
  if (present == 0) return std::optional<std::string>();
  return std::optional<std::string>(std::string(value));
}

KvStore::KvStore(Limits limits) : limits_(limits) {
  CHECK_GE(limits_.key_bytes_max, 1u);
  CHECK_GE(limits_.value_bytes_max, 1u);
  CHECK_GE(limits_.keys_max, 1u);
}

void KvStore::Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) {
  CHECK(outcomes != nullptr);
  // One command at a time, in order: that is what makes the result independent of how the
  // commands were batched.
  for (const AppliedCommand& command : batch) {
    outcomes->push_back(ApplyOne(command.payload));
  }
}

Outcome KvStore::ApplyOne(std::string_view payload) {
  Request request;
  if (!DecodeRequest(payload, &request) || request.op == kOpGet) {
    return Invalid("kv: malformed command");
  }
  // A rejected command must leave the state as it was, so validate before touching the map.
  const Status sizes = CheckSizes(request.key, request.value);
  if (!sizes.ok()) return Invalid(sizes.message());
  switch (request.op) {
    case kOpPut:
      return Put(request.key, request.value);
    case kOpDelete:
      return Delete(request.key);
    case kOpCompareAndSet:
      return CompareAndSet(request.key, request.expected, request.value);
  }
  LOG(FATAL) << "DecodeRequest accepted unknown op " << int{request.op};
}

Outcome KvStore::Put(std::string_view key, std::string_view value) {
  auto it = map_.find(key);
  if (it != map_.end()) {
    it->second = value;
    return Ok();
  }
  if (map_.size() >= limits_.keys_max) {
    return Aborted("kv: store full (keys_max " + std::to_string(limits_.keys_max) + ")");
  }
  map_.emplace(key, value);
  return Ok();
}

Outcome KvStore::Delete(std::string_view key) {
  auto it = map_.find(key);
  if (it != map_.end()) map_.erase(it);
  return Ok();
}

Outcome KvStore::CompareAndSet(std::string_view key, std::optional<std::string_view> expected,
                               std::string_view value) {
  auto it = map_.find(key);
  const bool present = it != map_.end();
  if (!expected.has_value()) {
    if (present) return Aborted("compare_and_set: expected the key absent, but it has a value");
    return Put(key, value);
  }
  if (!present) return Aborted("compare_and_set: expected a value, but the key is absent");
  if (it->second != *expected) return Aborted("compare_and_set: the value differs from expected");
  it->second = value;
  return Ok();
}

Status KvStore::CheckSizes(std::string_view key, std::string_view value) const {
  std::string problem;
  if (key.size() > limits_.key_bytes_max) {
    problem = "key is " + std::to_string(key.size()) + " bytes, key_bytes_max is " +
              std::to_string(limits_.key_bytes_max);
  } else if (value.size() > limits_.value_bytes_max) {
    problem = "value is " + std::to_string(value.size()) + " bytes, value_bytes_max is " +
              std::to_string(limits_.value_bytes_max);
  }
  if (problem.empty()) return Status::Ok();
  return Status(StatusCode::kInvalidArgument, "kv: " + problem);
}

Outcome KvStore::Query(std::string_view request_bytes) const {
  Request request;
  if (!DecodeRequest(request_bytes, &request) || request.op != kOpGet) {
    return Invalid("kv: malformed query");
  }
  ByteWriter writer;
  auto it = map_.find(request.key);
  writer.PutU8(it == map_.end() ? 0 : 1);
  if (it != map_.end()) writer.PutBytes(it->second);
  return Outcome{StatusCode::kOk, writer.Release(), ""};
}

std::string KvStore::Snapshot() const {
  ByteWriter writer;
  writer.PutU8(kSnapshotVersion);
  writer.PutU64(map_.size());
  for (const auto& [key, value] : map_) {
    writer.PutBytes(key);
    writer.PutBytes(value);
  }
  return writer.Release();
}

Status KvStore::Restore(std::string_view snapshot) {
  const Status corrupt(StatusCode::kCorruption, "kv snapshot: malformed");
  ByteReader reader(snapshot);
  uint8_t version = 0;
  uint64_t count = 0;
  if (!reader.GetU8(&version) || version != kSnapshotVersion || !reader.GetU64(&count) ||
      count > limits_.keys_max) {
    return corrupt;
  }
  // Build aside and swap at the end, so a bad snapshot leaves the current state untouched.
  std::map<std::string, std::string, std::less<>> map;
  for (uint64_t i = 0; i < count; i++) {
    std::string_view key;
    std::string_view value;
    if (!reader.GetBytes(&key) || !reader.GetBytes(&value)) return corrupt;
    if (!CheckSizes(key, value).ok()) return corrupt;
    // Snapshot() writes keys in increasing order; anything else was not written by it.
    if (!map.empty() && key <= map.rbegin()->first) return corrupt;
    map.emplace_hint(map.end(), key, value);
  }
  if (!reader.empty()) return corrupt;
  map_ = std::move(map);
  return Status::Ok();
}

}  // namespace ballot::samples
