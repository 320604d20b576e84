// The Proposer (paxos/proposer.h): phase-1 recovery, batching, the window, the pending queue,
// counting acceptances and retries.
#include "paxos/proposer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "paxos/options.h"
#include "paxos/types.h"

namespace ballot::paxos {
namespace {

Options MakeOptions(size_t members) {
  Options o;
  o.id = 1;
  for (NodeId n = 1; n <= members; ++n) o.members.push_back(n);
  return o;
}

Command Cmd(uint64_t seq, std::string payload = "p") {
  return Command{42, seq, 0, 0, 0, std::move(payload)};
}

Value Cmds(Ballot epoch, std::initializer_list<const char*> payloads) {
  Value v{epoch, false, {}};
  uint64_t seq = 0;
  for (const char* p : payloads) v.commands.push_back(Cmd(++seq, p));
  return v;
}

std::vector<Slot> Slots(const std::vector<Entry>& entries) {
  std::vector<Slot> out;
  for (const Entry& e : entries) out.push_back(e.slot);
  return out;
}

// Runs phase 1 at `ballot` from `from` with empty promises from nodes 1..quorum.
std::vector<Entry> RecoverEmpty(Proposer* p, const Options& o, Ballot ballot, Slot from,
                                uint64_t now = 0) {
  p->StartPhase1(ballot, from);
  bool done = false;
  for (NodeId n = 1; n <= o.members.size() / 2 + 1; ++n) done = p->AddPromise(n, {});
  EXPECT_TRUE(done);
  return p->RecoverNext(now);
}

TEST(ProposerRecoveryTest, ReproposesHighestBallotValuesFillsGapsAndAppendsLeaderStart) {
  Options o = MakeOptions(5);  // quorum 3
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  const Ballot b(9, 1);
  p.StartPhase1(b, /*from=*/3);
  EXPECT_EQ(p.ballot(), b);

  const Value a = Cmds(Ballot(2, 2), {"a"});
  const Value bb = Cmds(Ballot(4, 4), {"b"});
  const Value x = Cmds(Ballot(3, 3), {"x"});
  const Value c = Cmds(Ballot(3, 3), {"c"});
  const Value y = Cmds(Ballot(2, 2), {"y"});
  const Value d = Cmds(Ballot(1, 5), {"d"});
  const Value below = Cmds(Ballot(8, 8), {"below"});
  // Slot 3 is reported three times at different ballots; slot 5 twice; slot 4 never.
  EXPECT_FALSE(
      p.AddPromise(2, {{2, Ballot(8, 8), below}, {3, Ballot(2, 2), a}, {5, Ballot(3, 3), c}}));
  EXPECT_FALSE(p.AddPromise(3, {{3, Ballot(4, 4), bb}, {6, Ballot(1, 5), d}}));
  EXPECT_TRUE(p.AddPromise(4, {{3, Ballot(3, 3), x}, {5, Ballot(2, 2), y}}));

  std::vector<Entry> rec = p.RecoverNext(/*now=*/0);
  ASSERT_EQ(Slots(rec), std::vector<Slot>({3, 4, 5, 6, 7}))
      << "slot 2 is below the phase-1 start and must be ignored";
  for (const Entry& e : rec) EXPECT_EQ(e.ballot, b) << "slot " << e.slot;
  EXPECT_EQ(rec[0].value, bb) << "slot 3: the value accepted at the highest ballot (4.4)";
  EXPECT_TRUE(rec[1].value.IsNoop()) << "slot 4: a gap becomes a no-op";
  EXPECT_EQ(rec[1].value.epoch, b);
  EXPECT_FALSE(rec[1].value.leader_start);
  EXPECT_EQ(rec[2].value, c) << "slot 5: 3.3 beats 2.2";
  EXPECT_EQ(rec[3].value, d);
  EXPECT_TRUE(rec[4].value.leader_start);
  EXPECT_TRUE(rec[4].value.IsNoop());
  EXPECT_EQ(rec[4].value.epoch, b);
  EXPECT_EQ(p.in_flight(), 5u) << "recovery slots are in flight";
}

TEST(ProposerRecoveryTest, OrderOfPromisesDoesNotChangeTheOutcome) {
  Options o = MakeOptions(3);
  const Value low = Cmds(Ballot(1, 2), {"low"});
  const Value high = Cmds(Ballot(2, 3), {"high"});
  for (bool high_first : {false, true}) {
    const Configuration config = Configuration::AllVoters(o.members);
    Proposer p(o, &config);
    p.StartPhase1(Ballot(5, 1), 1);
    std::vector<Entry> lo = {{1, Ballot(1, 2), low}};
    std::vector<Entry> hi = {{1, Ballot(2, 3), high}};
    EXPECT_FALSE(p.AddPromise(2, high_first ? hi : lo));
    EXPECT_TRUE(p.AddPromise(3, high_first ? lo : hi));
    std::vector<Entry> rec = p.RecoverNext(0);
    ASSERT_EQ(rec.size(), 2u);
    EXPECT_EQ(rec[0].value, high) << "high_first=" << high_first;
  }
}

TEST(ProposerRecoveryTest, ReproposedValueIsKeptAsIsIncludingAnOldLeaderStart) {
  Options o = MakeOptions(3);
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  const Value old_start{Ballot(2, 2), true, {}};
  p.StartPhase1(Ballot(3, 1), 1);
  EXPECT_FALSE(p.AddPromise(1, {{1, Ballot(2, 2), old_start}}));
  EXPECT_TRUE(p.AddPromise(2, {}));
  std::vector<Entry> rec = p.RecoverNext(0);
  ASSERT_EQ(rec.size(), 2u);
  EXPECT_EQ(rec[0].value, old_start) << "the old epoch's marker stays the old epoch's";
  EXPECT_EQ(rec[0].ballot, Ballot(3, 1));
  EXPECT_EQ(rec[1].value, (Value{Ballot(3, 1), true, {}}));
}

TEST(ProposerRecoveryTest, NothingReportedGivesOnlyTheLeaderStartAtTheStartSlot) {
  Options o = MakeOptions(3);
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  p.StartPhase1(Ballot(1, 1), 7);
  EXPECT_FALSE(p.AddPromise(1, {{6, Ballot(1, 3), Cmds(Ballot(1, 3), {"old"})}}));
  EXPECT_TRUE(p.AddPromise(3, {}));
  std::vector<Entry> rec = p.RecoverNext(0);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].slot, 7u);
  EXPECT_TRUE(rec[0].value.leader_start);
}

