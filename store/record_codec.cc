#include "store/record_codec.h"

#include <cstdio>
#include <limits>

#include "statemachine/byte_codec.h"
#include "store/checksum.h"
#include "store/status_macros.h"

namespace ballot::store {
namespace {

constexpr size_t kCommandFixedBytes = 5 * 8 + 4;  // five u64 fields and the payload length
constexpr size_t kValueFixedBytes = 8 + 1 + 4;    // epoch, flags, command count
constexpr uint8_t kValueFlagLeaderStart = 0x01;
constexpr uint8_t kValueFlagConfig = 0x02;  // a membership change follows the commands
constexpr uint8_t kValueFlagsKnown = kValueFlagLeaderStart | kValueFlagConfig;
constexpr size_t kMemberFixedBytes = 4 + 1 + 4;  // id, voter, address length

void PutU8(uint8_t v, std::string* out) { out->push_back(static_cast<char>(v)); }
void PutU32(uint32_t v, std::string* out) { AppendLe32(v, out); }
void PutU64(uint64_t v, std::string* out) { AppendLe64(v, out); }

Status Corrupt(std::string message) { return Status(StatusCode::kCorruption, std::move(message)); }

// Reads fixed-width little-endian fields from untrusted bytes; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  size_t remaining() const { return in_.size() - pos_; }

  Status U8(const char* field, uint8_t* v) {
    if (Status s = Need(field, 1); !s.ok()) return s;
    *v = static_cast<uint8_t>(in_[pos_++]);
    return Status::Ok();
  }
  Status U32(const char* field, uint32_t* v) {
    if (Status s = Need(field, 4); !s.ok()) return s;
    *v = LoadLe32(in_.data() + pos_);
    pos_ += 4;
    return Status::Ok();
  }
  Status U64(const char* field, uint64_t* v) {
    if (Status s = Need(field, 8); !s.ok()) return s;
    *v = LoadLe64(in_.data() + pos_);
    pos_ += 8;
    return Status::Ok();
  }
  Status Bytes(const char* field, size_t n, std::string_view* v) {
    if (Status s = Need(field, n); !s.ok()) return s;
    *v = in_.substr(pos_, n);
    pos_ += n;
    return Status::Ok();
  }
  Status End(const char* what) const {
    if (remaining() == 0) return Status::Ok();
    return Corrupt(std::string(what) + ": " + std::to_string(remaining()) +
                   " unexpected trailing bytes at offset " + std::to_string(pos_));
  }

 private:
  Status Need(const char* field, size_t n) const {
    if (remaining() >= n) return Status::Ok();
    return Corrupt(std::string("truncated at ") + field + ": need " + std::to_string(n) +
                   " bytes at offset " + std::to_string(pos_) + ", have " +
                   std::to_string(remaining()));
  }

