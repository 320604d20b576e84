// SnapshotStore contract tests, typed over every implementation: they must behave identically,
// raw bytes included, because the simulator runs on one and production on the other.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/mem_snapshot_store.h"
#include "store/snapshot_format.h"
#include "store/snapshot_store.h"
#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::TempDir;

constexpr size_t kChunk = kSnapshotChunkBytesMax;
constexpr size_t kRawPieceBytes = 64 * 1024;  // what a transfer would send per message

// Deterministic bytes that differ at every offset, so a misplaced chunk cannot go unnoticed.
std::string Pattern(size_t bytes, uint64_t seed) {
  std::string data(bytes, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < bytes; i += 8) {
    const uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < bytes; j++) data[i + j] = static_cast<char>(v >> (8 * j));
  }
  return data;
}

struct MemHarness {
  MemSnapshotStore store;
  SnapshotStore* get() { return &store; }
  void MutateRaw(paxos::Slot slot, const std::function<void(std::string*)>& edit) {
    ASSERT_TRUE(store.TEST_MutateRaw(slot, edit));
  }
};

template <typename Harness>
class SnapshotStoreTest : public ::testing::Test {
 protected:
  SnapshotStore* store() { return harness_.get(); }

  // Writes `data` as the snapshot for `slot`, in pieces of random sizes up to a chunk.
  Status Put(paxos::Slot slot, const std::string& data, uint64_t seed = 1) {
    Result<std::unique_ptr<SnapshotSink>> sink = store()->Create(slot);
    if (!sink.ok()) return sink.status();
    std::mt19937_64 rng(seed);
    for (size_t offset = 0; offset < data.size();) {
      const size_t n = std::min(data.size() - offset, size_t{1} + rng() % kChunk);
      Status status = sink.value()->Write(std::string_view(data).substr(offset, n));
      if (!status.ok()) return status;
      offset += n;
    }
    return sink.value()->Commit();
  }

  // Reads a snapshot with random read sizes. On failure, checks that every byte handed out
  // before the error was the original's (a damaged chunk is never handed out) and returns it.
  Status Get(paxos::Slot slot, std::string* out, const std::string* original = nullptr) {
    out->clear();
    Result<std::unique_ptr<SnapshotReader>> reader = store()->Open(slot);
    if (!reader.ok()) return reader.status();
    std::mt19937_64 rng(slot);
    std::string piece;
    while (true) {
      Status status = reader.value()->Read(size_t{1} + rng() % (2 * kChunk), &piece);
      if (!status.ok()) {
        if (original != nullptr) {
          EXPECT_EQ(*out, original->substr(0, out->size())) << "damaged bytes were handed out";
        }
        return status;
      }
      if (piece.empty()) return Status::Ok();
      EXPECT_LE(piece.size(), 2 * kChunk);
      out->append(piece);
    }
  }

  std::string Raw(SnapshotStore* from, paxos::Slot slot) {
    std::string raw;
    std::string piece;
    while (true) {
      EXPECT_OK(from->ReadRaw(slot, raw.size(), kRawPieceBytes, &piece));
      if (piece.empty()) return raw;
      EXPECT_LE(piece.size(), kRawPieceBytes);
      raw += piece;
    }
  }

  void MutateRaw(paxos::Slot slot, const std::function<void(std::string*)>& edit) {
    harness_.MutateRaw(slot, edit);
  }

  Harness harness_;
};

using Harnesses = ::testing::Types<MemHarness>;
TYPED_TEST_SUITE(SnapshotStoreTest, Harnesses);

TYPED_TEST(SnapshotStoreTest, EmptyStoreHasNothing) {
  EXPECT_TRUE(this->store()->List().value().empty());
  EXPECT_EQ(this->store()->Open(5).status().code(), StatusCode::kNotFound);
  std::string out;
  EXPECT_EQ(this->store()->ReadRaw(5, 0, 10, &out).code(), StatusCode::kNotFound);
  EXPECT_EQ(VerifySnapshot(this->store(), 5).code(), StatusCode::kNotFound);
  EXPECT_OK(this->store()->DeleteBelow(100));
}

TYPED_TEST(SnapshotStoreTest, RoundTripsEverySizeAroundTheChunkSize) {
  const std::vector<size_t> sizes = {0, 1, 100, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk + 7};
  for (size_t i = 0; i < sizes.size(); i++) {
    const paxos::Slot slot = 10 + i;
    const std::string data = Pattern(sizes[i], i);
    ASSERT_OK(this->Put(slot, data, i));
    std::string back;
    ASSERT_OK(this->Get(slot, &back));
    EXPECT_EQ(back, data) << "size " << sizes[i];
    EXPECT_OK(VerifySnapshot(this->store(), slot));
  }
  std::vector<SnapshotInfo> infos = this->store()->List().value();
  ASSERT_EQ(infos.size(), sizes.size());
  for (size_t i = 0; i < infos.size(); i++) {
    const size_t size_index = sizes.size() - 1 - i;  // newest first
    EXPECT_EQ(infos[i].applied_below, 10 + size_index);
    EXPECT_EQ(infos[i].raw_bytes, this->Raw(this->store(), infos[i].applied_below).size());
    EXPECT_GT(infos[i].raw_bytes, sizes[size_index]);
  }
}

