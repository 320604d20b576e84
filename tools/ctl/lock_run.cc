#include "tools/ctl/lock_run.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <utility>

#include "net/client/client.h"
#include "net/cluster_config.h"
#include "statemachine/samples/lock.h"

extern char** environ;

namespace ballot::tools {

using std::chrono::milliseconds;
using TimePoint = BootClock::time_point;

BootClock::time_point BootClock::now() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

Result<LockRunTiming> MakeLockRunTiming(uint64_t ttl_ms, int64_t grace_ms) {
  const uint64_t ttl_ms_max = samples::LockService::Limits().ttl_ms_max;
  if (ttl_ms < static_cast<uint64_t>(kLockRunTtlMin.count()) || ttl_ms > ttl_ms_max) {
    return Status(StatusCode::kInvalidArgument,
                  "--ttl_ms must be in " + std::to_string(kLockRunTtlMin.count()) + ".." +
                      std::to_string(ttl_ms_max) + " (got " + std::to_string(ttl_ms) + ")");
  }
  LockRunTiming t;
  t.ttl = milliseconds(ttl_ms);
  t.margin = std::max(t.ttl / 5, kLockRunMarginMin);
  t.grace = grace_ms < 0 ? std::min(t.ttl / 10, kLockRunGraceDefaultMax) : milliseconds(grace_ms);
  t.keepalive_every = t.ttl / 3;
  t.retry_pause = std::max(t.ttl / 20, milliseconds(10));
  const milliseconds grace_max = t.ttl / 2 - t.margin;
  if (t.grace > grace_max) {
    return Status(StatusCode::kInvalidArgument,
                  "--grace_ms=" + std::to_string(t.grace.count()) +
                      " is too long for --ttl_ms=" + std::to_string(ttl_ms) +
                      ": CMD is SIGKILLed margin=" + std::to_string(t.margin.count()) +
                      " ms before the TTL ends and SIGTERMed grace ms before that, and margin + "
                      "grace must be at most ttl/2 so that keepalives have time; use --grace_ms "
                      "<= " +
                      std::to_string(grace_max.count()) + " or a longer TTL");
  }
  return t;
}

Status ParseLockRunArgs(const std::vector<std::string>& args, std::string* name,
                        std::vector<std::string>* command) {
  const auto dashes = std::find(args.begin(), args.end(), "--");
  if (dashes == args.end()) {
    return Status(StatusCode::kInvalidArgument,
                  "lock run: expected NAME -- CMD [ARGS...] (no '--' before the command)");
  }
  if (dashes - args.begin() != 1 || args[0].empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "lock run: expected exactly one lock NAME before '--'");
  }
  if (dashes + 1 == args.end()) {
    return Status(StatusCode::kInvalidArgument, "lock run: no command after '--'");
  }
  *name = args[0];
  command->assign(dashes + 1, args.end());
  return Status::Ok();
}

int RunLockRunCommand(const ClusterFlags& cluster, const std::vector<std::string>& args,
                      const std::string& owner, std::optional<uint64_t> ttl_ms, int64_t grace_ms,
                      std::ostream& err) {
  LockRunRequest request;
  Status parsed = ParseLockRunArgs(args, &request.name, &request.command);
  std::string problem = parsed.ok() ? "" : parsed.message();
  if (problem.empty() && owner.empty()) problem = "lock run: --owner is required";
  if (problem.empty() && !ttl_ms.has_value()) problem = "lock run: --ttl_ms is required";
  if (problem.empty() && cluster.timeout_ms <= 0) problem = "--timeout_ms must be positive";
  if (problem.empty()) {
    Result<LockRunTiming> timing = MakeLockRunTiming(*ttl_ms, grace_ms);
    if (timing.ok()) {
      request.timing = timing.value();
    } else {
      problem = "lock run: " + timing.status().message();
    }
  }
  if (problem.empty()) {
    if (Result<std::map<paxos::NodeId, std::string>> m = ParseCluster(cluster.cluster); !m.ok()) {
      problem = "--cluster: " + m.status().message();
    }
  }
  if (!problem.empty()) {
    err << "ballotctl: " << problem << "\n";
    return kCtlExitUsage;
  }
  request.cluster = cluster;
  request.owner = owner;
  return RunLockRun(request, err);
}

