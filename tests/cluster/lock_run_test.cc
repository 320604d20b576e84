// `ballotctl lock run` (tools/ctl/lock_run.h) with real processes: 3-node --state_machine=lock
// clusters of ballotd, lock runs as child processes, and lock_run_worker as their command. Each
// worker records what it does in a shared events file and holds an exclusive flock on a shared
// file while it runs, so a second command running at the same time cannot go unnoticed (the
// kernel drops a flock only when its holder dies, however it dies).
//
//  - Usage errors exit 2 without touching a cluster; a command that does not exist exits 127.
//  - CMD's exit status (or 128 + signal) is lock run's, and the lock is released at once.
//  - Three lock runs on one name take turns: never two commands at once, tokens increase.
//  - SIGKILL of the holding lock run kills its command too (PR_SET_PDEATHSIG), and another
//    takes over; still never two commands at once.
//  - A holder whose lock run is frozen (SIGSTOP) past its TTL: the next one takes over, and the
//    frozen one's command, still running, is refused by the fenced resource (ballot-fenced-kv);
//    woken, the lock run stops its command and exits 4.
//  - SIGTERM to lock run stops CMD (SIGKILL after the grace period if CMD ignores SIGTERM, at
//    once on a second signal), releases the lock and exits 143.
//  - A cluster that stops answering: CMD is stopped and lock run exits 4.
#include "tools/ctl/lock_run.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "statemachine/samples/lock.h"
#include "tests/cluster/process_cluster.h"
#include "tests/cluster/tool_run.h"

namespace ballot::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kStartTimeout{30};
constexpr seconds kToolTimeout{15};
// How long anything the tests wait for may take on a busy machine (a takeover takes about one
// TTL; a lock run's exit after its command, a few milliseconds).
constexpr seconds kLiveness{30};
constexpr uint64_t kTtlMs = 3000;

// One `ballotctl lock run` child process, its stdout and stderr in a log file. SIGKILLed and
// reaped on destruction if still running.
class LockRun {
 public:
  LockRun(const std::string& cluster_flag, const std::string& name, const std::string& owner,
          const std::vector<std::string>& extra_flags, const std::vector<std::string>& command,
          std::string log_path)
      : owner_(owner), log_path_(std::move(log_path)) {
    std::vector<std::string> args = {BALLOTCTL_PATH, "--cluster=" + cluster_flag, "lock", "run",
                                     name,           "--owner=" + owner};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    PCHECK(log_fd >= 0) << "open " << log_path_;
    pid_ = Spawn(args, log_fd, log_fd);
    close(log_fd);
  }
  ~LockRun() {
    if (pid_ > 0 && !exit_code_) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  LockRun(const LockRun&) = delete;
  LockRun& operator=(const LockRun&) = delete;

  const std::string& owner() const { return owner_; }
  pid_t pid() const { return pid_; }
  void Signal(int sig) { kill(pid_, sig); }

  // Its exit status (-signal if a signal ended it) once it has exited, polling until the
  // deadline; nullopt if it is still running then.
  std::optional<int> Wait(Clock::time_point deadline) {
    WaitUntil(deadline, [&] {
      if (exit_code_) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      return true;
    });
    return exit_code_;
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  const std::string owner_;
  const std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// One line of the workers' events file (lock_run_worker.cc).
struct Event {
  std::string kind;
  std::string owner;
  uint64_t token = 0;
  std::string rest;  // after the token
};

std::vector<Event> ReadEvents(const std::string& path) {
  std::vector<Event> events;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Event e;
    fields >> e.kind >> e.owner >> e.token;
    std::getline(fields >> std::ws, e.rest);
    events.push_back(e);
  }
  return events;
}

std::vector<Event> EventsOfKind(const std::string& path, const std::string& kind) {
  std::vector<Event> out;
  for (const Event& e : ReadEvents(path)) {
    if (e.kind == kind) out.push_back(e);
  }
  return out;
}

// True once `pid` no longer runs: gone, or a zombie nobody reaped yet (its descriptors, and so
// its flock, are released either way).
bool ProcessGone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return true;
  const size_t paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() || text[paren + 2] == 'Z' ||
         text[paren + 2] == 'X';
}

// The worker's pid, from its start line ("<lock name> <pid>").
pid_t WorkerPid(const Event& start) {
  std::istringstream fields(start.rest);
  std::string name;
  pid_t pid = -1;
  fields >> name >> pid;
  return pid;
}

class LockRunTest : public ::testing::Test {
 protected:
  void StartCluster() {
    ProcessClusterOptions options = DefaultOptions(BALLOTD_PATH);
    options.state_machine = "lock";
    cluster_ = std::make_unique<ProcessCluster>(options);
    Status started = cluster_->StartAll(Clock::now() + kStartTimeout);
    ASSERT_TRUE(started.ok()) << started.ToString();
    events_ = cluster_->dir() + "/events";
    flock_ = cluster_->dir() + "/flock";
  }