TEST(ProposerRecoveryTest, DuplicatePromisesDoNotCountTwice) {
  Options o = MakeOptions(5);  // quorum 3
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  p.StartPhase1(Ballot(2, 1), 1);
  EXPECT_FALSE(p.AddPromise(2, {}));
  EXPECT_FALSE(p.AddPromise(2, {}));
  EXPECT_FALSE(p.AddPromise(2, {}));
  EXPECT_FALSE(p.AddPromise(3, {}));
  EXPECT_FALSE(p.AddPromise(3, {}));
  EXPECT_TRUE(p.AddPromise(4, {})) << "the third distinct node completes the majority";
  EXPECT_FALSE(p.AddPromise(5, {})) << "a majority is reported once";
  EXPECT_FALSE(p.AddPromise(4, {}));
}

TEST(ProposerRecoveryTest, APromiseAfterTheQuorumStillReportsUntilTheStageIsProposed) {
  Options o = MakeOptions(3);
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  p.StartPhase1(Ballot(4, 1), 1);
  EXPECT_FALSE(p.AddPromise(2, {}));
  EXPECT_TRUE(p.AddPromise(1, {}));
  // A late promise does not complete the quorum again, but what it reports counts: any superset
  // of a majority reports the chosen value with the highest ballot, so more reports stay safe
  // (and a later recovery stage needs the new voters' reports merged the same way).
  EXPECT_FALSE(p.AddPromise(3, {{1, Ballot(3, 3), Cmds(Ballot(3, 3), {"late"})}}));
  EXPECT_FALSE(p.AddPromise(3, {})) << "a duplicate";
  std::vector<Entry> rec = p.RecoverNext(0);
  ASSERT_EQ(rec.size(), 2u);
  EXPECT_EQ(rec[0].value.commands.size(), 1u);
  EXPECT_TRUE(rec[1].value.leader_start);
  EXPECT_FALSE(p.AddPromise(3, {{2, Ballot(3, 3), Cmds(Ballot(3, 3), {"after"})}}))
      << "recovery is over";
}

