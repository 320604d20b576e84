# The Ballot wire format. Every connection carries a stream of frames:
#
#   frame := length:UInt32 (little-endian, bytes) || one unpacked Cap'n Proto message (flat array,
#            segment table included) whose root is Frame.
#
# The first frame each side sends is a Hello; nothing else is accepted before a Hello with the
# right cluster id. The dialer sends its Hello first; the accepting side answers with its own
# only after accepting the dialer's. Peers then send `peer` frames (a batch of protocol messages, so a burst costs
# one write); clients send `request` frames and receive `response` frames.
#
# Evolution rules (Cap'n Proto's): never renumber or retype a field; add fields at the end with
# the next ordinal; bump Hello.protocolVersion only for changes old nodes cannot ignore.
@0xa180e4b960b841fa;

$import "/capnp/c++.capnp".namespace("ballot::net::wire");

struct Frame {
  union {
    hello @0 :Hello;
    peer @1 :List(PeerMessage);
    request @2 :ClientRequest;
    response @3 :ClientResponse;
  }
}

struct Hello {
  clusterId @0 :UInt64;
  nodeId @1 :UInt32;            # 0 = a client; 1..65535 = a member of the group
  protocolVersion @2 :UInt32;
  # Peers only. The timing leases depend on (tick_ms, lease_ticks, ...), by name: peers whose
  # timing differs refuse each other.
  timing @3 :List(TimingValue);
  dataState @4 :DataState;
  joinedMembers @5 :List(UInt32);  # dataState == established: members recorded as joined
}

struct TimingValue {
  name @0 :Text;
  value @1 :UInt64;
}

# Values equal net::DataState.
enum DataState {
  unknown @0;
  empty @1;
  established @2;
}

# Values equal paxos::MessageType; anything else is rejected by the decoder.
enum MessageType {
  none @0;
  preVote @1;
  preVoteReply @2;
  prepare @3;
  promise @4;
  accept @5;
  accepted @6;
  heartbeat @7;
  heartbeatReply @8;
  catchupRequest @9;
  catchupReply @10;
  snapshotRequest @11;
  snapshotChunk @12;
  timeoutNow @13;
}

# Mirrors paxos::Message: one flat struct for every kind (see paxos/message.h for which fields
# each kind uses). Ballots travel as their raw uint64 (round << 16 | node id).
struct PeerMessage {
  type @0 :MessageType;
  from @1 :UInt32;
  to @2 :UInt32;
  ballot @3 :UInt64;
  promised @4 :UInt64;
  slot @5 :UInt64;
  commit @6 :UInt64;
  round @7 :UInt64;
  ok @8 :Bool;
  entries @9 :List(Entry);
  slots @10 :List(UInt64);
  data @11 :Data;          # snapshotChunk only
  checksum @12 :UInt32;    # snapshotChunk only: CRC-32C of data
}

struct Entry {
  slot @0 :UInt64;
  ballot @1 :UInt64;
  value @2 :Value;
}

struct Value {
  epoch @0 :UInt64;
  leaderStart @1 :Bool;
  commands @2 :List(Command);
  hasConfig @3 :Bool;             # a membership change: `config` governs every later slot
  config @4 :List(Member);
  retired @5 :List(UInt32);       # with config: ids removed from the group, never reused
}

struct Member {
  id @0 :UInt32;
  address @1 :Text;
  voter @2 :Bool;
}

struct Command {
  clientId @0 :UInt64;
  sequence @1 :UInt64;
  ackedSequence @2 :UInt64;
  expectedEpoch @3 :UInt64;
  stampMs @4 :UInt64;
  payload @5 :Data;
}

struct ClientRequest {
  requestId @0 :UInt64;         # chosen by the client; echoed in the response
  union {
    propose @1 :Command;        # stampMs is ignored: the leader stamps it
    read @2 :ReadRequest;
    status @3 :Void;
    snapshot @4 :Void;          # take a snapshot now; the response's slot is its applied_below
    transferLeader @5 :UInt32;  # leader transfer to this node (0 = the most up-to-date voter);
                                # answered once another node leads: leaderHint, epoch = its own
    memberList @6 :Void;        # the leader's configuration, in the response's members
    memberChange @7 :MemberChangeRequest;  # leader only; answered once queued
    watch @8 :WatchRequest;     # the next change of a watchable key after a slot (net/watch_hub.h)
  }
}

# Waits for the next change of what `query` names (a lock, a key) after slot `afterSlot`.
# Answered with watchChanged = true, the change's slot in `slot` and the state right after it in
# `data` (what StateMachine::Query answers for `query`), or with watchChanged = false once
# `waitMs` passed without a change (ask again with the same afterSlot).
struct WatchRequest {
  query @0 :Data;
  afterSlot @1 :UInt64;
  linearizable @2 :Bool;        # confirm the leader's commit index first (leader only)
  waitMs @3 :UInt32;
}

struct MemberChangeRequest {
  remove @0 :Bool;              # false: add `id` at `address` as a learner
  id @1 :UInt32;
  address @2 :Text;
}

struct ReadRequest {
  query @0 :Data;               # passed to StateMachine::Query
}

struct ClientResponse {
  requestId @0 :UInt64;
  code @1 :UInt16;              # ballot::StatusCode of the request itself (kNotLeader, ...)
  leaderHint @2 :UInt32;        # with kNotLeader: who to ask instead (0 = unknown)
  message @3 :Text;             # why, when code != kOk
  outcomeCode @4 :UInt16;       # ballot::StatusCode of the state machine's Outcome
  data @5 :Data;                # the Outcome's data
  slot @6 :UInt64;              # propose: the slot the command was chosen in
  epoch @7 :UInt64;             # propose: the log's epoch at that slot (fencing token)
  union {
    none @8 :Void;
    status @9 :NodeStatus;      # answer to a status request
    members @11 :List(Member);  # answer to a memberList request
  }
  leaderAddress @10 :Text;      # with leaderHint: its host:port, for clients that do not list it
  watchChanged @12 :Bool;       # watch: a change after afterSlot (in slot and data)
  watchGap @13 :Bool;           # watch: earlier changes after afterSlot were forgotten
}

struct NodeStatus {
  nodeId @0 :UInt32;
  role @1 :Text;
  epoch @2 :UInt64;             # the epoch of the leader this node follows or is (0 = none)
  leaderId @3 :UInt32;
  chosenBelow @4 :UInt64;
  appliedBelow @5 :UInt64;
  leaseHeld @6 :Bool;
  promised @7 :UInt64;
}
