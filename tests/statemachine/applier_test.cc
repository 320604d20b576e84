#include "statemachine/applier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "statemachine/byte_codec.h"

namespace ballot {
namespace {

// A configuration of voters with these addresses.
paxos::Configuration Conf(const std::map<paxos::NodeId, std::string>& members) {
  std::vector<paxos::Member> list;
  for (const auto& [id, address] : members) list.push_back(paxos::Member{id, address, true});
  return paxos::Configuration(std::move(list));
}

// A state machine whose every answer is unique: applying a command a second time would give a
// different answer, so a test can tell "answered from the session table" from "applied again".
class CountingMachine : public StateMachine {
 public:
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override {
    batch_sizes.push_back(batch.size());
    for (const AppliedCommand& c : batch) {
      seen.push_back(c);
      seen_payloads.emplace_back(c.payload);
      if (c.payload == "bad") {
        outcomes->push_back(Outcome{StatusCode::kInvalidArgument, "", "bad payload"});
        continue;
      }
      applied_++;
      outcomes->push_back(Outcome{
          StatusCode::kOk,
          std::string(c.payload) + "#" + std::to_string(applied_) + "@" + std::to_string(c.epoch),
          ""});
    }
  }
  Outcome Query(std::string_view) const override {
    return Outcome{StatusCode::kOk, std::to_string(applied_), ""};
  }
  std::string Snapshot() const override {
    ByteWriter w;
    w.PutU64(applied_);
    return w.Release();
  }
  Status Restore(std::string_view snapshot) override {
    ByteReader r(snapshot);
    uint64_t applied = 0;
    if (!r.GetU64(&applied) || !r.empty()) return Status(StatusCode::kCorruption, "counting");
    applied_ = applied;
    return Status::Ok();
  }

  uint64_t applied() const { return applied_; }

  // Observations for tests; not part of the replicated state.
  std::vector<size_t> batch_sizes;
  std::vector<AppliedCommand> seen;  // payload views are only valid during Apply
  std::vector<std::string> seen_payloads;

 private:
  uint64_t applied_ = 0;
};

struct Fixture {
  explicit Fixture(SessionTable::Limits limits = SessionTable::Limits())
      : applier(std::make_unique<CountingMachine>(), limits),
        machine(static_cast<CountingMachine&>(applier.machine())) {}
  Applier applier;
  CountingMachine& machine;
};

paxos::Command Cmd(uint64_t client, uint64_t sequence, std::string payload, uint64_t acked = 0,
                   uint64_t expected_epoch = 0) {
  paxos::Command c;
  c.client_id = client;
  c.sequence = sequence;
  c.acked_sequence = acked;
  c.expected_epoch = expected_epoch;
  c.stamp_ms = 1000 + sequence;
  c.payload = std::move(payload);
  return c;
}

paxos::Entry MakeEntry(paxos::Slot slot, std::vector<paxos::Command> commands,
                       uint64_t leader_epoch = 0) {
  paxos::Entry e;
  e.slot = slot;
  e.value.epoch = paxos::Ballot::FromRaw(leader_epoch);
  e.value.leader_start = leader_epoch != 0;
  e.value.commands = std::move(commands);
  e.ballot = e.value.epoch;
  return e;
}

std::vector<Reply> ApplyAll(Applier* applier, const std::vector<paxos::Entry>& entries) {
  std::vector<Reply> replies;
  applier->Apply(entries, &replies);
  return replies;
}

// The same entries, one Apply call per entry.
std::vector<Reply> ApplyOneByOne(Applier* applier, const std::vector<paxos::Entry>& entries) {
  std::vector<Reply> replies;
  for (const paxos::Entry& e : entries) applier->Apply({e}, &replies);
  return replies;
}

void ExpectSameReplies(const std::vector<Reply>& a, const std::vector<Reply>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); i++) {
    EXPECT_EQ(a[i].client_id, b[i].client_id) << i;
    EXPECT_EQ(a[i].sequence, b[i].sequence) << i;
    EXPECT_EQ(a[i].slot, b[i].slot) << i;
    EXPECT_EQ(a[i].outcome, b[i].outcome) << i;
    EXPECT_EQ(a[i].duplicate, b[i].duplicate) << i;
  }
}

const uint64_t kEpoch1 = paxos::Ballot(1, 1).raw();
const uint64_t kEpoch2 = paxos::Ballot(2, 3).raw();

