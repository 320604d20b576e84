// Plain C++ forms of everything that crosses a socket, besides paxos::Message: the handshake and
// the client protocol. net/codec.h converts them to and from frames; net/ballot.capnp is the
// wire format. No Cap'n Proto types leak out of net/ through this header.
#ifndef BALLOT_NET_WIRE_H_
#define BALLOT_NET_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "paxos/configuration.h"
#include "paxos/message.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::net {

// Bumped only for wire changes that old nodes cannot safely ignore.
inline constexpr uint32_t kProtocolVersion = 1;

// Hello.node_id of a client connection.
inline constexpr paxos::NodeId kClientNodeId = 0;

// The timing that leases depend on. A node whose tick is longer than its peers', or whose lease
// is longer, believes in a lease that they do not grant; so peers compare these in the
// handshake and refuse each other when any differs (net/transport.h). Built by one function
// from the node's options (PeerTimingOf in net/transport.h); the wire carries every field by
// name (Fields()), so adding, removing or renaming a field here changes nothing else: not the
// codec, not the comparison, not the log line.
struct PeerTiming {
  uint32_t tick_ms = 0;
  uint32_t heartbeat_ticks = 0;
  uint32_t election_ticks = 0;  // a follower's election timeout is drawn from [E, 2E) ticks
  uint32_t lease_ticks = 0;
  uint32_t max_clock_drift_ppm = 0;  // the clock drift bound the lease margin is derived from

  friend bool operator==(const PeerTiming&, const PeerTiming&) = default;
};

// One timing field as it travels in a Hello.
struct TimingValue {
  std::string name;
  uint64_t value = 0;
  friend bool operator==(const TimingValue&, const TimingValue&) = default;
};

// Every PeerTiming field by name, in a fixed order: what a Hello carries and peers compare.
inline std::vector<TimingValue> TimingFields(const PeerTiming& t) {
  return {
      {"tick_ms", t.tick_ms},
      {"heartbeat_ticks", t.heartbeat_ticks},
      {"election_ticks", t.election_ticks},
      {"lease_ticks", t.lease_ticks},
      {"max_clock_drift_ppm", t.max_clock_drift_ppm},
  };
}

// Bounds on a Hello's lists, so that it fits the handshake frame (kHandshakeFrameBytesMax).
inline constexpr size_t kTimingValuesMax = 16;
inline constexpr size_t kTimingNameBytesMax = 48;
inline constexpr size_t kJoinedMembersMax = 256;

// What a node's data directory says about the cluster (safe bootstrap, net/server/server.h).
enum class DataState : uint8_t {
  kUnknown = 0,      // a client, or a node that does not say
  kEmpty = 1,        // no cluster identity yet: the node is waiting to create or join a cluster
  kEstablished = 2,  // the data directory holds this cluster's identity
};

// The first frame on every connection, in both directions.
struct Hello {
  uint64_t cluster_id = 0;
  paxos::NodeId node_id = kClientNodeId;  // 0 = a client, else 1..paxos::kNodeIdMax
  uint32_t protocol_version = kProtocolVersion;
  // Peers only (clients send none of these).
  std::vector<TimingValue> timing;  // the sender's PeerTiming, field by field
  DataState data_state = DataState::kUnknown;
  // kEstablished only: the members this node's data directory records as having joined the
  // cluster (itself included), in increasing order; at most kJoinedMembersMax of them.
  std::vector<paxos::NodeId> joined_members;

  friend bool operator==(const Hello&, const Hello&) = default;
};

// A membership change as a client asks for it (ballotctl member add / remove).
struct MemberChangeRequest {
  bool remove = false;  // false: add `id` at `address` as a learner (promoted once caught up)
  paxos::NodeId id = paxos::kNoNode;
  std::string address;

  friend bool operator==(const MemberChangeRequest&, const MemberChangeRequest&) = default;
};

