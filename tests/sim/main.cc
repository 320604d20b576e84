// ballot-sim: runs the deterministic simulator over a range of seeds.
//
//   ballot-sim --nodes=3|5 --first_seed=S --seeds=K [--plant=NAME[,NAME]] [--verbose]
//
// Runs seeds S..S+K-1, prints every violation with the command that replays it, then one
// summary line; exits non-zero iff some seed violated a property (scripts rely on this).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include "tests/sim/simulator.h"

DEFINE_int32(nodes, 3, "replicas per run (1..7; CI uses 3 and 5)");
DEFINE_uint64(first_seed, 1, "first seed to run");
DEFINE_uint64(seeds, 1, "how many consecutive seeds to run");
DEFINE_bool(verbose, false, "print a readable trace of every event");
DEFINE_bool(membership, false,
            "change membership among the chaos (2 spare nodes join, voters are removed, the "
            "leader hands over, disks are wiped); --nodes founders + 2 must be at most 7");
DEFINE_bool(journal, false,
            "run nodes on the model of the journaled store (store/mem_journal_store.h); a crash "
            "loses, keeps or tears the write in flight");
DEFINE_string(plant, "",
              "planted bugs to turn on, comma-separated: ack_before_durable, ignore_accepted, "
              "forget_promise, apply_out_of_order, lease_from_ack");
DEFINE_int32(clients, 0, "clients per run (0: drawn from the seed, 3..6)");
DEFINE_uint64(chaos_ticks, ballot::sim::SimConfig().chaos_ticks, "length of the chaos phase");
DEFINE_uint64(liveness_ticks, ballot::sim::SimConfig().liveness_ticks,
              "bound after the heal for a leader and every pending operation");
DEFINE_uint64(converge_ticks, ballot::sim::SimConfig().converge_ticks,
              "bound after liveness for every replica to apply everything chosen");
DEFINE_uint64(violations_shown_max, 20, "print at most this many violations in full");

namespace {

bool ParsePlants(const std::string& list, ballot::paxos::PlantedBugs* planted) {
  std::stringstream ss(list);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    if (!ballot::sim::SetPlant(name, planted)) {
      std::cerr << "ballot-sim: unknown --plant=" << name << "\n";
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("ballot-sim --nodes=3|5 --first_seed=S --seeds=K");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  ballot::sim::InstallCheckFailureReporter();
  if (FLAGS_nodes < 1 || FLAGS_nodes > 7) {
    std::cerr << "ballot-sim: --nodes must be in 1..7\n";
    return 2;
  }
  ballot::sim::SimConfig config;
  config.nodes = FLAGS_nodes;
  config.membership = FLAGS_membership;
  config.journal = FLAGS_journal;
  if (FLAGS_membership && FLAGS_nodes > 5) {
    std::cerr << "ballot-sim: --membership adds 2 spare nodes; --nodes must be at most 5\n";
    return 2;
  }
  config.clients = FLAGS_clients;
  config.chaos_ticks = FLAGS_chaos_ticks;
  config.liveness_ticks = FLAGS_liveness_ticks;
  config.converge_ticks = FLAGS_converge_ticks;
  config.verbose = FLAGS_verbose;
  config.log = &std::cout;
  if (!ParsePlants(FLAGS_plant, &config.planted)) return 2;

  const auto start = std::chrono::steady_clock::now();
  uint64_t violations = 0, ops_acked = 0, leader_changes = 0, messages = 0, torn_writes = 0;
  uint64_t liveness_ticks_max = 0, converge_ticks_max = 0;
  for (uint64_t i = 0; i < FLAGS_seeds; ++i) {
    config.seed = FLAGS_first_seed + i;
    const ballot::sim::SimResult r = ballot::sim::RunSimulation(config);
    ops_acked += r.ops_acked;
    leader_changes += r.leader_changes;
    messages += r.messages_sent;
    torn_writes += r.torn_writes;
    liveness_ticks_max = std::max(liveness_ticks_max, r.liveness_ticks);
    converge_ticks_max = std::max(converge_ticks_max, r.converge_ticks);
    if (r.ok()) continue;
    if (++violations <= FLAGS_violations_shown_max) {
      std::cout << "VIOLATION seed=" << r.seed << " nodes=" << config.nodes << ": " << r.violation
                << "\nreplay: " << ballot::sim::ReplayCommand(config) << std::endl;
    }
  }
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string plants = ballot::sim::PlantNames(config.planted);
  std::printf(
      "ballot-sim: nodes=%d seeds=%llu (%llu..%llu)%s%s violations=%llu ops_acked=%llu "
      "leader_changes=%llu messages=%llu liveness_ticks_max=%llu converge_ticks_max=%llu "
      "%selapsed_s=%.1f\n",
      config.nodes, static_cast<unsigned long long>(FLAGS_seeds),
      static_cast<unsigned long long>(FLAGS_first_seed),
      static_cast<unsigned long long>(FLAGS_first_seed + FLAGS_seeds - 1),
      plants.empty() ? "" : " plant=", plants.c_str(), static_cast<unsigned long long>(violations),
      static_cast<unsigned long long>(ops_acked), static_cast<unsigned long long>(leader_changes),
      static_cast<unsigned long long>(messages),
      static_cast<unsigned long long>(liveness_ticks_max),
      static_cast<unsigned long long>(converge_ticks_max),
      config.journal ? ("journal torn_writes=" + std::to_string(torn_writes) + " ").c_str() : "",
      elapsed_s);
  return violations == 0 ? 0 : 1;
}
