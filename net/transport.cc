#include "net/transport.h"

#include <glog/logging.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <deque>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "net/cluster_config.h"
#include "net/codec.h"
#include "net/frame.h"

namespace ballot::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using paxos::NodeId;

// One read syscall takes at most this much; frames span reads as needed.
constexpr size_t kReadBufferBytes = size_t{32} << 10;
// After a failed accept (e.g. out of file descriptors), wait before trying again.
constexpr std::chrono::milliseconds kAcceptRetryDelay{10};
// The same connection failure from the same host is logged at most this often; and at most this
// many distinct failures are remembered for that.
constexpr std::chrono::seconds kFailureLogInterval{60};
constexpr size_t kFailuresLoggedMax = 1024;

Status Invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

enum class CloseKind { kNormal, kBadFrame, kHandshakeRejected };

const char* FrameKindName(const Frame& frame) {
  static constexpr const char* kNames[] = {"hello", "peer", "client request", "client response"};
  return kNames[frame.index()];
}

// Arms `timer`. expires_after() has no error_code overload in Boost 1.74; a timer error cannot
// happen on Linux's epoll reactor, but nothing may throw out of our code, so it is caught.
template <typename Handler>
void ArmTimer(asio::steady_timer& timer, std::chrono::milliseconds delay, Handler&& handler) {
  try {
    timer.expires_after(delay);
  } catch (const boost::system::system_error& e) {
    LOG(ERROR) << "net: cannot arm timer: " << e.what();
  }
  timer.async_wait(std::forward<Handler>(handler));
}

}  // namespace

class Connection;

class Transport::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, TransportOptions options, PeerHandler on_peer,
       ClientHandler on_client);
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status Listen();
  void Start();
  void Shutdown();

  uint16_t port() const { return port_; }
  void Send(NodeId to, paxos::Message message);
  void SendResponse(ClientHandle client, ClientResponse response);
  bool PeerConnected(NodeId peer) const;
  const TransportCounters& counters() const { return counters_; }
  void SetPeerHelloHandler(PeerHelloHandler handler) { on_peer_hello_ = std::move(handler); }
  void SetDataState(DataState state, std::vector<NodeId> joined_members);
  void ReconnectPeers();
  Status AddPeer(NodeId node, const std::string& address);
  void RemovePeer(NodeId node);
  std::map<NodeId, std::string> Peers() const;

  // Called by connections, on the io thread.
  void OnConnectResult(Connection& conn, const error_code& ec);
  // A non-ok result closes the connection (as a bad frame unless it was closed here already).
  Status OnFrame(Connection& conn, Frame frame);
  void OnWritable(Connection& conn);
  void OnClosed(Connection& conn, const Status& why, CloseKind kind);

 private:
  // The outgoing side towards one peer: its queue survives reconnects.
  struct PeerLink {
    PeerLink(asio::io_context& io, NodeId node, HostPort address)
        : node(node), address(std::move(address)), resolver(io), retry_timer(io) {}
    const NodeId node;
    const HostPort address;
    tcp::resolver resolver;
    asio::steady_timer retry_timer;
    std::chrono::milliseconds backoff{0};
    std::shared_ptr<Connection> conn;  // connecting, handshaking or ready; null while waiting
    bool up = false;                   // handshaken
    std::chrono::steady_clock::time_point up_since;
    bool announced_up = false;  // "connected" was logged and "lost" was not since
    std::vector<paxos::Message> pending;
    size_t pending_bytes = 0;  // by PeerMessageBytesBound
    bool flush_posted = false;
  };

  void Accept();
  void OnAccept(const error_code& ec, tcp::socket socket);
  void Dial(NodeId node);
  void ConnectTo(PeerLink& link, std::vector<tcp::endpoint> endpoints);
  void ScheduleReconnect(PeerLink& link);
  void LogClose(const Connection& conn, const Status& why, CloseKind kind);
  void LinkUp(PeerLink& link);
  void LinkDown(PeerLink& link, const Status& why);
  void PostFlush(PeerLink& link);
  void FlushLink(PeerLink& link);
  std::vector<std::string> EncodePending(PeerLink& link);

  Status OnHello(Connection& conn, const Hello& hello);
  Status CheckHello(const Connection& conn, const Hello& hello) const;
  void EncodeHelloFrame();
  Status OnPeerFrame(Connection& conn, std::vector<paxos::Message> batch);
  Status OnClientFrame(Connection& conn, ClientRequest request);
  std::shared_ptr<Connection> NewConnection(tcp::socket socket, NodeId dialed);
  // Null once the link was removed (RemovePeer): handlers queued for it become no-ops.
  PeerLink* FindLink(NodeId node) {
    auto it = links_.find(node);
    return it == links_.end() ? nullptr : it->second.get();
  }

  // Constant after construction.
  asio::io_context& io_;
  const TransportOptions options_;
  const PeerHandler on_peer_;
  const ClientHandler on_client_;
  PeerHelloHandler on_peer_hello_;
  Hello hello_;              // what this node says in its handshakes
  std::string hello_frame_;  // hello_, encoded
  // Clients are answered with the cluster id, node id and version only: timing and the data
  // directory's state are for peers.
  std::string client_hello_frame_;
  bool reconnecting_ = false;  // inside ReconnectPeers(): closes are deliberate
  bool started_ = false;       // Start() ran: a peer added later is dialed at once

  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_timer_;
  uint16_t port_ = 0;
  bool shut_down_ = false;
  uint64_t next_connection_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Connection>> connections_;  // every open connection
  std::map<NodeId, std::unique_ptr<PeerLink>> links_;
  TransportCounters counters_;
  // "remote host + reason" -> when last logged; see LogClose().
  std::map<std::string, std::chrono::steady_clock::time_point> failures_logged_;
  const std::string log_prefix_;  // "net[<node id>]: ", several nodes may share a test process
};