TEST(ProposerRecoveryTest, ANewPhase1ForgetsThePreviousOne) {
  Options o = MakeOptions(3);
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  p.StartPhase1(Ballot(1, 1), 1);
  EXPECT_FALSE(p.AddPromise(2, {{1, Ballot(1, 2), Cmds(Ballot(1, 2), {"stale"})}}));
  p.StartPhase1(Ballot(2, 1), 1);
  EXPECT_FALSE(p.AddPromise(2, {})) << "promises for the old ballot do not count";
  EXPECT_TRUE(p.AddPromise(3, {}));
  std::vector<Entry> rec = p.RecoverNext(0);
  ASSERT_EQ(rec.size(), 1u) << "entries reported in the old phase 1 are forgotten";
  EXPECT_EQ(rec[0].ballot, Ballot(2, 1));
}

TEST(ProposerBatchTest, FirstBatchGoesRightAfterTheLeaderStart) {
  Options o = MakeOptions(3);
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  std::vector<Entry> rec = RecoverEmpty(&p, o, Ballot(1, 1), 4);
  ASSERT_EQ(rec.back().slot, 4u);
  ASSERT_EQ(p.Enqueue(Cmd(1)), Proposer::EnqueueResult::kOk);
  std::vector<Entry> b = p.ProposeBatches(/*chosen_below=*/4, 0);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].slot, 5u);
  EXPECT_EQ(b[0].ballot, Ballot(1, 1));
  EXPECT_EQ(b[0].value.epoch, Ballot(1, 1));
  EXPECT_FALSE(b[0].value.leader_start);
  EXPECT_EQ(b[0].value.commands, std::vector<Command>({Cmd(1)}));
}

TEST(ProposerBatchTest, BatchesRespectBatchCommandsMax) {
  Options o = MakeOptions(3);
  o.batch_commands_max = 3;
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);
  for (uint64_t i = 1; i <= 7; ++i) ASSERT_EQ(p.Enqueue(Cmd(i)), Proposer::EnqueueResult::kOk);
  std::vector<Entry> b = p.ProposeBatches(1, 0);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(Slots(b), std::vector<Slot>({2, 3, 4}));
  EXPECT_EQ(b[0].value.commands.size(), 3u);
  EXPECT_EQ(b[1].value.commands.size(), 3u);
  EXPECT_EQ(b[2].value.commands.size(), 1u);
  // Commands keep their arrival order across batches.
  uint64_t expect = 1;
  for (const Entry& e : b) {
    for (const Command& c : e.value.commands) EXPECT_EQ(c.sequence, expect++);
  }
  EXPECT_EQ(p.pending(), 0u);
}

TEST(ProposerBatchTest, BatchesRespectBatchBytesMax) {
  Options o = MakeOptions(3);
  o.batch_bytes_max = 10;
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);
  for (uint64_t i = 1; i <= 5; ++i)
    ASSERT_EQ(p.Enqueue(Cmd(i, "abcd")), Proposer::EnqueueResult::kOk);
  std::vector<Entry> b = p.ProposeBatches(1, 0);
  ASSERT_EQ(b.size(), 3u);
  for (const Entry& e : b) {
    size_t bytes = 0;
    for (const Command& c : e.value.commands) bytes += c.payload.size();
    EXPECT_LE(bytes, o.batch_bytes_max) << "slot " << e.slot;
  }
  EXPECT_EQ(b[0].value.commands.size(), 2u);
  EXPECT_EQ(b[1].value.commands.size(), 2u);
  EXPECT_EQ(b[2].value.commands.size(), 1u);
}

