// ballotd --metrics_port (net/metrics_http.h, net/server_metrics.h) with real processes: a
// 3-node cluster started with --metrics_port=0, each node's port found in its log, /metrics
// fetched by a real HTTP client (Python's urllib) and parsed by a real Prometheus parser
// (Debian's python3-prometheus-client, tests/cluster/metrics_scrape.py).
//   - every required family is there, with its type, on every node;
//   - the values follow the cluster: exactly one node says it leads, all agree on the leader and
//     its epoch, applied slots and commands grow with commands, the leader times commits and
//     heartbeat round trips to both peers, a snapshot shows up in the snapshot metrics, and
//     the LMDB map's use is below its size and its size below its limit;
//   - /healthz answers 200 on every node;
//   - bad requests on raw sockets (garbage, unknown path, wrong method, oversized header and
//     body) get their 4xx, keep-alive serves two requests on one connection, and afterwards the
//     node still serves both metrics and commands.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "net/client/sequence_numbers.h"
#include "tests/cluster/process_cluster.h"
#include "tests/cluster/tool_run.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr seconds kScrapeTimeout{15};  // one fetch and parse, including Python's start
constexpr seconds kSettleTimeout{30};  // for values that follow the cluster (one tick behind)
constexpr milliseconds kCallTimeout{10000};
constexpr seconds kHttpTimeout{10};  // one raw HTTP exchange
constexpr size_t kResponseBytesMax = 1 << 20;

// What metrics_scrape.py printed: family -> type, and "name{labels}" -> value.
struct Scrape {
  std::map<std::string, std::string> types;
  std::map<std::string, double> samples;

  double Value(const std::string& key) const {
    auto it = samples.find(key);
    return it == samples.end() ? -1 : it->second;
  }
  bool Has(const std::string& key) const { return samples.count(key) != 0; }
};

Result<Scrape> ScrapeMetrics(uint16_t port) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  ToolResult r =
      RunTool({DEBIAN_PYTHON, METRICS_SCRAPE_PATH, url, "10"}, Clock::now() + kScrapeTimeout);
  if (r.exit_code != 0) return Status(StatusCode::kAborted, "scrape " + url + ": " + r.Describe());
  Scrape s;
  std::istringstream lines(r.out);
  std::string kind, name, labels, value;
  while (lines >> kind) {
    if (kind == "FAMILY") {
      lines >> name >> value;
      s.types[name] = value;
    } else if (kind == "SAMPLE") {
      lines >> name >> labels >> value;
      s.samples[labels == "-" ? name : name + "{" + labels + "}"] = std::stod(value);
    } else {
      return Status(StatusCode::kAborted, "unexpected scrape line starting " + kind);
    }
  }
  return s;
}

