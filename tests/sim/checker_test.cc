// The checker must flag each kind of violation it claims to, from synthetic inputs (the teeth
// test covers the same end to end, with bugs planted in the core).
#include "tests/sim/checker.h"

#include <gtest/gtest.h>

namespace ballot::sim {
namespace {

using paxos::Ballot;
using paxos::Entry;
using paxos::Value;

Value MakeValue(uint64_t client, uint64_t sequence, Ballot epoch = Ballot(1, 1)) {
  Value v;
  v.epoch = epoch;
  paxos::Command c;
  c.client_id = client;
  c.sequence = sequence;
  v.commands.push_back(c);
  return v;
}

Value LeaderStart(Ballot epoch) {
  Value v;
  v.epoch = epoch;
  v.leader_start = true;
  return v;
}

paxos::PersistBatch Accepts(std::vector<Entry> entries) {
  paxos::PersistBatch b;
  b.entries = std::move(entries);
  return b;
}

AckedOp Block(uint64_t client, uint64_t seq, Time sent, Time acked, int64_t first, int64_t n) {
  AckedOp op;
  op.client_id = client;
  op.op_id = seq;
  op.sequence = seq;
  op.sent_ms = sent;
  op.acked_ms = acked;
  op.lo = first;
  op.hi = first + n - 1;
  return op;
}

AckedOp Read(uint64_t client, uint64_t op_id, Time sent, Time acked, int64_t next) {
  AckedOp op;
  op.client_id = client;
  op.op_id = op_id;
  op.is_read = true;
  op.sent_ms = sent;
  op.acked_ms = acked;
  op.lo = next;
  op.hi = next - 1;
  return op;
}

Reply MakeReply(uint64_t client, uint64_t seq, paxos::Slot slot, Outcome outcome = {}) {
  Reply r;
  r.client_id = client;
  r.sequence = seq;
  r.slot = slot;
  r.outcome = std::move(outcome);
  return r;
}

// Registers a fresh application of (client, seq) at `slot` on node 1 so that acks are accepted.
void Applied(Checker* c, uint64_t client, uint64_t seq, paxos::Slot slot) {
  c->OnFreshReply(1, MakeReply(client, seq, slot));
}

TEST(Checker, AgreeingSourcesPass) {
  Checker c(3);
  const Entry e{1, Ballot(1, 1), MakeValue(7, 1)};
  c.OnDurable(1, Accepts({e}));
  c.OnDurable(2, Accepts({e}));  // quorum: chosen
  c.OnApply(1, e);
  c.OnApply(3, e);
  c.FinalChecks({});
  EXPECT_FALSE(c.failed()) << c.violation();
  EXPECT_EQ(c.known_chosen_below(), 2u);
}

TEST(Checker, TwoValuesChosenByQuorumsAtOneSlot) {
  Checker c(3);
  c.OnDurable(1, Accepts({{5, Ballot(1, 1), MakeValue(7, 1)}}));
  c.OnDurable(2, Accepts({{5, Ballot(1, 1), MakeValue(7, 1)}}));
  EXPECT_FALSE(c.failed());
  // A later ballot overwrites at nodes 2 and 3 with another value: a second choice.
  c.OnDurable(2, Accepts({{5, Ballot(2, 3), MakeValue(8, 1)}}));
  EXPECT_FALSE(c.failed());  // one acceptor is not a quorum
  c.OnDurable(3, Accepts({{5, Ballot(2, 3), MakeValue(8, 1)}}));
  EXPECT_TRUE(c.failed());
  EXPECT_NE(c.violation().find("two different values chosen for slot 5"), std::string::npos);
}

// With spares (membership changes), a quorum is a majority of the slot's voters: those of the
// last change chosen below it. Nodes outside them (learners, spares) do not count.
TEST(Checker, VotesCountOnlyFromTheVotersOfTheirSlot) {
  Checker c(5, 3);  // founders 1..3, spares 4 and 5
  Value promote4;
  promote4.epoch = Ballot(1, 1);
  promote4.config = paxos::Configuration::AllVoters({1, 2, 3, 4});
  c.OnDurable(1, Accepts({{1, Ballot(1, 1), promote4}}));
  c.OnDurable(2, Accepts({{1, Ballot(1, 1), promote4}}));  // 2 of 1..3: chosen
  EXPECT_EQ(c.known_chosen_below(), 2u);
  // Slot 2 is governed by 1..4: two of four voters are no majority, whatever node 5 says.
  c.OnDurable(3, Accepts({{2, Ballot(1, 1), MakeValue(7, 1)}}));
  c.OnDurable(4, Accepts({{2, Ballot(1, 1), MakeValue(7, 1)}}));
  c.OnDurable(5, Accepts({{2, Ballot(1, 1), MakeValue(7, 1)}}));
  EXPECT_EQ(c.known_chosen_below(), 2u);
  c.OnDurable(1, Accepts({{2, Ballot(2, 2), MakeValue(8, 1)}}));
  c.OnDurable(2, Accepts({{2, Ballot(2, 2), MakeValue(8, 1)}}));
  EXPECT_FALSE(c.failed()) << "1 and 2 alone are not a majority of 1..4 either";
  c.OnDurable(4, Accepts({{2, Ballot(2, 2), MakeValue(8, 1)}}));
  EXPECT_EQ(c.known_chosen_below(), 3u) << "1, 2 and 4: chosen";
  c.OnDurable(1, Accepts({{2, Ballot(1, 1), MakeValue(7, 1)}}));
  EXPECT_TRUE(c.failed()) << "1, 3 and 4 accepted the other value at ballot 1.1";
  EXPECT_NE(c.violation().find("two different values chosen for slot 2"), std::string::npos)
      << c.violation();
}

// Votes above the known prefix wait for the voters of their slot to be known.
TEST(Checker, VotesAboveAnUnknownSlotAreJudgedOnceItIsKnown) {
  Checker c(5, 3);
  c.OnDurable(1, Accepts({{2, Ballot(1, 1), MakeValue(7, 1)}}));
  c.OnDurable(2, Accepts({{2, Ballot(1, 1), MakeValue(7, 1)}}));
  EXPECT_EQ(c.known_chosen_below(), 1u) << "slot 1 could change the voters of slot 2";
  c.OnApply(1, {1, Ballot(1, 1), MakeValue(6, 1)});
  EXPECT_EQ(c.known_chosen_below(), 3u);
}

TEST(Checker, ApplyDisagreesWithQuorum) {
  Checker c(5);
  for (paxos::NodeId n : {1, 2, 3}) c.OnDurable(n, Accepts({{2, Ballot(1, 1), MakeValue(1, 1)}}));
  c.OnApply(4, Entry{2, Ballot(3, 4), MakeValue(1, 2)});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, TwoValuesUnderOneBallot) {
  Checker c(5);
  c.OnDurable(1, Accepts({{2, Ballot(1, 1), MakeValue(1, 1)}}));
  c.OnDurable(2, Accepts({{2, Ballot(1, 1), MakeValue(1, 2)}}));
  EXPECT_TRUE(c.failed());
}

TEST(Checker, SameAcceptorMayAcceptSeveralValuesUnderSeveralBallots) {
  Checker c(3);
  c.OnDurable(1, Accepts({{2, Ballot(1, 1), MakeValue(1, 1)}}));
  c.OnDurable(1, Accepts({{2, Ballot(2, 2), MakeValue(1, 2)}}));
  c.OnDurable(2, Accepts({{2, Ballot(2, 2), MakeValue(1, 2)}}));
  c.FinalChecks({});
  EXPECT_FALSE(c.failed()) << c.violation();
}

TEST(Checker, EpochLedTwice) {
  Checker c(3);
  c.OnLeadershipEvent(2, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(3, 2), 10});
  EXPECT_FALSE(c.failed());
  c.OnLeadershipEvent(2, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(3, 2), 20});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, NoAnnouncementBelowAnEpochTheNodeHasSeen) {
  Checker c(3);
  c.OnEpochSeen(2, Ballot(4, 3));
  c.OnLeadershipEvent(2, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(5, 2), 10});
  EXPECT_FALSE(c.failed()) << c.violation();
  c.OnEpochSeen(1, Ballot(6, 3));
  c.OnLeadershipEvent(1, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(6, 1), 20});
  EXPECT_TRUE(c.failed());
  EXPECT_NE(c.violation().find("after it had seen the newer epoch"), std::string::npos)
      << c.violation();
}

