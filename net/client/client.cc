#include "net/client/client.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <deque>
#include <optional>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "net/cluster_config.h"
#include "net/codec.h"
#include "net/frame.h"
#include "net/transport.h"
#include "statemachine/thread_annotations.h"

namespace ballot {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using net::ClientRequest;
using net::ClientResponse;
using paxos::NodeId;
using std::chrono::milliseconds;

namespace {

// Bytes read from a socket at a time.
constexpr size_t kReadBufferBytes = size_t{64} << 10;
// Encoded requests queued on one connection (waiting for the handshake or the socket). Beyond
// it an attempt fails with kOverloaded and is retried after the backoff.
constexpr size_t kConnectionQueueBytesMax = size_t{64} << 20;
// Per call, the request ids of this many most recent attempts stay live: a late kOk to any of
// them answers the call (every attempt carries the same command). Older ones are forgotten.
constexpr size_t kLiveAttemptsMax = 8;
// A synchronous caller stops waiting this long after its deadline even if the io thread is late
// (e.g. blocked in a slow async callback); the io thread ends the call at the deadline anyway.
constexpr milliseconds kSyncWaitSlack{50};
// FindLeader pauses at least this long between rounds.
constexpr milliseconds kFindLeaderPauseMin{10};

// Members a client adds from servers' hints (ClientResponse::leader_address) at most.
constexpr size_t kLearntMembersMax = 64;

// The first pause after "not the leader" answers; it doubles up to kNotLeaderPauseMax (and never
// beyond retry_backoff). Kept short because a leader change under way (an election, a transfer)
// ends within tens of milliseconds, and a client asleep for longer only adds to the pause it
// sees; the cost is a few cheap refusals per client per millisecond while no node leads.
constexpr milliseconds kNotLeaderPauseMin{1};
constexpr milliseconds kNotLeaderPauseMax{4};

// Client::TransferLeadership asks the leader it found at most this many times (each time the
// node it asked no longer led).
constexpr int kTransferRoundsMax = 8;

ballot::Status Invalid(std::string message) {
  return ballot::Status(StatusCode::kInvalidArgument, std::move(message));
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A random non-zero session id. random_device may throw where no entropy source exists; the
// clock and an address still make collisions between clients unlikely then.
uint64_t RandomClientId() {
  uint64_t seed = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  try {
    std::random_device rd;
    seed ^= (uint64_t{rd()} << 32) | rd();
  } catch (const std::exception&) {
    seed ^= reinterpret_cast<uintptr_t>(&seed);
  }
  for (uint64_t i = 0;; ++i) {
    const uint64_t id = SplitMix64(seed + i);
    if (id != 0) return id;
  }
}

// Arms `timer` to fire at `when`. Boost 1.74 has no error_code overload of expires_at; it cannot
// fail on Linux, but nothing may throw out of this file.
template <typename Handler>
bool ArmTimer(asio::steady_timer& timer, Clock::time_point when, Handler&& handler) {
  try {
    timer.expires_at(when);
  } catch (const boost::system::system_error& e) {
    LOG(ERROR) << "client: cannot arm timer: " << e.what();
    return false;
  }
  timer.async_wait(std::forward<Handler>(handler));
  return true;
}

void CancelTimer(asio::steady_timer& timer) {
  error_code ec;
  timer.cancel(ec);
}

// What to do after an attempt failed.
enum class Retry {
  kSameNode,  // the node answered "not now": ask it again after the backoff
  kNextNode,  // the node is unreachable or cannot serve: move on
};

}  // namespace

namespace {

// As store::FormatClusterId (the client does not link the store).
std::string ClusterIdText(uint64_t cluster_id) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%016llx", static_cast<unsigned long long>(cluster_id));
  return text;
}

}  // namespace

ballot::Status ClientOptions::Validate() const {
  if (members.empty()) return Invalid("members must name at least one node");
  for (const auto& [id, address] : members) {
    if (id == paxos::kNoNode || id > paxos::kNodeIdMax) {
      return Invalid("member id " + std::to_string(id) + " is not in 1.." +
                     std::to_string(paxos::kNodeIdMax));
    }
    Result<HostPort> hp = ParseHostPort(address);
    if (!hp.ok()) return Invalid("member " + std::to_string(id) + ": " + hp.status().message());
  }
  if (attempt_timeout.count() <= 0) return Invalid("attempt_timeout must be positive");
  if (retry_backoff.count() < 0) return Invalid("retry_backoff must not be negative");
  if (in_flight_max == 0) return Invalid("in_flight_max must be at least 1");
  return ballot::Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The io-thread machinery. Everything below runs on the client's io thread unless it says
// otherwise. It lives at namespace scope (not inside Client) so that `Status` names the type,
// not Client::Status.

class ClientCore;

// One connection to one member: connect, handshake, then requests out and responses in.
class ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  enum class State { kResolving, kConnecting, kHandshaking, kReady, kClosed };

  ClientConnection(ClientCore* owner, asio::io_context& io, NodeId node, uint64_t id,
                   HostPort address)
      : owner_(owner),
        node_(node),
        id_(id),
        address_(std::move(address)),
        socket_(io),
        resolver_(io),
        timer_(io),
        decoder_(net::kHandshakeFrameBytesMax),
        read_buffer_(kReadBufferBytes) {}

  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Starts connecting; everything happens asynchronously. The handshake (connect included) must
  // finish within `timeout`.
  void Open(std::string hello_frame, milliseconds timeout);
  // Queues an encoded request; it goes out once the handshake is done. False if the connection
  // is closed or its queue is full.
  bool Send(std::string frame);
  // Idempotent. Tells the owner, which fails the attempts that were waiting here.
  void Close(const ballot::Status& why, bool bad_frame = false);

  NodeId node() const { return node_; }
  uint64_t id() const { return id_; }
  bool closed() const { return state_ == State::kClosed; }

 private:
  void Connect(std::vector<tcp::endpoint> endpoints);
  void OnConnected();
  void StartWrite();
  void OnWrite(const error_code& ec);
  void Read();
  void OnRead(const error_code& ec, size_t bytes);
  ballot::Status OnPayload(net::FramePayload&& payload);
  ballot::Status OnHello(const net::Hello& hello);

  ClientCore* const owner_;  // outlives every connection: the io thread is joined first
  const NodeId node_;
  const uint64_t id_;
  const HostPort address_;
  std::string hello_frame_;

  State state_ = State::kResolving;
  tcp::socket socket_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;  // handshake deadline
  net::FrameDecoder decoder_;
  std::vector<uint8_t> read_buffer_;
  bool hello_sent_ = false;
  std::deque<std::string> queue_;  // requests not yet handed to the socket
  size_t queued_bytes_ = 0;
  std::vector<std::string> writing_;  // the frames of the write in progress
  bool writing_now_ = false;
  bool write_posted_ = false;  // a StartWrite() is posted
};

// One request from the caller's point of view: every attempt, until it is answered or its
// deadline passes.
struct ClientCall {
  using Kind = ClientRequest::Kind;  // what the request asks, as on the wire
  using Done = std::function<void(Result<ClientResponse>, NodeId)>;

