#include "store/snapshot_format.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "statemachine/byte_codec.h"
#include "store/checksum.h"
#include "store/status_macros.h"

namespace ballot::store {

namespace {

std::string EncodeU32(uint32_t v) {
  ByteWriter writer;
  writer.PutU32(v);
  return writer.Release();
}

// A frame's checksum covers its length field too, so a damaged length is caught as such
// rather than as a mismatch somewhere further on.
uint32_t FrameCrc(uint32_t length, std::string_view payload) {
  const std::string length_bytes = EncodeU32(length);
  return Crc32cExtend(Crc32c(length_bytes), payload.data(), payload.size());
}

std::string EncodeFrameHeader(uint32_t length, uint32_t crc) {
  ByteWriter writer;
  writer.PutU32(length);
  writer.PutU32(crc);
  return writer.Release();
}

}  // namespace

SnapshotEncoder::SnapshotEncoder(paxos::Slot applied_below, RawSnapshotOutput* out)
    : applied_below_(applied_below), out_(out) {
  CHECK_GT(applied_below_, 0u) << "slots start at 1";
  CHECK(out_ != nullptr);
}

Status SnapshotEncoder::Start() {
  started_ = true;
  ByteWriter writer;
  writer.PutU32(kSnapshotFileMagic);
  writer.PutU32(kSnapshotFileVersion);
  writer.PutU64(applied_below_);
  writer.PutU32(Crc32c(writer.data()));
  CHECK_EQ(writer.data().size(), kSnapshotFileHeaderBytes);
  return out_->Append(writer.data());
}

Status SnapshotEncoder::EmitFrame(std::string_view payload) {
  CHECK(!payload.empty());
  CHECK_LE(payload.size(), kSnapshotChunkBytesMax);
  const auto length = static_cast<uint32_t>(payload.size());
  STORE_RETURN_IF_ERROR(out_->Append(EncodeFrameHeader(length, FrameCrc(length, payload))));
  STORE_RETURN_IF_ERROR(out_->Append(payload));
  logical_bytes_ += payload.size();
  whole_crc_ = Crc32cExtend(whole_crc_, payload.data(), payload.size());
  return Status::Ok();
}

Status SnapshotEncoder::Write(std::string_view logical) {
  CHECK(!finished_) << "SnapshotEncoder::Write after Finish";
  if (!error_.ok()) return error_;
  if (!started_) error_ = Start();
  while (error_.ok() && !logical.empty()) {
    const size_t n = std::min(logical.size(), kSnapshotChunkBytesMax - pending_.size());
    if (pending_.empty() && n == kSnapshotChunkBytesMax) {
      error_ = EmitFrame(logical.substr(0, n));  // a whole chunk: no copy through pending_
    } else {
      pending_.append(logical.substr(0, n));
      if (pending_.size() == kSnapshotChunkBytesMax) {
        error_ = EmitFrame(pending_);
        pending_.clear();
      }
    }
    logical.remove_prefix(n);
  }
  return error_;
}

Status SnapshotEncoder::Finish() {
  CHECK(!finished_) << "SnapshotEncoder::Finish twice";
  finished_ = true;
  if (!error_.ok()) return error_;
  if (!started_) STORE_RETURN_IF_ERROR(Start());
  if (!pending_.empty()) STORE_RETURN_IF_ERROR(EmitFrame(pending_));
  std::string().swap(pending_);
  ByteWriter body;
  body.PutU64(logical_bytes_);
  body.PutU32(whole_crc_);
  CHECK_EQ(body.data().size(), kSnapshotEndBodyBytes);
  STORE_RETURN_IF_ERROR(out_->Append(EncodeFrameHeader(0, FrameCrc(0, body.data()))));
  return out_->Append(body.data());
}

SnapshotDecoder::SnapshotDecoder(std::string name, RawSnapshotInput* in)
    : name_(std::move(name)), in_(in) {
  CHECK(in_ != nullptr);
}

Status SnapshotDecoder::Corrupt(const std::string& what) const {
  return Status(StatusCode::kCorruption, "snapshot " + name_ + ": " + what + " (at byte " +
                                             std::to_string(raw_offset_) + ")");
}

Status SnapshotDecoder::Start(paxos::Slot expected_applied_below) {
  CHECK(!started_);
  started_ = true;
  std::string bytes;
  error_ = in_->ReadRaw(kSnapshotFileHeaderBytes, &bytes);
  if (!error_.ok()) return error_;
  if (bytes.size() < kSnapshotFileHeaderBytes) return error_ = Corrupt("truncated header");
  ByteReader reader(bytes);
  uint32_t magic = 0;
  uint32_t version = 0;
  uint32_t crc = 0;
  CHECK(reader.GetU32(&magic) && reader.GetU32(&version) && reader.GetU64(&applied_below_) &&
        reader.GetU32(&crc));
  if (crc != Crc32c(std::string_view(bytes).substr(0, kSnapshotFileHeaderBytes - 4))) {
    return error_ = Corrupt("header fails its checksum");
  }
  if (magic != kSnapshotFileMagic) return error_ = Corrupt("not a snapshot (bad magic)");
  if (version != kSnapshotFileVersion) {
    return error_ = Corrupt("unknown format version " + std::to_string(version));
  }
  if (applied_below_ == 0) return error_ = Corrupt("applied_below is 0");
  if (expected_applied_below != 0 && applied_below_ != expected_applied_below) {
    return error_ = Corrupt("records applied_below " + std::to_string(applied_below_) +
                            ", expected " + std::to_string(expected_applied_below));
  }
  raw_offset_ = kSnapshotFileHeaderBytes;
  return Status::Ok();
}

Status SnapshotDecoder::ReadFrameHeader(uint32_t* length, uint32_t* crc) {
  std::string bytes;
  STORE_RETURN_IF_ERROR(in_->ReadRaw(kSnapshotFrameHeaderBytes, &bytes));
  if (bytes.size() < kSnapshotFrameHeaderBytes) return Corrupt("truncated (no end record)");
  ByteReader reader(bytes);
  CHECK(reader.GetU32(length) && reader.GetU32(crc));
  if (*length > kSnapshotChunkBytesMax) {
    return Corrupt("chunk length " + std::to_string(*length) + " exceeds " +
                   std::to_string(kSnapshotChunkBytesMax));
  }
  raw_offset_ += kSnapshotFrameHeaderBytes;
  return Status::Ok();
}

Status SnapshotDecoder::ReadEnd(uint32_t crc) {
  std::string body;
  STORE_RETURN_IF_ERROR(in_->ReadRaw(kSnapshotEndBodyBytes, &body));
  if (body.size() < kSnapshotEndBodyBytes) return Corrupt("truncated end record");
  if (FrameCrc(0, body) != crc) return Corrupt("end record fails its checksum");
  ByteReader reader(body);
  uint64_t logical_bytes = 0;
  uint32_t whole_crc = 0;
  CHECK(reader.GetU64(&logical_bytes) && reader.GetU32(&whole_crc));
  if (logical_bytes != logical_bytes_ || whole_crc != whole_crc_) {
    return Corrupt("chunks missing or out of order: end record says " +
                   std::to_string(logical_bytes) + " bytes, read " +
                   std::to_string(logical_bytes_));
  }
  raw_offset_ += kSnapshotEndBodyBytes;
  std::string trailing;
  STORE_RETURN_IF_ERROR(in_->ReadRaw(1, &trailing));
  if (!trailing.empty()) return Corrupt("trailing bytes after the end record");
  end_verified_ = true;
  return Status::Ok();
}

Status SnapshotDecoder::Fill() {
  uint32_t length = next_length_;
  uint32_t crc = next_crc_;
  if (!has_next_) STORE_RETURN_IF_ERROR(ReadFrameHeader(&length, &crc));
  has_next_ = false;
  chunk_.clear();
  chunk_pos_ = 0;
  if (length == 0) return ReadEnd(crc);  // an empty snapshot: the end record comes first
  STORE_RETURN_IF_ERROR(in_->ReadRaw(length, &chunk_));
  if (chunk_.size() < length) return Corrupt("truncated chunk");
  if (FrameCrc(length, chunk_) != crc) return Corrupt("chunk fails its checksum");
  raw_offset_ += length;
  logical_bytes_ += length;
  whole_crc_ = Crc32cExtend(whole_crc_, chunk_.data(), chunk_.size());
  // Look ahead: if this chunk is the last, check the end before any of its bytes go out.
  STORE_RETURN_IF_ERROR(ReadFrameHeader(&next_length_, &next_crc_));
  if (next_length_ == 0) return ReadEnd(next_crc_);
  has_next_ = true;
  return Status::Ok();
}

Status SnapshotDecoder::Read(size_t bytes_max, std::string* out) {
  CHECK(started_) << "SnapshotDecoder::Start first";
  CHECK_GT(bytes_max, 0u);
  out->clear();
  if (!error_.ok()) return error_;
  while (chunk_pos_ == chunk_.size()) {
    if (end_verified_) return Status::Ok();
    error_ = Fill();
    if (!error_.ok()) {
      chunk_.clear();
      chunk_pos_ = 0;
      return error_;
    }
  }
  const size_t n = std::min(bytes_max, chunk_.size() - chunk_pos_);
  out->assign(chunk_, chunk_pos_, n);
  chunk_pos_ += n;
  return Status::Ok();
}

Status SnapshotDecoder::VerifyRest() {
  CHECK(started_) << "SnapshotDecoder::Start first";
  while (error_.ok() && !end_verified_) {
    chunk_pos_ = chunk_.size();
    error_ = Fill();
  }
  chunk_.clear();
  chunk_pos_ = 0;
  return error_;
}

}  // namespace ballot::store
