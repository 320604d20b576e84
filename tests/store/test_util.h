// Helpers shared by the store tests: fresh temporary directories and sample protocol values.
#ifndef BALLOT_TESTS_STORE_TEST_UTIL_H_
#define BALLOT_TESTS_STORE_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "paxos/ready.h"
#include "paxos/types.h"
#include "store/lmdb_store.h"

namespace ballot::store::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ballot-store-test-XXXXXX";
    char* made = mkdtemp(pattern.data());
    CHECK(made != nullptr) << "mkdtemp " << pattern;
    path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // A path inside the directory that does not exist yet (for "Open creates the dir").
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline LmdbOptions SmallOptions(const std::string& dir, uint64_t cluster = 7, uint32_t node = 1) {
  LmdbOptions o;
  o.dir = dir;
  o.cluster_id = cluster;
  o.node_id = node;
  o.map_bytes = 1 * kMiB;
  o.map_bytes_max = 256 * kMiB;
  // The store tests run twice (tests/store/CMakeLists.txt): with the journal (the default) and,
  // as "nojournal.*", with BALLOT_TEST_STORE_JOURNAL=0 (every write an LMDB commit).
  const char* journal = getenv("BALLOT_TEST_STORE_JOURNAL");
  o.journal = journal == nullptr || std::string(journal) != "0";
  o.journal_checkpoint_bytes = 64 * 1024;  // small: checkpoints happen in short tests too
  return o;
}

inline paxos::Command MakeCommand(uint64_t client, uint64_t seq, std::string payload) {
  paxos::Command c;
  c.client_id = client;
  c.sequence = seq;
  c.acked_sequence = seq > 0 ? seq - 1 : 0;
  c.expected_epoch = 0x1234'5678'9abc'def0ULL + seq;
  c.stamp_ms = 1'700'000'000'000ULL + seq;
  c.payload = std::move(payload);
  return c;
}

// An entry whose value has `commands` commands, each with a payload naming the slot.
inline paxos::Entry MakeEntry(paxos::Slot slot, paxos::Ballot ballot, int commands = 2) {
  paxos::Entry e;
  e.slot = slot;
  e.ballot = ballot;
  e.value.epoch = ballot;
  e.value.leader_start = slot % 10 == 0;
  for (int i = 0; i < commands; ++i) {
    e.value.commands.push_back(MakeCommand(
        100 + i, slot * 10 + i, "payload-" + std::to_string(slot) + "-" + std::to_string(i)));
  }
  return e;
}

#define ASSERT_OK(expr)                                                   \
  do {                                                                    \
    const ::ballot::Status assert_s_ = (expr);                            \
    ASSERT_TRUE(assert_s_.ok()) << #expr << ": " << assert_s_.ToString(); \
  } while (0)
#define EXPECT_OK(expr)                                                   \
  do {                                                                    \
    const ::ballot::Status expect_s_ = (expr);                            \
    EXPECT_TRUE(expect_s_.ok()) << #expr << ": " << expect_s_.ToString(); \
  } while (0)

}  // namespace ballot::store::testing

#endif  // BALLOT_TESTS_STORE_TEST_UTIL_H_
