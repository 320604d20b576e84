// Snapshots, compaction and snapshot transfer with real processes (issue 10 item 5): ballotd
// nodes hosting the kv sample on 127.0.0.1, killed with SIGKILL, their data directories and logs
// inspected from outside.
//
//  (1) a follower down while the other two snapshot and compact past its log (and restart
//      meanwhile, see TakeDownWhileOthersCompact) rejoins through a snapshot transfer, and ends
//      with the others' state;
//  (2) every node SIGKILLed while snapshots are being written: each restarts from its newest
//      committed snapshot, the unfinished one is discarded, nothing acknowledged is lost;
//  (3) the receiver SIGKILLed in the middle of a throttled transfer, and the moment its copy is
//      committed (during the install): it fetches again (or loads the committed copy) after its
//      restart, and catches up;
//  (3b) a throttled transfer under load completes although the sender takes several snapshots
//      meanwhile (it keeps the one being copied);
//  (4) damaged chunks (--TEST_corrupt_every_nth_chunk) are refused and sent again;
//  (5) a restart loads the newest snapshot and replays only the log after it; a damaged newest
//      snapshot falls back to the previous one; with no usable snapshot left the node refuses to
//      start, saying why;
//  (5b) a node that fell back never sends its damaged snapshot to a follower;
//  (6) `ballotctl store verify|dump` list the snapshot files and verify them; a damaged one makes
//      verify fail.
//
// Random kill points come from a seed printed by each test that uses one; set
// BALLOT_TEST_SEED=<seed> to reuse it (the timing of real processes still varies).
//
// "The same state" is checked byte for byte: once the nodes have applied the same slots, each
// takes a snapshot there (Client::TakeSnapshot, as `ballotctl snapshot` does) and the files must
// be identical (the kv sample, the session table and the membership serialise deterministically).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "statemachine/samples/kv.h"
#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {
namespace {

using samples::KvStore;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr seconds kLiveness{10};
// Transfers, catching up and compaction under load on a busy 2-core machine.
constexpr seconds kSlowTimeout{30};
constexpr milliseconds kStatusTimeout{1000};
constexpr milliseconds kCallTimeout{5000};

// Log lines (net/server/driver.cc, net/server/server.cc, store/file_snapshot_store.cc).
constexpr char kFetching[] = "fetching a snapshot covering slots below";
constexpr char kInstalled[] = "installed the snapshot below slot";
constexpr char kChunkRefused[] = "failed its checksum; asking again";
constexpr char kRecovered[] = "restored the state machine from the snapshot below slot";
constexpr char kUnusable[] = "is unusable, trying an older one";
constexpr char kTmpDeleted[] = "deleted an unfinished snapshot left by a crash";

uint64_t TestSeed() {
  static const uint64_t seed = [] {
    const char* given = getenv("BALLOT_TEST_SEED");
    return given != nullptr ? std::strtoull(given, nullptr, 10) : uint64_t{std::random_device()()};
  }();
  return seed;
}

// ---------------------------------------------------------------------------------------------
// Files

std::string SnapshotsDir(const ProcessCluster& cluster, paxos::NodeId id) {
  return cluster.DataDir(id) + "/snapshots";
}

std::string SnapshotPath(const ProcessCluster& cluster, paxos::NodeId id, paxos::Slot below) {
  char name[64];
  std::snprintf(name, sizeof(name), "snap-%020llu.snap", static_cast<unsigned long long>(below));
  return SnapshotsDir(cluster, id) + "/" + name;
}

// The slots of the committed snapshot files in a node's data directory, newest first, and the
// number of unfinished ones (tmp-*: being written or received).
struct SnapshotFiles {
  std::vector<paxos::Slot> committed;
  size_t unfinished = 0;
  paxos::Slot newest() const { return committed.empty() ? 0 : committed.front(); }
};

SnapshotFiles ListSnapshots(const ProcessCluster& cluster, paxos::NodeId id) {
  SnapshotFiles out;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(SnapshotsDir(cluster, id), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("tmp-", 0) == 0) {
      ++out.unfinished;
    } else if (name.rfind("snap-", 0) == 0) {
      out.committed.push_back(std::stoull(name.substr(5, 20)));
    }
  }
  std::sort(out.committed.rbegin(), out.committed.rend());
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Damages a snapshot file in the middle (inside a frame's payload): its size stays the same.
// Adding (not XOR-ing) keeps a file damaged when it is damaged a second time.
void DamageFile(const std::string& path) {
  std::string bytes = ReadFile(path);
  ASSERT_GT(bytes.size(), 64u) << path;
  for (size_t i = 0; i < 8; ++i) bytes[bytes.size() / 2 + i] += 1;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

// The number after `marker` in a log line ("... below slot 1234 ..."), 0 if absent.
paxos::Slot NumberAfter(const std::string& line, const std::string& marker) {
  const size_t at = line.find(marker);
  if (at == std::string::npos) return 0;
  size_t i = at + marker.size();
  while (i < line.size() && line[i] == ' ') ++i;
  paxos::Slot n = 0;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') n = n * 10 + (line[i++] - '0');
  return n;
}

// Runs a command line, returning its exit code and its stdout and stderr.
int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  output->clear();
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// ---------------------------------------------------------------------------------------------
// Load: kv clients overwriting their own key with increasing counters

std::string ValueOf(uint64_t counter, size_t bytes) {
  std::string v = std::to_string(counter) + ":";
  v.resize(std::max(bytes, v.size()), static_cast<char>('a' + counter % 26));
  return v;
}

uint64_t CounterOf(const std::string& value) {
  return std::stoull(value.substr(0, value.find(':')));
}

// Each worker owns one key, "<prefix><worker>", and puts counter 1, 2, 3, ... into it, one call
// at a time. An acknowledged put of counter c means the key holds c or a later counter from then
// on; a failed call's fate is unknown, which only ever makes the key's counter larger.
class KvLoad {
 public:
  KvLoad(const ProcessCluster& cluster, std::string prefix, size_t workers, size_t value_bytes)
      : prefix_(std::move(prefix)), value_bytes_(value_bytes), last_acked_(workers, 0) {
    for (size_t w = 0; w < workers; ++w) clients_.push_back(cluster.NewClient());
  }
  ~KvLoad() { Stop(); }

  void Start() {
    for (size_t w = 0; w < clients_.size(); ++w) threads_.emplace_back([this, w] { Run(w); });
  }
  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  std::string Key(size_t worker) const { return prefix_ + std::to_string(worker); }
  size_t acked() const { return acked_.load(); }
  size_t failed() const { return failed_.load(); }
  std::vector<uint64_t> last_acked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_acked_;
  }
  std::string last_failure() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_failure_;
  }

  // Waits until `more` calls beyond those acknowledged now are acknowledged.
  bool WaitForMoreAcks(size_t more, Clock::time_point deadline) const {
    const size_t want = acked() + more;
    return WaitUntil(
        deadline, [&] { return acked() >= want; }, milliseconds(5));
  }

 private:
  void Run(size_t w) {
    Client& client = *clients_[w];
    for (uint64_t counter = 1; !stop_; ++counter) {
      auto r =
          client.Propose(KvStore::EncodePut(Key(w), ValueOf(counter, value_bytes_)), kCallTimeout);
      std::lock_guard<std::mutex> lock(mu_);
      if (r.ok() && r.value().outcome.code == StatusCode::kOk) {
        last_acked_[w] = counter;
        ++acked_;
      } else {
        ++failed_;
        last_failure_ = r.ok() ? r.value().outcome.message : r.status().ToString();
      }
    }
  }

  const std::string prefix_;
  const size_t value_bytes_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> acked_{0};
  std::atomic<size_t> failed_{0};
  mutable std::mutex mu_;
  std::vector<uint64_t> last_acked_;  // guarded by mu_
  std::string last_failure_;          // guarded by mu_
};

// Reads every key of `load` through the leader: each holds at least what was acknowledged for it
// before `acked` was taken.
void ExpectNothingLost(const ProcessCluster& cluster, const KvLoad& load,
                       const std::vector<uint64_t>& acked) {
  auto client = cluster.NewClient();
  for (size_t w = 0; w < acked.size(); ++w) {
    auto r = client->Read(KvStore::EncodeGet(load.Key(w)), kLiveness);
    ASSERT_TRUE(r.ok()) << "read " << load.Key(w) << ": " << r.status().ToString();
    ASSERT_EQ(r.value().code, StatusCode::kOk) << r.value().message;
    auto value = KvStore::DecodeGet(r.value().data);
    ASSERT_TRUE(value.ok()) << value.status().ToString();
    if (acked[w] == 0) continue;
    ASSERT_TRUE(value.value().has_value())
        << load.Key(w) << " is absent; counter " << acked[w] << " was acknowledged";
    EXPECT_GE(CounterOf(*value.value()), acked[w])
        << load.Key(w) << ": an acknowledged put was lost";
  }
}

// Puts `keys` keys of `value_bytes` each ("bulk-<i>"), from four clients at once, so that the
// state (and so every snapshot) is big.
void Preload(const ProcessCluster& cluster, size_t keys, size_t value_bytes) {
  constexpr size_t kThreads = 4;
  std::atomic<size_t> failures{0};
  std::string last_error;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = cluster.NewClient();
      for (size_t k = t; k < keys; k += kThreads) {
        auto r = client->Propose(
            KvStore::EncodePut("bulk-" + std::to_string(k), ValueOf(k, value_bytes)), kLiveness);
        if (!r.ok() || r.value().outcome.code != StatusCode::kOk) {
          ++failures;
          std::lock_guard<std::mutex> lock(mu);
          last_error = r.ok() ? r.value().outcome.message : r.status().ToString();
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0u) << last_error;
}

// ---------------------------------------------------------------------------------------------
// State comparison

// Waits until every node has applied the same slots, then has each take a snapshot there and
// compares the files byte for byte. *slot is where they were compared.
::testing::AssertionResult SameStateEverywhere(ProcessCluster& cluster, paxos::Slot* slot) {
  auto client = cluster.NewClient();
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::string positions;
    if (!cluster.WaitForConvergence(Clock::now() + kSlowTimeout, &positions)) {
      return ::testing::AssertionFailure() << "the nodes did not converge: " << positions;
    }
    std::map<paxos::NodeId, paxos::Slot> taken;
    for (paxos::NodeId id : cluster.ids()) {
      auto s = client->TakeSnapshot(id, kLiveness);
      if (!s.ok()) {
        return ::testing::AssertionFailure()
               << "node " << id << " took no snapshot: " << s.status().ToString();
      }
      taken[id] = s.value();
    }
    bool same_slot = true;
    why.clear();
    for (const auto& [id, below] : taken) {
      why += " node " + std::to_string(id) + " at " + std::to_string(below);
      same_slot = same_slot && below == taken.begin()->second;
    }
    if (!same_slot) continue;  // a slot was chosen meanwhile (a leader's no-op): again
    *slot = taken.begin()->second;
    const paxos::NodeId first = taken.begin()->first;
    const std::string reference = ReadFile(SnapshotPath(cluster, first, *slot));
    if (reference.empty()) {
      return ::testing::AssertionFailure()
             << "no snapshot file " << SnapshotPath(cluster, first, *slot);
    }
    for (const auto& [id, below] : taken) {
      const std::string bytes = ReadFile(SnapshotPath(cluster, id, below));
      if (bytes != reference) {
        size_t at = 0;
        while (at < bytes.size() && at < reference.size() && bytes[at] == reference[at]) ++at;
        return ::testing::AssertionFailure()
               << "the snapshots below slot " << *slot << " of node " << first << " ("
               << reference.size() << " B) and node " << id << " (" << bytes.size()
               << " B) differ from byte " << at;
      }
    }
    std::printf("[ snapshot ] all nodes hold the same state below slot %llu (%zu B snapshot)\n",
                static_cast<unsigned long long>(*slot), reference.size());
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "the nodes never snapshotted at one slot:" << why;
}

ProcessClusterOptions KvOptions(std::vector<std::string> flags, size_t nodes = 3) {
  ProcessClusterOptions o = DefaultOptions(BALLOTD_PATH, nodes);
  o.state_machine = "kv";
  o.extra_flags = std::move(flags);
  o.attempt_timeout = milliseconds(1000);
  return o;
}

struct Roles {
  paxos::NodeId leader = paxos::kNoNode;
  paxos::NodeId follower = paxos::kNoNode;  // the one the test takes down
  paxos::NodeId other = paxos::kNoNode;
};

Roles StartCluster(ProcessCluster* cluster) {
  Roles r;
  Status started = cluster->StartAll(Clock::now() + kStartTimeout);
  EXPECT_TRUE(started.ok()) << started.ToString();
  auto leader = cluster->WaitForLeader(Clock::now() + kStartTimeout);
  EXPECT_TRUE(leader.ok()) << leader.status().ToString();
  if (!started.ok() || !leader.ok()) return r;
  r.leader = leader.value().first;
  r.follower = r.leader == 1 ? 2 : 1;
  r.other = 6 - r.leader - r.follower;  // ids are 1, 2, 3
  return r;
}

// The slots of the snapshots a node logged durable, in order (every incarnation). A node logs
// one only after raising its store mark to the one before it.
std::vector<paxos::Slot> DurableSnapshots(const ProcessCluster& cluster, paxos::NodeId id) {
  std::vector<paxos::Slot> out;
  for (const std::string& line : cluster.LogLines(id, {"snapshot below slot", "is durable"})) {
    out.push_back(NumberAfter(line, "snapshot below slot"));
  }
  return out;
}

// Kills `follower` and keeps `load` going until the two others have compacted everything it
// lacks: each one's store starts above what the follower holds. Then they are restarted
// (SIGKILL), one after the other. Why: a node keeps the messages for a peer that is down queued
// (net/transport.h), so after a short downtime the follower could be handed every accept it
// missed from such a queue and never need a snapshot. Restarted, the others have no queue and
// whoever leads next has a new ballot: the follower can only come back by a snapshot.
void TakeDownWhileOthersCompact(ProcessCluster* cluster, const Roles& roles, KvLoad* load,
                                uint64_t retain_slots) {
  auto status = cluster->NodeStatus(roles.follower, kStatusTimeout);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  cluster->Kill(roles.follower);
  const paxos::Slot follower_chosen = status.value().chosen_below;
  // Memory keeps retain_slots below the newest snapshot; leave a margin for slots the follower
  // may have been told were chosen after the status above.
  const paxos::Slot want = follower_chosen + retain_slots + 64;
  // A node logs a snapshot durable once it has raised its store mark to the one before.
  auto store_mark = [&](paxos::NodeId id) {
    const std::vector<paxos::Slot> durable = DurableSnapshots(*cluster, id);
    return durable.size() >= 2 ? durable[durable.size() - 2] : paxos::Slot{1};
  };
  const std::vector<paxos::NodeId> others = {roles.leader, roles.other};
  const bool compacted = WaitUntil(Clock::now() + kSlowTimeout, [&] {
    return store_mark(others[0]) > want && store_mark(others[1]) > want;
  });
  ASSERT_TRUE(compacted) << "not compacted past slot " << want << ": the stores of nodes "
                         << others[0] << " and " << others[1] << " start at "
                         << store_mark(others[0]) << " and " << store_mark(others[1])
                         << "; load: " << load->acked() << " acked, " << load->failed()
                         << " failed (" << load->last_failure() << ")";
  for (paxos::NodeId id : others) {
    Status restarted = cluster->Restart(id, Clock::now() + kStartTimeout);
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
    auto leader = cluster->WaitForLeader(Clock::now() + kStartTimeout);
    ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  }
  std::printf(
      "[ snapshot ] follower %u killed at chosen %llu; the stores of nodes %u and %u start at "
      "%llu and %llu; both restarted\n",
      roles.follower, static_cast<unsigned long long>(follower_chosen), others[0], others[1],
      static_cast<unsigned long long>(store_mark(others[0])),
      static_cast<unsigned long long>(store_mark(others[1])));
}

// Every node's role, leader, chosen and applied positions, for failure messages.
std::string DescribeNodes(ProcessCluster* cluster) {
  std::string out;
  for (const auto& [id, status] : cluster->StatusAll(kStatusTimeout)) {
    out += (out.empty() ? "" : "; ") + std::string("node ") + std::to_string(id) + ": ";
    if (!status.ok()) {
      out += status.status().ToString();
      continue;
    }
    const net::NodeStatus& s = status.value();
    out += s.role + ", leader " + std::to_string(s.leader_id) + ", chosen below " +
           std::to_string(s.chosen_below) + ", applied below " + std::to_string(s.applied_below);
  }
  return out;
}

void ExpectAlive(ProcessCluster* cluster) {
  Status alive = cluster->CheckAlive();
  EXPECT_TRUE(alive.ok()) << alive.ToString();
}

void PrintTook(const char* test, Clock::time_point start) {
  std::printf("[ snapshot ] %s took %.1f s\n", test, MsBetween(start, Clock::now()) / 1000);
}

// ---------------------------------------------------------------------------------------------
// (1)

TEST(SnapshotTest, FollowerDownWhileOthersCompactRejoinsViaSnapshot) {
  const auto test_start = Clock::now();
  constexpr uint64_t kRetain = 50;
  ProcessCluster cluster(
      KvOptions({"--snapshot_every_slots=200", "--log_retain_slots=50", "--snapshot_chunk_kb=64"}));
  const Roles roles = StartCluster(&cluster);
  ASSERT_NE(roles.leader, paxos::kNoNode);
  Preload(cluster, 64, 16 << 10);  // a state of 1 MiB: a transfer of several chunks

  KvLoad load(cluster, "load-", 4, 100);
  load.Start();
  ASSERT_TRUE(load.WaitForMoreAcks(50, Clock::now() + kLiveness)) << load.last_failure();
  TakeDownWhileOthersCompact(&cluster, roles, &load, kRetain);

  // It comes back under load, learns that the slots it needs are gone, and fetches a snapshot.
  Status restarted = cluster.StartNode(roles.follower, Clock::now() + kStartTimeout);
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  const auto restarted_at = Clock::now();
  ASSERT_GE(cluster.WaitForLogLines(roles.follower, {kInstalled}, 1, restarted_at + kSlowTimeout),
            1u)
      << "node " << roles.follower << " installed no snapshot; " << DescribeNodes(&cluster)
      << "; log in " << cluster.LogPath(roles.follower);
  EXPECT_GE(cluster.CountLogLines(roles.follower, {kFetching}), 1u);
  std::printf("[ snapshot ] follower %u installed a snapshot %.0f ms after its restart: %s\n",
              roles.follower, MsBetween(restarted_at, Clock::now()),
              cluster.LogLines(roles.follower, {kInstalled}).front().c_str());
  // And keeps up from the log afterwards, under load.
  ASSERT_TRUE(load.WaitForMoreAcks(100, Clock::now() + kLiveness)) << load.last_failure();

  load.Stop();
  const std::vector<uint64_t> acked = load.last_acked();
  ExpectAlive(&cluster);
  paxos::Slot slot = 0;
  EXPECT_TRUE(SameStateEverywhere(cluster, &slot));
  ExpectNothingLost(cluster, load, acked);
  std::printf("[ snapshot ] %zu puts acknowledged, %zu failed\n", load.acked(), load.failed());
  PrintTook("follower rejoin via snapshot", test_start);
}

// ---------------------------------------------------------------------------------------------
// (2)

// Every node SIGKILLed while snapshots are being written (a 4 MiB state snapshotted every few
// slots, so each node writes one nearly all the time; the kill is aimed at the moment a node has
// an unfinished snapshot file, after a random pause). After each restart: the unfinished file is
// gone, each node restored the newest snapshot that was committed when it died, and nothing
// acknowledged is lost. At the end all nodes hold the same state.
TEST(SnapshotTest, KillDuringSnapshotWriteRestartsFromTheNewestCommittedSnapshot) {
  const auto test_start = Clock::now();
  constexpr int kRounds = 4;
  ProcessCluster cluster(KvOptions({"--snapshot_every_slots=5", "--log_retain_slots=20"}));
  const Roles roles = StartCluster(&cluster);
  ASSERT_NE(roles.leader, paxos::kNoNode);
  Preload(cluster, 128, 32 << 10);

  KvLoad load(cluster, "load-", 4, 100);
  load.Start();
  ASSERT_TRUE(load.WaitForMoreAcks(50, Clock::now() + kLiveness)) << load.last_failure();
  std::mt19937_64 rng(TestSeed());
  std::printf("[ snapshot ] seed %llu\n", static_cast<unsigned long long>(TestSeed()));
  size_t kills_mid_write = 0;
  for (int round = 1; round <= kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + ", seed " + std::to_string(TestSeed()));
    const paxos::NodeId aim = cluster.ids()[round % cluster.ids().size()];
    ASSERT_TRUE(WaitUntil(
        Clock::now() + kSlowTimeout, [&] { return ListSnapshots(cluster, aim).unfinished > 0; },
        milliseconds(1)))
        << "node " << aim << " never started writing a snapshot";
    // A write takes some tens of milliseconds here: this lands inside it, at a random point.
    std::this_thread::sleep_for(microseconds(rng() % 15000));
    cluster.KillAll();
    const std::vector<uint64_t> acked = load.last_acked();  // no node runs: all acks are in
    std::map<paxos::NodeId, SnapshotFiles> at_kill;
    std::string described;
    for (paxos::NodeId id : cluster.ids()) {
      at_kill[id] = ListSnapshots(cluster, id);
      kills_mid_write += at_kill[id].unfinished > 0 ? 1 : 0;
      described += " node " + std::to_string(id) + ": newest " +
                   std::to_string(at_kill[id].newest()) + ", " +
                   std::to_string(at_kill[id].unfinished) + " unfinished;";
    }
    std::printf("[ snapshot ] round %d: all killed;%s\n", round, described.c_str());
    std::map<paxos::NodeId, size_t> recovered_before;
    std::map<paxos::NodeId, size_t> deleted_before;
    for (paxos::NodeId id : cluster.ids()) {
      recovered_before[id] = cluster.CountLogLines(id, {kRecovered});
      deleted_before[id] = cluster.CountLogLines(id, {kTmpDeleted});
    }

    Status restarted = cluster.StartAll(Clock::now() + kStartTimeout);
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
    for (paxos::NodeId id : cluster.ids()) {
      SCOPED_TRACE("node " + std::to_string(id));
      EXPECT_EQ(cluster.CountLogLines(id, {kTmpDeleted}) - deleted_before[id],
                at_kill[id].unfinished);
      const std::vector<std::string> lines = cluster.LogLines(id, {kRecovered});
      ASSERT_EQ(lines.size(), recovered_before[id] + 1) << "log in " << cluster.LogPath(id);
      EXPECT_EQ(NumberAfter(lines.back(), kRecovered), at_kill[id].newest()) << lines.back();
    }
    ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
    ExpectNothingLost(cluster, load, acked);
    ASSERT_TRUE(load.WaitForMoreAcks(50, Clock::now() + kSlowTimeout)) << load.last_failure();
  }
  load.Stop();
  const std::vector<uint64_t> acked = load.last_acked();
  ExpectAlive(&cluster);
  std::printf("[ snapshot ] %zu of %d node kills landed while the node had a snapshot unfinished\n",
              kills_mid_write, kRounds * 3);
  EXPECT_GE(kills_mid_write, static_cast<size_t>(kRounds));
  paxos::Slot slot = 0;
  EXPECT_TRUE(SameStateEverywhere(cluster, &slot));
  ExpectNothingLost(cluster, load, acked);
  std::printf("[ snapshot ] %zu puts acknowledged, %zu failed (%s)\n", load.acked(), load.failed(),
              load.last_failure().c_str());
  PrintTook("kill during snapshot write", test_start);
}

// ---------------------------------------------------------------------------------------------
// (3)

// The receiver is SIGKILLed in the middle of a throttled transfer (a 2 MiB snapshot at about
// 1.6 MB/s), twice at random points: each restart discards the partial copy and fetches again.
// The third time it is killed the moment the copy is committed, while it is being installed:
// the restart then loads that snapshot (it is whole: nothing half installed). Then the node
// keeps up from the log under new load, and ends with the others' state.
TEST(SnapshotTest, ReceiverKilledDuringTransferAndInstallFetchesAgainAndCatchesUp) {
  const auto test_start = Clock::now();
  constexpr uint64_t kRetain = 50;
  constexpr int kKillsDuringTransfer = 2;
  ProcessCluster cluster(KvOptions({"--snapshot_every_slots=200", "--log_retain_slots=50",
                                    "--snapshot_chunk_kb=16", "--snapshot_transfer_mb_per_s=1"}));
  const Roles roles = StartCluster(&cluster);
  ASSERT_NE(roles.leader, paxos::kNoNode);
  const paxos::NodeId node = roles.follower;
  Preload(cluster, 128, 16 << 10);

  auto load = std::make_unique<KvLoad>(cluster, "load-", 4, 100);
  load->Start();
  ASSERT_TRUE(load->WaitForMoreAcks(50, Clock::now() + kLiveness)) << load->last_failure();
  TakeDownWhileOthersCompact(&cluster, roles, load.get(), kRetain);
  load->Stop();
  std::vector<uint64_t> acked = load->last_acked();
  ASSERT_TRUE(ListSnapshots(cluster, node).committed.empty())
      << "node " << node << " has a snapshot of its own";

  std::mt19937_64 rng(TestSeed());
  std::printf("[ snapshot ] seed %llu\n", static_cast<unsigned long long>(TestSeed()));
  size_t unfinished_at_kill = 0;
  // Starts the node and waits until it is fetching a snapshot; checks the partial copy of the
  // previous incarnation was discarded.
  auto start_fetching = [&] {
    const size_t fetching_before = cluster.CountLogLines(node, {kFetching});
    const size_t deleted_before = cluster.CountLogLines(node, {kTmpDeleted});
    Status restarted = cluster.StartNode(node, Clock::now() + kStartTimeout);
    ASSERT_TRUE(restarted.ok()) << restarted.ToString();
    EXPECT_EQ(cluster.CountLogLines(node, {kTmpDeleted}) - deleted_before, unfinished_at_kill)
        << "the partial copy was not discarded at the restart";
    ASSERT_GT(cluster.WaitForLogLines(node, {kFetching}, fetching_before + 1,
                                      Clock::now() + kSlowTimeout),
              fetching_before);
  };
  for (int kill = 1; kill <= kKillsDuringTransfer; ++kill) {
    SCOPED_TRACE("kill " + std::to_string(kill) + ", seed " + std::to_string(TestSeed()));
    start_fetching();
    if (::testing::Test::HasFatalFailure()) return;
    std::this_thread::sleep_for(milliseconds(200 + rng() % 500));
    cluster.Kill(node);
    const SnapshotFiles at_kill = ListSnapshots(cluster, node);
    unfinished_at_kill = at_kill.unfinished;
    ASSERT_TRUE(at_kill.committed.empty() && cluster.CountLogLines(node, {kInstalled}) == 0)
        << "the transfer finished before the kill: make it slower";
    EXPECT_EQ(at_kill.unfinished, 1u) << "no snapshot being received at the kill";
    uintmax_t received = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(SnapshotsDir(cluster, node), ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      received += std::filesystem::file_size(it->path(), ec);
    }
    std::printf("[ snapshot ] receiver %u killed during the transfer (%ju B received)\n", node,
                received);
  }

  // Killed the moment the copy is renamed into place: the install (restore, compaction) runs.
  start_fetching();
  if (::testing::Test::HasFatalFailure()) return;
  const auto deadline = Clock::now() + kSlowTimeout;
  while (ListSnapshots(cluster, node).committed.empty() && Clock::now() < deadline) {
    std::this_thread::sleep_for(microseconds(200));
  }
  cluster.Kill(node);
  const SnapshotFiles at_kill = ListSnapshots(cluster, node);
  unfinished_at_kill = at_kill.unfinished;
  ASSERT_EQ(at_kill.committed.size(), 1u) << "no copy committed by the deadline";
  const bool install_done = cluster.CountLogLines(node, {kInstalled}) == 1;
  std::printf("[ snapshot ] receiver %u killed as its copy below slot %llu was committed (%s)\n",
              node, static_cast<unsigned long long>(at_kill.newest()),
              install_done ? "after the install finished" : "before the install finished");
  const size_t recovered_before = cluster.CountLogLines(node, {kRecovered});
  Status restarted = cluster.StartNode(node, Clock::now() + kStartTimeout);
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  const std::vector<std::string> lines = cluster.LogLines(node, {kRecovered});
  ASSERT_EQ(lines.size(), recovered_before + 1);
  EXPECT_EQ(NumberAfter(lines.back(), kRecovered), at_kill.newest()) << lines.back();

  // Then it follows the log: new writes reach it like the others.
  KvLoad more(cluster, "more-", 4, 100);
  more.Start();
  ASSERT_TRUE(more.WaitForMoreAcks(200, Clock::now() + kSlowTimeout)) << more.last_failure();
  more.Stop();
  ExpectAlive(&cluster);
  paxos::Slot slot = 0;
  EXPECT_TRUE(SameStateEverywhere(cluster, &slot));
  ExpectNothingLost(cluster, *load, acked);
  ExpectNothingLost(cluster, more, more.last_acked());
  PrintTook("receiver killed during transfer and install", test_start);
}

// ---------------------------------------------------------------------------------------------
// (4)

// Every node damages every 4th chunk it sends: the receiver refuses each damaged one (its log
// says so), asks for it again, and installs a correct snapshot.
TEST(SnapshotTest, DamagedChunksAreRefusedAndSentAgain) {
  const auto test_start = Clock::now();
  constexpr uint64_t kRetain = 50;
  ProcessCluster cluster(KvOptions({"--snapshot_every_slots=200", "--log_retain_slots=50",
                                    "--snapshot_chunk_kb=16", "--TEST_corrupt_every_nth_chunk=4"}));
  const Roles roles = StartCluster(&cluster);
  ASSERT_NE(roles.leader, paxos::kNoNode);
  Preload(cluster, 64, 16 << 10);

  KvLoad load(cluster, "load-", 4, 100);
  load.Start();
  ASSERT_TRUE(load.WaitForMoreAcks(50, Clock::now() + kLiveness)) << load.last_failure();
  TakeDownWhileOthersCompact(&cluster, roles, &load, kRetain);
  load.Stop();
  const std::vector<uint64_t> acked = load.last_acked();

  Status restarted = cluster.StartNode(roles.follower, Clock::now() + kStartTimeout);
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  ASSERT_GE(cluster.WaitForLogLines(roles.follower, {kInstalled}, 1, Clock::now() + kSlowTimeout),
            1u)
      << "log in " << cluster.LogPath(roles.follower);
  const size_t refused = cluster.CountLogLines(roles.follower, {kChunkRefused});
  std::printf("[ snapshot ] node %u refused %zu damaged chunks, then installed: %s\n",
              roles.follower, refused,
              cluster.LogLines(roles.follower, {kInstalled}).front().c_str());
  // 1 MiB in 16 KiB chunks is over 64 chunks: at least 16 of them were damaged.
  EXPECT_GE(refused, 16u);
  ExpectAlive(&cluster);
  paxos::Slot slot = 0;
  EXPECT_TRUE(SameStateEverywhere(cluster, &slot));
  ExpectNothingLost(cluster, load, acked);
  PrintTook("damaged chunks", test_start);
}

// ---------------------------------------------------------------------------------------------
// (5)

// A node with two snapshots and log entries after the newest restarts from the newest and
// replays only the tail; with the newest damaged it falls back to the previous one (and replays
// more); with both damaged (its log below the previous one compacted) it refuses to start and
// says why, rather than serve a partial state.
TEST(SnapshotTest, RestartLoadsNewestSnapshotReplaysTailAndFallsBackWhenDamaged) {
  const auto test_start = Clock::now();
  // Snapshots only on demand here, so that the test knows each one.
  ProcessCluster cluster(KvOptions(
      {"--snapshot_every_slots=0", "--snapshot_every_log_mb=0", "--log_retain_slots=10"}));
  const Roles roles = StartCluster(&cluster);
  ASSERT_NE(roles.leader, paxos::kNoNode);
  const paxos::NodeId node = roles.follower;
  auto admin = cluster.NewClient();
  KvLoad load(cluster, "load-", 4, 100);
  load.Start();
  std::vector<paxos::Slot> taken;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(load.WaitForMoreAcks(200, Clock::now() + kLiveness)) << load.last_failure();
    auto s = admin->TakeSnapshot(node, kLiveness);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    taken.push_back(s.value());
  }
  ASSERT_TRUE(load.WaitForMoreAcks(200, Clock::now() + kLiveness)) << load.last_failure();
  load.Stop();
  std::vector<uint64_t> acked = load.last_acked();
  std::string positions;
  ASSERT_TRUE(cluster.WaitForConvergence(Clock::now() + kSlowTimeout, &positions)) << positions;
  auto status = cluster.NodeStatus(node, kStatusTimeout);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  paxos::Slot chosen = status.value().chosen_below;
  const SnapshotFiles files = ListSnapshots(cluster, node);
  ASSERT_EQ(files.committed, (std::vector<paxos::Slot>{taken[1], taken[0]}));
  ASSERT_LT(taken[1], chosen) << "no log after the newest snapshot";

