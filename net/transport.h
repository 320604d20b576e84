// Transport: the TCP side of a node. One listening port serves both peers and clients; one
// outgoing connection per peer carries this node's messages to it.
//
// Every connection starts with a Hello in each direction (net/wire.h): the dialer (peer or
// client) sends its own at once; the accepting side checks it and only then answers with its own,
// so a dialer that gets a Hello back knows it was accepted. Nothing else is accepted until the
// other side's Hello names this cluster, this protocol version and an acceptable node id: the
// dialed peer's id on an outgoing connection; on an incoming one, any other node id (membership
// changes: a node being added may dial before this one knows it) or 0 for a client. A client may
// also say cluster 0: it does not know the id yet (net/client/client.h) and learns it from the
// answer. Until then a frame may be at most kHandshakeFrameBytesMax long.
//
// Peers also compare their timing (PeerTiming: tick, heartbeat, election timeout, lease, drift
// bound): a lease is only safe if every node counts it alike. A peer whose timing differs is
// refused on both sides: the accepting side answers with its own Hello (so that the dialer sees
// the values too) and closes; each side logs a line naming both values and counts it in
// timing_mismatches. The link keeps redialing with backoff, so a node restarted with the right
// flags is connected again without restarting the others. Peer Hellos also carry what each
// node's data directory says about the cluster (DataState, joined members); the transport only
// carries that, the node decides (net/server/server.cc, safe bootstrap).
//
// Peer messages to one node queue on its link and go out coalesced: everything queued when the
// connection can write becomes one frame and one write (a burst costs one syscall). The queue is
// bounded; beyond the bound, and while it cannot be sent, messages are dropped and counted —
// Paxos tolerates loss and the core retries. A link that fails reconnects with exponential
// backoff (reconnect_delay_min .. reconnect_delay_max), keeping its queue; the backoff resets
// only after a connection stayed up for reconnect_delay_max, so a peer that keeps closing
// right after the handshake is not redialed in a tight loop.
//
// Untrusted input: a bad frame (garbage, oversized, truncated at close, a kind not allowed on
// the connection, a peer message whose `from` is not the handshaken node) or a failed handshake
// closes that connection only, logs one LOG(WARNING) line for it, and is counted.
//
// Threads: the transport runs on the caller's io_context, which must be run by exactly one thread
// (the node's io thread). Every method, and the destructor, must be called on that thread;
// callbacks are invoked on it. Callbacks must not throw and must not destroy the transport;
// they may call Send() and SendResponse().
#ifndef BALLOT_NET_TRANSPORT_H_
#define BALLOT_NET_TRANSPORT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/wire.h"
#include "paxos/message.h"
#include "paxos/options.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace ballot::net {

// Frames before the handshake completes are at most this long (a Hello is ~40 bytes), so an
// unauthenticated connection cannot make us buffer much.
inline constexpr size_t kHandshakeFrameBytesMax = 4096;

struct TransportOptions {
  uint64_t cluster_id = 0;
  paxos::NodeId node_id = paxos::kNoNode;  // this node: 1..kNodeIdMax
  // This node's lease timing (PeerTimingOf): peers whose timing differs are refused.
  PeerTiming timing;
  // Sent in every peer Hello; SetDataState() changes them later.
  DataState data_state = DataState::kUnknown;
  std::vector<paxos::NodeId> joined_members;  // increasing, at most kJoinedMembersMax
  // Where to listen. Port 0 picks a free port; Transport::port() reports it.
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;
  // Every other member: node id -> "host:port" ("[v6addr]:port" for IPv6). Must not contain
  // node_id. AddPeer()/RemovePeer() change the set later (membership changes).
  std::map<paxos::NodeId, std::string> peers;

  std::chrono::milliseconds reconnect_delay_min{10};
  std::chrono::milliseconds reconnect_delay_max{1000};
  // A connection that has not completed the handshake by then is closed (and counted).
  std::chrono::milliseconds handshake_timeout{5000};

  // Bounds. Beyond them messages or responses are dropped and counted; connections refused.
  size_t peer_queue_messages_max = 16384;            // queued for one peer
  size_t peer_queue_bytes_max = size_t{64} << 20;    // ditto, by PeerMessageBytesBound
  size_t client_queue_bytes_max = size_t{32} << 20;  // encoded responses queued on one client
  size_t connections_max = 1024;                     // open connections of every kind

  // Names the offending field and why.
  Status Validate() const;
};