  std::string_view in_;
  size_t pos_ = 0;
};

uint32_t RecordCrc(std::string_view scope, uint8_t kind, std::string_view payload) {
  uint32_t crc = Crc32c(scope);
  crc = Crc32cExtend(crc, &kind, 1);
  return Crc32cExtend(crc, payload.data(), payload.size());
}

std::string Hex32(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

Status DecodeCommand(Reader* r, paxos::Command* c) {
  STORE_RETURN_IF_ERROR(r->U64("command.client_id", &c->client_id));
  STORE_RETURN_IF_ERROR(r->U64("command.sequence", &c->sequence));
  STORE_RETURN_IF_ERROR(r->U64("command.acked_sequence", &c->acked_sequence));
  STORE_RETURN_IF_ERROR(r->U64("command.expected_epoch", &c->expected_epoch));
  STORE_RETURN_IF_ERROR(r->U64("command.stamp_ms", &c->stamp_ms));
  uint32_t payload_bytes = 0;
  STORE_RETURN_IF_ERROR(r->U32("command.payload length", &payload_bytes));
  std::string_view payload;
  STORE_RETURN_IF_ERROR(r->Bytes("command.payload", payload_bytes, &payload));
  c->payload.assign(payload);
  return Status::Ok();
}

Status DecodeConfigurationFrom(Reader* r, paxos::Configuration* config) {
  uint32_t count = 0;
  STORE_RETURN_IF_ERROR(r->U32("configuration.member count", &count));
  if (count > r->remaining() / kMemberFixedBytes) {
    return Corrupt("configuration claims " + std::to_string(count) + " members but only " +
                   std::to_string(r->remaining()) + " bytes remain");
  }
  std::vector<paxos::Member> members(count);
  for (paxos::Member& m : members) {
    STORE_RETURN_IF_ERROR(r->U32("member.id", &m.id));
    uint8_t voter = 0;
    STORE_RETURN_IF_ERROR(r->U8("member.voter", &voter));
    if (voter > 1) return Corrupt("member.voter is " + std::to_string(voter));
    m.voter = voter == 1;
    uint32_t address_bytes = 0;
    STORE_RETURN_IF_ERROR(r->U32("member.address length", &address_bytes));
    std::string_view address;
    STORE_RETURN_IF_ERROR(r->Bytes("member.address", address_bytes, &address));
    m.address.assign(address);
  }
  uint32_t retired_count = 0;
  STORE_RETURN_IF_ERROR(r->U32("configuration.retired count", &retired_count));
  if (retired_count > r->remaining() / 4) {
    return Corrupt("configuration claims " + std::to_string(retired_count) +
                   " retired ids but only " + std::to_string(r->remaining()) + " bytes remain");
  }
  std::vector<paxos::NodeId> retired(retired_count);
  for (paxos::NodeId& id : retired) STORE_RETURN_IF_ERROR(r->U32("retired id", &id));
  *config = paxos::Configuration(std::move(members));
  config->set_retired(std::move(retired));
  if (!config->empty()) {
    Status s = config->Validate();
    if (!s.ok()) return Corrupt(s.message());
  }
  return Status::Ok();
}

Status DecodeValueFrom(Reader* r, paxos::Value* value) {
  uint64_t epoch = 0;
  STORE_RETURN_IF_ERROR(r->U64("value.epoch", &epoch));
  uint8_t flags = 0;
  STORE_RETURN_IF_ERROR(r->U8("value.flags", &flags));
  if ((flags & ~kValueFlagsKnown) != 0) {
    return Corrupt("value.flags has unknown bits: " + Hex32(flags));
  }
  uint32_t count = 0;
  STORE_RETURN_IF_ERROR(r->U32("value.command count", &count));
  // Bound the count by what the remaining bytes could hold before reserving anything.
  if (count > r->remaining() / kCommandFixedBytes) {
    return Corrupt("value claims " + std::to_string(count) + " commands but only " +
                   std::to_string(r->remaining()) + " bytes remain");
  }
  value->epoch = paxos::Ballot::FromRaw(epoch);
  value->leader_start = (flags & kValueFlagLeaderStart) != 0;
  value->commands.clear();
  value->commands.resize(count);
  for (size_t i = 0; i < count; ++i) {
    STORE_RETURN_IF_ERROR(DecodeCommand(r, &value->commands.mutable_at(i)));
  }
  value->config.reset();
  if ((flags & kValueFlagConfig) != 0) {
    paxos::Configuration config;
    STORE_RETURN_IF_ERROR(DecodeConfigurationFrom(r, &config));
    if (config.empty()) return Corrupt("a membership change with no members");
    value->config = std::move(config);
  }
  return Status::Ok();
}

}  // namespace

const char* RecordKindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kIdentity:
      return "identity";
    case RecordKind::kPromised:
      return "promised";
    case RecordKind::kChosenBelow:
      return "chosen_below";
    case RecordKind::kSnapshotMeta:
      return "snapshot";
    case RecordKind::kSnapshotData:
      return "snapshot_data";
    case RecordKind::kEntry:
      return "entry";
    case RecordKind::kJournalSeq:
      return "journal_seq";
  }
  return "unknown";
}

void SealRecordBytes(uint8_t kind, std::string_view scope, std::string_view payload,
                     std::string* out) {
  out->reserve(out->size() + kRecordHeaderBytes + payload.size());
  PutU32(RecordCrc(scope, kind, payload), out);
  PutU8(kind, out);
  out->append(payload);
}