  // Restart: the newest snapshot, then only the slots after it.
  auto restart_and_expect = [&](paxos::Slot restored, const char* what) {
    SCOPED_TRACE(what);
    const size_t before = cluster.CountLogLines(node, {kRecovered});
    const bool running = cluster.running(node);
    auto status = cluster.NodeStatus(node, kStatusTimeout);
    if (running) {
      ASSERT_TRUE(status.ok()) << status.status().ToString();
    }
    const paxos::Slot chosen_then = running ? status.value().chosen_below : chosen;
    Status s = cluster.Restart(node, Clock::now() + kStartTimeout);
    ASSERT_TRUE(s.ok()) << s.ToString();
    const std::vector<std::string> lines = cluster.LogLines(node, {kRecovered});
    ASSERT_EQ(lines.size(), before + 1) << "log in " << cluster.LogPath(node);
    EXPECT_EQ(NumberAfter(lines.back(), kRecovered), restored) << lines.back();
    // Only the slots after the snapshot, as far as the node had recorded them chosen (the
    // commit point reaches the disk with the next write, so the last few may be learnt again
    // from the leader).
    const paxos::Slot replayed = NumberAfter(lines.back(), "replaying");
    EXPECT_GT(replayed, 0u) << lines.back();
    EXPECT_LE(replayed, chosen_then - restored) << lines.back();
    std::printf("[ snapshot ] %s: %s\n", what, lines.back().c_str());
    paxos::Slot slot = 0;
    EXPECT_TRUE(SameStateEverywhere(cluster, &slot));
    ExpectNothingLost(cluster, load, acked);
  };
  restart_and_expect(taken[1], "restart from the newest snapshot");
  // SameStateEverywhere took a snapshot on every node: now the newest here.
  const SnapshotFiles now = ListSnapshots(cluster, node);
  ASSERT_EQ(now.committed.size(), 2u);
  ASSERT_EQ(now.committed[1], taken[1]);

