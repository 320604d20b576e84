// Trace: folds every simulated event into one 64-bit hash (two runs of one seed must agree), and
// in verbose mode prints a readable line per event.
#ifndef BALLOT_TESTS_SIM_TRACE_H_
#define BALLOT_TESTS_SIM_TRACE_H_

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>

#include "tests/sim/rng.h"

namespace ballot::sim {

// Virtual time, in simulated milliseconds. One core tick is kTickMs.
using Time = uint64_t;
inline constexpr Time kTickMs = 10;

class Trace {
 public:
  // `out` may be null when not verbose.
  Trace(bool verbose, std::ostream* out) : verbose_(verbose && out != nullptr), out_(out) {}

  void Fold(std::initializer_list<uint64_t> words) {
    for (uint64_t w : words) hash_ = Mix64(hash_ ^ w) + 0x2545F4914F6CDD1Dull;
  }
  uint64_t hash() const { return hash_; }

  bool verbose() const { return verbose_; }
  void Log(Time now, const std::string& line) {
    if (!verbose_) return;
    *out_ << "[t=" << now / kTickMs << "." << now % kTickMs << "] " << line << "\n";
  }

 private:
  const bool verbose_;
  std::ostream* const out_;
  uint64_t hash_ = 0x6A09E667F3BCC908ull;
};

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_TRACE_H_