TEST(ApplierTest, TracksTheLogEpochFromLeaderStartEntries) {
  Fixture f;
  EXPECT_EQ(f.applier.log_epoch(), 0u);
  std::vector<Reply> replies = ApplyAll(
      &f.applier,
      {MakeEntry(1, {Cmd(0, 0, "before")}), MakeEntry(2, {Cmd(0, 0, "a")}, kEpoch1),
       MakeEntry(3, {}), MakeEntry(4, {Cmd(0, 0, "b")}), MakeEntry(5, {Cmd(0, 0, "c")}, kEpoch2)});
  EXPECT_EQ(f.applier.log_epoch(), kEpoch2);
  EXPECT_EQ(f.applier.applied_below(), 6u);
  ASSERT_EQ(f.machine.seen.size(), 4u);
  const uint64_t epochs[] = {0, kEpoch1, kEpoch1, kEpoch2};
  const paxos::Slot slots[] = {1, 2, 4, 5};
  for (size_t i = 0; i < 4; i++) {
    EXPECT_EQ(f.machine.seen[i].epoch, epochs[i]) << i;
    EXPECT_EQ(f.machine.seen[i].slot, slots[i]) << i;
  }
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[3].slot, 5u);
  EXPECT_EQ(replies[3].outcome.data, "c#4@" + std::to_string(kEpoch2));
}

TEST(ApplierTest, PassesClientAndStampThroughInOneMachineCall) {
  Fixture f;
  std::vector<Reply> replies = ApplyAll(
      &f.applier, {MakeEntry(1, {Cmd(5, 1, "x"), Cmd(6, 1, "y")}), MakeEntry(2, {Cmd(5, 2, "z")})});
  EXPECT_EQ(f.machine.batch_sizes, std::vector<size_t>({3}));
  ASSERT_EQ(f.machine.seen.size(), 3u);
  EXPECT_EQ(f.machine.seen[1].client_id, 6u);
  EXPECT_EQ(f.machine.seen[2].stamp_ms, 1002u);
  EXPECT_EQ(f.machine.seen_payloads, std::vector<std::string>({"x", "y", "z"}));
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[2].client_id, 5u);
  EXPECT_EQ(replies[2].sequence, 2u);
  EXPECT_EQ(replies[2].slot, 2u);
  EXPECT_EQ(replies[2].outcome.data, "z#3@0");
  EXPECT_FALSE(replies[2].duplicate);
}

TEST(ApplierDeathTest, EntriesMustContinueAtAppliedBelow) {
  Fixture f;
  std::vector<Reply> replies;
  EXPECT_DEATH(f.applier.Apply({MakeEntry(2, {})}, &replies), "applied_below");
  EXPECT_DEATH(f.applier.Apply({MakeEntry(1, {}), MakeEntry(3, {})}, &replies), "applied_below");
}

// A stale leader_start (a leadership that never became usable, chosen late behind a newer one)
// must not move the log's epoch backwards, and commands after it are judged by the newer epoch.
TEST(ApplierTest, StaleLeaderStartDoesNotLowerTheLogEpoch) {
  Fixture f;
  std::vector<Reply> replies;
  f.applier.Apply({MakeEntry(1, {}, kEpoch2)}, &replies);
  f.applier.Apply({MakeEntry(2, {}, kEpoch1)}, &replies);
  EXPECT_EQ(f.applier.log_epoch(), kEpoch2);
  f.applier.Apply({MakeEntry(3, {Cmd(1, 1, "old", 0, kEpoch1), Cmd(1, 2, "new", 0, kEpoch2)})},
                  &replies);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].outcome.code, StatusCode::kAborted);
  EXPECT_EQ(replies[1].outcome.code, StatusCode::kOk);
  EXPECT_EQ(replies[1].epoch, kEpoch2);
}

std::vector<paxos::Entry> EpochScenario() {
  return {
      MakeEntry(1, {Cmd(1, 1, "ok-in-1", 0, kEpoch1)}, kEpoch1),
      MakeEntry(2, {Cmd(1, 2, "stale", 0, kEpoch2), Cmd(2, 1, "any")}),
      MakeEntry(3, {}, kEpoch2),
      MakeEntry(4, {Cmd(1, 3, "old-leader", 0, kEpoch1), Cmd(1, 4, "ok-in-2", 0, kEpoch2)}),
      // The retry of a rejected command is answered with the same rejection, even though its
      // expected epoch now matches: it was decided once, at slot 2.
      MakeEntry(5, {Cmd(1, 2, "stale", 0, kEpoch2)}),
  };
}