  // The newest damaged: the previous one, and the log after it.
  chosen = now.newest();
  cluster.Kill(node);
  DamageFile(SnapshotPath(cluster, node, now.newest()));
  const size_t unusable_before = cluster.CountLogLines(node, {kUnusable});
  restart_and_expect(taken[1], "restart with the newest snapshot damaged");
  EXPECT_EQ(cluster.CountLogLines(node, {kUnusable}), unusable_before + 1);

  // Both damaged, the log below the older one gone: no state to serve, and it says so.
  cluster.Kill(node);
  // (The damaged newest file may still be there beside the one taken since.)
  const SnapshotFiles left = ListSnapshots(cluster, node);
  ASSERT_GE(left.committed.size(), 2u);
  for (paxos::Slot below : left.committed) DamageFile(SnapshotPath(cluster, node, below));
  std::printf("[ snapshot ] damaged every snapshot of node %u (%zu files)\n", node,
              left.committed.size());
  Status refused = cluster.StartNode(node, Clock::now() + kStartTimeout);
  ASSERT_FALSE(refused.ok()) << "node " << node << " started with no usable snapshot";
  EXPECT_NE(refused.message().find("exited 1"), std::string::npos) << refused.ToString();
  EXPECT_EQ(cluster.CountLogLines(node, {"cannot start node", "no valid snapshot"}), 1u)
      << refused.ToString();
  std::printf("[ snapshot ] with both snapshots damaged: %s\n",
              cluster.LogLines(node, {"cannot start node"}).back().c_str());
  // The other two still serve.
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kLiveness).ok());
  ExpectNothingLost(cluster, load, acked);
  PrintTook("restart from snapshot and tail", test_start);
}

