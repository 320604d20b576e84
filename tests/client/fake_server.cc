#include "tests/client/fake_server.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <set>
#include <thread>

#include "net/codec.h"
#include "net/frame.h"

namespace ballot::client_test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

class ServerConn;

class FakeServer::Impl : public std::enable_shared_from_this<FakeServer::Impl> {
 public:
  Impl(FakeServer* owner, Handler handler, Mode mode)
      : owner_(owner), handler_(std::move(handler)), mode_(mode), acceptor_(io_) {}

  uint16_t Listen() {
    error_code ec;
    acceptor_.open(tcp::v4(), ec);
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor_.bind(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0), ec);
    EXPECT_FALSE(ec) << ec.message();
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    EXPECT_FALSE(ec) << ec.message();
    const uint16_t port = acceptor_.local_endpoint(ec).port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return port;
  }

  void Stop() {
    asio::post(io_, [this] {
      error_code ec;
      acceptor_.close(ec);
      CloseAll();
    });
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  void Accept();
  void CloseAll();

  asio::io_context& io() { return io_; }
  FakeServer* owner() const { return owner_; }
  const Handler& handler() const { return handler_; }
  Mode mode() const { return mode_; }
  void Forget(ServerConn* conn);

 private:
  FakeServer* const owner_;
  const Handler handler_;
  const Mode mode_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  tcp::acceptor acceptor_;
  std::set<std::shared_ptr<ServerConn>> conns_;
  std::thread thread_;
};

class ServerConn : public std::enable_shared_from_this<ServerConn> {
 public:
  ServerConn(std::weak_ptr<FakeServer::Impl> server, tcp::socket socket)
      : server_(std::move(server)),
        socket_(std::move(socket)),
        decoder_(net::kFrameBytesMax),
        buffer_(64 << 10) {}

  void Start() { Read(); }

  void Close() {
    error_code ec;
    socket_.close(ec);
  }

  // Any thread.
  void Send(std::string frame) {
    auto server = server_.lock();
    if (!server) return;
    asio::post(server->io(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
      self->out_.push_back(std::move(frame));
      self->Write();
    });
  }

 private:
  void Read() {
    socket_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](const error_code& ec, size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const error_code& ec, size_t n) {
    auto server = server_.lock();
    if (ec || !server) {
      if (server) server->Forget(this);
      return;
    }
    if (server->mode() == FakeServer::Mode::kSilent) {
      Read();
      return;
    }
    const Status s = decoder_.Feed(
        std::span<const uint8_t>(buffer_.data(), n),
        [&](net::FramePayload&& payload) { return OnFrame(*server, std::move(payload)); });
    if (!s.ok()) {
      ADD_FAILURE() << "fake server: bad frame from the client: " << s.ToString();
      Close();
      return;
    }
    Read();
  }

  Status OnFrame(FakeServer::Impl& server, net::FramePayload&& payload) {
    Result<net::Frame> frame = net::DecodeFrame(payload);
    if (!frame.ok()) return frame.status();
    FakeServer* owner = server.owner();
    if (!helloed_) {
      const net::Hello* hello = std::get_if<net::Hello>(&frame.value());
      if (hello == nullptr) return Status(StatusCode::kInvalidArgument, "expected hello");
      helloed_ = true;
      const uint64_t cluster = owner->cluster_id_.load();
      // 0: the client asks which cluster this is (the real transport accepts it too).
      if ((hello->cluster_id != cluster && hello->cluster_id != 0) ||
          hello->node_id != net::kClientNodeId ||
          hello->protocol_version != net::kProtocolVersion) {
        ++owner->bad_hellos_;
      }
      net::Hello mine;
      mine.cluster_id = server.mode() == FakeServer::Mode::kWrongCluster ? cluster + 1 : cluster;
      mine.node_id = owner->id();
      Send(net::EncodeHello(mine).value());
      if (server.mode() == FakeServer::Mode::kGarbageAfterHello) {
        Send(std::string(8, '\0'));  // a zero length prefix: malformed
      }
      return Status::Ok();
    }
    net::ClientRequest* request = std::get_if<net::ClientRequest>(&frame.value());
    if (request == nullptr) return Status(StatusCode::kInvalidArgument, "expected a request");
    {
      std::lock_guard<std::mutex> lock(owner->mu_);
      owner->requests_.push_back(*request);
      owner->cv_.notify_all();
    }
    std::weak_ptr<ServerConn> weak = weak_from_this();
    FakeServer::Reply reply = [weak](net::ClientResponse response) {
      auto self = weak.lock();
      if (!self) return;
      Result<std::string> encoded = net::EncodeClientResponse(response);
      ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
      self->Send(std::move(encoded).value());
    };
    server.handler()(*request, reply);
    return Status::Ok();
  }

  void Write() {
    if (writing_ || out_.empty()) return;
    writing_ = true;
    current_ = std::move(out_.front());
    out_.pop_front();
    asio::async_write(socket_, asio::buffer(current_),
                      [self = shared_from_this()](const error_code& ec, size_t) {
                        self->writing_ = false;
                        if (ec) return;
                        self->Write();
                      });
  }

  std::weak_ptr<FakeServer::Impl> server_;
  tcp::socket socket_;
  net::FrameDecoder decoder_;
  std::vector<uint8_t> buffer_;
  bool helloed_ = false;
  std::deque<std::string> out_;
  std::string current_;
  bool writing_ = false;
};

