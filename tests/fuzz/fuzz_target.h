// BALLOT_FUZZ_TARGET(name) { ...body using data, size... } defines one fuzz target.
//
// The same source builds two ways:
//   - in the libFuzzer build (-DBALLOT_FUZZ=ON, clang, BALLOT_FUZZ_LIBFUZZER defined) the body
//     becomes LLVMFuzzerTestOneInput of that target's own binary;
//   - in every ordinary build it is registered by name, and tests/fuzz/fuzz_replay_test.cc runs
//     it over the checked-in seed corpus and every saved crash (tests/fuzz/corpus/<name>/,
//     tests/fuzz/crashes/<name>/). That is how a crash found once stays a test forever, under
//     GCC, and under SANITIZE=1 too.
//
// A target reports a bug by crashing: a CHECK that fails (glog aborts), or a sanitizer error.
// Inputs that are merely malformed must be rejected by the code under test with a Status.
#ifndef BALLOT_TESTS_FUZZ_FUZZ_TARGET_H_
#define BALLOT_TESTS_FUZZ_FUZZ_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace ballot::fuzz {

using TargetFn = void (*)(const uint8_t* data, size_t size);

// Every target linked into this binary, by name (ordinary builds only).
std::map<std::string, TargetFn>& Targets();

struct Registrar {
  Registrar(const char* name, TargetFn fn) { Targets()[name] = fn; }
};

}  // namespace ballot::fuzz

#ifdef BALLOT_FUZZ_LIBFUZZER
#define BALLOT_FUZZ_ENTRY(name)                                             \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    BallotFuzz_##name(data, size);                                          \
    return 0;                                                               \
  }
#else
#define BALLOT_FUZZ_ENTRY(name) \
  static const ::ballot::fuzz::Registrar kBallotFuzzRegistrar_##name(#name, &BallotFuzz_##name);
#endif

#define BALLOT_FUZZ_TARGET(name)                                   \
  static void BallotFuzz_##name(const uint8_t* data, size_t size); \
  BALLOT_FUZZ_ENTRY(name)                                          \
  static void BallotFuzz_##name(const uint8_t* data, size_t size)

#endif  // BALLOT_TESTS_FUZZ_FUZZ_TARGET_H_
