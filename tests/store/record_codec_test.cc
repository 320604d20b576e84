#include "store/record_codec.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::MakeCommand;
using testing::MakeEntry;

paxos::Entry FullEntry() {
  paxos::Entry e;
  e.slot = 0x0102030405060708ULL;
  e.ballot = paxos::Ballot(9, 3);
  e.value.epoch = paxos::Ballot(8, 2);
  e.value.leader_start = true;
  e.value.commands.push_back(MakeCommand(1, 2, "hello"));
  e.value.commands.push_back(MakeCommand(~0ULL, ~0ULL, std::string("\0\xff\n", 3)));
  e.value.commands.push_back(MakeCommand(0, 0, ""));
  return e;
}

TEST(RecordCodecTest, EntryRoundTripsEveryField) {
  const paxos::Entry e = FullEntry();
  std::string bytes;
  EncodeEntryPayload(e, &bytes);
  EXPECT_EQ(bytes.size(), EntryPayloadBytes(e));
  paxos::Entry got;
  ASSERT_TRUE(DecodeEntryPayload(e.slot, bytes, &got).ok());
  EXPECT_EQ(got, e);
}

TEST(RecordCodecTest, NoopRoundTrips) {
  paxos::Entry e;
  e.slot = 5;
  e.ballot = paxos::Ballot(1, 1);
  e.value.epoch = paxos::Ballot(1, 1);
  std::string bytes;
  EncodeEntryPayload(e, &bytes);
  paxos::Entry got;
  ASSERT_TRUE(DecodeEntryPayload(5, bytes, &got).ok());
  EXPECT_EQ(got, e);
  EXPECT_TRUE(got.value.IsNoop());
}

TEST(RecordCodecTest, IntegersAreLittleEndian) {
  std::string bytes;
  EncodeBallot(paxos::Ballot::FromRaw(0x0102030405060708ULL), &bytes);
  EXPECT_EQ(bytes, std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
}

TEST(RecordCodecTest, SlotKeysAreBigEndianAndSortInSlotOrder) {
  EXPECT_EQ(SlotKey(1), std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_EQ(SlotKey(0x0102030405060708ULL), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  const paxos::Slot slots[] = {1,    2, 255, 256, 257, 65535, 65536, 1ULL << 32, (1ULL << 40) + 3,
                               ~0ULL};
  for (size_t i = 1; i < std::size(slots); ++i) {
    EXPECT_LT(SlotKey(slots[i - 1]), SlotKey(slots[i])) << slots[i];
    paxos::Slot back = 0;
    ASSERT_TRUE(DecodeSlotKey(SlotKey(slots[i]), &back).ok());
    EXPECT_EQ(back, slots[i]);
  }
  paxos::Slot s;
  EXPECT_EQ(DecodeSlotKey(SlotKey(0), &s).code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeSlotKey("short", &s).code(), StatusCode::kCorruption);
}

TEST(RecordCodecTest, EveryTruncationIsCorruption) {
  std::string bytes;
  EncodeEntryPayload(FullEntry(), &bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    paxos::Entry got;
    const Status s = DecodeEntryPayload(1, std::string_view(bytes).substr(0, n), &got);
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << "length " << n;
  }
}

TEST(RecordCodecTest, TrailingBytesAreCorruption) {
  std::string bytes;
  EncodeEntryPayload(FullEntry(), &bytes);
  bytes.push_back('x');
  paxos::Entry got;
  const Status s = DecodeEntryPayload(1, bytes, &got);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("trailing"), std::string::npos) << s.message();
}

TEST(RecordCodecTest, HugeCountsAreRejectedBeforeAllocating) {
  // A value claiming 2^32-1 commands in 13 bytes must not reserve anything.
  std::string bytes;
  EncodeValue(paxos::Value{}, &bytes);
  bytes[9] = bytes[10] = bytes[11] = bytes[12] = '\xff';
  paxos::Value v;
  Status s = DecodeValue(bytes, &v);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("4294967295 commands"), std::string::npos) << s.message();

  // A command claiming a 4 GiB payload.
  paxos::Value one;
  one.commands.push_back(MakeCommand(1, 1, "abc"));
  bytes.clear();
  EncodeValue(one, &bytes);
  const size_t len_at = 8 + 1 + 4 + 5 * 8;
  bytes[len_at] = bytes[len_at + 1] = bytes[len_at + 2] = bytes[len_at + 3] = '\xff';
  s = DecodeValue(bytes, &v);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
}

TEST(RecordCodecTest, UnknownFlagBitsAreCorruption) {
  std::string bytes;
  EncodeValue(paxos::Value{}, &bytes);
  bytes[8] = '\x02';
  paxos::Value v;
  EXPECT_EQ(DecodeValue(bytes, &v).code(), StatusCode::kCorruption);
}

TEST(RecordCodecTest, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(7);
  std::string good;
  EncodeEntryPayload(FullEntry(), &good);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 200);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {  // mutate a valid encoding
      bytes = good;
      for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      }
    }
    paxos::Entry got;
    const Status s = DecodeEntryPayload(1, bytes, &got);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), StatusCode::kCorruption);
    }
  }
}