  // A lock run on "job" whose command is the worker, with `worker_flags` added.
  std::unique_ptr<LockRun> StartLockRun(const std::string& owner,
                                        const std::vector<std::string>& worker_flags,
                                        const std::vector<std::string>& run_flags = {}) {
    std::vector<std::string> command = {LOCK_RUN_WORKER_PATH, "--events=" + events_,
                                        "--owner=" + owner};
    command.insert(command.end(), worker_flags.begin(), worker_flags.end());
    std::vector<std::string> flags = {"--ttl_ms=" + std::to_string(kTtlMs)};
    flags.insert(flags.end(), run_flags.begin(), run_flags.end());
    return std::make_unique<LockRun>(cluster_->cluster_flag(), "job", owner, flags, command,
                                     cluster_->dir() + "/lockrun-" + owner + ".log");
  }

  // Waits for the n-th (1-based) event of `kind`; the events of that kind seen by then.
  std::vector<Event> WaitForEvents(const std::string& kind, size_t n) {
    std::vector<Event> seen;
    WaitUntil(Clock::now() + kLiveness, [&] {
      seen = EventsOfKind(events_, kind);
      return seen.size() >= n;
    });
    return seen;
  }

  // The lock's holder as the replicas see it (nullopt: free).
  std::optional<samples::LockService::Holder> Holder() {
    auto client = cluster_->NewClient();
    auto reply = client->Read(samples::LockService::EncodeGet("job"), milliseconds(5000));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return std::nullopt;
    auto holder = samples::LockService::DecodeGet(reply.value().data);
    EXPECT_TRUE(holder.ok());
    return holder.ok() ? holder.value() : std::nullopt;
  }

  std::string Describe(const std::vector<LockRun*>& runs) const {
    std::string text = "events:\n";
    std::ifstream in(events_);
    std::string line;
    while (std::getline(in, line)) text += "  " + line + "\n";
    for (const LockRun* r : runs) text += "lock run " + r->owner() + ":\n" + r->Log();
    return text;
  }

  std::unique_ptr<ProcessCluster> cluster_;
  std::string events_;
  std::string flock_;
};

// --- Without a cluster ---

TEST(LockRunTimingTest, DeadlinesLeaveTheMarginAndGraceBeforeTheTtlEnds) {
  auto timing = tools::MakeLockRunTiming(1500, -1);
  ASSERT_TRUE(timing.ok());
  EXPECT_EQ(timing.value().margin, milliseconds(300));  // ttl/5
  EXPECT_EQ(timing.value().grace, milliseconds(150));   // ttl/10
  const auto s = tools::BootClock::now();
  EXPECT_EQ(timing.value().NextKeepAlive(s) - s, milliseconds(500));
  EXPECT_EQ(timing.value().KillAt(s) - s, milliseconds(1200));
  EXPECT_EQ(timing.value().TermAt(s) - s, milliseconds(1050));

  auto small = tools::MakeLockRunTiming(500, -1);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small.value().margin, milliseconds(100));                                 // the floor
  EXPECT_EQ(tools::MakeLockRunTiming(100000, -1).value().grace, milliseconds(1000));  // the cap
  EXPECT_TRUE(tools::MakeLockRunTiming(1000, 300).ok());  // 200 + 300 = ttl/2
  EXPECT_FALSE(tools::MakeLockRunTiming(1000, 301).ok());
  EXPECT_FALSE(tools::MakeLockRunTiming(499, -1).ok());
  EXPECT_FALSE(tools::MakeLockRunTiming(samples::LockService::Limits().ttl_ms_max + 1, -1).ok());
}