void FakeServer::Impl::Accept() {
  acceptor_.async_accept([weak = weak_from_this()](const error_code& ec, tcp::socket socket) {
    auto self = weak.lock();
    if (!self || ec) return;
    auto conn = std::make_shared<ServerConn>(weak, std::move(socket));
    self->conns_.insert(conn);
    conn->Start();
    self->Accept();
  });
}

void FakeServer::Impl::CloseAll() {
  for (const auto& conn : conns_) conn->Close();
  conns_.clear();
}

void FakeServer::Impl::Forget(ServerConn* conn) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() == conn) {
      conns_.erase(it);
      return;
    }
  }
}

FakeServer::FakeServer(uint64_t cluster_id, paxos::NodeId id, Handler handler, Mode mode)
    : id_(id), cluster_id_(cluster_id) {
  impl_ = std::make_shared<Impl>(this, std::move(handler), mode);
  port_ = impl_->Listen();
}

FakeServer::~FakeServer() {
  impl_->Stop();
  impl_.reset();
}

std::vector<net::ClientRequest> FakeServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

bool FakeServer::WaitForRequests(size_t n, std::chrono::milliseconds within) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, within, [&] { return requests_.size() >= n; });
}

uint16_t RefusedPort() {
  asio::io_context io;
  tcp::acceptor acceptor(io);
  error_code ec;
  acceptor.open(tcp::v4(), ec);
  acceptor.bind(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0), ec);
  EXPECT_FALSE(ec) << ec.message();
  const uint16_t port = acceptor.local_endpoint(ec).port();
  acceptor.close(ec);  // never listened: connections are refused
  return port;
}

// ---------------------------------------------------------------------------------------------

MachineNode::MachineNode(paxos::NodeId id, uint64_t epoch, std::unique_ptr<StateMachine> machine)
    : id_(id), epoch_(epoch), machine_(std::move(machine)) {}

FakeServer::Handler MachineNode::handler() {
  return [this](const net::ClientRequest& request, const FakeServer::Reply& reply) {
    Serve(request, reply);
  };
}

size_t MachineNode::applied() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_slot_ - 1;
}

void MachineNode::Serve(const net::ClientRequest& request, const FakeServer::Reply& reply) {
  std::lock_guard<std::mutex> lock(mu_);
  net::ClientResponse response;
  response.request_id = request.request_id;
  switch (request.kind) {
    case net::ClientRequest::Kind::kPropose: {
      const paxos::Command& c = request.command;
      const auto key = std::make_pair(c.client_id, c.sequence);
      auto it = results_.find(key);
      if (it == results_.end()) {
        AppliedCommand applied;
        applied.slot = next_slot_++;
        applied.epoch = epoch_;
        applied.client_id = c.client_id;
        applied.payload = c.payload;
        std::vector<Outcome> outcomes;
        machine_->Apply(std::span<const AppliedCommand>(&applied, 1), &outcomes);
        it = results_.emplace(key, std::make_pair(outcomes.at(0), applied.slot)).first;
      }
      response.outcome_code = it->second.first.code;
      response.data = it->second.first.data;
      response.message = it->second.first.message;
      response.slot = it->second.second;
      response.epoch = epoch_;
      break;
    }
    case net::ClientRequest::Kind::kRead: {
      Outcome o = machine_->Query(request.query);
      response.outcome_code = o.code;
      response.data = std::move(o.data);
      response.message = std::move(o.message);
      break;
    }
    case net::ClientRequest::Kind::kStatus: {
      net::NodeStatus s;
      s.node_id = id_;
      s.role = "leader";
      s.epoch = epoch_;
      s.leader_id = id_;
      s.chosen_below = next_slot_;
      s.applied_below = next_slot_;
      s.lease_held = true;
      s.promised = epoch_;
      response.status = s;
      break;
    }
    case net::ClientRequest::Kind::kSnapshot:
      response.slot = next_slot_;
      break;
    case net::ClientRequest::Kind::kTransferLeader:
      // One node alone, as a real leader of a one-voter cluster answers.
      response.code = StatusCode::kFailedPrecondition;
      response.message = "no other voter to transfer to";
      break;
    case net::ClientRequest::Kind::kMemberList:
    case net::ClientRequest::Kind::kMemberChange:
      response.code = StatusCode::kFailedPrecondition;
      response.message = "MachineNode does not model membership";
      break;
    case net::ClientRequest::Kind::kWatch:
      response.code = StatusCode::kFailedPrecondition;
      response.message = "MachineNode does not model watches";
      break;
  }
  reply(std::move(response));
}

net::ClientResponse EchoResponse(const net::ClientRequest& request, uint64_t epoch) {
  net::ClientResponse r;
  r.request_id = request.request_id;
  r.data =
      request.kind == net::ClientRequest::Kind::kRead ? request.query : request.command.payload;
  r.slot = request.command.sequence;
  r.epoch = epoch;
  return r;
}

net::ClientResponse NotLeaderResponse(const net::ClientRequest& request, paxos::NodeId hint) {
  net::ClientResponse r;
  r.request_id = request.request_id;
  r.code = StatusCode::kNotLeader;
  r.leader_hint = hint;
  r.message = "not the leader";
  return r;
}

}  // namespace ballot::client_test
