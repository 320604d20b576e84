// ballotd: the Ballot server with the sample state machines registered.
//
//   ballotd --id=N --cluster=1@127.0.0.1:P1,2@127.0.0.1:P2,3@127.0.0.1:P3 --data_dir=DIR
//           --state_machine=sequence
//   ballotd --id=4 --cluster=1@...,4@127.0.0.1:P4 --data_dir=EMPTY --join   (a new member,
//           after `ballotctl member add 4@127.0.0.1:P4`; docs/membership.md)
//
// One port per node serves both peers and clients. Bad flags: a message and exit code 2.
// SIGTERM / SIGINT stop the node cleanly (a leader hands over leadership first; a second signal
// stops it at once); a storage failure stops it with exit code 1, and so
// does an empty data directory in a cluster that remembers this node (its data was lost; see
// net/server/join_gate.h).
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "net/client/client.h"
#include "net/cluster_config.h"
#include "net/server/metrics_http.h"
#include "net/server/server.h"
#include "net/server/test_hooks.h"
#include "paxos/options.h"
#include "statemachine/samples/kv.h"
#include "statemachine/samples/lock.h"
#include "statemachine/samples/sequence.h"
#include "tools/flag_check.h"

DEFINE_uint32(id, 0, "this node's id: one of the ids in --cluster");
DEFINE_string(cluster, "", "every member as id@host:port, comma-separated; the same on every node");
DEFINE_string(data_dir, "", "directory for this node's LMDB store (created if missing)");
DEFINE_bool(join, false,
            "join an existing cluster as a new member: first `ballotctl member add ID@HOST:PORT`, "
            "then start this node with an empty --data_dir, --join and --cluster listing some "
            "current members and this node; it catches up as a learner and the leader promotes "
            "it. Ignored once the data directory has joined");
DEFINE_string(state_machine, "sequence", "the service to run: sequence | kv | lock");
DEFINE_uint64(cluster_id, 0,
              "cluster identity checked in every handshake and data directory. 0: the one "
              "recorded in DIR/CLUSTER; on a fresh data directory, learnt from the other members "
              "with --join, else a new cluster's, derived from --cluster and --cluster_token");
DEFINE_string(cluster_token, "",
              "bootstrap only: mixed into a new cluster's id, so that clusters created with the "
              "same --cluster list get different ids (like etcd's initial-cluster-token); the "
              "same on every initial member");
// The timing flags below must be the same on every node: peers compare them in the handshake
// and refuse each other when they differ (a lease is only safe if every node counts it alike).
DEFINE_uint32(tick_ms, 10, "length of one protocol tick in milliseconds (the same on every node)");
DEFINE_uint32(heartbeat_ticks, 1, "leader heartbeat interval, in ticks");
DEFINE_uint32(election_ticks, 10,
              "a follower that hears no leader for a random time in [E, 2E) ticks runs for "
              "election");
DEFINE_uint32(lease_ticks, 6, "leader lease granted by acceptors, in ticks (< election_ticks)");
DEFINE_uint32(max_clock_drift_ppm, 1000,
              "the most two nodes' clocks may drift apart, in parts per million; the leader "
              "ends its lease 1 + ceil(2 * drift * lease_ticks) ticks early for it");
DEFINE_uint32(persist_stall_ticks_max, 300,
              "a leader whose disk has not completed a sync for this many ticks steps down "
              "(> election_ticks)");
DEFINE_uint32(batch_commands_max, 512, "commands per slot at most");
DEFINE_uint32(window_slots_max, 64, "slots in flight (proposed, not yet chosen) at most");
DEFINE_uint32(pending_commands_max, 16384, "commands queued for a slot at most (then Overloaded)");
DEFINE_bool(apply_inline, true,
            "apply commands on the network thread (no hand-off; the samples apply in "
            "microseconds). false: a thread of their own, for slow state machines");
DEFINE_uint64(watches_max, 10000,
              "watches parked on this node at most (net/server/watch_hub.h); one more is refused "
              "\"too many watches\"");
