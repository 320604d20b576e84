#include "net/server/server.h"

#include <glog/logging.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "net/client/client.h"
#include "net/cluster_config.h"
#include "net/server/driver.h"
#include "net/server/join_gate.h"
#include "net/server/server_metrics.h"
#include "net/server/test_hooks.h"
#include "net/server/watch_hub.h"
#include "net/server/work_queue.h"
#include "net/transport.h"
#include "net/wire.h"
#include "paxos/replica.h"
#include "statemachine/applier.h"
#include "store/cluster_identity.h"
#include "store/file_snapshot_store.h"
#include "store/lmdb_store.h"
#include "store/mem_snapshot_store.h"
#include "store/mem_store.h"

namespace ballot {

namespace asio = boost::asio;
using paxos::kNoNode;
using paxos::NodeId;
using paxos::Slot;

Status ServerOptions::Validate() const {
  auto invalid = [](const std::string& why) { return Status(StatusCode::kInvalidArgument, why); };
  if (!members.count(id)) return invalid("node id " + std::to_string(id) + " is not a member");
  if (data_dir.empty() && !in_memory) return invalid("data dir must be set");
  if (tick.count() <= 0) return invalid("tick must be positive");
  return driver.Validate();
}

namespace {

uint64_t RandomNonZero() {
  std::random_device device;
  uint64_t value = 0;
  while (value == 0) value = (uint64_t{device()} << 32) ^ device();
  return value;
}

uint64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class Server::Impl : public DriverHost {
 public:
  Impl(ServerOptions options, ServerTestHooks hooks, std::unique_ptr<store::Store> store,
       std::unique_ptr<store::SnapshotStore> snapshots)
      : options_(std::move(options)),
        hooks_(hooks),
        store_(std::move(store)),
        snapshots_(std::move(snapshots)),
        work_guard_(asio::make_work_guard(io_)),
        tick_timer_(io_) {
    if (auto* lmdb = dynamic_cast<store::LmdbStore*>(store_.get())) metrics_.WatchLmdb(lmdb);
  }

  // Server's constructor is private; Impl, a member, may call it.
  static std::unique_ptr<Server> Wrap(std::unique_ptr<Impl> impl) {
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  }

  ~Impl() override {
    Stop(Status::Ok());
    Join();
  }

  // Restores the state machine from the newest usable snapshot and builds the core and the
  // driver over what the store holds.
  Status Recover(std::unique_ptr<StateMachine> machine) {
    // The bootstrap configuration: what DIR/CLUSTER recorded when the cluster was created (so a
    // restart with another --cluster keeps the membership), none for a node that joined an
    // existing cluster (it learns it from the log or a snapshot), else --cluster (a new cluster,
    // or a directory of a format that did not record it: membership was fixed then).
    bootstrap_ = options_.members;
    join_ = options_.join;
    if (!options_.in_memory) {
      auto loaded = store::LoadClusterIdentity(options_.data_dir);
      if (!loaded.ok()) return loaded.status();
      if (loaded.value() && loaded.value()->bootstrap) {
        bootstrap_ = *loaded.value()->bootstrap;
        join_ = bootstrap_.empty();
      } else if (loaded.value()) {
        join_ = false;
      }
    }
    if (join_) bootstrap_.clear();
    machine = WrapInWatchHub(std::move(machine));
    auto applier = std::make_unique<Applier>(std::move(machine));
    std::vector<paxos::Member> bootstrap;
    for (const auto& [id, address] : bootstrap_) bootstrap.push_back({id, address, true});
    applier->set_configuration(paxos::Configuration(std::move(bootstrap)));
    auto recovered = Driver::Recover(store_.get(), snapshots_.get(), applier.get(), options_.id,
                                     /*host=*/nullptr);
    if (!recovered.ok()) return recovered.status();
    // What a restart loaded, for operators (and the process tests): the snapshot, and how much
    // of the log the replica hands to the state machine again.
    const paxos::DurableState& durable = recovered.value().durable;
    const paxos::Slot tail =
        durable.chosen_below - std::min(durable.chosen_below, durable.applied_below);
    if (durable.applied_below > 1) {
      LOG(INFO) << "node " << options_.id
                << ": restored the state machine from the snapshot below slot "
                << durable.applied_below << "; replaying " << tail
                << " chosen slots after it from the log";
    } else {
      LOG(INFO) << "node " << options_.id << ": no snapshot; replaying " << tail
                << " chosen slots from the log";
    }
    has_protocol_state_ = durable.promised.raw() != 0 || !durable.entries.empty() ||
                          durable.chosen_below > 1 || durable.applied_below > 1;
    paxos::Options po(options_.paxos);
    po.id = options_.id;
    po.members.clear();
    for (const auto& [id, address] : bootstrap_) po.members.push_back(id);
    po.join = join_;
    // Different per node and per start, so two nodes never time out in lockstep.
    po.seed = options_.paxos.seed ^ WallClockMs() ^ (uint64_t{options_.id} << 32);
    auto replica = paxos::Replica::Create(po, std::move(recovered.value().durable));
    if (!replica.ok()) return replica.status();
    DriverOptions driver_options(options_.driver);
    driver_options.TEST_corrupt_every_nth_chunk = hooks_.TEST_corrupt_every_nth_chunk;
    driver_ = std::make_unique<Driver>(driver_options, this, std::move(replica).value(),
                                       std::move(applier), store_.get(), snapshots_.get(),
                                       recovered.value().store_mark);
    return Status::Ok();
  }

  // Safe bootstrap (net/server/join_gate.h): whether this data directory has joined the cluster,
  // and so whether the node may take part at once or must first hear from its peers.
  Status OpenGate() {
    if (options_.in_memory) {  // benchmark baseline: nothing durable to protect
      participating_ = true;
      return Status::Ok();
    }
    auto loaded = store::LoadClusterIdentity(options_.data_dir);
    if (!loaded.ok()) return loaded.status();
    std::optional<store::ClusterIdentity> identity = std::move(loaded).value();
    if (identity &&
        (identity->cluster_id != options_.cluster_id || identity->node_id != options_.id)) {
      return Status(StatusCode::kFailedPrecondition,
                    "data directory " + options_.data_dir + " belongs to cluster " +
                        store::FormatClusterId(identity->cluster_id) + " node " +
                        std::to_string(identity->node_id) + ", but this node is cluster " +
                        store::FormatClusterId(options_.cluster_id) + " node " +
                        std::to_string(options_.id));
    }
    if (!identity && has_protocol_state_) {
      // Written before DIR/CLUSTER existed: the node took part, so it has joined.
      identity = store::ClusterIdentity{options_.cluster_id, options_.id, {options_.id}};
      identity->bootstrap = bootstrap_;
      if (Status s = store::SaveClusterIdentity(options_.data_dir, *identity); !s.ok()) return s;
      LOG(INFO) << "node " << options_.id << ": recorded the cluster identity of existing data in "
                << options_.data_dir << "/" << store::kClusterIdentityFile;
    }
    if (identity && !identity->bootstrap) {
      // Format 1 (fixed membership): the bootstrap configuration was --cluster; record it.
      identity->bootstrap = bootstrap_;
      if (Status s = store::SaveClusterIdentity(options_.data_dir, *identity); !s.ok()) return s;
    }
    // Who must list this node before it takes part: the voters of the configuration it
    // recovered (membership changes), or the bootstrap members while it knows none.
    std::vector<NodeId> members = driver_->replica().configuration().voters();
    if (members.empty()) {
      for (const auto& [id, address] : options_.members) members.push_back(id);
    }
    if (identity && join_) {
      LOG(INFO) << "node " << options_.id << ": joined cluster "
                << store::FormatClusterId(options_.cluster_id)
                << " as a new member earlier: taking part at once";
    }
    if (!identity && join_) {
      LOG(INFO) << "node " << options_.id << ": data directory " << options_.data_dir
                << " is empty: joining cluster " << store::FormatClusterId(options_.cluster_id)
                << " (--join) once a majority of the other members given do not list this node";
    } else if (!identity) {
      LOG(INFO) << "node " << options_.id << ": data directory " << options_.data_dir
                << " is empty: waiting to hear from the other members whether cluster "
                << store::FormatClusterId(options_.cluster_id) << " already exists";
    }
    gate_ = std::make_unique<JoinGate>(options_.id, std::move(members), options_.cluster_id,
                                       std::move(identity), options_.data_dir);
    gate_->set_join(join_);
    gate_->set_bootstrap(bootstrap_);
    return CarryOut(gate_->Start());
  }

  // Runs on the io thread once the transport exists (before, during Create).
  Status CarryOut(const JoinGate::Actions& actions) {
    if (actions.refuse) {
      LOG(ERROR) << "node " << options_.id << ": refusing to start: " << actions.refuse->message();
      Stop(*actions.refuse);
      return *actions.refuse;
    }
    if (!actions.note.empty()) LOG(INFO) << "node " << options_.id << ": " << actions.note;
    if (actions.save) {
      // Durable before this node answers the Hello that caused it, or says it joined.
      Status s = store::SaveClusterIdentity(options_.data_dir, *actions.save);
      if (!s.ok()) {
        Fatal(s);
        return s;
      }
      if (transport_) {
        transport_->SetDataState(net::DataState::kEstablished, actions.save->joined_members);
      }
    }
    if (actions.reconnect && transport_) {
      asio::post(io_, [this] { transport_->ReconnectPeers(); });
    }
    if (actions.participate) {
      participating_ = true;
      last_tick_time_ = {};  // ticks count from now, not from when the node started waiting
    }
    return Status::Ok();
  }

  void OnPeerHello(const net::Hello& hello) {
    if (gate_ != nullptr) (void)CarryOut(gate_->OnPeerHello(hello));
  }

  Status OpenTransport() {
    net::TransportOptions t;
    t.cluster_id = options_.cluster_id;
    t.node_id = options_.id;
    t.timing = net::PeerTimingOf(options_.tick, options_.paxos);
    if (gate_ != nullptr) {
      t.data_state = gate_->data_state();
      t.joined_members = gate_->joined_members();
    }
    const std::string& self = options_.members.at(options_.id);
    Result<HostPort> listen = ParseHostPort(self);
    if (!listen.ok()) return listen.status();
    t.listen_host = listen.value().host;
    t.listen_port = options_.listen_port_override >= 0
                        ? static_cast<uint16_t>(options_.listen_port_override)
                        : listen.value().port;
    // The members this node knows of: --cluster, and the recovered configuration's (which wins:
    // --cluster may be out of date). OnConfiguration keeps the table in step afterwards.
    for (const auto& [id, address] : options_.members) {
      if (id != options_.id) t.peers[id] = address;
    }
    for (const paxos::Member& m : driver_->replica().configuration().members()) {
      if (m.id != options_.id && !m.address.empty()) t.peers[m.id] = m.address;
    }
    auto transport = net::Transport::Create(
        io_, std::move(t), [this](paxos::Message m) { OnPeerMessage(m); },
        [this](net::ClientHandle c, net::ClientRequest r) { OnClientRequest(c, std::move(r)); });
    if (!transport.ok()) return transport.status();
    transport_ = std::move(transport).value();
    transport_->SetPeerHelloHandler([this](const net::Hello& h) { OnPeerHello(h); });
    return Status::Ok();
  }

  void Start() {
    io_thread_ = std::thread([this] {
      ArmTick();
      io_.run();
    });
    storage_thread_ = std::thread([this] { StorageLoop(); });
    background_thread_ = std::thread([this] {
      while (std::optional<std::function<void()>> job = background_queue_.Pop()) (*job)();
    });
    if (!options_.apply_inline) {
      apply_thread_ = std::thread([this] {
        while (std::optional<std::function<void()>> job = apply_queue_.Pop()) (*job)();
      });
    }
  }

  void Stop(Status why) {
    metrics_.SetStopping();
    {
      MutexLock lock(&stop_mu_);
      if (stopping_) return;
      stopping_ = true;
      stop_reason_ = std::move(why);
    }
    persist_queue_.Close();
    apply_queue_.Close();
    background_queue_.Close();
    io_.stop();
    stop_cv_.NotifyAll();
  }

  Status Wait() {
    {
      MutexLock lock(&stop_mu_);
      while (!stopping_) stop_cv_.Wait(&stop_mu_);
    }
    Join();
    MutexLock lock(&stop_mu_);
    return stop_reason_;
  }

  uint16_t port() const { return transport_ ? transport_->port() : 0; }
  ServerInfo info() const { return ServerInfo{driver_->token(), driver_->leader()}; }
  MetricsRegistry& metrics() { return metrics_registry_; }
  HealthReport Health() const { return metrics_.Health(); }
  void set_leadership_callback(std::function<void(bool, uint64_t)> cb) {
    leadership_callback_ = std::move(cb);
  }

  void Shutdown(std::chrono::milliseconds transfer_wait) {
    asio::post(io_, [this, transfer_wait] { BeginShutdown(transfer_wait); });
  }

  Result<Slot> TakeSnapshot() {
    auto done = std::make_shared<std::promise<Result<Slot>>>();
    std::future<Result<Slot>> result = done->get_future();
    asio::post(io_, [this, done] {
      driver_->RequestSnapshot([done](Result<Slot> r) { done->set_value(std::move(r)); });
      driver_->Drain();
    });
    // A node that stops first never answers: wait with the stop in view.
    while (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      MutexLock lock(&stop_mu_);
      if (stopping_) return Status(StatusCode::kAborted, "node stopped");
    }
    return result.get();
  }

  // DriverHost ---------------------------------------------------------------------------------

  void SendToPeer(paxos::Message m) override {
    metrics_.OnSendToPeer(m);
    transport_->Send(m.to, std::move(m));
  }

  void Persist(paxos::PersistBatch batch) override { persist_queue_.Push(std::move(batch)); }

  void ToApplier(std::function<void()> work) override {
    if (options_.apply_inline) {
      work();
    } else {
      apply_queue_.Push(std::move(work));
    }
  }

  void ToDriver(std::function<void()> work) override {
    asio::post(io_, [this, work = std::move(work)] {
      metrics_.BeginReplies();
      driver_->RunOnDriver(work);
    });
  }

  void InBackground(std::function<void()> work) override {
    if (hooks_.TEST_background_delay.count() > 0) {
      work = [delay = hooks_.TEST_background_delay, work = std::move(work)] {
        std::this_thread::sleep_for(delay);
        work();
      };
    }
    background_queue_.Push(std::move(work));
  }

  void CommandDone(ClientTag tag, Reply& r) override {
    if (tag.connection == kClockTickConnection) return ClockTickDone();
    metrics_.OnCommandDone(tag.received_ns);
    net::ClientResponse resp;
    resp.request_id = tag.request;
    resp.outcome_code = r.outcome.code;
    resp.data = r.outcome.data;
    resp.message = r.outcome.message;
    resp.slot = r.slot;
    resp.epoch = r.epoch;
    transport_->SendResponse(Handle(tag), std::move(resp));
  }

  void ReadDone(ClientTag tag, Outcome outcome) override {
    if (StartConfirmedWatch(tag)) return;
    net::ClientResponse resp;
    resp.request_id = tag.request;
    resp.outcome_code = outcome.code;
    resp.data = std::move(outcome.data);
    resp.message = std::move(outcome.message);
    transport_->SendResponse(Handle(tag), std::move(resp));
  }

  void Refuse(ClientTag tag, StatusCode code, std::string message, NodeId hint) override {
    if (tag.connection == kClockTickConnection) return ClockTickDone();
    confirming_watches_.erase({tag.connection, tag.request});
    metrics_.OnRefused(code);
    net::ClientResponse resp;
    resp.request_id = tag.request;
    resp.code = code;
    resp.message = std::move(message);
    resp.leader_hint = hint;
    resp.leader_address = AddressOf(hint);
    transport_->SendResponse(Handle(tag), std::move(resp));
  }

  // A member's "host:port" from the configuration in force (the member list changes), else from
  // the members this node started with; empty if unknown.
  std::string AddressOf(NodeId id) const {
    if (id == kNoNode) return "";
    if (const paxos::Member* m = driver_->replica().configuration().Find(id)) return m->address;
    auto it = options_.members.find(id);
    return it == options_.members.end() ? "" : it->second;
  }

  void Fatal(Status why) override {
    LOG(ERROR) << "node " << options_.id << ": stopping: " << why.ToString();
    Stop(std::move(why));
  }

  // Membership changed (or is first known): dial new members at their configured address and
  // stop sending to members that left. --cluster entries that are not members go too.
  void OnConfiguration(const paxos::Configuration& config) override {
    if (config.empty()) return;  // a joining node that knows nothing yet keeps --cluster
    LOG(INFO) << "node " << options_.id << ": configuration " << config.ToString();
    for (const paxos::Member& m : config.members()) {
      if (m.id == options_.id || m.address.empty()) continue;
      Status s = transport_->AddPeer(m.id, m.address);
      LOG_IF(WARNING, !s.ok()) << "node " << options_.id << ": cannot reach member " << m.id
                               << " at " << m.address << ": " << s.message();
    }
    for (const auto& [id, address] : transport_->Peers()) {
      if (!config.IsMember(id)) transport_->RemovePeer(id);
    }
    if (gate_ != nullptr) {
      std::vector<NodeId> ids;
      for (const paxos::Member& m : config.members()) ids.push_back(m.id);
      (void)CarryOut(gate_->ForgetRemoved(ids));
    }
  }

  void AfterApply(const std::vector<paxos::Entry>& entries, const Applier& applier) override {
    metrics_.OnApplied(entries, applier.sessions().session_count());
  }
  void OnSnapshotTaken(Slot) override { metrics_.OnSnapshotTaken(); }
  void OnSnapshotSaved(Slot, bool ok, uint64_t bytes) override {
    metrics_.OnSnapshotSaved(ok, bytes);
  }

  void OnAnnounced(bool leading, uint64_t epoch) override {
    LOG(INFO) << "node " << options_.id << (leading ? " leads" : " stopped leading")
              << " with epoch " << paxos::ToString(paxos::Ballot::FromRaw(epoch)) << " (token "
              << epoch << ")";
    if (leadership_callback_) leadership_callback_(leading, epoch);
  }

 private:
  static net::ClientHandle Handle(ClientTag tag) { return net::ClientHandle{tag.connection}; }

  void Join() {
    if (io_thread_.joinable() && io_thread_.get_id() != std::this_thread::get_id()) {
      io_thread_.join();
    }
    // Nothing else uses the transport once the io thread has ended: closing it now, before the
    // storage and background threads finish, tells clients and peers at once that this node is
    // gone (a request sent to it meanwhile would otherwise wait for its attempt timeout).
    if (!io_thread_.joinable()) transport_.reset();
    for (std::thread* t : {&storage_thread_, &apply_thread_, &background_thread_}) {
      if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
    }
  }

  // ------------------------------------------------------------------------------------------
  // io thread

  void ArmTick() {
    tick_timer_.expires_after(options_.tick);
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      if (participating_) {
        CatchUpTicks();
        TickWatches();
        driver_->Drain();
        if (stop_at_next_tick_) return Stop(Status::Ok());
        CheckTransfer();
      } else if (gate_ != nullptr && gate_->waiting_to_join() && ++ticks_waiting_ % 100 == 0) {
        // A peer's Hello is its state when the connection opened: hear them again, so that a
        // member that has since removed this node (and forgotten it) lets it join.
        transport_->ReconnectPeers();
      }
      RecordTick();
      ArmTick();
    });
  }