  explicit ClientCall(asio::io_context& io) : timer(io) {}

  // Constant once started.
  Kind kind = Kind::kStatus;
  ClientRequest request;        // request_id is rewritten for every attempt
  bool fixed_target = false;    // a status call: only ever `target`
  bool single_attempt = false;  // the first failure is the answer (StatusAll)
  Clock::time_point deadline;
  milliseconds timeout{0};          // as the caller gave it, for messages
  milliseconds attempt_timeout{0};  // of each attempt (ClientOptions::attempt_timeout unless set)
  Done done;

  // Progress.
  uint64_t call_id = 0;
  NodeId target = paxos::kNoNode;
  bool counted = false;  // holds an in_flight_ slot (and, for a proposal, its sequence)
  bool finished = false;
  bool awaiting = false;    // an attempt is out and unanswered
  uint64_t attempt_id = 0;  // the request id of the newest attempt
  // Request ids whose kOk still answers this call, oldest first; at most kLiveAttemptsMax, and
  // almost always one (a vector: no allocation beyond the first push, unlike a deque's chunk).
  std::vector<uint64_t> live_ids;
  uint64_t attempts = 0;
  size_t quick_hops = 0;           // hint-following hops since the last pause
  uint32_t not_leader_pauses = 0;  // pauses after "not the leader" answers so far
  std::string last_error;
  asio::steady_timer timer;  // attempt timeout, backoff or deadline
  uint64_t timer_generation = 0;
};

class ClientCore {
 public:
  struct Answer {
    ClientResponse response;
    NodeId node = paxos::kNoNode;
  };

  ClientCore(ClientOptions options, uint64_t client_id);
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;
  ~ClientCore();

  // Any thread.
  ballot::Status Start();
  void Stop();
  bool OnIoThread() const { return std::this_thread::get_id() == thread_id_; }
  // Starts a call on the io thread; `done` runs there exactly once.
  // `attempt_timeout` 0: ClientOptions::attempt_timeout.
  void Submit(ClientCall::Kind kind, ClientRequest request, NodeId target, bool single_attempt,
              milliseconds timeout, ClientCall::Done done,
              milliseconds attempt_timeout = milliseconds(0));
  // Submits and waits (not on the io thread).
  Result<Answer> Call(ClientCall::Kind kind, ClientRequest request, NodeId target,
                      bool single_attempt, milliseconds timeout,
                      milliseconds attempt_timeout = milliseconds(0));

  uint64_t client_id() const { return client_id_.load(std::memory_order_relaxed); }
  NodeId cached_leader() const { return leader_.load(std::memory_order_relaxed); }
  const ClientOptions& options() const { return options_; }
  ClientCounters counters() const;
  uint64_t cluster_id() const { return cluster_id_.load(std::memory_order_acquire); }

  // A server's Hello named `cluster_id`: adopts it if no id is known yet, else refuses a
  // different one (kFailedPrecondition, naming both).
  ballot::Status CheckClusterId(NodeId node, uint64_t cluster_id);
  void NoteLeaderFromAnyThread(NodeId node);

  // Called by connections.
  void OnConnectionReady(ClientConnection& conn);
  // A non-ok result closes the connection (the server misbehaved).
  ballot::Status OnResponse(ClientConnection& conn, ClientResponse response);
  void OnConnectionClosed(ClientConnection& conn, const ballot::Status& why, bool bad_frame);

 private:
  struct PendingAttempt {
    std::shared_ptr<ClientCall> call;
    uint64_t connection_id = 0;
  };

  void Begin(std::shared_ptr<ClientCall> call);
  void StartAttempt(const std::shared_ptr<ClientCall>& call);
  void AttemptFailed(const std::shared_ptr<ClientCall>& call, NodeId node,
                     const ballot::Status& why, Retry retry, milliseconds delay);
  void OnNotLeader(const std::shared_ptr<ClientCall>& call, NodeId node, NodeId hint,
                   const std::string& hint_address);
  // Adds a member the client was not given, named by a server's hint; false if `address` is
  // not host:port or kLearntMembersMax were added already.
  bool LearnMember(NodeId id, const std::string& address);
  void ScheduleAttempt(const std::shared_ptr<ClientCall>& call, Clock::time_point when);
  void OnCallTimer(const std::shared_ptr<ClientCall>& call);
  void Finish(const std::shared_ptr<ClientCall>& call, Result<ClientResponse> result, NodeId node);
  void FinishTimeout(const std::shared_ptr<ClientCall>& call);
  void StartNewSession(uint64_t expired_client_id);
  void Run();  // the io thread's body
  void Shutdown();

  ClientConnection& ConnectionTo(NodeId node);
  NodeId NextMember(NodeId node) const;
  void NoteLeader(NodeId node);
  void NoteUnreachable(NodeId node);

  // Constant after construction.
  const ClientOptions options_;
  // The current session's client id: written on the io thread only (StartNewSession).
  std::atomic<uint64_t> client_id_;
  // Pinned by the options, or learnt from the first server's Hello (written on the io thread).
  std::atomic<uint64_t> cluster_id_;
  NodeId cluster_id_from_ = paxos::kNoNode;  // io thread: the server it was learnt from
  size_t learnt_members_ = 0;                // io thread: added to addresses_ from hints
  std::set<NodeId> wrong_cluster_logged_;    // io thread: each such server is logged once
  // The options' members; after construction io thread only: it grows by the members servers
  // name in hints (LearnMember).
  std::map<NodeId, HostPort> addresses_;
  std::string hello_frame_;
  asio::io_context io_;  // declared before everything holding io objects: destroyed last
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::thread::id thread_id_;

  // Any thread.
  std::atomic<NodeId> leader_{paxos::kNoNode};
  struct AtomicCounters {
    std::atomic<uint64_t> attempts{0}, responses{0}, stale_responses{0}, not_leader{0},
        attempt_timeouts{0}, connections_opened{0}, connection_failures{0}, bad_frames{0},
        sessions_expired{0}, wrong_cluster{0};
  };
  mutable AtomicCounters counters_;

