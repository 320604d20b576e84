// MetricsHttpServer (net/metrics_http.h) on its own, over real sockets: its bounds. A client that
// sends half a request is closed at request_timeout; connections beyond connections_max are
// closed at once while the others are served; random bytes never stop it answering.
#include "net/server/metrics_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace ballot {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kReadTimeout{5000};  // well above every deadline under test

int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  PCHECK(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  PCHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

// Reads until the server closes (true) or kReadTimeout passes (false); appends to *got.
bool ReadUntilClosed(int fd, std::string* got) {
  const Clock::time_point deadline = Clock::now() + kReadTimeout;
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    got->append(buffer, static_cast<size_t>(n));
  }
}

// GET path on a fresh connection; the whole response.
std::string Get(uint16_t port, const std::string& path) {
  const int fd = Connect(port);
  SendAll(fd, "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::string got;
  EXPECT_TRUE(ReadUntilClosed(fd, &got));
  close(fd);
  return got;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void Start(MetricsHttpOptions o) {
    registry_.AddCounter("test_requests_total", "Test.").Increment(7);
    auto server = MetricsHttpServer::Start(o, &registry_, [] { return HealthReport{true, "ok"}; });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
  }

  MetricsRegistry registry_;
  std::unique_ptr<MetricsHttpServer> server_;
};

TEST_F(MetricsHttpTest, HalfARequestIsClosedAtTheDeadline) {
  MetricsHttpOptions o;
  o.request_timeout = milliseconds(200);
  Start(o);
  const int fd = Connect(server_->port());
  SendAll(fd, "GET /metr");
  const Clock::time_point sent = Clock::now();
  std::string got;
  EXPECT_TRUE(ReadUntilClosed(fd, &got)) << "still open after " << kReadTimeout.count() << " ms";
  EXPECT_GE(Clock::now() - sent, milliseconds(150));  // not before its deadline
  EXPECT_EQ(got, "");
  close(fd);
  EXPECT_NE(Get(server_->port(), "/metrics").find("test_requests_total 7"), std::string::npos);
}

TEST_F(MetricsHttpTest, ConnectionsBeyondTheBoundAreClosedOthersServed) {
  MetricsHttpOptions o;
  o.connections_max = 2;
  Start(o);
  std::vector<int> held = {Connect(server_->port()), Connect(server_->port())};
  // Accepted in order on one thread: once these two are counted, a third is refused.
  const int extra = Connect(server_->port());
  std::string got;
  EXPECT_TRUE(ReadUntilClosed(extra, &got));
  EXPECT_EQ(got, "");
  close(extra);
  EXPECT_EQ(server_->counters().connections_refused, 1u);
  // The held ones are served.
  SendAll(held[0], "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  got.clear();
  EXPECT_TRUE(ReadUntilClosed(held[0], &got));
  EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  for (int fd : held) close(fd);
}

TEST_F(MetricsHttpTest, RandomBytesGetAnswersAndTheServerGoesOn) {
  Start(MetricsHttpOptions{});
  std::mt19937 rng(20261203);  // fixed: a failure replays
  for (int i = 0; i < 50; ++i) {
    std::string junk(1 + rng() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (i % 2 == 0) junk = "GET /metrics HTTP/1.1\r\n" + junk;  // a header that goes bad
    junk += "\r\n\r\n";
    const int fd = Connect(server_->port());
    SendAll(fd, junk);
    shutdown(fd, SHUT_WR);
    std::string got;
    EXPECT_TRUE(ReadUntilClosed(fd, &got)) << "case " << i;
    close(fd);
    // A 4xx (the bytes are never a valid request line and headers), then the close.
    EXPECT_EQ(got.rfind("HTTP/1.1 4", 0), 0u) << "case " << i << ": " << got;
  }
  EXPECT_NE(Get(server_->port(), "/metrics").find("test_requests_total 7"), std::string::npos);
  EXPECT_GT(server_->counters().bad_requests, 0u);
}

}  // namespace
}  // namespace ballot