TEST(ApplierTest, ExpectedEpochMismatchIsRejectedIdenticallyEverywhere) {
  Fixture a;
  Fixture b;
  std::vector<Reply> ra = ApplyAll(&a.applier, EpochScenario());
  std::vector<Reply> rb = ApplyOneByOne(&b.applier, EpochScenario());
  ExpectSameReplies(ra, rb);
  EXPECT_EQ(a.applier.Snapshot(), b.applier.Snapshot());

  ASSERT_EQ(ra.size(), 6u);
  EXPECT_EQ(ra[0].outcome.code, StatusCode::kOk);
  const Outcome stale{StatusCode::kAborted, "",
                      "epoch changed: expected " + std::to_string(kEpoch2) + ", log epoch " +
                          std::to_string(kEpoch1)};
  EXPECT_EQ(ra[1].outcome, stale);
  EXPECT_EQ(ra[2].outcome.code, StatusCode::kOk);
  EXPECT_EQ(ra[3].outcome, (Outcome{StatusCode::kAborted, "",
                                    "epoch changed: expected " + std::to_string(kEpoch1) +
                                        ", log epoch " + std::to_string(kEpoch2)}));
  EXPECT_EQ(ra[4].outcome.code, StatusCode::kOk);
  EXPECT_EQ(ra[5].outcome, stale);
  EXPECT_TRUE(ra[5].duplicate);
  // Rejected commands never reach the machine.
  EXPECT_EQ(a.machine.seen_payloads, std::vector<std::string>({"ok-in-1", "any", "ok-in-2"}));
}

TEST(ApplierTest, RetryIsAnsweredWithTheOriginalResultAndAppliedOnce) {
  Fixture f;
  std::vector<Reply> first = ApplyAll(&f.applier, {MakeEntry(1, {Cmd(9, 1, "inc")})});
  std::vector<Reply> retry =
      ApplyAll(&f.applier, {MakeEntry(2, {Cmd(9, 1, "inc")}), MakeEntry(3, {Cmd(9, 1, "inc")})});
  EXPECT_EQ(f.machine.applied(), 1u);
  ASSERT_EQ(retry.size(), 2u);
  for (const Reply& r : retry) {
    EXPECT_TRUE(r.duplicate);
    EXPECT_EQ(r.outcome, first[0].outcome);
  }
  EXPECT_EQ(retry[1].slot, 3u);
  EXPECT_EQ(first[0].outcome.data, "inc#1@0");
}

TEST(ApplierTest, FailedCommandsAreRememberedToo) {
  Fixture f;
  std::vector<Reply> first = ApplyAll(&f.applier, {MakeEntry(1, {Cmd(9, 1, "bad")})});
  std::vector<Reply> retry = ApplyAll(&f.applier, {MakeEntry(2, {Cmd(9, 1, "bad")})});
  EXPECT_EQ(first[0].outcome.code, StatusCode::kInvalidArgument);
  EXPECT_EQ(retry[0].outcome, first[0].outcome);
  EXPECT_TRUE(retry[0].duplicate);
  EXPECT_EQ(f.machine.seen.size(), 1u);
}

TEST(ApplierTest, CommandsWithoutSessionAreAppliedEveryTime) {
  Fixture f;
  std::vector<Reply> replies =
      ApplyAll(&f.applier, {MakeEntry(1, {Cmd(9, 0, "inc"), Cmd(9, 0, "inc")})});
  EXPECT_EQ(f.machine.applied(), 2u);
  EXPECT_NE(replies[0].outcome, replies[1].outcome);
  EXPECT_FALSE(replies[1].duplicate);
}

TEST(ApplierTest, AcknowledgedCommandsExpireInsteadOfReapplying) {
  Fixture f;
  ApplyAll(&f.applier, {MakeEntry(1, {Cmd(9, 1, "a")}), MakeEntry(2, {Cmd(9, 2, "b", 1)})});
  std::vector<Reply> late = ApplyAll(&f.applier, {MakeEntry(3, {Cmd(9, 1, "a")})});
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].outcome.code, StatusCode::kAborted);
  EXPECT_NE(late[0].outcome.message.find("session expired"), std::string::npos);
  EXPECT_FALSE(late[0].duplicate);
  EXPECT_EQ(f.machine.applied(), 2u);
}

// Issue 12 item 5, through the Applier: client 7 pipelined two commands (both acked_sequence
// 0), its session was evicted by sessions_max, and its retry must not reach the machine again.
TEST(ApplierTest, RetryAfterTheSessionWasEvictedIsExpiredNotAppliedAgain) {
  Fixture f(SessionTable::Limits{.sessions_max = 1, .results_per_session_max = 8});
  ApplyAll(&f.applier,
           {MakeEntry(1, {Cmd(7, 1, "a"), Cmd(7, 2, "b")}), MakeEntry(2, {Cmd(8, 1, "other")})});
  ASSERT_EQ(f.machine.applied(), 3u);
  ASSERT_FALSE(f.applier.sessions().has_session(7));
  std::vector<Reply> retries =
      ApplyAll(&f.applier, {MakeEntry(3, {Cmd(7, 2, "b")}), MakeEntry(4, {Cmd(7, 1, "a")})});
  EXPECT_EQ(f.machine.applied(), 3u) << "a retried command was applied twice";
  ASSERT_EQ(retries.size(), 2u);
  for (const Reply& r : retries) {
    EXPECT_TRUE(IsSessionExpired(r.outcome)) << r.outcome.message;
    EXPECT_FALSE(r.duplicate);
  }
}

