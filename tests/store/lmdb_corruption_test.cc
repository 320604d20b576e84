// A flipped bit in a stored record is found on read and named; the store refuses to serve from
// it. Also: the verifier (store_inspect.h) on healthy and on broken stores.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "store/lmdb_store.h"
#include "store/store_inspect.h"
#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::MakeCommand;
using testing::MakeEntry;
using testing::SmallOptions;
using testing::TempDir;

std::unique_ptr<LmdbStore> MustOpen(const LmdbOptions& options) {
  Result<std::unique_ptr<LmdbStore>> r = LmdbStore::Open(options);
  CHECK(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(0);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  CHECK(out.good()) << path;
}

// Flips one bit in every copy of `needle` in data.mdb (copy-on-write leaves stale copies of a
// page in free pages; flipping all of them is sure to hit the live one). Returns the count.
int FlipBitInEvery(const std::string& dir, const std::string& needle, size_t offset_in_needle) {
  const std::string path = dir + "/data.mdb";
  std::string bytes = ReadFile(path);
  int flipped = 0;
  for (size_t at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 1)) {
    bytes[at + offset_in_needle] ^= 0x10;
    ++flipped;
  }
  WriteFile(path, bytes);
  return flipped;
}

paxos::Entry MarkedEntry(paxos::Slot slot, paxos::Ballot b) {
  paxos::Entry e = MakeEntry(slot, b, 1);
  e.value.commands.push_back(MakeCommand(9, 9, "MARKER-SLOT-" + std::to_string(slot) + "-END"));
  return e;
}

// Slots 1..50 at ballot 2.1, chosen below 40, with a snapshot at 5 (data "SNAPSHOT-DATA...").
void WriteSample(const std::string& dir) {
  auto store = MustOpen(SmallOptions(dir));
  const paxos::Ballot b(2, 1);
  paxos::PersistBatch batch;
  batch.promised = paxos::Ballot(0x1122334455ULL, 0x6677);
  for (paxos::Slot s = 1; s <= 50; ++s) batch.entries.push_back(MarkedEntry(s, b));
  batch.chosen_below = 40;
  CHECK(store->Write(batch).ok());
  CHECK(store->SaveSnapshot(Snapshot{5, "SNAPSHOT-DATA-0123456789"}).ok());
}

TEST(LmdbCorruptionTest, FlippedBitInAnEntryIsCorruptionNamingTheSlot) {
  TempDir tmp;
  WriteSample(tmp.path());
  ASSERT_GE(FlipBitInEvery(tmp.path(), "MARKER-SLOT-42-END", 13), 1);

  // Open does not read the log, so it succeeds; Load refuses.
  auto store = MustOpen(SmallOptions(tmp.path()));
  Result<paxos::DurableState> r = store->Load();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("slot 42: checksum mismatch"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find(tmp.path()), std::string::npos) << r.status().message();
  // The rest of the store is intact.
  EXPECT_EQ(store->LoadSnapshot().value()->data, "SNAPSHOT-DATA-0123456789");

  // The verifier names it too, and counts it as present rather than missing.
  Result<VerifyReport> v = VerifyStore(store.get());
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v.value().ok());
  EXPECT_EQ(v.value().bad_records, 1u);
  EXPECT_EQ(v.value().problems_total, 1u);
  ASSERT_EQ(v.value().problems.size(), 1u);
  EXPECT_NE(v.value().problems[0].find("slot 42"), std::string::npos) << v.value().problems[0];
}

TEST(LmdbCorruptionTest, FlippedBitInThePromiseIsCorruption) {
  TempDir tmp;
  WriteSample(tmp.path());
  // The promised record's payload is the ballot, little-endian: (0x1122334455 << 16 | 0x6677).
  const uint64_t raw = paxos::Ballot(0x1122334455ULL, 0x6677).raw();
  std::string needle(8, '\0');
  for (int i = 0; i < 8; ++i) needle[i] = static_cast<char>(raw >> (8 * i));
  ASSERT_GE(FlipBitInEvery(tmp.path(), needle, 3), 1);
  auto store = MustOpen(SmallOptions(tmp.path()));
  Result<paxos::DurableState> r = store->Load();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("promised: checksum mismatch"), std::string::npos)
      << r.status().message();
  // A write that must check the promise against the stored one refuses as well.
  paxos::PersistBatch b;
  b.promised = paxos::Ballot(0x1122334456ULL, 1);
  EXPECT_EQ(store->Write(b).code(), StatusCode::kCorruption);
}

TEST(LmdbCorruptionTest, FlippedBitInSnapshotDataIsCorruption) {
  TempDir tmp;
  WriteSample(tmp.path());
  ASSERT_GE(FlipBitInEvery(tmp.path(), "SNAPSHOT-DATA-0123456789", 20), 1);
  auto store = MustOpen(SmallOptions(tmp.path()));
  EXPECT_TRUE(store->Load().ok());  // Load reads the snapshot's metadata only
  Result<std::optional<Snapshot>> r = store->LoadSnapshot();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("snapshot_data: checksum mismatch"), std::string::npos)
      << r.status().message();
}

