// ballot-bench: closed-loop throughput and latency of a Ballot cluster.
//
//   ballot-bench --cluster=... --workload=seq --clients=N --duration_s=T --json
//
// N logical clients share --connections Client objects (each a session with one connection per
// node); each logical client keeps --in_flight requests outstanding. A progress line every
// second; at the end throughput and latency percentiles from a log-bucketed histogram. With
// --start_nodes the tool starts its own cluster (ballotd next to this binary), and --failover=K
// SIGKILLs the leader K times under load, reporting the time from each kill to the first
// successful operation sent after it. --transfer=K moves leadership K times and --rolling_restart
// SIGTERMs and restarts every node in turn: operations in flight during those windows (sent
// before a window ends and answered after it begins) are reported apart from the steady ones.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "net/client/client.h"
#include "net/cluster_config.h"
#include "statemachine/samples/kv.h"
#include "statemachine/samples/lock.h"
#include "statemachine/samples/sequence.h"
#include "tools/bench/histogram.h"
#include "tools/bench/local_cluster.h"
#include "tools/flag_check.h"

DEFINE_string(cluster, "", "members as id@host:port,...; empty with --start_nodes");
DEFINE_uint64(cluster_id, 0,
              "cluster id (0: learnt from the first member, in id order, that answers; servers "
              "of another cluster are refused)");
DEFINE_string(workload, "seq",
              "seq (sequence next) | kv (puts of --value_bytes) | lock (acquire, keepalive, "
              "release of a lock per client request slot)");
DEFINE_uint32(clients, 16, "concurrent logical clients (closed loop)");
DEFINE_uint32(connections, 0,
              "Client objects (sessions/connections) shared by the clients; "
              "0: min(clients, 16)");
DEFINE_uint32(in_flight, 1, "requests each client keeps outstanding");
DEFINE_uint32(value_bytes, 16, "payload bytes for kv puts");
DEFINE_double(duration_s, 10, "measured seconds per point");
DEFINE_double(warmup_s, 1, "seconds run before measuring");
DEFINE_string(sweep, "", "comma-separated client counts, e.g. 1,16,64,256 (overrides --clients)");
DEFINE_bool(json, false, "print one JSON object per point; the last line is the last point");
DEFINE_string(csv, "", "append one CSV row per point to this file");
DEFINE_uint32(timeout_ms, 5000, "deadline of each request");
DEFINE_uint32(start_nodes, 0, "start a local cluster of this many ballotd (0: use --cluster)");
DEFINE_string(ballotd, "", "ballotd binary for --start_nodes (default: next to this binary)");
DEFINE_string(node_flags, "", "extra flags for started nodes, space-separated (e.g. --in_memory)");
DEFINE_uint32(failover, 0, "SIGKILL the leader this many times under load (needs --start_nodes)");
DEFINE_uint32(transfer, 0,
              "move leadership (Client::TransferLeadership) this many times under load, evenly "
              "spaced; latency of operations in flight during each transfer is reported apart");
DEFINE_bool(rolling_restart, false,
            "under load, SIGTERM and restart every node in turn, evenly spaced (needs "
            "--start_nodes); latency of operations in flight from each SIGTERM until the node "
            "serves again is reported apart");
DEFINE_string(interval_csv, "",
              "append one CSV row per measured second to this file: unix_s,second,ops,errors,"
              "p50_us,p99_us,max_us of the operations completed in that second");
DEFINE_uint32(kv_keys, 1024, "kv workload: keys each client cycles through");

