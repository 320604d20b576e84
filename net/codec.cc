#include "net/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "net/ballot.capnp.h"

namespace ballot::net {
namespace {

using paxos::Ballot;
using paxos::MessageType;

// The schema's enum must stay in step with the core's.
static_assert(static_cast<int>(wire::MessageType::PRE_VOTE) ==
              static_cast<int>(MessageType::kPreVote));
static_assert(static_cast<int>(wire::MessageType::TIMEOUT_NOW) ==
              static_cast<int>(MessageType::kTimeoutNow));
constexpr uint16_t kMessageTypeMin = static_cast<uint16_t>(MessageType::kPreVote);
constexpr uint16_t kMessageTypeMax = static_cast<uint16_t>(MessageType::kTimeoutNow);
// Members in one configuration, and bytes in one member's address.
constexpr size_t kConfigMembersMax = 1024;
constexpr size_t kMemberAddressBytesMax = 1024;
// The highest ballot::StatusCode; update with paxos/status.h.
constexpr uint16_t kStatusCodeMax = static_cast<uint16_t>(StatusCode::kAborted);

Status Invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

// ---------------------------------------------------------------------------------------------
// Encoding.

capnp::Data::Reader AsData(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

capnp::Text::Reader AsText(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

void FillCommand(const paxos::Command& c, wire::Command::Builder b) {
  b.setClientId(c.client_id);
  b.setSequence(c.sequence);
  b.setAckedSequence(c.acked_sequence);
  b.setExpectedEpoch(c.expected_epoch);
  b.setStampMs(c.stamp_ms);
  b.setPayload(AsData(c.payload));
}

void FillEntry(const paxos::Entry& e, wire::Entry::Builder b) {
  b.setSlot(e.slot);
  b.setBallot(e.ballot.raw());
  auto value = b.initValue();
  value.setEpoch(e.value.epoch.raw());
  value.setLeaderStart(e.value.leader_start);
  auto commands = value.initCommands(static_cast<unsigned>(e.value.commands.size()));
  for (size_t i = 0; i < e.value.commands.size(); ++i) {
    FillCommand(e.value.commands[i], commands[static_cast<unsigned>(i)]);
  }
  if (e.value.config) {
    value.setHasConfig(true);
    const auto& members = e.value.config->members();
    auto list = value.initConfig(static_cast<unsigned>(members.size()));
    for (size_t i = 0; i < members.size(); ++i) {
      auto m = list[static_cast<unsigned>(i)];
      m.setId(members[i].id);
      m.setAddress(members[i].address);
      m.setVoter(members[i].voter);
    }
    const auto& retired = e.value.config->retired();
    auto ids = value.initRetired(static_cast<unsigned>(retired.size()));
    for (size_t i = 0; i < retired.size(); ++i) ids.set(static_cast<unsigned>(i), retired[i]);
  }
}

void FillPeerMessage(const paxos::Message& m, wire::PeerMessage::Builder b) {
  b.setType(static_cast<wire::MessageType>(m.type));
  b.setFrom(m.from);
  b.setTo(m.to);
  b.setBallot(m.ballot.raw());
  b.setPromised(m.promised.raw());
  b.setSlot(m.slot);
  b.setCommit(m.commit);
  b.setRound(m.round);
  b.setOk(m.ok);
  auto entries = b.initEntries(static_cast<unsigned>(m.entries.size()));
  for (size_t i = 0; i < m.entries.size(); ++i) {
    FillEntry(m.entries[i], entries[static_cast<unsigned>(i)]);
  }
  auto slots = b.initSlots(static_cast<unsigned>(m.slots.size()));
  for (size_t i = 0; i < m.slots.size(); ++i) slots.set(static_cast<unsigned>(i), m.slots[i]);
  if (!m.data.empty()) b.setData(AsData(m.data));
  b.setChecksum(m.checksum);
}

void FillHello(const Hello& h, wire::Hello::Builder b) {
  b.setClusterId(h.cluster_id);
  b.setNodeId(h.node_id);
  b.setProtocolVersion(h.protocol_version);
  if (!h.timing.empty()) {
    auto timing = b.initTiming(static_cast<unsigned>(h.timing.size()));
    for (size_t i = 0; i < h.timing.size(); ++i) {
      timing[i].setName(h.timing[i].name);
      timing[i].setValue(h.timing[i].value);
    }
  }
  b.setDataState(static_cast<wire::DataState>(h.data_state));
  if (!h.joined_members.empty()) {
    auto joined = b.initJoinedMembers(static_cast<unsigned>(h.joined_members.size()));
    for (size_t i = 0; i < h.joined_members.size(); ++i) {
      joined.set(static_cast<unsigned>(i), h.joined_members[i]);
    }
  }
}

void FillRequest(const ClientRequest& r, wire::ClientRequest::Builder b) {
  b.setRequestId(r.request_id);
  switch (r.kind) {
    case ClientRequest::Kind::kPropose:
      FillCommand(r.command, b.initPropose());
      return;
    case ClientRequest::Kind::kRead:
      b.initRead().setQuery(AsData(r.query));
      return;
    case ClientRequest::Kind::kStatus:
      b.setStatus();
      return;
    case ClientRequest::Kind::kSnapshot:
      b.setSnapshot();
      return;
    case ClientRequest::Kind::kTransferLeader:
      b.setTransferLeader(r.transfer_to);
      return;
    case ClientRequest::Kind::kMemberList:
      b.setMemberList();
      return;
    case ClientRequest::Kind::kMemberChange: {
      auto change = b.initMemberChange();
      change.setRemove(r.member_change.remove);
      change.setId(r.member_change.id);
      change.setAddress(AsText(r.member_change.address));
      return;
    }
    case ClientRequest::Kind::kWatch: {
      auto watch = b.initWatch();
      watch.setQuery(AsData(r.watch.query));
      watch.setAfterSlot(r.watch.after_slot);
      watch.setLinearizable(r.watch.linearizable);
      watch.setWaitMs(r.watch.wait_ms);
      return;
    }
  }
  LOG(FATAL) << "unknown ClientRequest kind " << static_cast<int>(r.kind);
}

void FillNodeStatus(const NodeStatus& s, wire::NodeStatus::Builder b) {
  b.setNodeId(s.node_id);
  b.setRole(AsText(s.role));
  b.setEpoch(s.epoch);
  b.setLeaderId(s.leader_id);
  b.setChosenBelow(s.chosen_below);
  b.setAppliedBelow(s.applied_below);
  b.setLeaseHeld(s.lease_held);
  b.setPromised(s.promised);
}

void FillResponse(const ClientResponse& r, wire::ClientResponse::Builder b) {
  b.setRequestId(r.request_id);
  b.setCode(static_cast<uint16_t>(r.code));
  b.setLeaderHint(r.leader_hint);
  b.setLeaderAddress(AsText(r.leader_address));
  b.setMessage(AsText(r.message));
  b.setOutcomeCode(static_cast<uint16_t>(r.outcome_code));
  b.setData(AsData(r.data));
  b.setSlot(r.slot);
  b.setEpoch(r.epoch);
  b.setWatchChanged(r.watch_changed);
  b.setWatchGap(r.watch_gap);
  if (r.status) {
    FillNodeStatus(*r.status, b.initStatus());
  } else if (r.members) {
    auto list = b.initMembers(static_cast<unsigned>(r.members->size()));
    for (size_t i = 0; i < r.members->size(); ++i) {
      auto m = list[static_cast<unsigned>(i)];
      m.setId((*r.members)[i].id);
      m.setAddress(AsText((*r.members)[i].address));
      m.setVoter((*r.members)[i].voter);
    }
  } else {
    b.setNone();
  }
}

// Serializes `builder` behind a length prefix, in one allocation and one copy.
Result<std::string> FinishFrame(capnp::MessageBuilder& builder) {
  const size_t bytes = capnp::computeSerializedSizeInWords(builder) * sizeof(capnp::word);
  if (bytes > kFrameBytesMax) {
    return Invalid("frame of " + std::to_string(bytes) + " bytes exceeds the maximum of " +
                   std::to_string(kFrameBytesMax));
  }
  std::string out(kFrameHeaderBytes + bytes, '\0');
  auto* data = reinterpret_cast<kj::byte*>(out.data());
  PutFrameHeader(static_cast<uint32_t>(bytes), data);
  kj::ArrayOutputStream stream(kj::arrayPtr(data + kFrameHeaderBytes, bytes));
  capnp::writeMessage(stream, builder);
  CHECK_EQ(stream.getArray().size(), bytes);
  return out;
}

// Runs `fill` on a fresh Frame root and serializes it. Cap'n Proto may throw (e.g. a list too
// long for the format); that becomes a Status here.
template <typename Fill>
Result<std::string> BuildFrame(size_t bytes_hint, Fill&& fill) {
  try {
    // One first segment big enough for everything: no far pointers, one allocation.
    const size_t words_hint = std::min(bytes_hint, kFrameBytesMax) / sizeof(capnp::word) + 8;
    capnp::MallocMessageBuilder builder(static_cast<unsigned>(words_hint));
    fill(builder.initRoot<wire::Frame>());
    return FinishFrame(builder);
  } catch (const kj::Exception& e) {
    return Invalid(std::string("cannot encode frame: ") + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Invalid(std::string("cannot encode frame: ") + e.what());
  }
}

Status ValidateHello(const Hello& h) {
  if (h.node_id > paxos::kNodeIdMax) {
    return Invalid("hello: node id " + std::to_string(h.node_id) + " is above " +
                   std::to_string(paxos::kNodeIdMax));
  }
  if (h.timing.size() > kTimingValuesMax) return Invalid("hello: too many timing fields");
  for (const TimingValue& t : h.timing) {
    if (t.name.empty() || t.name.size() > kTimingNameBytesMax) {
      return Invalid("hello: a timing field name is empty or longer than " +
                     std::to_string(kTimingNameBytesMax) + " bytes");
    }
  }
  if (static_cast<uint8_t>(h.data_state) > static_cast<uint8_t>(DataState::kEstablished)) {
    return Invalid("hello: unknown data state");
  }
  if (h.joined_members.size() > kJoinedMembersMax) return Invalid("hello: too many joined members");
  for (size_t i = 0; i < h.joined_members.size(); ++i) {
    const paxos::NodeId id = h.joined_members[i];
    if (id == paxos::kNoNode || id > paxos::kNodeIdMax ||
        (i > 0 && id <= h.joined_members[i - 1])) {
      return Invalid("hello: joined members must be node ids in increasing order");
    }
  }
  return Status::Ok();
}

bool ValidStatusCode(StatusCode code) { return static_cast<uint16_t>(code) <= kStatusCodeMax; }

Status ValidateResponse(const ClientResponse& r) {
  if (!ValidStatusCode(r.code) || !ValidStatusCode(r.outcome_code)) {
    return Invalid("client response: unknown status code " +
                   std::to_string(static_cast<int>(r.code)) + "/" +
                   std::to_string(static_cast<int>(r.outcome_code)));
  }
  if (r.leader_hint > paxos::kNodeIdMax) {
    return Invalid("client response: leader hint " + std::to_string(r.leader_hint) +
                   " is not a node id");
  }
  if (r.message.size() > kTextBytesMax || r.leader_address.size() > kTextBytesMax ||
      (r.status && r.status->role.size() > kTextBytesMax)) {
    return Invalid("client response: text longer than " + std::to_string(kTextBytesMax));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Decoding. Each Decode* copies from the reader into C++ values; lengths are checked before any
// reserve, and semantic checks run on the result.

Status CheckCount(const char* what, size_t count, size_t count_max) {
  if (count <= count_max) return Status::Ok();
  return Invalid(std::string(what) + ": " + std::to_string(count) + " is above the maximum of " +
                 std::to_string(count_max));
}

// Bounds the memory one frame can make us allocate. Cap'n Proto's traversal limit charges a list
// of zero-sized structs only one word per element, yet each element becomes a C++ object of
// ~72 bytes; so every decoded object is charged here at least half its honest wire size (half,
// to leave room for older, smaller versions of a struct), and a frame cannot claim more objects
// than its bytes could hold.
class ObjectBudget {
 public:
  // Wire words charged per decoded object: half of PeerMessage (9), Entry + Value (6),
  // Command (6) and a slot (1).
  static constexpr size_t kMessageWords = 4;
  static constexpr size_t kEntryWords = 3;
  static constexpr size_t kCommandWords = 3;
  static constexpr size_t kSlotWords = 1;

  explicit ObjectBudget(size_t words) : words_(words) {}

  Status Charge(const char* what, size_t count, size_t words_each) {
    if (count > words_ / words_each) {
      return Invalid(std::string("frame claims more ") + what + " (" + std::to_string(count) +
                     ") than its size can hold");
    }
    words_ -= count * words_each;
    return Status::Ok();
  }

 private:
  size_t words_;
};

std::string DataToString(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

void DecodeCommand(wire::Command::Reader r, paxos::Command* c) {
  c->client_id = r.getClientId();
  c->sequence = r.getSequence();
  c->acked_sequence = r.getAckedSequence();
  c->expected_epoch = r.getExpectedEpoch();
  c->stamp_ms = r.getStampMs();
  c->payload = DataToString(r.getPayload());
}

Status DecodeEntry(wire::Entry::Reader r, ObjectBudget* budget, paxos::Entry* e) {
  e->slot = r.getSlot();
  e->ballot = Ballot::FromRaw(r.getBallot());
  auto value = r.getValue();
  e->value.epoch = Ballot::FromRaw(value.getEpoch());
  e->value.leader_start = value.getLeaderStart();
  auto commands = value.getCommands();
  Status s = CheckCount("commands in a value", commands.size(), kCommandsPerValueMax);
  if (s.ok()) s = budget->Charge("commands", commands.size(), ObjectBudget::kCommandWords);
  if (!s.ok()) return s;
  e->value.commands.resize(commands.size());
  for (unsigned i = 0; i < commands.size(); ++i) {
    DecodeCommand(commands[i], &e->value.commands.mutable_at(i));
  }
  e->value.config.reset();
  if (value.getHasConfig()) {
    auto list = value.getConfig();
    s = CheckCount("members in a configuration", list.size(), kConfigMembersMax);
    if (s.ok()) s = budget->Charge("members", list.size(), ObjectBudget::kCommandWords);
    if (!s.ok()) return s;
    std::vector<paxos::Member> members;
    for (auto m : list) {
      if (m.getAddress().size() > kMemberAddressBytesMax) {
        return Invalid("member address longer than " + std::to_string(kMemberAddressBytesMax));
      }
      members.push_back(paxos::Member{m.getId(), m.getAddress().cStr(), m.getVoter()});
    }
    paxos::Configuration config(std::move(members));
    auto retired = value.getRetired();
    s = CheckCount("retired ids in a configuration", retired.size(), paxos::kNodeIdMax);
    if (s.ok()) s = budget->Charge("retired ids", retired.size(), ObjectBudget::kSlotWords);
    if (!s.ok()) return s;
    std::vector<paxos::NodeId> retired_ids;
    for (uint32_t id : retired) retired_ids.push_back(id);
    config.set_retired(std::move(retired_ids));
    s = config.Validate();
    if (!s.ok()) return Invalid("value: " + s.message());
    e->value.config = std::move(config);
  }
  return Status::Ok();
}

Status DecodePeerMessage(wire::PeerMessage::Reader r, ObjectBudget* budget, paxos::Message* m) {
  const auto type = static_cast<uint16_t>(r.getType());
  if (type < kMessageTypeMin || type > kMessageTypeMax) {
    return Invalid("peer message: unknown type " + std::to_string(type));
  }
  m->type = static_cast<MessageType>(type);
  m->from = r.getFrom();
  m->to = r.getTo();
  m->ballot = Ballot::FromRaw(r.getBallot());
  m->promised = Ballot::FromRaw(r.getPromised());
  m->slot = r.getSlot();
  m->commit = r.getCommit();
  m->round = r.getRound();
  m->ok = r.getOk();
  auto entries = r.getEntries();
  Status s = CheckCount("entries in a message", entries.size(), kEntriesPerMessageMax);
  if (s.ok()) s = budget->Charge("entries", entries.size(), ObjectBudget::kEntryWords);
  if (!s.ok()) return s;
  m->entries.resize(entries.size());
  for (unsigned i = 0; i < entries.size(); ++i) {
    s = DecodeEntry(entries[i], budget, &m->entries[i]);
    if (!s.ok()) return s;
  }
  auto slots = r.getSlots();
  s = CheckCount("slots in a message", slots.size(), kSlotsPerMessageMax);
  if (s.ok()) s = budget->Charge("slots", slots.size(), ObjectBudget::kSlotWords);
  if (!s.ok()) return s;
  m->slots.resize(slots.size());
  for (unsigned i = 0; i < slots.size(); ++i) m->slots[i] = slots[i];
  // The data's bytes are inside the frame, whose size was checked before decoding.
  auto data = r.getData();
  m->data.assign(reinterpret_cast<const char*>(data.begin()), data.size());
  m->checksum = r.getChecksum();
  return ValidatePeerMessage(*m);
}

Result<Frame> DecodePeerBatch(capnp::List<wire::PeerMessage>::Reader list, size_t frame_words) {
  if (list.size() == 0) return Invalid("peer frame: empty batch");
  ObjectBudget budget(frame_words);
  Status s = CheckCount("peer messages in a frame", list.size(), kPeerMessagesPerFrameMax);
  if (s.ok()) s = budget.Charge("peer messages", list.size(), ObjectBudget::kMessageWords);
  if (!s.ok()) return s;
  std::vector<paxos::Message> messages(list.size());
  for (unsigned i = 0; i < list.size(); ++i) {
    s = DecodePeerMessage(list[i], &budget, &messages[i]);
    if (!s.ok()) return s;
  }
  return Frame(std::move(messages));
}

Result<Frame> DecodeHello(wire::Hello::Reader r) {
  Hello h;
  h.cluster_id = r.getClusterId();
  h.node_id = r.getNodeId();
  h.protocol_version = r.getProtocolVersion();
  // Counted before anything is copied: a hostile list cannot make us allocate much.
  if (r.getTiming().size() > kTimingValuesMax) return Invalid("hello: too many timing fields");
  if (r.getJoinedMembers().size() > kJoinedMembersMax) {
    return Invalid("hello: too many joined members");
  }
  for (auto t : r.getTiming()) {
    if (t.getName().size() > kTimingNameBytesMax) {
      return Invalid("hello: a timing field name is longer than " +
                     std::to_string(kTimingNameBytesMax) + " bytes");
    }
    h.timing.push_back(
        TimingValue{std::string(t.getName().cStr(), t.getName().size()), t.getValue()});
  }
  const auto state = static_cast<uint16_t>(r.getDataState());
  if (state > static_cast<uint16_t>(DataState::kEstablished)) {
    return Invalid("hello: unknown data state " + std::to_string(state));
  }
  h.data_state = static_cast<DataState>(state);
  for (uint32_t id : r.getJoinedMembers()) h.joined_members.push_back(id);
  Status s = ValidateHello(h);
  if (!s.ok()) return s;
  return Frame(h);
}

Result<Frame> DecodeRequest(wire::ClientRequest::Reader r) {
  ClientRequest req;
  req.request_id = r.getRequestId();
  switch (r.which()) {
    case wire::ClientRequest::PROPOSE:
      req.kind = ClientRequest::Kind::kPropose;
      DecodeCommand(r.getPropose(), &req.command);
      return Frame(std::move(req));
    case wire::ClientRequest::READ:
      req.kind = ClientRequest::Kind::kRead;
      req.query = DataToString(r.getRead().getQuery());
      return Frame(std::move(req));
    case wire::ClientRequest::STATUS:
      req.kind = ClientRequest::Kind::kStatus;
      return Frame(std::move(req));
    case wire::ClientRequest::SNAPSHOT:
      req.kind = ClientRequest::Kind::kSnapshot;
      return Frame(std::move(req));
    case wire::ClientRequest::TRANSFER_LEADER:
      req.kind = ClientRequest::Kind::kTransferLeader;
      req.transfer_to = r.getTransferLeader();
      if (req.transfer_to > paxos::kNodeIdMax) {
        return Invalid("client request: transfer target " + std::to_string(req.transfer_to) +
                       " is not a node id");
      }
      return Frame(std::move(req));
    case wire::ClientRequest::MEMBER_LIST:
      req.kind = ClientRequest::Kind::kMemberList;
      return Frame(std::move(req));
    case wire::ClientRequest::MEMBER_CHANGE: {
      req.kind = ClientRequest::Kind::kMemberChange;
      auto change = r.getMemberChange();
      req.member_change.remove = change.getRemove();
      req.member_change.id = change.getId();
      if (change.getAddress().size() > kMemberAddressBytesMax) {
        return Invalid("member change: address longer than " +
                       std::to_string(kMemberAddressBytesMax));
      }
      req.member_change.address = change.getAddress().cStr();
      if (req.member_change.id > paxos::kNodeIdMax) {
        return Invalid("member change: node id out of range");
      }
      return Frame(std::move(req));
    }
    case wire::ClientRequest::WATCH: {
      req.kind = ClientRequest::Kind::kWatch;
      auto watch = r.getWatch();
      req.watch.query = DataToString(watch.getQuery());
      req.watch.after_slot = watch.getAfterSlot();
      req.watch.linearizable = watch.getLinearizable();
      req.watch.wait_ms = watch.getWaitMs();
      return Frame(std::move(req));
    }
  }
  return Invalid("client request: unknown kind " + std::to_string(r.which()));
}

// Text is checked for length before it is copied.
Status DecodeText(const char* what, capnp::Text::Reader text, std::string* out) {
  Status s = CheckCount(what, text.size(), kTextBytesMax);
  if (s.ok()) out->assign(text.cStr(), text.size());
  return s;
}

Status DecodeNodeStatus(wire::NodeStatus::Reader r, NodeStatus* out) {
  out->node_id = r.getNodeId();
  out->epoch = r.getEpoch();
  out->leader_id = r.getLeaderId();
  out->chosen_below = r.getChosenBelow();
  out->applied_below = r.getAppliedBelow();
  out->lease_held = r.getLeaseHeld();
  out->promised = r.getPromised();
  if (out->node_id > paxos::kNodeIdMax || out->leader_id > paxos::kNodeIdMax) {
    return Invalid("node status: node id out of range");
  }
  return DecodeText("node status role bytes", r.getRole(), &out->role);
}

Result<Frame> DecodeResponse(wire::ClientResponse::Reader r) {
  ClientResponse resp;
  resp.request_id = r.getRequestId();
  resp.code = static_cast<StatusCode>(r.getCode());
  resp.leader_hint = r.getLeaderHint();
  resp.outcome_code = static_cast<StatusCode>(r.getOutcomeCode());
  resp.data = DataToString(r.getData());
  resp.slot = r.getSlot();
  resp.epoch = r.getEpoch();
  resp.watch_changed = r.getWatchChanged();
  resp.watch_gap = r.getWatchGap();
  Status s = DecodeText("client response message bytes", r.getMessage(), &resp.message);
  if (!s.ok()) return s;
  s = DecodeText("client response leader address bytes", r.getLeaderAddress(),
                 &resp.leader_address);
  if (!s.ok()) return s;
  switch (r.which()) {
    case wire::ClientResponse::NONE:
      break;
    case wire::ClientResponse::STATUS:
      s = DecodeNodeStatus(r.getStatus(), &resp.status.emplace());
      if (!s.ok()) return s;
      break;
    case wire::ClientResponse::MEMBERS: {
      auto list = r.getMembers();
      s = CheckCount("members in a configuration", list.size(), kConfigMembersMax);
      if (!s.ok()) return s;
      auto& members = resp.members.emplace();
      for (auto m : list) {
        if (m.getId() > paxos::kNodeIdMax) return Invalid("member list: node id out of range");
        std::string address;
        s = DecodeText("member address bytes", m.getAddress(), &address);
        if (!s.ok()) return s;
        members.push_back(paxos::Member{m.getId(), std::move(address), m.getVoter()});
      }
      break;
    }
    default:
      return Invalid("client response: unknown kind " + std::to_string(r.which()));
  }
  s = ValidateResponse(resp);
  if (!s.ok()) return s;
  return Frame(std::move(resp));
}

Result<Frame> DecodeRoot(wire::Frame::Reader root, size_t frame_words) {
  switch (root.which()) {
    case wire::Frame::HELLO:
      return DecodeHello(root.getHello());
    case wire::Frame::PEER:
      return DecodePeerBatch(root.getPeer(), frame_words);
    case wire::Frame::REQUEST:
      return DecodeRequest(root.getRequest());
    case wire::Frame::RESPONSE:
      return DecodeResponse(root.getResponse());
  }
  return Invalid("frame: unknown kind " + std::to_string(root.which()));
}

bool ValidNodeId(paxos::NodeId id) { return id != paxos::kNoNode && id <= paxos::kNodeIdMax; }

// A non-zero ballot always names the node that made it.
bool ValidBallot(Ballot b) { return b.IsZero() || b.node() != paxos::kNoNode; }

bool ValidSlot(paxos::Slot s) { return s != 0 && s <= kSlotMax; }

Status ValidateEntry(const paxos::Entry& e) {
  if (!ValidSlot(e.slot)) return Invalid("entry: bad slot " + std::to_string(e.slot));
  if (!ValidBallot(e.ballot) || !ValidBallot(e.value.epoch)) {
    return Invalid("entry: ballot or epoch without a node id");
  }
  return CheckCount("commands in a value", e.value.commands.size(), kCommandsPerValueMax);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Status ValidatePeerMessage(const paxos::Message& m) {
  const auto type = static_cast<uint16_t>(m.type);
  if (type < kMessageTypeMin || type > kMessageTypeMax) {
    return Invalid("peer message: unknown type " + std::to_string(type));
  }
  if (!ValidNodeId(m.from) || !ValidNodeId(m.to)) {
    return Invalid("peer message: from " + std::to_string(m.from) + " / to " +
                   std::to_string(m.to) + " is not a node id in 1.." +
                   std::to_string(paxos::kNodeIdMax));
  }
  if (!ValidBallot(m.ballot) || !ValidBallot(m.promised)) {
    return Invalid("peer message: ballot without a node id");
  }
  if (m.slot > kSlotMax || m.commit > kSlotMax) {
    return Invalid("peer message: slot or commit above " + std::to_string(kSlotMax));
  }
  if (!m.data.empty() && m.type != paxos::MessageType::kSnapshotChunk) {
    return Invalid("peer message: data is only for snapshot chunks");
  }
  Status s = CheckCount("entries in a message", m.entries.size(), kEntriesPerMessageMax);
  for (size_t i = 0; s.ok() && i < m.entries.size(); ++i) s = ValidateEntry(m.entries[i]);
  if (!s.ok()) return s;
  s = CheckCount("slots in a message", m.slots.size(), kSlotsPerMessageMax);
  for (size_t i = 0; s.ok() && i < m.slots.size(); ++i) {
    if (!ValidSlot(m.slots[i])) s = Invalid("peer message: bad slot in slots list");
  }
  return s;
}

size_t PeerMessageBytesBound(const paxos::Message& m) {
  // In words: the message struct (9) with its list tags and slack, each entry (entry + value +
  // tags, 8) with slack, each command (6) with slack, then payload bytes rounded up to words.
  size_t words = 16 + m.slots.size() + (m.data.size() + 7) / 8;
  for (const paxos::Entry& e : m.entries) {
    words += 10;
    for (const paxos::Command& c : e.value.commands) words += 8 + (c.payload.size() + 7) / 8;
  }
  return words * sizeof(capnp::word);
}

Result<std::string> EncodeHello(const Hello& hello) {
  Status s = ValidateHello(hello);
  if (!s.ok()) return s;
  const size_t bytes =
      64 + hello.joined_members.size() * 4 + hello.timing.size() * (32 + kTimingNameBytesMax);
  return BuildFrame(bytes, [&](wire::Frame::Builder f) { FillHello(hello, f.initHello()); });
}

Result<std::string> EncodePeerBatch(std::span<const paxos::Message> messages) {
  if (messages.empty()) return Invalid("peer frame: empty batch");
  Status s = CheckCount("peer messages in a frame", messages.size(), kPeerMessagesPerFrameMax);
  size_t bytes_bound = kPeerFrameOverheadBytes;
  for (size_t i = 0; s.ok() && i < messages.size(); ++i) {
    s = ValidatePeerMessage(messages[i]);
    bytes_bound += PeerMessageBytesBound(messages[i]);
  }
  if (!s.ok()) return s;
  return BuildFrame(bytes_bound, [&](wire::Frame::Builder f) {
    auto list = f.initPeer(static_cast<unsigned>(messages.size()));
    for (size_t i = 0; i < messages.size(); ++i) {
      FillPeerMessage(messages[i], list[static_cast<unsigned>(i)]);
    }
  });
}

Result<std::string> EncodeClientRequest(const ClientRequest& request) {
  const size_t bytes_hint = 128 + request.command.payload.size() + request.query.size() +
                            request.member_change.address.size();
  return BuildFrame(bytes_hint,
                    [&](wire::Frame::Builder f) { FillRequest(request, f.initRequest()); });
}

Result<std::string> EncodeClientResponse(const ClientResponse& response) {
  Status s = ValidateResponse(response);
  if (!s.ok()) return s;
  size_t bytes_hint = 256 + response.message.size() + response.data.size();
  if (response.status) bytes_hint += response.status->role.size();
  if (response.members) {
    for (const auto& m : *response.members) bytes_hint += 32 + m.address.size();
  }
  return BuildFrame(bytes_hint,
                    [&](wire::Frame::Builder f) { FillResponse(response, f.initResponse()); });
}

Result<std::string> EncodeFrame(const Frame& frame) {
  struct Visitor {
    Result<std::string> operator()(const Hello& h) const { return EncodeHello(h); }
    Result<std::string> operator()(const std::vector<paxos::Message>& batch) const {
      return EncodePeerBatch(batch);
    }
    Result<std::string> operator()(const ClientRequest& r) const { return EncodeClientRequest(r); }
    Result<std::string> operator()(const ClientResponse& r) const {
      return EncodeClientResponse(r);
    }
  };
  return std::visit(Visitor{}, frame);
}

Result<Frame> DecodeFrame(const FramePayload& payload) {
  if (payload.empty()) return Invalid("frame: empty payload");
  capnp::ReaderOptions options;
  // Bounds the work a hostile frame can cause (pointer aliasing amplification) to a small
  // multiple of its size; an honest frame is traversed once.
  options.traversalLimitInWords = 2 * payload.size() + 1024;
  options.nestingLimit = kNestingLimit;
  try {
    kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(payload.data()),
                                          payload.size());
    capnp::FlatArrayMessageReader reader(words, options);
    if (reader.getEnd() != words.end()) return Invalid("frame: trailing bytes after the message");
    return DecodeRoot(reader.getRoot<wire::Frame>(), payload.size());
  } catch (const kj::Exception& e) {
    return Invalid(std::string("malformed frame: ") + e.getDescription().cStr());
  } catch (const std::exception& e) {
    return Invalid(std::string("malformed frame: ") + e.what());
  }
}

}  // namespace ballot::net
