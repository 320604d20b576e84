// Driver: carries out a paxos::Replica's Ready. It is the one copy of that code: the server
// (net/server/server.cc) runs it with threads, sockets and LMDB; the simulator
// (tests/sim/sim_node.cc) runs it with virtual time, a fake network and a disk that loses unsynced
// writes. What ships is what is simulated.
//
// It owns the Replica and the Applier, and does, in the order paxos/ready.h demands:
//   - send_now at once; persist through the host (one batch outstanding), and only once the
//     host reports it durable (OnPersisted) send_after_persist and Advance();
//   - apply chosen entries in slot order where the state machine lives, route each reply to the
//     client waiting for it, serve reads once applied far enough;
//   - announce leadership (state machine hooks, callbacks, the fencing token) only after the
//     state machine applied everything below the new leader's start slot, and never an epoch
//     lower than one already announced;
//   - snapshots: taken while serving (StateMachine::TakeSnapshotView on the apply side, written
//     in the background), triggered by slots or log bytes since the last one or on demand; once
//     durable, the log below the previous snapshot leaves the store and the log below the
//     snapshot minus a retained tail leaves memory;
//   - snapshot transfer: a replica missing compacted slots (Ready::snapshot_needed) pulls the
//     peer's newest snapshot in checksummed chunks, one outstanding at a time and at most
//     transfer_bytes_per_tick_max per tick, resuming at its offset after a loss; installs it
//     atomically (SnapshotStore::CreateRaw verifies the whole before it becomes visible), then
//     restores the state machine and continues from the log.
//
// Threads: none of its own. Every method is called on the host's "driver thread" (the io
// thread; the simulator's only thread). Work for the state machine goes through
// DriverHost::ToApplier (the apply thread, or at once), slow I/O through InBackground, and
// results come back through ToDriver. Fields are grouped by the thread that owns them.
#ifndef BALLOT_NET_SERVER_DRIVER_H_
#define BALLOT_NET_SERVER_DRIVER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "net/server/driver_tuning.h"
#include "paxos/replica.h"
#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/applier.h"
#include "statemachine/thread_annotations.h"
#include "store/snapshot_store.h"
#include "store/store.h"

namespace ballot {

// Routes an answer back to whoever asked: the host's connection and request, opaque here.
struct ClientTag {
  uint64_t connection = 0;
  uint64_t request = 0;
  uint64_t received_ns = 0;  // the host's: when the request arrived (it times commits); 0: unset
};

// The tuning (net/server/driver_tuning.h) plus a test hook.
struct DriverOptions : DriverTuning {
  DriverOptions() = default;
  explicit DriverOptions(const DriverTuning& tuning) : DriverTuning(tuning) {}

  // Test hook: the sender flips a byte of every this-many-th chunk it sends (0: never), so a
  // test can show that a damaged chunk is refused and sent again.
  uint64_t TEST_corrupt_every_nth_chunk = 0;
};

// Counters for operators and tests; read on the driver thread.
struct DriverCounters {
  uint64_t snapshots_taken = 0;      // written and durable
  uint64_t snapshots_failed = 0;     // a write or commit failed (the node keeps serving)
  uint64_t snapshot_bytes_last = 0;  // raw size of the newest one
  uint64_t snapshots_installed = 0;  // received from a peer and restored
  uint64_t transfer_chunks_sent = 0;
  uint64_t transfer_chunks_received = 0;
  uint64_t transfer_chunks_refused = 0;  // checksum mismatch, wrong offset, stale snapshot
  uint64_t transfer_retries = 0;         // asked again after transfer_retry_ticks
};

// What the driver needs from its host: threads, the network, the disk's timing, and clients.
class DriverHost {
 public:
  virtual ~DriverHost() = default;