namespace ballot::bench {
namespace {

using Clock = std::chrono::steady_clock;
// Long enough that a lock never expires between a client's acquire and its release.
constexpr uint64_t kLockTtlMs = 60000;
using paxos::Slot;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

struct PointResult {
  uint32_t clients = 0;
  double seconds = 0;
  uint64_t ops = 0;
  uint64_t errors = 0;
  LatencyHistogram latency;
  std::vector<double> failover_ms;
  // --transfer / --rolling_restart: operations in flight during a disruption, and the others.
  LatencyHistogram disrupted;
  LatencyHistogram steady;
  // The same by whole seconds: operations completed in a second that saw a disruption, and in
  // the other seconds (what a per-second p99 graph shows).
  LatencyHistogram disrupted_seconds;
  LatencyHistogram steady_seconds;
  std::vector<double> disruption_ms;  // how long each disruption window lasted
  uint64_t epoch_start = 0;  // the leader's epoch before and after the point: equal means no
  uint64_t epoch_end = 0;    // leader change happened while it ran
  uint64_t slots = 0;        // log slots the leader chose during the point (0: unknown)
  double server_cpu_s = -1;  // CPU the started nodes used during the point (-1: not ours)
  double bench_cpu_s = 0;    // CPU this tool used (clients, encoding, histograms)
  double throughput() const { return seconds > 0 ? ops / seconds : 0; }
  double commands_per_slot() const { return slots > 0 ? static_cast<double>(ops) / slots : 0; }
  double server_cpu_us_per_op() const {
    return ops && server_cpu_s >= 0 ? server_cpu_s * 1e6 / ops : 0;
  }
  double bench_cpu_us_per_op() const { return ops ? bench_cpu_s * 1e6 / ops : 0; }
};

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Everything one Client object's callbacks touch; callbacks of one Client run on its io thread.
struct Lane {
  std::unique_ptr<Client> client;
  std::mutex mu;
  LatencyHistogram latency;           // guarded by mu
  uint64_t ops = 0;                   // guarded by mu
  uint64_t errors = 0;                // guarded by mu
  LatencyHistogram disrupted;         // guarded by mu
  LatencyHistogram steady;            // guarded by mu
  LatencyHistogram interval_latency;  // this second only; guarded by mu
  uint64_t interval_errors = 0;       // guarded by mu
};

class Runner {
 public:
  Runner(std::vector<std::unique_ptr<Lane>>* lanes, uint32_t clients, LocalCluster* cluster)
      : lanes_(lanes), clients_(clients), cluster_(cluster) {}

  PointResult Run() {
    stop_ = false;
    measuring_ = false;
    for (uint32_t c = 0; c < clients_; ++c) {
      Lane* lane = (*lanes_)[c % lanes_->size()].get();
      for (uint32_t k = 0; k < FLAGS_in_flight; ++k) Issue(lane, c, k);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_warmup_s));
    Reset();
    const Slot chosen_start = LeaderChosenBelow();
    const double server_cpu_start = cluster_ ? cluster_->CpuSeconds() : 0;
    const double bench_cpu_start = ProcessCpuSeconds();
    measuring_ = true;
    int64_t start = NowNs();
    last_progress_ns_ = start;
    disrupted_seconds_ = LatencyHistogram();
    steady_seconds_ = LatencyHistogram();
    PointResult r;
    r.clients = clients_;
    RunMeasured(start, &r);
    r.seconds = (NowNs() - start) / 1e9;
    r.disrupted_seconds = disrupted_seconds_;
    r.steady_seconds = steady_seconds_;
    stop_ = true;
    measuring_ = false;
    r.bench_cpu_s = ProcessCpuSeconds() - bench_cpu_start;
    // Kills restart nodes, whose CPU counters start again: only a point without kills counts.
    if (cluster_ && r.failover_ms.empty())
      r.server_cpu_s = cluster_->CpuSeconds() - server_cpu_start;
    const Slot chosen_end = LeaderChosenBelow();
    if (chosen_start > 0 && chosen_end > chosen_start) r.slots = chosen_end - chosen_start;
    Collect(&r);
    WaitDrained();
    return r;
  }

 private:
  // The leader's chosen_below, 0 if unknown.
  Slot LeaderChosenBelow() {
    Client& client = *(*lanes_)[0]->client;
    auto leader = client.FindLeader(std::chrono::seconds(5));
    if (!leader.ok()) return 0;
    auto status = client.Status(leader.value().first, std::chrono::seconds(5));
    return status.ok() ? status.value().chosen_below : 0;
  }