// One TCP connection, incoming or outgoing, from connect/accept to close.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kConnecting, kHandshaking, kPeer, kClient, kClosed };

  Connection(tcp::socket socket, std::weak_ptr<Transport::Impl> owner, uint64_t id, NodeId dialed)
      : socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        owner_(std::move(owner)),
        id_(id),
        dialed_(dialed),
        decoder_(kHandshakeFrameBytesMax),
        read_buffer_(kReadBufferBytes) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Outgoing: connects, then reports to the owner, which calls Start().
  void Connect(std::vector<tcp::endpoint> endpoints, std::chrono::milliseconds timeout);
  // Starts reading and closes the connection if the handshake takes too long. A dialer sends
  // `hello_frame` at once; an incoming connection passes nullptr and answers with its hello only
  // once the dialer's is accepted (Transport::Impl::OnHello).
  void Start(const std::string* hello_frame, std::chrono::milliseconds timeout);
  // The other side's hello was accepted.
  void Admit(State role, NodeId remote);
  void Enqueue(std::string frame);
  void StartWrite();
  // StartWrite() after the current handler: every response of one drain shares a write.
  void PostWrite();
  // Idempotent; reports to the owner once.
  void Close(const Status& why, CloseKind kind);
  // Sends what is queued, then closes with `why`; frames received meanwhile are ignored, and a
  // close for another reason in between (the other side hanging up) is reported as `why`.
  void CloseAfterWrite(const Status& why, CloseKind kind);

  State state() const { return state_; }
  uint64_t id() const { return id_; }
  NodeId dialed() const { return dialed_; }
  NodeId remote() const { return remote_; }
  const std::string& remote_host() const { return remote_host_; }
  bool writing() const { return writing_; }
  size_t queued_bytes() const { return queued_bytes_; }
  std::string Describe() const;

 private:
  void ArmDeadline(std::chrono::milliseconds timeout, const char* phase);
  void Read();
  void OnRead(const error_code& ec, size_t bytes);
  void OnReadError(const error_code& ec);
  Status OnPayload(FramePayload&& payload);
  void OnWrite(const error_code& ec);

  tcp::socket socket_;
  asio::steady_timer deadline_;  // connect and handshake
  const std::weak_ptr<Transport::Impl> owner_;
  const uint64_t id_;
  const NodeId dialed_;  // kNoNode for incoming connections
  NodeId remote_ = paxos::kNoNode;
  std::string remote_host_;
  std::string remote_address_;  // host:port
  State state_ = State::kConnecting;
  State state_before_close_ = State::kClosed;  // for Describe() after Close()

  FrameDecoder decoder_;
  std::vector<uint8_t> read_buffer_;

  std::deque<std::string> queue_;  // frames waiting for the next write
  size_t queued_bytes_ = 0;
  std::vector<std::string> in_flight_;  // frames of the write in progress
  bool writing_ = false;
  bool write_posted_ = false;
  std::optional<std::pair<Status, CloseKind>> close_after_write_;
};

// ---------------------------------------------------------------------------------------------
// Connection

std::string Connection::Describe() const {
  std::string who;
  // A closing connection is described by what it was, so the log line says who misbehaved.
  switch (state_ == State::kClosed ? state_before_close_ : state_) {
    case State::kPeer:
      who = "peer " + std::to_string(remote_);
      break;
    case State::kClient:
      who = "client";
      break;
    default:
      who = dialed_ != paxos::kNoNode ? "dialing peer " + std::to_string(dialed_) : "incoming";
  }
  return "connection " + std::to_string(id_) + " (" + who +
         (remote_address_.empty() ? "" : " at " + remote_address_) + ")";
}

void Connection::ArmDeadline(std::chrono::milliseconds timeout, const char* phase) {
  ArmTimer(deadline_, timeout, [weak = weak_from_this(), phase, timeout](const error_code& ec) {
    auto self = weak.lock();
    if (!self || ec) return;
    const bool connecting = self->state_ == State::kConnecting;
    if (!connecting && self->state_ != State::kHandshaking) return;
    self->Close(Status(StatusCode::kTimeout, std::string("no ") + phase + " within " +
                                                 std::to_string(timeout.count()) + " ms"),
                connecting ? CloseKind::kNormal : CloseKind::kHandshakeRejected);
  });
}

void Connection::Connect(std::vector<tcp::endpoint> endpoints, std::chrono::milliseconds timeout) {
  ArmDeadline(timeout, "connect");
  asio::async_connect(socket_, endpoints,
                      [self = shared_from_this()](const error_code& ec, const tcp::endpoint&) {
                        if (self->state_ != State::kConnecting) return;
                        if (auto owner = self->owner_.lock()) owner->OnConnectResult(*self, ec);
                      });
}