  // A message to a peer (protocol or snapshot transfer). Never blocks; may be lost.
  virtual void SendToPeer(paxos::Message message) = 0;
  // Writes `batch` as one durable transaction (Store::Write), off the driver thread if it likes,
  // then calls Driver::OnPersisted() on the driver thread. At most one is outstanding.
  virtual void Persist(paxos::PersistBatch batch) = 0;
  // Runs `work` where the state machine lives, in submission order (the apply thread, or at
  // once). Everything the Applier sees goes through here.
  virtual void ToApplier(std::function<void()> work) = 0;
  // Runs `work` on the driver thread after the current call returns, then drains the driver.
  virtual void ToDriver(std::function<void()> work) = 0;
  // Runs `work` on a background thread: slow I/O (writing, committing, deleting snapshots).
  virtual void InBackground(std::function<void()> work) = 0;

  // Client answers, on the driver thread.
  virtual void CommandDone(ClientTag tag, Reply& reply) = 0;
  virtual void ReadDone(ClientTag tag, Outcome outcome) = 0;
  virtual void Refuse(ClientTag tag, StatusCode code, std::string message,
                      paxos::NodeId leader_hint) = 0;

  // The node cannot go on (a store or snapshot failure that may have lost state). Any thread.
  virtual void Fatal(Status why) = 0;

  // Observation points, for the simulator's checker and for logs. Defaults do nothing.
  // On the driver thread: a leadership event as the core raised it.
  virtual void OnLeadershipEvent(const paxos::LeadershipEvent& event) { (void)event; }
  // On the driver thread, before the Ready's messages are sent: the configuration now in force
  // (Ready::configuration), in the first Ready and whenever it changes. Empty while a joining
  // node does not know it yet. The server connects to new members and drops removed ones.
  virtual void OnConfiguration(const paxos::Configuration& config) { (void)config; }
  // On the applier side: leadership announced to the state machine (after its recovery was
  // applied), or ended.
  virtual void OnAnnounced(bool leading, uint64_t epoch) { (void)leading, (void)epoch; }
  // On the applier side, before entries reach the Applier; false stops the driver applying
  // (the simulator found a violation and wants a report, not a CHECK failure).
  virtual bool BeforeApply(const std::vector<paxos::Entry>& entries) {
    (void)entries;
    return true;
  }
  // On the applier side, after `entries` were applied: the server counts them for its metrics.
  virtual void AfterApply(const std::vector<paxos::Entry>& entries, const Applier& applier) {
    (void)entries, (void)applier;
  }
  // On the driver thread: a snapshot write ended (durable if `ok`; `bytes` its stored size).
  virtual void OnSnapshotSaved(paxos::Slot applied_below, bool ok, uint64_t bytes) {
    (void)applied_below, (void)ok, (void)bytes;
  }
  // On the applier side: a reply the Applier produced (duplicates included).
  virtual void OnApplied(const Reply& reply) { (void)reply; }
  // On the applier side: a snapshot of the state below `applied_below` was captured.
  virtual void OnSnapshotTaken(paxos::Slot applied_below) { (void)applied_below; }
  // On the applier side: the state machine was restored from a snapshot below `applied_below`
  // that node `source` took (this node's own id on restart).
  virtual void OnSnapshotRestored(paxos::NodeId source, paxos::Slot applied_below) {
    (void)source, (void)applied_below;
  }
};

class Driver {
 public:
  // A transfer whose peer answered none of this many retries in a row is abandoned.
  static constexpr uint32_t kTransferSilentRetriesMax = 5;

  // Restores `applier` from the newest valid snapshot at or above the store's compaction mark
  // (falling back to an older one if the newest fails its checksum), and returns the durable
  // state to build the Replica from, with applied_below set to the restored position.
  // kCorruption, naming the snapshot, if the log was compacted and no snapshot is usable.
  // `host` may be null (no observation).
  struct Recovered {
    paxos::DurableState durable;
    paxos::Slot store_mark = 1;  // the store keeps its log from here (Load's applied_below)
  };
  static Result<Recovered> Recover(store::Store* store, store::SnapshotStore* snapshots,
                                   Applier* applier, paxos::NodeId self, DriverHost* host);

