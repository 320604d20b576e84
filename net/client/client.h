// Client: talks to a Ballot cluster over its client protocol (net/wire.h).
//
// A Client proposes commands to the leader, reads through it, and asks any node for its status.
// It finds the leader by itself: it starts at the node it last saw leading (at first the
// lowest id), follows kNotLeader hints, and on an attempt timeout or a connection failure moves
// to the next member. Every retry of a proposal resends the SAME command (same client id and
// sequence), so the replicated session table applies it at most once and answers a retry with
// the original result (statemachine/session_table.h). If the replicas answer a proposal
// "session expired" (IsSessionExpired: they evicted this client's session and can no longer tell
// which of its commands were applied), that answer is the proposal's outcome, and every later
// proposal goes out in a new session, under a new random client id.
//
// Members it was not given: a "not the leader" answer may name the leader's address
// (ClientResponse::leader_address); the client adds that node to the ones it knows (at most 64),
// so a list of old members still reaches a leader that joined later.
//
// Which cluster: unless ClientOptions::cluster_id pins it, the client learns the cluster id from
// the first server that completes a handshake (its Hello names its cluster) and holds every other
// server to it: a server that answers with another id is refused (that connection closes with
// kFailedPrecondition naming both ids, counted in wrong_cluster) and the request moves on to the
// next member. LearnClusterId() makes the first server deterministic: members in id order.
// Clients say cluster 0 ("which cluster are you?") in their own Hello and check the answer
// themselves, so the refusal names the server's id on the client's side.
//
// Every call has a deadline. At the deadline the call ends with kTimeout, whose message names
// the last failure seen ("wrong cluster id", "connection refused", ...). A proposal that timed
// out has an unknown fate: it may still be applied later.
//
// Threads: a Client owns one io thread (one io_context) and one connection per member, opened
// lazily with the Hello handshake and reopened after a failure. Every public method is
// thread-safe; many requests may be in flight at once on one connection, and responses are
// matched by request id in any order. The synchronous methods must not be called on the
// client's io thread (from an async callback): they return kFailedPrecondition there.
//
// Untrusted input: every frame from a server is decoded by net/codec.h and checked (the Hello
// must name this cluster, the protocol version and the dialed node; afterwards only responses
// to requests sent on that connection are accepted). A bad frame closes that connection; the
// request moves on as after any connection failure.
//
// Nothing here throws.
#ifndef BALLOT_NET_CLIENT_CLIENT_H_
#define BALLOT_NET_CLIENT_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "net/cluster_config.h"
#include "net/wire.h"
#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/session_table.h"
#include "statemachine/state_machine.h"

namespace ballot {

using net::NodeStatus;

struct ClientOptions {
  // 0: learn it from the first server that answers (see above); else only servers of this
  // cluster are accepted.
  uint64_t cluster_id = 0;
  // Every member: id (1..paxos::kNodeIdMax) -> "host:port" ("[v6addr]:port" for IPv6). A host
  // name is resolved when a connection is opened, without blocking the io thread.
  std::map<paxos::NodeId, std::string> members;
  // How long one attempt (connect + handshake + answer) may take on one node before the request
  // moves to the next node. Also bounds the handshake of a new connection.
  std::chrono::milliseconds attempt_timeout{500};
  // The pause before retrying after an answer that says "not now" (kOverloaded) or a connection
  // failure. After kNotLeader answers that give no usable hint or keep pointing at each other (a
  // leader change under way) the pause is shorter: 1 ms, then 2, then 4 ms (at most this).
  std::chrono::milliseconds retry_backoff{20};
  // The first session's id in every command; 0 = random non-zero. After a "session expired"
  // answer the client moves to a new random id (Client::client_id() tells the current one).
  uint64_t client_id = 0;
  // Requests of every kind in flight at once; beyond it calls end at once with kOverloaded.
  // At most the servers' results_per_session_max (statemachine/session_table.h, 1024 by
  // default): the replicas keep that many results per session, and a retried command whose
  // result was evicted can only be answered "session expired", never applied again.
  size_t in_flight_max = 1024;

