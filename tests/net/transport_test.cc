// Transports on 127.0.0.1 in one process, driven by one io_context. No fixed ports, no sleeps:
// every wait runs the io_context until a condition holds or a deadline passes.
#include "net/transport.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/codec.h"
#include "net/frame.h"
#include "tests/net/random_messages.h"

namespace ballot::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using testing::RandomWire;
using namespace std::chrono_literals;

constexpr uint64_t kCluster = 0xBA110700;
constexpr auto kWait = 10s;  // generous: a failing condition costs this, a passing one does not

// Asks the kernel for `n` distinct free ports by binding port 0. Only for clusters, where every
// node must know the others' ports before any is created; a lone transport listens on port 0.
std::vector<uint16_t> PickFreePorts(int n) {
  asio::io_context io;
  std::vector<tcp::acceptor> held;  // kept open until all are picked, so none repeats
  std::vector<uint16_t> ports;
  for (int i = 0; i < n; ++i) {
    boost::system::error_code ec;
    tcp::acceptor& acceptor = held.emplace_back(io);
    acceptor.open(tcp::v4(), ec);
    acceptor.bind(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0), ec);
    EXPECT_FALSE(ec) << ec.message();
    ports.push_back(acceptor.local_endpoint(ec).port());
  }
  return ports;
}

uint16_t PickFreePort() { return PickFreePorts(1)[0]; }

std::string Local(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

paxos::Message Heartbeat(paxos::NodeId from, paxos::NodeId to, uint64_t round) {
  paxos::Message m;
  m.type = paxos::MessageType::kHeartbeat;
  m.from = from;
  m.to = to;
  m.ballot = paxos::Ballot(1, from);
  m.round = round;
  return m;
}

// One node's transport and everything it received.
struct Node {
  paxos::NodeId id = 0;
  uint16_t port = 0;
  std::unique_ptr<Transport> transport;
  std::vector<paxos::Message> received;
  std::vector<std::pair<ClientHandle, ClientRequest>> requests;

  const TransportCounters& counters() const { return transport->counters(); }
};

// A client on a raw socket: writes block (they are small), reads are polled without blocking so
// the test thread can keep running the transport's io_context.
class RawClient {
 public:
  RawClient(asio::io_context& io, uint16_t port) : socket_(io) {
    boost::system::error_code ec;
    socket_.connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port), ec);
    EXPECT_FALSE(ec) << ec.message();
    socket_.non_blocking(true, ec);
  }

  void Write(const std::string& bytes) {
    boost::system::error_code ec;
    socket_.non_blocking(false, ec);
    asio::write(socket_, asio::buffer(bytes), ec);
    socket_.non_blocking(true, ec);
  }
  void WriteFrame(const Frame& frame) {
    Result<std::string> bytes = EncodeFrame(frame);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    Write(bytes.value());
  }
  // A peer's hello carries the (default) timing the test transports run with.
  void Hello(uint64_t cluster, paxos::NodeId node = kClientNodeId) {
    net::Hello hello{cluster, node, kProtocolVersion};
    if (node != kClientNodeId) hello.timing = TimingFields(PeerTiming{});
    WriteFrame(hello);
  }
  void ShutdownSend() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
  }
  void Close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

  // Reads whatever has arrived; true once the server has closed the connection.
  bool Closed() {
    Poll();
    return closed_;
  }
  // Frames received so far (after polling).
  const std::vector<Frame>& frames() {
    Poll();
    return frames_;
  }

 private:
  void Poll() {
    while (!closed_) {
      uint8_t buffer[4096];
      boost::system::error_code ec;
      const size_t n = socket_.read_some(asio::buffer(buffer), ec);
      if (ec == asio::error::would_block) return;
      if (ec) {
        closed_ = true;  // eof or reset: either way the server closed it
        return;
      }
      std::vector<FramePayload> payloads;
      ASSERT_TRUE(decoder_.Feed(std::span<const uint8_t>(buffer, n), &payloads).ok());
      for (const auto& p : payloads) {
        Result<Frame> f = DecodeFrame(p);
        ASSERT_TRUE(f.ok()) << f.status().ToString();
        frames_.push_back(std::move(f).value());
      }
    }
  }

  tcp::socket socket_;
  FrameDecoder decoder_;
  std::vector<Frame> frames_;
  bool closed_ = false;
};