TYPED_TEST(SnapshotStoreTest, NothingIsVisibleBeforeCommitAndAnAbandonedSinkLeavesNothing) {
  {
    Result<std::unique_ptr<SnapshotSink>> sink = this->store()->Create(7);
    ASSERT_OK(sink.status());
    ASSERT_OK(sink.value()->Write(Pattern(kChunk + 5, 1)));
    EXPECT_TRUE(this->store()->List().value().empty());
    EXPECT_EQ(this->store()->Open(7).status().code(), StatusCode::kNotFound);
  }  // abandoned
  EXPECT_TRUE(this->store()->List().value().empty());
}

TYPED_TEST(SnapshotStoreTest, CommittingTheSameSlotAgainReplacesIt) {
  ASSERT_OK(this->Put(9, "first"));
  ASSERT_OK(this->Put(9, "second"));
  std::string back;
  ASSERT_OK(this->Get(9, &back));
  EXPECT_EQ(back, "second");
  EXPECT_EQ(this->store()->List().value().size(), 1u);
}

TYPED_TEST(SnapshotStoreTest, DeleteBelowKeepsTheRest) {
  for (paxos::Slot slot : {3, 5, 8}) ASSERT_OK(this->Put(slot, "s" + std::to_string(slot)));
  ASSERT_OK(this->store()->DeleteBelow(5));
  std::vector<SnapshotInfo> infos = this->store()->List().value();
  ASSERT_EQ(infos.size(), 2u);
  EXPECT_EQ(infos[0].applied_below, 8u);
  EXPECT_EQ(infos[1].applied_below, 5u);
  EXPECT_EQ(this->store()->Open(3).status().code(), StatusCode::kNotFound);
  std::string back;
  ASSERT_OK(this->Get(5, &back));
  EXPECT_EQ(back, "s5");
}

TYPED_TEST(SnapshotStoreTest, AnOpenReaderOutlivesDeletion) {
  const std::string data = Pattern(2 * kChunk + 3, 4);
  ASSERT_OK(this->Put(4, data));
  Result<std::unique_ptr<SnapshotReader>> reader = this->store()->Open(4);
  ASSERT_OK(reader.status());
  ASSERT_OK(this->store()->DeleteBelow(5));
  EXPECT_TRUE(this->store()->List().value().empty());
  std::string back;
  ASSERT_OK(reader.value()->ReadExact(data.size(), &back));
  EXPECT_EQ(back, data);
  EXPECT_OK(reader.value()->ExpectEnd());
}

// Offsets worth flipping: all of the header and of every frame header and the end record, and
// a sample of payload bytes (every byte of 2 MiB would take minutes for little more coverage).
std::vector<size_t> FlipOffsets(size_t raw_bytes, size_t data_bytes) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < kSnapshotFileHeaderBytes; i++) offsets.push_back(i);
  size_t frame = kSnapshotFileHeaderBytes;
  for (size_t left = data_bytes; left > 0;) {
    const size_t n = std::min(left, kChunk);
    for (size_t i = 0; i < kSnapshotFrameHeaderBytes + 2; i++) offsets.push_back(frame + i);
    offsets.push_back(frame + kSnapshotFrameHeaderBytes + n - 1);
    frame += kSnapshotFrameHeaderBytes + n;
    left -= n;
  }
  for (size_t i = frame; i < raw_bytes; i++) offsets.push_back(i);  // the end record
  std::mt19937_64 rng(raw_bytes);
  for (int i = 0; i < 40; i++) offsets.push_back(rng() % raw_bytes);
  return offsets;
}

TYPED_TEST(SnapshotStoreTest, AFlippedByteAnywhereIsCorruption) {
  const std::string data = Pattern(2 * kChunk + 100, 5);
  ASSERT_OK(this->Put(6, data));
  const std::string good_raw = this->Raw(this->store(), 6);
  const std::vector<size_t> offsets = FlipOffsets(good_raw.size(), data.size());
  ASSERT_EQ(offsets.back() < good_raw.size(), true);
  for (size_t offset : offsets) {
    SCOPED_TRACE("flipped byte " + std::to_string(offset));
    this->MutateRaw(6, [&](std::string* raw) {
      *raw = good_raw;
      (*raw)[offset] ^= 0x10;
    });
    std::string back;
    EXPECT_EQ(this->Get(6, &back, &data).code(), StatusCode::kCorruption);
    EXPECT_EQ(VerifySnapshot(this->store(), 6).code(), StatusCode::kCorruption);
  }
  this->MutateRaw(6, [&](std::string* raw) { *raw = good_raw; });
  EXPECT_OK(VerifySnapshot(this->store(), 6));  // the control case
}