  // Once per tick: what the io thread owns, copied for scrapes (net/server_metrics.h).
  void RecordTick() {
    ServerMetrics::TickInputs in;
    in.replica = driver_->replica().status();
    in.core = driver_->replica().counters();
    in.transport = transport_->counters();
    in.driver = driver_->counters();
    in.applied_below = driver_->applied_below();
    in.participating = participating_;
    metrics_.OnTick(in);
  }

  // The core's time must follow the monotonic clock, not the number of timer wake-ups: after a
  // pause (SIGSTOP, a stalled VM) a leader that counted no ticks would still believe in a lease
  // its acceptors have long let go. So every input first feeds the ticks that have elapsed.
  // Returns the time it read.
  std::chrono::steady_clock::time_point CatchUpTicks() {
    const auto now = std::chrono::steady_clock::now();
    if (last_tick_time_ == std::chrono::steady_clock::time_point()) last_tick_time_ = now;
    uint64_t due = static_cast<uint64_t>((now - last_tick_time_) / options_.tick);
    last_tick_time_ += due * options_.tick;
    // Beyond a few election timeouts every lease and timer has expired anyway.
    const uint64_t cap = uint64_t{4} * options_.paxos.election_ticks + 4;
    // Ticks that come due together mean this thread did not run for that long (a long handler,
    // CPU starvation, a pause). A leader that misses check_quorum_ticks this way steps down
    // although its peers answered in time: say so, so that the leader change has a cause.
    if (due > options_.paxos.check_quorum_ticks / 2 && due > 1) {
      LOG_EVERY_N(WARNING, 10) << "node " << options_.id << ": the event loop did not run for "
                               << due << " ticks (" << (due * options_.tick).count()
                               << " ms; check_quorum_ticks " << options_.paxos.check_quorum_ticks
                               << ")";
    }
    for (uint64_t i = 0; i < std::min(due, cap); ++i) driver_->Tick();
    return now;
  }

