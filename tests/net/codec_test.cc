#include "net/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "net/ballot.capnp.h"
#include "tests/net/random_messages.h"

namespace ballot::net {
namespace {

using testing::RandomWire;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Splits an encoded frame back into its payload, checking the framing on the way.
FramePayload PayloadOf(const std::string& frame) {
  FrameDecoder decoder;
  std::vector<FramePayload> frames;
  Status s = decoder.Feed(Bytes(frame), &frames);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(frames.size(), 1u);
  return frames.empty() ? FramePayload() : frames[0];
}

Frame RoundTrip(const Frame& frame) {
  Result<std::string> encoded = EncodeFrame(frame);
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  if (!encoded.ok()) return Frame();
  Result<Frame> decoded = DecodeFrame(PayloadOf(encoded.value()));
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  return decoded.ok() ? decoded.value() : Frame();
}

// Serializes a hand-built (possibly invalid) wire message as a payload.
FramePayload PayloadOfBuilder(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  FramePayload payload(flat.size());
  std::memcpy(payload.data(), flat.begin(), flat.size() * sizeof(capnp::word));
  return payload;
}

void ExpectInvalid(const FramePayload& payload, const std::string& why) {
  Result<Frame> decoded = DecodeFrame(payload);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find(why), std::string::npos) << decoded.status().message();
}

TEST(Codec, HelloRoundTrips) {
  RandomWire rnd(1);
  for (int i = 0; i < 500; ++i) {
    Frame f = rnd.RandomHello();
    EXPECT_EQ(RoundTrip(f), f);
  }
}

TEST(Codec, EveryPeerMessageKindRoundTrips) {
  RandomWire rnd(2);
  for (int i = 0; i < 2000; ++i) {
    paxos::Message m = rnd.Message();
    m.type = static_cast<paxos::MessageType>(1 + i % 10);
    Frame f = std::vector<paxos::Message>{m};
    ASSERT_EQ(RoundTrip(f), f) << paxos::MessageTypeName(m.type) << " iteration " << i;
  }
}

TEST(Codec, ClientRequestsRoundTrip) {
  RandomWire rnd(3);
  for (int i = 0; i < 1000; ++i) {
    Frame f = rnd.Request();
    ASSERT_EQ(RoundTrip(f), f) << i;
  }
}

TEST(Codec, ClientResponsesRoundTrip) {
  RandomWire rnd(4);
  for (int i = 0; i < 1000; ++i) {
    Frame f = rnd.Response();
    ASSERT_EQ(RoundTrip(f), f) << i;
  }
}

TEST(Codec, WatchRequestsAndAnswersRoundTrip) {
  ClientRequest request;
  request.request_id = 7;
  request.kind = ClientRequest::Kind::kWatch;
  request.watch.query = std::string("\x04\x03job", 5);
  request.watch.after_slot = UINT64_MAX;
  request.watch.linearizable = true;
  request.watch.wait_ms = 2000;
  Frame f = request;
  ASSERT_EQ(RoundTrip(f), f);
  ClientResponse response;
  response.request_id = 7;
  response.watch_changed = true;
  response.watch_gap = true;
  response.slot = 42;
  response.data = "state";
  f = response;
  ASSERT_EQ(RoundTrip(f), f);
}

TEST(Codec, BatchedFrameKeepsOrderAndBoundHolds) {
  RandomWire rnd(5);
  for (int i = 0; i < 200; ++i) {
    std::vector<paxos::Message> batch = rnd.Batch(64);
    Result<std::string> encoded = EncodePeerBatch(batch);
    ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
    size_t bound = kPeerFrameOverheadBytes;
    for (const auto& m : batch) bound += PeerMessageBytesBound(m);
    EXPECT_LE(encoded.value().size() - kFrameHeaderBytes, bound);
    Result<Frame> decoded = DecodeFrame(PayloadOf(encoded.value()));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(std::get<std::vector<paxos::Message>>(decoded.value()), batch);
  }
}

TEST(Codec, SeveralFramesInOneStream) {
  RandomWire rnd(6);
  std::vector<Frame> sent;
  std::string stream;
  for (int i = 0; i < 100; ++i) {
    sent.push_back(rnd.AnyFrame());
    Result<std::string> encoded = EncodeFrame(sent.back());
    ASSERT_TRUE(encoded.ok());
    stream += encoded.value();
  }
  FrameDecoder decoder;
  std::vector<FramePayload> payloads;
  ASSERT_TRUE(decoder.Feed(Bytes(stream), &payloads).ok());
  ASSERT_EQ(payloads.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    Result<Frame> decoded = DecodeFrame(payloads[i]);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(decoded.value(), sent[i]);
  }
}

TEST(Codec, EncodeRefusesWhatAPeerWouldReject) {
  paxos::Message m;
  m.type = paxos::MessageType::kHeartbeat;
  m.from = 1;
  m.to = 2;
  ASSERT_TRUE(EncodePeerBatch(std::vector<paxos::Message>{m}).ok());
  EXPECT_FALSE(EncodePeerBatch({}).ok());

  paxos::Message bad = m;
  bad.from = paxos::kNoNode;
  EXPECT_FALSE(EncodePeerBatch(std::vector<paxos::Message>{bad}).ok());
  bad = m;
  bad.type = paxos::MessageType::kNone;
  EXPECT_FALSE(EncodePeerBatch(std::vector<paxos::Message>{bad}).ok());
  bad = m;
  bad.entries.push_back(paxos::Entry{});  // slot 0
  EXPECT_FALSE(EncodePeerBatch(std::vector<paxos::Message>{bad}).ok());
  bad = m;
  bad.ballot = paxos::Ballot::FromRaw(uint64_t{5} << 16);  // round 5, node 0
  EXPECT_FALSE(EncodePeerBatch(std::vector<paxos::Message>{bad}).ok());
  bad = m;
  bad.commit = kSlotMax + 1;
  EXPECT_FALSE(EncodePeerBatch(std::vector<paxos::Message>{bad}).ok());

  EXPECT_FALSE(EncodeHello(Hello{1, paxos::kNodeIdMax + 1, kProtocolVersion}).ok());
  ClientResponse r;
  r.code = static_cast<StatusCode>(999);
  EXPECT_FALSE(EncodeClientResponse(r).ok());
}

TEST(Codec, OversizedEncodeIsAnError) {
  paxos::Message m;
  m.type = paxos::MessageType::kAccept;
  m.from = 1;
  m.to = 2;
  paxos::Entry e;
  e.slot = 1;
  e.value.commands.resize(1);
  e.value.commands.mutable_at(0).payload.assign(kFrameBytesMax, 'x');
  m.entries.push_back(e);
  Result<std::string> encoded = EncodePeerBatch(std::vector<paxos::Message>{m});
  ASSERT_FALSE(encoded.ok());
  EXPECT_NE(encoded.status().message().find("exceeds"), std::string::npos);
}

// Wire messages that Cap'n Proto accepts but our validation must not.
TEST(Codec, RejectsSemanticallyInvalidWireMessages) {
  {
    capnp::MallocMessageBuilder b;
    auto peer = b.initRoot<wire::Frame>().initPeer(1);
    peer[0].setType(wire::MessageType::ACCEPT);
    peer[0].setFrom(0);
    peer[0].setTo(1);
    ExpectInvalid(PayloadOfBuilder(b), "not a node id");
  }
  {
    capnp::MallocMessageBuilder b;
    auto peer = b.initRoot<wire::Frame>().initPeer(1);
    peer[0].setType(static_cast<wire::MessageType>(77));
    peer[0].setFrom(1);
    peer[0].setTo(2);
    ExpectInvalid(PayloadOfBuilder(b), "unknown type");
  }
  {
    capnp::MallocMessageBuilder b;
    auto peer = b.initRoot<wire::Frame>().initPeer(1);
    peer[0].setType(wire::MessageType::ACCEPT);
    peer[0].setFrom(1);
    peer[0].setTo(70000);
    ExpectInvalid(PayloadOfBuilder(b), "not a node id");
  }
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::Frame>().initPeer(0);
    ExpectInvalid(PayloadOfBuilder(b), "empty batch");
  }
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::Frame>().initHello().setNodeId(65536);
    ExpectInvalid(PayloadOfBuilder(b), "node id");
  }
  {
    capnp::MallocMessageBuilder b;
    auto joined = b.initRoot<wire::Frame>().initHello().initJoinedMembers(2);
    joined.set(0, 3);
    joined.set(1, 2);
    ExpectInvalid(PayloadOfBuilder(b), "increasing order");
  }
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::Frame>().initHello().initTiming(kTimingValuesMax + 1);
    ExpectInvalid(PayloadOfBuilder(b), "too many timing fields");
  }
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::Frame>().initHello().initTiming(1)[0].setName(
        std::string(kTimingNameBytesMax + 1, 'x'));
    ExpectInvalid(PayloadOfBuilder(b), "longer than");
  }
  {
    capnp::MallocMessageBuilder b;
    b.initRoot<wire::Frame>().initHello().setDataState(static_cast<wire::DataState>(7));
    ExpectInvalid(PayloadOfBuilder(b), "unknown data state");
  }
  {
    capnp::MallocMessageBuilder b;
    auto r = b.initRoot<wire::Frame>().initResponse();
    r.setOutcomeCode(500);
    ExpectInvalid(PayloadOfBuilder(b), "status code");
  }
}