// Identifies a client connection across callbacks. Responding after the connection closed is a
// harmless no-op; ids are never reused within a transport.
struct ClientHandle {
  uint64_t connection_id = 0;
  friend bool operator==(ClientHandle, ClientHandle) = default;
};

// Monotonic counters for operators and tests.
struct TransportCounters {
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // over connections_max
  uint64_t connects_succeeded = 0;   // outgoing TCP connects
  uint64_t connects_failed = 0;
  uint64_t connections_closed = 0;  // of every kind, for any reason
  uint64_t handshakes_completed = 0;
  uint64_t handshakes_rejected = 0;  // wrong cluster / version / node id / timing, timeout
  uint64_t timing_mismatches = 0;    // peer hellos refused because the peer's timing differs
  uint64_t bad_frames = 0;           // malformed, oversized, truncated, not allowed here
  uint64_t peer_messages_sent = 0;   // handed to the socket
  uint64_t peer_frames_sent = 0;
  uint64_t peer_messages_received = 0;
  uint64_t peer_messages_dropped = 0;  // queue full, unknown destination, too big to encode
  uint64_t client_requests_received = 0;
  uint64_t client_responses_sent = 0;
  uint64_t client_responses_dropped = 0;  // connection gone, queue full, cannot encode
};

// The timing of a node that ticks every `tick` with these protocol options: the one place that
// decides which options peers must agree on.
PeerTiming PeerTimingOf(std::chrono::milliseconds tick, const paxos::Tuning& options);

// "peer 2 has tick_ms=20, this node 10" for the first timing field that differs between `theirs`
// and `ours` (or that only one side sends); empty if they agree.
std::string TimingMismatch(paxos::NodeId peer, const std::vector<TimingValue>& theirs,
                           const std::vector<TimingValue>& ours);

class Transport {
 public:
  using PeerHandler = std::function<void(paxos::Message message)>;
  using ClientHandler = std::function<void(ClientHandle client, ClientRequest request)>;
  // Every accepted peer Hello, in either direction. On an incoming connection it runs before this
  // node answers with its own Hello, so the answer already reflects what the handler changed.
  using PeerHelloHandler = std::function<void(const Hello& hello)>;

  // Listens and starts dialing every peer. kInvalidArgument for bad options, kIoError if the
  // listening socket cannot be set up (e.g. the port is taken). `io` must outlive the transport.
  static Result<std::unique_ptr<Transport>> Create(boost::asio::io_context& io,
                                                   TransportOptions options,
                                                   PeerHandler on_peer_message,
                                                   ClientHandler on_client_request);

  // Closes every socket; handlers still queued on the io_context become no-ops.
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The port actually listened on.
  uint16_t port() const;

  // Queues `message` for peer `to` (which should equal message.to). Dropped and counted if `to`
  // is not a configured peer, the peer's queue is full, or the message cannot be encoded.
  void Send(paxos::NodeId to, paxos::Message message);

  // Queues a response on a client connection. A no-op (counted as dropped) if the connection has
  // closed or its queue is full.
  void SendResponse(ClientHandle client, ClientResponse response);

  // True while the outgoing connection to `peer` has completed its handshake.
  bool PeerConnected(paxos::NodeId peer) const;

  // Set before the io_context first runs (handshakes happen there); may be empty.
  void SetPeerHelloHandler(PeerHelloHandler handler);
  // What later peer Hellos say about this node's data directory. Connections already handshaken
  // keep what they were told; ReconnectPeers() makes every peer hear the new state.
  void SetDataState(DataState state, std::vector<paxos::NodeId> joined_members);
  // Closes every peer connection, incoming and outgoing; links redial at once and each side
  // handshakes again. Queued messages stay queued.
  void ReconnectPeers();

  // Membership changes. AddPeer starts dialing `node` at `address` (a no-op if it is already a
  // peer there; a new address replaces the old link). RemovePeer closes the outgoing link and
  // drops what is queued on it; incoming connections from the node are left alone (they carry
  // nothing this node must answer on them). kInvalidArgument for this node's id or a bad address.
  Status AddPeer(paxos::NodeId node, const std::string& address);
  void RemovePeer(paxos::NodeId node);
  // The configured peers: id -> "host:port".
  std::map<paxos::NodeId, std::string> Peers() const;

  const TransportCounters& counters() const;

  class Impl;

 private:
  explicit Transport(std::shared_ptr<Impl> impl);
  // Shared so that handlers still queued on the io_context can tell, through a weak_ptr, that
  // the transport is gone.
  std::shared_ptr<Impl> impl_;
};

}  // namespace ballot::net

#endif  // BALLOT_NET_TRANSPORT_H_