  std::string Payload(uint32_t client, uint64_t n) {
    if (FLAGS_workload == "lock") {
      // Each of a client's request slots (n % in_flight) cycles its own lock, so its three
      // commands are issued one after another and every one of them succeeds.
      const std::string name =
          "lock-" + std::to_string(client) + "." + std::to_string(n % FLAGS_in_flight);
      const std::string owner = "bench-" + std::to_string(client);
      switch ((n / FLAGS_in_flight) % 3) {
        case 0:
          return samples::LockService::EncodeAcquire(name, owner, kLockTtlMs);
        case 1:
          return samples::LockService::EncodeKeepAlive(name, owner);
        default:
          return samples::LockService::EncodeRelease(name, owner);
      }
    }
    if (FLAGS_workload == "kv") {
      std::string key = "k" + std::to_string(client) + "." + std::to_string(n % FLAGS_kv_keys);
      return samples::KvStore::EncodePut(key, std::string(FLAGS_value_bytes, 'v'));
    }
    return samples::SequenceGenerator::EncodeNext(1);
  }

  void Issue(Lane* lane, uint32_t client, uint64_t n) {
    ++outstanding_;
    int64_t sent = NowNs();
    lane->client->ProposeAsync(Payload(client, n), std::chrono::milliseconds(FLAGS_timeout_ms),
                               [this, lane, client, n, sent](Result<Client::ProposeReply> reply) {
                                 Done(lane, sent,
                                      reply.ok() && reply.value().outcome.code == StatusCode::kOk);
                                 if (!stop_) Issue(lane, client, n + FLAGS_in_flight);
                                 if (--outstanding_ == 0) drained_cv_.notify_all();
                               });
  }

  void Done(Lane* lane, int64_t sent, bool ok) {
    int64_t now = NowNs();
    if (ok) NoteSuccess(sent, now);
    if (!measuring_) return;
    std::lock_guard<std::mutex> lock(lane->mu);
    const bool disrupted = InDisruption(sent, now);
    if (ok) {
      ++lane->ops;
      lane->latency.Record(static_cast<uint64_t>((now - sent) / 1000));
      (disrupted ? lane->disrupted : lane->steady)
          .Record(static_cast<uint64_t>((now - sent) / 1000));
      lane->interval_latency.Record(static_cast<uint64_t>((now - sent) / 1000));
    } else {
      ++lane->errors;
      ++lane->interval_errors;
    }
  }

  // Failover: the first success of an operation sent after the kill ends the outage.
  void NoteSuccess(int64_t sent, int64_t now) {
    int64_t killed = kill_ns_.load();
    if (killed == 0 || sent < killed) return;
    int64_t expected = 0;
    recovered_ns_.compare_exchange_strong(expected, now);
  }

  void RunMeasured(int64_t start, PointResult* r) {
    const double total = FLAGS_duration_s;
    const uint32_t kills = cluster_ != nullptr ? FLAGS_failover : 0;
    const uint32_t stops = cluster_ != nullptr && FLAGS_rolling_restart ? cluster_->nodes() : 0;
    const uint32_t transfers = FLAGS_transfer;
    int next_kill = 1, next_transfer = 1, next_stop = 1;
    uint64_t last_ops = 0;
    auto due = [&](int next, uint32_t count) {
      return count > 0 && next <= static_cast<int>(count) &&
             (NowNs() - start) / 1e9 >= total * next / (count + 1);
    };
    for (int second = 1; (NowNs() - start) / 1e9 < total; ++second) {
      std::this_thread::sleep_until(Clock::time_point(std::chrono::nanoseconds(start)) +
                                    std::chrono::seconds(second));
      // The second's line first: an event then falls early in the next second, together with
      // the operations it delays (the per-second split counts those with it).
      Progress(second, &last_ops);
      if (due(next_kill, kills)) {
        double ms = KillLeaderAndTime();
        if (ms >= 0) r->failover_ms.push_back(ms);
        ++next_kill;
      }
      if (due(next_transfer, transfers)) {
        if (double ms = TransferAndTime(); ms >= 0) r->disruption_ms.push_back(ms);
        ++next_transfer;
      }
      if (due(next_stop, stops)) {
        if (double ms = RestartAndTime(static_cast<paxos::NodeId>(next_stop)); ms >= 0) {
          r->disruption_ms.push_back(ms);
        }
        ++next_stop;
      }
    }
  }