class TransportTest : public ::testing::Test {
 protected:
  // Runs the io_context until `done` or the deadline; returns whether `done` holds.
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (io_.stopped()) io_.restart();
      io_.run_one_for(10ms);
    }
    return true;
  }

  TransportOptions Options(paxos::NodeId id, uint16_t port,
                           std::map<paxos::NodeId, std::string> peers = {}) {
    TransportOptions o;
    o.cluster_id = kCluster;
    o.node_id = id;
    o.listen_port = port;
    o.peers = std::move(peers);
    o.reconnect_delay_max = 100ms;
    return o;
  }

  void Start(Node* node, TransportOptions options) {
    node->id = options.node_id;
    Result<std::unique_ptr<Transport>> t = Transport::Create(
        io_, std::move(options), [node](paxos::Message m) { node->received.push_back(m); },
        [node](ClientHandle h, ClientRequest r) { node->requests.emplace_back(h, r); });
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    node->transport = std::move(t).value();
    node->port = node->transport->port();
  }

  // Nodes 1..n, fully meshed, on ports picked up front.
  std::vector<std::unique_ptr<Node>> Cluster(int n) {
    const std::vector<uint16_t> ports = PickFreePorts(n);
    std::vector<std::unique_ptr<Node>> nodes;
    for (int i = 0; i < n; ++i) {
      std::map<paxos::NodeId, std::string> peers;
      for (int j = 0; j < n; ++j) {
        if (j != i) peers[j + 1] = Local(ports[j]);
      }
      nodes.push_back(std::make_unique<Node>());
      Start(nodes.back().get(), Options(i + 1, ports[i], peers));
    }
    return nodes;
  }

  bool AllConnected(const std::vector<std::unique_ptr<Node>>& nodes) {
    for (const auto& a : nodes) {
      for (const auto& b : nodes) {
        if (a != b && !a->transport->PeerConnected(b->id)) return false;
      }
    }
    return true;
  }

  asio::io_context io_{1};
};

TEST_F(TransportTest, ListensOnAnEphemeralPortAndValidatesOptions) {
  Node node;
  Start(&node, Options(1, 0));
  EXPECT_NE(node.port, 0);

  auto noop_peer = [](paxos::Message) {};
  auto noop_client = [](ClientHandle, ClientRequest) {};
  TransportOptions bad = Options(0, 0);
  EXPECT_EQ(Transport::Create(io_, bad, noop_peer, noop_client).status().code(),
            StatusCode::kInvalidArgument);
  bad = Options(1, 0, {{1, "127.0.0.1:1"}});
  EXPECT_FALSE(Transport::Create(io_, bad, noop_peer, noop_client).ok());
  bad = Options(1, 0, {{2, "127.0.0.1"}});
  EXPECT_FALSE(Transport::Create(io_, bad, noop_peer, noop_client).ok());
  bad = Options(1, 0, {{2, "127.0.0.1:99999"}});
  EXPECT_FALSE(Transport::Create(io_, bad, noop_peer, noop_client).ok());
  // The port is taken.
  Result<std::unique_ptr<Transport>> taken =
      Transport::Create(io_, Options(2, node.port), noop_peer, noop_client);
  EXPECT_EQ(taken.status().code(), StatusCode::kIoError) << taken.status().ToString();
}

TEST_F(TransportTest, ThreeNodesExchangeMessagesInOrder) {
  auto nodes = Cluster(3);
  ASSERT_TRUE(RunUntil([&] { return AllConnected(nodes); }));

  constexpr uint64_t kRounds = 50;
  for (uint64_t r = 1; r <= kRounds; ++r) {
    for (const auto& a : nodes) {
      for (const auto& b : nodes) {
        if (a != b) a->transport->Send(b->id, Heartbeat(a->id, b->id, r));
      }
    }
  }
  ASSERT_TRUE(RunUntil([&] {
    for (const auto& n : nodes) {
      if (n->received.size() < 2 * kRounds) return false;
    }
    return true;
  }));
  for (const auto& n : nodes) {
    ASSERT_EQ(n->received.size(), 2 * kRounds);
    std::map<paxos::NodeId, uint64_t> last_round;
    for (const auto& m : n->received) {
      EXPECT_EQ(m.to, n->id);
      EXPECT_EQ(m.round, last_round[m.from] + 1) << "from " << m.from;  // in order, no loss
      last_round[m.from] = m.round;
    }
    EXPECT_EQ(n->counters().peer_messages_dropped, 0u);
    EXPECT_EQ(n->counters().bad_frames, 0u);
  }
}