DEFINE_int32(port, -1, "listen on this port instead of the one in --cluster (0: any free port)");
DEFINE_int32(metrics_port, -1,
             "serve GET /metrics (Prometheus text format) and GET /healthz over HTTP on this "
             "port (0: any free port, logged as 'metrics on http://HOST:PORT/metrics'; -1: off)");
DEFINE_string(metrics_host, "",
              "address the metrics port listens on (default: this node's host in --cluster)");
DEFINE_bool(in_memory, false,
            "keep protocol state in memory, not LMDB: NOT durable; for benchmark baselines only");
DEFINE_uint64(TEST_stall_storage_after_commits, 0,
              "tests only: stall the storage thread once, after this many commits (0: never)");
DEFINE_uint32(TEST_storage_stall_ms, 1000, "tests only: how long that stall lasts");
DEFINE_uint32(TEST_background_delay_ms, 0,
              "tests only: start every background job (snapshot writes) this many ms late");
DEFINE_uint64(snapshot_every_slots, 100000,
              "take a snapshot after this many applied slots since the last one (0: never)");
DEFINE_uint64(snapshot_every_log_mb, 64,
              "take a snapshot after this many MiB of applied commands since the last one, and "
              "at least as many as the last snapshot's size (0: never)");
DEFINE_uint64(log_retain_slots, 20000,
              "chosen slots kept in memory below the newest snapshot, so that briefly lagging "
              "followers catch up from the log");
DEFINE_uint64(snapshot_chunk_kb, 1024, "snapshot transfer: bytes per chunk, in KiB");
DEFINE_uint64(snapshot_transfer_mb_per_s, 200,
              "snapshot transfer: at most this many MiB/s received, so heartbeats and clients "
              "keep flowing");
DEFINE_uint64(TEST_corrupt_every_nth_chunk, 0,
              "tests only: damage every Nth snapshot chunk this node sends (0: never)");
DEFINE_uint32(shutdown_transfer_ms, 2000,
              "on SIGTERM/SIGINT a leader first hands leadership to the most up-to-date voter, "
              "waiting at most this long (0: stop at once)");
DEFINE_uint64(map_mb, 64, "initial LMDB map size in MiB (grows as needed)");
DEFINE_uint64(map_mb_max, 16384, "largest LMDB map size in MiB");
DEFINE_bool(store_journal, true,
            "write-ahead journal in front of LMDB: one device flush per persist batch "
            "(docs/durability.md); false = every batch is a durable LMDB commit");
DEFINE_uint64(store_journal_checkpoint_kb, 1024,
              "fold the journal into LMDB (one durable commit) after this many KiB");