  void OnPeerMessage(const paxos::Message& m) {
    if (!participating_) {
      // Not joined yet (net/server/join_gate.h): promise and accept nothing; the sender retries.
      LOG_EVERY_N(INFO, 1000) << "node " << options_.id << ": not taking part yet, ignoring "
                              << paxos::MessageTypeName(m.type) << " from node " << m.from;
      return;
    }
    CatchUpTicks();
    metrics_.OnPeerMessage(m);
    driver_->Step(m);
    ScheduleDrain();
  }

  // Input that arrived together (one read from a socket, one epoll wake-up for several sockets)
  // is fed to the core first and drained once, after the handlers already queued have run: the
  // proposals of many clients then share one slot, and one Ready carries every resulting
  // message, instead of a Ready (and a persist job, and a write) per request.
  void ScheduleDrain() {
    if (drain_scheduled_) return;
    drain_scheduled_ = true;
    asio::post(io_, [this] {
      drain_scheduled_ = false;
      driver_->Drain();
      CheckTransfer();  // answer a transfer as soon as the new leader is heard, not at a tick
    });
  }

  void OnClientRequest(net::ClientHandle client, net::ClientRequest request) {
    const ClientTag tag{client.connection_id, request.request_id};
    if (!participating_) {
      if (request.kind == net::ClientRequest::Kind::kStatus) {
        return transport_->SendResponse(client, StatusResponse(request.request_id));
      }
      return Refuse(tag, StatusCode::kNotLeader,
                    "node " + std::to_string(options_.id) + " has not joined the cluster yet",
                    kNoNode);
    }
    // A lease read must not be served on a clock that stood still.
    const std::chrono::steady_clock::time_point now = CatchUpTicks();
    switch (request.kind) {
      case net::ClientRequest::Kind::kPropose:
        // Time comes from the leader's clock, stamped once, never backwards in its log.
        last_stamp_ms_ = std::max(last_stamp_ms_, WallClockMs());
        request.command.stamp_ms = last_stamp_ms_;
        metrics_.OnProposal();
        driver_->Propose(std::move(request.command),
                         ClientTag{tag.connection, tag.request, ServerMetrics::Ns(now)});
        break;
      case net::ClientRequest::Kind::kRead:
        driver_->Read(std::move(request.query), tag);
        break;
      case net::ClientRequest::Kind::kStatus:
        transport_->SendResponse(client, StatusResponse(request.request_id));
        break;
      case net::ClientRequest::Kind::kMemberList:
      case net::ClientRequest::Kind::kMemberChange:
        OnMemberRequest(tag, request);
        break;
      case net::ClientRequest::Kind::kWatch:
        OnWatch(tag, std::move(request.watch));
        break;
      case net::ClientRequest::Kind::kSnapshot:
        driver_->RequestSnapshot([this, tag](Result<Slot> r) {
          if (!r.ok()) return Refuse(tag, r.status().code(), r.status().message(), kNoNode);
          net::ClientResponse resp;
          resp.request_id = tag.request;
          resp.slot = r.value();
          transport_->SendResponse(Handle(tag), std::move(resp));
        });
        break;
      case net::ClientRequest::Kind::kTransferLeader:
        if (Status s = StartTransfer(request.transfer_to, tag); !s.ok()) {
          const NodeId hint = driver_->replica().leader();
          Refuse(tag, s.code(), s.message(), hint == options_.id ? kNoNode : hint);
        }
        break;
    }
    ScheduleDrain();
  }