TEST(Checker, ARestartForgetsWhatWasSeen) {
  Checker c(3);
  c.OnEpochSeen(1, Ballot(6, 3));
  c.OnNodeStart(1);
  c.OnLeadershipEvent(1, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(6, 1), 20});
  EXPECT_FALSE(c.failed()) << c.violation();
}

TEST(Checker, LeaderOfSomeoneElsesEpoch) {
  Checker c(3);
  c.OnLeadershipEvent(1, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(3, 2), 10});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, LeaderStartEpochsMustIncreaseInLogOrder) {
  Checker c(3);
  c.OnApply(1, Entry{1, Ballot(5, 2), LeaderStart(Ballot(5, 2))});
  c.OnApply(1, Entry{2, Ballot(4, 1), LeaderStart(Ballot(4, 1))});
  c.OnLeadershipEvent(1, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(4, 1), 2});
  EXPECT_FALSE(c.failed());  // checked over the whole log at the end
  c.FinalChecks({});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, StaleMarkerOfAnUnannouncedLeadershipIsAllowed) {
  // A leadership that never became usable may leave its leader_start behind a newer one.
  Checker c(3);
  c.OnApply(1, Entry{1, Ballot(5, 2), LeaderStart(Ballot(5, 2))});
  c.OnApply(1, Entry{2, Ballot(5, 2), LeaderStart(Ballot(4, 1))});
  c.OnApply(1, Entry{3, Ballot(6, 3), LeaderStart(Ballot(6, 3))});
  c.OnLeadershipEvent(2, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(5, 2), 1});
  c.OnLeadershipEvent(3, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(6, 3), 3});
  c.FinalChecks({});
  EXPECT_FALSE(c.failed()) << c.violation();
}