// kWatch (net/server/watch_hub.h): the next change of what `query` names after `after_slot`.
// Answered with ClientResponse::watch_changed, the change's slot in ClientResponse::slot and the
// state right after it in ClientResponse::data; or watch_changed = false after `wait_ms` without
// one.
struct WatchRequest {
  std::string query;  // passed to Watchable::NextChange
  paxos::Slot after_slot = 0;
  bool linearizable = false;  // the leader confirms its commit index first; others refuse
  uint32_t wait_ms = 0;

  friend bool operator==(const WatchRequest&, const WatchRequest&) = default;
};

struct ClientRequest {
  // kSnapshot: take a snapshot now (ballotctl snapshot); answered once it is durable, with its
  // applied_below in ClientResponse::slot.
  // kTransferLeader (ballotctl leader transfer), to the leader: hand leadership to transfer_to
  // (kNoNode: the most up-to-date voter). Answered once another node leads, with its id in
  // ClientResponse::leader_hint and its epoch in ClientResponse::epoch; kNotLeader (with a hint)
  // from a node that does not lead; kAborted if the target did not take over in time.
  // kMemberList: the leader's configuration, in ClientResponse::members. kMemberChange: leader
  // only, answered once the change is queued (the caller watches kMemberList for its effect).
  enum class Kind : uint8_t {
    kPropose,
    kRead,
    kStatus,
    kSnapshot,
    kTransferLeader,
    kMemberList,
    kMemberChange,
    kWatch
  };

  uint64_t request_id = 0;  // chosen by the client, echoed in the response
  Kind kind = Kind::kStatus;
  paxos::Command command;  // kPropose only; stamp_ms is set by the leader, not the client
  std::string query;       // kRead only: passed to StateMachine::Query
  paxos::NodeId transfer_to = paxos::kNoNode;  // kTransferLeader only
  MemberChangeRequest member_change;           // kMemberChange only
  WatchRequest watch;                          // kWatch only

  friend bool operator==(const ClientRequest&, const ClientRequest&) = default;
};

// The answer to a kStatus request.
struct NodeStatus {
  paxos::NodeId node_id = paxos::kNoNode;
  std::string role;
  uint64_t epoch = 0;  // of the leader this node follows or is; 0 = none known
  paxos::NodeId leader_id = paxos::kNoNode;
  paxos::Slot chosen_below = 0;
  paxos::Slot applied_below = 0;
  bool lease_held = false;
  uint64_t promised = 0;

  friend bool operator==(const NodeStatus&, const NodeStatus&) = default;
};

struct ClientResponse {
  uint64_t request_id = 0;
  StatusCode code = StatusCode::kOk;  // of the request itself: kNotLeader, kOverloaded, ...
  paxos::NodeId leader_hint = paxos::kNoNode;  // with kNotLeader; kNoNode = unknown
  // With leader_hint: its "host:port", so that a client whose member list does not name it (an
  // old list, after membership changes) can still reach it. Empty: not known.
  std::string leader_address;
  std::string message;                                // why, when code != kOk
  StatusCode outcome_code = StatusCode::kOk;          // the state machine's Outcome (propose, read)
  std::string data;                                   // the Outcome's data
  paxos::Slot slot = 0;                               // propose: where the command was chosen
  uint64_t epoch = 0;                                 // propose: the log's epoch there
  std::optional<NodeStatus> status;                   // set in answers to kStatus
  std::optional<std::vector<paxos::Member>> members;  // set in answers to kMemberList
  bool watch_changed = false;  // kWatch: a change after after_slot, at `slot`, state in `data`
  bool watch_gap = false;      // kWatch: changes between after_slot and `slot` were forgotten

  friend bool operator==(const ClientResponse&, const ClientResponse&) = default;
};

// One decoded frame: exactly one of the four kinds. A peer frame is a batch of messages.
using Frame = std::variant<Hello, std::vector<paxos::Message>, ClientRequest, ClientResponse>;

}  // namespace ballot::net

#endif  // BALLOT_NET_WIRE_H_
