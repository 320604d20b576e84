// The simulator is a pure function of its seed: one seed twice gives the same trace hash (and
// the same verbose trace, byte for byte); another seed gives another run.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/sim/simulator.h"

namespace ballot::sim {
namespace {

SimResult RunOnce(int nodes, uint64_t seed, std::ostringstream* log) {
  SimConfig config;
  config.nodes = nodes;
  config.seed = seed;
  config.verbose = log != nullptr;
  config.log = log;
  return RunSimulation(config);
}

class Determinism : public ::testing::TestWithParam<int> {
 protected:
  static void SetUpTestSuite() { InstallCheckFailureReporter(); }
};

TEST_P(Determinism, SameSeedSameTrace) {
  const int nodes = GetParam();
  std::ostringstream log_a, log_b;
  const SimResult a = RunOnce(nodes, 42, &log_a);
  const SimResult b = RunOnce(nodes, 42, &log_b);
  EXPECT_TRUE(a.ok()) << a.violation;
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.ops_acked, b.ops_acked);
  EXPECT_EQ(a.messages_sent, b.messages_sent);
  EXPECT_EQ(a.end_ms, b.end_ms);
  EXPECT_GT(a.ops_acked, 0u);
  EXPECT_EQ(log_a.str(), log_b.str());
}

TEST_P(Determinism, VerboseDoesNotChangeTheRun) {
  std::ostringstream log;
  EXPECT_EQ(RunOnce(GetParam(), 7, &log).trace_hash, RunOnce(GetParam(), 7, nullptr).trace_hash);
}

TEST_P(Determinism, DifferentSeedDifferentTrace) {
  EXPECT_NE(RunOnce(GetParam(), 42, nullptr).trace_hash,
            RunOnce(GetParam(), 43, nullptr).trace_hash);
}

INSTANTIATE_TEST_SUITE_P(Nodes, Determinism, ::testing::Values(3, 5));

}  // namespace
}  // namespace ballot::sim