// ---------------------------------------------------------------------------------------------
// (6)

// `ballotctl store verify` and `store dump` on a stopped node's data directory list its snapshot
// files and their checksums; a damaged snapshot makes verify exit 1 naming the file.
TEST(SnapshotTest, StoreVerifyAndDumpListSnapshotsAndCatchDamage) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(KvOptions({"--snapshot_every_slots=0", "--snapshot_every_log_mb=0"}, 1));
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  const paxos::NodeId node = 1;
  auto admin = cluster.NewClient();
  std::vector<paxos::Slot> taken;
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 20; ++k) {
      auto r =
          admin->Propose(KvStore::EncodePut("k" + std::to_string(k), ValueOf(i, 1000)), kLiveness);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    // Through ballotctl, as an operator would.
    std::string out;
    const int code = RunCommand(
        std::string(BALLOTCTL_PATH) + " --cluster=" + cluster.cluster_flag() + " snapshot --id=1",
        &out);
    ASSERT_EQ(code, 0) << out;
    // "node 1 snapshot covers slots below N"
    taken.push_back(NumberAfter(out, "slots below"));
  }
  ASSERT_LT(taken[0], taken[1]);
  EXPECT_EQ(cluster.Terminate(node, Clock::now() + kLiveness), "exited 0");

  const std::string ctl = std::string(BALLOTCTL_PATH) + " --data_dir=" + cluster.DataDir(node);
  const std::string newest = SnapshotPath(cluster, node, taken[1]);
  const std::string newest_name = newest.substr(newest.rfind('/') + 1);
  const std::string older = SnapshotPath(cluster, node, taken[0]);
  const std::string older_name = older.substr(older.rfind('/') + 1);
  std::string out;
  EXPECT_EQ(RunCommand(ctl + " store verify", &out), 0) << out;
  std::printf("[ snapshot ] store verify:\n%s", out.c_str());
  EXPECT_NE(out.find(newest_name), std::string::npos) << out;
  EXPECT_NE(out.find(older_name), std::string::npos) << out;
  EXPECT_EQ(RunCommand(ctl + " store dump", &out), 0) << out;
  std::printf("[ snapshot ] store dump:\n%s", out.c_str());
  EXPECT_NE(out.find(newest_name), std::string::npos) << out;
  EXPECT_NE(out.find(older_name), std::string::npos) << out;

  DamageFile(newest);
  EXPECT_EQ(RunCommand(ctl + " store verify", &out), 1) << out;
  std::printf("[ snapshot ] store verify, newest snapshot damaged:\n%s", out.c_str());
  bool named = false;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    named = named || (line.find(newest_name) != std::string::npos &&
                      line.find("CORRUPTION") != std::string::npos);
  }
  EXPECT_TRUE(named) << "no line names the damaged file and the corruption:\n" << out;
  PrintTook("store verify and dump", test_start);
}