TEST(Codec, RejectsTrailingWordsAndMalformedSegmentTables) {
  Result<std::string> encoded = EncodeHello(Hello{7, 1, kProtocolVersion});
  ASSERT_TRUE(encoded.ok());
  FramePayload payload = PayloadOf(encoded.value());
  payload.push_back(0);
  ExpectInvalid(payload, "trailing");

  ExpectInvalid(FramePayload{}, "empty");
  ExpectInvalid(FramePayload{0x000000000000FFFFull}, "malformed");  // 65536 segments
  ExpectInvalid(FramePayload{0x0000010000000000ull}, "malformed");  // segment longer than frame
}

TEST(Codec, UnknownUnionMembersAreRejected) {
  Result<std::string> encoded = EncodeClientRequest(ClientRequest{});
  ASSERT_TRUE(encoded.ok());
  FramePayload payload = PayloadOf(encoded.value());
  // Word 0 is the segment table, word 1 the root pointer, word 2 the Frame's data section whose
  // first 16 bits are the union discriminant.
  payload[2] = (payload[2] & ~uint64_t{0xFFFF}) | 9;
  ExpectInvalid(payload, "unknown kind");
}

// Builds a peer frame of `messages` heartbeats where the first `aliased` messages' slot lists all
// point at the same `slots`-long list: small on the wire, large to traverse.
FramePayload AliasedSlotsFrame(unsigned messages, unsigned aliased, unsigned slots) {
  capnp::MallocMessageBuilder b(8 * 1024 * 1024 / 8);
  auto list = b.initRoot<wire::Frame>().initPeer(messages);
  for (unsigned i = 0; i < messages; ++i) {
    list[i].setType(wire::MessageType::HEARTBEAT);
    list[i].setFrom(1);
    list[i].setTo(2);
  }
  auto shared = list[0].initSlots(slots);
  for (unsigned i = 0; i < slots; ++i) shared.set(i, i + 1);
  FramePayload payload = PayloadOfBuilder(b);
  EXPECT_EQ(b.getSegmentsForOutput().size(), 1u);
  // Segment words: 0 root pointer, 1-2 Frame (1 data word, 1 pointer), 3 the list tag, then
  // the messages (data words, then the pointers: entries, slots, data), then the shared slot
  // list. Payload word 0 is the segment table, so segment word w is payload[w + 1].
  constexpr uint64_t kDataWords = wire::PeerMessage::_capnpPrivate::dataWordSize;
  constexpr uint64_t kMessageWords = kDataWords + wire::PeerMessage::_capnpPrivate::pointerCount;
  const uint64_t target = 4 + kMessageWords * uint64_t{messages};
  for (unsigned i = 1; i < aliased; ++i) {
    const uint64_t at = 4 + kMessageWords * uint64_t{i} + kDataWords + 1;  // its slots pointer
    const uint64_t offset = target - (at + 1);
    payload[at + 1] = 1 | offset << 2 | uint64_t{5} << 32 | uint64_t{slots} << 35;
  }
  return payload;
}