namespace ballot::tools {
namespace {

constexpr char kUsage[] =
    "Ballot server.\n"
    "  ballotd --id=N --cluster=1@127.0.0.1:P1,2@127.0.0.1:P2,3@127.0.0.1:P3 --data_dir=DIR "
    "--state_machine=sequence";

[[noreturn]] void UsageError(const std::string& why) {
  std::fprintf(stderr, "ballotd: %s (see --help)\n", why.c_str());
  std::exit(kExitUsage);
}

std::unique_ptr<StateMachine> MakeStateMachine(const std::string& name) {
  if (name == "sequence") return std::make_unique<samples::SequenceGenerator>();
  if (name == "kv") return std::make_unique<samples::KvStore>();
  if (name == "lock") return std::make_unique<samples::LockService>();
  return nullptr;
}

ServerTestHooks TestHooksFromFlags() {
  ServerTestHooks h;
  h.TEST_stall_storage_after_commits = FLAGS_TEST_stall_storage_after_commits;
  h.TEST_storage_stall = std::chrono::milliseconds(FLAGS_TEST_storage_stall_ms);
  h.TEST_background_delay = std::chrono::milliseconds(FLAGS_TEST_background_delay_ms);
  h.TEST_corrupt_every_nth_chunk = FLAGS_TEST_corrupt_every_nth_chunk;
  return h;
}

ServerOptions OptionsFromFlags() {
  if (FLAGS_cluster.empty()) UsageError("--cluster is required");
  if (FLAGS_data_dir.empty() && !FLAGS_in_memory) UsageError("--data_dir is required");
  auto members = ParseCluster(FLAGS_cluster);
  if (!members.ok()) UsageError("bad --cluster: " + members.status().message());
  ServerOptions o;
  o.id = FLAGS_id;
  o.members = members.value();
  if (!o.members.count(o.id))
    UsageError("--id=" + std::to_string(FLAGS_id) + " is not in --cluster");
  o.cluster_id = FLAGS_cluster_id;  // 0: resolved by Server::Create (net/server/server.h)
  o.cluster_token = FLAGS_cluster_token;
  o.join = FLAGS_join;
  o.data_dir = FLAGS_data_dir;
  o.tick = std::chrono::milliseconds(FLAGS_tick_ms);
  o.paxos.heartbeat_ticks = FLAGS_heartbeat_ticks;
  o.paxos.election_ticks = FLAGS_election_ticks;
  o.paxos.lease_ticks = FLAGS_lease_ticks;
  o.paxos.max_clock_drift_ppm = FLAGS_max_clock_drift_ppm;
  o.paxos.persist_stall_ticks_max = FLAGS_persist_stall_ticks_max;
  o.paxos.batch_commands_max = FLAGS_batch_commands_max;
  o.paxos.window_slots_max = FLAGS_window_slots_max;
  o.paxos.pending_commands_max = FLAGS_pending_commands_max;
  o.listen_port_override = FLAGS_port;
  if (FLAGS_metrics_port < -1 || FLAGS_metrics_port > 65535) {
    UsageError("--metrics_port must be in -1..65535");
  }
  o.in_memory = FLAGS_in_memory;
  o.apply_inline = FLAGS_apply_inline;
  o.watches_max = FLAGS_watches_max;
  o.driver.snapshot_every_slots = FLAGS_snapshot_every_slots;
  o.driver.snapshot_every_log_bytes = FLAGS_snapshot_every_log_mb << 20;
  o.driver.log_retain_slots = FLAGS_log_retain_slots;
  o.driver.transfer_chunk_bytes = FLAGS_snapshot_chunk_kb << 10;
  // Per tick: the driver counts received bytes per protocol tick.
  o.driver.transfer_bytes_per_tick_max =
      std::max<uint64_t>(o.driver.transfer_chunk_bytes,
                         (FLAGS_snapshot_transfer_mb_per_s << 20) * FLAGS_tick_ms / 1000);
  if (Status d = o.driver.Validate(); !d.ok()) UsageError(d.message());
  o.map_bytes = FLAGS_map_mb << 20;
  o.map_bytes_max = FLAGS_map_mb_max << 20;
  o.store_journal = FLAGS_store_journal;
  o.store_journal_checkpoint_bytes = FLAGS_store_journal_checkpoint_kb << 10;
  // Validate the protocol options up front so a bad combination is a usage error.
  paxos::Options check(o.paxos);
  check.id = o.id;
  for (const auto& [id, address] : o.members) check.members.push_back(id);
  Status s = check.Validate();
  if (!s.ok()) UsageError(s.message());
  return o;
}

// SIGTERM / SIGINT. Signals are taken synchronously by one thread (sigwait), so stopping runs as
// ordinary code rather than inside an async signal handler. They are blocked from the start, so
// that a signal during Create (opening the store, a --join learning the cluster id) is not the
// default instant death either.
class SignalWatcher {
 public:
  // Blocks SIGTERM and SIGINT in this thread and every thread started after it, and starts the
  // watching thread.
  void Start() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([this, set] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        OnSignal(sig);
      }
    }).detach();
  }

  // The node the signals stop from now on (nullptr: none any more; main is closing it).
  void Watch(Server* node) {
    std::lock_guard<std::mutex> lock(mu_);
    node_ = node;
    closing_ = node == nullptr;
  }

 private:
  void OnSignal(int sig) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) return;  // main is already closing the node: let it finish
    if (node_ == nullptr) {
      // Nothing served yet, and the store is crash-safe: end at once.
      std::fprintf(stderr, "ballotd: %s before the node started; exiting\n", strsignal(sig));
      std::_Exit(0);
    }
    if (++signals_ == 1) {
      LOG(INFO) << "ballotd: " << strsignal(sig) << ": stopping (a leader hands over first, at "
                << "most " << FLAGS_shutdown_transfer_ms << " ms; then the persist in progress "
                << "finishes and the store closes). Again to stop at once";
      node_->Shutdown(std::chrono::milliseconds(FLAGS_shutdown_transfer_ms));
      return;
    }
    LOG(INFO) << "ballotd: " << strsignal(sig) << " again: stopping now";
    node_->Stop();
  }

  std::mutex mu_;
  Server* node_ = nullptr;  // guarded by mu_
  bool closing_ = false;    // guarded by mu_
  int signals_ = 0;         // guarded by mu_
};