namespace {

// --- Starting CMD ---

// CMD's path: as given if it names a path, else the first executable regular file of that
// name in $PATH (the shells' rule). nullopt if there is none.
std::optional<std::string> ResolveCommand(const std::string& command) {
  if (command.find('/') != std::string::npos) return command;
  const char* path_env = getenv("PATH");
  const std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= path.size()) {
    const size_t end = std::min(path.find(':', begin), path.size());
    const std::string dir = end == begin ? "." : path.substr(begin, end - begin);
    const std::string candidate = dir + "/" + command;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  return std::nullopt;
}

// This process's environment with the lock's two variables set (replacing any inherited ones).
std::vector<std::string> CommandEnvironment(uint64_t token, const std::string& name) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("BALLOT_FENCING_TOKEN=") || entry.starts_with("BALLOT_LOCK_NAME=")) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.push_back("BALLOT_FENCING_TOKEN=" + std::to_string(token));
  env.push_back("BALLOT_LOCK_NAME=" + name);
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child between fork and exec. Only async-signal-safe calls: the parent has threads
// (the client's io thread), and one of them may have held a lock of malloc at the fork.
[[noreturn]] void ExecCommand(pid_t parent, int error_fd, const char* path, char* const argv[],
                              char* const envp[], int fd_limit) {
  int error = 0;
  // Its own process group, so that stopping CMD reaches whatever it starts too.
  if (setpgid(0, 0) != 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    error = errno;
  } else if (getppid() != parent) {
    // lock run died before the death signal was armed: nobody would ever stop this CMD.
    error = ESRCH;
  }
  if (error == 0) {
    // lock run installs no handlers; it only blocks the signals it reads from its signalfd.
    // Dispositions pass through exec as inherited (a SIGHUP ignored under nohup stays ignored).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // CMD gets stdin, stdout and stderr only: not the client's sockets, the signalfd, ... The
    // error pipe stays open until the exec succeeds.
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      for (int fd = 3; fd < fd_limit; ++fd) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    execve(path, argv, envp);
    error = errno;
  }
  ssize_t ignored = write(error_fd, &error, sizeof(error));
  (void)ignored;
  _exit(error == ENOENT ? 127 : 126);
}

struct Spawned {
  pid_t pid = -1;      // -1: fork failed (errno in exec_error)
  int exec_error = 0;  // errno of a failed setup or exec in the child (which then exits)
};

Spawned SpawnCommand(const std::string& path, std::vector<std::string> argv,
                     std::vector<std::string> env) {
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  rlimit files{};
  int fd_limit = 1024;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    fd_limit = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 65536));
  }
  int error_pipe[2];
  PCHECK(pipe2(error_pipe, O_CLOEXEC) == 0) << "pipe2";
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    ExecCommand(parent, error_pipe[1], path.c_str(), c_argv.data(), c_env.data(), fd_limit);
  }
  const int fork_error = errno;
  close(error_pipe[1]);
  Spawned spawned;
  if (pid < 0) {
    close(error_pipe[0]);
    spawned.exec_error = fork_error;
    return spawned;
  }
  spawned.pid = pid;
  // The child's own setpgid has run before the pipe closes or carries an error, so CMD's group
  // exists before anything signals it.
  ssize_t n;
  do {
    n = read(error_pipe[0], &spawned.exec_error, sizeof(spawned.exec_error));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(spawned.exec_error))) spawned.exec_error = 0;
  close(error_pipe[0]);
  return spawned;
}

// --- Replies from the client's io thread ---

// Answers of the asynchronous acquire / keepalive calls, handed from the client's io thread to
// the main loop through an eventfd that the loop polls.
// A watch (long poll) on the lock while another holds it: answered at the lock's next change, or
// after kWatchWait without one (then acquire is tried again). Short, because a signal that comes
// meanwhile waits for the call before lock run exits.
constexpr milliseconds kWatchWait{1000};
constexpr milliseconds kWatchCallMax{2000};

