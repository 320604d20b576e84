// kill -9 during heavy writes. A child process writes a deterministic stream of operations (group
// commits of 1..512 slots, promise changes, snapshots) and reports each one through a pipe as
// soon as the store says it is durable. The parent SIGKILLs it at a random moment, reopens the
// store and checks that it holds exactly the state after the last reported operation, or after
// the one that was in flight: every acknowledged write is there and nothing half-written is
// visible. Repeated kKills times, continuing from the recovered state each time.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>

#include "store/lmdb_store.h"
#include "store/store_inspect.h"
#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::TempDir;

constexpr int kKills = 210;
// The nojournal.* run (tests/store/CMakeLists.txt) covers the plain LMDB path with fewer kills.
int Kills() {
  const char* kills = getenv("BALLOT_TEST_CRASH_KILLS");
  return kills != nullptr ? atoi(kills) : kKills;
}
constexpr int kFirstAckTimeoutMs = 30'000;
constexpr uint64_t kOpsPerChildMax = 1'000'000;  // a child never gets near this before the kill

// The durable state the store must hold after some prefix of the operation stream.
struct Model {
  uint64_t ops = 0;  // operations applied
  paxos::Ballot promised;
  std::map<paxos::Slot, paxos::Entry> entries;
  paxos::Slot chosen_below = 1;
  paxos::Slot applied_below = 1;
  std::optional<Snapshot> snapshot;

  paxos::Slot next_slot() const {
    return entries.empty() ? applied_below : entries.rbegin()->first + 1;
  }
};

struct Op {
  bool is_snapshot = false;
  paxos::PersistBatch batch;
  Snapshot snapshot;
};

// Operation number `n` (1-based), which may depend on the state after operations 1..n-1.
Op MakeOp(uint64_t n, const Model& m) {
  std::mt19937_64 rng(n * 0x9E3779B97F4A7C15ULL);
  Op op;
  if (n % 23 == 0 && m.chosen_below > m.applied_below) {
    op.is_snapshot = true;
    op.snapshot.applied_below = m.applied_below + 1 + rng() % (m.chosen_below - m.applied_below);
    op.snapshot.data = "snapshot-" + std::to_string(n) + std::string(rng() % 3000, 's');
    return op;
  }
  paxos::Ballot ballot = m.promised;
  if (m.promised.IsZero() || rng() % 5 == 0) {
    ballot = paxos::Ballot(m.promised.round() + 1, 1 + rng() % 3);
    op.batch.promised = ballot;
  }
  // Mostly small batches, some large: 1..16 (70%), 17..128 (25%), 129..512 (5%).
  const uint64_t pick = rng() % 100;
  const size_t count = pick < 70   ? 1 + rng() % 16
                       : pick < 95 ? 17 + rng() % 112
                                   : 129 + rng() % 384;
  // Some re-accepts of open slots, then new slots appended after the last one.
  paxos::Slot slot = m.next_slot();
  if (rng() % 3 == 0 && slot > m.chosen_below)
    slot = m.chosen_below + rng() % (slot - m.chosen_below);
  for (size_t i = 0; i < count; ++i, ++slot) {
    paxos::Entry e;
    e.slot = slot;
    e.ballot = ballot;
    e.value.epoch = ballot;
    e.value.leader_start = rng() % 50 == 0;
    const int commands = static_cast<int>(rng() % 4);
    for (int c = 0; c < commands; ++c) {
      paxos::Command cmd;
      cmd.client_id = rng();
      cmd.sequence = n;
      cmd.acked_sequence = n - 1;
      cmd.expected_epoch = rng() % 2 == 0 ? 0 : ballot.raw();
      cmd.stamp_ms = n * 1000 + c;
      cmd.payload.assign(rng() % 200, static_cast<char>('a' + (n + slot + c) % 26));
      e.value.commands.push_back(std::move(cmd));
    }
    op.batch.entries.push_back(std::move(e));
  }
  if (rng() % 2 == 0) {
    // Every slot below the new chosen_below exists: entries are contiguous from applied_below.
    const paxos::Slot last = std::max(slot, m.next_slot());
    op.batch.chosen_below = m.chosen_below + rng() % (last - m.chosen_below + 1);
  }
  return op;
}

