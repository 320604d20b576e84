// `ballotctl store verify|dump` and the snapshot files beside the LMDB store: each is listed
// with its slot, sizes and checksum verdict, and a damaged one makes verify fail.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "store/file_snapshot_store.h"
#include "store/lmdb_store.h"
#include "store/snapshot_format.h"
#include "store/store_inspect.h"
#include "tests/store/test_util.h"

namespace ballot::store {
namespace {

using testing::SmallOptions;
using testing::TempDir;

// A data directory with an LMDB store and snapshots at slots 10 and 20 (20 is a few chunks).
void MakeDataDir(const std::string& dir) {
  {
    Result<std::unique_ptr<LmdbStore>> lmdb = LmdbStore::Open(SmallOptions(dir));
    ASSERT_OK(lmdb.status());
  }
  std::unique_ptr<FileSnapshotStore> snapshots = FileSnapshotStore::OpenDir(dir).value();
  for (paxos::Slot slot : {10, 20}) {
    std::unique_ptr<SnapshotSink> sink = snapshots->Create(slot).value();
    ASSERT_OK(sink->Write(std::string(slot == 20 ? 3 * kSnapshotChunkBytesMax : 100, 's')));
    ASSERT_OK(sink->Commit());
  }
}

void FlipByte(const std::string& path, size_t offset) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  file.read(&c, 1);
  c ^= 0x20;
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(&c, 1);
  CHECK(file.flush()) << path;
}

VerifyReport Verify(const std::string& dir) {
  std::unique_ptr<LmdbStore> store = LmdbStore::OpenForInspection(dir).value();
  return VerifyStore(store.get()).value();
}

TEST(SnapshotInspectTest, VerifyListsHealthySnapshotFiles) {
  TempDir dir;
  MakeDataDir(dir.path());
  // An unfinished write is listed, and is not a problem: the live server may be writing it.
  std::ofstream(dir.path() + "/snapshots/tmp-30-1.snap") << "partial";
  const VerifyReport report = Verify(dir.path());
  EXPECT_TRUE(report.ok()) << report.problems.front();
  ASSERT_EQ(report.snapshot_files.size(), 3u);
  EXPECT_EQ(report.snapshot_files[0].applied_below, 20u);
  EXPECT_EQ(report.snapshot_files[0].state_bytes, 3 * kSnapshotChunkBytesMax);
  EXPECT_EQ(report.snapshot_files[1].applied_below, 10u);
  EXPECT_TRUE(report.snapshot_files[2].unfinished);
  std::ostringstream out;
  PrintVerifyReport(report, out);
  EXPECT_NE(out.str().find("snapshot files: 3\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("snapshot file snap-00000000000000000020.snap: applied_below 20, "),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("(state 100 B), checksums OK"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("tmp-30-1.snap: 7 B, unfinished"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("\nOK\n"), std::string::npos) << out.str();
  EXPECT_TRUE(std::ifstream(dir.path() + "/snapshots/tmp-30-1.snap").good()) << "only reads";
}

TEST(SnapshotInspectTest, ACorruptSnapshotFileFailsVerifyAndDump) {
  TempDir dir;
  MakeDataDir(dir.path());
  const std::string path = dir.path() + "/snapshots/" + FileSnapshotStore::FileName(20);
  // In the second chunk's payload.
  FlipByte(path, kSnapshotFileHeaderBytes + 2 * kSnapshotFrameHeaderBytes + kSnapshotChunkBytesMax +
                     1000);
  const VerifyReport report = Verify(dir.path());
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("snapshot file snap-00000000000000000020.snap: "
                                    "CORRUPTION"),
            std::string::npos)
      << report.problems[0];
  EXPECT_NE(report.problems[0].find("chunk fails its checksum"), std::string::npos)
      << report.problems[0];
  ASSERT_EQ(report.snapshot_files.size(), 2u);
  EXPECT_EQ(report.snapshot_files[0].status.code(), StatusCode::kCorruption);
  EXPECT_EQ(report.snapshot_files[0].state_bytes, kSnapshotChunkBytesMax) << "the good part";
  EXPECT_TRUE(report.snapshot_files[1].status.ok());

  std::unique_ptr<LmdbStore> store = LmdbStore::OpenForInspection(dir.path()).value();
  std::ostringstream out;
  const Status dumped = DumpStore(store.get(), DumpOptions(), out);
  EXPECT_EQ(dumped.code(), StatusCode::kCorruption);
  EXPECT_NE(out.str().find("snapshot file snap-00000000000000000020.snap: applied_below 20, "),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("BAD: CORRUPTION"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("snap-00000000000000000010.snap: applied_below 10, "), std::string::npos)
      << out.str();
}

// The same through the real command line: exit status 1 on a corrupt snapshot, 0 otherwise.
int RunBallotctl(const std::string& args, std::string* output) {
  const std::string command = std::string(BALLOTCTL_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  CHECK(pipe != nullptr) << command;
  char buffer[4096];
  output->clear();
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(SnapshotInspectTest, BallotctlStoreVerifyExitsNonZeroOnACorruptSnapshot) {
  TempDir dir;
  MakeDataDir(dir.path());
  std::string output;
  EXPECT_EQ(RunBallotctl("store verify --data_dir=" + dir.path(), &output), 0) << output;
  EXPECT_NE(output.find("checksums OK"), std::string::npos) << output;

  FlipByte(dir.path() + "/snapshots/" + FileSnapshotStore::FileName(10), 3);  // the header
  EXPECT_EQ(RunBallotctl("store verify --data_dir=" + dir.path(), &output), 1) << output;
  EXPECT_NE(output.find("PROBLEM: snapshot file snap-00000000000000000010.snap"), std::string::npos)
      << output;
  EXPECT_EQ(RunBallotctl("store dump --data_dir=" + dir.path(), &output), 1) << output;
  EXPECT_NE(output.find("BAD: CORRUPTION"), std::string::npos) << output;
}

}  // namespace
}  // namespace ballot::store