  // ------------------------------------------------------------------------------------------
  // Watches (net/server/watch_hub.h). The hub wraps the state machine and answers on the applier
  // side; these are the io thread's parts: routing requests to it, a linearizable watch's
  // read-index confirmation, ending waits, and the leader's clock ticks that make TTL expiries
  // happen.

  std::unique_ptr<StateMachine> WrapInWatchHub(std::unique_ptr<StateMachine> machine) {
    auto hub = std::make_unique<WatchHub>(
        std::move(machine), options_.watches_max, [this](ClientTag tag, net::ClientResponse r) {
          asio::post(io_, [this, tag, r = std::move(r)]() mutable {
            transport_->SendResponse(Handle(tag), std::move(r));
          });
        });
    watch_hub_ = hub.get();
    return hub;
  }

  void OnWatch(ClientTag tag, net::WatchRequest watch) {
    if (!watch.linearizable) return AddWatch(tag, std::move(watch));
    // Linearizable: the leader confirms its commit index as for a read (paxos read index) and
    // applies up to it before the watch looks at the state; a follower refuses with a hint.
    const std::string query = watch.query;
    confirming_watches_[{tag.connection, tag.request}] = std::move(watch);
    driver_->Read(query, tag);
  }

  // A read the driver served: if it was a linearizable watch's confirmation, the watch starts now.
  bool StartConfirmedWatch(ClientTag tag) {
    auto it = confirming_watches_.find({tag.connection, tag.request});
    if (it == confirming_watches_.end()) return false;
    net::WatchRequest watch = std::move(it->second);
    confirming_watches_.erase(it);
    AddWatch(tag, std::move(watch));
    return true;
  }

