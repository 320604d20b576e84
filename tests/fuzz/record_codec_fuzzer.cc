// Fuzz target: store/record_codec.h, the byte format of everything LmdbStore keeps. A damaged or
// foreign data directory must give kCorruption, never a crash or a huge allocation.
//
// Input: byte 0 picks the decoder, the rest is its input. Properties:
//   - every payload decoder accepts exactly the canonical encoding: a successful decode
//     re-encodes to the same bytes;
//   - a record sealed under a key opens under that key, and any single flipped bit (in the
//     record or the key) or a different kind is kCorruption (CRC32C catches every 1-bit error).
#include <glog/logging.h>

#include <algorithm>
#include <string>
#include <string_view>

#include "store/record_codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using namespace ballot::store;
using ballot::Status;
using ballot::StatusCode;

void CheckRejected(const Status& s) {
  CHECK(!s.ok());
  CHECK(s.code() == StatusCode::kCorruption) << s.ToString();
}

// Decodes `in` with Decode, and if it succeeds, CHECKs that Encode gives `in` back.
template <typename T, typename Decode, typename Encode>
void CheckCanonical(std::string_view in, Decode decode, Encode encode) {
  T value{};
  Status s = decode(in, &value);
  if (!s.ok()) return CheckRejected(s);
  std::string out;
  encode(value, &out);
  CHECK(out == in) << "decode accepted a non-canonical encoding";
}

void FuzzSealedRecord(std::string_view in) {
  if (in.size() < 3) return;
  // Up to 8 bytes of key, always leaving the kind and flip bytes after it.
  const std::string key(in.substr(0, std::min<size_t>(8, in.size() - 2)));
  const auto kind = static_cast<RecordKind>(1 + static_cast<uint8_t>(in[key.size()]) % 6);
  const uint8_t flip = static_cast<uint8_t>(in[key.size() + 1]);
  const std::string_view payload = in.substr(key.size() + 2);
  std::string record;
  SealRecord(kind, key, payload, &record);
  std::string_view opened;
  Status s = OpenRecord(kind, key, record, "fuzz", &opened);
  CHECK(s.ok()) << s.ToString();
  CHECK(opened == payload);
  // The same record read as another kind, or with one bit flipped, must be refused.
  const auto other = static_cast<RecordKind>(1 + static_cast<uint8_t>(kind) % 6);
  CheckRejected(OpenRecord(other, key, record, "fuzz", &opened));
  std::string damaged = record;
  damaged[(flip / 8) % damaged.size()] ^= static_cast<char>(1 << (flip % 8));
  CheckRejected(OpenRecord(kind, key, damaged, "fuzz", &opened));
  std::string bad_key = key;
  bad_key[(flip / 8) % bad_key.size()] ^= static_cast<char>(1 << (flip % 8));
  CheckRejected(OpenRecord(kind, bad_key, record, "fuzz", &opened));
}

}  // namespace

BALLOT_FUZZ_TARGET(record_codec) {
  if (size < 1) return;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 10) {
    case 0:
      return CheckCanonical<ballot::paxos::Value>(in, DecodeValue, EncodeValue);
    case 1:
      return CheckCanonical<ballot::paxos::Entry>(
          in,
          [](std::string_view b, ballot::paxos::Entry* e) { return DecodeEntryPayload(7, b, e); },
          [](const ballot::paxos::Entry& e, std::string* out) {
            CHECK_EQ(e.slot, 7u);
            EncodeEntryPayload(e, out);
            CHECK_LE(out->size(), EntryPayloadBytes(e)) << "EntryPayloadBytes is not a bound";
          });
    case 2:
      return CheckCanonical<StoreIdentity>(in, DecodeIdentity, EncodeIdentity);
    case 3:
      return CheckCanonical<ballot::paxos::Ballot>(in, DecodeBallot, EncodeBallot);
    case 4:
      return CheckCanonical<ballot::paxos::Slot>(in, DecodeSlot, EncodeSlot);
    case 5:
      return CheckCanonical<SnapshotMeta>(in, DecodeSnapshotMeta, EncodeSnapshotMeta);
    case 6: {
      ballot::paxos::Slot below = 0;
      std::string snapshot;
      Status s = DecodeSnapshotData(in, &below, &snapshot);
      if (!s.ok()) return CheckRejected(s);
      std::string out;
      EncodeSnapshotData(below, snapshot, &out);
      CHECK(out == in);
      return;
    }
    case 7: {
      ballot::paxos::Slot slot = 0;
      Status s = DecodeSlotKey(in, &slot);
      if (!s.ok()) return CheckRejected(s);
      CHECK(SlotKey(slot) == in);
      return;
    }
    case 8: {
      // An arbitrary record under an arbitrary 8-byte key: almost always a checksum mismatch,
      // which must be reported, not crash; a short record must not be read past its end.
      const std::string_view key = in.substr(0, 8);
      std::string_view payload;
      for (uint8_t k = 1; k <= 6; ++k) {
        Status s =
            OpenRecord(static_cast<RecordKind>(k), key, in.substr(key.size()), "fuzz", &payload);
        if (!s.ok()) CheckRejected(s);
      }
      return;
    }
    default:
      return FuzzSealedRecord(in);
  }
}