TEST(LockRunUsageTest, UsageErrorsExitTwo) {
  const std::string cluster = "--cluster=1@127.0.0.1:1";  // nothing listens: never asked
  const std::vector<std::vector<std::string>> cases = {
      {cluster, "lock", "run", "job", "--ttl_ms=1000", "--", "true"},                  // no owner
      {cluster, "lock", "run", "job", "--owner=a", "--", "true"},                      // no ttl
      {cluster, "lock", "run", "job", "--owner=a", "--ttl_ms=1000", "true"},           // no --
      {cluster, "lock", "run", "job", "--owner=a", "--ttl_ms=1000", "--"},             // no CMD
      {cluster, "lock", "run", "--owner=a", "--ttl_ms=1000", "--", "true"},            // no NAME
      {cluster, "lock", "run", "a", "b", "--owner=a", "--ttl_ms=1000", "--", "true"},  // 2 names
      {cluster, "lock", "run", "job", "--owner=a", "--ttl_ms=100", "--", "true"},      // ttl small
      {cluster, "lock", "run", "job", "--owner=a", "--ttl_ms=0", "--", "true"},
      {cluster, "lock", "run", "job", "--owner=a", "--ttl_ms=x", "--", "true"},
      {cluster, "lock", "run", "job", "--owner=a", "--ttl_ms=86400001", "--", "true"},
      {cluster, "lock", "run", "job", "--owner=a", "--ttl_ms=1000", "--grace_ms=301", "--", "true"},
      {"lock", "run", "job", "--owner=a", "--ttl_ms=1000", "--", "true"},  // no --cluster
      {"--cluster=nonsense", "lock", "run", "job", "--owner=a", "--ttl_ms=1000", "--", "true"},
      {cluster, "lock", "acquire", "job", "--owner=a", "--", "true"},  // takes no command
  };
  for (const auto& args : cases) {
    std::vector<std::string> full = {BALLOTCTL_PATH};
    full.insert(full.end(), args.begin(), args.end());
    const ToolResult r = RunTool(full, Clock::now() + kToolTimeout);
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(r.exit_code, 2) << line << "-> " << r.Describe();
    EXPECT_FALSE(r.err.empty()) << line;
  }
  // A command that is not there: 127, before anything is acquired (nothing listens).
  const ToolResult missing = RunTool({BALLOTCTL_PATH, cluster, "lock", "run", "job", "--owner=a",
                                      "--ttl_ms=1000", "--", "no-such-command-anywhere"},
                                     Clock::now() + kToolTimeout);
  EXPECT_EQ(missing.exit_code, 127) << missing.Describe();
  EXPECT_NE(missing.err.find("command not found"), std::string::npos) << missing.Describe();
}

// --- With a cluster ---