TEST(Checker, StartSlotMustHoldTheLeadersOwnLeaderStart) {
  Checker c(3);
  c.OnApply(1, Entry{1, Ballot(5, 2), LeaderStart(Ballot(5, 2))});
  c.OnLeadershipEvent(3, {paxos::LeadershipEvent::Kind::kBecameLeader, Ballot(6, 3), 1});
  c.FinalChecks({});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, AppliedTwiceAtOneNode) {
  Checker c(3);
  Applied(&c, 7, 1, 3);
  EXPECT_FALSE(c.failed());
  Applied(&c, 7, 1, 9);
  EXPECT_TRUE(c.failed());
}

TEST(Checker, AppliedAtDifferentSlotsOnDifferentNodes) {
  Checker c(3);
  c.OnFreshReply(1, MakeReply(7, 1, 3));
  c.OnFreshReply(2, MakeReply(7, 1, 4));
  EXPECT_TRUE(c.failed());
}

TEST(Checker, AckOfUnappliedCommand) {
  Checker c(3);
  c.OnAck(Block(7, 1, 0, 10, 1, 2));
  EXPECT_TRUE(c.failed());
}

TEST(Checker, AckWithAnotherOutcome) {
  Checker c(3);
  c.OnFreshReply(1, MakeReply(7, 1, 3, Outcome{StatusCode::kOk, "a", ""}));
  AckedOp op = Block(7, 1, 0, 10, 1, 2);
  op.outcome = Outcome{StatusCode::kOk, "b", ""};
  c.OnAck(op);
  EXPECT_TRUE(c.failed());
}

TEST(Checker, AckedCommandMissingAtAConvergedNode) {
  Checker c(3);
  Applied(&c, 7, 1, 3);
  c.OnAck(Block(7, 1, 0, 10, 1, 2));
  c.FinalChecks({1, 2});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, DuplicateNumbers) {
  Checker c(3);
  Applied(&c, 7, 1, 1);
  Applied(&c, 8, 1, 2);
  c.OnAck(Block(7, 1, 0, 10, 1, 3));  // 1..3
  c.OnAck(Block(8, 1, 0, 11, 3, 2));  // 3..4, concurrent
  c.FinalChecks({});
  EXPECT_TRUE(c.failed());
  EXPECT_NE(c.violation().find("same number"), std::string::npos) << c.violation();
}

TEST(Checker, ConcurrentBlocksMayComeInAnyOrder) {
  Checker c(3);
  Applied(&c, 7, 1, 1);
  Applied(&c, 8, 1, 2);
  c.OnAck(Block(7, 1, 0, 10, 4, 2));  // got the later block
  c.OnAck(Block(8, 1, 5, 11, 1, 3));  // sent before the other was acked
  c.FinalChecks({});
  EXPECT_FALSE(c.failed()) << c.violation();
}

TEST(Checker, BlockAfterAckedBlockMustBeHigher) {
  Checker c(3);
  Applied(&c, 7, 1, 1);
  Applied(&c, 8, 1, 2);
  c.OnAck(Block(7, 1, 0, 10, 4, 2));
  c.OnAck(Block(8, 1, 11, 20, 1, 3));  // sent after 4..5 was acked, yet lower
  c.FinalChecks({});
  EXPECT_TRUE(c.failed());
  EXPECT_NE(c.violation().find("not linearizable"), std::string::npos) << c.violation();
}

TEST(Checker, StaleReadAfterAckedBlock) {
  Checker c(3);
  Applied(&c, 7, 1, 1);
  c.OnAck(Block(7, 1, 0, 10, 1, 5));  // 1..5 acked at 10
  c.OnAck(Read(8, 1, 12, 20, 4));     // sent at 12, says next is 4: stale
  c.FinalChecks({});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, ReadThenBlockMustNotGoBelowIt) {
  Checker c(3);
  Applied(&c, 7, 1, 1);
  c.OnAck(Read(8, 1, 0, 10, 6));       // next is 6 at 10
  c.OnAck(Block(7, 1, 11, 20, 3, 2));  // 3..4 handed out later
  c.FinalChecks({});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, ReadsMustNotGoBackwards) {
  Checker c(3);
  c.OnAck(Read(8, 1, 0, 10, 6));
  c.OnAck(Read(9, 1, 11, 20, 5));
  c.FinalChecks({});
  EXPECT_TRUE(c.failed());
}

TEST(Checker, FreshReadsAndBlocksPass) {
  Checker c(3);
  Applied(&c, 7, 1, 1);
  Applied(&c, 7, 2, 2);
  c.OnAck(Block(7, 1, 0, 10, 1, 5));
  c.OnAck(Read(8, 1, 11, 20, 6));
  c.OnAck(Read(9, 1, 5, 21, 6));  // concurrent with nothing newer
  c.OnAck(Block(7, 2, 21, 30, 6, 1));
  c.OnAck(Read(8, 2, 31, 40, 7));
  c.FinalChecks({1});
  EXPECT_FALSE(c.failed()) << c.violation();
}

}  // namespace
}  // namespace ballot::sim