TEST_F(TransportTest, BurstIsCoalescedIntoOneFrame) {
  auto nodes = Cluster(2);
  ASSERT_TRUE(RunUntil([&] { return AllConnected(nodes); }));
  const uint64_t frames_before = nodes[0]->counters().peer_frames_sent;
  RandomWire rnd(11);
  std::vector<paxos::Message> sent;
  for (int i = 0; i < 200; ++i) {
    paxos::Message m = rnd.Message();
    m.from = 1;
    m.to = 2;
    sent.push_back(m);
    nodes[0]->transport->Send(2, m);
  }
  ASSERT_TRUE(RunUntil([&] { return nodes[1]->received.size() == sent.size(); }));
  EXPECT_EQ(nodes[1]->received, sent);
  EXPECT_EQ(nodes[0]->counters().peer_frames_sent - frames_before, 1u);
}

TEST_F(TransportTest, LargeMessagesSpanManyReads) {
  auto nodes = Cluster(2);
  ASSERT_TRUE(RunUntil([&] { return AllConnected(nodes); }));
  paxos::Message m = Heartbeat(1, 2, 1);
  m.type = paxos::MessageType::kAccept;
  for (int i = 0; i < 4; ++i) {
    paxos::Entry e;
    e.slot = 10 + i;
    e.value.commands.resize(1);
    e.value.commands.mutable_at(0).payload.assign(3 << 20,
                                                  static_cast<char>('a' + i));  // 3 MiB each
    m.entries.push_back(e);
  }
  for (int i = 0; i < 3; ++i) nodes[0]->transport->Send(2, m);  // 36 MiB: several frames
  ASSERT_TRUE(RunUntil([&] { return nodes[1]->received.size() == 3; }));
  EXPECT_EQ(nodes[1]->received[2], m);
  EXPECT_GE(nodes[0]->counters().peer_frames_sent, 3u);
}

TEST_F(TransportTest, ReconnectsAfterAPeerIsDestroyedAndRecreated) {
  auto nodes = Cluster(2);
  Node& a = *nodes[0];
  Node& b = *nodes[1];
  ASSERT_TRUE(RunUntil([&] { return AllConnected(nodes); }));
  a.transport->Send(2, Heartbeat(1, 2, 1));
  ASSERT_TRUE(RunUntil([&] { return b.received.size() == 1; }));

  TransportOptions b_options = Options(2, b.port, {{1, Local(a.port)}});
  b.transport.reset();
  ASSERT_TRUE(RunUntil([&] { return !a.transport->PeerConnected(2); }));
  // Let a fail to reconnect at least once, then queue a message while b is down.
  const uint64_t failed_before = a.counters().connects_failed;
  ASSERT_TRUE(RunUntil([&] { return a.counters().connects_failed > failed_before; }));
  a.transport->Send(2, Heartbeat(1, 2, 2));

  b.received.clear();
  Start(&b, b_options);
  ASSERT_TRUE(RunUntil([&] { return AllConnected(nodes); }));
  ASSERT_TRUE(RunUntil([&] { return b.received.size() == 1; }));
  EXPECT_EQ(b.received[0].round, 2u) << "the message queued while b was down arrives";
  b.transport->Send(1, Heartbeat(2, 1, 7));
  ASSERT_TRUE(RunUntil([&] { return !a.received.empty() && a.received.back().round == 7; }));
}

TEST_F(TransportTest, PeerQueueIsBoundedWhileDisconnected) {
  Node a;
  TransportOptions o = Options(1, 0, {{2, Local(PickFreePort())}});  // nobody listens there
  o.peer_queue_messages_max = 10;
  Start(&a, o);
  for (int i = 0; i < 25; ++i) a.transport->Send(2, Heartbeat(1, 2, i));
  a.transport->Send(3, Heartbeat(1, 3, 1));  // not a peer
  EXPECT_EQ(a.counters().peer_messages_dropped, 16u);
  ASSERT_TRUE(RunUntil([&] { return a.counters().connects_failed >= 2; }));
}