class Mailbox {
 public:
  struct Reply {
    bool keepalive = false;
    TimePoint sent;  // taken just before the call was made
    Result<Client::ProposeReply> result;
    bool watch_ended = false;   // not a reply: the watch on the held lock returned (result unused)
    bool watch_failed = false;  // ... with an error: back off before the next acquire
  };

  Mailbox() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) { PCHECK(fd_ >= 0) << "eventfd"; }
  ~Mailbox() { close(fd_); }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  int fd() const { return fd_; }

  // Any thread.
  void Post(Reply reply) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      replies_.push_back(std::move(reply));
    }
    const uint64_t one = 1;
    ssize_t ignored = write(fd_, &one, sizeof(one));
    (void)ignored;
  }

  std::deque<Reply> TakeAll() {
    uint64_t count = 0;
    ssize_t ignored = read(fd_, &count, sizeof(count));
    (void)ignored;
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(replies_, {});
  }

 private:
  const int fd_;
  std::mutex mu_;
  std::deque<Reply> replies_;  // GUARDED_BY(mu_)
};

// --- The run ---

const char* SignalName(int sig) {
  switch (sig) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

class LockRunner {
 public:
  LockRunner(const LockRunRequest& request, std::ostream& err)
      : request_(request), timing_(request.timing), err_(err), rng_(std::random_device()()) {}
  ~LockRunner() {
    if (watcher_.joinable()) watcher_.join();  // bounded by kWatchCallMax
  }
  LockRunner(const LockRunner&) = delete;
  LockRunner& operator=(const LockRunner&) = delete;

  int Run();

 private:
  enum class Phase {
    kAcquiring,  // no hold yet: acquire, retried with a backoff
    kRunning,    // holding: CMD runs, keepalives go out
    kStopping,   // CMD was told to stop (the hold was lost, or a signal came): waiting for it
    kQuitting,   // a signal came before CMD started: waiting for the acquire in flight
    kDone,       // CMD is gone (or never started): release and exit
  };

  int Setup();
  void Send(TimePoint now);
  void OnReply(Mailbox::Reply reply, TimePoint now);
  void OnAcquireReply(const Mailbox::Reply& reply, TimePoint now);
  void OnKeepAliveReply(const Mailbox::Reply& reply, TimePoint now);
  void OnSignal(int sig, TimePoint now);
  void Step(TimePoint now);
  void StartCommand(TimePoint now);
  void BeginStop(const std::string& why, bool lost, TimePoint now);
  void ReapIfExited();
  TimePoint KillDeadline() const;
  int PollTimeoutMs(TimePoint now) const;
  void WaitForEvents(TimePoint now);
  milliseconds NextBackoff();
  void WatchUntilChanged(paxos::Slot after_slot, TimePoint now);
  int Finish();
  void Say(const std::string& line) {
    err_ << "ballotctl: lock run " << request_.name << ": " << line << "\n";
  }

  const LockRunRequest& request_;
  const LockRunTiming& timing_;
  std::ostream& err_;
  std::string path_;  // CMD resolved in PATH
  int signal_fd_ = -1;
  // Before client_: the client's callbacks post here until the client is destroyed.
  Mailbox mailbox_;
  std::unique_ptr<Client> client_;
  std::mt19937_64 rng_;  // backoff jitter
  // While another holds the lock: one watch at a time (Client::Watch blocks), from the slot of
  // the refused acquire, so the next acquire goes out when the lock changes instead of polling.
  std::thread watcher_;
  bool watching_ = false;
  bool watch_unsupported_ = false;  // the cluster cannot watch: back off and retry instead

  Phase phase_ = Phase::kAcquiring;
  bool in_flight_ = false;  // one acquire or keepalive at a time
  bool ever_sent_ = false;  // an acquire went out: this process may hold the lock
  TimePoint next_send_at_{};
  milliseconds backoff_{0};
  bool said_waiting_ = false;
  TimePoint last_warning_{};
  int fatal_exit_ = -1;  // >= 0: give up with this status

  std::optional<TimePoint> confirmed_;  // S: send time of the last confirmed acquire/keepalive
  uint64_t token_ = 0;
  pid_t child_ = -1;                       // CMD, also its process group id; -1 before it starts
  bool child_done_ = false;                // reaped
  int child_status_ = 0;                   // its wait status once reaped
  std::optional<TimePoint> stop_started_;  // when CMD was sent SIGTERM
  bool killed_ = false;                    // SIGKILL sent to CMD's group
  bool lost_ = false;  // the hold ended (or could not be confirmed) while CMD ran
  int signal_ = 0;     // the first SIGTERM / SIGINT / SIGHUP received
};

int LockRunner::Setup() {
  std::optional<std::string> path = ResolveCommand(request_.command[0]);
  if (!path.has_value()) {
    Say(request_.command[0] + ": command not found");
    return kLockRunExitNotFound;
  }
  path_ = *path;
  // An inherited SIGCHLD = SIG_IGN would make the kernel reap CMD by itself, and its exit
  // status would be lost.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  PCHECK(sigaction(SIGCHLD, &default_action, nullptr) == 0) << "sigaction";
  // Blocked before the client starts its io thread, which inherits the mask: these signals are
  // only ever read from the signalfd, on this thread. A stop signal the caller made us ignore
  // stays ignored (nohup's SIGHUP; SIGINT of a background job of a non-interactive shell).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    struct sigaction current {};
    if (sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
    sigaddset(&set, sig);
  }
  PCHECK(pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0) << "pthread_sigmask";
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  PCHECK(signal_fd_ >= 0) << "signalfd";

  ClientOptions options;
  options.cluster_id = request_.cluster.cluster_id;
  options.members = ParseCluster(request_.cluster.cluster).value();  // checked by the caller
  // One silent node must not use up the hold: move on to the next after ttl/5 at most.
  options.attempt_timeout = std::clamp(timing_.ttl / 5, milliseconds(50), milliseconds(500));
  Result<std::unique_ptr<Client>> client = Client::Create(std::move(options));
  if (!client.ok()) {
    err_ << "ballotctl: " << client.status().ToString() << "\n";
    return kCtlExitUsage;
  }
  client_ = std::move(client).value();
  return -1;
}

int LockRunner::Run() {
  if (const int early = Setup(); early >= 0) return early;
  TimePoint now = BootClock::now();
  next_send_at_ = now;
  while (true) {
    Step(now);
    if (phase_ == Phase::kDone) break;
    WaitForEvents(now);
    now = BootClock::now();
  }
  return Finish();
}

// Blocks until a signal, a reply or the next deadline, then handles the signals and replies.
// Replies are taken before the caller reads the clock again, so a confirmation that arrived is
// counted before the deadlines are checked.
void LockRunner::WaitForEvents(TimePoint now) {
  pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {mailbox_.fd(), POLLIN, 0}};
  const int ready = poll(fds, 2, PollTimeoutMs(now));
  PCHECK(ready >= 0 || errno == EINTR) << "poll";
  const TimePoint after = BootClock::now();
  signalfd_siginfo info[8];
  ssize_t n;
  while ((n = read(signal_fd_, info, sizeof(info))) > 0) {
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(info[0]); ++i) {
      OnSignal(static_cast<int>(info[i].ssi_signo), after);
    }
  }
  for (Mailbox::Reply& reply : mailbox_.TakeAll()) OnReply(std::move(reply), after);
}