TEST(LmdbCorruptionTest, FlippedBitInTheIdentityRefusesOpen) {
  TempDir tmp;
  WriteSample(tmp.path());
  // Identity payload: format (u32 LE 1) | cluster (u64 LE 7) | node (u32 LE 1).
  const std::string needle("\x01\0\0\0\x07\0\0\0\0\0\0\0\x01\0\0\0", 16);
  ASSERT_GE(FlipBitInEvery(tmp.path(), needle, 4), 1);
  Result<std::unique_ptr<LmdbStore>> r = LmdbStore::Open(SmallOptions(tmp.path()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("identity"), std::string::npos) << r.status().message();
}

TEST(LmdbVerifyTest, HealthyStorePasses) {
  TempDir tmp;
  WriteSample(tmp.path());
  auto store = std::move(LmdbStore::OpenForInspection(tmp.path())).value();
  Result<VerifyReport> r = VerifyStore(store.get());
  ASSERT_TRUE(r.ok());
  const VerifyReport& v = r.value();
  EXPECT_TRUE(v.ok()) << v.problems.front();
  ASSERT_TRUE(v.identity.has_value());
  EXPECT_EQ(v.identity->cluster_id, 7u);
  EXPECT_EQ(v.entries, 46u);  // 5..50
  EXPECT_EQ(v.first_slot, 5u);
  EXPECT_EQ(v.last_slot, 50u);
  EXPECT_EQ(v.chosen_below, 40u);
  EXPECT_EQ(v.applied_below, 5u);
  std::ostringstream out;
  PrintVerifyReport(v, out);
  EXPECT_NE(out.str().find("\nOK\n"), std::string::npos) << out.str();
}

TEST(LmdbVerifyTest, InvariantViolationsAreReported) {
  TempDir tmp;
  {
    auto store = MustOpen(SmallOptions(tmp.path()));
    paxos::PersistBatch b;
    b.promised = paxos::Ballot(3, 1);
    // Slot 3 is missing below chosen_below 6, and slot 7 (not chosen) was accepted at a ballot
    // above the promise. The store itself does not police these; the verifier does.
    for (paxos::Slot s : {1, 2, 4, 5}) b.entries.push_back(MakeEntry(s, paxos::Ballot(3, 1)));
    b.entries.push_back(MakeEntry(7, paxos::Ballot(4, 2)));
    b.chosen_below = 6;
    ASSERT_OK(store->Write(b));
    // Load refuses a store with a chosen slot missing.
    Result<paxos::DurableState> r = store->Load();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_NE(r.status().message().find("slot 3 is missing"), std::string::npos)
        << r.status().message();
  }
  auto store = std::move(LmdbStore::OpenForInspection(tmp.path())).value();
  const VerifyReport v = VerifyStore(store.get()).value();
  EXPECT_EQ(v.problems_total, 2u);
  std::ostringstream out;
  PrintVerifyReport(v, out);
  EXPECT_NE(out.str().find("PROBLEM: slot 3 missing below chosen_below 6"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("PROBLEM: slot 7: accepted at ballot 4.2, above the promise 3.1"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("FAILED: 2 problems"), std::string::npos) << out.str();
}

TEST(LmdbDumpTest, PrintsEverythingReadably) {
  TempDir tmp;
  WriteSample(tmp.path());
  auto store = std::move(LmdbStore::OpenForInspection(tmp.path())).value();
  std::ostringstream out;
  DumpOptions options;
  options.from_slot = 10;
  options.slots_max = 2;
  options.show_commands = true;
  ASSERT_OK(DumpStore(store.get(), options, out));
  const std::string text = out.str();
  EXPECT_NE(text.find("identity: cluster 7 node 1 format 1"), std::string::npos) << text;
  EXPECT_NE(text.find("promised: 73588229205.26231"), std::string::npos) << text;
  EXPECT_NE(text.find("chosen_below: 40"), std::string::npos) << text;
  EXPECT_NE(text.find("snapshot: applied_below 5, 24 bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("slot 10  ballot 2.1  epoch 2.1  leader_start  commands 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("slot 11  ballot 2.1"), std::string::npos) << text;
  EXPECT_EQ(text.find("slot 12 "), std::string::npos) << text;
  EXPECT_NE(text.find("MARKER-SLOT-10-END"), std::string::npos) << text;
  EXPECT_NE(text.find("... 39 more slots not listed"), std::string::npos) << text;
  EXPECT_NE(text.find("slots: 46 (5..50), bad records: 0"), std::string::npos) << text;
}

}  // namespace
}  // namespace ballot::store