TEST_F(TransportTest, ClientRequestAndResponse) {
  Node server;
  Start(&server, Options(1, 0));
  RawClient client(io_, server.port);
  client.Hello(kCluster);
  ClientRequest request;
  request.request_id = 42;
  request.kind = ClientRequest::Kind::kRead;
  request.query = "what";
  client.WriteFrame(request);
  ASSERT_TRUE(RunUntil([&] { return server.requests.size() == 1; }));
  EXPECT_EQ(server.requests[0].second, request);

  ClientResponse response;
  response.request_id = 42;
  response.data = "answer";
  response.status = NodeStatus{1, "leader", 5, 1, 10, 9, true, 5};
  server.transport->SendResponse(server.requests[0].first, response);
  ASSERT_TRUE(RunUntil([&] { return client.frames().size() == 2; }));
  ASSERT_TRUE(std::holds_alternative<Hello>(client.frames()[0]));
  EXPECT_EQ(std::get<Hello>(client.frames()[0]).node_id, 1u);
  EXPECT_EQ(std::get<ClientResponse>(client.frames()[1]), response);
  EXPECT_EQ(server.counters().client_responses_sent, 1u);

  // Answering after the client has gone is a harmless no-op.
  client.Close();
  ASSERT_TRUE(RunUntil([&] { return server.counters().connections_closed == 1; }));
  server.transport->SendResponse(server.requests[0].first, response);
  server.transport->SendResponse(ClientHandle{12345}, response);
  EXPECT_EQ(server.counters().client_responses_dropped, 2u);
}

// The handshake's small frame limit must not apply to a big request sent in the same write.
TEST_F(TransportTest, ClientMayPipelineALargeRequestBehindItsHello) {
  Node server;
  Start(&server, Options(1, 0));
  ClientRequest request;
  request.request_id = 1;
  request.kind = ClientRequest::Kind::kPropose;
  request.command.payload.assign(100000, 'p');
  Result<std::string> hello = EncodeHello(Hello{kCluster, kClientNodeId, kProtocolVersion});
  Result<std::string> bytes = EncodeClientRequest(request);
  ASSERT_TRUE(hello.ok() && bytes.ok());
  RawClient client(io_, server.port);
  client.Write(hello.value() + bytes.value());
  ASSERT_TRUE(RunUntil([&] { return server.requests.size() == 1; }));
  EXPECT_EQ(server.requests[0].second, request);
  EXPECT_EQ(server.counters().bad_frames, 0u);
}

// Each hostile connection is closed and counted; the node keeps serving the others.
class HostileInputTest : public TransportTest {
 protected:
  void SetUp() override {
    nodes_ = Cluster(2);
    ASSERT_TRUE(RunUntil([&] { return AllConnected(nodes_); }));
  }

  Node& server() { return *nodes_[0]; }

  // The server still answers a good client and still talks to its peer.
  void ExpectStillServing() {
    RawClient good(io_, server().port);
    good.Hello(kCluster);
    ClientRequest status;
    status.request_id = ++request_id_;
    good.WriteFrame(status);
    ASSERT_TRUE(RunUntil(
        [&] { return !server().requests.empty() && server().requests.back().second == status; }));
    ClientResponse response;
    response.request_id = status.request_id;
    server().transport->SendResponse(server().requests.back().first, response);
    ASSERT_TRUE(RunUntil([&] { return good.frames().size() == 2; }));

    const size_t before = nodes_[1]->received.size();
    server().transport->Send(2, Heartbeat(1, 2, request_id_));
    ASSERT_TRUE(RunUntil([&] { return nodes_[1]->received.size() == before + 1; }));
    EXPECT_TRUE(AllConnected(nodes_));
  }

  // Runs until the server closes `client`, then checks which counter rose.
  void ExpectClosed(RawClient& client, uint64_t TransportCounters::*counter) {
    const uint64_t before = server().counters().*counter;
    ASSERT_TRUE(RunUntil([&] { return client.Closed(); }));
    ASSERT_TRUE(RunUntil([&] { return server().counters().*counter == before + 1; }));
    ExpectStillServing();
  }

  std::vector<std::unique_ptr<Node>> nodes_;
  uint64_t request_id_ = 0;
};

TEST_F(HostileInputTest, GarbageBytes) {
  RandomWire rnd(12);
  RawClient client(io_, server().port);
  client.Write(std::string("\x10\x00\x00\x00", 4) + rnd.Bytes(64) + std::string(16, '\x55'));
  ExpectClosed(client, &TransportCounters::bad_frames);
}

