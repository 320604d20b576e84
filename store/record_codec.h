// The byte format of everything LmdbStore keeps, and its checksummed record framing.
//
// Every integer is little-endian and fixed-width, except slot keys, which are 8-byte big-endian
// so that LMDB's byte-wise key order is slot order. Decoding never trusts a length: each read is
// checked against the bytes left, element counts are bounded by what the remaining bytes could
// hold before anything is reserved, and trailing bytes are an error. Any malformed input yields
// kCorruption, never a crash or a huge allocation.
//
// A record (the LMDB value) is
//     crc32c (4 bytes LE) | kind (1 byte) | payload
// where the CRC covers the record's LMDB key, the kind byte and the payload. Covering the key
// catches a record that is intact but found under the wrong key; the kind catches a record of one
// type read as another.
#ifndef BALLOT_STORE_RECORD_CODEC_H_
#define BALLOT_STORE_RECORD_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "paxos/ready.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::store {

// Bumped when the stored format changes incompatibly; a store written by a newer format is refused.
inline constexpr uint32_t kStoreFormatVersion = 1;

enum class RecordKind : uint8_t {
  kIdentity = 1,
  kPromised = 2,
  kChosenBelow = 3,
  kSnapshotMeta = 4,
  kSnapshotData = 5,
  kEntry = 6,
  kJournalSeq = 7,  // meta "journal_seq": the last journal record folded into LMDB
};
const char* RecordKindName(RecordKind kind);

inline constexpr size_t kRecordCrcBytes = 4;
inline constexpr size_t kRecordHeaderBytes = kRecordCrcBytes + 1;  // crc32c + kind
inline constexpr size_t kSlotKeyBytes = 8;

// Which cluster and node a data directory belongs to; written once, at the first open.
struct StoreIdentity {
  uint32_t format_version = kStoreFormatVersion;
  uint64_t cluster_id = 0;
  paxos::NodeId node_id = paxos::kNoNode;
  friend bool operator==(const StoreIdentity&, const StoreIdentity&) = default;
};

// The small, always-read half of a snapshot; the data lives in its own record.
struct SnapshotMeta {
  paxos::Slot applied_below = 1;
  uint64_t data_bytes = 0;
  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

// --- Record framing ---
// The framing itself, for any kind byte and any `scope`: the bytes the checksum binds the record
// to besides its kind and payload (LmdbStore: the record's key; FenceStore adds its database).
void SealRecordBytes(uint8_t kind, std::string_view scope, std::string_view payload,
                     std::string* out);
void SealRecordBytesInPlace(uint8_t kind, std::string_view scope, char* record,
                            size_t record_bytes);
// `kind_name` only names the expected kind in the error.
Status OpenRecordBytes(uint8_t kind, std::string_view kind_name, std::string_view scope,
                       std::string_view record, std::string_view what, std::string_view* payload);

// LmdbStore's records: the scope is the key.

// Appends to *out the record holding `payload` under `key`.
void SealRecord(RecordKind kind, std::string_view key, std::string_view payload, std::string* out);

// In-place sealing, to avoid copying a large payload: `record` has room for the header
// (kRecordHeaderBytes) followed by the payload already written; fills in the header.
void SealRecordInPlace(RecordKind kind, std::string_view key, char* record, size_t record_bytes);

// Verifies the checksum and kind of `record` stored under `key`. On success *payload views the
// payload inside `record`. On failure returns kCorruption naming `what` (e.g. "slot 42").
Status OpenRecord(RecordKind kind, std::string_view key, std::string_view record,
                  std::string_view what, std::string_view* payload);

// --- Keys ---

// 8 bytes, big-endian.
std::string SlotKey(paxos::Slot slot);
// kCorruption unless `key` is 8 bytes naming a slot >= 1.
Status DecodeSlotKey(std::string_view key, paxos::Slot* slot);

// --- Payloads ---
// Encode* append to *out. Decode* consume exactly the whole input.

void EncodeValue(const paxos::Value& value, std::string* out);
Status DecodeValue(std::string_view in, paxos::Value* value);
// A configuration (paxos/configuration.h) by itself, e.g. in a snapshot; empty is allowed.
void EncodeConfiguration(const paxos::Configuration& config, std::string* out);
Status DecodeConfiguration(std::string_view in, paxos::Configuration* config);

// An entry's payload is its ballot and value; its slot is the record's key.
void EncodeEntryPayload(const paxos::Entry& entry, std::string* out);
Status DecodeEntryPayload(paxos::Slot slot, std::string_view in, paxos::Entry* entry);

void EncodeIdentity(const StoreIdentity& identity, std::string* out);
Status DecodeIdentity(std::string_view in, StoreIdentity* identity);

void EncodeBallot(paxos::Ballot ballot, std::string* out);
Status DecodeBallot(std::string_view in, paxos::Ballot* ballot);

void EncodeSlot(paxos::Slot slot, std::string* out);
Status DecodeSlot(std::string_view in, paxos::Slot* slot);

void EncodeSnapshotMeta(const SnapshotMeta& meta, std::string* out);
Status DecodeSnapshotMeta(std::string_view in, SnapshotMeta* meta);

// The snapshot data record repeats applied_below so a data record can never pair with the
// metadata of another snapshot.
void EncodeSnapshotData(paxos::Slot applied_below, std::string_view data, std::string* out);
Status DecodeSnapshotData(std::string_view in, paxos::Slot* applied_below, std::string* data);

// A whole persist batch, as one journal record's payload (store/journal.h):
//   flags u8 (1 = promised, 2 = chosen_below) | [promised u64] | [chosen_below u64] |
//   entry count u32 | per entry: slot u64, payload length u32, EncodeEntryPayload bytes
void EncodeBatchPayload(const paxos::PersistBatch& batch, std::string* out);
Status DecodeBatchPayload(std::string_view in, paxos::PersistBatch* batch);

// Upper bound of EncodeEntryPayload's output size, without encoding.
size_t EntryPayloadBytes(const paxos::Entry& entry);

}  // namespace ballot::store

#endif  // BALLOT_STORE_RECORD_CODEC_H_
