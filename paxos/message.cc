#include "paxos/message.h"

namespace ballot::paxos {

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kNone:
      return "None";
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteReply:
      return "PreVoteReply";
    case MessageType::kPrepare:
      return "Prepare";
    case MessageType::kPromise:
      return "Promise";
    case MessageType::kAccept:
      return "Accept";
    case MessageType::kAccepted:
      return "Accepted";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatReply:
      return "HeartbeatReply";
    case MessageType::kCatchupRequest:
      return "CatchupRequest";
    case MessageType::kCatchupReply:
      return "CatchupReply";
    case MessageType::kSnapshotRequest:
      return "SnapshotRequest";
    case MessageType::kSnapshotChunk:
      return "SnapshotChunk";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
  }
  return "Unknown";
}

std::string ToString(const Message& m) {
  std::string s = std::string(MessageTypeName(m.type)) + " " + std::to_string(m.from) + "->" +
                  std::to_string(m.to) + " b=" + ToString(m.ballot);
  if (!m.ok) s += " !ok";
  if (!m.promised.IsZero()) s += " promised=" + ToString(m.promised);
  if (m.slot) s += " slot=" + std::to_string(m.slot);
  if (m.commit) s += " commit=" + std::to_string(m.commit);
  if (m.round) s += " round=" + std::to_string(m.round);
  if (!m.data.empty()) s += " data=" + std::to_string(m.data.size()) + "B";
  if (!m.entries.empty()) {
    s += " entries=[" + std::to_string(m.entries.front().slot) + ".." +
         std::to_string(m.entries.back().slot) + "]";
  }
  if (!m.slots.empty()) s += " slots=" + std::to_string(m.slots.size());
  return s;
}

}  // namespace ballot::paxos