TEST(ApplierTest, DuplicateInsideOneBatchGetsTheEarlierResult) {
  Fixture f;
  const std::vector<paxos::Entry> entries = {
      MakeEntry(1, {Cmd(1, 1, "a"), Cmd(1, 1, "a")}),  // duplicate in the same entry
      MakeEntry(2, {Cmd(2, 1, "b"), Cmd(1, 1, "a"), Cmd(1, 2, "c")}),
  };
  std::vector<Reply> replies = ApplyAll(&f.applier, entries);
  EXPECT_EQ(f.machine.batch_sizes, std::vector<size_t>({3}));  // still one machine call
  EXPECT_EQ(f.machine.seen_payloads, std::vector<std::string>({"a", "b", "c"}));
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_EQ(replies[0].outcome.data, "a#1@0");
  EXPECT_FALSE(replies[0].duplicate);
  for (size_t i : {1, 3}) {
    EXPECT_TRUE(replies[i].duplicate) << i;
    EXPECT_EQ(replies[i].outcome, replies[0].outcome) << i;
  }
  EXPECT_EQ(replies[2].outcome.data, "b#2@0");
  EXPECT_EQ(replies[4].outcome.data, "c#3@0");

  Fixture g;
  ExpectSameReplies(replies, ApplyOneByOne(&g.applier, entries));
  EXPECT_EQ(f.applier.Snapshot(), g.applier.Snapshot());
}

// A random workload with retries, acknowledgements, epochs and tiny session limits (so that
// evictions happen mid-batch) must give the same replies and state however it is split into
// Apply calls: replicas batch differently.
std::vector<paxos::Entry> RandomLog(uint64_t seed, size_t entries_count) {
  std::mt19937_64 rng(seed);
  std::vector<paxos::Entry> log;
  uint64_t next_sequence[6] = {1, 1, 1, 1, 1, 1};
  uint64_t epoch_round = 0;
  for (paxos::Slot slot = 1; slot <= entries_count; slot++) {
    uint64_t leader = 0;
    if (rng() % 7 == 0) leader = paxos::Ballot(++epoch_round, 1 + rng() % 3).raw();
    std::vector<paxos::Command> commands;
    for (int n = rng() % 4; n > 0; n--) {
      const uint64_t client = rng() % 6;
      uint64_t& next = next_sequence[client];
      const uint64_t sequence = rng() % 3 == 0 && next > 1 ? 1 + rng() % (next - 1) : next++;
      const uint64_t acked = next > 3 ? rng() % (next - 2) : 0;
      const uint64_t expected =
          rng() % 4 == 0 ? paxos::Ballot(epoch_round + rng() % 2, 1 + rng() % 3).raw() : 0;
      commands.push_back(Cmd(client + 1, client == 5 ? 0 : sequence,
                             "p" + std::to_string(rng() % 100), acked, expected));
    }
    log.push_back(MakeEntry(slot, std::move(commands), leader));
  }
  return log;
}

TEST(ApplierTest, ResultsDoNotDependOnHowEntriesAreGroupedIntoCalls) {
  const SessionTable::Limits limits{.sessions_max = 3, .results_per_session_max = 4};
  for (uint64_t seed = 1; seed <= 20; seed++) {
    const std::vector<paxos::Entry> log = RandomLog(seed, 200);
    Fixture whole(limits);
    Fixture single(limits);
    Fixture chunked(limits);
    std::vector<Reply> a = ApplyAll(&whole.applier, log);
    std::vector<Reply> b = ApplyOneByOne(&single.applier, log);
    std::vector<Reply> c;
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < log.size();) {
      const size_t n = std::min<size_t>(1 + rng() % 10, log.size() - i);
      chunked.applier.Apply({log.begin() + i, log.begin() + i + n}, &c);
      i += n;
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectSameReplies(a, b);
    ExpectSameReplies(a, c);
    EXPECT_EQ(whole.applier.Snapshot(), single.applier.Snapshot());
    EXPECT_EQ(whole.applier.Snapshot(), chunked.applier.Snapshot());
    EXPECT_EQ(whole.machine.applied(), single.machine.applied());
  }
}

