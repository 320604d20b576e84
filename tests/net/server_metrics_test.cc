// What a library user sees: Server::metrics() and Server::Health() of an in-process one-node
// server (real LMDB in a temporary directory, real sockets), served by MetricsHttpServer.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "net/client/client.h"
#include "net/server/metrics_http.h"
#include "net/server/server.h"
#include "statemachine/samples/sequence.h"

namespace ballot {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kWait{20};

template <typename Pred>
bool WaitFor(Pred done) {
  const Clock::time_point deadline = Clock::now() + kWait;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

class ServerMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ballot-server-metrics-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Server> NewServer() {
    ServerOptions o;
    o.id = 1;
    o.members = {{1, "127.0.0.1:1"}};
    o.listen_port_override = 0;
    o.data_dir = dir_ + "/data";
    auto server = Server::Create(o, std::make_unique<samples::SequenceGenerator>());
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    return server.ok() ? std::move(server).value() : nullptr;
  }

  std::string dir_;
};

TEST_F(ServerMetricsTest, RegistryAndHealthFollowTheServer) {
  std::unique_ptr<Server> server = NewServer();
  ASSERT_NE(server, nullptr);
  server->Start();
  // Alone in its cluster it leads after an election timeout.
  ASSERT_TRUE(WaitFor([&] {
    return server->metrics().Render().find("ballot_role{role=\"leader\"} 1\n") != std::string::npos;
  })) << server->metrics().Render();
  HealthReport health = server->Health();
  EXPECT_TRUE(health.serving) << health.detail;
  EXPECT_EQ(health.detail, "ok: node 1, role leader, leader 1");
  const std::string text = server->metrics().Render();
  EXPECT_NE(text.find("# TYPE ballot_persist_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("ballot_leader_id 1\n"), std::string::npos);
  EXPECT_EQ(text.find("ballot_lmdb_map_size_bytes 0\n"), std::string::npos) << "no LMDB collector";

  // The library user's own HTTP endpoint over the same registry.
  auto http = MetricsHttpServer::Start(MetricsHttpOptions{}, &server->metrics(),
                                       [&] { return server->Health(); });
  ASSERT_TRUE(http.ok()) << http.status().ToString();
  EXPECT_GT(http.value()->port(), 0);
  // A second server on the same port is refused, not fatal.
  MetricsHttpOptions taken;
  taken.port = http.value()->port();
  auto again = MetricsHttpServer::Start(taken, &server->metrics(), [] { return HealthReport{}; });
  EXPECT_EQ(again.status().code(), StatusCode::kIoError) << again.status().ToString();

  server->Stop();
  health = server->Health();
  EXPECT_FALSE(health.serving);
  EXPECT_EQ(health.detail, "node 1 is stopping");
  http.value().reset();
  EXPECT_TRUE(server->Wait().ok());
}

}  // namespace
}  // namespace ballot
