// The deterministic simulator: N replicas, clients, a fake network and fake disks on virtual
// time, all driven by one 64-bit seed. A run is a chaos phase (delays, drops, duplicates,
// partitions, crashes, fsync stalls), then a heal (faults stop, crashed nodes restart) and a
// liveness phase in which a leader must emerge, every client's pending operation must complete
// and all replicas must converge, each within a bound. The Checker watches safety throughout.
// The same seed and config always replay the same run (compare SimResult::trace_hash).
#ifndef BALLOT_TESTS_SIM_SIMULATOR_H_
#define BALLOT_TESTS_SIM_SIMULATOR_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "paxos/options.h"

namespace ballot::sim {

class CheckerObserver;  // tests/sim/checker.h

struct SimConfig {
  uint64_t seed = 1;
  int nodes = 3;
  int clients = 0;  // 0: drawn from the seed, 3..6
  uint64_t chaos_ticks = 2000;
  uint64_t liveness_ticks = 1500;  // after the heal: leader elected and pending ops done
  uint64_t converge_ticks = 500;   // then: every replica applied everything chosen
  paxos::PlantedBugs planted;
  // Membership changes among the chaos: two spare nodes join as learners and are promoted,
  // voters are removed (the leader after handing over), leadership is transferred, removed
  // nodes' disks are wiped and they rejoin blank, and members' disks are wiped (the node is
  // refused until the group removes it and it rejoins). Off keeps every older seed's run.
  bool membership = false;
  // Nodes run on the model of the journaled LmdbStore (store/mem_journal_store.h) instead of
  // the plain one, and a crash with a write in flight loses it, keeps it whole, or tears it
  // (drawn from its own stream). Off keeps every older seed's run.
  bool journal = false;
  bool verbose = false;
  std::ostream* log = nullptr;  // where the verbose trace goes
  // Test hook (not owned; nullptr for none): watches the run through the Checker.
  CheckerObserver* observer = nullptr;
};

struct SimResult {
  uint64_t seed = 0;
  std::string violation;  // empty: the run passed
  uint64_t trace_hash = 0;
  uint64_t ops_acked = 0;
  uint64_t leader_changes = 0;
  uint64_t messages_sent = 0;
  uint64_t crashes = 0;
  uint64_t torn_writes = 0;  // crashes that tore a journal record in flight (journal runs)
  uint64_t partitions = 0;
  uint64_t end_ms = 0;
  uint64_t liveness_ticks = 0;  // heal -> leader and every pending operation done
  uint64_t converge_ticks = 0;  // then -> every replica applied everything chosen
  bool ok() const { return violation.empty(); }
};

// Runs one seed. Never throws; a broken invariant inside the core is a CHECK failure (the
// caller's glog failure function should print the seed).
SimResult RunSimulation(const SimConfig& config);

// Sets the planted bug called `name` (ack_before_durable, ignore_accepted, forget_promise,
// apply_out_of_order, lease_from_ack). False if the name is unknown.
bool SetPlant(std::string_view name, paxos::PlantedBugs* planted);
// The --plant= value for `planted` ("" if none), comma-separated.
std::string PlantNames(const paxos::PlantedBugs& planted);
// "ballot-sim --nodes=N --first_seed=S --seeds=1 --verbose ..." replaying `config`.
std::string ReplayCommand(const SimConfig& config);

// Installs a glog failure function that, when a CHECK fails during RunSimulation (the core's or
// the simulator's own), prints "VIOLATION seed=... : CHECK failure" and the replay command
// before aborting, so that a crash is reported with its seed like any other violation.
void InstallCheckFailureReporter();

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_SIMULATOR_H_