void Apply(const Op& op, Model* m) {
  ++m->ops;
  if (op.is_snapshot) {
    m->snapshot = op.snapshot;
    m->applied_below = op.snapshot.applied_below;
    m->chosen_below = std::max(m->chosen_below, m->applied_below);
    m->entries.erase(m->entries.begin(), m->entries.lower_bound(m->applied_below));
    return;
  }
  if (op.batch.promised) m->promised = *op.batch.promised;
  for (const paxos::Entry& e : op.batch.entries) {
    if (e.slot >= m->applied_below) m->entries[e.slot] = e;
  }
  if (op.batch.chosen_below) m->chosen_below = std::max(m->chosen_below, *op.batch.chosen_below);
}

Status Run(const Op& op, LmdbStore* store) {
  return op.is_snapshot ? store->SaveSnapshot(op.snapshot) : store->Write(op.batch);
}

// Empty if the store holds exactly `m`, else what differs.
std::string Diff(LmdbStore* store, const Model& m) {
  Result<paxos::DurableState> r = store->Load();
  if (!r.ok()) return "Load: " + r.status().ToString();
  const paxos::DurableState& s = r.value();
  std::ostringstream d;
  if (s.promised != m.promised)
    d << "promised " << s.promised.raw() << " != " << m.promised.raw() << "; ";
  if (s.chosen_below != m.chosen_below)
    d << "chosen_below " << s.chosen_below << " != " << m.chosen_below << "; ";
  if (s.applied_below != m.applied_below)
    d << "applied_below " << s.applied_below << " != " << m.applied_below << "; ";
  if (s.entries.size() != m.entries.size()) {
    d << "entries " << s.entries.size() << " != " << m.entries.size() << "; ";
  } else {
    size_t i = 0;
    for (const auto& [slot, e] : m.entries) {
      if (!(s.entries[i] == e)) {
        d << "slot " << slot << " differs; ";
        break;
      }
      ++i;
    }
  }
  Result<std::optional<Snapshot>> snap = store->LoadSnapshot();
  if (!snap.ok()) return d.str() + "LoadSnapshot: " + snap.status().ToString();
  const std::optional<Snapshot>& got = snap.value();
  if (got.has_value() != m.snapshot.has_value() ||
      (got && (got->applied_below != m.snapshot->applied_below || got->data != m.snapshot->data))) {
    d << "snapshot differs; ";
  }
  return d.str();
}

LmdbOptions CrashOptions(const std::string& dir) {
  LmdbOptions o = testing::SmallOptions(dir);
  o.map_bytes = 512 * 1024;  // small, so the map also grows while being killed
  o.map_bytes_max = 1 * kGiB;
  // The journal is on by default; a small checkpoint size makes kills land in checkpoints and
  // journal restarts as well as in appends.
  o.journal_checkpoint_bytes = 64 * 1024;
  return o;
}

// The child: continue the operation stream from `model`, reporting each durable operation.
[[noreturn]] void ChildMain(const std::string& dir, Model model, int ack_fd) {
  Result<std::unique_ptr<LmdbStore>> opened = LmdbStore::Open(CrashOptions(dir));
  if (!opened.ok()) {
    fprintf(stderr, "child: open: %s\n", opened.status().ToString().c_str());
    _exit(2);
  }
  std::unique_ptr<LmdbStore> store = std::move(opened).value();
  for (uint64_t i = 0; i < kOpsPerChildMax; ++i) {
    const uint64_t n = model.ops + 1;
    const Op op = MakeOp(n, model);
    if (Status s = Run(op, store.get()); !s.ok()) {
      fprintf(stderr, "child: op %lu: %s\n", static_cast<unsigned long>(n), s.ToString().c_str());
      _exit(3);
    }
    Apply(op, &model);
    if (write(ack_fd, &n, sizeof(n)) != sizeof(n)) _exit(4);  // 8 bytes: atomic on a pipe
  }
  _exit(5);
}