// ---------------------------------------------------------------------------------------------
// (5b)

// The nodes that fell back from a damaged newest snapshot still have that file. A follower that
// needs a snapshot from them must be sent one they restored from (or wrote, or installed), not
// the damaged file: that one fails the receiver's whole-file check every time, and with no new
// snapshot taken the follower would never rejoin.
TEST(SnapshotTest, NodeThatFellBackNeverServesItsDamagedSnapshot) {
  const auto test_start = Clock::now();
  ProcessCluster cluster(KvOptions(
      {"--snapshot_every_slots=0", "--snapshot_every_log_mb=0", "--log_retain_slots=10"}));
  const Roles roles = StartCluster(&cluster);
  ASSERT_NE(roles.leader, paxos::kNoNode);
  auto admin = cluster.NewClient();
  KvLoad load(cluster, "load-", 4, 100);
  load.Start();
  ASSERT_TRUE(load.WaitForMoreAcks(50, Clock::now() + kLiveness)) << load.last_failure();
  cluster.Kill(roles.follower);
  // Two snapshots on each of the others: their logs now start at the older one, above anything
  // the follower holds.
  std::map<paxos::NodeId, paxos::Slot> newest;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(load.WaitForMoreAcks(200, Clock::now() + kLiveness)) << load.last_failure();
    for (paxos::NodeId id : {roles.leader, roles.other}) {
      auto s = admin->TakeSnapshot(id, kLiveness);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      newest[id] = s.value();
    }
  }
  load.Stop();
  const std::vector<uint64_t> acked = load.last_acked();
  cluster.KillAll();
  for (paxos::NodeId id : {roles.leader, roles.other}) {
    DamageFile(SnapshotPath(cluster, id, newest[id]));
  }
  for (paxos::NodeId id : {roles.leader, roles.other}) {
    Status s = cluster.StartNode(id, Clock::now() + kStartTimeout);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_EQ(cluster.CountLogLines(id, {kUnusable}), 1u) << "log in " << cluster.LogPath(id);
  }
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());

  Status restarted = cluster.StartNode(roles.follower, Clock::now() + kStartTimeout);
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  const auto restarted_at = Clock::now();
  ASSERT_GE(cluster.WaitForLogLines(roles.follower, {kInstalled}, 1, restarted_at + kLiveness), 1u)
      << "node " << roles.follower << " installed no snapshot in " << kLiveness.count()
      << " s; its log has " << cluster.CountLogLines(roles.follower, {"abandoned"})
      << " abandoned transfers; log in " << cluster.LogPath(roles.follower);
  std::printf("[ snapshot ] follower %u installed a snapshot %.0f ms after its restart: %s\n",
              roles.follower, MsBetween(restarted_at, Clock::now()),
              cluster.LogLines(roles.follower, {kInstalled}).front().c_str());
  ExpectAlive(&cluster);
  paxos::Slot slot = 0;
  EXPECT_TRUE(SameStateEverywhere(cluster, &slot));
  ExpectNothingLost(cluster, load, acked);
  PrintTook("no damaged snapshot served", test_start);
}

