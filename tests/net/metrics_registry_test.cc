// MetricsRegistry (net/metrics_registry.h): the exact text it renders, histogram buckets at their
// bounds, escaping, families with several label sets, collectors, and counts that stay exact
// under concurrent updates.
#include "net/server/metrics_registry.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ballot {
namespace {

TEST(MetricsRegistryTest, RendersTheTextFormat) {
  MetricsRegistry r;
  r.AddCounter("b_requests_total", "Requests.").Increment(3);
  r.AddGauge("a_temperature", "Degrees, \\ and\nnewline", {{"room", "k\"it\\chen\n"}}).Set(-1.5);
  Histogram& h = r.AddHistogram("c_seconds", "Latency.", {0.1, 1}, {{"peer", "2"}});
  h.Observe(0.1);  // on a bound: counted in that bound's bucket
  h.Observe(0.5);
  h.Observe(7);  // past the last bound: only +Inf
  EXPECT_EQ(r.Render(),
            "# HELP a_temperature Degrees, \\\\ and\\nnewline\n"
            "# TYPE a_temperature gauge\n"
            "a_temperature{room=\"k\\\"it\\\\chen\\n\"} -1.5\n"
            "# HELP b_requests_total Requests.\n"
            "# TYPE b_requests_total counter\n"
            "b_requests_total 3\n"
            "# HELP c_seconds Latency.\n"
            "# TYPE c_seconds histogram\n"
            "c_seconds_bucket{peer=\"2\",le=\"0.1\"} 1\n"
            "c_seconds_bucket{peer=\"2\",le=\"1\"} 2\n"
            "c_seconds_bucket{peer=\"2\",le=\"+Inf\"} 3\n"
            "c_seconds_sum{peer=\"2\"} 7.6\n"
            "c_seconds_count{peer=\"2\"} 3\n");
}

TEST(MetricsRegistryTest, OneFamilyPerNameAndOneMetricPerLabelSet) {
  MetricsRegistry r;
  Gauge& a = r.AddGauge("role", "Role.", {{"role", "leader"}});
  Gauge& b = r.AddGauge("role", "Role.", {{"role", "follower"}});
  EXPECT_NE(&a, &b);
  EXPECT_EQ(&a, &r.AddGauge("role", "Role.", {{"role", "leader"}}));
  a.Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP role Role.\n# TYPE role gauge\nrole{role=\"follower\"} 0\n"
            "role{role=\"leader\"} 1\n");
}

TEST(MetricsRegistryTest, CollectorsRunBeforeEachRenderUntilRemoved) {
  MetricsRegistry r;
  Gauge& g = r.AddGauge("g", "G.");
  int runs = 0;
  const uint64_t id = r.AddCollector([&] { g.Set(++runs); });
  EXPECT_NE(r.Render().find("g 1\n"), std::string::npos);
  EXPECT_NE(r.Render().find("g 2\n"), std::string::npos);
  r.RemoveCollector(id);
  EXPECT_NE(r.Render().find("g 2\n"), std::string::npos);
  EXPECT_EQ(runs, 2);
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry r;
  Counter& c = r.AddCounter("c_total", "C.");
  Histogram& h = r.AddHistogram("h", "H.", {1, 2});
  constexpr int kThreads = 4;
  constexpr int kEach = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        c.Increment();
        h.Observe(i % 3);  // 0, 1, 2: sums stay exact in a double
      }
    });
  }
  std::string during = r.Render();  // while they run: must not crash or tear
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.value(), uint64_t{kThreads} * kEach);
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kEach);
  EXPECT_EQ(s.cumulative.back(), s.count);
  double want_sum = 0;
  for (int i = 0; i < kEach; ++i) want_sum += i % 3;
  EXPECT_EQ(s.sum, want_sum * kThreads);
  EXPECT_FALSE(during.empty());
}

TEST(MetricsRegistryTest, LatencyBucketsDouble) {
  const std::vector<double> b = LatencySecondsBuckets();
  ASSERT_GE(b.size(), 2u);
  EXPECT_DOUBLE_EQ(b.front(), 50e-6);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_DOUBLE_EQ(b[i], 2 * b[i - 1]);
  EXPECT_GT(b.back(), 5.0);  // a slow fsync or snapshot still lands in a finite bucket
}

TEST(MetricsRegistryDeathTest, BadNamesAndMismatchesAreProgrammingErrors) {
  MetricsRegistry r;
  EXPECT_DEATH(r.AddCounter("1bad", "x"), "bad metric name");
  EXPECT_DEATH(r.AddCounter("ok_total", "x", {{"le", "1"}}), "bad label name");
  r.AddCounter("twice", "x");
  EXPECT_DEATH(r.AddGauge("twice", "x"), "another type");
}

}  // namespace
}  // namespace ballot