// Reads whatever acknowledgements are available within `timeout_ms` into *acked.
// Returns false on EOF (the child is gone).
bool ReadAcks(int fd, int timeout_ms, uint64_t* acked) {
  pollfd p{fd, POLLIN, 0};
  const int ready = poll(&p, 1, timeout_ms);
  if (ready <= 0) return true;
  uint64_t buf[512];
  const ssize_t got = read(fd, buf, sizeof(buf));
  if (got <= 0) return false;
  CHECK_EQ(got % 8, 0) << "torn acknowledgement";
  for (ssize_t i = 0; i < got / 8; ++i) {
    CHECK_EQ(buf[i], *acked + 1) << "acknowledgements out of order";
    *acked = buf[i];
  }
  return true;
}

TEST(LmdbCrashTest, KillDashNineDuringHeavyWrites) {
  TempDir tmp;
  std::mt19937_64 rng(20240611);
  // Two processes open the store ~200 times each; keep their INFO lines out of the output.
  const int saved_minloglevel = FLAGS_minloglevel;
  FLAGS_minloglevel = google::GLOG_WARNING;
  Model model;
  LOG(INFO) << "crash test store in " << tmp.path();
  // Create the store (and its identity) up front, and close it before every fork: an LMDB
  // environment must not cross a fork.
  std::move(LmdbStore::Open(CrashOptions(tmp.path()))).value().reset();

  const auto start = std::chrono::steady_clock::now();
  int kills = 0;
  int kills_in_flight = 0;  // recovered state included the unacknowledged operation
  uint64_t acked_total = 0;
  const int kills_wanted = Kills();
  while (kills < kills_wanted) {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    fflush(nullptr);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      ChildMain(tmp.path(), model, fds[1]);
    }
    close(fds[1]);

    // Kill at a random moment: mostly a few ms into a run of commits, sometimes right away
    // (during open or the first commit).
    uint64_t acked = model.ops;
    const bool early = rng() % 8 == 0;
    if (!early) {
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(kFirstAckTimeoutMs);
      while (acked == model.ops && std::chrono::steady_clock::now() < deadline) {
        if (!ReadAcks(fds[0], 100, &acked)) break;
      }
      ASSERT_GT(acked, model.ops) << "the child made no progress";
    }
    const auto kill_at = std::chrono::steady_clock::now() +
                         std::chrono::microseconds(rng() % (early ? 3000 : 20000));
    for (auto now = std::chrono::steady_clock::now(); now < kill_at;
         now = std::chrono::steady_clock::now()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - now).count();
      if (!ReadAcks(fds[0], static_cast<int>(left), &acked)) break;
    }
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the child ended on its own (status " << status << "); see its stderr";
    while (ReadAcks(fds[0], 0, &acked)) {
    }
    close(fds[0]);
    ++kills;

    // Every acknowledged operation must be there; the one in flight may or may not be.
    Model want = model;
    while (want.ops < acked) Apply(MakeOp(want.ops + 1, want), &want);
    Result<std::unique_ptr<LmdbStore>> reopened = LmdbStore::Open(CrashOptions(tmp.path()));
    ASSERT_TRUE(reopened.ok()) << "kill " << kills << ": " << reopened.status().ToString();
    std::unique_ptr<LmdbStore> store = std::move(reopened).value();
    std::string diff = Diff(store.get(), want);
    if (!diff.empty()) {
      Model next = want;
      Apply(MakeOp(next.ops + 1, next), &next);
      const std::string next_diff = Diff(store.get(), next);
      ASSERT_TRUE(next_diff.empty())
          << "kill " << kills << " after " << acked
          << " acknowledged ops: state matches neither op " << want.ops << " (" << diff
          << ") nor op " << next.ops << " (" << next_diff << ")";
      want = std::move(next);
      ++kills_in_flight;
    }
    const VerifyReport report = VerifyStore(store.get()).value();
    ASSERT_TRUE(report.ok()) << "kill " << kills << ": " << report.problems.front();
    acked_total += acked - model.ops;
    model = std::move(want);
  }
  FLAGS_minloglevel = saved_minloglevel;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LOG(INFO) << kills << " kills in " << seconds << " s; " << acked_total
            << " acknowledged operations, " << model.ops << " operations durable, "
            << kills_in_flight << " kills found the in-flight operation durable; last slot "
            << (model.entries.empty() ? 0 : model.entries.rbegin()->first);
  RecordProperty("kills", kills);
}

}  // namespace
}  // namespace ballot::store