void SealRecordBytesInPlace(uint8_t kind, std::string_view scope, char* record,
                            size_t record_bytes) {
  CHECK_GE(record_bytes, kRecordHeaderBytes);
  const std::string_view payload(record + kRecordHeaderBytes, record_bytes - kRecordHeaderBytes);
  StoreLe32(RecordCrc(scope, kind, payload), record);
  record[kRecordCrcBytes] = static_cast<char>(kind);
}

Status OpenRecordBytes(uint8_t kind, std::string_view kind_name, std::string_view scope,
                       std::string_view record, std::string_view what, std::string_view* payload) {
  const std::string name(what);
  if (record.size() < kRecordHeaderBytes) {
    return Corrupt(name + ": record of " + std::to_string(record.size()) +
                   " bytes is shorter than its header");
  }
  const uint32_t stored_crc = LoadLe32(record.data());
  const auto kind_byte = static_cast<uint8_t>(record[kRecordCrcBytes]);
  const std::string_view body = record.substr(kRecordHeaderBytes);
  const uint32_t actual_crc = RecordCrc(scope, kind_byte, body);
  if (actual_crc != stored_crc) {
    return Corrupt(name + ": checksum mismatch (stored " + Hex32(stored_crc) + ", computed " +
                   Hex32(actual_crc) + ", " + std::to_string(record.size()) + " bytes)");
  }
  if (kind_byte != kind) {
    return Corrupt(name + ": record kind " + std::to_string(kind_byte) + ", expected " +
                   std::to_string(kind) + " (" + std::string(kind_name) + ")");
  }
  *payload = body;
  return Status::Ok();
}

void SealRecord(RecordKind kind, std::string_view key, std::string_view payload, std::string* out) {
  SealRecordBytes(static_cast<uint8_t>(kind), key, payload, out);
}

void SealRecordInPlace(RecordKind kind, std::string_view key, char* record, size_t record_bytes) {
  SealRecordBytesInPlace(static_cast<uint8_t>(kind), key, record, record_bytes);
}

Status OpenRecord(RecordKind kind, std::string_view key, std::string_view record,
                  std::string_view what, std::string_view* payload) {
  return OpenRecordBytes(static_cast<uint8_t>(kind), RecordKindName(kind), key, record, what,
                         payload);
}

std::string SlotKey(paxos::Slot slot) {
  std::string key(kSlotKeyBytes, '\0');
  for (size_t i = 0; i < kSlotKeyBytes; ++i) {
    key[i] = static_cast<char>(slot >> (8 * (kSlotKeyBytes - 1 - i)));
  }
  return key;
}

Status DecodeSlotKey(std::string_view key, paxos::Slot* slot) {
  if (key.size() != kSlotKeyBytes) {
    return Corrupt("log key of " + std::to_string(key.size()) + " bytes, expected 8");
  }
  paxos::Slot s = 0;
  for (char c : key) s = s << 8 | static_cast<uint8_t>(c);
  if (s == 0) return Corrupt("log key names slot 0");
  *slot = s;
  return Status::Ok();
}

void EncodeValue(const paxos::Value& value, std::string* out) {
  CHECK_LE(value.commands.size(), std::numeric_limits<uint32_t>::max());
  PutU64(value.epoch.raw(), out);
  PutU8((value.leader_start ? kValueFlagLeaderStart : 0) | (value.config ? kValueFlagConfig : 0),
        out);
  PutU32(static_cast<uint32_t>(value.commands.size()), out);
  for (const paxos::Command& c : value.commands) {
    CHECK_LE(c.payload.size(), std::numeric_limits<uint32_t>::max());
    PutU64(c.client_id, out);
    PutU64(c.sequence, out);
    PutU64(c.acked_sequence, out);
    PutU64(c.expected_epoch, out);
    PutU64(c.stamp_ms, out);
    PutU32(static_cast<uint32_t>(c.payload.size()), out);
    out->append(c.payload);
  }
  if (value.config) EncodeConfiguration(*value.config, out);
}

void EncodeConfiguration(const paxos::Configuration& config, std::string* out) {
  PutU32(static_cast<uint32_t>(config.members().size()), out);
  for (const paxos::Member& m : config.members()) {
    PutU32(m.id, out);
    PutU8(m.voter ? 1 : 0, out);
    PutU32(static_cast<uint32_t>(m.address.size()), out);
    out->append(m.address);
  }
  PutU32(static_cast<uint32_t>(config.retired().size()), out);
  for (paxos::NodeId id : config.retired()) PutU32(id, out);
}