  // Io thread only.
  NodeId route_ = paxos::kNoNode;  // where leader-bound calls start
  std::map<NodeId, std::shared_ptr<ClientConnection>> connections_;
  std::unordered_map<uint64_t, PendingAttempt> pending_;             // by request id
  std::unordered_map<uint64_t, std::shared_ptr<ClientCall>> calls_;  // unfinished, by call id
  std::set<uint64_t> in_flight_sequences_;  // of the current session's proposals
  size_t in_flight_ = 0;
  uint64_t next_sequence_ = 1;
  uint64_t next_request_id_ = 1;
  uint64_t next_call_id_ = 1;
  uint64_t next_connection_id_ = 1;
  bool shutting_down_ = false;
};

// ---------------------------------------------------------------------------------------------
// ClientConnection

void ClientConnection::Open(std::string hello_frame, milliseconds timeout) {
  hello_frame_ = std::move(hello_frame);
  std::weak_ptr<ClientConnection> weak = weak_from_this();
  const bool armed = ArmTimer(timer_, Clock::now() + timeout, [weak, timeout](error_code ec) {
    auto self = weak.lock();
    if (!self || ec || self->state_ == State::kReady) return;
    self->Close(ballot::Status(StatusCode::kTimeout,
                               "no handshake within " + std::to_string(timeout.count()) + " ms"));
  });
  if (!armed) {
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->Close(ballot::Status(StatusCode::kIoError, "cannot arm the handshake timer"));
    });
    return;
  }
  error_code ec;
  const asio::ip::address ip = asio::ip::make_address(address_.host, ec);
  if (!ec) {
    Connect({tcp::endpoint(ip, address_.port)});
    return;
  }
  // A host name: resolved asynchronously so that a slow DNS never stalls the io thread.
  resolver_.async_resolve(
      address_.host, std::to_string(address_.port),
      [self = shared_from_this()](const error_code& resolve_ec,
                                  tcp::resolver::results_type results) {
        if (self->state_ == State::kClosed) return;
        if (resolve_ec || results.empty()) {
          self->Close(ballot::Status(StatusCode::kIoError, "cannot resolve " + self->address_.host +
                                                               ": " + resolve_ec.message()));
          return;
        }
        std::vector<tcp::endpoint> endpoints;
        for (const auto& entry : results) endpoints.push_back(entry.endpoint());
        self->Connect(std::move(endpoints));
      });
}

void ClientConnection::Connect(std::vector<tcp::endpoint> endpoints) {
  state_ = State::kConnecting;
  asio::async_connect(
      socket_, endpoints, [self = shared_from_this()](const error_code& ec, const tcp::endpoint&) {
        if (self->state_ == State::kClosed) return;
        if (ec) {
          self->Close(ballot::Status(StatusCode::kIoError, "connect failed: " + ec.message()));
          return;
        }
        self->OnConnected();
      });
}

void ClientConnection::OnConnected() {
  error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);  // requests are small and latency-bound
  state_ = State::kHandshaking;
  StartWrite();  // our Hello
  Read();
}

bool ClientConnection::Send(std::string frame) {
  if (state_ == State::kClosed) return false;
  if (queued_bytes_ + frame.size() > kConnectionQueueBytesMax) return false;
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  // Written after the current handler: requests issued from one batch of responses' callbacks
  // share a write.
  if (!write_posted_ && !writing_now_) {
    write_posted_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->write_posted_ = false;
      self->StartWrite();
    });
  }
  return true;
}

// Our Hello goes first, alone; requests wait until the server's Hello has been checked. Then
// everything queued goes out in one gathered write.
void ClientConnection::StartWrite() {
  if (writing_now_) return;
  if (state_ == State::kHandshaking && !hello_sent_) {
    writing_.push_back(hello_frame_);
    hello_sent_ = true;
  } else if (state_ == State::kReady && !queue_.empty()) {
    while (!queue_.empty()) {
      writing_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    queued_bytes_ = 0;
  } else {
    return;
  }
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(writing_.size());
  for (const std::string& frame : writing_) buffers.push_back(asio::buffer(frame));
  writing_now_ = true;
  asio::async_write(socket_, buffers, [self = shared_from_this()](const error_code& ec, size_t) {
    self->OnWrite(ec);
  });
}

void ClientConnection::OnWrite(const error_code& ec) {
  writing_now_ = false;
  writing_.clear();
  if (state_ == State::kClosed) return;
  if (ec) {
    Close(ballot::Status(StatusCode::kIoError, "write failed: " + ec.message()));
    return;
  }
  StartWrite();
}

void ClientConnection::Read() {
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const error_code& ec, size_t bytes) { self->OnRead(ec, bytes); });
}

void ClientConnection::OnRead(const error_code& ec, size_t bytes) {
  if (state_ == State::kClosed) return;
  if (ec) {
    Close(ballot::Status(StatusCode::kIoError, ec == asio::error::eof
                                                   ? std::string("the server closed the connection")
                                                   : "read failed: " + ec.message()));
    return;
  }
  const ballot::Status s = decoder_.Feed(std::span<const uint8_t>(read_buffer_.data(), bytes),
                                         [this](net::FramePayload&& payload) {
                                           if (state_ == State::kClosed)
                                             return ballot::Status(StatusCode::kAborted, "closed");
                                           return OnPayload(std::move(payload));
                                         });
  if (!s.ok()) {
    // kInvalidArgument (bad framing, a frame that does not decode, a response the owner
    // rejects) is the server's fault: a bad frame. A refused handshake is a configuration
    // problem (kFailedPrecondition).
    Close(s, s.code() == StatusCode::kInvalidArgument);
    return;
  }
  Read();
}

ballot::Status ClientConnection::OnPayload(net::FramePayload&& payload) {
  Result<net::Frame> frame = net::DecodeFrame(payload);
  if (!frame.ok()) return frame.status();
  if (state_ == State::kHandshaking) {
    if (!std::holds_alternative<net::Hello>(frame.value())) {
      return Invalid("handshake: expected a hello frame from the server");
    }
    return OnHello(std::get<net::Hello>(frame.value()));
  }
  if (!std::holds_alternative<ClientResponse>(frame.value())) {
    return Invalid("expected a client response frame from the server");
  }
  return owner_->OnResponse(*this, std::get<ClientResponse>(std::move(frame).value()));
}

ballot::Status ClientConnection::OnHello(const net::Hello& hello) {
  // The cluster first: a server of another cluster is named as such, whatever its node id.
  if (ballot::Status s = owner_->CheckClusterId(node_, hello.cluster_id); !s.ok()) return s;
  if (hello.protocol_version != net::kProtocolVersion) {
    return ballot::Status(StatusCode::kFailedPrecondition,
                          "handshake: the server speaks protocol version " +
                              std::to_string(hello.protocol_version) + ", not " +
                              std::to_string(net::kProtocolVersion));
  }
  if (hello.node_id != node_) {
    return ballot::Status(StatusCode::kFailedPrecondition,
                          "handshake: dialed node " + std::to_string(node_) +
                              " but the server says it is node " + std::to_string(hello.node_id));
  }
  state_ = State::kReady;
  decoder_.set_frame_bytes_max(net::kFrameBytesMax);
  CancelTimer(timer_);
  owner_->OnConnectionReady(*this);
  StartWrite();
  return ballot::Status::Ok();
}

void ClientConnection::Close(const ballot::Status& why, bool bad_frame) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  error_code ec;
  socket_.close(ec);
  resolver_.cancel();
  CancelTimer(timer_);
  queue_.clear();
  queued_bytes_ = 0;
  owner_->OnConnectionClosed(*this, why, bad_frame);
}

// ---------------------------------------------------------------------------------------------
// ClientCore: construction and threads

