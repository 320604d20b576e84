// ballot::Client against fake nodes (tests/client/fake_server.h) on 127.0.0.1 port 0. No fixed
// ports and no sleeps: every wait is on a condition with a deadline; timeouts are short.
#include "net/client/client.h"

#include <glog/logging.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/client/sequence_numbers.h"
#include "net/frame.h"
#include "statemachine/applier.h"
#include "statemachine/samples/sequence.h"
#include "statemachine/session_table.h"
#include "tests/client/fake_server.h"

namespace ballot::client_test {
namespace {

using namespace std::chrono_literals;
using net::ClientRequest;
using net::ClientResponse;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kCluster = 0xC11E47;
constexpr uint64_t kEpoch = (uint64_t{7} << 16) | 2;  // round 7, node 2
constexpr auto kLong = 10s;                           // a deadline that only a failing test reaches

ClientOptions Options(std::map<paxos::NodeId, std::string> members) {
  ClientOptions o;
  o.cluster_id = kCluster;
  o.members = std::move(members);
  o.attempt_timeout = 150ms;
  o.retry_backoff = 2ms;
  return o;
}

std::unique_ptr<Client> MakeClient(ClientOptions options) {
  auto r = Client::Create(std::move(options));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

std::vector<ClientRequest> Proposals(const FakeServer& s) {
  std::vector<ClientRequest> out;
  for (const ClientRequest& r : s.requests()) {
    if (r.kind == ClientRequest::Kind::kPropose) out.push_back(r);
  }
  return out;
}

FakeServer::Handler Echo() {
  return [](const ClientRequest& req, const FakeServer::Reply& reply) {
    reply(EchoResponse(req, kEpoch));
  };
}

FakeServer::Handler PointTo(paxos::NodeId hint) {
  return [hint](const ClientRequest& req, const FakeServer::Reply& reply) {
    reply(NotLeaderResponse(req, hint));
  };
}

// Responses held by a handler until the test releases them.
class Held {
 public:
  void Add(ClientResponse r, FakeServer::Reply reply) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.emplace_back(std::move(r), std::move(reply));
  }
  void ReleaseAll() {
    std::vector<std::pair<ClientResponse, FakeServer::Reply>> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      held.swap(held_);
    }
    for (auto& [r, reply] : held) reply(r);
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<ClientResponse, FakeServer::Reply>> held_;
};

TEST(ClientTest, FollowsNotLeaderHintAndCachesTheLeader) {
  FakeServer follower(kCluster, 1, PointTo(2));
  FakeServer leader(kCluster, 2, Echo());
  auto client = MakeClient(Options({{1, follower.address()}, {2, leader.address()}}));
  ASSERT_NE(client, nullptr);

  auto r = client->Propose("hello", kLong);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().outcome.code, StatusCode::kOk);
  EXPECT_EQ(r.value().outcome.data, "hello");
  EXPECT_EQ(r.value().leader, 2u);
  EXPECT_EQ(r.value().epoch, kEpoch);
  EXPECT_EQ(r.value().slot, 1u);  // the echo's slot is the sequence
  EXPECT_EQ(client->cached_leader(), 2u);
  ASSERT_EQ(Proposals(follower).size(), 1u);
  ASSERT_EQ(Proposals(leader).size(), 1u);
  // The same command went to both: same session, same sequence.
  EXPECT_EQ(Proposals(follower)[0].command, Proposals(leader)[0].command);
  EXPECT_EQ(Proposals(leader)[0].command.client_id, client->client_id());
  EXPECT_NE(client->client_id(), 0u);

  // The next call goes straight to the cached leader.
  ASSERT_TRUE(client->Propose("again", kLong).ok());
  EXPECT_EQ(Proposals(follower).size(), 1u);
  EXPECT_EQ(Proposals(leader).size(), 2u);
  EXPECT_EQ(follower.bad_hellos() + leader.bad_hellos(), 0);
  EXPECT_EQ(client->counters().not_leader, 1u);
}

TEST(ClientTest, RetriesADroppedAttemptWithTheSameCommand) {
  std::atomic<int> seen{0};
  FakeServer follower(kCluster, 1, PointTo(2));
  FakeServer leader(kCluster, 2, [&](const ClientRequest& req, const FakeServer::Reply& reply) {
    if (seen++ == 0) return;  // drop the first attempt: the client must time out and retry
    reply(EchoResponse(req, kEpoch));
  });
  auto client = MakeClient(Options({{1, follower.address()}, {2, leader.address()}}));
  ASSERT_NE(client, nullptr);

  auto r = client->Propose("payload", kLong, /*expected_epoch=*/kEpoch);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().leader, 2u);
  const auto at_leader = Proposals(leader);
  ASSERT_EQ(at_leader.size(), 2u);
  // Every attempt carried the same command under a fresh request id.
  std::set<uint64_t> request_ids;
  for (const auto& req : Proposals(follower)) {
    EXPECT_EQ(req.command, at_leader[0].command);
    request_ids.insert(req.request_id);
  }
  for (const auto& req : at_leader) {
    EXPECT_EQ(req.command, at_leader[0].command);
    request_ids.insert(req.request_id);
  }
  EXPECT_EQ(request_ids.size(), Proposals(follower).size() + at_leader.size());
  EXPECT_EQ(at_leader[0].command.sequence, 1u);
  EXPECT_EQ(at_leader[0].command.expected_epoch, kEpoch);
  EXPECT_EQ(at_leader[0].command.payload, "payload");
  EXPECT_GE(client->counters().attempt_timeouts, 1u);
}

