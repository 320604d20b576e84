// Untrusted input with real processes (DESIGN.md §5): bad bytes on a raw TCP connection to a
// node's port. For each kind of bad connection, on the leader and on a follower:
//   - the node closes that connection (the test reads EOF or a reset);
//   - the node keeps serving (its status answers, and a NextNumbers call succeeds);
//   - its log gets exactly one warning line about that connection (found by the connection's
//     local port, which the node prints as "127.0.0.1:<port>").
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "net/client/sequence_numbers.h"
#include "net/codec.h"
#include "net/frame.h"
#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kLiveness{10};
constexpr seconds kStartTimeout{30};
// How long the node may take to close a bad connection. Every case here is detected as soon as
// the bytes arrive (none relies on the 5 s handshake timeout).
constexpr seconds kCloseTimeout{5};
// Bytes of the server's answer the test is willing to read before the close.
constexpr size_t kReadBytesMax = 1 << 20;

std::string LengthPrefix(uint32_t length) {
  uint8_t header[net::kFrameHeaderBytes];
  net::PutFrameHeader(length, header);
  return std::string(reinterpret_cast<const char*>(header), sizeof(header));
}

std::string HelloFrame(uint64_t cluster_id) {
  net::Hello hello;
  hello.cluster_id = cluster_id;
  hello.node_id = net::kClientNodeId;
  auto frame = net::EncodeHello(hello);
  CHECK(frame.ok()) << frame.status().ToString();
  return frame.value();
}

// A raw client connection to 127.0.0.1:port.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    PCHECK(fd_ >= 0) << "socket";
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    PCHECK(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
        << "connect to port " << port;
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    socklen_t len = sizeof(addr);
    PCHECK(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    local_port_ = ntohs(addr.sin_port);
  }
  ~RawConnection() { close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  uint16_t local_port() const { return local_port_; }

  // False if the node closed the connection before everything was written.
  bool Send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // No more bytes from us: the node sees the end of the stream.
  void ShutdownWrite() { shutdown(fd_, SHUT_WR); }

  // Reads until `want` bytes have arrived, the node closes, or the deadline. Appends to *got.
  // Returns true if the node closed the connection (EOF or reset).
  bool ReadUntilClosed(Clock::time_point deadline, std::string* got, size_t want = kReadBytesMax) {
    char buffer[4096];
    while (got->size() < want) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      const int r = poll(&p, 1, static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      PCHECK(r >= 0) << "poll";
      if (r == 0) continue;  // the deadline check above ends the loop
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n == 0) return true;
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return errno == ECONNRESET;
      }
      got->append(buffer, static_cast<size_t>(n));
    }
    return false;
  }

 private:
  int fd_ = -1;
  uint16_t local_port_ = 0;
};

struct BadInput {
  std::string name;
  // Runs the bad exchange on `conn`; returns what the node sent before closing.
  std::function<void(RawConnection& conn, uint64_t cluster_id)> send;
  // A phrase the warning line must contain.
  std::string says;
  // Whether the node should have answered our hello before closing.
  bool answers_hello = false;
};