ClientCore::ClientCore(ClientOptions options, uint64_t client_id)
    : options_(std::move(options)),
      client_id_(client_id),
      cluster_id_(options_.cluster_id),
      work_(asio::make_work_guard(io_)) {
  for (const auto& [id, address] : options_.members) {
    Result<HostPort> hp = ParseHostPort(address);
    CHECK(hp.ok()) << hp.status().ToString();  // Validate() ran first
    addresses_.emplace(id, std::move(hp).value());
  }
  route_ = addresses_.begin()->first;
  net::Hello hello;
  hello.cluster_id = 0;  // "which cluster are you?": the answer is checked here, CheckClusterId
  hello.node_id = net::kClientNodeId;
  Result<std::string> frame = net::EncodeHello(hello);
  CHECK(frame.ok()) << frame.status().ToString();
  hello_frame_ = std::move(frame).value();
}

ClientCore::~ClientCore() { Stop(); }

ballot::Status ClientCore::Start() {
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    work_.reset();
    return ballot::Status(StatusCode::kIoError,
                          std::string("cannot start the client's io thread: ") + e.what());
  }
  thread_id_ = thread_.get_id();
  return ballot::Status::Ok();
}

void ClientCore::Run() {
  // Handlers catch what they can; this is the last line against an exception escaping (e.g.
  // bad_alloc) and ending the process with a confusing message.
  for (;;) {
    try {
      io_.run();
      return;
    } catch (const std::exception& e) {
      LOG(ERROR) << "client: exception on the io thread: " << e.what();
    }
  }
}

void ClientCore::Stop() {
  if (!thread_.joinable()) return;
  CHECK(!OnIoThread()) << "a Client must not be destroyed on its own io thread";
  asio::post(io_, [this] { Shutdown(); });
  work_.reset();
  thread_.join();
}

void ClientCore::Shutdown() {
  shutting_down_ = true;
  std::vector<std::shared_ptr<ClientCall>> calls;
  calls.reserve(calls_.size());
  for (const auto& [id, call] : calls_) calls.push_back(call);
  for (const auto& call : calls) {
    Finish(call, ballot::Status(StatusCode::kAborted, "the client is shutting down"),
           paxos::kNoNode);
  }
  std::vector<std::shared_ptr<ClientConnection>> connections;
  for (const auto& [node, conn] : connections_) connections.push_back(conn);
  for (const auto& conn : connections) {
    conn->Close(ballot::Status(StatusCode::kAborted, "the client is shutting down"));
  }
  connections_.clear();
}

ClientCounters ClientCore::counters() const {
  ClientCounters c;
  c.attempts = counters_.attempts.load();
  c.responses = counters_.responses.load();
  c.stale_responses = counters_.stale_responses.load();
  c.not_leader = counters_.not_leader.load();
  c.attempt_timeouts = counters_.attempt_timeouts.load();
  c.connections_opened = counters_.connections_opened.load();
  c.connection_failures = counters_.connection_failures.load();
  c.bad_frames = counters_.bad_frames.load();
  c.sessions_expired = counters_.sessions_expired.load();
  c.wrong_cluster = counters_.wrong_cluster.load();
  return c;
}

ballot::Status ClientCore::CheckClusterId(NodeId node, uint64_t cluster_id) {
  const uint64_t known = cluster_id_.load(std::memory_order_relaxed);
  if (known == 0 && cluster_id != 0) {
    cluster_id_.store(cluster_id, std::memory_order_release);
    cluster_id_from_ = node;
    VLOG(1) << "client: cluster " << ClusterIdText(cluster_id) << ", learnt from node " << node;
    return ballot::Status::Ok();
  }
  if (cluster_id == known) return ballot::Status::Ok();
  ++counters_.wrong_cluster;
  const std::string source = cluster_id_from_ == paxos::kNoNode
                                 ? std::string("given by --cluster_id")
                                 : "learnt from node " + std::to_string(cluster_id_from_);
  const ballot::Status refusal(
      StatusCode::kFailedPrecondition,
      "handshake: node " + std::to_string(node) + " (" + addresses_.at(node).host + ":" +
          std::to_string(addresses_.at(node).port) + ") is in cluster " +
          ClusterIdText(cluster_id) + ", not in cluster " + ClusterIdText(known) + " (" + source +
          "): refusing it; check --cluster / --cluster_id");
  if (wrong_cluster_logged_.insert(node).second) LOG(WARNING) << "client: " << refusal.message();
  return refusal;
}

// ---------------------------------------------------------------------------------------------
// ClientCore: calls

void ClientCore::Submit(ClientCall::Kind kind, ClientRequest request, NodeId target,
                        bool single_attempt, milliseconds timeout, ClientCall::Done done,
                        milliseconds attempt_timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  asio::post(io_, [this, kind, request = std::move(request), target, single_attempt, timeout,
                   deadline, done = std::move(done), attempt_timeout]() mutable {
    auto call = std::make_shared<ClientCall>(io_);
    call->kind = kind;
    call->request = std::move(request);
    call->target = target;
    call->fixed_target = target != paxos::kNoNode;
    call->single_attempt = single_attempt;
    call->deadline = deadline;
    call->timeout = timeout;
    call->attempt_timeout =
        attempt_timeout.count() > 0 ? attempt_timeout : options_.attempt_timeout;
    call->done = std::move(done);
    Begin(std::move(call));
  });
}

void ClientCore::Begin(std::shared_ptr<ClientCall> call) {
  call->call_id = next_call_id_++;
  calls_.emplace(call->call_id, call);
  if (shutting_down_) {
    Finish(call, ballot::Status(StatusCode::kAborted, "the client is shutting down"),
           paxos::kNoNode);
    return;
  }
  if (in_flight_ >= options_.in_flight_max) {
    Finish(call,
           ballot::Status(StatusCode::kOverloaded,
                          "client: " + std::to_string(in_flight_) + " requests already in flight"),
           paxos::kNoNode);
    return;
  }
  ++in_flight_;
  call->counted = true;
  if (call->kind == ClientCall::Kind::kPropose) {
    paxos::Command& command = call->request.command;
    command.client_id = client_id_.load(std::memory_order_relaxed);
    command.sequence = next_sequence_++;
    in_flight_sequences_.insert(command.sequence);
    // Every sequence below the lowest one in flight has had its reply delivered (or its caller
    // gave up, and it will never be retried): the replicas may forget those results.
    command.acked_sequence = *in_flight_sequences_.begin() - 1;
    command.stamp_ms = 0;
  }
  if (!call->fixed_target) call->target = route_;
  StartAttempt(call);
}