  // kInvalidArgument naming the offending field.
  Status Validate() const;
};

// Monotonic counters, for tests and operators.
struct ClientCounters {
  uint64_t attempts = 0;             // requests written (first tries and retries)
  uint64_t responses = 0;            // responses matched to a live request
  uint64_t stale_responses = 0;      // for requests already answered, abandoned or unknown
  uint64_t not_leader = 0;           // kNotLeader answers
  uint64_t attempt_timeouts = 0;     // attempts abandoned after attempt_timeout
  uint64_t connections_opened = 0;   // handshakes completed
  uint64_t connection_failures = 0;  // connect, handshake, read or write failures
  uint64_t bad_frames = 0;           // malformed or unexpected frames from a server
  uint64_t sessions_expired = 0;     // "session expired" answers that started a new session
  uint64_t wrong_cluster = 0;        // handshakes refused: the server is in another cluster
};

class Client {
 public:
  struct ProposeReply {
    // The state machine's answer. A refusal by the state machine (kAborted, kInvalidArgument,
    // e.g. an expected_epoch mismatch) is a successful call with a non-ok outcome.
    Outcome outcome;
    paxos::Slot slot = 0;                   // where the command was chosen
    uint64_t epoch = 0;                     // the log's epoch at that slot: the fencing token
    paxos::NodeId leader = paxos::kNoNode;  // the node that answered
  };
  using ProposeCallback = std::function<void(Result<ProposeReply>)>;

  // Validates the options and starts the io thread; connects to nothing yet.
  // kInvalidArgument for bad options (no members, an id out of range, a malformed address);
  // kIoError if the thread cannot be started.
  static Result<std::unique_ptr<Client>> Create(ClientOptions options);

  // Ends every call still in flight with kAborted (async callbacks run, on the io thread, before
  // this returns), closes the connections and joins the io thread. Must not be called on the io
  // thread (from a callback): that is a CHECK failure.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Proposes `payload` as one command, waits until the leader has applied it, and returns the
  // outcome. expected_epoch != 0 makes the command apply only in that epoch (a fenced write).
  // An outcome for which IsSessionExpired() holds (kAborted "session expired: ...") means the
  // replicas lost this client's session: the command may or may not have been applied, and the
  // client has started a new session for the next proposals.
  // Errors: kTimeout at the deadline (the command may still be applied later); kOverloaded when
  // in_flight_max calls are in flight; kInvalidArgument if the request cannot be encoded (too
  // big) or a server rejects it as malformed; kFailedPrecondition on the io thread; kAborted
  // when the client is being destroyed; any other non-retryable error a server answers with.
  Result<ProposeReply> Propose(std::string payload, std::chrono::milliseconds timeout,
                               uint64_t expected_epoch = 0);

  // The same, asynchronous: returns at once; `done` runs exactly once, on the io thread. It must
  // not block or throw; it may start further async calls (but not after a kAborted result: the
  // client is being destroyed, and a callback that keeps starting calls keeps it alive).
  void ProposeAsync(std::string payload, std::chrono::milliseconds timeout, ProposeCallback done,
                    uint64_t expected_epoch = 0);

  // A linearizable read: StateMachine::Query(query) on the leader. Errors as Propose.
  Result<Outcome> Read(std::string query, std::chrono::milliseconds timeout);

  // Watches (net/server/watch_hub.h; docs/fencing.md "Election and watches"). One long poll for the
  // next change of what `query` names (a lock: LockService::EncodeGet) in a slot above
  // `after_slot`: answered as soon as the serving replica has applied one, or with
  // changed = false once `wait` passed without one (ask again with the same after_slot).
  // Resume from the last WatchReply::slot seen, on any replica, after any failure: no change is
  // missed (unless the reply says gap). after_slot = Watchable::kCurrentState answers at once
  // with the current state and the slot of its last change: where a new watcher starts.
  struct WatchOptions {
    // false: any replica answers once it has applied past after_slot (it may be behind the
    // leader, never behind after_slot). true: the leader first confirms its commit index (a
    // read index) and answers from a state at least that new; followers refuse with a hint.
    bool linearizable = false;
    std::chrono::milliseconds wait{2000};  // the server caps it at 60 s
  };
  struct WatchReply {
    bool changed = false;  // false: nothing changed within `wait`
    paxos::Slot slot = 0;  // the change's slot: the next after_slot
    std::string data;      // the state right after it (what Query(query) answered then)
    bool gap = false;      // changes between after_slot and slot were forgotten (Watchable)
    paxos::NodeId node = paxos::kNoNode;  // the replica that answered
  };
  // kOverloaded "too many watches" when the replica has watches_max parked (not retried);
  // kInvalidArgument for a query the state machine cannot watch; kTimeout; as Read otherwise.
  // `timeout` bounds the whole call; `wait` is cut to fit in it.
  Result<WatchReply> Watch(std::string query, paxos::Slot after_slot,
                           std::chrono::milliseconds timeout, WatchOptions options);

