// Peer-to-peer protocol messages of the Multi-Paxos core.
//
// One flat struct for every kind keeps the codec (net/) and the simulator simple; each kind uses
// the fields listed beside it and leaves the others at their defaults.
#ifndef BALLOT_PAXOS_MESSAGE_H_
#define BALLOT_PAXOS_MESSAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "paxos/types.h"

namespace ballot::paxos {

enum class MessageType : uint8_t {
  kNone = 0,
  // Would you promise `ballot`? Changes no state (it only asks whether the acceptor is free of
  // a leader's lease), so a partitioned node cannot depose a healthy leader. Uses: ballot.
  kPreVote = 1,
  // Uses: ballot (echoed), ok.
  kPreVoteReply = 2,
  // Phase 1a. Uses: ballot, slot (report accepted entries from this slot on), promised (non-zero:
  // a leader transfer from the leader of that ballot, see kTimeoutNow).
  kPrepare = 3,
  // Phase 1b. ok: promised `ballot`, entries = everything accepted at slots >= the prepare's slot.
  // !ok: promised = the higher ballot already promised. commit = sender's first unchosen slot.
  kPromise = 4,
  // Phase 2a, also a heartbeat. Uses: ballot, entries (slot + value; entry.ballot unused),
  // commit = leader's first unchosen slot.
  kAccept = 5,
  // Phase 2b. ok: accepted every slot in `slots` at `ballot` (sent only once durable).
  // !ok: promised = the higher ballot that made it refuse.
  kAccepted = 6,
  // Leader liveness, lease renewal and read-index confirmation.
  // Uses: ballot, commit, round (the leader's heartbeat counter).
  kHeartbeat = 7,
  // Uses: ballot, round (echoed), ok, promised (when !ok), commit (sender's first unchosen slot).
  kHeartbeatReply = 8,
  // A replica that is missing chosen values asks the leader. Uses: slot (first wanted).
  kCatchupRequest = 9,
  // Chosen values, in slot order. Uses: entries, commit (leader's first unchosen slot).
  kCatchupReply = 10,
  // Snapshot transfer. The Replica never sees these: the runtime's driver (net/server/driver.h)
  // handles them, but they travel on the same links, so they are typed here. Request: slot = the
  // snapshot must cover every slot below this; round = applied_below of the snapshot being
  // continued (0: the newest); commit = byte offset wanted.
  kSnapshotRequest = 11,
  // Chunk: slot = the snapshot's applied_below (0: the sender has none that is new enough);
  // commit = this chunk's byte offset; round = the snapshot's total size; ok = last chunk;
  // data = the bytes; checksum = CRC-32C of data.
  kSnapshotChunk = 12,
  // Leader transfer: the leader of `ballot` tells its caught-up target to campaign at once.
  // Uses: ballot. The target's Prepare then carries promised = that ballot, and acceptors whose
  // lease belongs to it promise despite the lease (its holder gave it up).
  kTimeoutNow = 13,
};

const char* MessageTypeName(MessageType type);

struct Message {
  MessageType type = MessageType::kNone;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Ballot ballot;
  Ballot promised;
  Slot slot = 0;
  Slot commit = 0;
  uint64_t round = 0;
  bool ok = false;
  std::vector<Entry> entries;
  std::vector<Slot> slots;
  std::string data;       // kSnapshotChunk only
  uint32_t checksum = 0;  // kSnapshotChunk only

  friend bool operator==(const Message&, const Message&) = default;
};

std::string ToString(const Message& m);

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_MESSAGE_H_
