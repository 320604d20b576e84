#include "statemachine/session_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "statemachine/byte_codec.h"

namespace ballot {
namespace {

using Verdict = SessionTable::Verdict;

paxos::Command Cmd(uint64_t client_id, uint64_t sequence, uint64_t acked_sequence = 0) {
  paxos::Command c;
  c.client_id = client_id;
  c.sequence = sequence;
  c.acked_sequence = acked_sequence;
  return c;
}

Outcome Ok(std::string data) { return Outcome{StatusCode::kOk, std::move(data), ""}; }

// Admits a command that must be fresh and records `outcome` for it.
void ApplyFresh(SessionTable* table, const paxos::Command& c, paxos::Slot slot, Outcome outcome) {
  SessionTable::Admission a = table->Admit(c, slot);
  ASSERT_EQ(a.verdict, Verdict::kFresh) << "client " << c.client_id << " seq " << c.sequence;
  ASSERT_NE(a.ticket, 0u);
  table->Record(a.ticket, std::move(outcome));
}

TEST(SessionTableTest, RetryIsAnsweredWithTheRecordedResult) {
  SessionTable table;
  ApplyFresh(&table, Cmd(7, 1), 1, Ok("first"));
  SessionTable::Admission retry = table.Admit(Cmd(7, 1), 2);
  EXPECT_EQ(retry.verdict, Verdict::kDuplicate);
  EXPECT_EQ(retry.ticket, 0u);
  EXPECT_EQ(retry.outcome, Ok("first"));
  // Another client with the same sequence number is a different command.
  EXPECT_EQ(table.Admit(Cmd(8, 1), 3).verdict, Verdict::kFresh);
}

TEST(SessionTableTest, SequenceZeroIsAlwaysFreshAndNeverRecorded) {
  SessionTable table;
  for (int i = 0; i < 3; i++) {
    SessionTable::Admission a = table.Admit(Cmd(7, 0, 5), 1 + i);
    EXPECT_EQ(a.verdict, Verdict::kFresh);
    EXPECT_EQ(a.ticket, 0u);
  }
  EXPECT_EQ(table.session_count(), 0u);
  EXPECT_FALSE(table.has_pending());
}

TEST(SessionTableTest, AcknowledgedResultsAreForgottenAndThenExpire) {
  SessionTable table;
  ApplyFresh(&table, Cmd(7, 1), 1, Ok("1"));
  ApplyFresh(&table, Cmd(7, 2), 2, Ok("2"));
  ApplyFresh(&table, Cmd(7, 3), 3, Ok("3"));
  ApplyFresh(&table, Cmd(7, 4, /*acked=*/2), 4, Ok("4"));
  EXPECT_EQ(table.result_count(7), 2u);
  EXPECT_EQ(table.floor_sequence(7), 2u);

  SessionTable::Admission old = table.Admit(Cmd(7, 1, 2), 5);
  EXPECT_EQ(old.verdict, Verdict::kExpired);
  EXPECT_EQ(old.outcome.code, StatusCode::kAborted);
  EXPECT_NE(old.outcome.message.find("session expired"), std::string::npos);
  SessionTable::Admission kept = table.Admit(Cmd(7, 3, 2), 6);
  EXPECT_EQ(kept.verdict, Verdict::kDuplicate);
  EXPECT_EQ(kept.outcome, Ok("3"));
}

TEST(SessionTableTest, CommandThatAcknowledgesItselfExpires) {
  SessionTable table;
  ApplyFresh(&table, Cmd(7, 1), 1, Ok("1"));
  EXPECT_EQ(table.Admit(Cmd(7, 5, 5), 2).verdict, Verdict::kExpired);
}

TEST(SessionTableTest, UnknownClientThatHasAcknowledgedIsExpired) {
  SessionTable table;
  SessionTable::Admission a = table.Admit(Cmd(7, 6, 5), 1);
  EXPECT_EQ(a.verdict, Verdict::kExpired);
  EXPECT_EQ(a.outcome.code, StatusCode::kAborted);
  EXPECT_FALSE(table.has_session(7));
}

TEST(SessionTableTest, SequencesMayArriveOutOfOrder) {
  SessionTable table;
  ApplyFresh(&table, Cmd(7, 3), 1, Ok("3"));
  ApplyFresh(&table, Cmd(7, 1), 2, Ok("1"));
  ApplyFresh(&table, Cmd(7, 2), 3, Ok("2"));
  EXPECT_EQ(table.Admit(Cmd(7, 1), 4).outcome, Ok("1"));
  EXPECT_EQ(table.Admit(Cmd(7, 3), 5).outcome, Ok("3"));
}

TEST(SessionTableTest, ResultsOverTheLimitEvictLowestSequencesWhichThenExpire) {
  SessionTable table(SessionTable::Limits{.sessions_max = 10, .results_per_session_max = 3});
  for (uint64_t s = 1; s <= 5; s++) ApplyFresh(&table, Cmd(7, s), s, Ok(std::to_string(s)));
  EXPECT_EQ(table.result_count(7), 3u);
  EXPECT_EQ(table.floor_sequence(7), 2u);
  EXPECT_EQ(table.Admit(Cmd(7, 1), 6).verdict, Verdict::kExpired);
  EXPECT_EQ(table.Admit(Cmd(7, 2), 7).verdict, Verdict::kExpired);
  for (uint64_t s = 3; s <= 5; s++) {
    EXPECT_EQ(table.Admit(Cmd(7, s), 8).outcome, Ok(std::to_string(s)));
  }
  EXPECT_EQ(table.Admit(Cmd(7, 6), 9).verdict, Verdict::kFresh);
}

TEST(SessionTableTest, SessionsOverTheLimitEvictTheLeastRecentlyActive) {
  SessionTable table(SessionTable::Limits{.sessions_max = 2, .results_per_session_max = 8});
  ApplyFresh(&table, Cmd(10, 1), 1, Ok("a"));
  ApplyFresh(&table, Cmd(20, 1), 2, Ok("b"));
  // A retry is activity too: client 10 is now more recent than client 20.
  EXPECT_EQ(table.Admit(Cmd(10, 1), 3).verdict, Verdict::kDuplicate);
  ApplyFresh(&table, Cmd(30, 1), 4, Ok("c"));
  EXPECT_TRUE(table.has_session(10));
  EXPECT_FALSE(table.has_session(20));
  EXPECT_TRUE(table.has_session(30));
  EXPECT_EQ(table.session_count(), 2u);
}

TEST(SessionTableTest, EvictionTiesGoToTheLowerClientId) {
  SessionTable table(SessionTable::Limits{.sessions_max = 2, .results_per_session_max = 8});
  ApplyFresh(&table, Cmd(7, 1), 1, Ok("a"));
  ApplyFresh(&table, Cmd(5, 1), 1, Ok("b"));
  ApplyFresh(&table, Cmd(9, 1), 2, Ok("c"));
  EXPECT_FALSE(table.has_session(5));
  EXPECT_TRUE(table.has_session(7));
  EXPECT_TRUE(table.has_session(9));
}

TEST(SessionTableTest, TheSessionBeingAdmittedIsNeverTheOneEvicted) {
  SessionTable table(SessionTable::Limits{.sessions_max = 1, .results_per_session_max = 8});
  ApplyFresh(&table, Cmd(5, 1), 1, Ok("a"));
  // Same slot and a lower id: by the tie rule it would go first, but it is being admitted.
  ApplyFresh(&table, Cmd(3, 1), 1, Ok("b"));
  EXPECT_TRUE(table.has_session(3));
  EXPECT_FALSE(table.has_session(5));
  EXPECT_EQ(table.Admit(Cmd(3, 1), 2).outcome, Ok("b"));
}

// Issue 12 item 5. A client pipelines its first commands, so each carries acked_sequence 0
// (no reply had arrived when it was sent). Its session is evicted by sessions_max; the replies
// were lost and it retries. The table must not take the retry for a new client's first command.
TEST(SessionTableTest, EvictedClientsRetryWithNothingAcknowledgedIsExpiredNotAppliedAgain) {
  SessionTable table(SessionTable::Limits{.sessions_max = 1, .results_per_session_max = 8});
  ApplyFresh(&table, Cmd(7, 1), 1, Ok("1"));
  ApplyFresh(&table, Cmd(7, 2), 1, Ok("2"));
  ApplyFresh(&table, Cmd(8, 1), 2, Ok("other"));  // evicts client 7, the least recently active
  ASSERT_FALSE(table.has_session(7));

  for (uint64_t sequence : {2, 1}) {
    SessionTable::Admission retry = table.Admit(Cmd(7, sequence), 3);
    EXPECT_EQ(retry.verdict, Verdict::kExpired) << "sequence " << sequence << " applied twice";
    EXPECT_EQ(retry.outcome.code, StatusCode::kAborted);
    EXPECT_TRUE(IsSessionExpired(retry.outcome)) << retry.outcome.message;
    if (retry.ticket != 0) table.Record(retry.ticket, Ok("again"));
  }
  // Not even a command the table never saw: the client cannot tell which of its commands were
  // applied, so it must start a new session under a new client id.
  EXPECT_EQ(table.Admit(Cmd(7, 3), 4).verdict, Verdict::kExpired);
  EXPECT_FALSE(table.has_session(7));
  EXPECT_TRUE(table.has_session(8));
  EXPECT_FALSE(table.has_pending());
}

TEST(SessionTableTest, DuplicateOfAnUnrecordedCommandCarriesItsTicket) {
  SessionTable table;
  SessionTable::Admission first = table.Admit(Cmd(7, 1), 1);
  ASSERT_EQ(first.verdict, Verdict::kFresh);
  EXPECT_TRUE(table.has_pending());
  SessionTable::Admission dup = table.Admit(Cmd(7, 1), 2);
  EXPECT_EQ(dup.verdict, Verdict::kDuplicate);
  EXPECT_EQ(dup.ticket, first.ticket);
  table.Record(first.ticket, Ok("late"));
  EXPECT_FALSE(table.has_pending());
  EXPECT_EQ(table.Admit(Cmd(7, 1), 3).outcome, Ok("late"));
}

TEST(SessionTableTest, ReservationForgottenBeforeRecordIsDropped) {
  SessionTable table;
  SessionTable::Admission one = table.Admit(Cmd(7, 1), 1);
  SessionTable::Admission two = table.Admit(Cmd(7, 2, /*acked=*/1), 1);
  ASSERT_EQ(two.verdict, Verdict::kFresh);
  table.Record(two.ticket, Ok("2"));
  table.Record(one.ticket, Ok("1"));  // acknowledged meanwhile: nothing to keep
  EXPECT_FALSE(table.has_pending());
  EXPECT_EQ(table.result_count(7), 1u);
  EXPECT_EQ(table.Admit(Cmd(7, 1, 1), 2).verdict, Verdict::kExpired);
}

TEST(SessionTableTest, EvictedBeforeItsResultIsRecordedThenRetriedIsExpired) {
  // One batch: client 1 is evicted between its first admission and its record, then retried.
  SessionTable table(SessionTable::Limits{.sessions_max = 1, .results_per_session_max = 8});
  SessionTable::Admission a = table.Admit(Cmd(1, 1), 1);
  SessionTable::Admission b = table.Admit(Cmd(2, 1), 1);
  SessionTable::Admission again = table.Admit(Cmd(1, 1), 1);
  EXPECT_EQ(again.verdict, Verdict::kExpired);  // the first one is being applied
  EXPECT_EQ(again.ticket, 0u);
  table.Record(a.ticket, Ok("first"));  // evicted meanwhile: nothing to keep
  table.Record(b.ticket, Ok("other"));
  EXPECT_FALSE(table.has_pending());
  EXPECT_FALSE(table.has_session(1));
  EXPECT_TRUE(table.has_tombstone(1));
  EXPECT_EQ(table.Admit(Cmd(2, 1), 2).outcome, Ok("other"));
}

TEST(SessionTableTest, TombstonesAreBoundedAndTheOldestGoesFirst) {
  SessionTable table(
      SessionTable::Limits{.sessions_max = 1, .results_per_session_max = 8, .tombstones_max = 2});
  ApplyFresh(&table, Cmd(1, 1), 1, Ok("1"));
  ApplyFresh(&table, Cmd(2, 1), 2, Ok("2"));  // evicts 1: tombstone (1, slot 2)
  ApplyFresh(&table, Cmd(3, 1), 3, Ok("3"));  // evicts 2: tombstone (2, slot 3)
  EXPECT_EQ(table.tombstone_count(), 2u);
  // Client 1 keeps retrying: each refusal refreshes its tombstone, now younger than client 2's.
  EXPECT_EQ(table.Admit(Cmd(1, 1), 4).verdict, Verdict::kExpired);
  ApplyFresh(&table, Cmd(4, 1), 5, Ok("4"));  // evicts 3; client 2's tombstone is the oldest
  EXPECT_EQ(table.tombstone_count(), 2u);
  EXPECT_TRUE(table.has_tombstone(1));
  EXPECT_FALSE(table.has_tombstone(2));
  EXPECT_TRUE(table.has_tombstone(3));
  EXPECT_EQ(table.session_count(), 1u);

  // Past the bound, what is left: a command that acknowledges a reply is still expired (rule
  // 5); one with acked_sequence 0 looks like a new client's first command (the documented gap).
  EXPECT_EQ(table.Admit(Cmd(2, 2, /*acked=*/1), 6).verdict, Verdict::kExpired);
  EXPECT_EQ(table.Admit(Cmd(2, 1), 7).verdict, Verdict::kFresh);
}

TEST(SessionTableTest, ATombstonedClientGetsNoSessionAndSequenceZeroIsUntouched) {
  SessionTable table(SessionTable::Limits{.sessions_max = 1, .results_per_session_max = 8});
  ApplyFresh(&table, Cmd(1, 1), 1, Ok("1"));
  ApplyFresh(&table, Cmd(2, 1), 2, Ok("2"));
  for (uint64_t acked : {0, 1, 5}) {
    SessionTable::Admission a = table.Admit(Cmd(1, 6, acked), 3);
    EXPECT_EQ(a.verdict, Verdict::kExpired) << "acked " << acked;
    EXPECT_TRUE(IsSessionExpired(a.outcome));
  }
  EXPECT_EQ(table.Admit(Cmd(1, 0), 4).verdict, Verdict::kFresh);
  EXPECT_FALSE(table.has_session(1));
  EXPECT_TRUE(table.has_session(2));
  EXPECT_EQ(table.session_count(), 1u);
  EXPECT_FALSE(table.has_pending());
  EXPECT_FALSE(IsSessionExpired(Outcome{StatusCode::kAborted, "", "epoch changed"}));
  EXPECT_FALSE(IsSessionExpired(Outcome{StatusCode::kOk, "", "session expired: no"}));
}

SessionTable BusyTable() {
  SessionTable table(SessionTable::Limits{.sessions_max = 4, .results_per_session_max = 3});
  paxos::Slot slot = 1;
  for (uint64_t client = 1; client <= 6; client++) {
    for (uint64_t s = 1; s <= client; s++) {
      // Even clients acknowledge; odd ones overflow results_per_session_max instead.
      const uint64_t acked = client % 2 == 0 && s > 3 ? s - 3 : 0;
      ApplyFresh(&table, Cmd(client * 1000, s, acked), slot++,
                 Outcome{s % 2 ? StatusCode::kOk : StatusCode::kAborted, "data" + std::to_string(s),
                         s % 2 ? "" : "no"});
    }
  }
  return table;
}

TEST(SessionTableTest, SerializeRoundTripGivesAnEqualTableThatBehavesTheSame) {
  SessionTable table = BusyTable();
  ASSERT_EQ(table.session_count(), 4u);
  ASSERT_EQ(table.result_count(5000), 3u);
  ASSERT_EQ(table.floor_sequence(5000), 2u);
  const std::string bytes = table.Serialize();
  SessionTable restored(table.limits());
  ASSERT_TRUE(restored.Deserialize(bytes).ok());
  EXPECT_TRUE(restored == table);
  EXPECT_EQ(restored.Serialize(), bytes);
  for (uint64_t client = 1000; client <= 7000; client += 1000) {
    for (uint64_t s = 1; s <= 7; s++) {
      SessionTable::Admission x = table.Admit(Cmd(client, s, 2), 100);
      SessionTable::Admission y = restored.Admit(Cmd(client, s, 2), 100);
      EXPECT_EQ(x.verdict, y.verdict);
      EXPECT_EQ(x.outcome, y.outcome);
      if (x.ticket != 0) table.Record(x.ticket, Ok("n"));
      if (y.ticket != 0) restored.Record(y.ticket, Ok("n"));
    }
  }
  EXPECT_TRUE(restored == table);
}

TEST(SessionTableTest, DeserializeRejectsEveryTruncationAndTrailingBytes) {
  const std::string bytes = BusyTable().Serialize();
  for (size_t n = 0; n < bytes.size(); n++) {
    SessionTable table;
    EXPECT_FALSE(table.Deserialize(bytes.substr(0, n)).ok()) << "prefix " << n;
    EXPECT_EQ(table.session_count(), 0u);
  }
  SessionTable table;
  EXPECT_EQ(table.Deserialize(bytes + '\0').code(), StatusCode::kCorruption);
}

TEST(SessionTableTest, DeserializeRejectsMoreThanTheLimitsAllow) {
  const std::string bytes = BusyTable().Serialize();
  SessionTable few_sessions(SessionTable::Limits{.sessions_max = 3, .results_per_session_max = 3});
  EXPECT_FALSE(few_sessions.Deserialize(bytes).ok());
  SessionTable few_results(SessionTable::Limits{.sessions_max = 4, .results_per_session_max = 2});
  EXPECT_FALSE(few_results.Deserialize(bytes).ok());
  ASSERT_EQ(BusyTable().tombstone_count(), 2u);
  SessionTable few_tombstones(
      SessionTable::Limits{.sessions_max = 4, .results_per_session_max = 3, .tombstones_max = 1});
  EXPECT_FALSE(few_tombstones.Deserialize(bytes).ok());
  SessionTable enough(
      SessionTable::Limits{.sessions_max = 4, .results_per_session_max = 3, .tombstones_max = 2});
  EXPECT_TRUE(enough.Deserialize(bytes).ok());
}

// Version 2: the sessions of version 1, then the tombstones.
std::string WithTombstones(std::vector<std::pair<uint64_t, paxos::Slot>> tombstones,
                           uint64_t session_client_id = 7) {
  ByteWriter w;
  w.PutU8(2);
  w.PutU64(1);  // sessions
  w.PutU64(session_client_id);
  w.PutU64(0);  // floor
  w.PutU64(3);  // last active slot
  w.PutU64(0);  // results
  w.PutU64(tombstones.size());
  for (auto [client_id, slot] : tombstones) {
    w.PutU64(client_id);
    w.PutU64(slot);
  }
  return w.Release();
}

TEST(SessionTableTest, DeserializeChecksTombstones) {
  SessionTable table;
  const std::string good = WithTombstones({{5, 2}, {9, 1}});
  ASSERT_TRUE(table.Deserialize(good).ok());  // the control case
  EXPECT_TRUE(table.has_tombstone(5));
  EXPECT_TRUE(table.has_tombstone(9));
  EXPECT_TRUE(table.has_session(7));
  EXPECT_EQ(table.Serialize(), good);
  EXPECT_EQ(table.last_active_slot_max(), 3u);
  EXPECT_EQ(table.Admit(Cmd(9, 1), 4).verdict, Verdict::kExpired);
  const SessionTable before = table;
  for (const std::string& bad : {
           WithTombstones({}),                // version 2 is written only with tombstones
           WithTombstones({{9, 1}, {5, 2}}),  // not increasing
           WithTombstones({{5, 1}, {5, 2}}),  // twice
           WithTombstones({{7, 1}}),          // a client with a session and a tombstone
           good.substr(0, good.size() - 1),   // truncated
           good + '\0',                       // trailing bytes
       }) {
    EXPECT_EQ(table.Deserialize(bad).code(), StatusCode::kCorruption);
    EXPECT_TRUE(table == before);
  }
  SessionTable one(SessionTable::Limits{.tombstones_max = 1});
  EXPECT_FALSE(one.Deserialize(good).ok());
}

std::string OneSession(uint64_t client_id, uint64_t floor, uint64_t sequence, uint8_t code) {
  ByteWriter w;
  w.PutU8(1);   // version
  w.PutU64(1);  // sessions
  w.PutU64(client_id);
  w.PutU64(floor);
  w.PutU64(/*last_active_slot=*/3);
  w.PutU64(1);  // results
  w.PutU64(sequence);
  w.PutU8(code);
  w.PutBytes("d");
  w.PutBytes("");
  return w.Release();
}

TEST(SessionTableTest, DeserializeChecksSemanticsNotJustLengths) {
  SessionTable table;
  ASSERT_TRUE(table.Deserialize(OneSession(7, 2, 3, 0)).ok());  // the control case
  EXPECT_EQ(table.result_count(7), 1u);
  EXPECT_FALSE(table.Deserialize(OneSession(7, 3, 3, 0)).ok());    // result at the floor
  EXPECT_FALSE(table.Deserialize(OneSession(7, 2, 3, 200)).ok());  // unknown status code
  EXPECT_EQ(table.result_count(7), 1u) << "a rejected input must leave the table unchanged";

  ByteWriter w;
  w.PutU8(1);
  w.PutU64(2);
  for (uint64_t client : {9, 8}) {  // decreasing client ids
    w.PutU64(client);
    w.PutU64(0);
    w.PutU64(1);
    w.PutU64(0);
  }
  EXPECT_FALSE(table.Deserialize(w.Release()).ok());
}

TEST(SessionTableTest, GarbageNeverCrashesAndNeverHalfLoads) {
  const std::string valid = BusyTable().Serialize();
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 3000; i++) {
    std::string input;
    if (i % 2 == 0) {
      input.resize(rng() % 128);
      for (char& c : input) c = static_cast<char>(rng());
      if (!input.empty() && i % 4 == 0) input[0] = 1;  // past the version check
    } else {
      input = valid;
      for (int flips = 1 + rng() % 3; flips > 0; flips--) {
        input[rng() % input.size()] ^= static_cast<char>(1u << (rng() % 8));
      }
    }
    SessionTable table = BusyTable();
    const SessionTable before = table;
    Status status = table.Deserialize(input);
    if (status.ok()) {
      EXPECT_EQ(table.Serialize(), input) << "accepted input must be canonical";
    } else {
      EXPECT_TRUE(table == before);
    }
  }
}

}  // namespace
}  // namespace ballot