Status DecodeConfiguration(std::string_view in, paxos::Configuration* config) {
  Reader r(in);
  STORE_RETURN_IF_ERROR(DecodeConfigurationFrom(&r, config));
  return r.End("configuration");
}

Status DecodeValue(std::string_view in, paxos::Value* value) {
  Reader r(in);
  STORE_RETURN_IF_ERROR(DecodeValueFrom(&r, value));
  return r.End("value");
}

size_t EntryPayloadBytes(const paxos::Entry& entry) {
  size_t n = 8 + kValueFixedBytes;
  for (const paxos::Command& c : entry.value.commands) n += kCommandFixedBytes + c.payload.size();
  return n;
}

void EncodeEntryPayload(const paxos::Entry& entry, std::string* out) {
  out->reserve(out->size() + EntryPayloadBytes(entry));
  PutU64(entry.ballot.raw(), out);
  EncodeValue(entry.value, out);
}

Status DecodeEntryPayload(paxos::Slot slot, std::string_view in, paxos::Entry* entry) {
  Reader r(in);
  uint64_t ballot = 0;
  STORE_RETURN_IF_ERROR(r.U64("entry.ballot", &ballot));
  STORE_RETURN_IF_ERROR(DecodeValueFrom(&r, &entry->value));
  STORE_RETURN_IF_ERROR(r.End("entry"));
  entry->slot = slot;
  entry->ballot = paxos::Ballot::FromRaw(ballot);
  return Status::Ok();
}

void EncodeIdentity(const StoreIdentity& identity, std::string* out) {
  PutU32(identity.format_version, out);
  PutU64(identity.cluster_id, out);
  PutU32(identity.node_id, out);
}

Status DecodeIdentity(std::string_view in, StoreIdentity* identity) {
  Reader r(in);
  StoreIdentity id;
  STORE_RETURN_IF_ERROR(r.U32("identity.format_version", &id.format_version));
  STORE_RETURN_IF_ERROR(r.U64("identity.cluster_id", &id.cluster_id));
  STORE_RETURN_IF_ERROR(r.U32("identity.node_id", &id.node_id));
  STORE_RETURN_IF_ERROR(r.End("identity"));
  *identity = id;
  return Status::Ok();
}

void EncodeBallot(paxos::Ballot ballot, std::string* out) { PutU64(ballot.raw(), out); }

Status DecodeBallot(std::string_view in, paxos::Ballot* ballot) {
  Reader r(in);
  uint64_t raw = 0;
  STORE_RETURN_IF_ERROR(r.U64("ballot", &raw));
  STORE_RETURN_IF_ERROR(r.End("ballot"));
  *ballot = paxos::Ballot::FromRaw(raw);
  return Status::Ok();
}

void EncodeSlot(paxos::Slot slot, std::string* out) { PutU64(slot, out); }

Status DecodeSlot(std::string_view in, paxos::Slot* slot) {
  Reader r(in);
  uint64_t s = 0;
  STORE_RETURN_IF_ERROR(r.U64("slot", &s));
  STORE_RETURN_IF_ERROR(r.End("slot"));
  if (s == 0) return Corrupt("slot 0 stored where a slot >= 1 is required");
  *slot = s;
  return Status::Ok();
}

void EncodeSnapshotMeta(const SnapshotMeta& meta, std::string* out) {
  PutU64(meta.applied_below, out);
  PutU64(meta.data_bytes, out);
}

Status DecodeSnapshotMeta(std::string_view in, SnapshotMeta* meta) {
  Reader r(in);
  SnapshotMeta m;
  STORE_RETURN_IF_ERROR(r.U64("snapshot.applied_below", &m.applied_below));
  STORE_RETURN_IF_ERROR(r.U64("snapshot.data_bytes", &m.data_bytes));
  STORE_RETURN_IF_ERROR(r.End("snapshot"));
  if (m.applied_below == 0) return Corrupt("snapshot.applied_below is 0");
  *meta = m;
  return Status::Ok();
}