TEST(Codec, PointerAmplificationIsRejected) {
  // Two aliases: honest-sized traversal, so it decodes (and proves the crafting is right).
  Result<Frame> small = DecodeFrame(AliasedSlotsFrame(2000, 2, 2000));
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  const auto& batch = std::get<std::vector<paxos::Message>>(small.value());
  EXPECT_EQ(batch[1].slots, batch[0].slots);
  EXPECT_TRUE(batch[2].slots.empty());
  // 2000 aliases of a 2000-slot list: 4M words to read from a 22k-word frame. Cap'n Proto's
  // traversal limit or our object budget, whichever trips first, must refuse it.
  Result<Frame> amplified = DecodeFrame(AliasedSlotsFrame(2000, 2000, 2000));
  ASSERT_FALSE(amplified.ok());
  const std::string& why = amplified.status().message();
  EXPECT_TRUE(why.find("traversal limit") != std::string::npos ||
              why.find("than its size can hold") != std::string::npos)
      << why;
}

// An accept with `commands` commands whose payloads all point at command 0's `bytes`-long
// payload: the object count is honest, only the bytes are amplified.
FramePayload AliasedPayloadsFrame(uint32_t commands, uint32_t bytes) {
  capnp::MallocMessageBuilder b(1 << 16);  // one segment, so words sit where computed below
  auto m = b.initRoot<wire::Frame>().initPeer(1)[0];
  m.setType(wire::MessageType::ACCEPT);
  m.setFrom(1);
  m.setTo(2);
  auto e = m.initEntries(1)[0];
  e.setSlot(1);
  auto list = e.initValue().initCommands(commands);
  list[0].initPayload(bytes);
  FramePayload payload = PayloadOfBuilder(b);
  EXPECT_EQ(b.getSegmentsForOutput().size(), 1u);
  static_assert(wire::Command::_capnpPrivate::dataWordSize == 5);
  static_assert(wire::Command::_capnpPrivate::pointerCount == 1);
  const uint64_t tag = uint64_t{commands} << 2 | uint64_t{5} << 32 | uint64_t{1} << 48;
  size_t t = 0;
  while (t < payload.size() && payload[t] != tag) ++t;
  EXPECT_LT(t, payload.size());
  const size_t first_pointer = t + 1 + 5;  // command 0's payload pointer
  const uint64_t offset0 = payload[first_pointer] >> 2 & 0x3FFFFFFF;
  const size_t target = first_pointer + 1 + offset0;
  for (uint32_t i = 1; i < commands && t < payload.size(); ++i) {
    const size_t at = t + 1 + 6 * size_t{i} + 5;
    const uint64_t offset = target - (at + 1);  // negative offsets are not needed here
    payload[at] = 1 | offset << 2 | uint64_t{2} << 32 | uint64_t{bytes} << 35;  // List(UInt8)
  }
  return payload;
}