TEST_F(LockRunTest, CommandStatusIsPropagatedAndTheLockReleased) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  LockRun run(cluster_->cluster_flag(), "job", "a", {"--ttl_ms=" + std::to_string(kTtlMs)},
              {LOCK_RUN_WORKER_PATH, "--events=" + events_, "--owner=a", "--exit_after_ms=200",
               "--exit_code=7"},
              cluster_->dir() + "/lockrun-a.log");
  const std::optional<int> code = run.Wait(Clock::now() + kLiveness);
  ASSERT_TRUE(code.has_value()) << Describe({&run});
  EXPECT_EQ(*code, 7) << Describe({&run});
  const std::vector<Event> starts = EventsOfKind(events_, "start");
  ASSERT_EQ(starts.size(), 1u) << Describe({&run});
  EXPECT_GT(starts[0].token, 0u);
  EXPECT_EQ(starts[0].rest.substr(0, 4), "job ") << "BALLOT_LOCK_NAME";
  // Released, not merely expiring: the replicas' time only moves with commands, so an
  // unreleased lock would still show its holder here.
  EXPECT_FALSE(Holder().has_value()) << Describe({&run});

  // Killed by a signal: 128 + signal.
  const ToolResult killed =
      RunTool({BALLOTCTL_PATH, "--cluster=" + cluster_->cluster_flag(), "lock", "run", "job",
               "--owner=a", "--ttl_ms=1500", "--", "/bin/sh", "-c", "kill -USR1 $$"},
              Clock::now() + kLiveness);
  EXPECT_EQ(killed.exit_code, 128 + SIGUSR1) << killed.Describe();
  EXPECT_FALSE(Holder().has_value());
}

TEST_F(LockRunTest, ThreeRunnersTakeTurnsNeverTwoAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  std::vector<std::unique_ptr<LockRun>> runs;
  for (const char* owner : {"a", "b", "c"}) {
    runs.push_back(StartLockRun(owner, {"--flock=" + flock_, "--exit_after_ms=300"}));
  }
  std::vector<LockRun*> all;
  for (auto& r : runs) all.push_back(r.get());
  for (auto& r : runs) {
    const std::optional<int> code = r->Wait(Clock::now() + kLiveness);
    ASSERT_TRUE(code.has_value()) << Describe(all);
    EXPECT_EQ(*code, 0) << Describe(all);
  }
  const std::vector<Event> events = ReadEvents(events_);
  std::set<std::string> owners;
  uint64_t last_token = 0;
  std::string running;  // the owner whose command has started and not yet exited
  for (const Event& e : events) {
    ASSERT_NE(e.kind, "overlap") << Describe(all);
    if (e.kind == "start") {
      EXPECT_EQ(running, "") << "two commands at once\n" << Describe(all);
      EXPECT_GT(e.token, last_token) << Describe(all);
      last_token = e.token;
      running = e.owner;
      owners.insert(e.owner);
    } else if (e.kind == "exit") {
      EXPECT_EQ(e.owner, running) << Describe(all);
      running.clear();
    }
  }
  EXPECT_EQ(owners.size(), 3u) << Describe(all);
}

TEST_F(LockRunTest, KilledRunnerTakesItsCommandAlongAndAnotherTakesOver) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  std::map<std::string, std::unique_ptr<LockRun>> runs;
  std::vector<LockRun*> all;
  for (const char* owner : {"a", "b", "c"}) {
    runs[owner] = StartLockRun(owner, {"--flock=" + flock_});
    all.push_back(runs[owner].get());
  }
  std::vector<Event> starts = WaitForEvents("start", 1);
  ASSERT_EQ(starts.size(), 1u) << Describe(all);
  const Event first = starts[0];
  // Several keepalive periods pass: the holder keeps the lock, nobody else starts.
  std::this_thread::sleep_for(milliseconds(2 * kTtlMs));
  starts = EventsOfKind(events_, "start");
  ASSERT_EQ(starts.size(), 1u) << Describe(all);

  runs[first.owner]->Signal(SIGKILL);
  ASSERT_EQ(runs[first.owner]->Wait(Clock::now() + kLiveness), -SIGKILL);
  const pid_t orphan = WorkerPid(first);
  ASSERT_GT(orphan, 0);
  EXPECT_TRUE(WaitUntil(Clock::now() + kLiveness, [&] { return ProcessGone(orphan); }))
      << "the command of a SIGKILLed lock run still runs\n"
      << Describe(all);

  starts = WaitForEvents("start", 2);
  ASSERT_EQ(starts.size(), 2u) << Describe(all);
  EXPECT_NE(starts[1].owner, first.owner);
  EXPECT_GT(starts[1].token, first.token);
  EXPECT_TRUE(EventsOfKind(events_, "overlap").empty()) << Describe(all);

  // The survivors end on SIGTERM: the holder stops its command and releases, the waiter gives up.
  for (auto& [owner, run] : runs) {
    if (owner != first.owner) run->Signal(SIGTERM);
  }
  for (auto& [owner, run] : runs) {
    if (owner == first.owner) continue;
    EXPECT_EQ(run->Wait(Clock::now() + kLiveness), 128 + SIGTERM) << Describe(all);
  }
  EXPECT_TRUE(ProcessGone(WorkerPid(starts[1])));
  EXPECT_TRUE(EventsOfKind(events_, "overlap").empty()) << Describe(all);
  EXPECT_FALSE(Holder().has_value()) << Describe(all);
}

