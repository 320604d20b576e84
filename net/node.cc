#include "net/node.h"

#include <algorithm>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <glog/logging.h>

#include "net/transport.h"
#include "net/wire.h"
#include "net/work_queue.h"
#include "paxos/replica.h"
#include "statemachine/applier.h"
#include "store/lmdb_store.h"
#include "store/mem_store.h"

namespace ballot {

namespace asio = boost::asio;
using paxos::NodeId;
using paxos::Slot;

Status NodeOptions::Validate() const {
  auto invalid = [](const std::string& why) {
    return Status(StatusCode::kInvalidArgument, why);
  };
  if (cluster_id == 0) return invalid("cluster id must be non-zero");
  if (!members.count(id)) return invalid("node id " + std::to_string(id) + " is not a member");
  if (data_dir.empty() && !in_memory) return invalid("data dir must be set");
  if (tick.count() <= 0) return invalid("tick must be positive");
  if (apply_queue_entries_max == 0) return invalid("apply queue bound must be at least 1");
  return Status::Ok();
}

namespace {

uint64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<uint16_t> PortOf(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return Status(StatusCode::kInvalidArgument, "no port in " + address);
  int port = 0;
  for (char c : address.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) {
      return Status(StatusCode::kInvalidArgument, "bad port in " + address);
    }
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return Status(StatusCode::kInvalidArgument, "bad port in " + address);
  return static_cast<uint16_t>(port);
}

std::string HostOf(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

struct SessionKeyHash {
  size_t operator()(const std::pair<uint64_t, uint64_t>& key) const {
    return std::hash<uint64_t>()(key.first * 0x9E3779B97F4A7C15ull ^ key.second);
  }
};

// A client waiting for an answer.
struct Waiter {
  net::ClientHandle client;
  uint64_t request_id = 0;
};

// Work for the storage thread: one group commit.
struct PersistJob {
  paxos::PersistBatch batch;
  std::vector<paxos::Message> send_after;
};

// Work for the apply thread, in the order the io thread produced it.
struct ApplyEntries {
  std::vector<paxos::Entry> entries;
  size_t commands = 0;
};
struct ServeRead {
  uint64_t read_id = 0;
  Slot read_below = 0;
  std::string query;
};
struct LeadershipChange {
  bool leading = false;
  uint64_t epoch = 0;
};
using ApplyJob = std::variant<ApplyEntries, ServeRead, LeadershipChange>;

}  // namespace

class Node::Impl {
 public:
  Impl(NodeOptions options, std::unique_ptr<store::Store> store,
       std::unique_ptr<Applier> applier, std::unique_ptr<paxos::Replica> replica)
      : options_(std::move(options)),
        store_(std::move(store)),
        applier_(std::move(applier)),
        replica_(std::move(replica)),
        work_guard_(asio::make_work_guard(io_)),
        tick_timer_(io_) {
    applied_below_.store(applier_->applied_below());  // a restored snapshot's position
  }

  ~Impl() {
    Stop(Status::Ok());
    Join();
  }

  Status OpenTransport() {
    net::TransportOptions t;
    t.cluster_id = options_.cluster_id;
    t.node_id = options_.id;
    const std::string& self = options_.members.at(options_.id);
    t.listen_host = HostOf(self);
    Result<uint16_t> port = PortOf(self);
    if (!port.ok()) return port.status();
    t.listen_port = options_.listen_port_override >= 0
                        ? static_cast<uint16_t>(options_.listen_port_override)
                        : port.value();
    for (const auto& [id, address] : options_.members) {
      if (id != options_.id) t.peers[id] = address;
    }
    auto transport = net::Transport::Create(
        io_, std::move(t), [this](paxos::Message m) { OnPeerMessage(m); },
        [this](net::ClientHandle c, net::ClientRequest r) { OnClientRequest(c, std::move(r)); });
    if (!transport.ok()) return transport.status();
    transport_ = std::move(transport).value();
    return Status::Ok();
  }

  void Start() {
    io_thread_ = std::thread([this] {
      ArmTick();
      io_.run();
    });
    storage_thread_ = std::thread([this] { StorageLoop(); });
    if (!options_.apply_inline) apply_thread_ = std::thread([this] { ApplyLoop(); });
  }

  void Stop(Status why) {
    {
      std::lock_guard<std::mutex> lock(stop_mu_);
      if (stopping_) return;
      stopping_ = true;
      stop_reason_ = std::move(why);
    }
    persist_queue_.Close();
    apply_queue_.Close();
    io_.stop();
    stop_cv_.notify_all();
  }