TEST_F(HostileInputTest, OversizedFrameBeforeTheHandshake) {
  RawClient client(io_, server().port);
  uint8_t header[kFrameHeaderBytes];
  PutFrameHeader(kHandshakeFrameBytesMax + 8, header);
  client.Write(std::string(reinterpret_cast<char*>(header), sizeof header));
  ExpectClosed(client, &TransportCounters::bad_frames);
}

TEST_F(HostileInputTest, OversizedFrameAfterTheHandshake) {
  RawClient client(io_, server().port);
  client.Hello(kCluster);
  uint8_t header[kFrameHeaderBytes];
  PutFrameHeader(kFrameBytesMax + 8, header);
  client.Write(std::string(reinterpret_cast<char*>(header), sizeof header));
  ExpectClosed(client, &TransportCounters::bad_frames);
}

TEST_F(HostileInputTest, TruncatedFrame) {
  RawClient client(io_, server().port);
  client.Hello(kCluster);
  ClientRequest request;
  request.kind = ClientRequest::Kind::kRead;
  request.query = std::string(100, 'q');
  Result<std::string> bytes = EncodeClientRequest(request);
  ASSERT_TRUE(bytes.ok());
  client.Write(bytes.value().substr(0, bytes.value().size() / 2));
  client.ShutdownSend();
  ExpectClosed(client, &TransportCounters::bad_frames);
  for (const auto& [handle, r] : server().requests) EXPECT_NE(r.kind, ClientRequest::Kind::kRead);
}

TEST_F(HostileInputTest, WrongClusterId) {
  RawClient client(io_, server().port);
  client.Hello(kCluster + 1);
  ExpectClosed(client, &TransportCounters::handshakes_rejected);
}

// Another node may claim any id but the server's own.
TEST_F(HostileInputTest, PeerClaimingTheServersOwnId) {
  RawClient client(io_, server().port);
  client.Hello(kCluster, server().id);
  ExpectClosed(client, &TransportCounters::handshakes_rejected);
}

TEST_F(HostileInputTest, RequestBeforeHello) {
  RawClient client(io_, server().port);
  client.WriteFrame(ClientRequest{});
  ExpectClosed(client, &TransportCounters::bad_frames);
}

TEST_F(HostileInputTest, PeerMessageWithForgedSender) {
  RawClient client(io_, server().port);
  client.Hello(kCluster, 2);
  client.WriteFrame(std::vector<paxos::Message>{Heartbeat(2, 1, 1), Heartbeat(3, 1, 1)});
  ExpectClosed(client, &TransportCounters::bad_frames);
  for (const auto& m : server().received) EXPECT_NE(m.round, 1u) << "a bad batch delivers nothing";
}

TEST_F(HostileInputTest, ClientSendingPeerMessages) {
  RawClient client(io_, server().port);
  client.Hello(kCluster);
  client.WriteFrame(std::vector<paxos::Message>{Heartbeat(2, 1, 1)});
  ExpectClosed(client, &TransportCounters::bad_frames);
}

TEST_F(HostileInputTest, ValidFrameWithMalformedContents) {
  RawClient client(io_, server().port);
  client.Hello(kCluster);
  uint8_t header[kFrameHeaderBytes];
  PutFrameHeader(16, header);
  // A segment table claiming a 100-word segment in a 2-word frame.
  const uint64_t words[2] = {uint64_t{100} << 32, 0};
  client.Write(std::string(reinterpret_cast<char*>(header), sizeof header) +
               std::string(reinterpret_cast<const char*>(words), sizeof words));
  ExpectClosed(client, &TransportCounters::bad_frames);
}

TEST_F(TransportTest, HandshakeTimeout) {
  Node server;
  TransportOptions o = Options(1, 0);
  o.handshake_timeout = 100ms;
  Start(&server, o);
  RawClient silent(io_, server.port);
  ASSERT_TRUE(RunUntil([&] { return silent.Closed(); }));
  EXPECT_EQ(server.counters().handshakes_rejected, 1u);
}