  // Disruption windows [start, end] in NowNs() time; an open window ends at INT64_MAX.
  size_t OpenDisruption() {
    std::lock_guard<std::mutex> lock(disruptions_mu_);
    disruptions_.push_back({NowNs(), INT64_MAX});
    return disruptions_.size() - 1;
  }
  double CloseDisruption(size_t i) {
    std::lock_guard<std::mutex> lock(disruptions_mu_);
    disruptions_[i].second = NowNs();
    return (disruptions_[i].second - disruptions_[i].first) / 1e6;
  }
  // Whether an operation in flight over [sent, done] overlapped a disruption.
  bool InDisruption(int64_t sent, int64_t done) {
    std::lock_guard<std::mutex> lock(disruptions_mu_);
    for (const auto& [from, to] : disruptions_) {
      if (sent <= to && done >= from) return true;
    }
    return false;
  }

  double TransferAndTime() {
    Client& client = *(*lanes_)[0]->client;
    auto before = client.FindLeader(std::chrono::seconds(5));
    const size_t window = OpenDisruption();
    auto moved = client.TransferLeadership(paxos::kNoNode, std::chrono::seconds(10));
    const double ms = CloseDisruption(window);
    if (!moved.ok()) {
      std::fprintf(stderr, "  leader transfer failed after %.1f ms: %s\n", ms,
                   moved.status().ToString().c_str());
      return -1;
    }
    std::fprintf(stderr, "  leader transfer node %u -> node %u (epoch %" PRIu64 ") in %.1f ms\n",
                 before.ok() ? before.value().first : 0, moved.value().first, moved.value().second,
                 ms);
    return ms;
  }