TEST(Codec, TraversalLimitStopsByteAmplification) {
  Result<Frame> honest = DecodeFrame(AliasedPayloadsFrame(3, 800));
  ASSERT_TRUE(honest.ok()) << honest.status().ToString();
  const auto& cmds = std::get<std::vector<paxos::Message>>(honest.value())[0].entries[0].value;
  EXPECT_EQ(cmds.commands[2].payload.size(), 800u);
  // 1000 x 8000 bytes (1M words) from a ~7k-word frame: within Cap'n Proto's default limit
  // (8M words), so only our frame-sized limit stops it.
  const FramePayload amplified = AliasedPayloadsFrame(1000, 8000);
  size_t bytes_with_default_limit = 0;
  try {
    capnp::FlatArrayMessageReader reader(
        kj::arrayPtr(reinterpret_cast<const capnp::word*>(amplified.data()), amplified.size()));
    auto value = reader.getRoot<wire::Frame>().getPeer()[0].getEntries()[0].getValue();
    for (auto c : value.getCommands()) bytes_with_default_limit += c.getPayload().size();
  } catch (const kj::Exception& e) {
    ADD_FAILURE() << e.getDescription().cStr();
  }
  EXPECT_EQ(bytes_with_default_limit, 1000u * 8000u);
  ExpectInvalid(amplified, "traversal limit");
}

