// ballotctl's cluster commands (tools/ctl/cluster_commands.h) against fake nodes serving the
// real sample state machines. The cluster id is derived from --cluster as a server would.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>

#include "statemachine/samples/kv.h"
#include "statemachine/samples/sequence.h"
#include "tests/client/fake_server.h"
#include "tools/ctl/cluster_commands.h"

namespace ballot::client_test {
namespace {

using namespace std::chrono_literals;
using tools::ClusterFlags;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kEpoch = (uint64_t{3} << 16) | 1;

std::string Refused() { return "127.0.0.1:" + std::to_string(RefusedPort()); }

// Builds --cluster from the servers' addresses and tells them the derived cluster id.
ClusterFlags Flags(std::vector<FakeServer*> servers, std::string extra = "",
                   int timeout_ms = 5000) {
  std::string cluster;
  for (FakeServer* s : servers) {
    if (!cluster.empty()) cluster += ",";
    cluster += std::to_string(s->id()) + "@" + s->address();
  }
  if (!extra.empty()) cluster += "," + extra;
  for (FakeServer* s : servers) s->set_cluster_id(DefaultClusterId(cluster));
  return ClusterFlags{cluster, 0, timeout_ms};
}

struct Ran {
  int code = -1;
  std::string out;
  std::string err;
};

template <typename F>
Ran Capture(F f) {
  std::ostringstream out, err;
  Ran r;
  r.code = f(out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST(CtlTest, SeqNextPrintsTheNumbers) {
  MachineNode machine(1, kEpoch, std::make_unique<samples::SequenceGenerator>());
  FakeServer node(0, 1, machine.handler());
  const ClusterFlags flags = Flags({&node});
  Ran a = Capture([&](auto& out, auto& err) { return tools::RunSeqNext(flags, 3, out, err); });
  EXPECT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, "1\n2\n3\n");
  Ran b = Capture([&](auto& out, auto& err) { return tools::RunSeqNext(flags, 1, out, err); });
  EXPECT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.out, "4\n");
  EXPECT_EQ(node.bad_hellos(), 0);
}

TEST(CtlTest, SeqNextFailsWithinTheTimeout) {
  FakeServer node(0, 1, nullptr, FakeServer::Mode::kSilent);
  const ClusterFlags flags = Flags({&node}, "", 300);
  Ran r = Capture([&](auto& out, auto& err) { return tools::RunSeqNext(flags, 1, out, err); });
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find("TIMEOUT"), std::string::npos) << r.err;
}

TEST(CtlTest, UsageErrors) {
  auto run = [](ClusterFlags flags, uint64_t count) {
    return Capture([&](auto& out, auto& err) { return tools::RunSeqNext(flags, count, out, err); });
  };
  Ran bad_cluster = run({"1@127.0.0.1", 0, 1000}, 1);
  EXPECT_EQ(bad_cluster.code, 2);
  EXPECT_NE(bad_cluster.err.find("--cluster"), std::string::npos) << bad_cluster.err;
  EXPECT_EQ(run({"", 0, 1000}, 1).code, 2);
  EXPECT_EQ(run({"1@127.0.0.1:7001", 0, 0}, 1).code, 2);
  EXPECT_EQ(run({"1@127.0.0.1:7001", 0, 1000}, 0).code, 2);
  Ran kv = Capture([](auto& out, auto& err) {
    return tools::RunKv({"1@127.0.0.1:7001", 0, 1000}, {"put", "k"}, out, err);
  });
  EXPECT_EQ(kv.code, 2);
  EXPECT_EQ(Capture([](auto& out, auto& err) {
              return tools::RunKv({"1@127.0.0.1:7001", 0, 1000}, {"frob"}, out, err);
            }).code,
            2);
}

TEST(CtlTest, StatusJsonIncludesUnreachableNodes) {
  MachineNode machine(1, kEpoch, std::make_unique<samples::SequenceGenerator>());
  FakeServer node(0, 1, machine.handler());
  const ClusterFlags flags = Flags({&node}, "2@" + Refused(), 2000);
  Ran r = Capture([&](auto& out, auto& err) { return tools::RunStatus(flags, true, out, err); });
  EXPECT_EQ(r.code, 0) << r.err;
  const std::string want_prefix =
      "{\"nodes\":[{\"id\":1,\"address\":\"" + node.address() +
      "\",\"reachable\":true,\"role\":\"leader\",\"epoch\":" + std::to_string(kEpoch) +
      ",\"leader_id\":1,\"chosen\":1,\"applied\":1,\"lease\":true},"
      "{\"id\":2,\"address\":\"127.0.0.1:";
  EXPECT_EQ(r.out.substr(0, want_prefix.size()), want_prefix) << r.out;
  EXPECT_NE(r.out.find("\"reachable\":false,\"error\":\"IO_ERROR: "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "]}\n");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
}

TEST(CtlTest, StatusTableMarksUnreachableNodes) {
  MachineNode machine(1, kEpoch, std::make_unique<samples::SequenceGenerator>());
  FakeServer node(0, 1, machine.handler());
  const ClusterFlags flags = Flags({&node}, "2@" + Refused(), 2000);
  Ran r = Capture([&](auto& out, auto& err) { return tools::RunStatus(flags, false, out, err); });
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("ID"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("leader"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3.1"), std::string::npos) << r.out;  // the epoch as round.node
  EXPECT_NE(r.out.find("unreachable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node 2: IO_ERROR"), std::string::npos) << r.out;
}

TEST(CtlTest, StatusFailsWhenNoNodeAnswers) {
  ClusterFlags flags{"1@" + Refused() + ",2@" + Refused(), 0, 1000};
  Ran r = Capture([&](auto& out, auto& err) { return tools::RunStatus(flags, true, out, err); });
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("\"reachable\":false"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("no node answered"), std::string::npos) << r.err;
}

TEST(CtlTest, LeaderPrintsIdAndEpoch) {
  MachineNode machine(1, kEpoch, std::make_unique<samples::SequenceGenerator>());
  FakeServer node(0, 1, machine.handler());
  const ClusterFlags flags = Flags({&node}, "2@" + Refused(), 2000);
  Ran r = Capture([&](auto& out, auto& err) { return tools::RunLeader(flags, out, err); });
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1 " + std::to_string(kEpoch) + "\n");

  ClusterFlags dead{"1@" + Refused(), 0, 200};
  Ran d = Capture([&](auto& out, auto& err) { return tools::RunLeader(dead, out, err); });
  EXPECT_EQ(d.code, 1);
  EXPECT_TRUE(d.out.empty());
}

TEST(CtlTest, LeaderTransfer) {
  MachineNode machine(1, kEpoch, std::make_unique<samples::SequenceGenerator>());
  FakeServer node(0, 1, machine.handler());
  const ClusterFlags flags = Flags({&node}, "2@" + Refused(), 2000);
  auto transfer = [&](uint64_t to) {
    return Capture(
        [&](auto& out, auto& err) { return tools::RunLeaderTransfer(flags, to, out, err); });
  };
  // The target already leads: nothing to move, it is printed as the leader.
  Ran already = transfer(1);
  EXPECT_EQ(already.code, 0) << already.err;
  EXPECT_EQ(already.out, "1 " + std::to_string(kEpoch) + "\n");
  // Refused by the leader: exit 1 with its reason, nothing on stdout.
  Ran refused = transfer(0);
  EXPECT_EQ(refused.code, 1);
  EXPECT_TRUE(refused.out.empty()) << refused.out;
  EXPECT_NE(refused.err.find("no other voter"), std::string::npos) << refused.err;
  EXPECT_EQ(transfer(uint64_t{1} << 20).code, 2);
  // Every transfer request went to the leader, once per command that sent one.
  size_t transfers = 0;
  for (const auto& r : node.requests()) {
    transfers += r.kind == net::ClientRequest::Kind::kTransferLeader;
  }
  EXPECT_EQ(transfers, 1u);
}

TEST(CtlTest, KvCommands) {
  MachineNode machine(1, kEpoch, std::make_unique<samples::KvStore>());
  FakeServer node(0, 1, machine.handler());
  const ClusterFlags flags = Flags({&node});
  auto kv = [&](std::vector<std::string> args) {
    return Capture([&](auto& out, auto& err) { return tools::RunKv(flags, args, out, err); });
  };
  Ran absent = kv({"get", "k"});
  EXPECT_EQ(absent.code, 1);
  EXPECT_NE(absent.err.find("absent"), std::string::npos);
  Ran put = kv({"put", "k", "v1"});
  EXPECT_EQ(put.code, 0) << put.err;
  EXPECT_EQ(put.out, "ok slot=1 epoch=" + std::to_string(kEpoch) + "\n");
  EXPECT_EQ(kv({"get", "k"}).out, "v1\n");
  Ran cas_bad = kv({"cas", "k", "nope", "v2"});
  EXPECT_EQ(cas_bad.code, 1);
  EXPECT_NE(cas_bad.err.find("ABORTED"), std::string::npos) << cas_bad.err;
  EXPECT_EQ(kv({"cas", "k", "v1", "v2"}).code, 0);
  EXPECT_EQ(kv({"get", "k"}).out, "v2\n");
  EXPECT_EQ(kv({"create", "k", "v3"}).code, 1);
  EXPECT_EQ(kv({"create", "k2", "v3"}).code, 0);
  EXPECT_EQ(kv({"delete", "k"}).code, 0);
  EXPECT_EQ(kv({"get", "k"}).code, 1);
  EXPECT_EQ(kv({"get", "k2"}).out, "v3\n");
}

}  // namespace
}  // namespace ballot::client_test