int LockRunner::PollTimeoutMs(TimePoint now) const {
  TimePoint wake = now + std::chrono::seconds(1);  // a bound, should a wake-up ever be missed
  const bool sending = phase_ == Phase::kAcquiring ||
                       (!lost_ && (phase_ == Phase::kRunning || phase_ == Phase::kStopping));
  if (sending && !in_flight_) wake = std::min(wake, next_send_at_);
  if (confirmed_ && !lost_ && phase_ != Phase::kAcquiring) {
    wake = std::min(wake, timing_.TermAt(*confirmed_));
  }
  if (phase_ == Phase::kStopping && !killed_) wake = std::min(wake, KillDeadline());
  const auto left = std::chrono::ceil<milliseconds>(wake - now).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1000));
}

void LockRunner::Step(TimePoint now) {
  if (fatal_exit_ >= 0) {
    phase_ = Phase::kDone;
    return;
  }
  ReapIfExited();
  switch (phase_) {
    case Phase::kAcquiring:
      if (!in_flight_ && now >= next_send_at_) Send(now);
      return;
    case Phase::kQuitting:
      if (!in_flight_) phase_ = Phase::kDone;
      return;
    case Phase::kRunning:
    case Phase::kStopping:
      if (!lost_ && now >= timing_.TermAt(*confirmed_)) {
        if (child_done_) {
          // CMD ended while this process could not look (it was frozen, or starved): the
          // hold may have run out while CMD still worked, so this counts as lost too.
          Say("the lock could not be confirmed in time; CMD has exited");
          lost_ = true;
        } else {
          BeginStop("could not confirm the lock in time (its TTL ends within " +
                        std::to_string((timing_.margin + timing_.grace).count()) + " ms)",
                    /*lost=*/true, now);
        }
      }
      if (child_done_) {
        phase_ = Phase::kDone;
        return;
      }
      if (!lost_ && !in_flight_ && now >= next_send_at_) Send(now);
      if (phase_ == Phase::kStopping && !killed_ && now >= KillDeadline()) {
        Say("CMD still running after the grace period: SIGKILL");
        kill(-child_, SIGKILL);
        killed_ = true;
      }
      return;
    case Phase::kDone:
      return;
  }
}