// One raw HTTP exchange: sends `request`, ends our side of the stream (so the server closes
// after its answers, even to a kept-alive connection), and reads until it closes or the
// deadline. Returns what arrived.
std::string RawHttp(uint16_t port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  PCHECK(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  PCHECK(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server stopped reading (it answered an oversized request)
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string got;
  const Clock::time_point deadline = Clock::now() + kHttpTimeout;
  char buffer[4096];
  while (got.size() < kResponseBytesMax) {
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, MillisLeft(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return got;
}

// The status codes of every response in `raw`, in order.
std::vector<int> StatusCodes(const std::string& raw) {
  std::vector<int> codes;
  for (size_t at = raw.find("HTTP/1."); at != std::string::npos; at = raw.find("HTTP/1.", at + 1)) {
    if (at + 12 <= raw.size() && raw[at + 8] == ' ') codes.push_back(std::atoi(&raw[at + 9]));
  }
  return codes;
}

std::string Get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ProcessClusterOptions o = DefaultOptions(BALLOTD_PATH);
    o.extra_flags = {"--metrics_port=0"};
    cluster_ = std::make_unique<ProcessCluster>(o);
    ASSERT_TRUE(cluster_->StartAll(Clock::now() + kStartTimeout).ok());
    for (paxos::NodeId id : cluster_->ids()) {
      const std::vector<std::string> needle = {"metrics on http://127.0.0.1:"};
      ASSERT_EQ(cluster_->WaitForLogLines(id, needle, 1, Clock::now() + kStartTimeout), 1u);
      const std::string line = cluster_->LogLines(id, needle).back();
      const size_t at = line.find(needle[0]) + needle[0].size();
      ports_[id] = static_cast<uint16_t>(std::atoi(line.c_str() + at));
      ASSERT_GT(ports_[id], 0) << line;
      ASSERT_NE(ports_[id], cluster_->port(id));
    }
    client_ = cluster_->NewClient();
  }

  // Scrapes every node until `done` holds for the scrapes, or the deadline.
  template <typename Pred>
  std::map<paxos::NodeId, Scrape> ScrapeUntil(Pred done, std::string* why) {
    std::map<paxos::NodeId, Scrape> all;
    WaitUntil(
        Clock::now() + kSettleTimeout,
        [&] {
          all.clear();
          for (const auto& [id, port] : ports_) {
            Result<Scrape> s = ScrapeMetrics(port);
            if (!s.ok()) {
              *why = s.status().ToString();
              return false;
            }
            all[id] = std::move(s).value();
          }
          return done(all);
        },
        milliseconds(200));
    return all;
  }

  std::unique_ptr<ProcessCluster> cluster_;
  std::map<paxos::NodeId, uint16_t> ports_;
  std::unique_ptr<Client> client_;
};

TEST_F(MetricsTest, ScrapesParseAndFollowTheCluster) {
  auto leader = cluster_->WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  const paxos::NodeId leader_id = leader.value().first;

  // Families the issue asks for, by the parser's family name (counters lose "_total") and type.
  const std::map<std::string, std::string> required = {
      {"ballot_role", "gauge"},
      {"ballot_leader_epoch", "gauge"},
      {"ballot_leader_id", "gauge"},
      {"ballot_chosen_slots", "gauge"},
      {"ballot_applied_slots", "gauge"},
      {"ballot_proposals", "counter"},
      {"ballot_commands_applied", "counter"},
      {"ballot_commands_per_slot", "histogram"},
      {"ballot_persist_duration_seconds", "histogram"},
      {"ballot_commit_duration_seconds", "histogram"},
      {"ballot_peer_messages_dropped", "counter"},
      {"ballot_core_messages_dropped", "counter"},
      {"ballot_elections_started", "counter"},
      {"ballot_leader_changes", "counter"},
      {"ballot_overload_rejections", "counter"},
      {"ballot_client_sessions", "gauge"},
      {"ballot_lmdb_map_used_bytes", "gauge"},
      {"ballot_lmdb_map_size_bytes", "gauge"},
      {"ballot_lmdb_map_limit_bytes", "gauge"},
      {"ballot_snapshots_taken", "counter"},
      {"ballot_snapshot_bytes", "gauge"},
      {"ballot_snapshot_duration_seconds", "histogram"},
  };
  std::string why;
  // Exactly one node says it leads, and everyone names it with one epoch (values are copied
  // once per tick, so they may lag the client's view briefly).
  auto settled = [&](const std::map<paxos::NodeId, Scrape>& all) {
    int leaders = 0;
    std::set<double> named, epochs;
    for (const auto& [id, s] : all) {
      leaders += s.Value("ballot_role{role=leader}") == 1;
      named.insert(s.Value("ballot_leader_id"));
      epochs.insert(s.Value("ballot_leader_epoch"));
    }
    why = "leaders " + std::to_string(leaders);
    return leaders == 1 && named.size() == 1 && epochs.size() == 1 && *epochs.begin() > 0;
  };
  std::map<paxos::NodeId, Scrape> before = ScrapeUntil(settled, &why);
  ASSERT_TRUE(settled(before)) << why;
  for (const auto& [id, s] : before) {
    for (const auto& [family, type] : required) {
      auto it = s.types.find(family);
      ASSERT_NE(it, s.types.end()) << "node " << id << " lacks " << family;
      EXPECT_EQ(it->second, type) << family;
    }
    EXPECT_EQ(s.Value("ballot_node_id"), id);
    EXPECT_EQ(s.Value("ballot_role{role=leader}"), id == leader_id ? 1 : 0) << "node " << id;
    EXPECT_EQ(s.Value("ballot_role{role=joining}"), 0) << "node " << id;
    EXPECT_EQ(s.Value("ballot_leader_id"), leader_id) << "node " << id;
    // The map: in use <= its size <= its limit, and something is in use.
    const double used = s.Value("ballot_lmdb_map_used_bytes");
    const double size = s.Value("ballot_lmdb_map_size_bytes");
    EXPECT_GT(used, 0) << "node " << id;
    EXPECT_LE(used, size) << "node " << id;
    EXPECT_LE(size, s.Value("ballot_lmdb_map_limit_bytes")) << "node " << id;
  }

  // Commands: 40 calls, each its own slot (one at a time).
  constexpr int kCalls = 40;
  for (int i = 0; i < kCalls; ++i) {
    auto r = NextNumbers(*client_, 1, kCallTimeout);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto grown = [&](const std::map<paxos::NodeId, Scrape>& all) {
    for (const auto& [id, s] : all) {
      const Scrape& b = before.at(id);
      if (s.Value("ballot_applied_slots") < b.Value("ballot_applied_slots") + kCalls) return false;
      if (s.Value("ballot_commands_applied_total") <
          b.Value("ballot_commands_applied_total") + kCalls) {
        return false;
      }
    }
    return true;
  };
  std::map<paxos::NodeId, Scrape> after = ScrapeUntil(grown, &why);
  ASSERT_TRUE(grown(after)) << why;
  const Scrape& l = after.at(leader_id);
  EXPECT_GE(l.Value("ballot_proposals_total"),
            before.at(leader_id).Value("ballot_proposals_total") + kCalls);
  EXPECT_GE(l.Value("ballot_commit_duration_seconds_count"), kCalls);
  EXPECT_GT(l.Value("ballot_commit_duration_seconds_sum"), 0);
  EXPECT_EQ(l.Value("ballot_commit_duration_seconds_bucket{le=+Inf}"),
            l.Value("ballot_commit_duration_seconds_count"));
  for (const auto& [id, s] : after) {
    EXPECT_GE(s.Value("ballot_chosen_slots"), s.Value("ballot_applied_slots")) << "node " << id;
    EXPECT_GT(s.Value("ballot_persist_duration_seconds_count"), 0) << "node " << id;
    EXPECT_GE(s.Value("ballot_commands_per_slot_count"), kCalls) << "node " << id;
    EXPECT_GE(s.Value("ballot_commands_per_slot_sum"), kCalls) << "node " << id;
    EXPECT_GE(s.Value("ballot_client_sessions"), 1) << "node " << id;
    EXPECT_EQ(s.Value("ballot_overload_rejections_total"), 0) << "node " << id;
    EXPECT_GT(s.Value("ballot_peer_messages_sent_total"), 0) << "node " << id;
    if (id == leader_id) continue;
    // The leader timed heartbeat round trips to this peer.
    const std::string rtt = "ballot_peer_rtt_seconds_count{peer=" + std::to_string(id) + "}";
    EXPECT_GT(l.Value(rtt), 0) << rtt;
  }
  // Some node had to start an election for there to be a leader.
  double elections = 0;
  for (const auto& [id, s] : after) elections += s.Value("ballot_elections_started_total");
  EXPECT_GE(elections, 1);

  // A snapshot on a follower shows up in its snapshot metrics.
  const paxos::NodeId follower = leader_id == 1 ? 2 : 1;
  auto snap = client_->TakeSnapshot(follower, kCallTimeout);
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  auto snapped = [&](const std::map<paxos::NodeId, Scrape>& all) {
    const Scrape& s = all.at(follower);
    return s.Value("ballot_snapshots_taken_total") >= 1 && s.Value("ballot_snapshot_bytes") > 0 &&
           s.Value("ballot_snapshot_duration_seconds_count") >= 1;
  };
  std::map<paxos::NodeId, Scrape> last = ScrapeUntil(snapped, &why);
  EXPECT_TRUE(snapped(last)) << why;

  for (const auto& [id, port] : ports_) {
    const std::string health = RawHttp(port, Get("/healthz"));
    EXPECT_EQ(StatusCodes(health), std::vector<int>{200}) << health;
    EXPECT_NE(health.find("ok: node " + std::to_string(id)), std::string::npos) << health;
  }
  EXPECT_TRUE(cluster_->CheckAlive().ok());
}

TEST_F(MetricsTest, BadRequestsGet4xxAndTheNodeKeepsServing) {
  auto leader = cluster_->WaitForLeader(Clock::now() + kStartTimeout);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  struct Case {
    std::string name;
    std::string request;
    int status;
    std::string says;  // in the response
  };
  const std::string huge(64 * 1024, 'a');
  const std::vector<Case> cases = {
      {"garbage bytes", std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 16), 400, ""},
      {"unknown path", Get("/nope"), 404, "not found"},
      {"wrong method", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405,
       "Allow: GET, HEAD"},
      {"wrong method on healthz", "DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 405, ""},
      {"oversized header", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + huge + "\r\n\r\n", 431,
       ""},
      {"oversized body",
       "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n" + huge, 413, ""},
      {"no version", "GET /metrics\r\n\r\n", 400, ""},
  };
  for (paxos::NodeId id : {leader.value().first, leader.value().first == 1 ? 2u : 1u}) {
    for (const Case& c : cases) {
      SCOPED_TRACE("node " + std::to_string(id) + ": " + c.name);
      const std::string got = RawHttp(ports_.at(id), c.request);
      EXPECT_EQ(StatusCodes(got), std::vector<int>{c.status}) << got;
      EXPECT_NE(got.find(c.says), std::string::npos) << got;
    }
    // Keep-alive: two requests on one connection, both answered; HEAD has no body.
    const std::string two =
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string got = RawHttp(ports_.at(id), two);
    EXPECT_EQ(StatusCodes(got), (std::vector<int>{200, 200})) << got;
    EXPECT_EQ(got.find("# TYPE"), std::string::npos) << "HEAD sent a body: " << got;
    // Still serving: metrics parse, commands succeed.
    Result<Scrape> s = ScrapeMetrics(ports_.at(id));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_TRUE(s.value().Has("ballot_applied_slots"));
    auto r = NextNumbers(*client_, 1, kCallTimeout);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_TRUE(cluster_->CheckAlive().ok());
}

}  // namespace
}  // namespace ballot::cluster_test