void Connection::Start(const std::string* hello_frame, std::chrono::milliseconds timeout) {
  error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);  // small protocol messages must not wait
  const tcp::endpoint remote = socket_.remote_endpoint(ec);
  if (!ec) {
    remote_host_ = remote.address().to_string();
    remote_address_ = remote_host_ + ":" + std::to_string(remote.port());
  }
  state_ = State::kHandshaking;
  ArmDeadline(timeout, "handshake");
  if (hello_frame != nullptr) {
    Enqueue(*hello_frame);
    StartWrite();
  }
  Read();
}

void Connection::Admit(State role, NodeId remote) {
  CHECK(state_ == State::kHandshaking);
  CHECK(role == State::kPeer || role == State::kClient);
  state_ = role;
  remote_ = remote;
  decoder_.set_frame_bytes_max(kFrameBytesMax);
  error_code ec;
  deadline_.cancel(ec);
}

void Connection::Enqueue(std::string frame) {
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
}

void Connection::PostWrite() {
  if (write_posted_ || writing_) return;  // a write in progress takes the queue when it ends
  write_posted_ = true;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    self->write_posted_ = false;
    self->StartWrite();
  });
}

// Everything queued goes out in one gathered write.
void Connection::StartWrite() {
  if (writing_ || queue_.empty() || state_ == State::kClosed || state_ == State::kConnecting) {
    return;
  }
  CHECK(in_flight_.empty());
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(queue_.size());
  while (!queue_.empty()) {
    in_flight_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    buffers.push_back(asio::buffer(in_flight_.back()));
  }
  queued_bytes_ = 0;
  writing_ = true;
  asio::async_write(socket_, buffers, [self = shared_from_this()](const error_code& ec, size_t) {
    self->OnWrite(ec);
  });
}

void Connection::OnWrite(const error_code& ec) {
  writing_ = false;
  in_flight_.clear();
  if (state_ == State::kClosed) return;
  if (ec) {
    Close(Status(StatusCode::kIoError, "write failed: " + ec.message()), CloseKind::kNormal);
    return;
  }
  if (close_after_write_ && queue_.empty()) {
    const auto [why, kind] = *close_after_write_;
    Close(why, kind);
    return;
  }
  if (auto owner = owner_.lock()) owner->OnWritable(*this);
  StartWrite();
}

void Connection::Read() {
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const error_code& ec, size_t bytes) { self->OnRead(ec, bytes); });
}

void Connection::OnRead(const error_code& ec, size_t bytes) {
  if (state_ == State::kClosed) return;
  if (ec) {
    OnReadError(ec);
    return;
  }
  const Status s =
      decoder_.Feed(std::span<const uint8_t>(read_buffer_.data(), bytes),
                    [this](FramePayload&& payload) { return OnPayload(std::move(payload)); });
  if (!s.ok()) {
    Close(s, CloseKind::kBadFrame);  // no-op if a handshake rejection closed it already
    return;
  }
  if (state_ != State::kClosed) Read();
}

void Connection::OnReadError(const error_code& ec) {
  if (ec != asio::error::eof) {
    Close(Status(StatusCode::kIoError, "read failed: " + ec.message()), CloseKind::kNormal);
    return;
  }
  const Status at_end = decoder_.Finish();
  if (!at_end.ok()) {
    Close(at_end, CloseKind::kBadFrame);
    return;
  }
  if (state_ == State::kHandshaking && dialed_ != paxos::kNoNode) {
    // The peer refused our hello; its reason is in its own log, this is the dialer's side.
    Close(Status(StatusCode::kFailedPrecondition,
                 "handshake: refused by the other side (does it list this node as a peer, "
                 "with the same cluster id?)"),
          CloseKind::kHandshakeRejected);
    return;
  }
  Close(Status(StatusCode::kIoError, "closed by the other side"), CloseKind::kNormal);
}

Status Connection::OnPayload(FramePayload&& payload) {
  if (close_after_write_) return Status::Ok();  // refused already: nothing more is read
  Result<Frame> frame = DecodeFrame(payload);
  if (!frame.ok()) return frame.status();
  auto owner = owner_.lock();
  if (!owner) return Status(StatusCode::kAborted, "transport destroyed");
  return owner->OnFrame(*this, std::move(frame).value());
}

void Connection::CloseAfterWrite(const Status& why, CloseKind kind) {
  if (state_ == State::kClosed || close_after_write_) return;
  close_after_write_.emplace(why, kind);
  if (!writing_ && queue_.empty()) return Close(why, kind);
  StartWrite();
}

void Connection::Close(const Status& given_why, CloseKind given_kind) {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();  // the owner drops its reference in OnClosed
  // A refusal on its way out is the reason, whatever ended the connection first.
  const Status why = close_after_write_ ? close_after_write_->first : given_why;
  const CloseKind kind = close_after_write_ ? close_after_write_->second : given_kind;
  state_before_close_ = state_;
  state_ = State::kClosed;
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  deadline_.cancel(ec);
  queue_.clear();
  queued_bytes_ = 0;
  if (auto owner = owner_.lock()) owner->OnClosed(*this, why, kind);
}

// ---------------------------------------------------------------------------------------------
// Transport::Impl: setup and teardown