TEST(ApplierTest, SnapshotRestoreResumesWithIdenticalBehaviour) {
  const std::vector<paxos::Entry> log = RandomLog(77, 300);
  const SessionTable::Limits limits{.sessions_max = 4, .results_per_session_max = 5};
  Fixture original(limits);
  ApplyAll(&original.applier, {log.begin(), log.begin() + 150});
  const std::string snapshot = original.applier.Snapshot();

  Fixture restored(limits);
  ASSERT_TRUE(restored.applier.Restore(snapshot).ok());
  EXPECT_EQ(restored.applier.applied_below(), original.applier.applied_below());
  EXPECT_EQ(restored.applier.log_epoch(), original.applier.log_epoch());
  EXPECT_TRUE(restored.applier.sessions() == original.applier.sessions());
  EXPECT_EQ(restored.machine.applied(), original.machine.applied());
  EXPECT_EQ(restored.applier.Snapshot(), snapshot);

  const std::vector<paxos::Entry> rest(log.begin() + 150, log.end());
  ExpectSameReplies(ApplyAll(&original.applier, rest), ApplyAll(&restored.applier, rest));
  EXPECT_EQ(original.applier.Snapshot(), restored.applier.Snapshot());
}

TEST(ApplierTest, GarbageRestoreIsRejectedAndChangesNothing) {
  Fixture f;
  ApplyAll(&f.applier, RandomLog(5, 50));
  const std::string good = f.applier.Snapshot();

  Fixture target;
  ApplyAll(&target.applier, {MakeEntry(1, {Cmd(3, 1, "mine")}, kEpoch1)});
  const std::string before = target.applier.Snapshot();
  std::vector<std::string> bad = {"", "garbage", good + "x", good.substr(0, good.size() - 1)};
  for (size_t n = 0; n < good.size(); n += 7) bad.push_back(good.substr(0, n));
  std::string zero_applied = good;
  for (int i = 5; i < 13; i++) zero_applied[i] = 0;  // applied_below follows magic and version
  bad.push_back(zero_applied);
  std::mt19937_64 rng(99);
  for (int i = 0; i < 200; i++) {
    std::string noise(rng() % 64, '\0');
    for (char& c : noise) c = static_cast<char>(rng());
    bad.push_back(noise);
  }
  for (const std::string& input : bad) {
    EXPECT_FALSE(target.applier.Restore(input).ok()) << "size " << input.size();
    EXPECT_EQ(target.applier.Snapshot(), before);
  }
  ASSERT_TRUE(target.applier.Restore(good).ok());  // the control case
  EXPECT_EQ(target.applier.Snapshot(), good);
}

// Hands out at most a few bytes per Read, so every decoder loop meets short reads.
class TrickleReader final : public SnapshotReader {
 public:
  TrickleReader(std::string data, uint64_t seed) : data_(std::move(data)), rng_(seed) {}
  Status Read(size_t bytes_max, std::string* out) override {
    const size_t n = std::min({bytes_max, data_.size() - offset_, size_t{1} + rng_() % 5});
    out->assign(data_, offset_, n);
    offset_ += n;
    return Status::Ok();
  }

 private:
  const std::string data_;
  size_t offset_ = 0;
  std::mt19937_64 rng_;
};

// A writer that fails after `ok_writes` calls, like a full disk.
class FailingWriter final : public SnapshotWriter {
 public:
  explicit FailingWriter(int ok_writes) : ok_writes_(ok_writes) {}
  Status Write(std::string_view) override {
    if (ok_writes_-- > 0) return Status::Ok();
    return Status(StatusCode::kNoSpace, "disk full");
  }

 private:
  int ok_writes_;
};

std::string WriteToString(PendingSnapshot* pending) {
  StringSnapshotWriter writer;
  EXPECT_TRUE(pending->WriteTo(&writer).ok());
  return std::move(writer.data());
}

TEST(ApplierSnapshotTest, PendingSnapshotIsTheStateAtBeginSnapshot) {
  const std::vector<paxos::Entry> log = RandomLog(11, 200);
  Fixture f;
  f.applier.set_configuration(Conf({{1, "10.0.0.1:7000"}, {2, "10.0.0.2:7000"}}));
  ApplyAll(&f.applier, {log.begin(), log.begin() + 120});
  const std::string at_begin = f.applier.Snapshot();
  const uint64_t applied_at_begin = f.machine.applied();
  std::unique_ptr<PendingSnapshot> pending = f.applier.BeginSnapshot();
  EXPECT_EQ(pending->applied_below(), 121u);
  EXPECT_EQ(pending->log_epoch(), f.applier.log_epoch());

  // The Applier moves on (state, sessions, membership) before the snapshot is written.
  ApplyAll(&f.applier, {log.begin() + 120, log.end()});
  f.applier.set_configuration(Conf({{3, "10.0.0.3:7000"}}));
  ASSERT_NE(f.machine.applied(), applied_at_begin);
  EXPECT_EQ(WriteToString(pending.get()), at_begin);

  Fixture restored;
  ASSERT_TRUE(restored.applier.Restore(at_begin).ok());
  EXPECT_EQ(restored.applier.applied_below(), 121u);
  EXPECT_EQ(restored.machine.applied(), applied_at_begin);
  EXPECT_EQ(restored.applier.configuration(), Conf({{1, "10.0.0.1:7000"}, {2, "10.0.0.2:7000"}}));
}

