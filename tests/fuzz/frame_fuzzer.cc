// Fuzz target: net/frame.h, the length-prefixed framing of untrusted socket bytes.
//
// Input: byte 0 picks frame_bytes_max, byte 1 picks how the stream is cut into reads, the rest
// is the stream. Properties checked:
//   - the decoder's output does not depend on how the stream was cut (one Feed vs many reads);
//   - every frame is non-empty, whole words and within frame_bytes_max;
//   - the frames, re-framed, are exactly the consumed prefix of the stream;
//   - Finish() is Ok exactly when the stream ended on a frame boundary without an error.
#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "net/frame.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using ballot::Status;
using ballot::net::FrameDecoder;
using ballot::net::FramePayload;

struct Decoded {
  std::vector<FramePayload> frames;
  Status status;
  Status finish;
  size_t buffered = 0;
};

Decoded DecodeInChunks(size_t frame_bytes_max, std::span<const uint8_t> stream, uint8_t cut) {
  Decoded out;
  FrameDecoder decoder(frame_bytes_max);
  size_t pos = 0;
  uint32_t state = cut;
  while (pos < stream.size()) {
    // A small xorshift picks read sizes of 1..64 bytes, or the whole rest when cut == 0.
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    const size_t n =
        cut == 0 ? stream.size() - pos : std::min<size_t>(stream.size() - pos, 1 + state % 64);
    Status s = decoder.Feed(stream.subspan(pos, n), &out.frames);
    pos += n;
    if (!s.ok()) {
      out.status = s;
      // Sticky: a later Feed must fail the same way and deliver nothing.
      const size_t before = out.frames.size();
      Status again = decoder.Feed(stream.subspan(pos), &out.frames);
      CHECK(!again.ok());
      CHECK_EQ(again.message(), s.message());
      CHECK_EQ(out.frames.size(), before);
      break;
    }
  }
  out.finish = decoder.Finish();
  out.buffered = decoder.buffered_bytes();
  return out;
}

}  // namespace

BALLOT_FUZZ_TARGET(frame) {
  if (size < 2) return;
  static const size_t kMaxChoices[] = {8, 16, 64, 4096, ballot::net::kFrameBytesMax};
  const size_t frame_bytes_max = kMaxChoices[data[0] % 5];
  const uint8_t cut = data[1];
  const std::span<const uint8_t> stream(data + 2, size - 2);

  const Decoded whole = DecodeInChunks(frame_bytes_max, stream, 0);
  const Decoded chunked = DecodeInChunks(frame_bytes_max, stream, cut);
  CHECK(whole.frames == chunked.frames);
  CHECK_EQ(whole.status.ok(), chunked.status.ok());
  CHECK_EQ(whole.status.message(), chunked.status.message());
  CHECK_EQ(whole.finish.message(), chunked.finish.message());

  // Re-frame what came out: it must be the stream's prefix, and (without an error) the rest is
  // exactly the partial frame held.
  std::string reframed;
  for (const FramePayload& f : whole.frames) {
    CHECK(!f.empty());
    const size_t bytes = f.size() * ballot::net::kFrameWordBytes;
    CHECK_LE(bytes, frame_bytes_max);
    uint8_t header[ballot::net::kFrameHeaderBytes];
    ballot::net::PutFrameHeader(static_cast<uint32_t>(bytes), header);
    reframed.append(reinterpret_cast<const char*>(header), sizeof(header));
    reframed.append(reinterpret_cast<const char*>(f.data()), bytes);
  }
  CHECK_LE(reframed.size(), stream.size());
  CHECK(std::memcmp(reframed.data(), stream.data(), reframed.size()) == 0);
  if (whole.status.ok()) {
    CHECK_EQ(reframed.size() + whole.buffered, stream.size());
    CHECK_EQ(whole.finish.ok(), whole.buffered == 0);
  } else {
    CHECK(!whole.finish.ok());
  }
}
