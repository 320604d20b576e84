#include "net/frame.h"

#include <algorithm>
#include <cstring>

#include "statemachine/byte_codec.h"

namespace ballot::net {
namespace {

// Memory for a payload grows from this much as its bytes arrive (doubling), so a length prefix
// alone never makes us allocate more than this.
constexpr size_t kPayloadInitialBytes = 64 << 10;

uint32_t GetFrameHeader(const uint8_t in[kFrameHeaderBytes]) { return LoadLe32(in); }

size_t WordsFor(size_t bytes) { return (bytes + kFrameWordBytes - 1) / kFrameWordBytes; }

}  // namespace

void PutFrameHeader(uint32_t payload_bytes, uint8_t out[kFrameHeaderBytes]) {
  StoreLe32(payload_bytes, out);
}

FrameDecoder::FrameDecoder(size_t frame_bytes_max) : frame_bytes_max_(0) {
  set_frame_bytes_max(frame_bytes_max);
}

void FrameDecoder::set_frame_bytes_max(size_t frame_bytes_max) {
  CHECK_GT(frame_bytes_max, 0u);
  CHECK_LE(frame_bytes_max, kFrameBytesMax);
  CHECK_EQ(frame_bytes_max % kFrameWordBytes, 0u);
  frame_bytes_max_ = frame_bytes_max;
}

Status FrameDecoder::Feed(std::span<const uint8_t> bytes, std::vector<FramePayload>* frames) {
  return Feed(bytes, [frames](FramePayload&& frame) {
    frames->push_back(std::move(frame));
    return Status::Ok();
  });
}

Status FrameDecoder::Feed(std::span<const uint8_t> bytes, const FrameSink& sink) {
  if (!error_.ok()) return error_;
  while (!bytes.empty()) {
    if (header_have_ < kFrameHeaderBytes) {
      bytes = bytes.subspan(ConsumeHeader(bytes));
      if (!error_.ok()) return error_;
      continue;
    }
    bytes = bytes.subspan(ConsumePayload(bytes));
    if (payload_have_ == payload_want_) {
      CHECK_EQ(payload_.size() * kFrameWordBytes, payload_want_);
      header_have_ = 0;
      payload_have_ = 0;
      payload_want_ = 0;
      // The sink may keep the buffer (move from it); a sink that only decodes leaves it here,
      // and the next frame reuses its memory: no allocation per frame. A buffer grown by one
      // large frame is not kept.
      error_ = sink(std::move(payload_));
      payload_.clear();
      if (payload_.capacity() > WordsFor(kPayloadInitialBytes)) payload_.shrink_to_fit();
      if (!error_.ok()) return error_;
    }
  }
  return Status::Ok();
}

Status FrameDecoder::Finish() const {
  if (!error_.ok()) return error_;
  if (buffered_bytes() == 0) return Status::Ok();
  if (header_have_ < kFrameHeaderBytes) {
    return Status(StatusCode::kInvalidArgument, "truncated frame: stream ended after " +
                                                    std::to_string(header_have_) +
                                                    " of 4 length-prefix bytes");
  }
  return Status(StatusCode::kInvalidArgument, "truncated frame: stream ended after " +
                                                  std::to_string(payload_have_) + " of " +
                                                  std::to_string(payload_want_) + " payload bytes");
}

size_t FrameDecoder::ConsumeHeader(std::span<const uint8_t> bytes) {
  const size_t n = std::min(bytes.size(), kFrameHeaderBytes - header_have_);
  std::memcpy(header_ + header_have_, bytes.data(), n);
  header_have_ += n;
  if (header_have_ < kFrameHeaderBytes) return n;

  const uint32_t length = GetFrameHeader(header_);
  error_ = CheckLength(length);
  if (!error_.ok()) return n;
  payload_want_ = length;
  payload_have_ = 0;
  payload_.clear();
  payload_.reserve(WordsFor(std::min<size_t>(length, kPayloadInitialBytes)));
  return n;
}

Status FrameDecoder::CheckLength(uint32_t length) const {
  if (length == 0) return Status(StatusCode::kInvalidArgument, "bad frame: zero length");
  if (length % kFrameWordBytes != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "bad frame: length " + std::to_string(length) + " is not a multiple of 8");
  }
  if (length > frame_bytes_max_) {
    return Status(StatusCode::kInvalidArgument, "bad frame: length " + std::to_string(length) +
                                                    " exceeds the maximum of " +
                                                    std::to_string(frame_bytes_max_));
  }
  return Status::Ok();
}

size_t FrameDecoder::ConsumePayload(std::span<const uint8_t> bytes) {
  const size_t n = std::min(bytes.size(), payload_want_ - payload_have_);
  GrowPayloadFor(payload_have_ + n);
  std::memcpy(reinterpret_cast<uint8_t*>(payload_.data()) + payload_have_, bytes.data(), n);
  payload_have_ += n;
  return n;
}

// Doubles capacity as data arrives, but never past the announced length.
void FrameDecoder::GrowPayloadFor(size_t bytes_total) {
  CHECK_LE(bytes_total, payload_want_);
  const size_t words = WordsFor(bytes_total);
  if (words > payload_.capacity()) {
    const size_t words_max = payload_want_ / kFrameWordBytes;
    payload_.reserve(std::min(words_max, std::max(words, 2 * payload_.capacity())));
  }
  if (words > payload_.size()) payload_.resize(words);
}

}  // namespace ballot::net