TEST(ApplierSnapshotTest, RestoreFromAStreamOfShortReadsRoundTrips) {
  const std::vector<paxos::Entry> log = RandomLog(12, 300);
  const SessionTable::Limits limits{.sessions_max = 4, .results_per_session_max = 5};
  Fixture original(limits);
  original.applier.set_configuration(Conf({{7, "a:1"}}));
  ApplyAll(&original.applier, {log.begin(), log.begin() + 150});
  const std::string snapshot = WriteToString(original.applier.BeginSnapshot().get());

  Fixture restored(limits);
  TrickleReader reader(snapshot, 5);
  ASSERT_TRUE(restored.applier.RestoreFrom(&reader).ok());
  EXPECT_EQ(restored.applier.applied_below(), original.applier.applied_below());
  EXPECT_EQ(restored.applier.log_epoch(), original.applier.log_epoch());
  EXPECT_TRUE(restored.applier.sessions() == original.applier.sessions());
  EXPECT_EQ(restored.applier.configuration(), original.applier.configuration());
  const std::vector<paxos::Entry> rest(log.begin() + 150, log.end());
  ExpectSameReplies(ApplyAll(&original.applier, rest), ApplyAll(&restored.applier, rest));
  EXPECT_EQ(original.applier.Snapshot(), restored.applier.Snapshot());
}

TEST(ApplierSnapshotTest, DamagedStreamsAreCorruptionAndLeaveTheApplierAlone) {
  Fixture f;
  f.applier.set_configuration(Conf({{1, "x:1"}}));
  ApplyAll(&f.applier, RandomLog(13, 60));
  const std::string good = f.applier.Snapshot();
  // Offsets of the header: magic 0, version 4, applied_below 5, epoch 13, member count 21.
  std::vector<std::string> bad;
  for (size_t n = 0; n < good.size(); n++) bad.push_back(good.substr(0, n));  // every truncation
  bad.push_back(good + "x");
  std::string wrong_version = good;
  wrong_version[4] = 1;
  bad.push_back(wrong_version);
  std::string many_members = good;
  many_members[24] = '\x7f';  // ~2 billion members: refused before anything is read for them
  bad.push_back(many_members);
  std::string duplicate_member = good.substr(0, 21);
  duplicate_member += std::string("\x02\0\0\0", 4);
  for (int i = 0; i < 2; i++) duplicate_member += std::string("\x01\0\0\0\0\0\0\0\0\0\0\0", 12);
  bad.push_back(duplicate_member + good.substr(21 + 4 + 8 + 4 + 3));

  Fixture target;
  ApplyAll(&target.applier, {MakeEntry(1, {Cmd(3, 1, "mine")}, kEpoch1)});
  const std::string before = target.applier.Snapshot();
  for (const std::string& input : bad) {
    TrickleReader reader(input, input.size());
    EXPECT_EQ(target.applier.RestoreFrom(&reader).code(), StatusCode::kCorruption)
        << "size " << input.size();
    EXPECT_EQ(target.applier.Snapshot(), before);
  }
  // A session table length of 4 GiB - 1 in a short stream is "truncated", not an allocation.
  std::string huge_sessions = good.substr(0, 21 + 4 + 8 + 4 + 3);
  huge_sessions += std::string(4, '\xff');
  StringSnapshotReader reader(huge_sessions);
  EXPECT_EQ(target.applier.RestoreFrom(&reader).code(), StatusCode::kCorruption);
}

TEST(ApplierSnapshotTest, WriterErrorsAreReturned) {
  Fixture f;
  ApplyAll(&f.applier, RandomLog(14, 20));
  for (int ok_writes = 0; ok_writes < 2; ok_writes++) {
    FailingWriter writer(ok_writes);
    EXPECT_EQ(f.applier.BeginSnapshot()->WriteTo(&writer).code(), StatusCode::kNoSpace);
  }
}