TEST(ClientTest, LateOkToAnEarlierAttemptAnswersTheCall) {
  // One node that answers the first attempt only after the retry arrived, and never the retry.
  std::mutex mu;
  std::optional<std::pair<ClientResponse, FakeServer::Reply>> first;
  FakeServer node(kCluster, 1, [&](const ClientRequest& req, const FakeServer::Reply& reply) {
    std::lock_guard<std::mutex> lock(mu);
    if (!first) {
      first.emplace(EchoResponse(req, kEpoch), reply);
      return;
    }
    first->second(first->first);
  });
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("late", kLong);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().outcome.data, "late");
  const auto reqs = Proposals(node);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].command, reqs[1].command);
}

TEST(ClientTest, AckedSequenceTrailsTheLowestSequenceInFlight) {
  Held held;
  FakeServer node(kCluster, 1, [&](const ClientRequest& req, const FakeServer::Reply& reply) {
    if (req.command.payload == "slow") {
      held.Add(EchoResponse(req, kEpoch), reply);
      return;
    }
    reply(EchoResponse(req, kEpoch));
  });
  ClientOptions options = Options({{1, node.address()}});
  options.attempt_timeout = 10s;  // the held request must not be retried
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);

  std::promise<Result<Client::ProposeReply>> slow;
  client->ProposeAsync("slow", kLong,
                       [&](Result<Client::ProposeReply> r) { slow.set_value(std::move(r)); });
  ASSERT_TRUE(node.WaitForRequests(1));
  ASSERT_TRUE(client->Propose("two", kLong).ok());
  ASSERT_TRUE(client->Propose("three", kLong).ok());
  held.ReleaseAll();
  auto slow_result = slow.get_future().get();
  ASSERT_TRUE(slow_result.ok()) << slow_result.status().ToString();
  ASSERT_TRUE(client->Propose("four", kLong).ok());
  ASSERT_TRUE(client->Propose("five", kLong).ok());

  const auto reqs = Proposals(node);
  ASSERT_EQ(reqs.size(), 5u);
  std::vector<std::pair<uint64_t, uint64_t>> seq_acked;
  for (const auto& r : reqs) seq_acked.emplace_back(r.command.sequence, r.command.acked_sequence);
  const std::vector<std::pair<uint64_t, uint64_t>> want = {{1, 0}, {2, 0}, {3, 0}, {4, 3}, {5, 4}};
  EXPECT_EQ(seq_acked, want);
}

TEST(ClientTest, TimesOutAtTheDeadlineWhenNoNodeAnswers) {
  FakeServer a(kCluster, 1, Echo(), FakeServer::Mode::kSilent);
  FakeServer b(kCluster, 2, Echo(), FakeServer::Mode::kSilent);
  auto client = MakeClient(Options({{1, a.address()}, {2, b.address()}}));
  ASSERT_NE(client, nullptr);

  for (auto timeout : {0ms, 40ms, 300ms}) {
    const auto start = Clock::now();
    auto r = client->Propose("x", timeout);
    const auto elapsed = Clock::now() - start;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status().ToString();
    EXPECT_GE(elapsed, timeout) << "returned before its deadline";
  }
  auto read = client->Read("q", 100ms);
  EXPECT_EQ(read.status().code(), StatusCode::kTimeout);
  auto status = client->Status(2, 100ms);
  EXPECT_EQ(status.status().code(), StatusCode::kTimeout);
  EXPECT_NE(status.status().message().find("node 2"), std::string::npos)
      << status.status().message();

  // The async form times out the same way, on the io thread.
  std::promise<Result<Client::ProposeReply>> p;
  const auto start = Clock::now();
  client->ProposeAsync("y", 120ms, [&](Result<Client::ProposeReply> r) { p.set_value(r); });
  auto r = p.get_future().get();
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status().ToString();
  EXPECT_GE(Clock::now() - start, 120ms) << "returned before its deadline";
}