TEST(ProposerBatchTest, AnOversizedCommandGetsASlotOfItsOwn) {
  Options o = MakeOptions(3);
  o.batch_bytes_max = 10;
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);
  ASSERT_EQ(p.Enqueue(Cmd(1, "ab")), Proposer::EnqueueResult::kOk);
  ASSERT_EQ(p.Enqueue(Cmd(2, std::string(25, 'x'))), Proposer::EnqueueResult::kOk);
  ASSERT_EQ(p.Enqueue(Cmd(3, "cd")), Proposer::EnqueueResult::kOk);
  std::vector<Entry> b = p.ProposeBatches(1, 0);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].value.commands, std::vector<Command>({Cmd(1, "ab")}));
  EXPECT_EQ(b[1].value.commands, std::vector<Command>({Cmd(2, std::string(25, 'x'))}));
  EXPECT_EQ(b[2].value.commands, std::vector<Command>({Cmd(3, "cd")}));
}

TEST(ProposerWindowTest, WindowBoundsSlotsInFlight) {
  Options o = MakeOptions(3);
  o.window_slots_max = 3;
  o.batch_commands_max = 1;
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);  // slot 1 (leader_start) is in flight
  for (uint64_t i = 1; i <= 10; ++i) ASSERT_EQ(p.Enqueue(Cmd(i)), Proposer::EnqueueResult::kOk);
  EXPECT_TRUE(p.CanPropose(1));
  std::vector<Entry> b = p.ProposeBatches(/*chosen_below=*/1, 0);
  EXPECT_EQ(Slots(b), std::vector<Slot>({2, 3})) << "slots 1..3 fill a window of 3";
  EXPECT_FALSE(p.CanPropose(1));
  EXPECT_TRUE(p.ProposeBatches(1, 0).empty());
  // Slots 1 and 2 chosen: the window slides by two.
  EXPECT_TRUE(p.CanPropose(3));
  b = p.ProposeBatches(/*chosen_below=*/3, 0);
  EXPECT_EQ(Slots(b), std::vector<Slot>({4, 5}));
  EXPECT_EQ(p.pending(), 6u);
}

TEST(ProposerWindowTest, CannotProposeWithNothingQueued) {
  Options o = MakeOptions(3);
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);
  EXPECT_FALSE(p.CanPropose(2));
  EXPECT_TRUE(p.ProposeBatches(2, 0).empty());
}

TEST(ProposerQueueTest, EnqueueReturnsOverloadedAtPendingCommandsMax) {
  Options o = MakeOptions(3);
  o.pending_commands_max = 4;
  o.batch_commands_max = 3;
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);
  for (uint64_t i = 1; i <= 4; ++i) ASSERT_EQ(p.Enqueue(Cmd(i)), Proposer::EnqueueResult::kOk);
  EXPECT_EQ(p.Enqueue(Cmd(5)), Proposer::EnqueueResult::kOverloaded);
  EXPECT_EQ(p.pending(), 4u) << "a refused command is not queued";
  ASSERT_EQ(p.ProposeBatches(1, 0).size(), 2u);
  EXPECT_EQ(p.pending(), 0u);
  EXPECT_EQ(p.Enqueue(Cmd(5)), Proposer::EnqueueResult::kOk) << "room again once proposed";
}

TEST(ProposerAcceptedTest, ReportsASlotChosenExactlyOnceAtTheQuorum) {
  Options o = MakeOptions(5);  // quorum 3
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);  // slot 1 in flight
  ASSERT_EQ(p.Enqueue(Cmd(1)), Proposer::EnqueueResult::kOk);
  ASSERT_EQ(p.ProposeBatches(1, 0).size(), 1u);  // slot 2
  EXPECT_TRUE(p.AddAccepted(1, {1, 2}).empty());
  EXPECT_TRUE(p.AddAccepted(1, {1, 2}).empty()) << "a duplicate ack does not count";
  EXPECT_TRUE(p.AddAccepted(2, {2}).empty());
  EXPECT_EQ(p.AddAccepted(3, {1, 2, 99}), std::vector<Slot>({2})) << "2 has three acks";
  EXPECT_EQ(p.AddAccepted(2, {1}), std::vector<Slot>({1}));
  EXPECT_TRUE(p.AddAccepted(4, {1, 2}).empty()) << "each slot is reported chosen once";
  EXPECT_TRUE(p.AddAccepted(5, {1, 2}).empty());
  EXPECT_EQ(p.in_flight(), 0u);
}

