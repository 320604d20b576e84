#include "net/server/server_metrics.h"

#include <glog/logging.h>

#include <algorithm>

#include "store/lmdb_store.h"

namespace ballot {

namespace {

// Commands in one slot: up to batch_commands_max (512 by default), doubling.
std::vector<double> CommandsPerSlotBuckets() {
  return {0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
}

// One gauge per role, 1 for the current one: the usual Prometheus spelling of an enum.
// "joining": the node waits to join its cluster (net/join_gate.h) and takes no part yet.
Gauge& RoleGauge(MetricsRegistry* registry, const char* role) {
  return registry->AddGauge("ballot_role",
                            "The node's role: 1 for the one it has now, 0 for the others",
                            {{"role", role}});
}

}  // namespace

ServerMetrics::ServerMetrics(MetricsRegistry* registry, paxos::NodeId id,
                             std::chrono::milliseconds tick)
    : registry_(registry),
      id_(id),
      // A tick is 10 ms by default: a second without one is no busy moment, it is a stall.
      stall_limit_(std::max<std::chrono::milliseconds>(std::chrono::seconds(1), 100 * tick)),
      role_follower_(RoleGauge(registry, "follower")),
      role_pre_candidate_(RoleGauge(registry, "pre-candidate")),
      role_candidate_(RoleGauge(registry, "candidate")),
      role_leader_(RoleGauge(registry, "leader")),
      role_joining_(RoleGauge(registry, "joining")),
      leader_id_(registry->AddGauge("ballot_leader_id",
                                    "The node this node believes leads (0: none known)")),
      leader_epoch_(registry->AddGauge(
          "ballot_leader_epoch",
          "The epoch (ballot) of the leader this node follows or is; a leader's fencing token")),
      lease_held_(registry->AddGauge("ballot_lease_held",
                                     "1 while this node leads and holds its read lease")),
      chosen_slots_(registry->AddGauge(
          "ballot_chosen_slots", "Log slots known chosen here (the first unchosen slot - 1)")),
      applied_slots_(
          registry->AddGauge("ballot_applied_slots",
                             "Log slots applied to the state machine here (applied_below - 1)")),
      client_sessions_(registry->AddGauge("ballot_client_sessions",
                                          "Client sessions in the replicated session table")),
      snapshot_bytes_(registry->AddGauge("ballot_snapshot_bytes",
                                         "Size of the newest snapshot this node wrote")),
      lmdb_map_size_bytes_(registry->AddGauge("ballot_lmdb_map_size_bytes",
                                              "The LMDB map's current size (it grows as needed)")),
      lmdb_map_used_bytes_(registry->AddGauge(
          "ballot_lmdb_map_used_bytes", "Bytes of the LMDB map in use (high-water mark of pages)")),
      lmdb_map_limit_bytes_(registry->AddGauge("ballot_lmdb_map_limit_bytes",
                                               "The largest size the LMDB map may grow to")),
      lmdb_commits_(registry->AddCounter("ballot_lmdb_commits_total",
                                         "Durable LMDB write transactions (checkpoints included)")),
      proposals_(registry->AddCounter("ballot_proposals_total",
                                      "Client commands proposed to this node (refused ones too)")),
      commands_applied_(registry->AddCounter("ballot_commands_applied_total",
                                             "Commands applied to the state machine here")),
      overload_rejections_(registry->AddCounter(
          "ballot_overload_rejections_total",
          "Client requests refused with Overloaded (proposal, read or apply queue full)")),
      elections_started_(registry->AddCounter("ballot_elections_started_total",
                                              "Elections this node started (prepare rounds)")),
      leader_changes_(registry->AddCounter("ballot_leader_changes_total",
                                           "Times this node saw a different leader")),
      core_messages_dropped_(registry->AddCounter(
          "ballot_core_messages_dropped_total",
          "Peer messages the protocol core ignored (unknown sender, not addressed here)")),
      peer_messages_dropped_(registry->AddCounter(
          "ballot_peer_messages_dropped_total",
          "Messages to peers dropped by the transport (queue full, peer unknown, unencodable)")),
      peer_messages_sent_(registry->AddCounter("ballot_peer_messages_sent_total",
                                               "Messages handed to peer sockets")),
      peer_messages_received_(registry->AddCounter("ballot_peer_messages_received_total",
                                                   "Messages received from peers")),
      client_requests_(registry->AddCounter("ballot_client_requests_total",
                                            "Client requests received (every kind)")),
      client_responses_dropped_(
          registry->AddCounter("ballot_client_responses_dropped_total",
                               "Client responses dropped (connection gone, queue full)")),
      bad_frames_(registry->AddCounter("ballot_bad_frames_total",
                                       "Malformed, oversized or misplaced frames received")),
      handshakes_rejected_(registry->AddCounter(
          "ballot_handshakes_rejected_total",
          "Handshakes refused (wrong cluster, version, node id or timing; timeout)")),
      snapshots_taken_(registry->AddCounter("ballot_snapshots_taken_total",
                                            "Snapshots written here and durable")),
      snapshots_failed_(
          registry->AddCounter("ballot_snapshots_failed_total", "Snapshot writes that failed")),
      snapshots_installed_(registry->AddCounter("ballot_snapshots_installed_total",
                                                "Snapshots received from a peer and installed")),
      persist_seconds_(registry->AddHistogram(
          "ballot_persist_duration_seconds",
          "Time to make one persist batch durable (journal append or LMDB commit)",
          LatencySecondsBuckets())),
      commit_seconds_(registry->AddHistogram(
          "ballot_commit_duration_seconds",
          "From a command's arrival at this node to its reply (leader: chosen and applied)",
          LatencySecondsBuckets())),
      commands_per_slot_(registry->AddHistogram("ballot_commands_per_slot",
                                                "Client commands in each applied log slot",
                                                CommandsPerSlotBuckets())),
      snapshot_seconds_(registry->AddHistogram(
          "ballot_snapshot_duration_seconds",
          "From capturing a snapshot to its being durable (written in the background)",
          LatencySecondsBuckets())),
      last_tick_ns_(Now()) {
  registry->AddGauge("ballot_node_id", "This node's id").Set(id);
}

ServerMetrics::~ServerMetrics() {
  if (lmdb_collector_ != 0) registry_->RemoveCollector(lmdb_collector_);
}

void ServerMetrics::WatchLmdb(store::LmdbStore* store) {
  CHECK(lmdb_ == nullptr && store != nullptr);
  lmdb_ = store;
  lmdb_collector_ = registry_->AddCollector([this] { CollectLmdb(); });
}

void ServerMetrics::CollectLmdb() {
  const store::LmdbStats s = lmdb_->stats();
  lmdb_map_size_bytes_.Set(static_cast<double>(s.map_bytes));
  lmdb_map_used_bytes_.Set(static_cast<double>(s.used_bytes));
  lmdb_map_limit_bytes_.Set(static_cast<double>(s.map_bytes_max));
  Mirror(lmdb_commits_, s.commits, &lmdb_commits_seen_);
}

void ServerMetrics::Mirror(Counter& counter, uint64_t total, uint64_t* last) {
  if (total > *last) counter.Increment(total - *last);
  *last = total;
}

void ServerMetrics::OnTick(const TickInputs& in) {
  last_tick_ns_.store(Now(), std::memory_order_relaxed);
  participating_.store(in.participating, std::memory_order_relaxed);
  const paxos::Role role = in.replica.role;
  role_.store(static_cast<int>(role), std::memory_order_relaxed);
  leader_.store(in.replica.leader, std::memory_order_relaxed);
  const bool joining = !in.participating;
  role_joining_.Set(joining ? 1 : 0);
  role_follower_.Set(!joining && role == paxos::Role::kFollower ? 1 : 0);
  role_pre_candidate_.Set(!joining && role == paxos::Role::kPreCandidate ? 1 : 0);
  role_candidate_.Set(!joining && role == paxos::Role::kCandidate ? 1 : 0);
  role_leader_.Set(!joining && role == paxos::Role::kLeader ? 1 : 0);
  leader_id_.Set(in.replica.leader);
  leader_epoch_.Set(static_cast<double>(in.replica.leader_epoch.raw()));
  lease_held_.Set(in.replica.lease_held ? 1 : 0);
  chosen_slots_.Set(static_cast<double>(in.replica.chosen_below - 1));
  applied_slots_.Set(static_cast<double>(in.applied_below - 1));

  Mirror(elections_started_, in.core.elections_started, &mirrored_.elections);
  Mirror(leader_changes_, in.core.leader_changes_seen, &mirrored_.leader_changes);
  Mirror(core_messages_dropped_, in.core.messages_dropped, &mirrored_.core_dropped);
  const net::TransportCounters& t = in.transport;
  Mirror(peer_messages_dropped_, t.peer_messages_dropped, &mirrored_.peer_dropped);
  Mirror(peer_messages_sent_, t.peer_messages_sent, &mirrored_.peer_sent);
  Mirror(peer_messages_received_, t.peer_messages_received, &mirrored_.peer_received);
  Mirror(client_requests_, t.client_requests_received, &mirrored_.client_requests);
  Mirror(client_responses_dropped_, t.client_responses_dropped, &mirrored_.responses_dropped);
  Mirror(bad_frames_, t.bad_frames, &mirrored_.bad_frames);
  Mirror(handshakes_rejected_, t.handshakes_rejected, &mirrored_.handshakes_rejected);
  Mirror(snapshots_installed_, in.driver.snapshots_installed, &mirrored_.snapshots_installed);
}

void ServerMetrics::NoteHeartbeat(uint64_t round) {
  last_heartbeat_round_ = round;
  heartbeats_[round % kHeartbeatRoundsKept] = SentHeartbeat{round, Now()};
}

void ServerMetrics::NoteHeartbeatReply(paxos::NodeId peer, uint64_t round) {
  const SentHeartbeat& sent = heartbeats_[round % kHeartbeatRoundsKept];
  if (sent.round != round || sent.sent_ns == 0) return;  // too old, or not ours
  Histogram*& rtt = peer_rtt_[peer];
  if (rtt == nullptr) {
    rtt = &registry_->AddHistogram(
        "ballot_peer_rtt_seconds",
        "Heartbeat round trip to each peer, measured by the leader (send to reply)",
        LatencySecondsBuckets(), {{"peer", std::to_string(peer)}});
  }
  const uint64_t now = Now();
  rtt->Observe(static_cast<double>(now - std::min(now, sent.sent_ns)) * 1e-9);
}

void ServerMetrics::OnApplied(const std::vector<paxos::Entry>& entries, size_t client_sessions) {
  uint64_t commands = 0;
  for (const paxos::Entry& e : entries) {
    const size_t n = e.value.commands.size();
    commands += n;
    commands_per_slot_.Observe(static_cast<double>(n));
  }
  commands_applied_.Increment(commands);
  client_sessions_.Set(static_cast<double>(client_sessions));
}

void ServerMetrics::OnSnapshotSaved(bool ok, uint64_t bytes) {
  if (!ok) {
    snapshots_failed_.Increment();
    return;
  }
  snapshots_taken_.Increment();
  snapshot_bytes_.Set(static_cast<double>(bytes));
  const uint64_t started = snapshot_started_ns_.load(std::memory_order_relaxed);
  const uint64_t now = Now();
  if (started != 0 && now >= started) {
    snapshot_seconds_.Observe(static_cast<double>(now - started) * 1e-9);
  }
}

HealthReport ServerMetrics::Health() const {
  const std::string node = "node " + std::to_string(id_);
  if (stopping_.load()) return {false, node + " is stopping"};
  if (!participating_.load()) return {false, node + " has not joined its cluster yet"};
  const uint64_t now = Now();
  const uint64_t last = last_tick_ns_.load(std::memory_order_relaxed);
  const auto since = std::chrono::nanoseconds(now - std::min(now, last));
  if (since > stall_limit_) {
    return {false, node + ": its io thread has not ticked for " +
                       std::to_string(
                           std::chrono::duration_cast<std::chrono::milliseconds>(since).count()) +
                       " ms"};
  }
  const int role = role_.load();
  const paxos::NodeId leader = leader_.load();
  return {true, "ok: " + node + ", role " +
                    (role < 0 ? "starting" : paxos::RoleName(static_cast<paxos::Role>(role))) +
                    ", leader " + (leader == paxos::kNoNode ? "unknown" : std::to_string(leader))};
}

}  // namespace ballot