void ClientCore::StartAttempt(const std::shared_ptr<ClientCall>& call) {
  if (call->finished) return;
  const Clock::time_point now = Clock::now();
  if (now >= call->deadline) {
    FinishTimeout(call);
    return;
  }
  const NodeId node = call->target;
  const uint64_t request_id = next_request_id_++;
  call->request.request_id = request_id;
  Result<std::string> frame = net::EncodeClientRequest(call->request);
  if (!frame.ok()) {
    Finish(call, Invalid("cannot encode the request: " + frame.status().message()), paxos::kNoNode);
    return;
  }
  ++call->attempts;
  ++counters_.attempts;
  ClientConnection& conn = ConnectionTo(node);
  if (!conn.Send(std::move(frame).value())) {
    AttemptFailed(call, node,
                  ballot::Status(StatusCode::kOverloaded, "the connection's send queue is full"),
                  Retry::kSameNode, options_.retry_backoff);
    return;
  }
  pending_[request_id] = PendingAttempt{call, conn.id()};
  call->live_ids.push_back(request_id);
  if (call->live_ids.size() > kLiveAttemptsMax) {
    pending_.erase(call->live_ids.front());
    call->live_ids.erase(call->live_ids.begin());
  }
  call->awaiting = true;
  call->attempt_id = request_id;
  ScheduleAttempt(call, std::min(now + call->attempt_timeout, call->deadline));
}

// Arms the call's one timer. When it fires: at the deadline the call times out; while an
// attempt is out, that attempt has timed out; otherwise the pause is over and the next attempt
// starts.
void ClientCore::ScheduleAttempt(const std::shared_ptr<ClientCall>& call, Clock::time_point when) {
  const uint64_t generation = ++call->timer_generation;
  const bool armed =
      ArmTimer(call->timer, std::min(when, call->deadline), [this, call, generation](error_code) {
        if (call->finished || generation != call->timer_generation) return;
        OnCallTimer(call);
      });
  if (!armed) {
    Finish(call, ballot::Status(StatusCode::kIoError, "client: cannot arm a timer"),
           paxos::kNoNode);
  }
}

void ClientCore::OnCallTimer(const std::shared_ptr<ClientCall>& call) {
  if (Clock::now() >= call->deadline) {
    FinishTimeout(call);
    return;
  }
  if (!call->awaiting) {
    StartAttempt(call);
    return;
  }
  ++counters_.attempt_timeouts;
  // The attempt's request id stays live: a late kOk still answers the call.
  AttemptFailed(
      call, call->target,
      ballot::Status(StatusCode::kTimeout,
                     "no answer within " + std::to_string(call->attempt_timeout.count()) + " ms"),
      Retry::kNextNode, milliseconds(0));
}

void ClientCore::AttemptFailed(const std::shared_ptr<ClientCall>& call, NodeId node,
                               const ballot::Status& why, Retry retry, milliseconds delay) {
  call->awaiting = false;
  call->last_error = "node " + std::to_string(node) + ": " + why.ToString();
  if (call->single_attempt) {
    Finish(call, why, node);
    return;
  }
  if (retry == Retry::kNextNode && !call->fixed_target) {
    NoteUnreachable(node);
    call->target = NextMember(node);
  }
  if (delay.count() > 0) call->quick_hops = 0;
  ScheduleAttempt(call, Clock::now() + delay);
}

bool ClientCore::LearnMember(NodeId id, const std::string& address) {
  if (id == paxos::kNoNode || id > paxos::kNodeIdMax || addresses_.contains(id)) return false;
  if (learnt_members_ >= kLearntMembersMax) return false;
  Result<HostPort> hp = ParseHostPort(address);
  if (!hp.ok()) return false;
  addresses_.emplace(id, std::move(hp).value());
  ++learnt_members_;
  VLOG(1) << "client: node " << id << " at " << address << ", named by a server";
  return true;
}

void ClientCore::OnNotLeader(const std::shared_ptr<ClientCall>& call, NodeId node, NodeId hint,
                             const std::string& hint_address) {
  if (!hint_address.empty()) LearnMember(hint, hint_address);
  ++counters_.not_leader;
  call->awaiting = false;
  call->last_error =
      "node " + std::to_string(node) + ": not the leader (hint " + std::to_string(hint) + ")";
  if (call->single_attempt) {  // the caller decides what to do next (a leader transfer)
    Finish(call, ballot::Status(StatusCode::kNotLeader, call->last_error), node);
    return;
  }
  if (call->fixed_target) {  // a status call never gets this; ask again later
    ScheduleAttempt(call, Clock::now() + options_.retry_backoff);
    return;
  }
  // A leader change in progress (an election, a leader transfer) usually ends within a few
  // milliseconds: pause 1 ms, then 2, 4, ... up to retry_backoff, not retry_backoff at once.
  const uint32_t doublings = std::min(call->not_leader_pauses, 16u);
  milliseconds delay = std::min(
      {options_.retry_backoff, kNotLeaderPauseMin * (1u << doublings), kNotLeaderPauseMax});
  if (hint != node && addresses_.contains(hint)) {
    NoteLeader(hint);
    call->target = hint;
    // Follow a fresh hint at once; but two nodes pointing at each other (an election in
    // progress) must not make us spin, so after a round of hops we pause.
    if (call->quick_hops < addresses_.size()) {
      ++call->quick_hops;
      delay = milliseconds(0);
    }
  } else {
    if (route_ == node) route_ = NextMember(node);
    call->target = NextMember(node);
  }
  if (delay.count() > 0) {
    call->quick_hops = 0;
    ++call->not_leader_pauses;
  }
  ScheduleAttempt(call, Clock::now() + delay);
}

ballot::Status ClientCore::OnResponse(ClientConnection& conn, ClientResponse response) {
  auto it = pending_.find(response.request_id);
  if (it == pending_.end()) {
    ++counters_.stale_responses;  // answered, abandoned long ago, or never ours
    return ballot::Status::Ok();
  }
  if (it->second.connection_id != conn.id()) {
    return Invalid("response " + std::to_string(response.request_id) +
                   " to a request sent on another connection");
  }
  std::shared_ptr<ClientCall> call = it->second.call;
  const NodeId node = conn.node();
  if (response.code == StatusCode::kOk) {
    if (call->kind == ClientCall::Kind::kStatus) {
      if (!response.status.has_value()) return Invalid("status response without a status");
      if (response.status->node_id == paxos::kNoNode) response.status->node_id = node;
      if (response.status->node_id != node) {
        return Invalid("node " + std::to_string(node) + " sent the status of node " +
                       std::to_string(response.status->node_id));
      }
    } else if (call->kind == ClientCall::Kind::kTransferLeader) {
      if (!response.leader_address.empty()) {
        LearnMember(response.leader_hint, response.leader_address);
      }
      if (addresses_.contains(response.leader_hint)) NoteLeader(response.leader_hint);
    } else if (call->kind != ClientCall::Kind::kSnapshot &&
               !(call->kind == ClientCall::Kind::kWatch && !call->request.watch.linearizable)) {
      NoteLeader(node);  // only a leader answers proposals, reads and linearizable watches
    }
    ++counters_.responses;
    if (call->kind == ClientCall::Kind::kPropose && response.outcome_code == StatusCode::kAborted &&
        IsSessionExpired(Outcome{response.outcome_code, "", response.message})) {
      StartNewSession(call->request.command.client_id);
    }
    Finish(call, std::move(response), node);
    return ballot::Status::Ok();
  }
  // A failure answers only the newest attempt; older attempts' failures are history.
  pending_.erase(it);
  if (response.request_id != call->attempt_id || !call->awaiting) {
    ++counters_.stale_responses;
    return ballot::Status::Ok();
  }
  ++counters_.responses;
  const std::string why = response.message.empty() ? "" : ": " + response.message;
  switch (response.code) {
    case StatusCode::kNotLeader:
      OnNotLeader(call, node, response.leader_hint, response.leader_address);
      break;
    case StatusCode::kOverloaded:
      if (call->kind == ClientCall::Kind::kWatch) {  // "too many watches": the caller decides
        Finish(call, ballot::Status(response.code, "node " + std::to_string(node) + why), node);
        break;
      }
      [[fallthrough]];
    case StatusCode::kTimeout:
      AttemptFailed(call, node, ballot::Status(response.code, "busy" + why), Retry::kSameNode,
                    options_.retry_backoff);
      break;
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kNoSpace:
    case StatusCode::kAborted:
      // The node cannot serve (its disk, its store, it is stopping); another may.
      AttemptFailed(call, node, ballot::Status(response.code, "cannot serve" + why),
                    Retry::kNextNode, options_.retry_backoff);
      break;
    default:  // about the request itself: kInvalidArgument, kFailedPrecondition, kNotFound
      Finish(call, ballot::Status(response.code, "node " + std::to_string(node) + why), node);
      break;
  }
  return ballot::Status::Ok();
}