TEST_F(LockRunTest, FrozenRunnersCommandIsRefusedByTheFencedResource) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  FencedKv kv(FENCED_KV_PATH, cluster_->dir() + "/fenced-kv");
  Status kv_started = kv.Start(Clock::now() + kStartTimeout);
  ASSERT_TRUE(kv_started.ok()) << kv_started.ToString();
  const std::vector<std::string> worker = {"--fenced_port=" + std::to_string(kv.port()),
                                           "--resource=jobs", "--write_every_ms=50"};
  std::map<std::string, std::unique_ptr<LockRun>> runs;
  std::vector<LockRun*> all;
  for (const char* owner : {"a", "b"}) {
    runs[owner] = StartLockRun(owner, worker);
    all.push_back(runs[owner].get());
  }
  const std::vector<Event> first_start = WaitForEvents("start", 1);
  ASSERT_EQ(first_start.size(), 1u) << Describe(all);
  const Event old = first_start[0];
  ASSERT_TRUE(WaitUntil(Clock::now() + kLiveness, [&] {
    for (const Event& e : EventsOfKind(events_, "write")) {
      if (e.owner == old.owner && e.rest == "OK") return true;
    }
    return false;
  })) << Describe(all);

  // Freeze the holder's lock run: it can neither keep the lock alive nor stop its command.
  LockRun& frozen = *runs[old.owner];
  frozen.Signal(SIGSTOP);
  const std::vector<Event> starts = WaitForEvents("start", 2);
  ASSERT_EQ(starts.size(), 2u) << Describe(all);
  const Event next = starts[1];
  EXPECT_NE(next.owner, old.owner);
  EXPECT_GT(next.token, old.token);
  // The old command, still running, writes with its old token after the new holder registered.
  bool refused = WaitUntil(Clock::now() + kLiveness, [&] {
    for (const Event& e : EventsOfKind(events_, "write")) {
      if (e.owner == old.owner && e.rest.rfind("REJECTED", 0) == 0) return true;
    }
    return false;
  });
  EXPECT_TRUE(refused) << Describe(all);
  EXPECT_EQ(kv.Send("HIGHEST jobs"), "TOKEN " + std::to_string(next.token));
  EXPECT_EQ(kv.Send("READ owner"), "VALUE " + next.owner) << Describe(all);

  // Woken, the lock run sees its hold is over: it stops its command and exits 4.
  frozen.Signal(SIGCONT);
  EXPECT_EQ(frozen.Wait(Clock::now() + kLiveness), tools::kLockRunExitLost) << Describe(all);
  EXPECT_TRUE(WaitUntil(Clock::now() + kLiveness, [&] { return ProcessGone(WorkerPid(old)); }));
  runs[next.owner]->Signal(SIGTERM);
  EXPECT_EQ(runs[next.owner]->Wait(Clock::now() + kLiveness), 128 + SIGTERM) << Describe(all);
}