  // `store` and `snapshots` outlive the driver and are thread-safe (the host's storage thread
  // writes the store; background jobs write both). `store_mark` is Recovered::store_mark.
  Driver(DriverOptions options, DriverHost* host, std::unique_ptr<paxos::Replica> replica,
         std::unique_ptr<Applier> applier, store::Store* store, store::SnapshotStore* snapshots,
         paxos::Slot store_mark);
  ~Driver();
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  // Inputs. Each may queue work; call Drain() afterwards (once for a burst of inputs).
  void Tick();
  void Step(const paxos::Message& message);  // protocol messages and snapshot transfer
  // The command must carry a client id and sequence; its answer goes to `tag`.
  void Propose(paxos::Command command, ClientTag tag);
  void Read(std::string query, ClientTag tag);
  // Takes a snapshot now; if one is being written, that one answers (a retried request must not
  // take one snapshot per attempt). `done` gets its applied_below, on the
  // driver thread, once it is durable (or the error).
  void RequestSnapshot(std::function<void(Result<paxos::Slot>)> done);

  // Carries out everything the core has ready, and the results that came back.
  void Drain();
  // The batch handed to DriverHost::Persist is durable.
  void OnPersisted();
  // Runs `work` (from ToDriver) and then drains. Hosts call this to deliver ToDriver work.
  void RunOnDriver(const std::function<void()>& work);

  // Driver thread.
  paxos::Replica& replica() { return *replica_; }
  const DriverCounters& counters() const { return counters_; }
  bool transfer_active() const { return transfer_.active; }
  // Any thread.
  paxos::Slot applied_below() const { return applied_below_.load(); }
  // The fencing token while this node leads with an announced epoch, else 0.
  uint64_t token() const { return token_.load(); }
  paxos::NodeId leader() const { return leader_.load(); }

  // Applier side: the Applier (the simulator reads its state machine; tests inspect it).
  Applier& applier() { return *applier_; }

 private:
  struct WaitingRead {
    ClientTag tag;
    std::string query;
  };
  struct ServeRead {
    uint64_t read_id = 0;
    paxos::Slot read_below = 0;
    std::string query;
  };
  // A snapshot being received (driver thread).
  struct Transfer {
    bool active = false;
    bool committing = false;  // the last chunk arrived; the install runs
    paxos::NodeId from = paxos::kNoNode;
    paxos::Slot needed_below = 0;    // from Ready::snapshot_needed
    paxos::Slot snapshot_below = 0;  // the snapshot being copied (0: not known yet)
    uint64_t offset = 0;
    uint64_t last_progress_tick = 0;
    bool request_due = false;     // throttled: ask at the next tick
    uint32_t silent_retries = 0;  // retries since the peer last sent a chunk
    std::shared_ptr<store::SnapshotSink> sink;
  };
  // A snapshot a peer is copying from this node (driver thread).
  struct Serving {
    paxos::Slot below = 0;
    uint64_t last_request_tick = 0;
  };
  // Leadership waiting for the applier to reach its start slot (applier side).
  struct PendingAnnouncement {
    uint64_t epoch = 0;
    paxos::Slot start_slot = 0;
  };

  // Driver thread.
  void HandleReady(paxos::Ready ready);
  void HandlePersist(paxos::Ready& ready);
  void HandleApply(std::vector<paxos::Entry> entries);
  void HandleEvent(const paxos::LeadershipEvent& event);
  void HandleReads(paxos::Ready& ready);
  void OnReplies(std::vector<Reply> replies);
  void OnReadServed(uint64_t read_id, Outcome outcome);
  void FailCommand(uint64_t client_id, uint64_t sequence, const std::string& why);
  void FailAllWaiting();
  void OnSnapshotSaved(paxos::Slot below, Status status, uint64_t bytes);
  // The stored size of the snapshot below `below` (0 if unknown).
  uint64_t SnapshotBytes(paxos::Slot below) const;
  void CompactMemory();