// --metrics_port: GET /metrics and /healthz (net/server/metrics_http.h), or nothing when it is -1.
// Started before the node, so that a port that cannot be had ends the process (exit 1) before it
// serves, as the node's own port does.
Result<std::unique_ptr<MetricsHttpServer>> ServeMetrics(const ServerOptions& options,
                                                        Server* node) {
  if (FLAGS_metrics_port < 0) return std::unique_ptr<MetricsHttpServer>();
  MetricsHttpOptions mo;
  mo.host = FLAGS_metrics_host;
  if (mo.host.empty()) {
    // The interface this node serves on, so a scraper reaches both alike.
    const std::string& self = options.members.at(options.id);
    mo.host = self.substr(0, self.rfind(':'));
    if (mo.host.size() >= 2 && mo.host.front() == '[')
      mo.host = mo.host.substr(1, mo.host.size() - 2);
  }
  mo.port = static_cast<uint16_t>(FLAGS_metrics_port);
  auto server = MetricsHttpServer::Start(mo, &node->metrics(), [node] { return node->Health(); });
  if (!server.ok()) return server.status();
  LOG(INFO) << "ballotd node " << FLAGS_id << " metrics on http://" << mo.host << ":"
            << server.value()->port() << "/metrics";
  return server;
}

int Main(int argc, char** argv) {
  ParseFlagsStrict(kUsage, &argc, &argv);
  if (argc > 1) UsageError(std::string("unexpected argument '") + argv[1] + "'");
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  static SignalWatcher signals;  // its thread outlives Main
  signals.Start();
  ServerOptions options = OptionsFromFlags();
  std::unique_ptr<StateMachine> machine = MakeStateMachine(FLAGS_state_machine);
  if (machine == nullptr) UsageError("unknown --state_machine=" + FLAGS_state_machine);

  auto node = CreateServerWithTestHooks(options, std::move(machine), TestHooksFromFlags());
  if (!node.ok()) {
    std::fprintf(stderr, "ballotd: cannot start node %u: %s\n", FLAGS_id,
                 node.status().ToString().c_str());
    return 1;
  }
  auto metrics = ServeMetrics(options, node.value().get());
  if (!metrics.ok()) {
    std::fprintf(stderr, "ballotd: cannot serve metrics: %s\n",
                 metrics.status().ToString().c_str());
    return 1;
  }
  signals.Watch(node.value().get());
  node.value()->Start();
  LOG(INFO) << "ballotd node " << FLAGS_id << " serving " << FLAGS_state_machine << " on port "
            << node.value()->port() << ", data in " << FLAGS_data_dir;
  Status stopped = node.value()->Wait();
  signals.Watch(nullptr);
  metrics.value().reset();  // it reads the node: gone first
  // Every thread has ended (the storage thread after the persist batches already queued);
  // destroying the node closes the sockets and the store (LMDB folds in the journal first).
  node.value().reset();
  if (!stopped.ok()) {
    LOG(ERROR) << "ballotd node " << FLAGS_id << " stopped: " << stopped.ToString();
    return 1;
  }
  LOG(INFO) << "ballotd node " << FLAGS_id << " stopped cleanly; store closed";
  return 0;
}

}  // namespace
}  // namespace ballot::tools

int main(int argc, char** argv) { return ballot::tools::Main(argc, argv); }
