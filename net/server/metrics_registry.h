// MetricsRegistry: counters, gauges and fixed-bucket histograms, rendered in the Prometheus
// text exposition format (version 0.0.4) for GET /metrics (net/metrics_http.h).
//
// Cheap on the hot path: a metric is registered once (under the registry's mutex) and the caller
// keeps the returned reference; updating it afterwards is a few relaxed atomic operations, with
// no lock and no allocation. Rendering takes the mutex and reads the atomics, so a scrape sees
// each value as it was at some instant during the scrape (a histogram's _count is the sum of
// its buckets as read, so it always agrees with them).
//
// Families: metrics registered under one name with different label sets form one family (one
// HELP and TYPE line); registering a name again with the same labels returns the same metric.
// Names, label names, types and histogram buckets are the caller's promise: a bad name, or a
// name reused with another type, help text or buckets, is a programming error and CHECK-fails.
//
// Threads: every method of every class here is thread-safe. References returned by Add* stay
// valid as long as the registry. Collectors (AddCollector) run on the thread that renders,
// before rendering, one Render at a time: they may update metrics and register new ones, but
// must not add or remove collectors. A slow collector (one that waits for a lock of the store)
// delays scrapes, never a registration: collectors run outside the mutex that registration and
// formatting take.
#ifndef BALLOT_NET_METRICS_REGISTRY_H_
#define BALLOT_NET_METRICS_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ballot {

// Label name -> value, e.g. {{"peer", "2"}}. Kept sorted, so one label set has one spelling.
using MetricLabels = std::map<std::string, std::string>;

// Only grows (from 0, or from wherever a process restart leaves it: 0 again).
class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Integers are exact up to 2^53.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets with fixed upper bounds (Prometheus `le`: an observation
// equal to a bound falls into that bound's bucket), plus an implicit +Inf bucket, and sums them.
class Histogram {
 public:
  // `bounds` must be finite, strictly increasing and not empty.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  // Per bucket (not cumulative), the last one being +Inf.
  const std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

// Bucket bounds from `start`, each `factor` times the previous, `count` of them.
std::vector<double> ExponentialBuckets(double start, double factor, size_t count);
// Latencies from 50 µs to about 6.5 s, doubling: disk syncs, round trips, commits, snapshots.
std::vector<double> LatencySecondsBuckets();

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter& AddCounter(const std::string& name, const std::string& help, MetricLabels labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help, MetricLabels labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds, MetricLabels labels = {});

  // Runs `collect` before every Render (to refresh gauges whose source is read at scrape time,
  // e.g. the LMDB map size). Returns an id for RemoveCollector; once RemoveCollector returns,
  // `collect` is not running and never runs again.
  uint64_t AddCollector(std::function<void()> collect);
  void RemoveCollector(uint64_t id);

  // Every family in name order, in the text exposition format 0.0.4.
  std::string Render() const;
  // The Content-Type header for Render()'s output.
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;  // histograms
    // By label set; unique_ptr so that references handed out stay put.
    std::map<MetricLabels, std::unique_ptr<Counter>> counters;
    std::map<MetricLabels, std::unique_ptr<Gauge>> gauges;
    std::map<MetricLabels, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyFor(const std::string& name, Type type, const std::string& help,
                    const MetricLabels& labels);
  static void RenderFamily(const std::string& name, const Family& family, std::string* out);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // guarded by mu_
  // Taken before mu_, never inside it.
  mutable std::mutex collectors_mu_;
  std::map<uint64_t, std::function<void()>> collectors_;  // guarded by collectors_mu_
  uint64_t last_collector_id_ = 0;                        // guarded by collectors_mu_
};

}  // namespace ballot

#endif  // BALLOT_NET_METRICS_REGISTRY_H_
