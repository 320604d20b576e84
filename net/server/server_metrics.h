// ServerMetrics: what a server (net/server/server.h) records about itself in its MetricsRegistry,
// and its health. The names it registers are listed in README.md ("Metrics").
//
// The server calls the On* hooks from the thread named beside each. They cost a few relaxed
// atomic operations (a clock read where a duration is measured, and never one per command: a
// command's commit time is measured against a time read once per batch of replies). No hook
// locks or allocates, except the first round trip seen from a new peer (it registers that
// peer's histogram). Values owned by the io thread (role, epoch, slots, the core's and the
// transport's counters) are copied into the registry once per tick by OnTick, so a scrape
// never touches them.
//
// paxos/ stays clock-free: counts come from what the core reports (ReplicaStatus, its
// Counters, the entries it hands out), times are read here.
#ifndef BALLOT_NET_SERVER_METRICS_H_
#define BALLOT_NET_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "net/server/driver.h"
#include "net/server/metrics_http.h"
#include "net/server/metrics_registry.h"
#include "net/transport.h"
#include "paxos/message.h"
#include "paxos/replica.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot {

namespace store {
class LmdbStore;
}  // namespace store

class ServerMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  // Registers every metric in `registry` (which must outlive this). `tick`: the node's tick,
  // for the health check's idea of a stalled io thread.
  ServerMetrics(MetricsRegistry* registry, paxos::NodeId id, std::chrono::milliseconds tick);
  // Stops the LMDB collector (if any) before the store it reads goes away.
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // Scrapes read the store's map size and use (LmdbStore::stats) at scrape time. Call once,
  // before serving; `store` must outlive this object.
  void WatchLmdb(store::LmdbStore* store);

  // io thread, every tick (also while the node waits to join: participating false).
  struct TickInputs {
    paxos::ReplicaStatus replica;
    paxos::Replica::Counters core;
    net::TransportCounters transport;
    DriverCounters driver;
    paxos::Slot applied_below = 1;  // what the state machine applied (Driver::applied_below)
    bool participating = false;
  };
  void OnTick(const TickInputs& in);

  // io thread.
  void OnProposal() { proposals_.Increment(); }
  void OnRefused(StatusCode code) {
    if (code == StatusCode::kOverloaded) overload_rejections_.Increment();
  }
  // Before a message goes to a peer / after one came from a peer: heartbeat round trips.
  void OnSendToPeer(const paxos::Message& m) {
    if (m.type == paxos::MessageType::kHeartbeat && m.round != last_heartbeat_round_) {
      NoteHeartbeat(m.round);
    }
  }
  void OnPeerMessage(const paxos::Message& m) {
    if (m.type == paxos::MessageType::kHeartbeatReply) NoteHeartbeatReply(m.from, m.round);
  }
  // Times as ClientTag::received_ns carries them.
  static uint64_t Ns(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  static uint64_t Now() { return Ns(Clock::now()); }
  // Before a batch of driver work that may answer commands (one clock read for the batch).
  void BeginReplies() { replies_now_ns_ = Now(); }
  // A command's reply is sent; `received_ns` is when it arrived here (0: unknown).
  void OnCommandDone(uint64_t received_ns) {
    if (received_ns != 0 && replies_now_ns_ >= received_ns) {
      commit_seconds_.Observe(static_cast<double>(replies_now_ns_ - received_ns) * 1e-9);
    }
  }

  // Storage thread: one persist batch became durable after `took`.
  void OnPersisted(Clock::duration took) {
    persist_seconds_.Observe(std::chrono::duration<double>(took).count());
  }

  // Applier side (the apply thread, or the io thread with apply_inline).
  void OnApplied(const std::vector<paxos::Entry>& entries, size_t client_sessions);
  void OnSnapshotTaken() { snapshot_started_ns_.store(Now(), std::memory_order_relaxed); }

  // Driver (io) thread: a snapshot write ended.
  void OnSnapshotSaved(bool ok, uint64_t bytes);

  // Any thread.
  void SetStopping() { stopping_.store(true); }
  // 200 while the node has joined its cluster, is not stopping and its io thread ticks.
  HealthReport Health() const;

 private:
  // Heartbeat send times kept for matching replies: 64 ticks' worth (0.64 s at 10 ms), as many
  // rounds as the core itself remembers; a reply slower than that is not timed.
  static constexpr size_t kHeartbeatRoundsKept = 64;
  struct SentHeartbeat {
    uint64_t round = 0;
    uint64_t sent_ns = 0;
  };
  void NoteHeartbeat(uint64_t round);
  void NoteHeartbeatReply(paxos::NodeId peer, uint64_t round);
  void CollectLmdb();
  // Adds what `total` (a source's own monotonic counter) gained since `*last`.
  static void Mirror(Counter& counter, uint64_t total, uint64_t* last);

  // Constant after construction.
  MetricsRegistry* const registry_;
  const paxos::NodeId id_;
  const std::chrono::milliseconds stall_limit_;

  Gauge& role_follower_;
  Gauge& role_pre_candidate_;
  Gauge& role_candidate_;
  Gauge& role_leader_;
  Gauge& role_joining_;
  Gauge& leader_id_;
  Gauge& leader_epoch_;
  Gauge& lease_held_;
  Gauge& chosen_slots_;
  Gauge& applied_slots_;
  Gauge& client_sessions_;
  Gauge& snapshot_bytes_;
  Gauge& lmdb_map_size_bytes_;
  Gauge& lmdb_map_used_bytes_;
  Gauge& lmdb_map_limit_bytes_;
  Counter& lmdb_commits_;
  Counter& proposals_;
  Counter& commands_applied_;
  Counter& overload_rejections_;
  Counter& elections_started_;
  Counter& leader_changes_;
  Counter& core_messages_dropped_;
  Counter& peer_messages_dropped_;
  Counter& peer_messages_sent_;
  Counter& peer_messages_received_;
  Counter& client_requests_;
  Counter& client_responses_dropped_;
  Counter& bad_frames_;
  Counter& handshakes_rejected_;
  Counter& snapshots_taken_;
  Counter& snapshots_failed_;
  Counter& snapshots_installed_;
  Histogram& persist_seconds_;
  Histogram& commit_seconds_;
  Histogram& commands_per_slot_;
  Histogram& snapshot_seconds_;

  // io thread.
  struct Mirrored {
    uint64_t elections = 0, leader_changes = 0, core_dropped = 0, peer_dropped = 0, peer_sent = 0,
             peer_received = 0, client_requests = 0, responses_dropped = 0, bad_frames = 0,
             handshakes_rejected = 0, snapshots_installed = 0;
  } mirrored_;
  uint64_t last_heartbeat_round_ = 0;
  std::array<SentHeartbeat, kHeartbeatRoundsKept> heartbeats_{};
  std::map<paxos::NodeId, Histogram*> peer_rtt_;
  uint64_t replies_now_ns_ = 0;

  // Storage/collector side.
  store::LmdbStore* lmdb_ = nullptr;  // set before serving
  uint64_t lmdb_collector_ = 0;
  uint64_t lmdb_commits_seen_ = 0;  // the collector's (one Render at a time)

  // Between threads.
  std::atomic<uint64_t> snapshot_started_ns_{0};
  std::atomic<uint64_t> last_tick_ns_;
  std::atomic<bool> participating_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> role_{-1};  // paxos::Role, -1 before the first tick
  std::atomic<paxos::NodeId> leader_{paxos::kNoNode};
};

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_METRICS_H_