  // Snapshot transfer, driver thread.
  void StartTransfer(const paxos::SnapshotNeeded& needed);
  void RequestChunk();
  void OnSnapshotRequest(const paxos::Message& m);
  void ExpireServing();
  void UpdateServingBelow();
  void OnSnapshotChunk(const paxos::Message& m);
  void OnTransferCommitted(paxos::Slot below, Status status);
  void OnInstalled(paxos::Slot below, bool installed, const paxos::Configuration& config);
  void AbandonTransfer(const std::string& why);
  void TickTransfer();

  // Applier side.
  void ApplyEntries(const std::vector<paxos::Entry>& entries, size_t commands);
  void ServeReads();
  void Announce(bool leading, uint64_t epoch);
  void MaybeAnnounce();
  void MaybeSnapshot();
  void BeginSnapshot();
  void InstallOnApplier(paxos::NodeId from, paxos::Slot below);

  // Background (any thread).
  Status WriteSnapshot(PendingSnapshot* pending, paxos::Slot below);
  // The store drops its log below `below` (and snapshots older than it go): once, upwards only.
  Status RaiseStoreMark(paxos::Slot below);

  // Constant after construction.
  const DriverOptions options_;
  DriverHost* const host_;
  store::Store* const store_;
  store::SnapshotStore* const snapshots_;
  const paxos::NodeId self_;

  // Driver thread.
  std::unique_ptr<paxos::Replica> replica_;
  bool persist_outstanding_ = false;
  std::vector<paxos::Message> after_persist_;
  struct SessionKeyHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& key) const {
      return std::hash<uint64_t>()(key.first * 0x9E3779B97F4A7C15ull ^ key.second);
    }
  };
  // (client id, sequence) -> who waits; a retry on the same node adds a waiter.
  std::unordered_multimap<std::pair<uint64_t, uint64_t>, ClientTag, SessionKeyHash>
      waiting_commands_;
  std::map<uint64_t, WaitingRead> waiting_reads_;
  uint64_t last_read_id_ = 0;
  uint64_t now_ticks_ = 0;
  uint64_t transfer_bytes_this_tick_ = 0;
  uint64_t chunks_served_ = 0;
  paxos::Slot newest_snapshot_below_ = 0;  // durable here
  std::vector<std::function<void(Result<paxos::Slot>)>> snapshot_waiters_;
  Transfer transfer_;
  std::map<paxos::NodeId, Serving> serving_;  // by receiver
  DriverCounters counters_;

  // Applier side.
  std::unique_ptr<Applier> applier_;
  std::deque<ServeRead> reads_waiting_apply_;
  std::vector<PendingAnnouncement> pending_announcements_;
  uint64_t announced_epoch_ = 0;  // highest ever announced
  bool announced_leading_ = false;
  bool snapshot_in_progress_ = false;
  bool snapshot_requested_ = false;
  paxos::Slot last_snapshot_below_ = 1;
  uint64_t log_bytes_since_snapshot_ = 0;
  uint64_t last_snapshot_bytes_ = 0;         // applier side: the size of the newest snapshot
  paxos::Slot previous_snapshot_below_ = 0;  // the store keeps the log from here

  // Any thread.
  Mutex mark_mu_;
  paxos::Slot store_mark_ GUARDED_BY(mark_mu_);
  std::atomic<size_t> apply_queue_commands_{0};
  std::atomic<paxos::Slot> applied_below_{1};
  // The lowest snapshot a peer is copying from here (0: none): a new snapshot of ours does not
  // raise the store mark past it. (An installed one does: the log below it is of no use.)
  std::atomic<paxos::Slot> serving_below_{0};
  std::atomic<uint64_t> token_{0};
  std::atomic<paxos::NodeId> leader_{paxos::kNoNode};
};

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_DRIVER_H_