  void AddWatch(ClientTag tag, net::WatchRequest watch) {
    ToApplier([this, tag, watch = std::move(watch)]() mutable {
      watch_hub_->Add(tag, std::move(watch));
    });
  }

  // Every tick: ends the waits that are over, and, on the leader, proposes the state machine's
  // tick command once its clock passed the machine's next deadline (a lock's expiry), so that the
  // expiry is applied (and watchers learn of it) even when no client sends a command.
  void TickWatches() {
    if (watch_hub_->parked() > 0) {
      ToApplier([this] { watch_hub_->ExpireWaits(std::chrono::steady_clock::now()); });
    }
    const uint64_t deadline = watch_hub_->next_deadline_ms();
    if (deadline == 0 || watch_hub_->tick_command().empty() || driver_->token() == 0) return;
    const uint64_t now = WallClockMs();
    // One at a time; one that got lost (a leader change) is replaced after a second.
    if (now < deadline || (clock_tick_in_flight_ && now < last_clock_tick_ms_ + 1000)) return;
    last_stamp_ms_ = std::max(last_stamp_ms_, now);
    paxos::Command command;
    command.client_id = clock_client_id_;
    command.sequence = ++clock_sequence_;
    command.acked_sequence = command.sequence - 1;
    command.stamp_ms = last_stamp_ms_;
    command.payload = watch_hub_->tick_command();
    clock_tick_in_flight_ = true;
    last_clock_tick_ms_ = now;
    driver_->Propose(std::move(command), ClientTag{kClockTickConnection, clock_sequence_});
  }

  void ClockTickDone() { clock_tick_in_flight_ = false; }

  // ------------------------------------------------------------------------------------------
  // Leader transfer (io thread): a client's kTransferLeader, or a graceful stop of the leader.
  // The core does the protocol (paxos::Replica::TransferLeadership); this waits for its outcome,
  // answers the clients that asked, and stops the node after a graceful stop's transfer.

  Status StartTransfer(NodeId target, std::optional<ClientTag> asker) {
    if (!participating_) {
      return Status(StatusCode::kNotLeader,
                    "node " + std::to_string(options_.id) + " has not joined the cluster yet");
    }
    if (!transfer_) {
      paxos::Replica& replica = driver_->replica();
      if (Status s = replica.TransferLeadership(target); !s.ok()) return s;
      PendingTransfer t;
      t.target = replica.transfer_target();
      t.epoch_before = replica.status().leader_epoch.raw();
      // The core gives up after transfer_ticks_max; a little later the runtime does too.
      const uint64_t ticks =
          options_.paxos.transfer_ticks_max + uint64_t{4} * options_.paxos.election_ticks;
      t.deadline = std::chrono::steady_clock::now() + ticks * options_.tick;
      LOG(INFO) << "node " << options_.id << ": handing leadership to node " << t.target;
      transfer_ = std::move(t);
    }
    if (asker) transfer_->askers.push_back(*asker);  // a second request waits for the first
    ScheduleDrain();
    return Status::Ok();
  }