// Overrides only the streaming pair; writes its state in many small pieces.
class StreamingMachine : public StateMachine {
 public:
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override {
    for (const AppliedCommand& c : batch) {
      values_.emplace_back(c.payload);
      outcomes->push_back(Outcome{});
    }
  }
  Outcome Query(std::string_view) const override { return Outcome{}; }
  std::unique_ptr<SnapshotView> TakeSnapshotView() override {
    class View final : public SnapshotView {
     public:
      explicit View(std::vector<std::string> values) : values_(std::move(values)) {}
      Status WriteTo(SnapshotWriter* out) override {
        for (const std::string& v : values_) {
          ByteWriter w;
          w.PutBytes(v);
          Status status = out->Write(w.data());
          if (!status.ok()) return status;
        }
        return Status::Ok();
      }

     private:
      const std::vector<std::string> values_;
    };
    return std::make_unique<View>(values_);
  }
  Status RestoreFrom(SnapshotReader* in) override {
    std::vector<std::string> values;
    std::string length_bytes;
    std::string rest;
    for (size_t i = 0; i < stop_after_; i++) {
      Status status = in->Read(4, &length_bytes);
      if (!status.ok()) return status;
      if (length_bytes.empty()) break;  // the end, between two values
      status = in->ReadExact(4 - length_bytes.size(), &rest);
      if (!status.ok()) return status;
      length_bytes += rest;
      ByteReader r(length_bytes);
      uint32_t length = 0;
      CHECK(r.GetU32(&length));
      status = in->ReadExact(length, &rest);
      if (!status.ok()) return status;
      values.push_back(rest);
    }
    values_ = std::move(values);
    return Status::Ok();
  }
  // A buggy machine that stops reading before the end of its stream.
  void set_stop_after(size_t values) { stop_after_ = values; }
  const std::vector<std::string>& values() const { return values_; }

 private:
  std::vector<std::string> values_;
  size_t stop_after_ = SIZE_MAX;
};

TEST(ApplierSnapshotTest, AStreamingMachineWorksThroughTheStringPairToo) {
  Applier original(std::make_unique<StreamingMachine>());
  std::vector<paxos::Entry> log;
  for (paxos::Slot s = 1; s <= 50; s++) {
    log.push_back(MakeEntry(s, {Cmd(0, 0, std::string(s * 3, 'a' + s % 26))}));
  }
  ApplyAll(&original, log);
  const std::string snapshot = original.Snapshot();

  Applier restored(std::make_unique<StreamingMachine>());
  ASSERT_TRUE(restored.Restore(snapshot).ok());
  EXPECT_EQ(static_cast<StreamingMachine&>(restored.machine()).values(),
            static_cast<StreamingMachine&>(original.machine()).values());
  EXPECT_EQ(restored.Snapshot(), snapshot);

  // A machine that leaves bytes unread has not restored what was written.
  Applier sloppy(std::make_unique<StreamingMachine>());
  static_cast<StreamingMachine&>(sloppy.machine()).set_stop_after(10);
  EXPECT_EQ(sloppy.Restore(snapshot).code(), StatusCode::kCorruption);
  EXPECT_EQ(sloppy.applied_below(), 1u);
}

// Overrides neither pair.
class NoSnapshotMachine : public StateMachine {
 public:
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override {
    outcomes->resize(outcomes->size() + batch.size());
  }
  Outcome Query(std::string_view) const override { return Outcome{}; }
};

TEST(ApplierSnapshotDeathTest, AMachineWithoutSnapshotsSaysWhatToOverride) {
  Applier applier(std::make_unique<NoSnapshotMachine>());
  EXPECT_DEATH(applier.BeginSnapshot(), "override Snapshot\\(\\) or TakeSnapshotView\\(\\)");
  Fixture f;
  const std::string snapshot = f.applier.Snapshot();
  EXPECT_EQ(applier.Restore(snapshot).code(), StatusCode::kFailedPrecondition);
}

// The log behind kOldFormatSnapshot, applied with room for two sessions: client 7's session is
// evicted at slot 4.
std::vector<paxos::Entry> OldFormatLog() {
  return {MakeEntry(1, {}, kEpoch1), MakeEntry(2, {Cmd(7, 1, "a"), Cmd(7, 2, "b")}),
          MakeEntry(3, {Cmd(8, 1, "c")}), MakeEntry(4, {Cmd(9, 1, "d")}),
          MakeEntry(5, {Cmd(8, 2, "e", 1)})};
}