// Sends the next acquire (before CMD runs) or keepalive (while it runs), asynchronously.
void LockRunner::Send(TimePoint now) {
  const bool keepalive = phase_ != Phase::kAcquiring;
  milliseconds timeout(request_.cluster.timeout_ms);
  std::string payload;
  if (keepalive) {
    // An answer after the SIGTERM time is of no use: CMD is being stopped by then.
    const auto left = std::chrono::ceil<milliseconds>(timing_.TermAt(*confirmed_) - now);
    timeout = std::clamp(left, milliseconds(1), timeout);
    payload = samples::LockService::EncodeKeepAlive(request_.name, request_.owner);
  } else {
    payload = samples::LockService::EncodeAcquire(request_.name, request_.owner,
                                                  static_cast<uint64_t>(timing_.ttl.count()));
    ever_sent_ = true;
  }
  in_flight_ = true;
  Mailbox* mailbox = &mailbox_;
  client_->ProposeAsync(std::move(payload), timeout,
                        [mailbox, keepalive, now](Result<Client::ProposeReply> result) {
                          mailbox->Post({keepalive, now, std::move(result)});
                        });
}

void LockRunner::OnReply(Mailbox::Reply reply, TimePoint now) {
  if (reply.watch_ended) {
    watching_ = false;
    if (phase_ != Phase::kAcquiring) return;
    // A change (or a wait that ran out): acquire now. A failed watch: after a backoff, so that a
    // watch refused at once ("too many watches") never turns into a busy loop.
    next_send_at_ = reply.watch_failed ? now + NextBackoff() : now;
    return;
  }
  in_flight_ = false;
  if (reply.keepalive) {
    OnKeepAliveReply(reply, now);
  } else {
    OnAcquireReply(reply, now);
  }
}

milliseconds LockRunner::NextBackoff() {
  const milliseconds cap = std::clamp(timing_.ttl / 10, milliseconds(20), milliseconds(1000));
  backoff_ = std::clamp(backoff_ * 2, milliseconds(20), cap);
  // Jitter, so that waiters that lost together do not keep asking together.
  std::uniform_int_distribution<int64_t> half(backoff_.count() / 2, backoff_.count());
  return milliseconds(half(rng_));
}