  // SIGTERM node `id`, restart it and wait until it answers its status again.
  double RestartAndTime(paxos::NodeId id) {
    Client& client = *(*lanes_)[0]->client;
    auto leader = client.FindLeader(std::chrono::seconds(5));
    const bool led = leader.ok() && leader.value().first == id;
    const size_t window = OpenDisruption();
    const int64_t t0 = NowNs();
    Status stopped = cluster_->TerminateNode(id, 10000);
    const double stop_ms = (NowNs() - t0) / 1e6;
    Status started = cluster_->StartNode(id);
    // Back in the cluster: answering, and caught up with what was chosen when it came back (a
    // rolling restart moves to the next node only then, or it could take away a quorum).
    const int64_t deadline = NowNs() + int64_t{30} * 1000000000;
    auto applied = [&]() -> Slot {
      auto s = client.Status(id, std::chrono::milliseconds(200));
      return s.ok() ? s.value().applied_below : 0;
    };
    while (started.ok() && NowNs() < deadline && applied() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double serving_ms = (NowNs() - t0) / 1e6;
    const Slot target = LeaderChosenBelow();
    while (started.ok() && NowNs() < deadline && applied() < target) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double ms = CloseDisruption(window);
    std::fprintf(stderr,
                 "  node %u%s: SIGTERM -> %s in %.1f ms; serving again after %.1f ms, "
                 "caught up after %.1f ms\n",
                 id, led ? " (leader)" : "", stopped.ok() ? "exited 0" : stopped.ToString().c_str(),
                 stop_ms, serving_ms, ms);
    return ms;
  }

  double KillLeaderAndTime() {
    auto leader = (*lanes_)[0]->client->FindLeader(std::chrono::seconds(5));
    if (!leader.ok()) return -1;
    recovered_ns_ = 0;
    kill_ns_ = NowNs();
    cluster_->KillNode(leader.value().first);
    int64_t deadline = NowNs() + int64_t{30} * 1000000000;
    while (recovered_ns_.load() == 0 && NowNs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    int64_t recovered = recovered_ns_.load();
    double ms = recovered == 0 ? -1 : (recovered - kill_ns_.load()) / 1e6;
    kill_ns_ = 0;
    std::fprintf(stderr, "  killed leader %u: first success %.1f ms after the kill\n",
                 leader.value().first, ms);
    Status s = cluster_->StartNode(leader.value().first);  // back to full strength
    if (!s.ok()) std::fprintf(stderr, "  restart failed: %s\n", s.ToString().c_str());
    return ms;
  }

  // One line per second: ops and errors of that second, p99 since the start and of that second.
  void Progress(int second, uint64_t* last_ops) {
    PointResult snapshot;
    Collect(&snapshot);
    LatencyHistogram interval;
    uint64_t interval_errors = 0;
    for (auto& lane : *lanes_) {
      std::lock_guard<std::mutex> lock(lane->mu);
      interval.Merge(lane->interval_latency);
      interval_errors += lane->interval_errors;
      lane->interval_latency = LatencyHistogram();
      lane->interval_errors = 0;
    }
    const int64_t now = NowNs();
    (InDisruption(last_progress_ns_, now) ? disrupted_seconds_ : steady_seconds_).Merge(interval);
    last_progress_ns_ = now;
    std::fprintf(stderr,
                 "  [%2ds] clients=%u ops/s=%" PRIu64 " p99_us=%" PRIu64 " errors=%" PRIu64
                 " second_p99_us=%" PRIu64 "\n",
                 second, clients_, snapshot.ops - *last_ops, snapshot.latency.Percentile(0.99),
                 snapshot.errors, interval.Percentile(0.99));
    *last_ops = snapshot.ops;
    if (!FLAGS_interval_csv.empty()) {
      const double unix_s =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      std::ofstream csv(FLAGS_interval_csv, std::ios::app);
      char row[160];
      std::snprintf(row, sizeof(row),
                    "%.3f,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 "\n", unix_s,
                    second, interval.count(), interval_errors, interval.Percentile(0.5),
                    interval.Percentile(0.99), interval.max());
      csv << row;
    }
  }

  void Reset() {
    for (auto& lane : *lanes_) {
      std::lock_guard<std::mutex> lock(lane->mu);
      lane->latency = LatencyHistogram();
      lane->disrupted = LatencyHistogram();
      lane->steady = LatencyHistogram();
      lane->ops = 0;
      lane->errors = 0;
      lane->interval_latency = LatencyHistogram();
      lane->interval_errors = 0;
    }
  }

  void Collect(PointResult* r) {
    for (auto& lane : *lanes_) {
      std::lock_guard<std::mutex> lock(lane->mu);
      r->latency.Merge(lane->latency);
      r->disrupted.Merge(lane->disrupted);
      r->steady.Merge(lane->steady);
      r->ops += lane->ops;
      r->errors += lane->errors;
    }
  }

  void WaitDrained() {
    std::unique_lock<std::mutex> lock(drained_mu_);
    drained_cv_.wait_for(lock, std::chrono::milliseconds(FLAGS_timeout_ms + 2000),
                         [this] { return outstanding_.load() == 0; });
  }

  std::vector<std::unique_ptr<Lane>>* lanes_;
  const uint32_t clients_;
  LocalCluster* cluster_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> measuring_{false};
  std::atomic<int64_t> outstanding_{0};
  std::atomic<int64_t> kill_ns_{0};
  std::atomic<int64_t> recovered_ns_{0};
  std::mutex disruptions_mu_;
  std::vector<std::pair<int64_t, int64_t>> disruptions_;  // guarded by disruptions_mu_
  // The measuring thread's: per-second histograms by whether the second saw a disruption.
  int64_t last_progress_ns_ = 0;
  LatencyHistogram disrupted_seconds_;
  LatencyHistogram steady_seconds_;
  std::mutex drained_mu_;
  std::condition_variable drained_cv_;
};

std::string FailoverJson(const std::vector<double>& ms) {
  std::string s = "[";
  for (size_t i = 0; i < ms.size(); ++i) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%s%.1f", i ? "," : "", ms[i]);
    s += buf;
  }
  return s + "]";
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void Report(const PointResult& r) {
  const LatencyHistogram& h = r.latency;
  std::printf("clients=%u throughput_ops=%.0f p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64
              " p999_us=%" PRIu64 " max_us=%" PRIu64 " errors=%" PRIu64 "\n",
              r.clients, r.throughput(), h.Percentile(0.5), h.Percentile(0.9), h.Percentile(0.99),
              h.Percentile(0.999), h.max(), r.errors);
  std::printf("leader epoch before=%" PRIu64 " after=%" PRIu64 " (%s)\n", r.epoch_start,
              r.epoch_end, r.epoch_start == r.epoch_end ? "no leader change" : "leader changed");
  std::printf("commands_per_slot=%.1f server_cpu_us_per_op=%.1f bench_cpu_us_per_op=%.1f\n",
              r.commands_per_slot(), r.server_cpu_us_per_op(), r.bench_cpu_us_per_op());
  if (!r.failover_ms.empty()) {
    double max = *std::max_element(r.failover_ms.begin(), r.failover_ms.end());
    std::printf("failover_ms=%s median_ms=%.1f max_ms=%.1f\n", FailoverJson(r.failover_ms).c_str(),
                Median(r.failover_ms), max);
  }
  if (!r.disruption_ms.empty()) {
    const LatencyHistogram& d = r.disrupted;
    const LatencyHistogram& st = r.steady;
    std::printf(
        "disruptions=%zu (%s) window_ms=%s during: ops=%" PRIu64 " p50_us=%" PRIu64
        " p99_us=%" PRIu64 " max_us=%" PRIu64 "; steady: p50_us=%" PRIu64 " p99_us=%" PRIu64
        " max_us=%" PRIu64 "; p99 during / steady = %.2f\n",
        r.disruption_ms.size(), FLAGS_transfer ? "leader transfers" : "rolling restart",
        FailoverJson(r.disruption_ms).c_str(), d.count(), d.Percentile(0.5), d.Percentile(0.99),
        d.max(), st.Percentile(0.5), st.Percentile(0.99), st.max(),
        st.Percentile(0.99) ? static_cast<double>(d.Percentile(0.99)) / st.Percentile(0.99) : 0.0);
    const LatencyHistogram& ds = r.disrupted_seconds;
    const LatencyHistogram& ss = r.steady_seconds;
    std::printf(
        "by second: seconds with a disruption p99_us=%" PRIu64 " max_us=%" PRIu64
        ", other seconds p99_us=%" PRIu64 " max_us=%" PRIu64 "; p99 ratio = %.2f\n",
        ds.Percentile(0.99), ds.max(), ss.Percentile(0.99), ss.max(),
        ss.Percentile(0.99) ? static_cast<double>(ds.Percentile(0.99)) / ss.Percentile(0.99) : 0.0);
  }
  if (FLAGS_json) {
    std::printf(
        "{\"workload\":\"%s\",\"clients\":%u,\"in_flight\":%u,\"duration_s\":%.2f,"
        "\"ops\":%" PRIu64 ",\"throughput_ops\":%.1f,\"p50_us\":%" PRIu64 ",\"p90_us\":%" PRIu64
        ",\"p99_us\":%" PRIu64 ",\"p999_us\":%" PRIu64 ",\"max_us\":%" PRIu64 ",\"errors\":%" PRIu64
        ",\"failover_ms\":%s,"
        "\"failover_median_ms\":%.1f,\"epoch_start\":%" PRIu64 ",\"epoch_end\":%" PRIu64
        ",\"commands_per_slot\":%.1f,\"server_cpu_us_per_op\":%.1f,"
        "\"bench_cpu_us_per_op\":%.1f}\n",
        FLAGS_workload.c_str(), r.clients, FLAGS_in_flight, r.seconds, r.ops, r.throughput(),
        h.Percentile(0.5), h.Percentile(0.9), h.Percentile(0.99), h.Percentile(0.999), h.max(),
        r.errors, FailoverJson(r.failover_ms).c_str(), Median(r.failover_ms), r.epoch_start,
        r.epoch_end, r.commands_per_slot(), r.server_cpu_us_per_op(), r.bench_cpu_us_per_op());
  }
  std::fflush(stdout);
  if (!FLAGS_csv.empty()) {
    std::ofstream csv(FLAGS_csv, std::ios::app);
    csv << FLAGS_workload << "," << r.clients << "," << FLAGS_in_flight << ","
        << static_cast<uint64_t>(r.throughput()) << "," << h.Percentile(0.5) << ","
        << h.Percentile(0.9) << "," << h.Percentile(0.99) << "," << h.Percentile(0.999) << ","
        << h.max() << "," << r.errors << "\n";
  }
}

[[noreturn]] void UsageError(const std::string& why) {
  std::fprintf(stderr, "ballot-bench: %s (see --help)\n", why.c_str());
  std::exit(tools::kExitUsage);
}

std::string DefaultBallotd(const char* argv0) {
  std::string self = argv0;
  size_t slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/ballotd";
}

int Main(int argc, char** argv) {
  tools::ParseFlagsStrict("Closed-loop throughput and latency of a Ballot cluster.", &argc, &argv);
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_workload != "seq" && FLAGS_workload != "kv" && FLAGS_workload != "lock") {
    UsageError("unknown --workload");
  }
  if (FLAGS_failover > 0 && FLAGS_start_nodes == 0) UsageError("--failover needs --start_nodes");
  if (FLAGS_rolling_restart && FLAGS_start_nodes == 0) {
    UsageError("--rolling_restart needs --start_nodes");
  }
  if (FLAGS_rolling_restart && FLAGS_transfer > 0) {
    UsageError("give at most one of --transfer and --rolling_restart");
  }
  if (FLAGS_cluster.empty() == (FLAGS_start_nodes == 0)) {
    UsageError("give exactly one of --cluster and --start_nodes");
  }
  std::vector<uint32_t> sweep;
  for (const std::string& s : Split(FLAGS_sweep, ',')) sweep.push_back(std::stoul(s));
  if (sweep.empty()) sweep.push_back(FLAGS_clients);

  std::unique_ptr<LocalCluster> cluster;
  std::string cluster_flag = FLAGS_cluster;
  if (FLAGS_start_nodes > 0) {
    LocalCluster::Options o;
    o.ballotd = FLAGS_ballotd.empty() ? DefaultBallotd(argv[0]) : FLAGS_ballotd;
    o.nodes = static_cast<int>(FLAGS_start_nodes);
    o.state_machine = FLAGS_workload == "seq" ? "sequence" : FLAGS_workload;
    o.extra_flags = Split(FLAGS_node_flags, ' ');
    auto started = LocalCluster::Start(o);
    if (!started.ok()) UsageError("cannot start a cluster: " + started.status().ToString());
    cluster = std::move(started).value();
    cluster_flag = cluster->cluster_flag();
  }
  auto members = ParseCluster(cluster_flag);
  if (!members.ok()) UsageError("bad --cluster: " + members.status().message());

  uint32_t max_clients = *std::max_element(sweep.begin(), sweep.end());
  uint32_t lanes_n = FLAGS_connections ? FLAGS_connections : std::min(max_clients, 16u);
  std::vector<std::unique_ptr<Lane>> lanes;
  uint64_t cluster_id = FLAGS_cluster_id;
  for (uint32_t i = 0; i < lanes_n; ++i) {
    ClientOptions co;
    co.members = members.value();
    co.cluster_id = cluster_id;
    auto client = Client::Create(co);
    if (!client.ok()) UsageError("client: " + client.status().ToString());
    if (cluster_id == 0) {
      // Learnt once, by the first lane; the others are pinned to it.
      Result<uint64_t> learnt = client.value()->LearnClusterId(std::chrono::seconds(30));
      if (!learnt.ok()) {
        std::fprintf(stderr, "ballot-bench: %s\n", learnt.status().ToString().c_str());
        return 1;
      }
      cluster_id = learnt.value();
    }
    lanes.push_back(std::make_unique<Lane>());
    lanes.back()->client = std::move(client).value();
  }
  auto leader = lanes[0]->client->FindLeader(std::chrono::seconds(30));
  if (!leader.ok()) {
    std::fprintf(stderr, "ballot-bench: no leader: %s\n", leader.status().ToString().c_str());
    return 1;
  }
  for (uint32_t clients : sweep) {
    std::fprintf(stderr, "point: workload=%s clients=%u in_flight=%u connections=%u\n",
                 FLAGS_workload.c_str(), clients, FLAGS_in_flight, lanes_n);
    Runner runner(&lanes, clients, cluster.get());
    auto before = lanes[0]->client->FindLeader(std::chrono::seconds(5));
    PointResult r = runner.Run();
    auto after = lanes[0]->client->FindLeader(std::chrono::seconds(5));
    r.epoch_start = before.ok() ? before.value().second : 0;
    r.epoch_end = after.ok() ? after.value().second : 0;
    Report(r);
  }
  return 0;
}

}  // namespace
}  // namespace ballot::bench

int main(int argc, char** argv) { return ballot::bench::Main(argc, argv); }