std::vector<BadInput> BadInputs() {
  // A header announcing 64 bytes, then 64 bytes that are no Cap'n Proto message (the segment
  // table claims 0xABABABAB + 1 segments). The node logs the same failure from the same host at
  // most once a minute (net/transport.cc, kFailureLogInterval), so the garbage sent after a
  // hello differs: its decode error names another segment count.
  const std::string garbage = LengthPrefix(64) + std::string(64, '\xAB');
  const std::string other_garbage = LengthPrefix(64) + std::string(64, '\xCD');
  return {
      {"garbage bytes", [garbage](RawConnection& c, uint64_t) { c.Send(garbage); },
       "malformed frame", false},
      {"oversized frame length prefix",
       [](RawConnection& c, uint64_t) { c.Send(LengthPrefix(0xFFFFFFF8u)); }, "length 4294967288",
       false},
      {"truncated frame, then close",
       [](RawConnection& c, uint64_t cluster_id) {
         const std::string hello = HelloFrame(cluster_id);
         c.Send(hello.substr(0, hello.size() - 8));
         c.ShutdownWrite();
       },
       "truncated", false},
      {"hello with a wrong cluster id",
       [](RawConnection& c, uint64_t cluster_id) { c.Send(HelloFrame(cluster_id + 1)); },
       "wrong cluster id", false},
      {"garbage after a valid hello",
       [other_garbage](RawConnection& c, uint64_t cluster_id) {
         c.Send(HelloFrame(cluster_id));
         std::string hello_back;
         // The node's hello arrives first; the garbage only once we are admitted as a client.
         c.ReadUntilClosed(Clock::now() + kCloseTimeout, &hello_back,
                           HelloFrame(cluster_id).size());
         EXPECT_EQ(hello_back.size(), HelloFrame(cluster_id).size()) << "no hello from the node";
         c.Send(other_garbage);
       },
       // Admitted as a client by then, so the node should say so (net/transport.cc
       // Connection::Describe).
       "(client at 127.0.0.1:", true},
  };
}

TEST(BadInputTest, EachBadConnectionIsClosedLoggedOnceAndTheNodeKeepsServing) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(DefaultOptions(BALLOTD_PATH));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster.WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  const paxos::NodeId leader_id = leader.value().first;
  const paxos::NodeId follower = leader_id == 1 ? 2 : 1;
  auto client = cluster.NewClient();

  struct Sent {
    paxos::NodeId node;
    std::string name;
    uint16_t local_port;
  };
  std::vector<Sent> sent;
  for (const paxos::NodeId node : {leader_id, follower}) {
    for (const BadInput& bad : BadInputs()) {
      SCOPED_TRACE(bad.name + " to node " + std::to_string(node) +
                   (node == leader_id ? " (leader)" : " (follower)"));
      RawConnection conn(cluster.port(node));
      bad.send(conn, cluster.cluster_id());
      std::string got;
      EXPECT_TRUE(conn.ReadUntilClosed(Clock::now() + kCloseTimeout, &got))
          << "the node did not close the connection within " << kCloseTimeout.count() << " s";
      if (!bad.answers_hello) {
        EXPECT_EQ(got, "") << "the node answered a bad connection";
      }

      // Exactly one warning naming this connection.
      const std::string where = "127.0.0.1:" + std::to_string(conn.local_port()) + ")";
      cluster.WaitForLogLines(node, {"closing connection", where}, 1, Clock::now() + kCloseTimeout);
      const std::vector<std::string> lines = cluster.LogLines(node, {where});
      ASSERT_EQ(lines.size(), 1u) << "log lines naming " << where << " in "
                                  << cluster.LogPath(node);
      EXPECT_EQ(lines[0].front(), 'W') << "not a warning: " << lines[0];
      EXPECT_NE(lines[0].find(bad.says), std::string::npos)
          << "the warning does not say '" << bad.says << "': " << lines[0];
      std::printf("[ bad input ] node %u, %s: %s\n", node, bad.name.c_str(), lines[0].c_str());
      sent.push_back({node, bad.name, conn.local_port()});

      // The node keeps serving.
      auto status = cluster.NodeStatus(node, kLiveness);
      EXPECT_TRUE(status.ok()) << status.status().ToString();
      auto numbers = NextNumbers(*client, 1, kLiveness);
      EXPECT_TRUE(numbers.ok()) << numbers.status().ToString();
    }
  }

  // Still one line per bad connection at the end (nothing logged twice later).
  for (const Sent& s : sent) {
    const std::string where = "127.0.0.1:" + std::to_string(s.local_port) + ")";
    EXPECT_EQ(cluster.CountLogLines(s.node, {where}), 1u) << s.name << " to node " << s.node;
  }
  Status alive = cluster.CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
  std::printf("[ bad input ] took %.1f s\n", MsBetween(test_start, Clock::now()) / 1000);
}

}  // namespace
}  // namespace ballot::cluster_test
