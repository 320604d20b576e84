// A linearizability checker for key-value histories: each key is a read/write register (reads
// included), checked on its own (linearizability is compositional, Herlihy & Wing), by a
// Wing & Gong search with memoisation of (operations linearized, register value), as Knossos
// and Porcupine do.
//
// A history is what concurrent clients saw, in real time: every operation has the time it was
// invoked and the time its answer arrived. An operation whose answer never came (a timeout, a
// connection lost) is "indeterminate": a write of that kind may take effect at any point after
// its invocation, or never; a read of that kind told us nothing and is left out by the caller.
// Values written are unique per key (the workload makes them so), which is what lets a read
// name the write it saw.
//
// Bounded: the search gives up after `steps_max` steps and says so (never "ok" when it did not
// finish). A few hundred operations per key with a handful of clients check in milliseconds.
#ifndef BALLOT_TESTS_PARTITION_LINEARIZABILITY_H_
#define BALLOT_TESTS_PARTITION_LINEARIZABILITY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ballot::partition_test {

struct KvOp {
  enum class Kind { kWrite, kRead };
  Kind kind = Kind::kRead;
  int client = 0;
  std::string key;
  // kWrite: the value written. kRead: the value read; std::nullopt = the key was absent.
  std::optional<std::string> value;
  int64_t invoke_us = 0;
  // When the answer arrived; std::nullopt = indeterminate (writes only).
  std::optional<int64_t> complete_us;
};

struct CheckResult {
  enum class Verdict { kLinearizable, kNotLinearizable, kGaveUp };
  Verdict verdict = Verdict::kLinearizable;
  std::string key;          // the first key that is not linearizable (or gave up)
  std::string explanation;  // for a failure: the operations of that key, and why
  uint64_t steps = 0;       // search steps, summed over keys
};

// Checks every key of `history`. Keys start absent. CHECK-fails on a malformed history (a read
// without completion, completion before invocation, a value written twice to one key).
CheckResult CheckLinearizable(const std::vector<KvOp>& history, uint64_t steps_max = 50'000'000);

// One line per operation, for failure messages.
std::string Describe(const KvOp& op);

}  // namespace ballot::partition_test

#endif  // BALLOT_TESTS_PARTITION_LINEARIZABILITY_H_