TEST(RecordFramingTest, SealedRecordOpens) {
  std::string record;
  SealRecord(RecordKind::kPromised, "promised", "12345678", &record);
  EXPECT_EQ(record.size(), kRecordHeaderBytes + 8);
  std::string_view payload;
  ASSERT_TRUE(OpenRecord(RecordKind::kPromised, "promised", record, "promised", &payload).ok());
  EXPECT_EQ(payload, "12345678");

  std::string in_place(kRecordHeaderBytes, '\0');
  in_place += "12345678";
  SealRecordInPlace(RecordKind::kPromised, "promised", in_place.data(), in_place.size());
  EXPECT_EQ(in_place, record);
}

TEST(RecordFramingTest, EveryBitFlipIsCaughtAndNamed) {
  std::string payload;
  EncodeEntryPayload(MakeEntry(42, paxos::Ballot(3, 1)), &payload);
  const std::string key = SlotKey(42);
  std::string record;
  SealRecord(RecordKind::kEntry, key, payload, &record);
  for (size_t bit = 0; bit < record.size() * 8; ++bit) {
    std::string bad = record;
    bad[bit / 8] ^= static_cast<char>(1 << (bit % 8));
    std::string_view got;
    const Status s = OpenRecord(RecordKind::kEntry, key, bad, "slot 42", &got);
    ASSERT_EQ(s.code(), StatusCode::kCorruption) << "bit " << bit;
    EXPECT_EQ(s.message().rfind("slot 42:", 0), 0u) << s.message();
  }
}

TEST(RecordFramingTest, WrongKeyOrKindIsCorruption) {
  std::string record;
  SealRecord(RecordKind::kEntry, SlotKey(1), "payload", &record);
  std::string_view got;
  EXPECT_EQ(OpenRecord(RecordKind::kEntry, SlotKey(2), record, "slot 2", &got).code(),
            StatusCode::kCorruption);
  const Status s = OpenRecord(RecordKind::kPromised, SlotKey(1), record, "x", &got);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("kind"), std::string::npos) << s.message();
  EXPECT_EQ(OpenRecord(RecordKind::kEntry, SlotKey(1), "abc", "x", &got).code(),
            StatusCode::kCorruption);
}

TEST(RecordCodecTest, MetaPayloadsRoundTrip) {
  std::string bytes;
  const StoreIdentity id{kStoreFormatVersion, 0xdeadbeefcafeULL, 65535};
  EncodeIdentity(id, &bytes);
  StoreIdentity got_id;
  ASSERT_TRUE(DecodeIdentity(bytes, &got_id).ok());
  EXPECT_EQ(got_id, id);

  bytes.clear();
  EncodeSnapshotMeta(SnapshotMeta{77, 1234}, &bytes);
  SnapshotMeta meta;
  ASSERT_TRUE(DecodeSnapshotMeta(bytes, &meta).ok());
  EXPECT_EQ(meta, (SnapshotMeta{77, 1234}));

  bytes.clear();
  EncodeSnapshotData(77, "state", &bytes);
  paxos::Slot below = 0;
  std::string data;
  ASSERT_TRUE(DecodeSnapshotData(bytes, &below, &data).ok());
  EXPECT_EQ(below, 77u);
  EXPECT_EQ(data, "state");

  bytes.clear();
  EncodeSlot(0, &bytes);
  paxos::Slot slot;
  EXPECT_EQ(DecodeSlot(bytes, &slot).code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace ballot::store
