// A fresh temporary directory for the fence tests (real LMDB files), removed on destruction.
#ifndef BALLOT_TESTS_FENCE_TEMP_DIR_H_
#define BALLOT_TESTS_FENCE_TEMP_DIR_H_

#include <glog/logging.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace ballot::fence::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ballot-fence-test-XXXXXX";
    const char* made = mkdtemp(pattern.data());
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
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace ballot::fence::testing

#endif  // BALLOT_TESTS_FENCE_TEMP_DIR_H_