  // The status of one member (any role), retried on that node until the deadline.
  // kInvalidArgument if `node` is not a member; kTimeout naming the last failure.
  Result<NodeStatus> Status(paxos::NodeId node, std::chrono::milliseconds timeout);

  // Asks member `node` to take a snapshot of its state machine now (ballotctl snapshot) and
  // waits until it is durable there; returns the slot it covers (every slot below it).
  // kInvalidArgument if `node` is not a member; the node's error (kIoError, kNoSpace) if
  // writing failed; kTimeout.
  Result<paxos::Slot> TakeSnapshot(paxos::NodeId node, std::chrono::milliseconds timeout);

  // Membership (docs/membership.md), through the leader like proposals. MemberList: the
  // configuration the leader works with (the one governing its next slot), by id.
  // ChangeMember: asks the leader to add a learner or remove a member; kOk once the leader has
  // queued it (watch MemberList for its effect: a learner is promoted once it caught up).
  // Refusals carry the leader's reason: kFailedPrecondition ("another membership change is
  // under way"), kInvalidArgument (an id that is already a member, not a member, ...). Removing
  // the leader makes it hand over first (Replica::TransferLeadership); the call then follows the
  // new leader, which removes it.
  Result<std::vector<paxos::Member>> MemberList(std::chrono::milliseconds timeout);
  ballot::Status ChangeMember(net::MemberChangeRequest change, std::chrono::milliseconds timeout);

  // Asks every member once, concurrently, and returns each one's status or why it has none: a
  // node that refuses connections is reported at once (kIoError), a silent one after
  // min(attempt_timeout, timeout) (kTimeout). Never retries; the map has every member.
  std::map<paxos::NodeId, Result<NodeStatus>> StatusAll(std::chrono::milliseconds timeout);

  // The leader: (id, epoch) of the node with the highest epoch among those whose status says
  // role "leader". Asks every member in rounds until one claims leadership or the deadline:
  // kNotFound if nodes answered but none leads, kTimeout if none answered.
  Result<std::pair<paxos::NodeId, uint64_t>> FindLeader(std::chrono::milliseconds timeout);

  // Moves leadership to member `to` (kNoNode: the most up-to-date voter the leader picks) and
  // returns the new leader's (id, epoch) once it leads (ballotctl leader transfer). Finds the
  // leader, then asks it once: the leader stops taking new commands (they are answered
  // kNotLeader with the target as hint, and this client's proposals follow it), brings the
  // target up to date and makes it campaign at once. If `to` already leads, returns it.
  // kAborted if the target did not take over (the old leader keeps leading) or leadership went
  // to another node (a transfer already under way); kInvalidArgument
  // if `to` is not a voter; kTimeout; kNotFound if no node leads.
  Result<std::pair<paxos::NodeId, uint64_t>> TransferLeadership(paxos::NodeId to,
                                                                std::chrono::milliseconds timeout);

  // Asks the members one at a time, in id order, for their status (one attempt each, at most
  // attempt_timeout) until one answers, and returns the cluster id then known: pinned by the
  // options, or learnt from that first server. Returns at once once the id is known.
  // kTimeout (naming the last failure) if no member answered by the deadline.
  Result<uint64_t> LearnClusterId(std::chrono::milliseconds timeout);

  // The cluster id: the pinned one, or the one learnt; 0 while none is known.
  uint64_t cluster_id() const;
  // The current session's client id (it changes after a "session expired" answer).
  uint64_t client_id() const;
  // The node the client currently believes leads (kNoNode before any answer).
  paxos::NodeId cached_leader() const;
  ClientCounters counters() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ballot

#endif  // BALLOT_NET_CLIENT_CLIENT_H_