TEST(ProposerRetryTest, CollectsUnackedEntriesPerPeerAfterRetryTicks) {
  Options o = MakeOptions(3);
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  std::vector<Entry> rec = RecoverEmpty(&p, o, Ballot(1, 1), 1, /*now=*/10);
  ASSERT_EQ(rec.size(), 1u);
  ASSERT_EQ(p.Enqueue(Cmd(1)), Proposer::EnqueueResult::kOk);
  std::vector<Entry> b = p.ProposeBatches(1, /*now=*/11);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(p.AddAccepted(1, {1, 2}).empty());
  EXPECT_TRUE(p.AddAccepted(3, {}).empty());

  EXPECT_TRUE(p.CollectRetries(/*now=*/12, /*retry_ticks=*/3).empty()) << "too early";
  auto r = p.CollectRetries(/*now=*/13, 3);  // slot 1 (sent at 10) is due, slot 2 is not
  EXPECT_EQ(r.count(1), 0u) << "node 1 already accepted";
  ASSERT_EQ(r.count(2), 1u);
  ASSERT_EQ(r.count(3), 1u);
  EXPECT_EQ(r[2], rec);
  EXPECT_EQ(r[3], rec);
  r = p.CollectRetries(/*now=*/14, 3);
  ASSERT_EQ(r.count(2), 1u);
  EXPECT_EQ(r[2], b) << "slot 2 (sent at 11) is due; slot 1 counts as resent at 13";
  EXPECT_TRUE(p.CollectRetries(/*now=*/15, 3).empty());
  r = p.CollectRetries(/*now=*/16, 3);
  EXPECT_EQ(Slots(r[2]), std::vector<Slot>({1}));
  // Once chosen, a slot is not retried.
  EXPECT_EQ(p.AddAccepted(2, {1, 2}), std::vector<Slot>({1, 2}));
  EXPECT_TRUE(p.CollectRetries(/*now=*/100, 3).empty());
}

TEST(ProposerRetryTest, RetriesPerPeerAreBoundedByAcceptEntriesMax) {
  Options o = MakeOptions(3);
  o.accept_entries_max = 2;
  o.batch_commands_max = 1;
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);
  for (uint64_t i = 1; i <= 4; ++i) ASSERT_EQ(p.Enqueue(Cmd(i)), Proposer::EnqueueResult::kOk);
  ASSERT_EQ(p.ProposeBatches(1, 0).size(), 4u);  // 5 slots in flight
  auto r = p.CollectRetries(/*now=*/5, 1);
  for (NodeId n : {1u, 2u, 3u}) {
    ASSERT_EQ(r.count(n), 1u);
    EXPECT_EQ(Slots(r[n]), std::vector<Slot>({1, 2})) << "node " << n;
  }
}

TEST(ProposerResetTest, ResetReturnsQueuedCommandsAndForgetsInFlight) {
  Options o = MakeOptions(3);
  o.window_slots_max = 2;
  o.batch_commands_max = 1;
  const Configuration config = Configuration::AllVoters(o.members);
  Proposer p(o, &config);
  RecoverEmpty(&p, o, Ballot(1, 1), 1);
  for (uint64_t i = 1; i <= 4; ++i) ASSERT_EQ(p.Enqueue(Cmd(i)), Proposer::EnqueueResult::kOk);
  ASSERT_EQ(p.ProposeBatches(1, 0).size(), 1u);  // command 1 at slot 2
  EXPECT_EQ(p.pending(), 3u);
  std::vector<Command> dropped = p.Reset();
  EXPECT_EQ(dropped, std::vector<Command>({Cmd(2), Cmd(3), Cmd(4)}))
      << "only commands never given a slot are returned, in order";
  EXPECT_EQ(p.pending(), 0u);
  EXPECT_EQ(p.in_flight(), 0u);
  EXPECT_TRUE(p.AddAccepted(2, {1, 2}).empty());
  EXPECT_TRUE(p.AddAccepted(3, {1, 2}).empty());
  EXPECT_TRUE(p.CollectRetries(100, 1).empty());
  EXPECT_TRUE(p.Reset().empty());
}

}  // namespace
}  // namespace ballot::paxos