TEST_F(TransportTest, NodesOfDifferentClustersNeverConnect) {
  const std::vector<uint16_t> ports = PickFreePorts(2);
  const uint16_t pa = ports[0], pb = ports[1];
  Node a, b;
  Start(&a, Options(1, pa, {{2, Local(pb)}}));
  TransportOptions ob = Options(2, pb, {{1, Local(pa)}});
  ob.cluster_id = kCluster + 1;
  Start(&b, ob);
  ASSERT_TRUE(RunUntil([&] {
    return a.counters().handshakes_rejected >= 2 && b.counters().handshakes_rejected >= 2;
  }));
  EXPECT_FALSE(a.transport->PeerConnected(2));
  EXPECT_FALSE(b.transport->PeerConnected(1));
  a.transport->Send(2, Heartbeat(1, 2, 1));
  EXPECT_FALSE(RunUntil([&] { return !b.received.empty(); }, 300ms));
}

PeerTiming Timing(uint32_t tick_ms) {
  paxos::Options po;
  return PeerTimingOf(std::chrono::milliseconds(tick_ms), po);
}

// Issue 12 item 3: a node with a longer tick believes in a longer lease than its peers grant, so
// peers whose timing differs must never exchange protocol messages. Both sides refuse, both
// name both values, both count it; and the link keeps redialing, so the odd node, restarted with
// the right timing, is connected without restarting the others.
TEST_F(TransportTest, PeersWithDifferentTimingRefuseEachOther) {
  const std::vector<uint16_t> ports = PickFreePorts(2);
  Node a, b;
  TransportOptions oa = Options(1, ports[0], {{2, Local(ports[1])}});
  oa.timing = Timing(10);
  TransportOptions ob = Options(2, ports[1], {{1, Local(ports[0])}});
  ob.timing = Timing(20);
  Start(&a, oa);
  Start(&b, ob);
  // Each side refused at least once as the dialer and once as the dialed.
  ASSERT_TRUE(RunUntil([&] {
    return a.counters().timing_mismatches >= 2 && b.counters().timing_mismatches >= 2 &&
           a.counters().handshakes_rejected >= 2 && b.counters().handshakes_rejected >= 2;
  }));
  EXPECT_FALSE(a.transport->PeerConnected(2));
  EXPECT_FALSE(b.transport->PeerConnected(1));
  EXPECT_EQ(a.counters().handshakes_completed, 0u);
  EXPECT_EQ(b.counters().handshakes_completed, 0u);
  a.transport->Send(2, Heartbeat(1, 2, 1));
  b.transport->Send(1, Heartbeat(2, 1, 1));
  EXPECT_FALSE(RunUntil([&] { return !a.received.empty() || !b.received.empty(); }, 300ms));

  // Node 2 comes back with node 1's timing: the queued heartbeat from node 1 arrives.
  b.transport.reset();
  ob.timing = Timing(10);
  Start(&b, ob);
  ASSERT_TRUE(RunUntil([&] { return a.transport->PeerConnected(2) && !b.received.empty(); }));
  EXPECT_EQ(b.received.front().round, 1u);
}

TEST_F(TransportTest, PeersWithTheSameTimingExchangeMessages) {
  const std::vector<uint16_t> ports = PickFreePorts(2);
  Node a, b;
  TransportOptions oa = Options(1, ports[0], {{2, Local(ports[1])}});
  oa.timing = Timing(20);
  TransportOptions ob = Options(2, ports[1], {{1, Local(ports[0])}});
  ob.timing = Timing(20);
  Start(&a, oa);
  Start(&b, ob);
  a.transport->Send(2, Heartbeat(1, 2, 1));
  b.transport->Send(1, Heartbeat(2, 1, 1));
  ASSERT_TRUE(RunUntil([&] { return a.received.size() == 1 && b.received.size() == 1; }));
  EXPECT_EQ(a.counters().timing_mismatches, 0u);
  EXPECT_EQ(b.counters().timing_mismatches, 0u);
}

// Timing and the data directory's state are for peers; a client hears who it reached, no more.
TEST_F(TransportTest, ClientsAreAnsweredWithoutTimingOrDataState) {
  Node server;
  TransportOptions o = Options(1, 0);
  o.timing = Timing(10);
  o.data_state = DataState::kEstablished;
  o.joined_members = {1};
  Start(&server, o);
  RawClient client(io_, server.port);
  client.Hello(kCluster);
  ASSERT_TRUE(RunUntil([&] { return client.frames().size() == 1; }));
  ASSERT_TRUE(std::holds_alternative<Hello>(client.frames()[0]));
  EXPECT_EQ(std::get<Hello>(client.frames()[0]), (Hello{kCluster, 1, kProtocolVersion}));
}