  // Called after every tick and drain: ends the transfer once another node leads, the core
  // abandoned it, or it is overdue.
  void CheckTransfer() {
    if (!transfer_) return;
    const paxos::Replica& replica = driver_->replica();
    const paxos::ReplicaStatus status = replica.status();
    Status outcome;
    if (!replica.IsLeader() && status.leader != kNoNode && status.leader != options_.id &&
        status.leader_epoch.raw() > transfer_->epoch_before) {
      LOG(INFO) << "node " << options_.id << ": node " << status.leader << " leads now, epoch "
                << paxos::ToString(status.leader_epoch);
      for (const ClientTag& tag : transfer_->askers) {
        net::ClientResponse resp;
        resp.request_id = tag.request;
        resp.leader_hint = status.leader;
        resp.leader_address = AddressOf(status.leader);
        resp.epoch = status.leader_epoch.raw();
        transport_->SendResponse(Handle(tag), std::move(resp));
      }
    } else if (replica.IsLeader() && replica.transfer_target() == kNoNode) {
      outcome = Status(StatusCode::kAborted, "leader transfer to node " +
                                                 std::to_string(transfer_->target) +
                                                 " abandoned: it did not take over in time; node " +
                                                 std::to_string(options_.id) + " still leads");
    } else if (std::chrono::steady_clock::now() >= transfer_->deadline) {
      outcome = Status(StatusCode::kAborted, "leader transfer to node " +
                                                 std::to_string(transfer_->target) +
                                                 " did not complete in time");
    } else {
      return;  // under way
    }
    if (!outcome.ok()) {
      LOG(WARNING) << "node " << options_.id << ": " << outcome.message();
      for (const ClientTag& tag : transfer_->askers) {
        Refuse(tag, outcome.code(), outcome.message(), kNoNode);
      }
    }
    transfer_.reset();
    // Once the answers (and the refusals of commands still pending here, which name the new
    // leader) are written: the next tick.
    if (stop_after_transfer_) stop_at_next_tick_ = true;
  }

  // Graceful stop (Server::Shutdown), on the io thread.
  void BeginShutdown(std::chrono::milliseconds transfer_wait) {
    if (stop_after_transfer_ || stop_at_next_tick_) return;  // already stopping
    const bool leads = participating_ && driver_->replica().IsLeader();
    if (!leads || transfer_wait.count() <= 0) return Stop(Status::Ok());
    if (Status s = StartTransfer(kNoNode, std::nullopt); !s.ok()) {
      LOG(WARNING) << "node " << options_.id
                   << ": stopping without handing over leadership: " << s.message();
      return Stop(Status::Ok());
    }
    transfer_->deadline =
        std::min(transfer_->deadline, std::chrono::steady_clock::now() + transfer_wait);
    stop_after_transfer_ = true;
  }

  // Membership requests are the leader's: it knows the configuration governing its next slot
  // and alone proposes changes. Others refuse with a hint, like proposals.
  void OnMemberRequest(ClientTag tag, const net::ClientRequest& request) {
    paxos::Replica& replica = driver_->replica();
    if (!replica.IsLeader() || driver_->token() == 0) {
      const NodeId hint = replica.leader() == options_.id ? kNoNode : replica.leader();
      return Refuse(tag, StatusCode::kNotLeader, "not the leader", hint);
    }
    if (request.kind == net::ClientRequest::Kind::kMemberList) {
      net::ClientResponse resp;
      resp.request_id = tag.request;
      resp.members = replica.configuration().members();
      return transport_->SendResponse(Handle(tag), std::move(resp));
    }
    const net::MemberChangeRequest& want = request.member_change;
    if (want.remove && want.id == options_.id) {
      // A leader does not remove itself: it hands over first, and the client follows the hint
      // to the new leader, which removes it.
      if (replica.transfer_target() == kNoNode) {
        Status s = replica.TransferLeadership(kNoNode);
        if (!s.ok()) return Refuse(tag, s.code(), s.message(), kNoNode);
        LOG(INFO) << "node " << options_.id << ": asked to remove itself: handing leadership to "
                  << "node " << replica.transfer_target();
      }
      return Refuse(tag, StatusCode::kNotLeader,
                    "node " + std::to_string(options_.id) +
                        " is being removed: leadership moves to node " +
                        std::to_string(replica.transfer_target()),
                    replica.transfer_target());
    }
    paxos::MemberChange change;
    change.kind =
        want.remove ? paxos::MemberChange::Kind::kRemove : paxos::MemberChange::Kind::kAddLearner;
    change.id = want.id;
    change.address = want.address;
    if (!want.remove) {
      if (!ParseHostPort(want.address).ok()) {
        return Refuse(tag, StatusCode::kInvalidArgument,
                      "bad member address '" + want.address + "': want host:port", kNoNode);
      }
    }
    Status s = replica.ProposeMemberChange(change);
    if (!s.ok()) {
      return Refuse(tag, s.code(), s.message(),
                    s.code() == StatusCode::kNotLeader ? replica.leader() : kNoNode);
    }
    LOG(INFO) << "node " << options_.id
              << ": membership change queued: " << paxos::MemberChangeKindName(change.kind)
              << " node " << change.id << (change.address.empty() ? "" : " at " + change.address);
    net::ClientResponse resp;
    resp.request_id = tag.request;
    transport_->SendResponse(Handle(tag), std::move(resp));
  }