// ---------------------------------------------------------------------------------------------
// (3b)

// A throttled transfer that takes longer than the sender's snapshot interval, under load: the
// sender keeps taking snapshots (and dropping old ones) while the follower copies one, and the
// copy must still complete rather than start over with each new snapshot.
TEST(SnapshotTest, SlowTransferCompletesWhileTheSenderKeepsSnapshotting) {
  const auto test_start = Clock::now();
  constexpr uint64_t kRetain = 50;
  ProcessCluster cluster(KvOptions({"--snapshot_every_slots=50", "--log_retain_slots=50",
                                    "--snapshot_chunk_kb=8", "--snapshot_transfer_mb_per_s=1"}));
  const Roles roles = StartCluster(&cluster);
  ASSERT_NE(roles.leader, paxos::kNoNode);
  Preload(cluster, 64, 16 << 10);  // 1 MiB: over a second at 8 KiB per 10 ms tick

  KvLoad load(cluster, "load-", 4, 100);
  load.Start();
  ASSERT_TRUE(load.WaitForMoreAcks(50, Clock::now() + kLiveness)) << load.last_failure();
  TakeDownWhileOthersCompact(&cluster, roles, &load, kRetain);
  std::map<paxos::NodeId, size_t> taken_before;
  for (paxos::NodeId id : {roles.leader, roles.other}) {
    taken_before[id] = cluster.CountLogLines(id, {"is durable"});
  }
  Status restarted = cluster.StartNode(roles.follower, Clock::now() + kStartTimeout);
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  const auto restarted_at = Clock::now();
  const bool installed =
      cluster.WaitForLogLines(roles.follower, {kInstalled}, 1, restarted_at + kSlowTimeout) >= 1;
  ASSERT_TRUE(installed) << "node " << roles.follower << " installed no snapshot in "
                         << kSlowTimeout.count() << " s under load; log in "
                         << cluster.LogPath(roles.follower);
  const std::string line = cluster.LogLines(roles.follower, {kInstalled}).front();
  const auto sender = static_cast<paxos::NodeId>(NumberAfter(line, "from node"));
  ASSERT_TRUE(taken_before.count(sender)) << line;
  const size_t taken_meanwhile =
      cluster.CountLogLines(sender, {"is durable"}) - taken_before[sender];
  std::printf(
      "[ snapshot ] follower %u installed a snapshot under load %.0f ms after its restart, "
      "while its sender took %zu snapshots: %s\n",
      roles.follower, MsBetween(restarted_at, Clock::now()), taken_meanwhile, line.c_str());
  // A snapshot is deleted once two newer ones are durable: with fewer taken meanwhile this test
  // did not test what it is about.
  EXPECT_GE(taken_meanwhile, 2u) << "the sender did not snapshot during the transfer";
  ASSERT_TRUE(load.WaitForMoreAcks(100, Clock::now() + kLiveness)) << load.last_failure();
  load.Stop();
  const std::vector<uint64_t> acked = load.last_acked();
  ExpectAlive(&cluster);
  paxos::Slot slot = 0;
  EXPECT_TRUE(SameStateEverywhere(cluster, &slot));
  ExpectNothingLost(cluster, load, acked);
  PrintTook("slow transfer under load", test_start);
}

}  // namespace
}  // namespace ballot::cluster_test

