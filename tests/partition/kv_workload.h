// KvWorkload: concurrent key-value clients against a cluster, recording a history for the
// linearizability checker (tests/partition/linearizability.h).
//
// Each client is its own ballot::Client (its own session) on its own thread, doing puts of
// values unique per write ("c<client>.<n>") and linearizable gets, on a few keys, with real
// invoke and completion times (steady clock). A put without a successful answer is recorded as
// indeterminate (it may still apply); a get without one is left out (it saw nothing).
#ifndef BALLOT_TESTS_PARTITION_KV_WORKLOAD_H_
#define BALLOT_TESTS_PARTITION_KV_WORKLOAD_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "net/client/client.h"
#include "tests/partition/linearizability.h"

namespace ballot::partition_test {

class KvWorkload {
 public:
  struct Options {
    int clients = 4;
    int keys = 4;
    // Stop issuing once this many operations were invoked: keeps each key's history small
    // enough to check (a few hundred operations per key).
    int ops_max = 1600;
    std::chrono::milliseconds op_timeout{2000};
    // A pause between one client's operations, so that the history spreads over the scenario.
    std::chrono::milliseconds think{15};
  };

  // `make_client` is called once per client thread.
  KvWorkload(Options options, std::function<std::unique_ptr<Client>()> make_client);
  ~KvWorkload();  // Stop()s
  KvWorkload(const KvWorkload&) = delete;
  KvWorkload& operator=(const KvWorkload&) = delete;

  void Start();
  // Asks every client to stop and joins them (each finishes its current operation).
  void Stop();

  // Microseconds since Start(), on the clock the history uses.
  int64_t NowUs() const;
  // Operations answered successfully (writes and reads) so far, and those invoked at or after
  // `since_us` that were answered successfully.
  int64_t SucceededSince(int64_t since_us) const;
  int64_t WritesSucceededSince(int64_t since_us) const;

  // The history so far (complete after Stop()).
  std::vector<KvOp> History() const;
  // Counts for messages: "812 ops: 390 writes ok, 12 indeterminate, 400 reads ok, 10 dropped".
  std::string Summary() const;

 private:
  void RunClient(int client);
  void Record(KvOp op);

  const Options options_;
  const std::function<std::unique_ptr<Client>()> make_client_;
  std::chrono::steady_clock::time_point start_;
  std::atomic<bool> stop_{false};
  std::atomic<int> invoked_{0};
  std::vector<std::thread> threads_;

  mutable std::mutex mu_;
  std::vector<KvOp> history_;  // guarded by mu_
  int64_t reads_dropped_ = 0;  // guarded by mu_
};

}  // namespace ballot::partition_test

#endif  // BALLOT_TESTS_PARTITION_KV_WORKLOAD_H_