  net::ClientResponse StatusResponse(uint64_t request_id) {
    paxos::ReplicaStatus s = driver_->replica().status();
    net::NodeStatus ns;
    ns.node_id = s.id;
    ns.role = paxos::RoleName(s.role);
    ns.epoch = s.leader_epoch.raw();
    ns.leader_id = s.leader;
    ns.chosen_below = s.chosen_below;
    ns.applied_below = driver_->applied_below();
    ns.lease_held = s.lease_held;
    ns.promised = s.promised.raw();
    net::ClientResponse resp;
    resp.request_id = request_id;
    resp.status = ns;
    return resp;
  }

  // ------------------------------------------------------------------------------------------
  // storage thread

  void StorageLoop() {
    bool logged_no_space = false;
    uint64_t commits = 0;
    while (std::optional<paxos::PersistBatch> batch = persist_queue_.Pop()) {
      if (++commits == hooks_.TEST_stall_storage_after_commits) {
        LOG(WARNING) << "node " << options_.id << ": TEST stall of the storage thread for "
                     << hooks_.TEST_storage_stall.count() << " ms";
        if (persist_queue_.WaitClosed(hooks_.TEST_storage_stall)) return;
      }
      const auto began = std::chrono::steady_clock::now();
      for (;;) {
        Status s = store_->Write(*batch);
        if (s.ok()) break;
        if (s.code() != StatusCode::kNoSpace) {
          // A failed sync may have lost what we were about to acknowledge: stop, never retry.
          return Fatal(Status(s.code(), "storage failed: " + s.message()));
        }
        if (!logged_no_space) {
          LOG(ERROR) << "node " << options_.id << ": disk full, not acknowledging anything "
                     << "until space returns: " << s.ToString();
          logged_no_space = true;
        }
        if (persist_queue_.WaitClosed(std::chrono::milliseconds(200))) return;
      }
      if (logged_no_space) LOG(INFO) << "node " << options_.id << ": storage writable again";
      logged_no_space = false;
      metrics_.OnPersisted(std::chrono::steady_clock::now() - began);
      asio::post(io_, [this] { driver_->OnPersisted(); });
    }
  }

  // Constant after construction.
  const ServerOptions options_;
  const ServerTestHooks hooks_;

  // Thread-safe; written by the storage thread and background jobs.
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::SnapshotStore> snapshots_;
  // Thread-safe (net/server_metrics.h says which hook runs where). After the store: its LMDB
  // collector ends before the store closes.
  MetricsRegistry metrics_registry_;
  ServerMetrics metrics_{&metrics_registry_, options_.id, options_.tick};
  // Called on the applier side.
  std::function<void(bool, uint64_t)> leadership_callback_;

  // Owned by the io thread (the driver's applier side lives on the apply thread).
  asio::io_context io_{1};
  std::unique_ptr<Driver> driver_;
  asio::executor_work_guard<asio::io_context::executor_type> work_guard_;
  asio::steady_timer tick_timer_;
  std::unique_ptr<net::Transport> transport_;
  uint64_t last_stamp_ms_ = 0;
  bool drain_scheduled_ = false;
  bool has_protocol_state_ = false;  // what Recover() found in the store
  std::unique_ptr<JoinGate> gate_;   // null in memory
  // What Recover() decided: the bootstrap configuration (empty when joining) and whether this
  // node joins an existing cluster.
  std::map<NodeId, std::string> bootstrap_;
  bool join_ = false;
  // Until the gate says so, the replica is neither ticked nor stepped: it promises nothing.
  bool participating_ = false;
  uint64_t ticks_waiting_ = 0;  // ticks spent waiting to join (--join)
  std::chrono::steady_clock::time_point last_tick_time_;
  struct PendingTransfer {
    NodeId target = kNoNode;
    uint64_t epoch_before = 0;  // the leader's epoch when it began
    std::chrono::steady_clock::time_point deadline;
    std::vector<ClientTag> askers;  // clients waiting for the outcome
  };
  std::optional<PendingTransfer> transfer_;
  bool stop_after_transfer_ = false;  // a graceful stop waits for the transfer
  bool stop_at_next_tick_ = false;
  // Watches.
  WatchHub* watch_hub_ = nullptr;  // owned by the Applier; its methods run on the applier side
  struct TagLess {
    bool operator()(const std::pair<uint64_t, uint64_t>& a,
                    const std::pair<uint64_t, uint64_t>& b) const {
      return a < b;
    }
  };
  // Linearizable watches waiting for their read-index confirmation, by (connection, request).
  std::map<std::pair<uint64_t, uint64_t>, net::WatchRequest, TagLess> confirming_watches_;
  // The leader's clock ticks: a session of their own (a random id per start, so that a restart
  // never reuses a sequence), answered to no connection (transport connection ids start at 1).
  static constexpr uint64_t kClockTickConnection = 0;
  const uint64_t clock_client_id_ = RandomNonZero();
  uint64_t clock_sequence_ = 0;
  bool clock_tick_in_flight_ = false;
  uint64_t last_clock_tick_ms_ = 0;

  // Between threads.
  WorkQueue<paxos::PersistBatch> persist_queue_;
  WorkQueue<std::function<void()>> apply_queue_;
  WorkQueue<std::function<void()>> background_queue_;

  Mutex stop_mu_;
  CondVar stop_cv_;
  bool stopping_ GUARDED_BY(stop_mu_) = false;
  Status stop_reason_ GUARDED_BY(stop_mu_);

  std::thread io_thread_;
  std::thread storage_thread_;
  std::thread apply_thread_;
  std::thread background_thread_;
};

