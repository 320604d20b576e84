// The Learner (paxos/learner.h): applies chosen, durable values strictly in slot order.
#include "paxos/learner.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <vector>

#include "paxos/options.h"
#include "paxos/slot_log.h"
#include "paxos/types.h"

namespace ballot::paxos {
namespace {

Entry MakeEntry(Slot slot, const char* payload = "x") {
  Value v{Ballot(1, 1), false, {Command{1, slot, 0, 0, 0, payload}}};
  return Entry{slot, Ballot(1, 1), v};
}

std::vector<Slot> Slots(const std::vector<Entry>& entries) {
  std::vector<Slot> out;
  for (const Entry& e : entries) out.push_back(e.slot);
  return out;
}

class LearnerTest : public ::testing::Test {
 protected:
  // Writes entries (dirty, not durable), as accepts do.
  void Write(std::initializer_list<Slot> slots) {
    for (Slot s : slots) log_.Write(MakeEntry(s));
  }
  // Syncs everything written so far.
  void Sync() {
    WrittenVersions versions;
    (void)log_.TakeDirty(&versions);
    log_.MarkDurable(versions);
  }
  std::vector<Slot> Take() {
    std::vector<Entry> out;
    learner_.TakeApplicable(&out);
    return Slots(out);
  }

  SlotLog log_;
  PlantedBugs planted_;
  Learner learner_{&log_, /*chosen_below=*/1, /*applied_below=*/1, planted_};
};

TEST_F(LearnerTest, StartsEmpty) {
  EXPECT_EQ(learner_.chosen_below(), 1u);
  EXPECT_EQ(learner_.applied_below(), 1u);
  EXPECT_FALSE(learner_.HasApplicable());
  EXPECT_TRUE(Take().empty());
}

TEST_F(LearnerTest, ChosenBelowAdvancesOverContiguousChosenSlotsOnly) {
  Write({1, 2, 3, 4, 5});
  learner_.MarkChosen(2);
  learner_.MarkChosen(3);
  EXPECT_EQ(learner_.chosen_below(), 1u) << "slot 1 is not chosen yet";
  EXPECT_TRUE(learner_.IsChosen(2));
  EXPECT_FALSE(learner_.IsChosen(1));
  learner_.MarkChosen(1);
  EXPECT_EQ(learner_.chosen_below(), 4u);
  learner_.MarkChosen(5);
  EXPECT_EQ(learner_.chosen_below(), 4u) << "slot 4 is a gap";
  learner_.MarkChosen(4);
  EXPECT_EQ(learner_.chosen_below(), 6u);
  EXPECT_TRUE(learner_.IsChosen(1));
  EXPECT_FALSE(learner_.IsChosen(6));
}

TEST_F(LearnerTest, ChosenBelowStopsAtASlotWithNoRecord) {
  Write({1, 3});
  learner_.MarkChosen(1);
  learner_.MarkChosen(3);
  EXPECT_EQ(learner_.chosen_below(), 2u);
}

TEST_F(LearnerTest, MarkingAnAlreadyChosenSlotIsHarmless) {
  Write({1, 2});
  learner_.MarkChosen(1);
  learner_.MarkChosen(1);
  EXPECT_EQ(learner_.chosen_below(), 2u);
}

TEST_F(LearnerTest, AppliesOnlyDurableValues) {
  Write({1});
  learner_.MarkChosen(1);
  EXPECT_EQ(learner_.chosen_below(), 2u);
  EXPECT_FALSE(learner_.HasApplicable()) << "chosen but not yet synced here";
  EXPECT_TRUE(Take().empty());
  EXPECT_EQ(learner_.applied_below(), 1u);
  Sync();
  EXPECT_TRUE(learner_.HasApplicable());
  EXPECT_EQ(Take(), std::vector<Slot>({1}));
  EXPECT_EQ(learner_.applied_below(), 2u);
  EXPECT_TRUE(Take().empty()) << "each slot is handed out once";
}

TEST_F(LearnerTest, NeverAppliesPastAGap) {
  Write({1, 2, 3, 4});
  Sync();
  learner_.MarkChosen(1);
  learner_.MarkChosen(3);
  learner_.MarkChosen(4);
  EXPECT_EQ(Take(), std::vector<Slot>({1}));
  EXPECT_FALSE(learner_.HasApplicable());
  EXPECT_TRUE(Take().empty()) << "slot 2 is not chosen: 3 and 4 must wait";
  learner_.MarkChosen(2);
  EXPECT_EQ(Take(), std::vector<Slot>({2, 3, 4}));
}

TEST_F(LearnerTest, StopsAtTheFirstChosenSlotThatIsNotDurable) {
  Write({1, 2});
  Sync();
  Write({3});  // a newer write: 3 is not durable
  Write({4});
  for (Slot s : {1, 2, 3, 4}) learner_.MarkChosen(s);
  EXPECT_EQ(Take(), std::vector<Slot>({1, 2}));
  Sync();
  EXPECT_EQ(Take(), std::vector<Slot>({3, 4}));
}

TEST_F(LearnerTest, ARewriteMakesTheSlotWaitForTheNewVersion) {
  Write({1});
  WrittenVersions first;
  (void)log_.TakeDirty(&first);
  Write({1});  // rewritten (e.g. re-accepted at a higher ballot) before the first sync lands
  log_.MarkDurable(first);
  learner_.MarkChosen(1);
  EXPECT_TRUE(Take().empty()) << "the synced version is not the one in memory";
  Sync();
  EXPECT_EQ(Take(), std::vector<Slot>({1}));
}

TEST_F(LearnerTest, AppliesInSlotOrderWhateverTheOrderOfChoosing) {
  Write({1, 2, 3, 4, 5, 6});
  Sync();
  std::vector<Slot> applied;
  for (Slot s : {6, 4, 2, 5, 1, 3}) {
    learner_.MarkChosen(s);
    for (Slot a : Take()) applied.push_back(a);
  }
  EXPECT_EQ(applied, std::vector<Slot>({1, 2, 3, 4, 5, 6}));
}

TEST(LearnerRestartTest, RestartsFromChosenBelowAndAppliedBelow) {
  SlotLog log;
  for (Slot s = 1; s <= 6; ++s) log.Restore(MakeEntry(s));
  // Slots < 5 were chosen before the restart, slots < 3 applied (covered by a snapshot).
  Learner learner(&log, /*chosen_below=*/5, /*applied_below=*/3, PlantedBugs{});
  EXPECT_EQ(learner.chosen_below(), 5u);
  EXPECT_EQ(learner.applied_below(), 3u);
  EXPECT_TRUE(learner.IsChosen(1));
  EXPECT_TRUE(learner.IsChosen(4));
  EXPECT_FALSE(learner.IsChosen(5));
  std::vector<Entry> out;
  learner.TakeApplicable(&out);
  EXPECT_EQ(Slots(out), std::vector<Slot>({3, 4})) << "restored records are durable";
  out.clear();
  learner.MarkChosen(6);
  learner.TakeApplicable(&out);
  EXPECT_TRUE(out.empty());
  learner.MarkChosen(5);
  learner.TakeApplicable(&out);
  EXPECT_EQ(Slots(out), std::vector<Slot>({5, 6}));
}

TEST(LearnerRestartTest, ChosenBelowIsAtLeastAppliedBelow) {
  SlotLog log;
  log.Restore(MakeEntry(5));
  log.Restore(MakeEntry(6));
  log.DropBelow(5);
  Learner learner(&log, /*chosen_below=*/1, /*applied_below=*/5, PlantedBugs{});
  EXPECT_EQ(learner.chosen_below(), 5u);
  EXPECT_TRUE(learner.IsChosen(4));
  std::vector<Entry> out;
  learner.TakeApplicable(&out);
  EXPECT_TRUE(out.empty());
  learner.MarkChosen(5);
  learner.TakeApplicable(&out);
  EXPECT_EQ(Slots(out), std::vector<Slot>({5}));
}

TEST(LearnerRestartTest, ChosenRecordsBeyondChosenBelowAreNotAssumedChosen) {
  SlotLog log;
  for (Slot s = 1; s <= 4; ++s) log.Restore(MakeEntry(s));
  Learner learner(&log, /*chosen_below=*/3, /*applied_below=*/1, PlantedBugs{});
  EXPECT_EQ(learner.chosen_below(), 3u);
  EXPECT_FALSE(learner.IsChosen(3));
  EXPECT_FALSE(log.Find(3)->chosen);
  EXPECT_TRUE(log.Find(2)->chosen);
}

TEST(LearnerRestartTest, MarkChosenBelowTheSnapshotIsIgnored) {
  SlotLog log;
  log.Restore(MakeEntry(5));
  log.DropBelow(5);
  Learner learner(&log, /*chosen_below=*/5, /*applied_below=*/5, PlantedBugs{});
  learner.MarkChosen(3);  // no record: must not CHECK-fail
  EXPECT_EQ(learner.chosen_below(), 5u);
}

// The gap check above, as a function of the planted bugs, so it can be shown to fail.
void ChosenSlotsPastAGapWait(const PlantedBugs& planted) {
  SlotLog log;
  Learner learner(&log, 1, 1, planted);
  for (Slot s = 1; s <= 4; ++s) log.Write(MakeEntry(s));
  WrittenVersions versions;
  (void)log.TakeDirty(&versions);
  log.MarkDurable(versions);
  for (Slot s : {1, 3, 4}) learner.MarkChosen(s);
  std::vector<Entry> out;
  learner.TakeApplicable(&out);
  EXPECT_EQ(Slots(out), std::vector<Slot>({1})) << "applied past the gap at slot 2";
  EXPECT_EQ(learner.applied_below(), 2u);
}

TEST(LearnerTeethTest, TheGapCheckCatchesAnOutOfOrderLearner) {
  ChosenSlotsPastAGapWait(PlantedBugs{});
  PlantedBugs bug;
  bug.apply_out_of_order = true;
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    ChosenSlotsPastAGapWait(bug);
  }
  EXPECT_EQ(results.size(), 2) << "both expectations must fail with the planted bug";
}

}  // namespace
}  // namespace ballot::paxos