void ClientCore::Finish(const std::shared_ptr<ClientCall>& call, Result<ClientResponse> result,
                        NodeId node) {
  if (call->finished) return;
  call->finished = true;
  call->awaiting = false;
  ++call->timer_generation;
  CancelTimer(call->timer);
  for (uint64_t id : call->live_ids) pending_.erase(id);
  call->live_ids.clear();
  calls_.erase(call->call_id);
  if (call->counted) {
    CHECK_GT(in_flight_, 0u);
    --in_flight_;
    // A proposal of an expired session left in_flight_sequences_ when the new one started.
    if (call->kind == ClientCall::Kind::kPropose &&
        call->request.command.client_id == client_id_.load(std::memory_order_relaxed)) {
      CHECK_EQ(in_flight_sequences_.erase(call->request.command.sequence), 1u);
    }
  }
  ClientCall::Done done = std::move(call->done);
  call->done = nullptr;
  done(std::move(result), node);
}

// The replicas answered a proposal "session expired" (statemachine/session_table.h): they no
// longer know which of that session's commands were applied, and refuse every later command
// under its client id. So later proposals go out in a new session: a new random client id,
// sequences from 1 again. Proposals of the old session still in flight keep their commands
// (a retry must be the same command) and are answered "session expired" in turn.
void ClientCore::StartNewSession(uint64_t expired_client_id) {
  if (expired_client_id != client_id_.load(std::memory_order_relaxed)) return;  // done already
  uint64_t id = RandomClientId();
  while (id == expired_client_id) id = RandomClientId();
  client_id_.store(id, std::memory_order_relaxed);
  next_sequence_ = 1;
  in_flight_sequences_.clear();
  ++counters_.sessions_expired;
  LOG(WARNING) << "client session " << expired_client_id << " expired; continuing as client " << id;
}

void ClientCore::FinishTimeout(const std::shared_ptr<ClientCall>& call) {
  std::string message = "no answer within " + std::to_string(call->timeout.count()) + " ms";
  if (call->attempts == 0) {
    message += " (no attempt made)";
  } else {
    message +=
        " (" + std::to_string(call->attempts) + " attempt" + (call->attempts == 1 ? "" : "s") +
        "; last: " +
        (call->last_error.empty() ? "node " + std::to_string(call->target) + ": no answer yet"
                                  : call->last_error) +
        ")";
  }
  Finish(call, ballot::Status(StatusCode::kTimeout, std::move(message)), paxos::kNoNode);
}

// ---------------------------------------------------------------------------------------------
// ClientCore: connections and routing

ClientConnection& ClientCore::ConnectionTo(NodeId node) {
  auto it = connections_.find(node);
  if (it != connections_.end() && !it->second->closed()) return *it->second;
  auto conn = std::make_shared<ClientConnection>(this, io_, node, next_connection_id_++,
                                                 addresses_.at(node));
  connections_[node] = conn;
  conn->Open(hello_frame_, options_.attempt_timeout);
  return *conn;
}

void ClientCore::OnConnectionReady(ClientConnection& conn) {
  ++counters_.connections_opened;
  VLOG(1) << "client: connected to node " << conn.node();
}

void ClientCore::OnConnectionClosed(ClientConnection& conn, const ballot::Status& why,
                                    bool bad_frame) {
  auto it = connections_.find(conn.node());
  if (it != connections_.end() && it->second.get() == &conn) connections_.erase(it);
  if (shutting_down_) return;
  ++counters_.connection_failures;
  if (bad_frame) {
    ++counters_.bad_frames;
    LOG(WARNING) << "client: bad frame from node " << conn.node() << ": " << why.ToString();
  } else {
    VLOG(1) << "client: connection to node " << conn.node() << " closed: " << why.ToString();
  }
  // Answers to requests sent on this connection can no longer come.
  std::vector<std::shared_ptr<ClientCall>> failed;
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->second.connection_id != conn.id()) {
      ++p;
      continue;
    }
    const std::shared_ptr<ClientCall>& call = p->second.call;
    if (call->awaiting && call->attempt_id == p->first) failed.push_back(call);
    p = pending_.erase(p);
  }
  for (const auto& call : failed) {
    AttemptFailed(call, conn.node(), why, Retry::kNextNode, options_.retry_backoff);
  }
}

NodeId ClientCore::NextMember(NodeId node) const {
  auto it = addresses_.upper_bound(node);
  return it == addresses_.end() ? addresses_.begin()->first : it->first;
}

void ClientCore::NoteLeader(NodeId node) {
  route_ = node;
  leader_.store(node, std::memory_order_relaxed);
}

void ClientCore::NoteUnreachable(NodeId node) {
  if (route_ == node) route_ = NextMember(node);
  NodeId expected = node;
  leader_.compare_exchange_strong(expected, paxos::kNoNode, std::memory_order_relaxed);
}

void ClientCore::NoteLeaderFromAnyThread(NodeId node) {
  asio::post(io_, [this, node] {
    if (addresses_.contains(node)) NoteLeader(node);
  });
}

// ---------------------------------------------------------------------------------------------
// Synchronous calls

namespace {

template <typename T>
struct Waiter {
  Mutex mu;
  CondVar cv;
  std::optional<Result<T>> result GUARDED_BY(mu);

  void Set(Result<T> r) {
    MutexLock lock(&mu);
    result.emplace(std::move(r));
    cv.NotifyAll();
  }
  // The result, or kTimeout if none came by `until`.
  Result<T> WaitUntil(Clock::time_point until, milliseconds timeout) {
    MutexLock lock(&mu);
    while (!result.has_value() && cv.WaitUntil(&mu, until)) {
    }
    if (!result.has_value()) {
      return ballot::Status(StatusCode::kTimeout,
                            "no answer within " + std::to_string(timeout.count()) + " ms");
    }
    return std::move(*result);
  }
};

}  // namespace

