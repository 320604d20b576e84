// Durable group commit through LmdbStore: one Write() carrying 1, 16, 128 or 1024 slots, with
// the write-ahead journal (journal:1, one fdatasync of DIR/journal per Write, LMDB checkpointed
// every 1 MiB) or without it (journal:0, one LMDB transaction with a real sync per Write).
// Reports commits/s, slots/s, the commit latency percentiles, and the store's own count of
// LMDB commits and journal syncs per Write, on a real directory under $TMPDIR (default /tmp).
//
// Each slot holds one 64-byte command (the record is ~130 bytes); every commit also advances
// chosen_below, as a follower's batches do. Quote medians and ratios from one run side by side
// (see shared/MACHINE.md): absolute figures move a lot with the load on the two cores.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "store/lmdb_store.h"

namespace ballot::store {
namespace {

constexpr size_t kPayloadBytes = 64;

std::string MakeTempDir() {
  const char* base = getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ballot-bench-XXXXXX";
  CHECK(mkdtemp(pattern.data()) != nullptr) << pattern;
  return pattern;
}

double Percentile(std::vector<double>* v, double p) {
  if (v->empty()) return 0;
  const size_t k = std::min(v->size() - 1, static_cast<size_t>(p * static_cast<double>(v->size())));
  std::nth_element(v->begin(), v->begin() + static_cast<std::ptrdiff_t>(k), v->end());
  return (*v)[k];
}

void BM_GroupCommit(benchmark::State& state) {
  const auto slots_per_commit = static_cast<size_t>(state.range(0));
  const bool journal = state.range(1) != 0;
  const std::string dir = MakeTempDir();
  LmdbOptions options;
  options.dir = dir;
  options.cluster_id = 1;
  options.node_id = 1;
  options.journal = journal;
  Result<std::unique_ptr<LmdbStore>> opened = LmdbStore::Open(options);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  std::unique_ptr<LmdbStore> store = std::move(opened).value();

  paxos::PersistBatch batch;
  batch.promised = paxos::Ballot(1, 1);
  batch.entries.resize(slots_per_commit);
  for (paxos::Entry& e : batch.entries) {
    e.ballot = paxos::Ballot(1, 1);
    e.value.epoch = e.ballot;
    paxos::Command c;
    c.client_id = 42;
    c.payload.assign(kPayloadBytes, 'p');
    e.value.commands.push_back(std::move(c));
  }
  std::vector<double> latencies_us;
  paxos::Slot next = 1;
  for (auto _ : state) {
    for (paxos::Entry& e : batch.entries) {
      e.slot = next++;
      e.value.commands.mutable_at(0).sequence = e.slot;
    }
    batch.chosen_below = next - slots_per_commit;  // the previous commit's slots are chosen
    const auto start = std::chrono::steady_clock::now();
    const Status s = store->Write(batch);
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    batch.promised.reset();
  }
  const auto commits = static_cast<double>(state.iterations());
  state.counters["commits/s"] = benchmark::Counter(commits, benchmark::Counter::kIsRate);
  state.counters["slots/s"] = benchmark::Counter(commits * static_cast<double>(slots_per_commit),
                                                 benchmark::Counter::kIsRate);
  state.counters["p50_us"] = Percentile(&latencies_us, 0.50);
  state.counters["p99_us"] = Percentile(&latencies_us, 0.99);
  const LmdbStats stats = store->stats();
  // Device flushes per Write: a journal sync is one fdatasync; an LMDB commit is two (the data
  // pages' fdatasync, then the O_DSYNC meta page write).
  state.counters["flushes/write"] =
      (static_cast<double>(stats.journal_syncs) + 2.0 * static_cast<double>(stats.commits)) /
      std::max(1.0, commits);
  state.SetLabel(std::to_string(slots_per_commit) + " slots x " + std::to_string(kPayloadBytes) +
                 " B per commit, journal " + (journal ? "on" : "off"));

  store.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

BENCHMARK(BM_GroupCommit)
    ->ArgNames({"slots", "journal"})
    ->ArgsProduct({{1, 16, 128, 1024}, {0, 1}})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);

}  // namespace
}  // namespace ballot::store

int main(int argc, char** argv) {
  FLAGS_minloglevel = google::GLOG_WARNING;  // no "opened lmdb store" line per run
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
