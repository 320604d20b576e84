#include "statemachine/samples/sequence.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "statemachine/applier.h"
#include "statemachine/byte_codec.h"

namespace ballot::samples {
namespace {

using Block = SequenceGenerator::Block;

Outcome ApplyPayload(SequenceGenerator* machine, std::string_view payload) {
  const AppliedCommand command{
      .slot = 1, .epoch = 0, .client_id = 1, .stamp_ms = 0, .payload = payload};
  std::vector<Outcome> outcomes;
  machine->Apply({&command, 1}, &outcomes);
  EXPECT_EQ(outcomes.size(), 1u);
  return outcomes.empty() ? Outcome{} : outcomes[0];
}

Block Next(SequenceGenerator* machine, uint64_t count) {
  Outcome outcome = ApplyPayload(machine, SequenceGenerator::EncodeNext(count));
  EXPECT_EQ(outcome.code, StatusCode::kOk) << outcome.message;
  Result<Block> block = SequenceGenerator::DecodeBlock(outcome.data);
  EXPECT_TRUE(block.ok()) << block.status().ToString();
  return block.ok() ? block.value() : Block{};
}

uint64_t Peek(const SequenceGenerator& machine) {
  Outcome outcome = machine.Query(SequenceGenerator::EncodePeek());
  EXPECT_EQ(outcome.code, StatusCode::kOk);
  Result<uint64_t> next = SequenceGenerator::DecodePeek(outcome.data);
  EXPECT_TRUE(next.ok());
  return next.ok() ? next.value() : 0;
}

TEST(SequenceGeneratorTest, StartsAtOneAndHandsOutConsecutiveBlocks) {
  SequenceGenerator machine;
  EXPECT_EQ(Peek(machine), 1u);
  EXPECT_EQ(Next(&machine, 1), (Block{1, 1}));
  EXPECT_EQ(Next(&machine, 10), (Block{2, 10}));
  EXPECT_EQ(Peek(machine), 12u);
  EXPECT_EQ(Next(&machine, SequenceGenerator::kCountMax),
            (Block{12, SequenceGenerator::kCountMax}));
  EXPECT_EQ(Peek(machine), 12 + SequenceGenerator::kCountMax);
}

TEST(SequenceGeneratorTest, RandomRequestsNeverOverlapAndStrictlyIncrease) {
  std::mt19937_64 rng(0x5EC0);
  SequenceGenerator machine;
  uint64_t handed_out = 0;  // numbers 1..handed_out are taken
  Block previous{0, 0};
  for (int i = 0; i < 20000; i++) {
    // Mostly small blocks, sometimes up to the maximum.
    const uint64_t count = i % 100 == 0 ? 1 + rng() % SequenceGenerator::kCountMax : 1 + rng() % 64;
    const Block block = Next(&machine, count);
    ASSERT_EQ(block.count, count);
    ASSERT_GT(block.first, previous.first) << "not increasing at request " << i;
    ASSERT_GE(block.first, previous.first + previous.count) << "overlap at request " << i;
    ASSERT_EQ(block.first, handed_out + 1) << "gap at request " << i;
    handed_out += count;
    previous = block;
  }
  EXPECT_EQ(Peek(machine), handed_out + 1);
}

TEST(SequenceGeneratorTest, BadCountsAreRejectedWithoutChangingState) {
  SequenceGenerator machine;
  Next(&machine, 5);
  for (uint64_t count :
       {uint64_t{0}, SequenceGenerator::kCountMax + 1, std::numeric_limits<uint64_t>::max()}) {
    Outcome outcome = ApplyPayload(&machine, SequenceGenerator::EncodeNext(count));
    EXPECT_EQ(outcome.code, StatusCode::kInvalidArgument) << count;
    EXPECT_FALSE(outcome.message.empty());
  }
  EXPECT_EQ(Peek(machine), 6u);
}

TEST(SequenceGeneratorTest, MalformedPayloadsAreRejectedWithoutChangingState) {
  SequenceGenerator machine;
  const std::string next = SequenceGenerator::EncodeNext(3);
  const std::vector<std::string> bad = {"", next.substr(0, next.size() - 1), next + "x",
                                        SequenceGenerator::EncodePeek(),
                                        std::string(1, '\x07') + next.substr(1)};
  for (const std::string& payload : bad) {
    EXPECT_EQ(ApplyPayload(&machine, payload).code, StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Peek(machine), 1u);
  EXPECT_EQ(machine.Query("").code, StatusCode::kInvalidArgument);
  EXPECT_EQ(machine.Query(next).code, StatusCode::kInvalidArgument);
}

TEST(SequenceGeneratorTest, DecodersRejectMalformedAnswers) {
  EXPECT_FALSE(SequenceGenerator::DecodeBlock("").ok());
  EXPECT_FALSE(SequenceGenerator::DecodeBlock(std::string(15, '\x01')).ok());
  EXPECT_FALSE(SequenceGenerator::DecodeBlock(std::string(17, '\x01')).ok());
  ByteWriter zero_count;
  zero_count.PutU64(5);
  zero_count.PutU64(0);
  EXPECT_FALSE(SequenceGenerator::DecodeBlock(zero_count.data()).ok());
  EXPECT_FALSE(SequenceGenerator::DecodePeek(std::string(8, '\0')).ok());
  EXPECT_FALSE(SequenceGenerator::DecodePeek("1234567").ok());
}

TEST(SequenceGeneratorTest, RunningOutIsAbortedNotWrapped) {
  ByteWriter snapshot;
  snapshot.PutU8(1);
  snapshot.PutU64(std::numeric_limits<uint64_t>::max() - 10);
  SequenceGenerator machine;
  ASSERT_TRUE(machine.Restore(snapshot.data()).ok());
  Outcome outcome = ApplyPayload(&machine, SequenceGenerator::EncodeNext(11));
  EXPECT_EQ(outcome.code, StatusCode::kAborted);
  EXPECT_EQ(Peek(machine), std::numeric_limits<uint64_t>::max() - 10);
  EXPECT_EQ(Next(&machine, 10).first, std::numeric_limits<uint64_t>::max() - 10);
}

TEST(SequenceGeneratorTest, SnapshotRoundTripAndGarbageRejected) {
  SequenceGenerator machine;
  Next(&machine, 41);
  SequenceGenerator copy;
  ASSERT_TRUE(copy.Restore(machine.Snapshot()).ok());
  EXPECT_EQ(Next(&copy, 2), Next(&machine, 2));

  const std::string good = machine.Snapshot();
  ByteWriter zero;
  zero.PutU8(1);
  zero.PutU64(0);
  for (const std::string& bad : {std::string(), good.substr(0, 5), good + "x",
                                 std::string("\x02") + good.substr(1), zero.data()}) {
    EXPECT_EQ(copy.Restore(bad).code(), StatusCode::kCorruption);
  }
  EXPECT_EQ(Peek(copy), 44u);
}

// End to end with the Applier: a retried next(n) returns the block it got the first time and
// does not consume numbers again.
TEST(SequenceGeneratorTest, RetriedRequestGetsItsOriginalBlockThroughTheApplier) {
  Applier applier(std::make_unique<SequenceGenerator>());
  paxos::Command c;
  c.client_id = 42;
  c.sequence = 1;
  c.payload = SequenceGenerator::EncodeNext(100);
  paxos::Command other = c;
  other.client_id = 43;
  std::vector<Reply> replies;
  paxos::Entry e1{.slot = 1,
                  .ballot = {},
                  .value = {.epoch = {}, .leader_start = false, .commands = {c, other}}};
  paxos::Entry e2{
      .slot = 2, .ballot = {}, .value = {.epoch = {}, .leader_start = false, .commands = {c}}};
  applier.Apply({e1, e2}, &replies);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(SequenceGenerator::DecodeBlock(replies[0].outcome.data).value(), (Block{1, 100}));
  EXPECT_EQ(SequenceGenerator::DecodeBlock(replies[1].outcome.data).value(), (Block{101, 100}));
  EXPECT_EQ(replies[2].outcome, replies[0].outcome);
  EXPECT_TRUE(replies[2].duplicate);
  EXPECT_EQ(
      SequenceGenerator::DecodePeek(applier.Query(SequenceGenerator::EncodePeek()).data).value(),
      201u);
}

}  // namespace
}  // namespace ballot::samples