Result<ClientCore::Answer> ClientCore::Call(ClientCall::Kind kind, ClientRequest request,
                                            NodeId target, bool single_attempt,
                                            milliseconds timeout, milliseconds attempt_timeout) {
  if (OnIoThread()) {
    return ballot::Status(StatusCode::kFailedPrecondition,
                          "a synchronous Client call on the client's own io thread would block it");
  }
  const Clock::time_point until = Clock::now() + timeout + kSyncWaitSlack;
  auto waiter = std::make_shared<Waiter<Answer>>();
  Submit(
      kind, std::move(request), target, single_attempt, timeout,
      [waiter](Result<ClientResponse> r, NodeId node) {
        if (!r.ok()) {
          waiter->Set(r.status());
        } else {
          waiter->Set(Answer{std::move(r).value(), node});
        }
      },
      attempt_timeout);
  return waiter->WaitUntil(until, timeout);
}

// ---------------------------------------------------------------------------------------------
// Client

class Client::Impl final : public ClientCore {
 public:
  using ClientCore::ClientCore;
};

namespace {

Result<Client::ProposeReply> ToProposeReply(Result<ClientResponse> r, NodeId node) {
  if (!r.ok()) return r.status();
  ClientResponse& response = r.value();
  Client::ProposeReply reply;
  reply.outcome.code = response.outcome_code;
  reply.outcome.data = std::move(response.data);
  reply.outcome.message = std::move(response.message);
  reply.slot = response.slot;
  reply.epoch = response.epoch;
  reply.leader = node;
  return reply;
}

ClientRequest ProposeRequest(std::string payload, uint64_t expected_epoch) {
  ClientRequest request;
  request.kind = ClientRequest::Kind::kPropose;
  request.command.payload = std::move(payload);
  request.command.expected_epoch = expected_epoch;
  return request;
}

ClientRequest StatusRequest() {
  ClientRequest request;
  request.kind = ClientRequest::Kind::kStatus;
  return request;
}

}  // namespace

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() { impl_->Stop(); }

Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  ballot::Status s = options.Validate();
  if (!s.ok()) return s;
  const uint64_t client_id = options.client_id != 0 ? options.client_id : RandomClientId();
  auto impl = std::make_unique<Impl>(std::move(options), client_id);
  s = impl->Start();
  if (!s.ok()) return s;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<Client::ProposeReply> Client::Propose(std::string payload, milliseconds timeout,
                                             uint64_t expected_epoch) {
  Result<ClientCore::Answer> a =
      impl_->Call(ClientCall::Kind::kPropose, ProposeRequest(std::move(payload), expected_epoch),
                  paxos::kNoNode, false, timeout);
  if (!a.ok()) return a.status();
  return ToProposeReply(std::move(a.value().response), a.value().node);
}

void Client::ProposeAsync(std::string payload, milliseconds timeout, ProposeCallback done,
                          uint64_t expected_epoch) {
  impl_->Submit(ClientCall::Kind::kPropose, ProposeRequest(std::move(payload), expected_epoch),
                paxos::kNoNode, false, timeout,
                [done = std::move(done)](Result<ClientResponse> r, NodeId node) {
                  done(ToProposeReply(std::move(r), node));
                });
}

Result<Outcome> Client::Read(std::string query, milliseconds timeout) {
  ClientRequest request;
  request.kind = ClientRequest::Kind::kRead;
  request.query = std::move(query);
  Result<ClientCore::Answer> a =
      impl_->Call(ClientCall::Kind::kRead, std::move(request), paxos::kNoNode, false, timeout);
  if (!a.ok()) return a.status();
  ClientResponse& response = a.value().response;
  return Outcome{response.outcome_code, std::move(response.data), std::move(response.message)};
}

Result<Client::WatchReply> Client::Watch(std::string query, paxos::Slot after_slot,
                                         milliseconds timeout, WatchOptions options) {
  ClientRequest request;
  request.kind = ClientRequest::Kind::kWatch;
  request.watch.query = std::move(query);
  request.watch.after_slot = after_slot;
  request.watch.linearizable = options.linearizable;
  // The server answers "no change" after `wait`; an attempt gives it that long plus the usual
  // attempt timeout before moving to another replica.
  const milliseconds wait =
      std::clamp(std::min(options.wait, timeout / 2), milliseconds(0), milliseconds(60000));
  request.watch.wait_ms = static_cast<uint32_t>(wait.count());
  Result<ClientCore::Answer> a =
      impl_->Call(ClientCall::Kind::kWatch, std::move(request), paxos::kNoNode, false, timeout,
                  wait + impl_->options().attempt_timeout);
  if (!a.ok()) return a.status();
  ClientResponse& response = a.value().response;
  WatchReply reply;
  reply.changed = response.watch_changed;
  reply.slot = response.slot;
  reply.data = std::move(response.data);
  reply.gap = response.watch_gap;
  reply.node = a.value().node;
  return reply;
}

Result<NodeStatus> Client::Status(NodeId node, milliseconds timeout) {
  if (!impl_->options().members.contains(node)) {
    return Invalid("node " + std::to_string(node) + " is not a member");
  }
  Result<ClientCore::Answer> a =
      impl_->Call(ClientCall::Kind::kStatus, StatusRequest(), node, false, timeout);
  if (!a.ok()) return a.status();
  return std::move(*a.value().response.status);
}

Result<paxos::Slot> Client::TakeSnapshot(NodeId node, milliseconds timeout) {
  if (!impl_->options().members.contains(node)) {
    return Invalid("node " + std::to_string(node) + " is not a member");
  }
  ClientRequest request;
  request.kind = ClientRequest::Kind::kSnapshot;
  Result<ClientCore::Answer> a =
      impl_->Call(ClientCall::Kind::kSnapshot, std::move(request), node, false, timeout);
  if (!a.ok()) return a.status();
  return a.value().response.slot;
}

Result<std::vector<paxos::Member>> Client::MemberList(milliseconds timeout) {
  ClientRequest request;
  request.kind = ClientRequest::Kind::kMemberList;
  Result<ClientCore::Answer> a = impl_->Call(ClientCall::Kind::kMemberList, std::move(request),
                                             paxos::kNoNode, false, timeout);
  if (!a.ok()) return a.status();
  if (!a.value().response.members) return Invalid("member list response without members");
  return std::move(*a.value().response.members);
}

ballot::Status Client::ChangeMember(net::MemberChangeRequest change, milliseconds timeout) {
  ClientRequest request;
  request.kind = ClientRequest::Kind::kMemberChange;
  request.member_change = std::move(change);
  Result<ClientCore::Answer> a = impl_->Call(ClientCall::Kind::kMemberChange, std::move(request),
                                             paxos::kNoNode, false, timeout);
  return a.status();
}