void EncodeSnapshotData(paxos::Slot applied_below, std::string_view data, std::string* out) {
  out->reserve(out->size() + 8 + data.size());
  PutU64(applied_below, out);
  out->append(data);
}

Status DecodeSnapshotData(std::string_view in, paxos::Slot* applied_below, std::string* data) {
  Reader r(in);
  uint64_t below = 0;
  STORE_RETURN_IF_ERROR(r.U64("snapshot_data.applied_below", &below));
  std::string_view rest;
  STORE_RETURN_IF_ERROR(r.Bytes("snapshot_data", r.remaining(), &rest));
  *applied_below = below;
  data->assign(rest);
  return Status::Ok();
}

namespace {
constexpr uint8_t kBatchFlagPromised = 0x01;
constexpr uint8_t kBatchFlagChosenBelow = 0x02;
constexpr uint8_t kBatchFlagsKnown = kBatchFlagPromised | kBatchFlagChosenBelow;
constexpr size_t kBatchEntryFixedBytes = 8 + 4;  // slot, payload length
}  // namespace

void EncodeBatchPayload(const paxos::PersistBatch& batch, std::string* out) {
  CHECK_LE(batch.entries.size(), std::numeric_limits<uint32_t>::max());
  uint8_t flags = 0;
  if (batch.promised) flags |= kBatchFlagPromised;
  if (batch.chosen_below) flags |= kBatchFlagChosenBelow;
  PutU8(flags, out);
  if (batch.promised) PutU64(batch.promised->raw(), out);
  if (batch.chosen_below) PutU64(*batch.chosen_below, out);
  PutU32(static_cast<uint32_t>(batch.entries.size()), out);
  for (const paxos::Entry& e : batch.entries) {
    PutU64(e.slot, out);
    const size_t length_at = out->size();
    PutU32(0, out);  // patched below, once the payload's size is known
    EncodeEntryPayload(e, out);
    const size_t length = out->size() - length_at - sizeof(uint32_t);
    CHECK_LE(length, std::numeric_limits<uint32_t>::max());
    StoreLe32(static_cast<uint32_t>(length), out->data() + length_at);
  }
}

Status DecodeBatchPayload(std::string_view in, paxos::PersistBatch* batch) {
  Reader r(in);
  uint8_t flags = 0;
  STORE_RETURN_IF_ERROR(r.U8("batch.flags", &flags));
  if ((flags & ~kBatchFlagsKnown) != 0) {
    return Corrupt("batch.flags has unknown bits: " + Hex32(flags));
  }
  paxos::PersistBatch b;
  if (flags & kBatchFlagPromised) {
    uint64_t raw = 0;
    STORE_RETURN_IF_ERROR(r.U64("batch.promised", &raw));
    b.promised = paxos::Ballot::FromRaw(raw);
  }
  if (flags & kBatchFlagChosenBelow) {
    uint64_t slot = 0;
    STORE_RETURN_IF_ERROR(r.U64("batch.chosen_below", &slot));
    if (slot == 0) return Corrupt("batch.chosen_below is 0");
    b.chosen_below = slot;
  }
  uint32_t count = 0;
  STORE_RETURN_IF_ERROR(r.U32("batch.entry count", &count));
  if (count > r.remaining() / kBatchEntryFixedBytes) {
    return Corrupt("batch claims " + std::to_string(count) + " entries but only " +
                   std::to_string(r.remaining()) + " bytes remain");
  }
  b.entries.resize(count);
  for (paxos::Entry& e : b.entries) {
    uint64_t slot = 0;
    uint32_t length = 0;
    std::string_view payload;
    STORE_RETURN_IF_ERROR(r.U64("batch.entry slot", &slot));
    if (slot == 0) return Corrupt("batch entry for slot 0");
    STORE_RETURN_IF_ERROR(r.U32("batch.entry length", &length));
    STORE_RETURN_IF_ERROR(r.Bytes("batch.entry", length, &payload));
    STORE_RETURN_IF_ERROR(DecodeEntryPayload(slot, payload, &e));
  }
  STORE_RETURN_IF_ERROR(r.End("batch"));
  *batch = std::move(b);
  return Status::Ok();
}

}  // namespace ballot::store