Transport::Impl::Impl(asio::io_context& io, TransportOptions options, PeerHandler on_peer,
                      ClientHandler on_client)
    : io_(io),
      options_(std::move(options)),
      on_peer_(std::move(on_peer)),
      on_client_(std::move(on_client)),
      acceptor_(io),
      accept_retry_timer_(io),
      log_prefix_("net[" + std::to_string(options_.node_id) + "]: ") {
  hello_.cluster_id = options_.cluster_id;
  hello_.node_id = options_.node_id;
  hello_.timing = TimingFields(options_.timing);
  hello_.data_state = options_.data_state;
  hello_.joined_members = options_.joined_members;
  EncodeHelloFrame();
  for (const auto& [node, address] : options_.peers) {
    Result<HostPort> hp = ParseHostPort(address);
    CHECK(hp.ok()) << hp.status().ToString();
    auto link = std::make_unique<PeerLink>(io_, node, std::move(hp).value());
    link->backoff = options_.reconnect_delay_min;
    links_.emplace(node, std::move(link));
  }
}

void Transport::Impl::EncodeHelloFrame() {
  Result<std::string> hello = EncodeHello(hello_);
  CHECK(hello.ok()) << hello.status().ToString();  // options were validated
  hello_frame_ = std::move(hello).value();
  Result<std::string> client_hello =
      EncodeHello(Hello{hello_.cluster_id, hello_.node_id, hello_.protocol_version});
  CHECK(client_hello.ok()) << client_hello.status().ToString();
  client_hello_frame_ = std::move(client_hello).value();
}

void Transport::Impl::SetDataState(DataState state, std::vector<NodeId> joined_members) {
  hello_.data_state = state;
  hello_.joined_members = std::move(joined_members);
  EncodeHelloFrame();
}

void Transport::Impl::ReconnectPeers() {
  reconnecting_ = true;
  std::vector<std::shared_ptr<Connection>> peers;
  for (const auto& [id, conn] : connections_) {
    const bool outgoing = conn->dialed() != paxos::kNoNode;
    if (outgoing || conn->state() == Connection::State::kPeer) peers.push_back(conn);
  }
  for (auto& [node, link] : links_) link->backoff = options_.reconnect_delay_min;
  for (auto& conn : peers) {
    conn->Close(Status(StatusCode::kAborted, "reconnecting to tell peers this node's new state"),
                CloseKind::kNormal);
  }
  reconnecting_ = false;
}

Status Transport::Impl::AddPeer(NodeId node, const std::string& address) {
  if (node == paxos::kNoNode || node > paxos::kNodeIdMax || node == options_.node_id) {
    return Invalid("cannot add peer " + std::to_string(node));
  }
  Result<HostPort> hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  auto it = links_.find(node);
  if (it != links_.end()) {
    if (it->second->address.host == hp.value().host &&
        it->second->address.port == hp.value().port) {
      return Status::Ok();
    }
    RemovePeer(node);  // moved: dial the new address
  }
  auto link = std::make_unique<PeerLink>(io_, node, std::move(hp).value());
  link->backoff = options_.reconnect_delay_min;
  links_.emplace(node, std::move(link));
  LOG(INFO) << log_prefix_ << "added peer " << node << " at " << address;
  if (started_) Dial(node);
  return Status::Ok();
}

void Transport::Impl::RemovePeer(NodeId node) {
  auto it = links_.find(node);
  if (it == links_.end()) return;
  std::unique_ptr<PeerLink> link = std::move(it->second);
  links_.erase(it);
  error_code ec;
  link->retry_timer.cancel(ec);
  link->resolver.cancel();
  counters_.peer_messages_dropped += link->pending.size();
  if (link->conn) {
    // OnClosed no longer finds the link: it only forgets the connection.
    link->conn->Close(Status(StatusCode::kAborted, "peer removed"), CloseKind::kNormal);
  }
  LOG(INFO) << log_prefix_ << "removed peer " << node;
}

std::map<NodeId, std::string> Transport::Impl::Peers() const {
  std::map<NodeId, std::string> out;
  for (const auto& [node, link] : links_) {
    const bool v6 = link->address.host.find(':') != std::string::npos;
    out[node] = (v6 ? "[" + link->address.host + "]" : link->address.host) + ":" +
                std::to_string(link->address.port);
  }
  return out;
}

Status Transport::Impl::Listen() {
  error_code ec;
  const auto address = asio::ip::make_address(options_.listen_host, ec);
  if (ec) return Invalid("listen_host '" + options_.listen_host + "' is not an IP address");
  const tcp::endpoint endpoint(address, options_.listen_port);
  const std::string where = options_.listen_host + ":" + std::to_string(options_.listen_port);
  acceptor_.open(endpoint.protocol(), ec);
  // Lets a restarted node listen again while its old connections sit in TIME_WAIT.
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return Status(StatusCode::kIoError, "cannot listen on " + where + ": " + ec.message());
  return Status::Ok();
}

void Transport::Impl::Start() {
  started_ = true;
  Accept();
  for (const auto& [node, link] : links_) Dial(node);
}

void Transport::Impl::Shutdown() {
  shut_down_ = true;
  error_code ec;
  acceptor_.close(ec);
  accept_retry_timer_.cancel(ec);
  for (auto& [node, link] : links_) {
    link->retry_timer.cancel(ec);
    link->resolver.cancel();
  }
  auto connections = std::move(connections_);
  for (auto& [id, conn] : connections) {
    conn->Close(Status(StatusCode::kAborted, "transport shutting down"), CloseKind::kNormal);
  }
}

// ---------------------------------------------------------------------------------------------
// Accepting and dialing

