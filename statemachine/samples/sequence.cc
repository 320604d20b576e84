#include "statemachine/samples/sequence.h"

#include <glog/logging.h>

#include <limits>
#include <string>
#include <utility>

#include "statemachine/byte_codec.h"

namespace ballot::samples {

namespace {

// The first byte of every payload names the operation, so a payload meant for one operation can
// never be mistaken for another.
constexpr uint8_t kOpNext = 1;
constexpr uint8_t kOpPeek = 2;
constexpr uint8_t kSnapshotVersion = 1;

Outcome Invalid(std::string message) {
  return Outcome{StatusCode::kInvalidArgument, "", std::move(message)};
}

std::string EncodeBlock(SequenceGenerator::Block block) {
  ByteWriter writer;
  writer.PutU64(block.first);
  writer.PutU64(block.count);
  return writer.Release();
}

std::string EncodeNumber(uint64_t number) {
  ByteWriter writer;
  writer.PutU64(number);
  return writer.Release();
}

}  // namespace

std::string SequenceGenerator::EncodeNext(uint64_t count) {
  ByteWriter writer;
  writer.PutU8(kOpNext);
  writer.PutU64(count);
  return writer.Release();
}

Result<SequenceGenerator::Block> SequenceGenerator::DecodeBlock(std::string_view data) {
  ByteReader reader(data);
  Block block;
  if (!reader.GetU64(&block.first) || !reader.GetU64(&block.count) || !reader.empty()) {
    return Status(StatusCode::kInvalidArgument, "block: expected 16 bytes");
  }
  if (block.first == 0 || block.count == 0 || block.count > kCountMax ||
      block.count > std::numeric_limits<uint64_t>::max() - block.first) {
    return Status(StatusCode::kInvalidArgument, "block: out of range");
  }
  return block;
}

std::string SequenceGenerator::EncodePeek() {
  ByteWriter writer;
  writer.PutU8(kOpPeek);
  return writer.Release();
}

Result<uint64_t> SequenceGenerator::DecodePeek(std::string_view data) {
  ByteReader reader(data);
  uint64_t next = 0;
  if (!reader.GetU64(&next) || !reader.empty() || next == 0) {
    return Status(StatusCode::kInvalidArgument, "peek: expected a non-zero 8-byte number");
  }
  return next;
}

void SequenceGenerator::Apply(std::span<const AppliedCommand> batch,
                              std::vector<Outcome>* outcomes) {
  CHECK(outcomes != nullptr);
  for (const AppliedCommand& command : batch) {
    outcomes->push_back(ApplyOne(command.payload));
  }
}

Outcome SequenceGenerator::ApplyOne(std::string_view payload) {
  ByteReader reader(payload);
  uint8_t op = 0;
  uint64_t count = 0;
  if (!reader.GetU8(&op) || op != kOpNext || !reader.GetU64(&count) || !reader.empty()) {
    return Invalid("sequence: expected next(count)");
  }
  if (count == 0 || count > kCountMax) {
    return Invalid("sequence: count " + std::to_string(count) + " is outside [1, " +
                   std::to_string(kCountMax) + "]");
  }
  // next_ + count must stay representable so that next_ never wraps to numbers already given.
  if (count > std::numeric_limits<uint64_t>::max() - next_) {
    return Outcome{StatusCode::kAborted, "", "sequence: exhausted"};
  }
  const Block block{next_, count};
  next_ += count;
  CHECK_GT(next_, block.first);
  return Outcome{StatusCode::kOk, EncodeBlock(block), ""};
}

Outcome SequenceGenerator::Query(std::string_view request) const {
  if (request != EncodePeek()) return Invalid("sequence: expected peek");
  return Outcome{StatusCode::kOk, EncodeNumber(next_), ""};
}

std::string SequenceGenerator::Snapshot() const {
  ByteWriter writer;
  writer.PutU8(kSnapshotVersion);
  writer.PutU64(next_);
  return writer.Release();
}

Status SequenceGenerator::Restore(std::string_view snapshot) {
  ByteReader reader(snapshot);
  uint8_t version = 0;
  uint64_t next = 0;
  if (!reader.GetU8(&version) || version != kSnapshotVersion || !reader.GetU64(&next) ||
      !reader.empty() || next == 0) {
    return Status(StatusCode::kCorruption, "sequence snapshot: malformed");
  }
  next_ = next;
  return Status::Ok();
}

}  // namespace ballot::samples
