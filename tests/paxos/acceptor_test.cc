// The Acceptor's rules (paxos/acceptor.h), one test per rule.
#include "paxos/acceptor.h"

#include <gtest/gtest.h>

#include "paxos/slot_log.h"
#include "paxos/types.h"

namespace ballot::paxos {
namespace {

using Verdict = Acceptor::Verdict;

constexpr uint64_t kLeaseTicks = 6;
// Tick at which tests that do not care about the restart lease start: it has run out.
constexpr uint64_t kAfterRestartLease = kLeaseTicks;

Value Cmds(Ballot epoch, std::initializer_list<const char*> payloads) {
  Value v{epoch, false, {}};
  uint64_t seq = 0;
  for (const char* p : payloads) v.commands.push_back(Command{7, ++seq, 0, 0, 0, p});
  return v;
}

class AcceptorTest : public ::testing::Test {
 protected:
  SlotLog log_;
  Acceptor acceptor_{&log_, Ballot(), kLeaseTicks, /*now=*/0};
};

TEST_F(AcceptorTest, PromisesEqualOrHigherBallotsAndRefusesLowerOnes) {
  const uint64_t now = kAfterRestartLease;
  EXPECT_EQ(acceptor_.Prepare(Ballot(2, 1), now), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(2, 1));
  // The same ballot again (a duplicate Prepare) is fine and changes nothing.
  EXPECT_EQ(acceptor_.Prepare(Ballot(2, 1), now), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(2, 1));
  // Lower round, and same round with a lower node id, are both lower ballots.
  EXPECT_EQ(acceptor_.Prepare(Ballot(1, 3), now), Verdict::kStaleBallot);
  EXPECT_EQ(acceptor_.Prepare(Ballot(2, 0), now), Verdict::kStaleBallot);
  EXPECT_EQ(acceptor_.promised(), Ballot(2, 1)) << "a refusal must not change the promise";
  EXPECT_EQ(acceptor_.Prepare(Ballot(2, 2), now), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(2, 2));
  EXPECT_EQ(acceptor_.Prepare(Ballot(2, 1), now), Verdict::kStaleBallot);
}

TEST_F(AcceptorTest, LeaseBlocksOtherNodesUntilItRunsOutButNotTheHolder) {
  ASSERT_EQ(acceptor_.Prepare(Ballot(1, 1), kAfterRestartLease), Verdict::kOk);
  const uint64_t granted_at = 20;
  acceptor_.GrantLease(Ballot(1, 1), granted_at);
  for (uint64_t now = granted_at; now < granted_at + kLeaseTicks; ++now) {
    EXPECT_TRUE(acceptor_.LeaseBlocks(2, now)) << "now=" << now;
    EXPECT_FALSE(acceptor_.LeaseBlocks(1, now)) << "the holder is never blocked, now=" << now;
    EXPECT_EQ(acceptor_.Prepare(Ballot(5, 2), now), Verdict::kLeased) << "now=" << now;
    EXPECT_EQ(acceptor_.promised(), Ballot(1, 1));
  }
  // The holder may raise its own ballot while its lease runs.
  EXPECT_EQ(acceptor_.Prepare(Ballot(3, 1), granted_at + 1), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(3, 1));
  // The lease is exclusive at granted_at + lease_ticks.
  EXPECT_FALSE(acceptor_.LeaseBlocks(2, granted_at + kLeaseTicks));
  EXPECT_EQ(acceptor_.Prepare(Ballot(5, 2), granted_at + kLeaseTicks), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(5, 2));
}

TEST_F(AcceptorTest, LeaseIsExtendedByLaterGrantsAndNeverShortened) {
  acceptor_.GrantLease(Ballot(1, 1), 20);
  acceptor_.GrantLease(Ballot(1, 1), 23);
  EXPECT_TRUE(acceptor_.LeaseBlocks(2, 28));
  EXPECT_FALSE(acceptor_.LeaseBlocks(2, 29));
  // A grant at an earlier tick (reordered input) does not shorten the running lease.
  acceptor_.GrantLease(Ballot(1, 1), 21);
  EXPECT_TRUE(acceptor_.LeaseBlocks(2, 28));
}

TEST_F(AcceptorTest, EqualBallotIsPromisedEvenUnderAnotherNodesLease) {
  // Re-promising the ballot already promised grants nothing new, so the lease does not apply.
  // (Node 1 leases (4,1); an accept of (4,2) - its leader won phase 1 elsewhere - raises the
  // promise without a lease of its own here.)
  ASSERT_TRUE(acceptor_.GrantLease(Ballot(4, 1), 30));
  ASSERT_EQ(acceptor_.Accept(Ballot(4, 2), 1, Cmds(Ballot(4, 2), {"x"})), Verdict::kOk);
  EXPECT_EQ(acceptor_.Prepare(Ballot(4, 2), 31), Verdict::kOk);
  EXPECT_EQ(acceptor_.Prepare(Ballot(5, 2), 31), Verdict::kLeased);
}

// Issue 12 item 1, exactly as reported: an old leader's late heartbeat must not take over the
// lease of a newer ballot, or the old leader's node can be promised a still newer ballot while
// the newer leader counts this acceptor in its lease (a stale lease read).
TEST(AcceptorLeaseBallotTest, ALateHeartbeatOfALowerBallotDoesNotTakeOverTheLease) {
  SlotLog log;
  Acceptor acceptor(&log, Ballot(1, 1), kLeaseTicks, /*now=*/0);
  ASSERT_TRUE(acceptor.GrantLease(Ballot(2, 2), 10));
  EXPECT_EQ(acceptor.promised(), Ballot(2, 2)) << "a heartbeat of (2,2) is an implicit promise";
  EXPECT_FALSE(acceptor.GrantLease(Ballot(1, 1), 11)) << "(1,1) is below the promise now";
  EXPECT_EQ(acceptor.lease_ballot(), Ballot(2, 2));
  for (uint64_t now = 12; now < 10 + kLeaseTicks; ++now) {
    EXPECT_EQ(acceptor.Prepare(Ballot(3, 1), now), Verdict::kLeased) << "now=" << now;
    EXPECT_TRUE(acceptor.LeaseBlocks(1, now));
  }
  EXPECT_EQ(acceptor.promised(), Ballot(2, 2));
  EXPECT_EQ(acceptor.Prepare(Ballot(3, 1), 10 + kLeaseTicks), Verdict::kOk) << "lease over";
}

// The same sequence against the old rule (planted for the simulator's teeth tests): the late
// (1,1) heartbeat takes the lease over and (3,1) is promised under (2,2)'s running lease. This
// is what the test above failed on before the fix.
TEST(AcceptorLeaseBallotTest, TheOldRuleLetsALateHeartbeatTakeOverTheLease) {
  SlotLog log;
  Acceptor acceptor(&log, Ballot(1, 1), kLeaseTicks, /*now=*/0, /*lease_to_lower_ballot=*/true);
  acceptor.GrantLease(Ballot(2, 2), 10);
  acceptor.GrantLease(Ballot(1, 1), 11);
  EXPECT_EQ(acceptor.Prepare(Ballot(3, 1), 12), Verdict::kOk);
}

TEST(AcceptorLeaseBallotTest, TheLeaseMovesUpToAHigherBallotOfAnotherNode) {
  // A leader that completed phase 1 has a majority's promises, so some acceptor of the old
  // lease majority already let that lease go; its accepts and heartbeats take the lease here.
  SlotLog log;
  Acceptor acceptor(&log, Ballot(1, 1), kLeaseTicks, /*now=*/0);
  ASSERT_TRUE(acceptor.GrantLease(Ballot(1, 1), 10));
  ASSERT_TRUE(acceptor.GrantLease(Ballot(2, 2), 11));
  EXPECT_EQ(acceptor.lease_ballot(), Ballot(2, 2));
  EXPECT_EQ(acceptor.Prepare(Ballot(3, 1), 12), Verdict::kLeased);
  EXPECT_EQ(acceptor.Prepare(Ballot(3, 2), 12), Verdict::kOk) << "the holder's own node";
}

TEST(AcceptorRestartTest, AGrantDuringTheRestartLeaseDoesNotEndItForThatNode) {
  // Before the crash this acceptor may have leased (5,2); after the restart its promise reads
  // back lower and a stale (1,1) heartbeat is granted - but node 1 must still wait out the
  // anonymous lease, which covers the lost (5,2) lease.
  SlotLog log;
  Acceptor acceptor(&log, Ballot(1, 1), kLeaseTicks, /*now=*/0);
  ASSERT_TRUE(acceptor.GrantLease(Ballot(1, 1), 1));
  for (uint64_t now = 1; now < kLeaseTicks; ++now) {
    EXPECT_EQ(acceptor.Prepare(Ballot(6, 1), now), Verdict::kLeased) << "now=" << now;
  }
  EXPECT_EQ(acceptor.Prepare(Ballot(6, 1), kLeaseTicks), Verdict::kOk);
}

TEST(AcceptorRestartTest, RestartLeaseBlocksEveryoneForLeaseTicks) {
  SlotLog log;
  // Restarted with a durable promise to node 1: even node 1 must wait, because the lease this
  // acceptor granted before the crash may belong to anyone.
  Acceptor acceptor(&log, Ballot(3, 1), kLeaseTicks, /*now=*/0);
  EXPECT_EQ(acceptor.promised(), Ballot(3, 1));
  for (uint64_t now = 0; now < kLeaseTicks; ++now) {
    for (NodeId n : {1u, 2u, 3u}) {
      EXPECT_TRUE(acceptor.LeaseBlocks(n, now)) << "node " << n << " now=" << now;
      EXPECT_EQ(acceptor.CheckPromise(Ballot(9, n), now), Verdict::kLeased);
      EXPECT_EQ(acceptor.Prepare(Ballot(9, n), now), Verdict::kLeased);
    }
  }
  EXPECT_EQ(acceptor.promised(), Ballot(3, 1));
  EXPECT_EQ(acceptor.Prepare(Ballot(9, 2), kLeaseTicks), Verdict::kOk);
  EXPECT_EQ(acceptor.promised(), Ballot(9, 2));
}

TEST(AcceptorRestartTest, RestartLeaseRunsFromTheConstructionTick) {
  SlotLog log;
  Acceptor acceptor(&log, Ballot(), kLeaseTicks, /*now=*/100);
  EXPECT_TRUE(acceptor.LeaseBlocks(1, 100 + kLeaseTicks - 1));
  EXPECT_FALSE(acceptor.LeaseBlocks(1, 100 + kLeaseTicks));
}

TEST_F(AcceptorTest, AcceptRaisesThePromiseAndWritesTheEntry) {
  ASSERT_EQ(acceptor_.Prepare(Ballot(1, 1), kAfterRestartLease), Verdict::kOk);
  const Value v = Cmds(Ballot(2, 3), {"a"});
  EXPECT_EQ(acceptor_.Accept(Ballot(2, 3), 5, v), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(2, 3));
  const SlotRecord* r = log_.Find(5);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->entry, (Entry{5, Ballot(2, 3), v}));
  EXPECT_FALSE(r->durable) << "a fresh accept is not durable until the persist batch syncs";
  EXPECT_FALSE(r->chosen);
  EXPECT_TRUE(log_.HasDirty());
  // Once raised by the accept, lower prepares are refused.
  EXPECT_EQ(acceptor_.Prepare(Ballot(2, 2), kAfterRestartLease), Verdict::kStaleBallot);
}

TEST_F(AcceptorTest, AcceptIsNotBlockedByALease) {
  // Leases gate promises only; an accept at a ballot >= the promise is always taken.
  acceptor_.GrantLease(Ballot(1, 1), 0);
  EXPECT_EQ(acceptor_.Accept(Ballot(2, 2), 1, Cmds(Ballot(2, 2), {"x"})), Verdict::kOk);
}

TEST_F(AcceptorTest, RefusesAcceptBelowThePromise) {
  ASSERT_EQ(acceptor_.Prepare(Ballot(3, 2), kAfterRestartLease), Verdict::kOk);
  EXPECT_EQ(acceptor_.Accept(Ballot(3, 1), 1, Cmds(Ballot(3, 1), {"a"})), Verdict::kStaleBallot);
  EXPECT_EQ(acceptor_.Accept(Ballot(2, 9), 1, Cmds(Ballot(2, 9), {"a"})), Verdict::kStaleBallot);
  EXPECT_EQ(log_.Find(1), nullptr) << "a refused accept must write nothing";
  EXPECT_FALSE(log_.HasDirty());
  EXPECT_EQ(acceptor_.promised(), Ballot(3, 2));
  // Equal to the promise is accepted.
  EXPECT_EQ(acceptor_.Accept(Ballot(3, 2), 1, Cmds(Ballot(3, 2), {"a"})), Verdict::kOk);
  ASSERT_NE(log_.Find(1), nullptr);
}

TEST_F(AcceptorTest, AcceptOverwritesAnUnchosenSlotAtAHigherBallot) {
  EXPECT_EQ(acceptor_.Accept(Ballot(1, 1), 4, Cmds(Ballot(1, 1), {"old"})), Verdict::kOk);
  const Value newer = Cmds(Ballot(2, 2), {"new"});
  EXPECT_EQ(acceptor_.Accept(Ballot(2, 2), 4, newer), Verdict::kOk);
  EXPECT_EQ(log_.Find(4)->entry, (Entry{4, Ballot(2, 2), newer}));
}

TEST_F(AcceptorTest, DuplicateAcceptWritesNothingNew) {
  const Value v = Cmds(Ballot(1, 1), {"a"});
  ASSERT_EQ(acceptor_.Accept(Ballot(1, 1), 2, v), Verdict::kOk);
  WrittenVersions versions;
  ASSERT_EQ(log_.TakeDirty(&versions).size(), 1u);
  log_.MarkDurable(versions);
  EXPECT_EQ(acceptor_.Accept(Ballot(1, 1), 2, v), Verdict::kOk);
  EXPECT_FALSE(log_.HasDirty()) << "re-accepting the same (ballot, value) must not rewrite it";
  EXPECT_TRUE(log_.Find(2)->durable);
}

TEST_F(AcceptorTest, NeverAcceptsAnotherValueAtAChosenSlot) {
  const Value chosen = Cmds(Ballot(1, 1), {"chosen"});
  ASSERT_EQ(acceptor_.Accept(Ballot(1, 1), 3, chosen), Verdict::kOk);
  log_.MarkChosen(3);
  const Value other = Cmds(Ballot(5, 2), {"other"});
  EXPECT_EQ(acceptor_.Accept(Ballot(5, 2), 3, other), Verdict::kConflictsWithChosen);
  EXPECT_EQ(log_.Find(3)->entry, (Entry{3, Ballot(1, 1), chosen}));
  EXPECT_TRUE(log_.Find(3)->chosen);
  // The chosen value itself, re-proposed at a higher ballot by a new leader, is accepted.
  EXPECT_EQ(acceptor_.Accept(Ballot(6, 3), 3, chosen), Verdict::kOk);
  EXPECT_EQ(log_.Find(3)->entry.value, chosen);
  EXPECT_TRUE(log_.Find(3)->chosen) << "rewriting a chosen slot keeps it chosen";
}

TEST_F(AcceptorTest, AcceptedFromReportsEntriesFromASlotInOrder) {
  for (Slot s : {1, 2, 4, 7}) {
    ASSERT_EQ(acceptor_.Accept(Ballot(1, 1), s, Cmds(Ballot(1, 1), {"v"})), Verdict::kOk);
  }
  ASSERT_EQ(acceptor_.Accept(Ballot(2, 2), 4, Cmds(Ballot(2, 2), {"w"})), Verdict::kOk);
  std::vector<Entry> from3 = acceptor_.AcceptedFrom(3);
  ASSERT_EQ(from3.size(), 2u);
  EXPECT_EQ(from3[0].slot, 4u);
  EXPECT_EQ(from3[0].ballot, Ballot(2, 2));
  EXPECT_EQ(from3[0].value, Cmds(Ballot(2, 2), {"w"}));
  EXPECT_EQ(from3[1].slot, 7u);
  EXPECT_EQ(acceptor_.AcceptedFrom(1).size(), 4u);
  EXPECT_EQ(acceptor_.AcceptedFrom(2).front().slot, 2u);
  EXPECT_TRUE(acceptor_.AcceptedFrom(8).empty());
}

TEST_F(AcceptorTest, LearnChosenNeverLowersTheStoredBallot) {
  const Value v = Cmds(Ballot(2, 1), {"v"});
  ASSERT_EQ(acceptor_.Accept(Ballot(5, 2), 1, v), Verdict::kOk);
  // The same value learned with a lower ballot: the higher stored ballot stays.
  acceptor_.LearnChosen(Entry{1, Ballot(2, 1), v});
  EXPECT_EQ(log_.Find(1)->entry.ballot, Ballot(5, 2));
  // A different (chosen) value over an unchosen one accepted at a higher ballot: the value is
  // replaced, but the ballot still does not go down.
  const Value w = Cmds(Ballot(1, 1), {"w"});
  ASSERT_EQ(acceptor_.Accept(Ballot(5, 2), 2, v), Verdict::kOk);
  acceptor_.LearnChosen(Entry{2, Ballot(3, 1), w});
  EXPECT_EQ(log_.Find(2)->entry.value, w);
  EXPECT_GE(log_.Find(2)->entry.ballot, Ballot(5, 2));
  // A higher learned ballot is taken.
  acceptor_.LearnChosen(Entry{1, Ballot(7, 3), v});
  EXPECT_EQ(log_.Find(1)->entry.ballot, Ballot(7, 3));
  // An unknown slot is written as learned.
  acceptor_.LearnChosen(Entry{9, Ballot(4, 1), w});
  EXPECT_EQ(log_.Find(9)->entry, (Entry{9, Ballot(4, 1), w}));
}

TEST_F(AcceptorTest, LearnChosenDoesNotRewriteWhatItAlreadyHas) {
  const Value v = Cmds(Ballot(2, 1), {"v"});
  ASSERT_EQ(acceptor_.Accept(Ballot(2, 1), 1, v), Verdict::kOk);
  WrittenVersions versions;
  (void)log_.TakeDirty(&versions);
  log_.MarkDurable(versions);
  acceptor_.LearnChosen(Entry{1, Ballot(2, 1), v});
  EXPECT_FALSE(log_.HasDirty());
  EXPECT_TRUE(log_.Find(1)->durable);
}

TEST_F(AcceptorTest, CheckPromiseChangesNothing) {
  ASSERT_EQ(acceptor_.Prepare(Ballot(2, 1), kAfterRestartLease), Verdict::kOk);
  const uint64_t now = 50;
  EXPECT_EQ(acceptor_.CheckPromise(Ballot(3, 2), now), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(2, 1));
  EXPECT_EQ(acceptor_.CheckPromise(Ballot(1, 2), now), Verdict::kStaleBallot);
  EXPECT_EQ(acceptor_.CheckPromise(Ballot(2, 1), now), Verdict::kOk);
  acceptor_.GrantLease(Ballot(2, 1), now);
  EXPECT_EQ(acceptor_.CheckPromise(Ballot(3, 2), now), Verdict::kLeased);
  EXPECT_EQ(acceptor_.CheckPromise(Ballot(3, 1), now), Verdict::kOk);
  EXPECT_EQ(acceptor_.promised(), Ballot(2, 1));
  EXPECT_FALSE(log_.HasDirty());
  // Asking did not consume or move the lease either.
  EXPECT_TRUE(acceptor_.LeaseBlocks(2, now + kLeaseTicks - 1));
  EXPECT_FALSE(acceptor_.LeaseBlocks(2, now + kLeaseTicks));
}

}  // namespace
}  // namespace ballot::paxos