void Transport::Impl::Accept() {
  acceptor_.async_accept([weak = weak_from_this()](const error_code& ec, tcp::socket socket) {
    if (auto self = weak.lock()) self->OnAccept(ec, std::move(socket));
  });
}

void Transport::Impl::OnAccept(const error_code& ec, tcp::socket socket) {
  if (shut_down_ || ec == asio::error::operation_aborted) return;
  if (ec) {
    LOG_EVERY_N(WARNING, 100) << log_prefix_ << "accept failed: " << ec.message();
    ArmTimer(accept_retry_timer_, kAcceptRetryDelay, [weak = weak_from_this()](error_code e) {
      auto self = weak.lock();
      if (self && !e) self->Accept();
    });
    return;
  }
  if (connections_.size() >= options_.connections_max) {
    ++counters_.connections_refused;
    LOG_EVERY_N(WARNING, 100) << log_prefix_ << "refusing a connection: " << connections_.size()
                              << " open, the maximum is " << options_.connections_max;
    error_code ignored;
    socket.close(ignored);
  } else {
    ++counters_.connections_accepted;
    NewConnection(std::move(socket), paxos::kNoNode)->Start(nullptr, options_.handshake_timeout);
  }
  Accept();
}

std::shared_ptr<Connection> Transport::Impl::NewConnection(tcp::socket socket, NodeId dialed) {
  const uint64_t id = next_connection_id_++;
  auto conn = std::make_shared<Connection>(std::move(socket), weak_from_this(), id, dialed);
  connections_.emplace(id, conn);
  return conn;
}

void Transport::Impl::Dial(NodeId node) {
  auto it = links_.find(node);
  if (shut_down_ || it == links_.end()) return;
  PeerLink& link = *it->second;
  error_code ec;
  const auto address = asio::ip::make_address(link.address.host, ec);
  if (!ec) {
    ConnectTo(link, {tcp::endpoint(address, link.address.port)});
    return;
  }
  // A host name: resolve it asynchronously so a slow DNS never stalls the io thread.
  link.resolver.async_resolve(
      link.address.host, std::to_string(link.address.port),
      [weak = weak_from_this(), node](const error_code& resolve_ec,
                                      tcp::resolver::results_type results) {
        auto self = weak.lock();
        if (!self || self->shut_down_ || resolve_ec == asio::error::operation_aborted) return;
        PeerLink* found = self->FindLink(node);
        if (found == nullptr) return;
        PeerLink& link = *found;
        if (resolve_ec || results.empty()) {
          ++self->counters_.connects_failed;
          VLOG(1) << self->log_prefix_ << "cannot resolve " << link.address.host << ": "
                  << resolve_ec.message();
          self->ScheduleReconnect(link);
          return;
        }
        std::vector<tcp::endpoint> endpoints;
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
        self->ConnectTo(link, std::move(endpoints));
      });
}

void Transport::Impl::ConnectTo(PeerLink& link, std::vector<tcp::endpoint> endpoints) {
  CHECK(!link.conn);
  link.conn = NewConnection(tcp::socket(io_), link.node);
  link.conn->Connect(std::move(endpoints), options_.handshake_timeout);
}

void Transport::Impl::OnConnectResult(Connection& conn, const error_code& ec) {
  if (ec) {
    ++counters_.connects_failed;
    conn.Close(Status(StatusCode::kIoError, "connect failed: " + ec.message()), CloseKind::kNormal);
    return;
  }
  ++counters_.connects_succeeded;
  conn.Start(&hello_frame_, options_.handshake_timeout);
}

void Transport::Impl::ScheduleReconnect(PeerLink& link) {
  const std::chrono::milliseconds delay = link.backoff;
  link.backoff = std::min(link.backoff * 2, options_.reconnect_delay_max);
  ArmTimer(link.retry_timer, delay, [weak = weak_from_this(), node = link.node](error_code ec) {
    auto self = weak.lock();
    if (self && !ec) self->Dial(node);
  });
}

void Transport::Impl::OnClosed(Connection& conn, const Status& why, CloseKind kind) {
  if (shut_down_) return;
  ++counters_.connections_closed;
  if (kind == CloseKind::kBadFrame) ++counters_.bad_frames;
  if (kind == CloseKind::kHandshakeRejected) ++counters_.handshakes_rejected;
  auto it = links_.find(conn.dialed());
  PeerLink* link =
      it != links_.end() && it->second->conn.get() == &conn ? it->second.get() : nullptr;
  LogClose(conn, why, kind);
  connections_.erase(conn.id());  // `conn` stays alive: Close() holds a reference
  if (link == nullptr) return;
  link->conn.reset();
  LinkDown(*link, why);
  ScheduleReconnect(*link);
}

void Transport::Impl::LinkUp(PeerLink& link) {
  link.up = true;
  link.up_since = std::chrono::steady_clock::now();
  if (!link.announced_up) LOG(INFO) << log_prefix_ << "connected to peer " << link.node;
  link.announced_up = true;
}

// Only a connection that stayed up for a while resets the backoff and is worth a log line; one
// that the peer keeps closing right away is a flap: it backs off and is logged once.
void Transport::Impl::LinkDown(PeerLink& link, const Status& why) {
  if (!link.up) return;
  link.up = false;
  if (reconnecting_) return;
  const bool stable =
      std::chrono::steady_clock::now() - link.up_since >= options_.reconnect_delay_max;
  if (stable) {
    link.backoff = options_.reconnect_delay_min;
    LOG(INFO) << log_prefix_ << "lost the connection to peer " << link.node << ": "
              << why.message();
    link.announced_up = false;
    return;
  }
  LOG_EVERY_N(WARNING, 100) << log_prefix_ << "peer " << link.node
                            << " closed the connection right after the handshake: "
                            << why.message();
}