TEST(TimingMismatchTest, NamesTheFieldAndBothValues) {
  EXPECT_EQ(TimingMismatch(2, TimingFields(Timing(20)), TimingFields(Timing(10))),
            "peer 2 has tick_ms=20, this node 10");
  EXPECT_EQ(TimingMismatch(2, TimingFields(Timing(10)), TimingFields(Timing(10))), "");
  PeerTiming looser_clocks = Timing(10);
  looser_clocks.max_clock_drift_ppm *= 2;
  EXPECT_EQ(TimingMismatch(2, TimingFields(looser_clocks), TimingFields(Timing(10))),
            "peer 2 has max_clock_drift_ppm=" + std::to_string(looser_clocks.max_clock_drift_ppm) +
                ", this node " + std::to_string(looser_clocks.max_clock_drift_ppm / 2));
  PeerTiming longer_lease = Timing(10);
  longer_lease.lease_ticks += 1;
  EXPECT_EQ(TimingMismatch(3, TimingFields(longer_lease), TimingFields(Timing(10))),
            "peer 3 has lease_ticks=" + std::to_string(longer_lease.lease_ticks) + ", this node " +
                std::to_string(longer_lease.lease_ticks - 1));
  // A peer that sends no timing at all (an older ballotd) or a field this node does not know.
  EXPECT_NE(TimingMismatch(2, {}, TimingFields(Timing(10))).find("sends no tick_ms"),
            std::string::npos);
  std::vector<TimingValue> extra = TimingFields(Timing(10));
  extra.push_back({"max_skew_us", 500});
  EXPECT_NE(TimingMismatch(2, extra, TimingFields(Timing(10)))
                .find("max_skew_us=500, which this node does not know"),
            std::string::npos);
}

// Peer hellos carry each node's data state to the other side's handler; after SetDataState and
// ReconnectPeers, peers hear the new state.
TEST_F(TransportTest, PeerHellosCarryTheDataStateAndReconnectTellsTheNewOne) {
  const std::vector<uint16_t> ports = PickFreePorts(2);
  Node a, b;
  TransportOptions oa = Options(1, ports[0], {{2, Local(ports[1])}});
  oa.data_state = DataState::kEmpty;
  Start(&a, oa);
  std::vector<Hello> heard_by_a, heard_by_b;
  a.transport->SetPeerHelloHandler([&](const Hello& h) { heard_by_a.push_back(h); });
  TransportOptions ob = Options(2, ports[1], {{1, Local(ports[0])}});
  ob.data_state = DataState::kEstablished;
  ob.joined_members = {1, 2};
  Start(&b, ob);
  b.transport->SetPeerHelloHandler([&](const Hello& h) { heard_by_b.push_back(h); });
  ASSERT_TRUE(RunUntil([&] { return heard_by_a.size() >= 2 && heard_by_b.size() >= 2; }));
  for (const Hello& h : heard_by_a) {
    EXPECT_EQ(h.node_id, 2u);
    EXPECT_EQ(h.data_state, DataState::kEstablished);
    EXPECT_EQ(h.joined_members, (std::vector<paxos::NodeId>{1, 2}));
  }
  for (const Hello& h : heard_by_b) EXPECT_EQ(h.data_state, DataState::kEmpty);

  a.transport->SetDataState(DataState::kEstablished, {1});
  heard_by_b.clear();
  a.transport->ReconnectPeers();
  ASSERT_TRUE(RunUntil([&] { return heard_by_b.size() >= 2; }));
  for (const Hello& h : heard_by_b) {
    EXPECT_EQ(h.data_state, DataState::kEstablished);
    EXPECT_EQ(h.joined_members, (std::vector<paxos::NodeId>{1}));
  }
  ASSERT_TRUE(
      RunUntil([&] { return a.transport->PeerConnected(2) && b.transport->PeerConnected(1); }));
}

