// NumberLoad: client threads drawing numbers from a ProcessCluster's sequence generator, and the
// checks on what they were handed.
//
// Each worker owns one ballot::Client and loops NextNumbers(random count in 1..count_max) until
// stopped, recording every acknowledged call with its block and its [sent, replied] interval on
// the steady clock. A call that fails (e.g. kTimeout while no quorum is up) has an unknown fate:
// it is counted, not recorded, and the numbers it may have consumed are never checked.
//
// Threads: Start/Stop from the test's thread; the accessors and waits from any thread.
#ifndef BALLOT_TESTS_CLUSTER_NUMBER_LOAD_H_
#define BALLOT_TESTS_CLUSTER_NUMBER_LOAD_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {

struct NumberCall {
  size_t worker = 0;
  uint64_t first = 0;
  uint64_t count = 0;
  Clock::time_point sent;
  Clock::time_point replied;

  uint64_t last() const { return first + count - 1; }
};

struct NumberLoadOptions {
  size_t workers = 4;
  uint64_t count_max = 5;
  std::chrono::milliseconds call_timeout{5000};
  uint64_t seed = 1;
};

class NumberLoad {
 public:
  // Makes one client per worker; starts nothing.
  NumberLoad(const ProcessCluster& cluster, NumberLoadOptions options);
  ~NumberLoad();  // Stop()s
  NumberLoad(const NumberLoad&) = delete;
  NumberLoad& operator=(const NumberLoad&) = delete;

  void Start();
  // Asks the workers to finish and joins them (each ends its call in flight first, so this can
  // take up to call_timeout).
  void Stop();

  std::vector<NumberCall> acked() const;
  size_t acked_count() const;
  size_t failed_count() const;
  // "code: last message" per failure code seen, with counts, for the test's output.
  std::string DescribeFailures() const;
  // Calls whose reply was malformed (a block of the wrong size): must stay empty.
  std::vector<std::string> bad_replies() const;

  // Waits until a call sent at or after `t` is acknowledged; returns its reply time, or nullopt
  // at the deadline.
  std::optional<Clock::time_point> WaitForAckSentAfter(Clock::time_point t,
                                                       Clock::time_point deadline) const;
  // Waits until `count` calls sent at or after `t` have been acknowledged.
  bool WaitForAcksSentAfter(Clock::time_point t, size_t count, Clock::time_point deadline) const;
  // Waits until every worker has had at least one call acknowledged.
  bool WaitForEveryWorker(Clock::time_point deadline) const;

 private:
  void Run(size_t worker);
  size_t CountSentAfterLocked(Clock::time_point t) const;

  const NumberLoadOptions options_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::vector<NumberCall> acked_;                    // guarded by mu_
  std::vector<size_t> acked_per_worker_;             // guarded by mu_
  std::map<std::string, size_t> failures_;           // guarded by mu_: code -> count
  std::map<std::string, std::string> last_failure_;  // guarded by mu_: code -> message
  size_t failed_ = 0;                                // guarded by mu_
  std::vector<std::string> bad_replies_;             // guarded by mu_
};

// Every acknowledged number is handed out once: returns a description of each overlap (at most
// `max` of them), empty if none.
std::vector<std::string> FindDuplicates(std::vector<NumberCall> calls, size_t max = 10);

// Real-time order (linearizability of next(n)): whenever call A was answered before call B was
// sent, every number of A is below every number of B. Returns the violations (at most `max`).
std::vector<std::string> FindOrderViolations(const std::vector<NumberCall>& calls, size_t max = 10);

}  // namespace ballot::cluster_test

#endif  // BALLOT_TESTS_CLUSTER_NUMBER_LOAD_H_