TEST_F(LockRunTest, SigtermStopsTheCommandKillsItAfterTheGraceAndReleases) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  // A command that handles SIGTERM, then one that ignores it (SIGKILLed after --grace_ms).
  for (const bool ignores : {false, true}) {
    SCOPED_TRACE(ignores ? "ignores SIGTERM" : "handles SIGTERM");
    const std::string owner = ignores ? "stubborn" : "polite";
    std::vector<std::string> flags = {"--flock=" + flock_};
    if (ignores) flags.push_back("--ignore_term");
    std::unique_ptr<LockRun> run = StartLockRun(owner, flags, {"--grace_ms=200"});
    std::vector<Event> starts;
    ASSERT_TRUE(WaitUntil(Clock::now() + kLiveness, [&] {
      starts.clear();
      for (const Event& e : EventsOfKind(events_, "start")) {
        if (e.owner == owner) starts.push_back(e);
      }
      return !starts.empty();
    })) << Describe({run.get()});
    run->Signal(SIGTERM);
    EXPECT_EQ(run->Wait(Clock::now() + kLiveness), 128 + SIGTERM) << Describe({run.get()});
    EXPECT_TRUE(ProcessGone(WorkerPid(starts[0]))) << Describe({run.get()});
    bool term_recorded = false;
    for (const Event& e : EventsOfKind(events_, "term")) term_recorded |= e.owner == owner;
    EXPECT_EQ(term_recorded, !ignores) << Describe({run.get()});
    if (ignores) {
      EXPECT_NE(run->Log().find("SIGKILL"), std::string::npos) << Describe({run.get()});
    }
    EXPECT_FALSE(Holder().has_value()) << Describe({run.get()});
  }
}

TEST_F(LockRunTest, SecondSignalKillsAtOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  // A long grace period (margin 2000 + grace 3000 = ttl/2) that the second signal cuts short.
  std::unique_ptr<LockRun> run =
      StartLockRun("stubborn", {"--ignore_term"}, {"--ttl_ms=10000", "--grace_ms=3000"});
  const std::vector<Event> starts = WaitForEvents("start", 1);
  ASSERT_EQ(starts.size(), 1u) << Describe({run.get()});
  run->Signal(SIGTERM);
  ASSERT_TRUE(WaitUntil(Clock::now() + kLiveness, [&] {
    return run->Log().find("got SIGTERM") != std::string::npos;
  })) << Describe({run.get()});
  run->Signal(SIGINT);
  EXPECT_EQ(run->Wait(Clock::now() + kLiveness), 128 + SIGTERM) << Describe({run.get()});
  EXPECT_NE(run->Log().find("second signal (SIGINT): SIGKILL"), std::string::npos)
      << Describe({run.get()});
  EXPECT_TRUE(ProcessGone(WorkerPid(starts[0])));
  EXPECT_FALSE(Holder().has_value()) << Describe({run.get()});
}

TEST_F(LockRunTest, ClusterThatStopsAnsweringStopsTheCommandExitFour) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  std::unique_ptr<LockRun> run = StartLockRun("a", {"--flock=" + flock_});
  const std::vector<Event> starts = WaitForEvents("start", 1);
  ASSERT_EQ(starts.size(), 1u) << Describe({run.get()});
  for (paxos::NodeId id : cluster_->ids()) cluster_->Stop(id);
  const std::optional<int> code = run->Wait(Clock::now() + kLiveness);
  for (paxos::NodeId id : cluster_->ids()) cluster_->Cont(id);
  EXPECT_EQ(code, tools::kLockRunExitLost) << Describe({run.get()});
  EXPECT_TRUE(ProcessGone(WorkerPid(starts[0]))) << Describe({run.get()});
  EXPECT_EQ(EventsOfKind(events_, "term").size(), 1u) << Describe({run.get()});
}

}  // namespace
}  // namespace ballot::cluster_test