void LockRunner::WatchUntilChanged(paxos::Slot after_slot, TimePoint now) {
  if (watching_ || after_slot == 0) return;
  if (watcher_.joinable()) watcher_.join();  // the last one has posted: it is done
  watching_ = true;
  // Until the watch returns, no acquire: it answers on a change, or after `wait` with none.
  next_send_at_ = now + kWatchCallMax;
  Client* client = client_.get();
  Mailbox* mailbox = &mailbox_;
  const std::string query = samples::LockService::EncodeGet(request_.name);
  watcher_ = std::thread([this, client, mailbox, query, after_slot] {
    Client::WatchOptions options;
    options.wait = kWatchWait;
    Result<Client::WatchReply> r = client->Watch(query, after_slot, kWatchCallMax, options);
    if (!r.ok() && r.status().code() == StatusCode::kInvalidArgument) {
      watch_unsupported_ = true;  // read by the run loop only after the Post below
    }
    Mailbox::Reply ended{false, BootClock::now(), Status(StatusCode::kAborted, "watch"), true,
                         !r.ok()};
    mailbox->Post(std::move(ended));
  });
}

void LockRunner::OnAcquireReply(const Mailbox::Reply& reply, TimePoint now) {
  if (phase_ != Phase::kAcquiring) return;  // kQuitting: Finish releases whatever it got
  if (!reply.result.ok()) {
    if (now - last_warning_ >= std::chrono::seconds(5)) {
      Say("acquire failed (retrying): " + reply.result.status().ToString());
      last_warning_ = now;
    }
    next_send_at_ = now + NextBackoff();
    return;
  }
  const Outcome& outcome = reply.result.value().outcome;
  if (outcome.code == StatusCode::kAborted) {
    if (!said_waiting_) Say("waiting: " + outcome.message);
    said_waiting_ = true;
    next_send_at_ = now + NextBackoff();
    // Held by another: wait for the lock's next change (a release, or an expiry the leader's
    // clock tick applies) after the refused acquire; the backoff stays as the fallback.
    if (!watch_unsupported_) WatchUntilChanged(reply.result.value().slot, now);
    return;
  }
  Result<samples::LockService::Grant> grant =
      outcome.code == StatusCode::kOk
          ? samples::LockService::DecodeGrant(outcome.data)
          : Result<samples::LockService::Grant>(Status(outcome.code, outcome.message));
  if (!grant.ok()) {
    Say("acquire refused: " + grant.status().ToString());
    fatal_exit_ = kCtlExitFailed;
    return;
  }
  if (now >= timing_.TermAt(reply.sent)) {
    // The answer took so long that CMD would have to stop at once: ask again (an acquire by
    // the holder extends its hold, with the same token).
    next_send_at_ = now;
    return;
  }
  confirmed_ = reply.sent;
  token_ = grant.value().token;
  backoff_ = milliseconds(0);
  next_send_at_ = timing_.NextKeepAlive(reply.sent);
  StartCommand(now);
}

void LockRunner::OnKeepAliveReply(const Mailbox::Reply& reply, TimePoint now) {
  if (lost_) return;  // nothing undoes a stop for a lost hold
  if (!reply.result.ok()) {
    if (now - last_warning_ >= std::chrono::seconds(1)) {
      Say("keepalive failed (retrying): " + reply.result.status().ToString());
      last_warning_ = now;
    }
    next_send_at_ = now + timing_.retry_pause;
    return;
  }
  const Outcome& outcome = reply.result.value().outcome;
  if (outcome.code != StatusCode::kOk) {
    BeginStop("keepalive refused: " + outcome.message, /*lost=*/true, now);
    return;
  }
  Result<samples::LockService::Grant> grant = samples::LockService::DecodeGrant(outcome.data);
  if (!grant.ok() || grant.value().token != token_) {
    // A keepalive never changes the token; another one means this hold ended in between.
    BeginStop("keepalive answered with another token", /*lost=*/true, now);
    return;
  }
  confirmed_ = std::max(*confirmed_, reply.sent);
  next_send_at_ = timing_.NextKeepAlive(*confirmed_);
}

void LockRunner::StartCommand(TimePoint now) {
  Spawned spawned =
      SpawnCommand(path_, request_.command, CommandEnvironment(token_, request_.name));
  if (spawned.pid < 0) {
    Say(std::string("cannot start CMD: fork: ") + std::strerror(spawned.exec_error));
    fatal_exit_ = kCtlExitFailed;
    return;
  }
  child_ = spawned.pid;
  phase_ = Phase::kRunning;
  if (spawned.exec_error != 0) {
    Say("cannot run " + path_ + ": " + std::strerror(spawned.exec_error));
    return;  // it exits 126 or 127; handled like any exit of CMD
  }
  Say("holding the lock with token " + std::to_string(token_) + "; started CMD (pid " +
      std::to_string(child_) + "); SIGTERM " +
      std::to_string(
          std::chrono::duration_cast<milliseconds>(timing_.TermAt(*confirmed_) - now).count()) +
      " ms from now unless a keepalive is confirmed");
}

