// Replays every fuzz target (linked in as ordinary code, see fuzz_target.h) over its checked-in
// seed corpus, tests/fuzz/corpus/<target>/, and over every input that once crashed it,
// tests/fuzz/crashes/<target>/. A crash file is added with the fix of the bug it found, so this
// test failed before that fix and passes after it. Runs in every build (GCC, SANITIZE=1), no
// clang needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace ballot::fuzz {

std::map<std::string, TargetFn>& Targets() {
  static auto* targets = new std::map<std::string, TargetFn>();
  return *targets;
}

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class FuzzReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(FuzzReplay, CorpusAndCrashesRunClean) {
  const std::string& name = GetParam();
  const TargetFn fn = Targets().at(name);
  const fs::path root = BALLOT_FUZZ_DIR;
  const std::vector<fs::path> corpus = FilesIn(root / "corpus" / name);
  // A target without seeds is a setup mistake (the generator was not run), not a pass.
  ASSERT_GE(corpus.size(), 3u) << "no seed corpus in " << (root / "corpus" / name);
  std::vector<fs::path> inputs = corpus;
  const std::vector<fs::path> crashes = FilesIn(root / "crashes" / name);
  inputs.insert(inputs.end(), crashes.begin(), crashes.end());
  for (const fs::path& p : inputs) {
    SCOPED_TRACE(p.string());
    const std::string bytes = ReadFile(p);
    // A CHECK failure inside aborts the binary: ctest reports this test failed, with the file
    // named in the glog message's stack (and the SCOPED_TRACE for gtest failures).
    fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  // Also the degenerate inputs every target must survive.
  fn(nullptr, 0);
  const uint8_t one[1] = {0};
  fn(one, 1);
}

std::vector<std::string> TargetNames() {
  std::vector<std::string> names;
  for (const auto& [name, fn] : Targets()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzReplay, ::testing::ValuesIn(TargetNames()),
                         [](const auto& info) { return info.param; });

TEST(FuzzTargets, EveryExpectedTargetIsLinked) {
  for (const char* name : {"frame", "codec", "record_codec", "session_table", "applier_restore",
                           "sequence_restore", "kv_restore", "lock_restore"}) {
    EXPECT_TRUE(Targets().contains(name)) << name;
  }
}

}  // namespace
}  // namespace ballot::fuzz
