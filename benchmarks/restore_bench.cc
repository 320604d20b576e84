// restore_bench: the parts of a node's start, timed one by one on a stopped node's data
// directory, so that a restart's "recover" time splits into LMDB open, log load, snapshot
// verify and snapshot restore (what Driver::Recover does, in the same order).
//
//   build/benchmarks/restore_bench --data_dir=DIR --cluster=1@...,2@...,3@... --id=N
//   [--state_machine=kv]
//
// Opens the store read-write as ballotd would (it must not be running), changes nothing.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "net/client/client.h"
#include "statemachine/applier.h"
#include "statemachine/samples/kv.h"
#include "statemachine/samples/lock.h"
#include "statemachine/samples/sequence.h"
#include "store/file_snapshot_store.h"
#include "store/lmdb_store.h"

DEFINE_string(data_dir, "", "a stopped node's data directory");
DEFINE_string(cluster, "", "the node's --cluster flag (the cluster id is derived from it)");
DEFINE_uint32(id, 0, "the node's id");
DEFINE_string(state_machine, "kv", "sequence | kv | lock");

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::unique_ptr<ballot::StateMachine> MakeStateMachine(const std::string& name) {
  if (name == "sequence") return std::make_unique<ballot::samples::SequenceGenerator>();
  if (name == "kv") return std::make_unique<ballot::samples::KvStore>();
  if (name == "lock") return std::make_unique<ballot::samples::LockService>();
  return nullptr;
}

int Fail(const std::string& what, const ballot::Status& s) {
  std::fprintf(stderr, "restore_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_data_dir.empty() || FLAGS_cluster.empty() || FLAGS_id == 0) {
    std::fprintf(stderr, "restore_bench: --data_dir, --cluster and --id are required\n");
    return 2;
  }
  auto machine = MakeStateMachine(FLAGS_state_machine);
  if (!machine) {
    std::fprintf(stderr, "restore_bench: unknown --state_machine\n");
    return 2;
  }

  auto t = Clock::now();
  ballot::store::LmdbOptions lo;
  lo.dir = FLAGS_data_dir;
  lo.cluster_id = ballot::DefaultClusterId(FLAGS_cluster);
  lo.node_id = FLAGS_id;
  auto store = ballot::store::LmdbStore::Open(lo);
  if (!store.ok()) return Fail("open", store.status());
  const double open_s = SecondsSince(t);

  t = Clock::now();
  auto durable = store.value()->Load();
  if (!durable.ok()) return Fail("load", durable.status());
  const double load_s = SecondsSince(t);
  uint64_t log_bytes = 0;
  size_t commands = 0;
  for (const auto& e : durable.value().entries) {
    log_bytes += e.value.ByteSize();
    commands += e.value.commands.size();
  }

  auto snapshots = ballot::store::FileSnapshotStore::OpenDir(FLAGS_data_dir);
  if (!snapshots.ok()) return Fail("snapshots", snapshots.status());
  auto list = snapshots.value()->List();
  if (!list.ok()) return Fail("list", list.status());
  double verify_s = 0, restore_s = 0;
  ballot::paxos::Slot restored = 0;
  for (const auto& info : list.value()) {  // newest first, as Driver::Recover reads them
    t = Clock::now();
    ballot::Status v = ballot::store::VerifySnapshot(snapshots.value().get(), info.applied_below);
    verify_s = SecondsSince(t);
    if (!v.ok()) continue;
    ballot::Applier applier(std::move(machine));
    t = Clock::now();
    auto reader = snapshots.value()->Open(info.applied_below);
    if (!reader.ok()) return Fail("open snapshot", reader.status());
    ballot::Status s = applier.RestoreFrom(reader.value().get());
    if (!s.ok()) return Fail("restore", s);
    restore_s = SecondsSince(t);
    restored = info.applied_below;
    break;
  }
  std::printf(
      "open_s=%.3f log_load_s=%.3f log_slots=%zu log_commands=%zu log_mb=%.1f "
      "snapshot_below=%llu snapshot_verify_s=%.3f snapshot_restore_s=%.3f\n",
      open_s, load_s, durable.value().entries.size(), commands, log_bytes / 1048576.0,
      static_cast<unsigned long long>(restored), verify_s, restore_s);
  return 0;
}
