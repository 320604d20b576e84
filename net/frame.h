// Length-prefixed framing of a byte stream.
//
//   frame := length:uint32 little-endian || payload[length]
//
// The payload is one unpacked Cap'n Proto message in flat form (net/codec.h), so its length is a
// non-zero multiple of 8. Every byte here comes from an untrusted socket: the length is checked
// against a maximum BEFORE anything is allocated for it, and memory grows only as bytes actually
// arrive, so a peer that claims a large frame and sends nothing costs nothing.
#ifndef BALLOT_NET_FRAME_H_
#define BALLOT_NET_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "paxos/status.h"

namespace ballot::net {

inline constexpr size_t kFrameHeaderBytes = 4;
// The largest payload accepted or produced. It bounds the memory one connection can make us hold.
inline constexpr size_t kFrameBytesMax = size_t{16} << 20;
// Payloads are whole 64-bit words (Cap'n Proto's unit).
inline constexpr size_t kFrameWordBytes = 8;

// One frame's payload, without its length prefix. Stored as 64-bit words so that it is aligned
// the way Cap'n Proto's FlatArrayMessageReader requires, whatever alignment the socket had.
using FramePayload = std::vector<uint64_t>;

// Writes the 4-byte little-endian length prefix of a payload of `payload_bytes` into `out`.
void PutFrameHeader(uint32_t payload_bytes, uint8_t out[kFrameHeaderBytes]);

// Splits a byte stream into frames. Feed it chunks of any size as they arrive; complete frames
// come out in order. The first malformed header breaks the stream for good: the connection
// cannot be resynchronised, so every later call returns the same error.
//
// Not thread-safe; one per connection.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t frame_bytes_max = kFrameBytesMax);

  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Changes the largest payload accepted from the next header on (the transport keeps it small
  // until the handshake is done). Must be a multiple of 8 and at most kFrameBytesMax.
  void set_frame_bytes_max(size_t frame_bytes_max);
  size_t frame_bytes_max() const { return frame_bytes_max_; }

  // Called with each frame as it completes, before the next header is parsed (so it may change
  // frame_bytes_max() for the frames that follow, as the transport does after a handshake).
  // Returning non-ok stops the decoder: Feed returns that status, now and later. A sink that
  // does not move from the frame lets the decoder reuse its memory for the next one.
  using FrameSink = std::function<Status(FramePayload&& frame)>;

  // Consumes `bytes`, passing each completed frame to `sink`. Returns kInvalidArgument (and
  // consumes nothing more, now or later) on a length of zero, a length that is not a multiple
  // of 8, or a length above frame_bytes_max(). Frames completed before the bad header have
  // already been passed on.
  Status Feed(std::span<const uint8_t> bytes, const FrameSink& sink);
  // The same, appending the frames to *frames.
  Status Feed(std::span<const uint8_t> bytes, std::vector<FramePayload>* frames);

  // The stream ended. Returns kInvalidArgument if it ended inside a frame (truncated), or the
  // error Feed already returned; Ok at a frame boundary.
  Status Finish() const;

  // Bytes of a partial frame held now (header included); for tests and bounds checks.
  size_t buffered_bytes() const { return header_have_ + payload_have_; }
  // Bytes allocated for the partial frame; lets tests check a length prefix alone allocates
  // little.
  size_t TEST_payload_capacity_bytes() const { return payload_.capacity() * kFrameWordBytes; }

 private:
  // Each returns how many bytes of `bytes` it consumed.
  size_t ConsumeHeader(std::span<const uint8_t> bytes);
  size_t ConsumePayload(std::span<const uint8_t> bytes);
  Status CheckLength(uint32_t length) const;
  void GrowPayloadFor(size_t bytes_total);

  size_t frame_bytes_max_;
  Status error_;  // sticky once non-ok

  uint8_t header_[kFrameHeaderBytes] = {};
  size_t header_have_ = 0;
  // Valid once the header is complete: the payload length it announced.
  size_t payload_want_ = 0;
  size_t payload_have_ = 0;
  FramePayload payload_;
};

}  // namespace ballot::net

#endif  // BALLOT_NET_FRAME_H_