// One line per bad connection, except that the same failure from the same host is logged at
// most once per kFailureLogInterval: a peer configured for another cluster redials every second.
void Transport::Impl::LogClose(const Connection& conn, const Status& why, CloseKind kind) {
  if (kind == CloseKind::kNormal) {
    VLOG(1) << log_prefix_ << "closing " << conn.Describe() << ": " << why.message();
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (failures_logged_.size() >= kFailuresLoggedMax) failures_logged_.clear();
  auto [it, inserted] = failures_logged_.try_emplace(conn.remote_host() + " " + why.message(), now);
  if (!inserted && now - it->second < kFailureLogInterval) {
    VLOG(1) << log_prefix_ << "closing " << conn.Describe() << ": " << why.message();
    return;
  }
  it->second = now;
  LOG(WARNING) << log_prefix_ << "closing " << conn.Describe() << ": " << why.message();
}

// ---------------------------------------------------------------------------------------------
// Frames in

Status Transport::Impl::OnFrame(Connection& conn, Frame frame) {
  switch (conn.state()) {
    case Connection::State::kHandshaking:
      if (!std::holds_alternative<Hello>(frame)) break;
      return OnHello(conn, std::get<Hello>(frame));
    case Connection::State::kPeer:
      if (!std::holds_alternative<std::vector<paxos::Message>>(frame)) break;
      return OnPeerFrame(conn, std::move(std::get<std::vector<paxos::Message>>(frame)));
    case Connection::State::kClient:
      if (!std::holds_alternative<ClientRequest>(frame)) break;
      return OnClientFrame(conn, std::move(std::get<ClientRequest>(frame)));
    case Connection::State::kConnecting:
    case Connection::State::kClosed:
      return Status(StatusCode::kAborted, "frame on a closed connection");
  }
  return Invalid(std::string("unexpected ") + FrameKindName(frame) + " frame");
}

Status Transport::Impl::CheckHello(const Connection& conn, const Hello& hello) const {
  // A client that does not know the cluster id yet says 0 and learns it from our answer; it
  // checks the answer itself (net/client/client.h), and sends nothing before.
  const bool client_asking =
      conn.dialed() == paxos::kNoNode && hello.node_id == kClientNodeId && hello.cluster_id == 0;
  if (hello.cluster_id != options_.cluster_id && !client_asking) {
    return Status(StatusCode::kFailedPrecondition,
                  "handshake: wrong cluster id " + std::to_string(hello.cluster_id) +
                      " (this cluster is " + std::to_string(options_.cluster_id) + ")");
  }
  if (hello.protocol_version != kProtocolVersion) {
    return Status(StatusCode::kFailedPrecondition,
                  "handshake: protocol version " + std::to_string(hello.protocol_version) +
                      " (this node speaks " + std::to_string(kProtocolVersion) + ")");
  }
  if (conn.dialed() != paxos::kNoNode && hello.node_id != conn.dialed()) {
    return Status(StatusCode::kFailedPrecondition,
                  "handshake: dialed node " + std::to_string(conn.dialed()) +
                      " but it says it is node " + std::to_string(hello.node_id));
  }
  // An incoming peer need not be configured here: membership changes, and a node being added
  // may dial before this one learns of it. The cluster id and the timing are the gate; what the
  // peer may do is the core's business (only voters' votes count).
  if (hello.node_id > paxos::kNodeIdMax || hello.node_id == options_.node_id) {
    return Status(StatusCode::kFailedPrecondition,
                  "handshake: node id " + std::to_string(hello.node_id) + " is not acceptable");
  }
  return Status::Ok();
}

Status Transport::Impl::OnHello(Connection& conn, const Hello& hello) {
  Status s = CheckHello(conn, hello);
  if (!s.ok()) {
    conn.Close(s, CloseKind::kHandshakeRejected);
    return s;
  }
  const bool client = hello.node_id == kClientNodeId;
  const std::string mismatch =
      client ? std::string() : TimingMismatch(hello.node_id, hello.timing, hello_.timing);
  if (!mismatch.empty()) {
    ++counters_.timing_mismatches;
    const Status refusal(
        StatusCode::kFailedPrecondition,
        "handshake: " + mismatch + ": refusing; every node must run with the same timing flags");
    if (conn.dialed() != paxos::kNoNode) {
      conn.Close(refusal, CloseKind::kHandshakeRejected);
      return refusal;
    }
    // Our hello first, so that the dialer can name both values in its own log line too.
    conn.Enqueue(hello_frame_);
    conn.CloseAfterWrite(refusal, CloseKind::kHandshakeRejected);
    return Status::Ok();
  }
  ++counters_.handshakes_completed;
  if (!client && on_peer_hello_) on_peer_hello_(hello);
  if (conn.state() != Connection::State::kHandshaking) return Status::Ok();  // closed meanwhile
  conn.Admit(client ? Connection::State::kClient : Connection::State::kPeer, hello.node_id);
  if (conn.dialed() == paxos::kNoNode) {
    // Answering only now tells the dialer that it was accepted: a peer that does not list us,
    // or a client of another cluster, gets no hello, just a close.
    conn.Enqueue(client ? client_hello_frame_ : hello_frame_);
    conn.StartWrite();
    VLOG(1) << log_prefix_ << "accepted " << conn.Describe();
    return Status::Ok();
  }
  auto it = links_.find(conn.dialed());
  if (it != links_.end() && it->second->conn.get() == &conn) {
    LinkUp(*it->second);
    FlushLink(*it->second);
  }
  return Status::Ok();
}

Status Transport::Impl::OnPeerFrame(Connection& conn, std::vector<paxos::Message> batch) {
  // Checked for the whole batch first, so a bad batch delivers nothing.
  for (const paxos::Message& m : batch) {
    if (m.from != conn.remote()) {
      return Invalid("peer message from node " + std::to_string(m.from) +
                     " on the connection of node " + std::to_string(conn.remote()));
    }
  }
  counters_.peer_messages_received += batch.size();
  for (paxos::Message& m : batch) on_peer_(std::move(m));
  return Status::Ok();
}

Status Transport::Impl::OnClientFrame(Connection& conn, ClientRequest request) {
  ++counters_.client_requests_received;
  on_client_(ClientHandle{conn.id()}, std::move(request));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Frames out

void Transport::Impl::Send(NodeId to, paxos::Message message) {
  auto it = links_.find(to);
  if (it == links_.end()) {
    ++counters_.peer_messages_dropped;
    LOG_FIRST_N(WARNING, 10) << log_prefix_ << "dropping a message to node " << to
                             << ", which is not a configured peer";
    return;
  }
  PeerLink& link = *it->second;
  const Status valid = ValidatePeerMessage(message);
  const size_t bytes = PeerMessageBytesBound(message);
  if (!valid.ok() || link.pending.size() >= options_.peer_queue_messages_max ||
      link.pending_bytes + bytes > options_.peer_queue_bytes_max) {
    ++counters_.peer_messages_dropped;
    LOG_IF(ERROR, !valid.ok()) << log_prefix_ << "dropping an invalid message: " << valid.message();
    return;
  }
  link.pending.push_back(std::move(message));
  link.pending_bytes += bytes;
  PostFlush(link);
}

// Flushing from a posted handler lets every Send of the current handler share one frame.
void Transport::Impl::PostFlush(PeerLink& link) {
  if (link.flush_posted) return;
  link.flush_posted = true;
  asio::post(io_, [weak = weak_from_this(), node = link.node] {
    auto self = weak.lock();
    if (!self || self->shut_down_) return;
    PeerLink* link = self->FindLink(node);
    if (link == nullptr) return;
    link->flush_posted = false;
    self->FlushLink(*link);
  });
}

// Writes everything pending if the connection is ready and idle; otherwise messages keep
// accumulating and go out together when the current write completes.
void Transport::Impl::FlushLink(PeerLink& link) {
  if (!link.conn || link.conn->state() != Connection::State::kPeer || link.conn->writing() ||
      link.pending.empty()) {
    return;
  }
  for (std::string& frame : EncodePending(link)) link.conn->Enqueue(std::move(frame));
  link.conn->StartWrite();
}

std::vector<std::string> Transport::Impl::EncodePending(PeerLink& link) {
  std::vector<paxos::Message> pending = std::move(link.pending);
  link.pending.clear();
  link.pending_bytes = 0;
  std::vector<std::string> frames;
  size_t begin = 0;
  while (begin < pending.size()) {
    // Grow the batch while the bound says the frame still fits.
    size_t end = begin + 1;
    size_t bytes = kPeerFrameOverheadBytes + PeerMessageBytesBound(pending[begin]);
    while (end < pending.size() && end - begin < kPeerMessagesPerFrameMax &&
           bytes + PeerMessageBytesBound(pending[end]) <= kFrameBytesMax) {
      bytes += PeerMessageBytesBound(pending[end++]);
    }
    const std::span<const paxos::Message> batch(pending.data() + begin, end - begin);
    Result<std::string> frame = EncodePeerBatch(batch);
    if (frame.ok()) {
      frames.push_back(std::move(frame).value());
      counters_.peer_messages_sent += batch.size();
      ++counters_.peer_frames_sent;
    } else {
      counters_.peer_messages_dropped += batch.size();
      LOG_EVERY_N(ERROR, 100) << log_prefix_ << "dropping " << batch.size()
                              << " message(s) to peer " << link.node << ": "
                              << frame.status().message();
    }
    begin = end;
  }
  return frames;
}

void Transport::Impl::OnWritable(Connection& conn) {
  auto it = links_.find(conn.dialed());
  if (it != links_.end() && it->second->conn.get() == &conn) FlushLink(*it->second);
}

void Transport::Impl::SendResponse(ClientHandle client, ClientResponse response) {
  auto it = connections_.find(client.connection_id);
  if (it == connections_.end() || it->second->state() != Connection::State::kClient) {
    ++counters_.client_responses_dropped;  // the client went away; it will retry elsewhere
    return;
  }
  Connection& conn = *it->second;
  Result<std::string> frame = EncodeClientResponse(response);
  if (!frame.ok()) {
    ++counters_.client_responses_dropped;
    LOG_EVERY_N(ERROR, 100) << log_prefix_
                            << "cannot encode a client response: " << frame.status().message();
    return;
  }
  // Always admit one response, however large, so a big answer is never starved.
  if (conn.queued_bytes() > 0 &&
      conn.queued_bytes() + frame.value().size() > options_.client_queue_bytes_max) {
    ++counters_.client_responses_dropped;
    return;
  }
  ++counters_.client_responses_sent;
  conn.Enqueue(std::move(frame).value());
  conn.PostWrite();
}

bool Transport::Impl::PeerConnected(NodeId peer) const {
  auto it = links_.find(peer);
  return it != links_.end() && it->second->up;
}

// ---------------------------------------------------------------------------------------------
// Transport

Status TransportOptions::Validate() const {
  if (node_id == paxos::kNoNode || node_id > paxos::kNodeIdMax) {
    return Invalid("node_id must be in 1.." + std::to_string(paxos::kNodeIdMax));
  }
  for (const auto& [node, address] : peers) {
    if (node == node_id) return Invalid("peers must not contain this node's own id");
    if (node == paxos::kNoNode || node > paxos::kNodeIdMax) {
      return Invalid("peer id " + std::to_string(node) + " is not a node id");
    }
    Result<HostPort> hp = ParseHostPort(address);
    if (!hp.ok()) return Invalid("peer " + std::to_string(node) + ": " + hp.status().message());
  }
  if (reconnect_delay_min.count() <= 0 || reconnect_delay_max < reconnect_delay_min) {
    return Invalid("reconnect delays must satisfy 0 < reconnect_delay_min <= reconnect_delay_max");
  }
  if (handshake_timeout.count() <= 0) return Invalid("handshake_timeout must be positive");
  if (peer_queue_messages_max == 0 || peer_queue_bytes_max == 0 || client_queue_bytes_max == 0 ||
      connections_max == 0) {
    return Invalid("queue and connection bounds must be positive");
  }
  Hello hello{cluster_id,           node_id,    kProtocolVersion,
              TimingFields(timing), data_state, joined_members};
  if (Result<std::string> encoded = EncodeHello(hello); !encoded.ok()) {
    return Invalid("joined_members: " + encoded.status().message());
  }
  return Status::Ok();
}

Result<std::unique_ptr<Transport>> Transport::Create(asio::io_context& io, TransportOptions options,
                                                     PeerHandler on_peer_message,
                                                     ClientHandler on_client_request) {
  Status s = options.Validate();
  if (!s.ok()) return s;
  if (!on_peer_message || !on_client_request) return Invalid("both handlers are required");
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(on_peer_message),
                                     std::move(on_client_request));
  s = impl->Listen();
  if (!s.ok()) return s;
  impl->Start();
  return std::unique_ptr<Transport>(new Transport(std::move(impl)));
}

Transport::Transport(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Transport::~Transport() { impl_->Shutdown(); }

uint16_t Transport::port() const { return impl_->port(); }

void Transport::Send(NodeId to, paxos::Message message) { impl_->Send(to, std::move(message)); }

void Transport::SendResponse(ClientHandle client, ClientResponse response) {
  impl_->SendResponse(client, std::move(response));
}

bool Transport::PeerConnected(NodeId peer) const { return impl_->PeerConnected(peer); }

const TransportCounters& Transport::counters() const { return impl_->counters(); }

void Transport::SetPeerHelloHandler(PeerHelloHandler handler) {
  impl_->SetPeerHelloHandler(std::move(handler));
}

void Transport::SetDataState(DataState state, std::vector<NodeId> joined_members) {
  impl_->SetDataState(state, std::move(joined_members));
}

void Transport::ReconnectPeers() { impl_->ReconnectPeers(); }

Status Transport::AddPeer(NodeId node, const std::string& address) {
  return impl_->AddPeer(node, address);
}

void Transport::RemovePeer(NodeId node) { impl_->RemovePeer(node); }

std::map<NodeId, std::string> Transport::Peers() const { return impl_->Peers(); }

PeerTiming PeerTimingOf(std::chrono::milliseconds tick, const paxos::Tuning& options) {
  PeerTiming t;
  t.tick_ms = static_cast<uint32_t>(tick.count());
  t.heartbeat_ticks = options.heartbeat_ticks;
  t.election_ticks = options.election_ticks;
  t.lease_ticks = options.lease_ticks;
  t.max_clock_drift_ppm = options.max_clock_drift_ppm;
  return t;
}

std::string TimingMismatch(NodeId peer, const std::vector<TimingValue>& theirs,
                           const std::vector<TimingValue>& ours) {
  const std::string who = "peer " + std::to_string(peer);
  auto find = [](const std::vector<TimingValue>& values, const std::string& name) {
    return std::find_if(values.begin(), values.end(),
                        [&](const TimingValue& v) { return v.name == name; });
  };
  for (const TimingValue& mine : ours) {
    auto it = find(theirs, mine.name);
    if (it == theirs.end()) {
      return who + " sends no " + mine.name + ", this node " + std::to_string(mine.value) +
             " (an older or newer ballotd?)";
    }
    if (it->value != mine.value) {
      return who + " has " + mine.name + "=" + std::to_string(it->value) + ", this node " +
             std::to_string(mine.value);
    }
  }
  for (const TimingValue& other : theirs) {
    if (find(ours, other.name) == ours.end()) {
      return who + " has " + other.name + "=" + std::to_string(other.value) +
             ", which this node does not know (an older or newer ballotd?)";
    }
  }
  return std::string();
}

}  // namespace ballot::net