// Applier::Snapshot() of OldFormatLog() with members {1: "a:1"}, as written before session
// tombstones existed (session table format version 1, which never records an eviction).
constexpr std::string_view kOldFormatSnapshot =
    "424c4150020600000000000000010001000000000001000000010000000000000003000000613a31"
    "7d0000000102000000000000000800000000000000010000000000000005000000000000000100000000000000"
    "020000000000000000090000006523354036353533370000000009000000000000000000000000000000040000"
    "000000000001000000000000000100000000000000000900000064233440363535333700000000050000000000"
    "0000";

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(ApplierSnapshotTest, ASnapshotFromBeforeTombstonesStillRestores) {
  const SessionTable::Limits limits{.sessions_max = 2, .results_per_session_max = 8};
  Fixture old(limits);
  ASSERT_TRUE(old.applier.Restore(FromHex(kOldFormatSnapshot)).ok());
  EXPECT_EQ(old.applier.applied_below(), 6u);
  EXPECT_EQ(old.applier.log_epoch(), kEpoch1);
  EXPECT_EQ(old.applier.configuration(), Conf({{1, "a:1"}}));
  EXPECT_TRUE(old.applier.sessions().has_session(8));
  EXPECT_TRUE(old.applier.sessions().has_session(9));
  EXPECT_FALSE(old.applier.sessions().has_session(7));
  EXPECT_FALSE(old.applier.sessions().has_tombstone(7));  // the old format could not say
  EXPECT_EQ(old.machine.applied(), 5u);

  // The same log applied now: the same sessions and results, plus client 7's tombstone.
  Fixture now(limits);
  now.applier.set_configuration(Conf({{1, "a:1"}}));
  ApplyAll(&now.applier, OldFormatLog());
  EXPECT_TRUE(now.applier.sessions().has_tombstone(7));
  const std::vector<paxos::Entry> next = {
      MakeEntry(6, {Cmd(9, 1, "d"), Cmd(8, 2, "e", 1), Cmd(8, 3, "f", 2)})};
  std::vector<Reply> from_old = ApplyAll(&old.applier, next);
  ExpectSameReplies(from_old, ApplyAll(&now.applier, next));
  EXPECT_TRUE(from_old[0].duplicate);
  EXPECT_TRUE(from_old[1].duplicate);
  EXPECT_EQ(from_old[0].outcome.data, "d#4@" + std::to_string(kEpoch1));

  // Restored from version 1 and snapshotted again: a version 1 session table still, since there
  // is no tombstone to write; a table with one is written as version 2 and read back equal.
  Fixture again(limits);
  ASSERT_TRUE(again.applier.Restore(old.applier.Snapshot()).ok());
  EXPECT_TRUE(again.applier.sessions() == old.applier.sessions());
  Fixture with_tombstone(limits);
  ASSERT_TRUE(with_tombstone.applier.Restore(now.applier.Snapshot()).ok());
  EXPECT_TRUE(with_tombstone.applier.sessions() == now.applier.sessions());
  EXPECT_TRUE(with_tombstone.applier.sessions().has_tombstone(7));
  EXPECT_NE(old.applier.Snapshot(), now.applier.Snapshot());
}

TEST(ApplierSnapshotTest, RestoreRefusesATombstoneAtOrAboveAppliedBelow) {
  const SessionTable::Limits limits{.sessions_max = 1, .results_per_session_max = 8};
  // Client 7's tombstone is made at slot 3 and refreshed by its retry at slot 4.
  SessionTable sessions(limits);
  for (auto [client, slot] : {std::pair<uint64_t, paxos::Slot>{7, 2}, {8, 3}, {7, 4}}) {
    SessionTable::Admission a = sessions.Admit(Cmd(client, 1, "x"), slot);
    if (a.ticket != 0) sessions.Record(a.ticket, Outcome{});
  }
  ASSERT_TRUE(sessions.has_tombstone(7));
  ASSERT_EQ(sessions.last_active_slot_max(), 4u);
  // An applier snapshot at applied_below 4 (wrongly) holding that table: the tombstone's slot is
  // not below applied_below.
  Fixture f(limits);
  ApplyAll(&f.applier, {MakeEntry(1, {}), MakeEntry(2, {}), MakeEntry(3, {})});
  std::string snapshot = f.applier.Snapshot();
  const std::string empty_table = SessionTable(limits).Serialize();
  const size_t at = snapshot.find(empty_table);
  ASSERT_NE(at, std::string::npos);
  const std::string table = sessions.Serialize();
  ByteWriter length;
  length.PutU32(static_cast<uint32_t>(table.size()));
  snapshot = snapshot.substr(0, at - 4) + length.Release() + table +
             snapshot.substr(at + empty_table.size());
  Fixture target(limits);
  Status status = target.applier.Restore(snapshot);
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("at or above applied_below"), std::string::npos)
      << status.ToString();
}

}  // namespace
}  // namespace ballot