  Status Wait() {
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      stop_cv_.wait(lock, [this] { return stopping_; });
    }
    Join();
    std::lock_guard<std::mutex> lock(stop_mu_);
    return stop_reason_;
  }

  uint16_t port() const { return transport_->port(); }
  NodeInfo info() const {
    return NodeInfo{token_.load(), leader_.load()};
  }
  void set_leadership_callback(std::function<void(bool, uint64_t)> cb) {
    leadership_callback_ = std::move(cb);
  }

 private:
  void Join() {
    for (std::thread* t : {&io_thread_, &storage_thread_, &apply_thread_}) {
      if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
    }
  }

  // ------------------------------------------------------------------------------------------
  // io thread

  void ArmTick() {
    tick_timer_.expires_after(options_.tick);
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      CatchUpTicks();
      Drain();
      ArmTick();
    });
  }

  // The core's time must follow the monotonic clock, not the number of timer wake-ups: after a
  // pause (SIGSTOP, a stalled VM) a leader that counted no ticks would still believe in a lease
  // its acceptors have long let go. So every input first feeds the ticks that have elapsed.
  void CatchUpTicks() {
    const auto now = std::chrono::steady_clock::now();
    if (last_tick_time_ == std::chrono::steady_clock::time_point()) last_tick_time_ = now;
    uint64_t due = static_cast<uint64_t>((now - last_tick_time_) / options_.tick);
    last_tick_time_ += due * options_.tick;
    // Beyond a few election timeouts every lease and timer has expired anyway.
    const uint64_t cap = uint64_t{4} * options_.paxos.election_ticks + 4;
    for (uint64_t i = 0; i < std::min(due, cap); ++i) replica_->Tick();
  }

  void OnPeerMessage(const paxos::Message& m) {
    CatchUpTicks();
    replica_->Step(m);
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
      Drain();
    });
  }

  void OnClientRequest(net::ClientHandle client, net::ClientRequest request) {
    CatchUpTicks();  // a lease read must not be served on a clock that stood still
    switch (request.kind) {
      case net::ClientRequest::Kind::kPropose:
        OnPropose(client, request.request_id, std::move(request.command));
        break;
      case net::ClientRequest::Kind::kRead:
        OnRead(client, request.request_id, std::move(request.query));
        break;
      case net::ClientRequest::Kind::kStatus:
        transport_->SendResponse(client, StatusResponse(request.request_id));
        break;
    }
    ScheduleDrain();
  }

  void OnPropose(net::ClientHandle client, uint64_t request_id, paxos::Command command) {
    if (apply_queue_entries_.load() >= options_.apply_queue_entries_max) {
      return Refuse(client, request_id, StatusCode::kOverloaded, "apply queue full");
    }
    // Time comes from the leader's clock, stamped once, and never goes backwards in its log.
    last_stamp_ms_ = std::max(last_stamp_ms_, WallClockMs());
    command.stamp_ms = last_stamp_ms_;
    if (command.client_id == 0 || command.sequence == 0) {
      // Replies are routed by session; without one a retry could also apply twice.
      return Refuse(client, request_id, StatusCode::kInvalidArgument,
                    "a proposal needs a client id and a sequence number");
    }
    auto key = std::make_pair(command.client_id, command.sequence);
    paxos::ProposeResult r = replica_->Propose(std::move(command));
    if (r.kind != paxos::ProposeResult::Kind::kOk) return RefuseProposal(client, request_id, r);
    waiting_commands_.emplace(key, Waiter{client, request_id});
  }

  void OnRead(net::ClientHandle client, uint64_t request_id, std::string query) {
    uint64_t read_id = ++last_read_id_;
    paxos::ProposeResult r = replica_->Read(read_id);
    if (r.kind != paxos::ProposeResult::Kind::kOk) return RefuseProposal(client, request_id, r);
    waiting_reads_[read_id] = {Waiter{client, request_id}, std::move(query)};
  }

  void RefuseProposal(net::ClientHandle client, uint64_t request_id, paxos::ProposeResult r) {
    if (r.kind == paxos::ProposeResult::Kind::kOverloaded) {
      return Refuse(client, request_id, StatusCode::kOverloaded, "proposal queue full");
    }
    Refuse(client, request_id, StatusCode::kNotLeader, "not the leader", r.leader_hint);
  }

  void Refuse(net::ClientHandle client, uint64_t request_id, StatusCode code,
              std::string message, NodeId hint = paxos::kNoNode) {
    net::ClientResponse resp;
    resp.request_id = request_id;
    resp.code = code;
    resp.message = std::move(message);
    resp.leader_hint = hint != paxos::kNoNode ? hint : replica_->leader();
    transport_->SendResponse(client, std::move(resp));
  }

  net::ClientResponse StatusResponse(uint64_t request_id) {
    paxos::ReplicaStatus s = replica_->status();
    net::NodeStatus ns;
    ns.node_id = s.id;
    ns.role = paxos::RoleName(s.role);
    ns.epoch = s.leader_epoch.raw();
    ns.leader_id = s.leader;
    ns.chosen_below = s.chosen_below;
    ns.applied_below = applied_below_.load();
    ns.lease_held = s.lease_held;
    ns.promised = s.promised.raw();
    net::ClientResponse resp;
    resp.request_id = request_id;
    resp.status = ns;
    return resp;
  }

  // Carries out everything the core has for us. Bounded: each pass either hands out a persist
  // batch (then waits for the disk) or drains output that does not feed back.
  void Drain() {
    for (int pass = 0; pass < kDrainPassesMax && replica_->HasReady(); ++pass) {
      HandleReady(replica_->TakeReady());
    }
    leader_.store(replica_->leader());
  }

  void HandleReady(paxos::Ready ready) {
    for (paxos::Message& m : ready.send_now) transport_->Send(m.to, std::move(m));
    if (ready.persist) {
      persist_queue_.Push(PersistJob{std::move(*ready.persist), std::move(ready.send_after_persist)});
    }
    for (const paxos::LeadershipEvent& e : ready.events) OnLeadershipEvent(e);
    if (!ready.apply.empty()) {
      size_t commands = 0;
      for (const paxos::Entry& e : ready.apply) commands += e.value.commands.size() + 1;
      apply_queue_entries_ += commands;
      SubmitApply(ApplyEntries{std::move(ready.apply), commands});
    }
    for (const paxos::ReadState& r : ready.reads) {
      auto it = waiting_reads_.find(r.read_id);
      if (it == waiting_reads_.end()) continue;
      SubmitApply(ServeRead{r.read_id, r.read_below, it->second.query});
    }
    for (const paxos::ReadFailure& f : ready.failed_reads) FailRead(f.read_id);
    for (const paxos::Command& c : ready.dropped) {
      FailCommand(c.client_id, c.sequence);
    }
  }

  void OnLeadershipEvent(const paxos::LeadershipEvent& e) {
    bool leading = e.kind == paxos::LeadershipEvent::Kind::kBecameLeader;
    token_.store(leading ? e.epoch.raw() : 0);
    LOG(INFO) << "node " << options_.id << (leading ? " leads" : " stopped leading")
              << " with epoch " << paxos::ToString(e.epoch) << " (token " << e.epoch.raw()
              << ")";
    if (!leading) FailAllWaiting();
    SubmitApply(LeadershipChange{leading, e.epoch.raw()});
  }

  // The apply thread's work, or with apply_inline the io thread's own, right now.
  void SubmitApply(ApplyJob job) {
    if (options_.apply_inline) {
      RunApplyJob(std::move(job));
    } else {
      apply_queue_.Push(std::move(job));
    }
  }

  void FailRead(uint64_t read_id) {
    auto it = waiting_reads_.find(read_id);
    if (it == waiting_reads_.end()) return;
    Refuse(it->second.waiter.client, it->second.waiter.request_id, StatusCode::kNotLeader,
           "leadership lost before the read was confirmed");
    waiting_reads_.erase(it);
  }

  void FailCommand(uint64_t client_id, uint64_t sequence) {
    auto [begin, end] = waiting_commands_.equal_range({client_id, sequence});
    for (auto it = begin; it != end; ++it) RefuseLost(it->second);
    waiting_commands_.erase(begin, end);
  }

  void RefuseLost(const Waiter& w) {
    Refuse(w.client, w.request_id, StatusCode::kNotLeader,
           "leadership lost; retry with the same sequence");
  }

  // Commands already in slots may still be chosen by the next leader; their clients retry
  // there under the same session sequence and get the one result.
  void FailAllWaiting() {
    for (const auto& [key, waiter] : waiting_commands_) RefuseLost(waiter);
    waiting_commands_.clear();
  }

  // Called on the io thread with what the apply thread produced.
  void OnReplies(std::vector<Reply> replies) {
    for (Reply& r : replies) {
      auto [begin, end] = waiting_commands_.equal_range({r.client_id, r.sequence});
      for (auto it = begin; it != end; ++it) Respond(it->second, r, std::next(it) == end);
      waiting_commands_.erase(begin, end);
    }
  }

  // The last waiter for a reply takes its strings.
  void Respond(const Waiter& w, Reply& r, bool last) {
    net::ClientResponse resp;
    resp.request_id = w.request_id;
    resp.outcome_code = r.outcome.code;
    resp.data = last ? std::move(r.outcome.data) : r.outcome.data;
    resp.message = last ? std::move(r.outcome.message) : r.outcome.message;
    resp.slot = r.slot;
    resp.epoch = r.epoch;
    transport_->SendResponse(w.client, std::move(resp));
  }

  void OnReadServed(uint64_t read_id, Outcome outcome) {
    auto it = waiting_reads_.find(read_id);
    if (it == waiting_reads_.end()) return;
    net::ClientResponse resp;
    resp.request_id = it->second.waiter.request_id;
    resp.outcome_code = outcome.code;
    resp.data = std::move(outcome.data);
    resp.message = std::move(outcome.message);
    transport_->SendResponse(it->second.waiter.client, std::move(resp));
    waiting_reads_.erase(it);
  }

  void OnPersisted(std::vector<paxos::Message> send_after) {
    for (paxos::Message& m : send_after) transport_->Send(m.to, std::move(m));
    replica_->Advance();
    Drain();
  }

  // ------------------------------------------------------------------------------------------
  // storage thread

  void StorageLoop() {
    bool logged_no_space = false;
    uint64_t commits = 0;
    while (std::optional<PersistJob> job = persist_queue_.Pop()) {
      if (++commits == options_.TEST_stall_storage_after_commits) {
        LOG(WARNING) << "node " << options_.id << ": TEST stall of the storage thread for "
                     << options_.TEST_storage_stall.count() << " ms";
        if (persist_queue_.WaitClosed(options_.TEST_storage_stall)) return;
      }
      for (;;) {
        Status s = store_->Write(job->batch);
        if (s.ok()) break;
        if (s.code() != StatusCode::kNoSpace) {
          // A failed sync may have lost what we were about to acknowledge: stop, never retry.
          LOG(ERROR) << "node " << options_.id << ": storage failed, stopping: " << s.ToString();
          Stop(s);
          return;
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
      asio::post(io_, [this, after = std::move(job->send_after)]() mutable {
        OnPersisted(std::move(after));
      });
    }
  }

  // ------------------------------------------------------------------------------------------
  // apply thread

  void ApplyLoop() {
    while (std::optional<ApplyJob> job = apply_queue_.Pop()) RunApplyJob(std::move(*job));
  }

  // Runs on the apply thread, or inline on the io thread; results reach the io thread's
  // handlers either way (posted, or called directly when already there).
  void RunApplyJob(ApplyJob job) {
    if (auto* a = std::get_if<ApplyEntries>(&job)) {
      std::vector<Reply> replies;
      applier_->Apply(a->entries, &replies);
      apply_queue_entries_ -= a->commands;
      applied_below_.store(applier_->applied_below());
      ToIoThread([this, r = std::move(replies)]() mutable { OnReplies(std::move(r)); });
    } else if (auto* r = std::get_if<ServeRead>(&job)) {
      reads_waiting_apply_.push_back(std::move(*r));
    } else if (auto* l = std::get_if<LeadershipChange>(&job)) {
      NotifyLeadership(*l);
    }
    ServeReads();
  }

  template <typename Handler>
  void ToIoThread(Handler&& handler) {
    if (options_.apply_inline) {
      handler();
    } else {
      asio::post(io_, std::forward<Handler>(handler));
    }
  }

  void ServeReads() {
    // Reads arrive in read_below order (the commit index only grows), so serve from the front.
    std::deque<ServeRead>* reads = &reads_waiting_apply_;
    while (!reads->empty() && reads->front().read_below <= applier_->applied_below()) {
      ServeRead r = std::move(reads->front());
      reads->pop_front();
      Outcome o = applier_->Query(r.query);
      ToIoThread([this, id = r.read_id, o = std::move(o)]() mutable {
        OnReadServed(id, std::move(o));
      });
    }
  }

  void NotifyLeadership(const LeadershipChange& l) {
    if (l.leading) {
      applier_->machine().OnLeaderStart(l.epoch);
    } else {
      applier_->machine().OnLeaderStop(l.epoch);
    }
    if (leadership_callback_) leadership_callback_(l.leading, l.epoch);
  }

  static constexpr int kDrainPassesMax = 64;

  // Constant after construction.
  const NodeOptions options_;

  // Owned by the storage thread (after Start()).
  std::unique_ptr<store::Store> store_;
  // Owned by the apply thread.
  std::unique_ptr<Applier> applier_;
  std::function<void(bool, uint64_t)> leadership_callback_;
  std::deque<ServeRead> reads_waiting_apply_;  // until applied_below reaches their read_below

  // Owned by the io thread.
  asio::io_context io_{1};
  std::unique_ptr<paxos::Replica> replica_;
  asio::executor_work_guard<asio::io_context::executor_type> work_guard_;
  asio::steady_timer tick_timer_;
  std::unique_ptr<net::Transport> transport_;
  // (client id, sequence) -> who waits for its result; a retry on the same node adds a waiter.
  std::unordered_multimap<std::pair<uint64_t, uint64_t>, Waiter, SessionKeyHash> waiting_commands_;
  struct WaitingRead {
    Waiter waiter;
    std::string query;
  };
  std::map<uint64_t, WaitingRead> waiting_reads_;
  uint64_t last_read_id_ = 0;
  uint64_t last_stamp_ms_ = 0;
  bool drain_scheduled_ = false;
  std::chrono::steady_clock::time_point last_tick_time_;

  // Between threads.
  WorkQueue<PersistJob> persist_queue_;
  WorkQueue<ApplyJob> apply_queue_;
  std::atomic<size_t> apply_queue_entries_{0};
  std::atomic<Slot> applied_below_{1};
  std::atomic<uint64_t> token_{0};
  std::atomic<NodeId> leader_{paxos::kNoNode};

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_
  Status stop_reason_;     // guarded by stop_mu_

  std::thread io_thread_;
  std::thread storage_thread_;
  std::thread apply_thread_;
};

namespace {

Result<std::unique_ptr<store::Store>> OpenStore(const NodeOptions& options) {
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
  auto store = store::LmdbStore::Open(lo);
  if (!store.ok()) return store.status();
  return std::unique_ptr<store::Store>(std::move(store).value());
}

}  // namespace

Result<std::unique_ptr<Node>> Node::Create(NodeOptions options,
                                           std::unique_ptr<StateMachine> machine) {
  Status s = options.Validate();
  if (!s.ok()) return s;
  auto store = OpenStore(options);
  if (!store.ok()) return store.status();

  auto applier = std::make_unique<Applier>(std::move(machine));
  auto snapshot = store.value()->LoadSnapshot();
  if (!snapshot.ok()) return snapshot.status();
  if (snapshot.value()) {
    Status r = applier->Restore(snapshot.value()->data);
    if (!r.ok()) return r;
  }
  auto durable = store.value()->Load();
  if (!durable.ok()) return durable.status();
  if (durable.value().applied_below != applier->applied_below()) {
    return Status(StatusCode::kCorruption, "snapshot and log disagree on the applied position");
  }

  paxos::Options po = options.paxos;
  po.id = options.id;
  po.members.clear();
  for (const auto& [id, address] : options.members) po.members.push_back(id);
  // Different per node and per start, so two nodes never time out in lockstep.
  po.seed = options.paxos.seed ^ WallClockMs() ^ (uint64_t{options.id} << 32);
  auto replica = paxos::Replica::Create(po, std::move(durable).value());
  if (!replica.ok()) return replica.status();

  auto impl = std::make_unique<Impl>(std::move(options), std::move(store).value(),
                                     std::move(applier), std::move(replica).value());
  Status t = impl->OpenTransport();
  if (!t.ok()) return t;
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;
void Node::Start() { impl_->Start(); }
void Node::Stop() { impl_->Stop(Status::Ok()); }
Status Node::Wait() { return impl_->Wait(); }
uint16_t Node::port() const { return impl_->port(); }
NodeInfo Node::info() const { return impl_->info(); }
void Node::OnLeadership(std::function<void(bool, uint64_t)> callback) {
  impl_->set_leadership_callback(std::move(callback));
}

}  // namespace ballot