TEST(ClientTest, ConnectionRefusedIsRetriedUntilTheDeadline) {
  auto client = MakeClient(Options({{1, "127.0.0.1:" + std::to_string(RefusedPort())}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("x", 200ms);
  ASSERT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_NE(r.status().message().find("connect failed"), std::string::npos) << r.status().message();
  EXPECT_GE(client->counters().connection_failures, 2u);  // retried, not given up
}

TEST(ClientTest, MovesPastADeadNodeToTheLeader) {
  FakeServer leader(kCluster, 2, Echo());
  auto client = MakeClient(
      Options({{1, "127.0.0.1:" + std::to_string(RefusedPort())}, {2, leader.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("x", kLong);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().leader, 2u);
}

TEST(ClientTest, WrongClusterIsReported) {
  FakeServer node(kCluster, 1, Echo(), FakeServer::Mode::kWrongCluster);
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("x", 200ms);
  ASSERT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_NE(r.status().message().find("cluster"), std::string::npos) << r.status().message();
  EXPECT_TRUE(node.requests().empty());  // nothing is sent before the handshake succeeds
}

// Answers status requests as a leader, proposals with Echo.
FakeServer::Handler LeaderWithStatus(paxos::NodeId id) {
  return [id](const ClientRequest& req, const FakeServer::Reply& reply) {
    if (req.kind != ClientRequest::Kind::kStatus) return reply(EchoResponse(req, kEpoch));
    ClientResponse r;
    r.request_id = req.request_id;
    net::NodeStatus s;
    s.node_id = id;
    s.role = "leader";
    s.epoch = kEpoch;
    s.leader_id = id;
    r.status = s;
    reply(r);
  };
}

ClientOptions Unpinned(std::map<paxos::NodeId, std::string> members) {
  ClientOptions o = Options(std::move(members));
  o.cluster_id = 0;
  return o;
}

TEST(ClientClusterIdTest, LearnsTheIdFromTheFirstServerThatAnswers) {
  FakeServer follower(kCluster, 2, PointTo(3));
  FakeServer leader(kCluster, 3, Echo());
  auto client = MakeClient(Unpinned({{1, "127.0.0.1:" + std::to_string(RefusedPort())},
                                     {2, follower.address()},
                                     {3, leader.address()}}));
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->cluster_id(), 0u);
  auto r = client->Propose("x", kLong);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().leader, 3u);
  EXPECT_EQ(client->cluster_id(), kCluster);
  EXPECT_EQ(client->counters().wrong_cluster, 0u);
  EXPECT_EQ(follower.bad_hellos() + leader.bad_hellos(), 0);
}

TEST(ClientClusterIdTest, LearnClusterIdAsksInIdOrderAndHoldsTheOthersToIt) {
  FakeServer good(kCluster, 2, LeaderWithStatus(2));
  FakeServer other(kCluster + 5, 3, LeaderWithStatus(3));  // of another cluster, in the list
  auto client = MakeClient(Unpinned({{1, "127.0.0.1:" + std::to_string(RefusedPort())},
                                     {2, good.address()},
                                     {3, other.address()}}));
  ASSERT_NE(client, nullptr);
  auto learnt = client->LearnClusterId(kLong);
  ASSERT_TRUE(learnt.ok()) << learnt.status().ToString();
  EXPECT_EQ(learnt.value(), kCluster);  // node 1 is dead, node 2 answers first in id order

  auto all = client->StatusAll(kLong);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(all.at(2).ok()) << all.at(2).status().ToString();
  ASSERT_FALSE(all.at(3).ok());
  EXPECT_EQ(all.at(3).status().code(), StatusCode::kFailedPrecondition)
      << all.at(3).status().ToString();
  const std::string& why = all.at(3).status().message();
  EXPECT_NE(why.find("node 3 (" + other.address() +
                     ") is in cluster 0x0000000000c11e4c, not in "
                     "cluster 0x0000000000c11e47 (learnt from node 2)"),
            std::string::npos)
      << why;
  EXPECT_GE(client->counters().wrong_cluster, 1u);
  // A proposal routed through the foreign server moves on to a member of the right cluster.
  for (int i = 0; i < 5; ++i) {
    auto r = client->Propose("x", kLong);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r.value().leader, 2u);
  }
  EXPECT_TRUE(other.requests().empty());  // nothing is ever sent to it
  EXPECT_EQ(client->cluster_id(), kCluster);
}

TEST(ClientClusterIdTest, APinnedIdIsNeverReplaced) {
  FakeServer node(kCluster, 1, Echo());
  ClientOptions o = Options({{1, node.address()}});
  o.cluster_id = kCluster + 1;
  auto client = MakeClient(o);
  ASSERT_NE(client, nullptr);
  auto learnt = client->LearnClusterId(kLong);
  ASSERT_TRUE(learnt.ok());
  EXPECT_EQ(learnt.value(), kCluster + 1);
  auto r = client->Propose("x", 300ms);
  ASSERT_EQ(r.status().code(), StatusCode::kTimeout) << r.status().ToString();
  EXPECT_NE(r.status().message().find("given by --cluster_id"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(node.requests().empty());
  EXPECT_EQ(client->cluster_id(), kCluster + 1);
}

TEST(ClientClusterIdTest, LearnClusterIdTimesOutWhenNoMemberAnswers) {
  auto client = MakeClient(Unpinned({{1, "127.0.0.1:" + std::to_string(RefusedPort())},
                                     {2, "127.0.0.1:" + std::to_string(RefusedPort())}}));
  ASSERT_NE(client, nullptr);
  auto learnt = client->LearnClusterId(300ms);
  EXPECT_EQ(learnt.status().code(), StatusCode::kTimeout) << learnt.status().ToString();
  EXPECT_NE(learnt.status().message().find("no member answered"), std::string::npos);
  EXPECT_EQ(client->cluster_id(), 0u);
}

TEST(ClientTest, GarbageFromAServerClosesOnlyThatConnection) {
  FakeServer bad(kCluster, 1, Echo(), FakeServer::Mode::kGarbageAfterHello);
  FakeServer good(kCluster, 2, Echo());
  auto client = MakeClient(Options({{1, bad.address()}, {2, good.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("x", kLong);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().leader, 2u);
  EXPECT_GE(client->counters().bad_frames, 1u);
}

TEST(ClientTest, DuplicateAndUnknownResponsesAreIgnored) {
  FakeServer node(kCluster, 1, [](const ClientRequest& req, const FakeServer::Reply& reply) {
    ClientResponse r = EchoResponse(req, kEpoch);
    reply(r);
    reply(r);  // answered already: ignored
    ClientResponse bogus = NotLeaderResponse(req, 1);
    bogus.request_id = req.request_id + 1000;  // never sent
    reply(bogus);
  });
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto r = client->Propose("p" + std::to_string(i), kLong);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r.value().outcome.data, "p" + std::to_string(i));
  }
  // Stale answers to the last call may still be in the socket; the first two calls' are in.
  EXPECT_GE(client->counters().stale_responses, 4u);
  EXPECT_EQ(Proposals(node).size(), 3u);
}

TEST(ClientTest, OverloadedIsRetriedOnTheSameNode) {
  std::atomic<int> n{0};
  FakeServer node(kCluster, 1, [&](const ClientRequest& req, const FakeServer::Reply& reply) {
    if (n++ < 2) {
      ClientResponse r;
      r.request_id = req.request_id;
      r.code = StatusCode::kOverloaded;
      reply(r);
      return;
    }
    reply(EchoResponse(req, kEpoch));
  });
  auto client =
      MakeClient(Options({{1, node.address()}, {2, "127.0.0.1:" + std::to_string(RefusedPort())}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("x", kLong);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const auto reqs = Proposals(node);
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].command, reqs[2].command);
}

TEST(ClientTest, RequestErrorsAreReturned) {
  FakeServer node(kCluster, 1, [](const ClientRequest& req, const FakeServer::Reply& reply) {
    ClientResponse r;
    r.request_id = req.request_id;
    r.code = StatusCode::kInvalidArgument;
    r.message = "payload too large";
    reply(r);
  });
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("x", kLong);
  ASSERT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("payload too large"), std::string::npos);
}

TEST(ClientTest, OutcomeRefusalsAreSuccessfulCalls) {
  FakeServer node(kCluster, 1, [](const ClientRequest& req, const FakeServer::Reply& reply) {
    ClientResponse r = EchoResponse(req, kEpoch);
    r.outcome_code = StatusCode::kAborted;
    r.data.clear();
    r.message = "epoch mismatch";
    reply(r);
  });
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose("x", kLong, 12345);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().outcome.code, StatusCode::kAborted);
  EXPECT_EQ(r.value().outcome.message, "epoch mismatch");
}

TEST(ClientTest, ConcurrentCallsFromManyThreads) {
  FakeServer follower(kCluster, 1, PointTo(2));
  FakeServer leader(kCluster, 2, Echo());
  auto client = MakeClient(Options({{1, follower.address()}, {2, leader.address()}}));
  ASSERT_NE(client, nullptr);
  constexpr int kThreads = 8;
  constexpr int kCalls = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const std::string payload = std::to_string(t) + "/" + std::to_string(i);
        auto r = client->Propose(payload, kLong);
        if (!r.ok() || r.value().outcome.data != payload || r.value().leader != 2) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // Every command has its own sequence; the follower saw at most the first few.
  std::set<uint64_t> sequences;
  for (const auto& r : Proposals(leader)) {
    sequences.insert(r.command.sequence);
    EXPECT_EQ(r.command.client_id, client->client_id());
    EXPECT_LT(r.command.acked_sequence, r.command.sequence);
  }
  EXPECT_EQ(sequences.size(), static_cast<size_t>(kThreads * kCalls));
  EXPECT_EQ(*sequences.rbegin(), static_cast<uint64_t>(kThreads * kCalls));
  EXPECT_LE(Proposals(follower).size(), static_cast<size_t>(kThreads));
}

TEST(ClientTest, ManyAsyncCallsInFlightOnOneConnection) {
  FakeServer node(kCluster, 1, Echo());
  constexpr int kCalls = 2000;
  ClientOptions options = Options({{1, node.address()}});
  options.in_flight_max = kCalls;  // above the default, which matches the servers' session bound
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  int ok = 0;
  for (int i = 0; i < kCalls; ++i) {
    client->ProposeAsync(std::to_string(i), kLong, [&, i](Result<Client::ProposeReply> r) {
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (r.ok() && r.value().outcome.data == std::to_string(i)) ++ok;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, kLong, [&] { return done == kCalls; }));
  EXPECT_EQ(ok, kCalls);
  EXPECT_EQ(client->counters().connections_opened, 1u);
}

TEST(ClientTest, InFlightMaxGivesOverloaded) {
  Held held;
  FakeServer node(kCluster, 1, [&](const ClientRequest& req, const FakeServer::Reply& reply) {
    held.Add(EchoResponse(req, kEpoch), reply);
  });
  ClientOptions options = Options({{1, node.address()}});
  options.in_flight_max = 2;
  options.attempt_timeout = 10s;
  auto client = MakeClient(options);
  ASSERT_NE(client, nullptr);
  std::promise<void> a_done, b_done;
  client->ProposeAsync("a", kLong, [&](Result<Client::ProposeReply>) { a_done.set_value(); });
  client->ProposeAsync("b", kLong, [&](Result<Client::ProposeReply>) { b_done.set_value(); });
  ASSERT_TRUE(node.WaitForRequests(2));
  auto r = client->Propose("c", kLong);
  EXPECT_EQ(r.status().code(), StatusCode::kOverloaded);
  held.ReleaseAll();
  a_done.get_future().get();
  b_done.get_future().get();
}

TEST(ClientTest, DestructionAbortsCallsInFlight) {
  Held held;
  FakeServer node(kCluster, 1, [&](const ClientRequest& req, const FakeServer::Reply& reply) {
    held.Add(EchoResponse(req, kEpoch), reply);
  });
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  std::optional<Result<Client::ProposeReply>> result;
  client->ProposeAsync("a", kLong, [&](Result<Client::ProposeReply> r) { result.emplace(r); });
  ASSERT_TRUE(node.WaitForRequests(1));
  client.reset();  // joins the io thread: the callback has run
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), StatusCode::kAborted);
}

TEST(ClientTest, SynchronousCallOnTheIoThreadIsRefused) {
  FakeServer node(kCluster, 1, Echo());
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  std::promise<StatusCode> inner;
  client->ProposeAsync("a", kLong, [&](Result<Client::ProposeReply>) {
    inner.set_value(client->Propose("b", kLong).status().code());
  });
  EXPECT_EQ(inner.get_future().get(), StatusCode::kFailedPrecondition);
}

TEST(ClientTest, ReadGoesToTheLeader) {
  FakeServer follower(kCluster, 1, PointTo(2));
  FakeServer leader(kCluster, 2, Echo());
  auto client = MakeClient(Options({{1, follower.address()}, {2, leader.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Read("query", kLong);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().code, StatusCode::kOk);
  EXPECT_EQ(r.value().data, "query");
  ASSERT_EQ(leader.requests().size(), 1u);
  EXPECT_EQ(leader.requests()[0].kind, ClientRequest::Kind::kRead);
  EXPECT_EQ(leader.requests()[0].query, "query");
}

FakeServer::Handler StatusSays(paxos::NodeId id, std::string role, uint64_t epoch,
                               paxos::NodeId leader) {
  return [=](const ClientRequest& req, const FakeServer::Reply& reply) {
    ClientResponse r;
    r.request_id = req.request_id;
    if (req.kind != ClientRequest::Kind::kStatus) {
      r.code = StatusCode::kNotLeader;
    } else {
      net::NodeStatus s;
      s.node_id = id;
      s.role = role;
      s.epoch = epoch;
      s.leader_id = leader;
      s.chosen_below = 10;
      s.applied_below = 9;
      r.status = s;
    }
    reply(r);
  };
}

TEST(ClientTest, StatusAndFindLeader) {
  const uint64_t e5 = (uint64_t{5} << 16) | 2;
  const uint64_t e3 = (uint64_t{3} << 16) | 3;
  FakeServer n1(kCluster, 1, StatusSays(1, "follower", e5, 2));
  FakeServer n2(kCluster, 2, StatusSays(2, "leader", e5, 2));
  FakeServer n3(kCluster, 3, StatusSays(3, "leader", e3, 3));  // deposed, does not know yet
  auto client = MakeClient(Options({{1, n1.address()}, {2, n2.address()}, {3, n3.address()}}));
  ASSERT_NE(client, nullptr);

  auto s = client->Status(1, kLong);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s.value().node_id, 1u);
  EXPECT_EQ(s.value().role, "follower");
  EXPECT_EQ(s.value().leader_id, 2u);
  EXPECT_EQ(s.value().chosen_below, 10u);

  EXPECT_EQ(client->Status(9, kLong).status().code(), StatusCode::kInvalidArgument);

  auto leader = client->FindLeader(kLong);
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  EXPECT_EQ(leader.value(), std::make_pair(paxos::NodeId{2}, e5));
}

TEST(ClientTest, StatusOfAnotherNodeOnTheConnectionIsRejected) {
  FakeServer liar(kCluster, 1, StatusSays(7, "leader", 1, 7));
  auto client = MakeClient(Options({{1, liar.address()}}));
  ASSERT_NE(client, nullptr);
  auto s = client->Status(1, 200ms);
  EXPECT_EQ(s.status().code(), StatusCode::kTimeout);
  EXPECT_GE(client->counters().bad_frames, 1u);
}

TEST(ClientTest, StatusAllReportsUnreachableNodesPromptly) {
  FakeServer n1(kCluster, 1, StatusSays(1, "leader", 65537, 1));
  FakeServer silent(kCluster, 3, Echo(), FakeServer::Mode::kSilent);
  auto client = MakeClient(Options({{1, n1.address()},
                                    {2, "127.0.0.1:" + std::to_string(RefusedPort())},
                                    {3, silent.address()}}));
  ASSERT_NE(client, nullptr);
  auto all = client->StatusAll(300ms);
  ASSERT_EQ(all.size(), 3u);
  ASSERT_TRUE(all.at(1).ok()) << all.at(1).status().ToString();
  EXPECT_EQ(all.at(1).value().role, "leader");
  EXPECT_EQ(all.at(2).status().code(), StatusCode::kIoError) << all.at(2).status().ToString();
  EXPECT_EQ(all.at(3).status().code(), StatusCode::kTimeout) << all.at(3).status().ToString();
}

TEST(ClientTest, FindLeaderWithoutALeader) {
  FakeServer n1(kCluster, 1, StatusSays(1, "candidate", 0, 0));
  auto client = MakeClient(Options({{1, n1.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->FindLeader(200ms);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();

  auto none = MakeClient(Options({{1, "127.0.0.1:" + std::to_string(RefusedPort())}}));
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->FindLeader(100ms).status().code(), StatusCode::kTimeout);
}

TEST(ClientTest, NextNumbersFromTheSequenceGenerator) {
  MachineNode machine(1, kEpoch, std::make_unique<samples::SequenceGenerator>());
  FakeServer node(kCluster, 1, machine.handler());
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  auto a = NextNumbers(*client, 5, kLong);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a.value(), (samples::SequenceGenerator::Block{1, 5}));
  auto b = NextNumbers(*client, 3, kLong);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b.value(), (samples::SequenceGenerator::Block{6, 3}));
  EXPECT_EQ(NextNumbers(*client, 0, kLong).status().code(), StatusCode::kInvalidArgument);
}

TEST(ClientTest, OversizedPayloadIsInvalidArgument) {
  FakeServer node(kCluster, 1, Echo());
  auto client = MakeClient(Options({{1, node.address()}}));
  ASSERT_NE(client, nullptr);
  auto r = client->Propose(std::string(net::kFrameBytesMax + 1, 'x'), kLong);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(node.requests().empty());
}

// A node that runs the real Applier over a one-command-per-slot log, with room for one session,
// so that a test can evict the client's session by applying another client's command.
class OneSessionNode {
 public:
  // Counts what reaches the machine; answers "<payload>#<n>".
  class Counter : public StateMachine {
   public:
    void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override {
      for (const AppliedCommand& c : batch) {
        applied.emplace_back(c.payload);
        outcomes->push_back(Outcome{
            StatusCode::kOk, std::string(c.payload) + "#" + std::to_string(applied.size()), ""});
      }
    }
    Outcome Query(std::string_view) const override { return Outcome{}; }
    std::vector<std::string> applied;
  };

  OneSessionNode()
      : applier_(std::make_unique<Counter>(),
                 SessionTable::Limits{.sessions_max = 1, .results_per_session_max = 8}) {}

  FakeServer::Handler handler() {
    return [this](const ClientRequest& req, const FakeServer::Reply& reply) {
      ClientResponse r;
      r.request_id = req.request_id;
      if (req.kind != ClientRequest::Kind::kPropose) {
        r.code = StatusCode::kInvalidArgument;
        reply(r);
        return;
      }
      Reply applied = Apply(req.command);
      r.outcome_code = applied.outcome.code;
      r.data = applied.outcome.data;
      r.message = applied.outcome.message;
      r.slot = applied.slot;
      r.epoch = kEpoch;
      reply(r);
    };
  }

  Reply Apply(paxos::Command command) {
    std::lock_guard<std::mutex> lock(mu_);
    paxos::Entry entry;
    entry.slot = applier_.applied_below();
    entry.value.commands = {std::move(command)};
    std::vector<Reply> replies;
    applier_.Apply({entry}, &replies);
    CHECK_EQ(replies.size(), 1u);
    return replies[0];
  }

  std::vector<std::string> applied() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<Counter&>(applier_.machine()).applied;
  }

 private:
  std::mutex mu_;
  Applier applier_;  // guarded by mu_
};

TEST(ClientTest, SessionExpiredIsTheAnswerAndTheNextProposalStartsANewSession) {
  OneSessionNode node;
  FakeServer server(kCluster, 1, node.handler());
  auto client = MakeClient(Options({{1, server.address()}}));
  ASSERT_NE(client, nullptr);
  const uint64_t first_id = client->client_id();

  auto a = client->Propose("a", kLong);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a.value().outcome.data, "a#1");

  // Another client takes the only session place: the client's session is evicted.
  paxos::Command other;
  other.client_id = first_id + 1;
  other.sequence = 1;
  other.payload = "other";
  ASSERT_EQ(node.Apply(other).outcome.code, StatusCode::kOk);

  auto b = client->Propose("b", kLong);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(IsSessionExpired(b.value().outcome)) << b.value().outcome.message;
  EXPECT_EQ(client->counters().sessions_expired, 1u);
  EXPECT_NE(client->client_id(), first_id);

  // The next proposal is applied, in a new session: a new client id, sequences from 1.
  auto c = client->Propose("c", kLong);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c.value().outcome.code, StatusCode::kOk);
  EXPECT_EQ(c.value().outcome.data, "c#3");
  EXPECT_EQ(node.applied(), (std::vector<std::string>{"a", "other", "c"}));
  const std::vector<ClientRequest> sent = Proposals(server);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[1].command.client_id, first_id);
  EXPECT_EQ(sent[1].command.sequence, 2u);
  EXPECT_EQ(sent[2].command.client_id, client->client_id());
  EXPECT_EQ(sent[2].command.sequence, 1u);
  EXPECT_EQ(sent[2].command.acked_sequence, 0u);
}

// A node that leads with `epoch` until it is asked to transfer; then answers the transfer
// after `answer_after` with `result` (kOk: the target leads with `new_epoch`).
class TransferringLeader {
 public:
  TransferringLeader(paxos::NodeId id, uint64_t epoch, StatusCode result, uint64_t new_epoch)
      : id_(id), epoch_(epoch), result_(result), new_epoch_(new_epoch) {}
  FakeServer::Handler handler() {
    return [this](const ClientRequest& req, const FakeServer::Reply& reply) {
      ClientResponse r;
      r.request_id = req.request_id;
      if (req.kind == ClientRequest::Kind::kStatus) {
        net::NodeStatus s;
        s.node_id = id_;
        s.role = transferred_ ? "follower" : "leader";
        s.epoch = transferred_ ? new_epoch_ : epoch_;
        s.leader_id = id_;
        r.status = s;
      } else if (req.kind == ClientRequest::Kind::kTransferLeader) {
        ++transfers_;
        target_ = req.transfer_to;
        r.code = result_;
        if (result_ == StatusCode::kOk) {
          transferred_ = true;
          r.leader_hint = req.transfer_to;
          r.epoch = new_epoch_;
        } else {
          r.message = "the target did not take over";
        }
      } else {
        r.code = StatusCode::kNotLeader;
      }
      reply(r);
    };
  }
  int transfers() const { return transfers_.load(); }
  paxos::NodeId target() const { return target_.load(); }

 private:
  const paxos::NodeId id_;
  const uint64_t epoch_;
  const StatusCode result_;
  const uint64_t new_epoch_;
  std::atomic<bool> transferred_{false};
  std::atomic<int> transfers_{0};
  std::atomic<paxos::NodeId> target_{0};
};

TEST(ClientTransferTest, AsksTheLeaderOnceAndReturnsTheNewLeader) {
  const uint64_t e5 = (uint64_t{5} << 16) | 1;
  const uint64_t e6 = (uint64_t{6} << 16) | 3;
  TransferringLeader old_leader(1, e5, StatusCode::kOk, e6);
  FakeServer n1(kCluster, 1, old_leader.handler());
  FakeServer n2(kCluster, 2, StatusSays(2, "follower", e5, 1));
  FakeServer n3(kCluster, 3, StatusSays(3, "follower", e5, 1));
  auto client = MakeClient(Unpinned({{1, n1.address()}, {2, n2.address()}, {3, n3.address()}}));
  ASSERT_NE(client, nullptr);
  auto moved = client->TransferLeadership(3, kLong);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved.value(), std::make_pair(paxos::NodeId{3}, e6));
  EXPECT_EQ(old_leader.transfers(), 1);
  EXPECT_EQ(old_leader.target(), 3u);
  EXPECT_EQ(client->cached_leader(), 3u);
  for (const FakeServer* follower : {&n2, &n3}) {
    for (const ClientRequest& r : follower->requests()) {
      EXPECT_NE(r.kind, ClientRequest::Kind::kTransferLeader) << "sent to a follower";
    }
  }
}

TEST(ClientTransferTest, AFailedTransferIsReportedNotRetried) {
  const uint64_t e5 = (uint64_t{5} << 16) | 1;
  TransferringLeader leader(1, e5, StatusCode::kAborted, 0);
  FakeServer n1(kCluster, 1, leader.handler());
  FakeServer n2(kCluster, 2, StatusSays(2, "follower", e5, 1));
  auto client = MakeClient(Options({{1, n1.address()}, {2, n2.address()}}));
  ASSERT_NE(client, nullptr);
  auto moved = client->TransferLeadership(0, kLong);
  EXPECT_EQ(moved.status().code(), StatusCode::kAborted) << moved.status().ToString();
  EXPECT_NE(moved.status().message().find("did not take over"), std::string::npos);
  EXPECT_EQ(leader.transfers(), 1);
  EXPECT_EQ(leader.target(), 0u);

  // The target already leads: nothing is sent.
  auto already = client->TransferLeadership(1, kLong);
  ASSERT_TRUE(already.ok()) << already.status().ToString();
  EXPECT_EQ(already.value(), std::make_pair(paxos::NodeId{1}, e5));
  EXPECT_EQ(leader.transfers(), 1);
}

TEST(ClientTest, FollowsAHintToALeaderItWasNotGiven) {
  FakeServer leader(kCluster, 3, Echo());
  // Node 1 points at node 3, which is not in the client's list, and says where it is.
  FakeServer follower(kCluster, 1, [&](const ClientRequest& req, const FakeServer::Reply& reply) {
    ClientResponse r = NotLeaderResponse(req, 3);
    r.leader_address = leader.address();
    reply(r);
  });
  auto client = MakeClient(
      Unpinned({{1, follower.address()}, {2, "127.0.0.1:" + std::to_string(RefusedPort())}}));
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto r = client->Propose("x", kLong);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r.value().leader, 3u);
  }
  EXPECT_EQ(client->cached_leader(), 3u);
  EXPECT_EQ(Proposals(leader).size(), 3u);
  EXPECT_EQ(client->cluster_id(), kCluster);
  // A hint whose address is not host:port is not followed.
  FakeServer liar(kCluster, 1, [](const ClientRequest& req, const FakeServer::Reply& reply) {
    ClientResponse r = NotLeaderResponse(req, 5);
    r.leader_address = "no port here";
    reply(r);
  });
  auto other = MakeClient(Unpinned({{1, liar.address()}}));
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Propose("x", 300ms).status().code(), StatusCode::kTimeout);
}

}  // namespace
}  // namespace ballot::client_test