std::map<NodeId, Result<NodeStatus>> Client::StatusAll(milliseconds timeout) {
  std::map<NodeId, Result<NodeStatus>> out;
  if (impl_->OnIoThread()) {
    for (const auto& [node, address] : impl_->options().members) {
      out.emplace(node, ballot::Status(StatusCode::kFailedPrecondition,
                                       "a synchronous Client call on the client's io thread"));
    }
    return out;
  }
  struct Gather {
    Mutex mu;
    CondVar cv;
    std::map<NodeId, Result<NodeStatus>> results GUARDED_BY(mu);
  };
  auto gather = std::make_shared<Gather>();
  const Clock::time_point until = Clock::now() + timeout + kSyncWaitSlack;
  for (const auto& [node, address] : impl_->options().members) {
    impl_->Submit(ClientCall::Kind::kStatus, StatusRequest(), node, /*single_attempt=*/true,
                  timeout, [gather, node = node](Result<ClientResponse> r, NodeId) {
                    Result<NodeStatus> s = r.ok() ? Result<NodeStatus>(*r.value().status)
                                                  : Result<NodeStatus>(r.status());
                    MutexLock lock(&gather->mu);
                    gather->results.emplace(node, std::move(s));
                    gather->cv.NotifyAll();
                  });
  }
  const size_t members = impl_->options().members.size();
  MutexLock lock(&gather->mu);
  while (gather->results.size() != members && gather->cv.WaitUntil(&gather->mu, until)) {
  }
  out = gather->results;
  for (const auto& [node, address] : impl_->options().members) {
    out.emplace(node,
                ballot::Status(StatusCode::kTimeout,
                               "no answer within " + std::to_string(timeout.count()) + " ms"));
  }
  return out;
}

Result<std::pair<NodeId, uint64_t>> Client::FindLeader(milliseconds timeout) {
  if (impl_->OnIoThread()) {
    return ballot::Status(StatusCode::kFailedPrecondition,
                          "a synchronous Client call on the client's own io thread would block it");
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  const milliseconds pause = std::max(impl_->options().retry_backoff, kFindLeaderPauseMin);
  bool any_answered = false;
  std::string last_error = "no attempt made";
  for (;;) {
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) break;
    const auto all = StatusAll(std::min(remaining, impl_->options().attempt_timeout));
    NodeId best = paxos::kNoNode;
    uint64_t best_epoch = 0;
    for (const auto& [node, status] : all) {
      if (!status.ok()) {
        last_error = "node " + std::to_string(node) + ": " + status.status().ToString();
        continue;
      }
      any_answered = true;
      const NodeStatus& s = status.value();
      if (s.role == "leader" && (best == paxos::kNoNode || s.epoch > best_epoch)) {
        best = node;
        best_epoch = s.epoch;
      }
    }
    if (best != paxos::kNoNode) {
      impl_->NoteLeaderFromAnyThread(best);
      return std::make_pair(best, best_epoch);
    }
    const auto left = deadline - Clock::now();
    if (left <= pause) break;
    std::this_thread::sleep_for(pause);
  }
  if (any_answered) {
    return ballot::Status(StatusCode::kNotFound, "no node claims leadership after " +
                                                     std::to_string(timeout.count()) + " ms");
  }
  return ballot::Status(StatusCode::kTimeout, "no node answered within " +
                                                  std::to_string(timeout.count()) +
                                                  " ms (last: " + last_error + ")");
}

Result<std::pair<NodeId, uint64_t>> Client::TransferLeadership(NodeId to, milliseconds timeout) {
  if (impl_->OnIoThread()) {
    return ballot::Status(StatusCode::kFailedPrecondition,
                          "a synchronous Client call on the client's own io thread would block it");
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  auto left = [&] {
    return std::max(milliseconds(1),
                    std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  };
  std::string last_error = "no attempt made";
  // Sent once to the node that leads: never retried elsewhere, where it could move leadership a
  // second time. A node that no longer leads answers kNotLeader, and the leader is found again.
  for (int round = 0; round < kTransferRoundsMax && Clock::now() < deadline; ++round) {
    Result<std::pair<NodeId, uint64_t>> leader = FindLeader(left());
    if (!leader.ok()) return leader.status();
    if (to != paxos::kNoNode && leader.value().first == to) return leader;  // nothing to move
    if (!impl_->options().members.contains(leader.value().first)) {
      return ballot::Status(StatusCode::kNotFound, "the leader is not in the member list");
    }
    ClientRequest request;
    request.kind = ClientRequest::Kind::kTransferLeader;
    request.transfer_to = to;
    Result<ClientCore::Answer> a =
        impl_->Call(ClientCall::Kind::kTransferLeader, std::move(request), leader.value().first,
                    /*single_attempt=*/true, left(), /*attempt_timeout=*/left());
    if (a.ok()) {
      const ClientResponse& r = a.value().response;
      if (to != paxos::kNoNode && r.leader_hint != to) {
        // The leader was already handing over to another node (another request, a SIGTERM).
        return ballot::Status(StatusCode::kAborted,
                              "leadership moved to node " + std::to_string(r.leader_hint) +
                                  " (epoch " + std::to_string(r.epoch) + "), not to node " +
                                  std::to_string(to) + ": another transfer was under way");
      }
      return std::make_pair(r.leader_hint, r.epoch);
    }
    if (a.status().code() != StatusCode::kNotLeader) return a.status();
    last_error = a.status().message();
  }
  return ballot::Status(StatusCode::kTimeout, "leader transfer: no answer within " +
                                                  std::to_string(timeout.count()) +
                                                  " ms (last: " + last_error + ")");
}

Result<uint64_t> Client::LearnClusterId(milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::string last_error = "no attempt made";
  while (impl_->cluster_id() == 0) {
    for (const auto& [node, address] : impl_->options().members) {
      const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (remaining.count() <= 0 || impl_->cluster_id() != 0) break;
      Result<ClientCore::Answer> a =
          impl_->Call(ClientCall::Kind::kStatus, StatusRequest(), node, /*single_attempt=*/true,
                      std::min(remaining, impl_->options().attempt_timeout));
      if (!a.ok()) last_error = "node " + std::to_string(node) + ": " + a.status().ToString();
    }
    if (impl_->cluster_id() != 0) break;
    const auto left = deadline - Clock::now();
    if (left <= kFindLeaderPauseMin) {
      return ballot::Status(StatusCode::kTimeout,
                            "no member answered within " + std::to_string(timeout.count()) +
                                " ms to tell its cluster id (last: " + last_error + ")");
    }
    std::this_thread::sleep_for(std::max(impl_->options().retry_backoff, kFindLeaderPauseMin));
  }
  return impl_->cluster_id();
}

uint64_t Client::cluster_id() const { return impl_->cluster_id(); }

uint64_t Client::client_id() const { return impl_->client_id(); }

NodeId Client::cached_leader() const { return impl_->cached_leader(); }

ClientCounters Client::counters() const { return impl_->counters(); }

}  // namespace ballot