// Node 1 lists node 2, but node 2 does not list node 1: node 2 never answers node 1's hello, so
// node 1 never sees the link up, and it backs off instead of redialing in a tight loop.
TEST_F(TransportTest, PeerThatRefusesUsIsRedialedWithBackoff) {
  const std::vector<uint16_t> ports = PickFreePorts(2);
  Node a, b;
  TransportOptions ob = Options(2, ports[1]);
  ob.timing = Timing(20);  // b refuses a: their timing differs
  Start(&b, ob);
  TransportOptions oa = Options(1, ports[0], {{2, Local(ports[1])}});
  oa.timing = Timing(10);
  Start(&a, oa);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunUntil([&] { return a.counters().handshakes_rejected >= 4; }));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 10ms + 20ms + 40ms) << "three backoff delays precede the fourth attempt";
  EXPECT_FALSE(a.transport->PeerConnected(2));
  EXPECT_EQ(a.counters().handshakes_completed, 0u);
  EXPECT_GE(b.counters().handshakes_rejected, 4u);
}

// Membership changes: a node that is not configured here may connect (a node being added dials
// the members before they know it); AddPeer dials a new member at once; RemovePeer stops sending
// to it and drops what was queued.
TEST_F(TransportTest, PeersAreAddedAndRemovedAtRuntime) {
  const std::vector<uint16_t> ports = PickFreePorts(2);
  Node a, b;
  Start(&a, Options(1, ports[0]));
  Start(&b, Options(2, ports[1], {{1, Local(ports[0])}}));
  // b is not a peer of a, yet its messages arrive.
  ASSERT_TRUE(RunUntil([&] { return b.transport->PeerConnected(1); }));
  b.transport->Send(1, Heartbeat(2, 1, 7));
  ASSERT_TRUE(RunUntil([&] { return !a.received.empty(); }));
  EXPECT_EQ(a.received.back().round, 7u);
  // a learns of b.
  EXPECT_EQ(a.transport->Peers().size(), 0u);
  ASSERT_TRUE(a.transport->AddPeer(2, Local(ports[1])).ok());
  EXPECT_EQ(a.transport->Peers(), (std::map<paxos::NodeId, std::string>{{2, Local(ports[1])}}));
  ASSERT_TRUE(RunUntil([&] { return a.transport->PeerConnected(2); }));
  a.transport->Send(2, Heartbeat(1, 2, 8));
  ASSERT_TRUE(RunUntil([&] { return !b.received.empty(); }));
  EXPECT_EQ(b.received.back().round, 8u);
  // ... and forgets it: nothing more goes out to it.
  a.transport->RemovePeer(2);
  EXPECT_FALSE(a.transport->PeerConnected(2));
  EXPECT_TRUE(a.transport->Peers().empty());
  const uint64_t dropped = a.counters().peer_messages_dropped;
  a.transport->Send(2, Heartbeat(1, 2, 9));
  EXPECT_EQ(a.counters().peer_messages_dropped, dropped + 1);
  RunUntil([] { return false; }, 50ms);
  for (const auto& m : b.received) EXPECT_NE(m.round, 9u);
  // Invalid additions are refused.
  EXPECT_FALSE(a.transport->AddPeer(1, Local(ports[1])).ok()) << "its own id";
  EXPECT_FALSE(a.transport->AddPeer(3, "no-port").ok());
}

TEST_F(TransportTest, ConnectionsBeyondTheMaximumAreRefused) {
  Node server;
  TransportOptions o = Options(1, 0);
  o.connections_max = 2;
  Start(&server, o);
  RawClient c1(io_, server.port), c2(io_, server.port), c3(io_, server.port);
  ASSERT_TRUE(RunUntil([&] { return server.counters().connections_refused == 1; }));
  EXPECT_TRUE(RunUntil([&] { return c3.Closed(); }));
  EXPECT_FALSE(c1.Closed());
  EXPECT_FALSE(c2.Closed());
}

TEST_F(TransportTest, DestroyingATransportWithTrafficInFlightIsSafe) {
  for (int round = 0; round < 5; ++round) {
    auto nodes = Cluster(3);
    ASSERT_TRUE(RunUntil([&] { return AllConnected(nodes); }));
    for (int i = 0; i < 100; ++i) nodes[0]->transport->Send(2, Heartbeat(1, 2, i));
    RawClient client(io_, nodes[1]->port);
    client.Hello(kCluster);
    nodes[round % 3].reset();
    RunUntil([] { return false; }, 20ms);  // drain what the dead transport left queued
  }
}

}  // namespace
}  // namespace ballot::net