// An accept whose one value's command list is rewritten into `count` zero-sized structs: one
// word on the wire however many elements it claims.
FramePayload ZeroSizedCommandsFrame(uint32_t count) {
  capnp::MallocMessageBuilder b;
  auto m = b.initRoot<wire::Frame>().initPeer(1)[0];
  m.setType(wire::MessageType::ACCEPT);
  m.setFrom(1);
  m.setTo(2);
  auto e = m.initEntries(1)[0];
  e.setSlot(1);
  e.initValue().initCommands(1);
  FramePayload payload = PayloadOfBuilder(b);
  const uint64_t tag = uint64_t{1} << 2 | uint64_t{5} << 32 | uint64_t{1} << 48;  // 1 x (5, 1)
  int patched = 0;
  for (uint64_t& w : payload) {
    const bool composite_list_of_6_words = (w & 3) == 1 && (w >> 32 & 7) == 7 && w >> 35 == 6;
    if (composite_list_of_6_words) {
      w &= (uint64_t{1} << 35) - 1;  // now 0 words of elements
      ++patched;
    } else if (w == tag) {
      w = uint64_t{count} << 2;  // count elements of 0 data words and 0 pointers
      ++patched;
    }
  }
  EXPECT_EQ(patched, 2);
  return payload;
}

TEST(Codec, FrameCannotClaimMoreObjectsThanItsSizeHolds) {
  Result<Frame> one = DecodeFrame(ZeroSizedCommandsFrame(1));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(std::get<std::vector<paxos::Message>>(one.value())[0].entries[0].value.commands.size(),
            1u);
  // Within Cap'n Proto's traversal limit, but 1000 Command objects from a ~30-word frame.
  ExpectInvalid(ZeroSizedCommandsFrame(1000), "more commands");
}

TEST(Codec, GarbagePayloadsNeverCrash) {
  RandomWire rnd(8);
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    FramePayload payload(1 + rnd.Below(64));
    for (auto& w : payload) w = rnd.AnyU64();
    if (rnd.Coin()) payload[0] = rnd.Below(4) | (rnd.Below(64) << 32);  // plausible table
    ok += DecodeFrame(payload).ok() ? 1 : 0;
  }
  SUCCEED() << ok << " garbage payloads happened to decode";
}

TEST(Codec, GarbageStreamsNeverCrash) {
  RandomWire rnd(9);
  for (int i = 0; i < 2000; ++i) {
    const std::string garbage = rnd.Bytes(4096);
    FrameDecoder decoder;
    std::vector<FramePayload> payloads;
    Status s = decoder.Feed(Bytes(garbage), &payloads);
    for (const auto& p : payloads) (void)DecodeFrame(p);
    if (s.ok()) (void)decoder.Finish();
    EXPECT_LE(decoder.TEST_payload_capacity_bytes(), size_t{64} << 10);
  }
}

// Flips random bytes of valid frames, prefix included: each must decode cleanly or be rejected
// cleanly; whatever decodes must be valid enough to encode again.
TEST(Codec, MutatedFramesDecodeOrFailCleanly) {
  RandomWire rnd(10);
  int decoded_ok = 0, framing_errors = 0, decode_errors = 0;
  for (int i = 0; i < 20000; ++i) {
    Result<std::string> encoded = EncodeFrame(rnd.AnyFrame());
    ASSERT_TRUE(encoded.ok());
    std::string bytes = encoded.value();
    const int flips = 1 + static_cast<int>(rnd.Below(4));
    for (int f = 0; f < flips; ++f) {
      bytes[rnd.Below(bytes.size())] ^= static_cast<char>(1 + rnd.Below(255));
    }
    FrameDecoder decoder;
    std::vector<FramePayload> payloads;
    if (!decoder.Feed(Bytes(bytes), &payloads).ok() || !decoder.Finish().ok()) {
      ++framing_errors;
      EXPECT_LE(decoder.TEST_payload_capacity_bytes(), size_t{64} << 10);
    }
    for (const auto& p : payloads) {
      Result<Frame> decoded = DecodeFrame(p);
      if (!decoded.ok()) {
        EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
        ++decode_errors;
        continue;
      }
      ++decoded_ok;
      Result<std::string> again = EncodeFrame(decoded.value());
      EXPECT_TRUE(again.ok()) << again.status().ToString();
    }
  }
  EXPECT_GT(decoded_ok, 0);
  EXPECT_GT(decode_errors + framing_errors, 0);
  RecordProperty("decoded_ok", decoded_ok);
  RecordProperty("decode_errors", decode_errors);
  RecordProperty("framing_errors", framing_errors);
}

}  // namespace
}  // namespace ballot::net