TYPED_TEST(SnapshotStoreTest, TruncatedOrExtendedIsCorruption) {
  const std::string data = Pattern(kChunk + 100, 6);
  ASSERT_OK(this->Put(6, data));
  const std::string good_raw = this->Raw(this->store(), 6);
  const size_t first_frame_end = kSnapshotFileHeaderBytes + kSnapshotFrameHeaderBytes + kChunk;
  std::vector<std::string> bad;
  for (size_t size :
       {size_t{0}, size_t{3}, kSnapshotFileHeaderBytes, first_frame_end, first_frame_end + 5,
        good_raw.size() - kSnapshotEndBodyBytes, good_raw.size() - 1}) {
    bad.push_back(good_raw.substr(0, size));
  }
  bad.push_back(good_raw + "x");
  // The end record and the last frame dropped: every remaining frame is intact.
  bad.push_back(
      good_raw.substr(0, first_frame_end) +
      good_raw.substr(good_raw.size() - kSnapshotFrameHeaderBytes - kSnapshotEndBodyBytes));
  for (const std::string& raw_bytes : bad) {
    SCOPED_TRACE("raw size " + std::to_string(raw_bytes.size()));
    this->MutateRaw(6, [&](std::string* raw) { *raw = raw_bytes; });
    std::string back;
    EXPECT_EQ(this->Get(6, &back, &data).code(), StatusCode::kCorruption);
  }
}

TYPED_TEST(SnapshotStoreTest, RawCopyBetweenTwoStoresInPieces) {
  const std::string data = Pattern(3 * kChunk + 12345, 7);
  ASSERT_OK(this->Put(42, data));
  TypeParam other_harness;
  SnapshotStore* other = other_harness.get();
  Result<std::unique_ptr<SnapshotSink>> sink = other->CreateRaw(42);
  ASSERT_OK(sink.status());
  std::string piece;
  for (uint64_t offset = 0;; offset += piece.size()) {
    ASSERT_OK(this->store()->ReadRaw(42, offset, kRawPieceBytes, &piece));
    if (piece.empty()) break;
    ASSERT_OK(sink.value()->Write(piece));
    EXPECT_TRUE(other->List().value().empty());
  }
  ASSERT_OK(sink.value()->Commit());
  EXPECT_EQ(this->Raw(other, 42), this->Raw(this->store(), 42));
  EXPECT_OK(VerifySnapshot(other, 42));
  Result<std::unique_ptr<SnapshotReader>> reader = other->Open(42);
  ASSERT_OK(reader.status());
  std::string back;
  ASSERT_OK(reader.value()->ReadExact(data.size(), &back));
  EXPECT_EQ(back, data);
  EXPECT_OK(reader.value()->ExpectEnd());
}

TYPED_TEST(SnapshotStoreTest, ADamagedOrIncompleteRawCopyIsRefusedAtCommit) {
  const std::string data = Pattern(2 * kChunk, 8);
  ASSERT_OK(this->Put(42, data));
  const std::string raw = this->Raw(this->store(), 42);
  struct Case {
    const char* what;
    paxos::Slot slot;
    std::string bytes;
  };
  std::string flipped = raw;
  flipped[kChunk + 77] ^= 1;
  std::vector<Case> cases = {
      {"a flipped byte in the second piece", 42, flipped},
      {"the last piece missing", 42, raw.substr(0, raw.size() - kSnapshotEndBodyBytes)},
      {"nothing at all", 42, ""},
      {"another slot's snapshot", 43, raw},
  };
  TypeParam other_harness;
  SnapshotStore* other = other_harness.get();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Result<std::unique_ptr<SnapshotSink>> sink = other->CreateRaw(c.slot);
    ASSERT_OK(sink.status());
    for (size_t offset = 0; offset < c.bytes.size(); offset += kRawPieceBytes) {
      ASSERT_OK(sink.value()->Write(std::string_view(c.bytes).substr(offset, kRawPieceBytes)));
    }
    EXPECT_EQ(sink.value()->Commit().code(), StatusCode::kCorruption);
    EXPECT_TRUE(other->List().value().empty());
  }
}

}  // namespace
}  // namespace ballot::store