namespace ballot::cluster_test {
namespace {

// `ballotctl snapshot` whose client retries (its attempt timeout is shorter than the snapshot's
// write) must take one snapshot, not one per attempt: a request that arrives while a snapshot is
// being written is answered by that one.
TEST(SnapshotTest, RetriedSnapshotRequestsWhileOneIsWrittenTakeOneSnapshot) {
  ProcessClusterOptions options = KvOptions(
      {"--snapshot_every_slots=0", "--snapshot_every_log_mb=0", "--TEST_background_delay_ms=2000"},
      1);
  options.attempt_timeout = milliseconds(300);  // several attempts during one snapshot write
  ProcessCluster cluster(options);
  Status started = cluster.StartAll(Clock::now() + kStartTimeout);
  ASSERT_TRUE(started.ok()) << started.ToString();
  ASSERT_TRUE(cluster.WaitForLeader(Clock::now() + kStartTimeout).ok());
  auto admin = cluster.NewClient();
  for (int k = 0; k < 10; ++k) {
    auto r = admin->Propose(KvStore::EncodePut("k" + std::to_string(k), "v"), kLiveness);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto taken = admin->TakeSnapshot(1, kLiveness);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  // Any second snapshot a retry scheduled would be durable within another delay.
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT_EQ(cluster.CountLogLines(1, {"snapshot below slot", "is durable"}), 1u)
      << "log in " << cluster.LogPath(1);
}

}  // namespace
}  // namespace ballot::cluster_test