TimePoint LockRunner::KillDeadline() const {
  TimePoint deadline = *stop_started_ + timing_.grace;
  if (confirmed_) deadline = std::min(deadline, timing_.KillAt(*confirmed_));
  return deadline;
}

void LockRunner::BeginStop(const std::string& why, bool lost, TimePoint now) {
  lost_ = lost_ || lost;
  if (stop_started_) return;
  stop_started_ = now;
  phase_ = Phase::kStopping;
  if (now >= KillDeadline()) {
    Say(why + ": SIGKILL to CMD");
    kill(-child_, SIGKILL);
    killed_ = true;
    return;
  }
  Say(why + ": SIGTERM to CMD, SIGKILL in " +
      std::to_string(std::chrono::ceil<milliseconds>(KillDeadline() - now).count()) + " ms");
  kill(-child_, SIGTERM);
}

void LockRunner::OnSignal(int sig, TimePoint now) {
  if (sig == SIGCHLD) return;  // Step reaps
  if (signal_ != 0) {
    if (phase_ == Phase::kStopping && !killed_) {
      Say(std::string("second signal (") + SignalName(sig) + "): SIGKILL to CMD");
      kill(-child_, SIGKILL);
      killed_ = true;
    }
    return;
  }
  signal_ = sig;
  switch (phase_) {
    case Phase::kAcquiring:
      Say(std::string("got ") + SignalName(sig) + " before holding the lock: giving up");
      phase_ = Phase::kQuitting;
      return;
    case Phase::kRunning:
      BeginStop(std::string("got ") + SignalName(sig), /*lost=*/false, now);
      return;
    default:
      return;  // already stopping or quitting
  }
}

// Reaps CMD if it has exited. Its group is SIGKILLed first, while the unreaped CMD still pins
// the group id (so the signal cannot reach a new group that reused the number): whatever CMD
// left running must not outlive the hold.
void LockRunner::ReapIfExited() {
  if (child_ < 0 || child_done_) return;
  siginfo_t info{};
  if (waitid(P_PID, static_cast<id_t>(child_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid == 0) {
    return;
  }
  kill(-child_, SIGKILL);
  PCHECK(waitpid(child_, &child_status_, 0) == child_) << "waitpid";
  child_done_ = true;
}

int LockRunner::Finish() {
  if (ever_sent_) {
    // Best effort: if this process holds the lock (or an acquire of it may still land), free
    // it now rather than after its TTL. Refused if it does not hold it. Not worth waiting for
    // longer than a TTL: by then the hold has run out anyway.
    Result<Client::ProposeReply> released =
        client_->Propose(samples::LockService::EncodeRelease(request_.name, request_.owner),
                         std::min(milliseconds(request_.cluster.timeout_ms), timing_.ttl));
    if (!released.ok()) {
      Say("could not release the lock (it expires by its TTL): " + released.status().ToString());
    } else if (released.value().outcome.code == StatusCode::kOk) {
      Say("released the lock");
    } else if (child_ >= 0) {
      Say("release refused: " + released.value().outcome.message);
    }
  }
  if (fatal_exit_ >= 0 && child_ < 0) return fatal_exit_;
  if (lost_) return kLockRunExitLost;
  if (signal_ != 0) return 128 + signal_;
  if (fatal_exit_ >= 0) return fatal_exit_;
  if (WIFSIGNALED(child_status_)) return 128 + WTERMSIG(child_status_);
  return WEXITSTATUS(child_status_);
}

}  // namespace

int RunLockRun(const LockRunRequest& request, std::ostream& err) {
  CHECK(!request.command.empty());
  LockRunner runner(request, err);
  return runner.Run();
}

}  // namespace ballot::tools
