#include "net/frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace ballot::net {
namespace {

std::string Header(uint32_t length) {
  uint8_t h[kFrameHeaderBytes];
  PutFrameHeader(length, h);
  return std::string(reinterpret_cast<const char*>(h), kFrameHeaderBytes);
}

// A frame whose payload is `words` words counting up from `first`.
std::string MakeFrame(size_t words, uint64_t first, FramePayload* payload) {
  payload->clear();
  for (size_t i = 0; i < words; ++i) payload->push_back(first + i);
  std::string out = Header(static_cast<uint32_t>(words * 8));
  out.append(reinterpret_cast<const char*>(payload->data()), words * 8);
  return out;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(FrameHeader, IsLittleEndian) {
  EXPECT_EQ(Header(0x04030201), std::string("\x01\x02\x03\x04", 4));
}

TEST(FrameDecoder, WholeFramesInOneChunk) {
  std::vector<FramePayload> expected(3);
  std::string stream;
  for (size_t i = 0; i < expected.size(); ++i) stream += MakeFrame(i + 1, 100 * i, &expected[i]);

  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  ASSERT_TRUE(decoder.Feed(Bytes(stream), &frames).ok());
  EXPECT_EQ(frames, expected);
  EXPECT_EQ(decoder.buffered_bytes(), 0u);
  EXPECT_TRUE(decoder.Finish().ok());
}

TEST(FrameDecoder, RandomChunkingGivesTheSameFrames) {
  std::mt19937_64 rng(7);
  std::vector<FramePayload> expected(50);
  std::string stream;
  for (size_t i = 0; i < expected.size(); ++i) {
    stream += MakeFrame(1 + rng() % 300, rng(), &expected[i]);
  }
  for (int round = 0; round < 20; ++round) {
    FrameDecoder decoder;
    std::vector<FramePayload> frames;
    for (size_t at = 0; at < stream.size();) {
      const size_t n = std::min<size_t>(stream.size() - at, 1 + rng() % (round < 5 ? 3 : 2000));
      ASSERT_TRUE(decoder.Feed(Bytes(stream.substr(at, n)), &frames).ok());
      at += n;
    }
    EXPECT_EQ(frames, expected) << "round " << round;
    EXPECT_TRUE(decoder.Finish().ok());
  }
}

TEST(FrameDecoder, RejectsZeroLength) {
  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  Status s = decoder.Feed(Bytes(Header(0)), &frames);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("zero length"), std::string::npos) << s.message();
}

TEST(FrameDecoder, RejectsLengthNotAMultipleOfEight) {
  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  Status s = decoder.Feed(Bytes(Header(12) + std::string(12, 'x')), &frames);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("multiple of 8"), std::string::npos) << s.message();
  EXPECT_TRUE(frames.empty());
}

TEST(FrameDecoder, RejectsOversizedLengthBeforeAllocating) {
  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  Status s = decoder.Feed(Bytes(Header(kFrameBytesMax + 8)), &frames);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("exceeds the maximum"), std::string::npos) << s.message();
  EXPECT_EQ(decoder.TEST_payload_capacity_bytes(), 0u);
  // The largest 32-bit length, too.
  FrameDecoder decoder2;
  EXPECT_FALSE(decoder2.Feed(Bytes(Header(0xFFFFFFF8)), &frames).ok());
  EXPECT_EQ(decoder2.TEST_payload_capacity_bytes(), 0u);
}

TEST(FrameDecoder, ErrorIsStickyButEarlierFramesSurvive) {
  FramePayload first;
  std::string stream = MakeFrame(2, 1, &first) + Header(3) + MakeFrame(1, 9, &first);
  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  EXPECT_FALSE(decoder.Feed(Bytes(stream), &frames).ok());
  EXPECT_EQ(frames.size(), 1u);
  EXPECT_FALSE(decoder.Feed(Bytes(MakeFrame(1, 1, &first)), &frames).ok());
  EXPECT_EQ(frames.size(), 1u);
  EXPECT_FALSE(decoder.Finish().ok());
}

TEST(FrameDecoder, LoweredMaximumApplies) {
  FrameDecoder decoder(64);
  std::vector<FramePayload> frames;
  FramePayload payload;
  EXPECT_TRUE(decoder.Feed(Bytes(MakeFrame(8, 0, &payload)), &frames).ok());
  EXPECT_FALSE(decoder.Feed(Bytes(MakeFrame(9, 0, &payload)), &frames).ok());
  EXPECT_EQ(frames.size(), 1u);
}

// The transport raises the limit after the handshake frame; a bigger frame that arrived in the
// same chunk must be judged by the new limit.
TEST(FrameDecoder, SinkCanChangeTheLimitBetweenFramesOfOneChunk) {
  FramePayload small, big;
  const std::string stream = MakeFrame(1, 0, &small) + MakeFrame(100, 0, &big);
  FrameDecoder decoder(8);
  std::vector<FramePayload> frames;
  Status s = decoder.Feed(Bytes(stream), [&](FramePayload&& frame) {
    frames.push_back(std::move(frame));
    decoder.set_frame_bytes_max(kFrameBytesMax);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(frames, (std::vector<FramePayload>{small, big}));
}

TEST(FrameDecoder, SinkErrorStopsTheStream) {
  FramePayload payload;
  const std::string stream = MakeFrame(1, 0, &payload) + MakeFrame(1, 1, &payload);
  FrameDecoder decoder;
  int calls = 0;
  Status s = decoder.Feed(Bytes(stream), [&](FramePayload&&) {
    ++calls;
    return Status(StatusCode::kInvalidArgument, "no thanks");
  });
  EXPECT_EQ(s.message(), "no thanks");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(decoder.Finish().message(), "no thanks");
}

TEST(FrameDecoder, LargeClaimAllocatesOnlyAsBytesArrive) {
  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  ASSERT_TRUE(decoder.Feed(Bytes(Header(kFrameBytesMax) + std::string(8, 'a')), &frames).ok());
  EXPECT_LE(decoder.TEST_payload_capacity_bytes(), size_t{64} << 10);
  EXPECT_EQ(decoder.buffered_bytes(), kFrameHeaderBytes + 8);
  Status s = decoder.Finish();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
}

TEST(FrameDecoder, TruncatedAtEveryPoint) {
  FramePayload payload;
  const std::string frame = MakeFrame(3, 5, &payload);
  for (size_t cut = 1; cut < frame.size(); ++cut) {
    FrameDecoder decoder;
    std::vector<FramePayload> frames;
    ASSERT_TRUE(decoder.Feed(Bytes(frame.substr(0, cut)), &frames).ok());
    EXPECT_TRUE(frames.empty());
    Status s = decoder.Finish();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "cut at " << cut;
  }
}

TEST(FrameDecoder, MaximumSizeFrameDecodes) {
  FramePayload payload;
  const std::string frame = MakeFrame(kFrameBytesMax / 8, 0, &payload);
  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  for (size_t at = 0; at < frame.size(); at += 65536) {
    ASSERT_TRUE(decoder.Feed(Bytes(frame.substr(at, 65536)), &frames).ok());
  }
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0], payload);
  EXPECT_EQ(frames[0].capacity(), payload.size()) << "capacity must not overshoot the frame";
}

}  // namespace
}  // namespace ballot::net