namespace {

Result<std::unique_ptr<store::Store>> OpenStore(const ServerOptions& options) {
  if (options.in_memory) {
    // Benchmark baseline only: nothing survives the process.
    LOG(WARNING) << "node " << options.id << ": in-memory store, nothing is durable";
    return std::unique_ptr<store::Store>(std::make_unique<store::MemStore>());
  }
  store::LmdbOptions lo;
  lo.dir = options.data_dir;
  lo.cluster_id = options.cluster_id;
  lo.node_id = options.id;
  lo.map_bytes = options.map_bytes;
  lo.map_bytes_max = options.map_bytes_max;
  lo.journal = options.store_journal;
  lo.journal_checkpoint_bytes = options.store_journal_checkpoint_bytes;
  auto store = store::LmdbStore::Open(lo);
  if (!store.ok()) return store.status();
  return std::unique_ptr<store::Store>(std::move(store).value());
}

Result<std::unique_ptr<store::SnapshotStore>> OpenSnapshots(const ServerOptions& options) {
  if (options.in_memory) {
    return std::unique_ptr<store::SnapshotStore>(std::make_unique<store::MemSnapshotStore>());
  }
  auto snapshots = store::FileSnapshotStore::OpenDir(options.data_dir);
  if (!snapshots.ok()) return snapshots.status();
  return std::unique_ptr<store::SnapshotStore>(std::move(snapshots).value());
}

}  // namespace

// A fresh data directory of a node that joins an existing cluster: the cluster id comes from the
// first other member that answers a handshake (a client Hello saying cluster 0, answered with the
// member's id; net/client/client.h). The node's own peer handshakes then hold every member to it.
Result<uint64_t> LearnClusterIdFromPeers(const ServerOptions& options) {
  ClientOptions co;
  for (const auto& [id, address] : options.members) {
    if (id != options.id) co.members[id] = address;
  }
  if (co.members.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "--join needs at least one other member of the cluster in --cluster");
  }
  auto client = Client::Create(std::move(co));
  if (!client.ok()) return client.status();
  LOG(INFO) << "node " << options.id << ": joining: asking the other members for the cluster id";
  Result<uint64_t> learnt = client.value()->LearnClusterId(options.join_learn_timeout);
  if (!learnt.ok()) {
    return Status(learnt.status().code(),
                  "--join: cannot learn the cluster id: " + learnt.status().message());
  }
  LOG(INFO) << "node " << options.id << ": joining cluster "
            << store::FormatClusterId(learnt.value()) << " (learnt from the first member that "
            << "answered)";
  return learnt;
}

// Which cluster this node is in (ServerOptions::cluster_id). Once the data directory records it,
// the member list no longer matters: members come and go, the id stays.
Result<uint64_t> ResolveClusterId(const ServerOptions& options) {
  if (options.in_memory) {
    return options.cluster_id != 0 ? options.cluster_id
                                   : BootstrapClusterId(options.members, options.cluster_token);
  }
  auto identity = store::LoadClusterIdentity(options.data_dir);
  if (!identity.ok()) return identity.status();
  if (identity.value().has_value()) {
    const uint64_t stored = identity.value()->cluster_id;
    if (options.cluster_id != 0 && options.cluster_id != stored) {
      return Status(StatusCode::kFailedPrecondition,
                    "data directory " + options.data_dir + " belongs to cluster " +
                        store::FormatClusterId(stored) + ", but --cluster_id is " +
                        store::FormatClusterId(options.cluster_id));
    }
    return stored;
  }
  if (options.cluster_id != 0) return options.cluster_id;
  if (options.join) return LearnClusterIdFromPeers(options);
  return BootstrapClusterId(options.members, options.cluster_token);
}

// A directory that records joining a cluster (DIR/CLUSTER) but has lost its LMDB store would
// otherwise open a new, blank store and vote with it.
Status CheckStoreNotLost(const ServerOptions& options) {
  if (options.in_memory) return Status::Ok();
  auto identity = store::LoadClusterIdentity(options.data_dir);
  if (!identity.ok() || !identity.value().has_value()) return identity.status();
  std::error_code ec;
  if (std::filesystem::exists(options.data_dir + "/data.mdb", ec) || ec) return Status::Ok();
  return Status(StatusCode::kFailedPrecondition,
                "data directory " + options.data_dir + " records that this node joined cluster " +
                    store::FormatClusterId(identity.value()->cluster_id) +
                    ", but its store (data.mdb) is missing: this node's data was lost; restore "
                    "its data directory");
}

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options,
                                               std::unique_ptr<StateMachine> machine) {
  return CreateServerWithTestHooks(std::move(options), std::move(machine), ServerTestHooks{});
}

Result<std::unique_ptr<Server>> CreateServerWithTestHooks(ServerOptions options,
                                                          std::unique_ptr<StateMachine> machine,
                                                          ServerTestHooks hooks) {
  Status s = options.Validate();
  if (!s.ok()) return s;
  Result<uint64_t> cluster_id = ResolveClusterId(options);
  if (!cluster_id.ok()) return cluster_id.status();
  options.cluster_id = cluster_id.value();
  s = CheckStoreNotLost(options);
  if (!s.ok()) return s;
  auto store = OpenStore(options);
  if (!store.ok()) return store.status();
  auto snapshots = OpenSnapshots(options);
  if (!snapshots.ok()) return snapshots.status();
  auto impl = std::make_unique<Server::Impl>(std::move(options), hooks, std::move(store).value(),
                                             std::move(snapshots).value());
  s = impl->Recover(std::move(machine));
  if (!s.ok()) return s;
  s = impl->OpenGate();
  if (!s.ok()) return s;
  s = impl->OpenTransport();
  if (!s.ok()) return s;
  return Server::Impl::Wrap(std::move(impl));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;
void Server::Start() { impl_->Start(); }
void Server::Stop() { impl_->Stop(Status::Ok()); }
void Server::Shutdown(std::chrono::milliseconds transfer_wait) { impl_->Shutdown(transfer_wait); }
Status Server::Wait() { return impl_->Wait(); }
uint16_t Server::port() const { return impl_->port(); }
ServerInfo Server::info() const { return impl_->info(); }
MetricsRegistry& Server::metrics() { return impl_->metrics(); }
HealthReport Server::Health() const { return impl_->Health(); }
Result<paxos::Slot> Server::TakeSnapshot() { return impl_->TakeSnapshot(); }
void Server::OnLeadership(std::function<void(bool, uint64_t)> callback) {
  impl_->set_leadership_callback(std::move(callback));
}

}  // namespace ballot
