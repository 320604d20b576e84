// ballotctl lock run: runs a command only while this process holds a lock of the lock sample
// (statemachine/samples/lock.h), and hands the command the lock's fencing token.
//
//   ballotctl --cluster=... lock run NAME --owner=ID --ttl_ms=N [--grace_ms=G] -- CMD [ARGS...]
//
// 1. Waits until it holds NAME: acquire(NAME, ID, N). While another owner holds it, a watch on
//    the lock from the refused acquire's slot (Client::Watch, one long poll of up to 1 s) sends
//    the next acquire as soon as the lock changes (a release, or an expiry the leader's clock
//    tick applies); a jittered backoff when the cluster does not answer or cannot watch.
// 2. Starts CMD (searched in PATH) with BALLOT_FENCING_TOKEN=<token> and BALLOT_LOCK_NAME=NAME
//    added to its environment, in a process group of its own, with stdin/stdout/stderr
//    inherited and no other descriptor. CMD gets PR_SET_PDEATHSIG = SIGKILL: if lock run dies
//    for any reason (even SIGKILL), the kernel kills CMD at once.
// 3. Keeps the lock alive (a keepalive every N/3 ms, retried at once on a failure) and stops CMD
//    as soon as it can no longer be sure it holds the lock (LockRunTiming below): SIGTERM to
//    CMD's process group, SIGKILL G ms later, and exits 4 once CMD is gone.
// 4. When CMD exits by itself: SIGKILLs whatever is left of its process group, releases the lock
//    and exits with CMD's status (128 + signal if a signal ended it).
// 5. On SIGTERM, SIGINT or SIGHUP: stops CMD the same way (still keeping the lock alive during
//    the grace period; a second signal SIGKILLs at once), releases the lock and exits
//    128 + that signal. A signal that was ignored when lock run started (nohup's SIGHUP, SIGINT
//    of a background job in a script) stays ignored.
//
// Exit status: CMD's status; 1 the cluster refused the request as malformed (e.g. a TTL above
// its bound); 2 usage error (no --cluster, --owner or --ttl_ms; no "--" or no CMD; a TTL or grace
// period the rules below refuse); 4 the lock was lost (or could not be confirmed in time) while
// CMD ran: CMD was stopped; 127 CMD not found (nothing was acquired); 128 + signal after a
// signal to lock run. "lost" (4) wins over the other two when both happened, and also when
// lock run learns that CMD exited only after the SIGTERM time had passed (it was frozen or
// starved: the hold may have run out while CMD still worked).
//
// Every owner ID must be unique among the processes that compete for NAME: acquire by an owner
// that already holds the lock extends it, so two lock runs with one ID would both run.
#ifndef BALLOT_TOOLS_CTL_LOCK_RUN_H_
#define BALLOT_TOOLS_CTL_LOCK_RUN_H_

#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "paxos/status.h"
#include "tools/ctl/cluster_commands.h"

namespace ballot::tools {

inline constexpr int kLockRunExitLost = 4;
inline constexpr int kLockRunExitNotFound = 127;

// The clock lock run measures holds with: CLOCK_BOOTTIME, monotonic like steady_clock but
// counting time the machine spent suspended (steady_clock, CLOCK_MONOTONIC, stops then, and a
// hold measured with it would outlive a suspend by the suspend's length).
struct BootClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<BootClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept;
};

// How lock run times its hold, all derived from the TTL.
//
// Let S be the time (BootClock, taken just BEFORE sending) at which lock run sent the last
// acquire or keepalive that the cluster confirmed. The grant's hold can only have started
// later, so it lasts at least until S + ttl: that is all lock run knows. Then
//   keepalive at   S + ttl/3                       (and at once again after a failed one)
//   SIGTERM CMD at S + ttl - margin - grace        (unless a later keepalive was confirmed)
//   SIGKILL CMD at S + ttl - margin
// so CMD is dead `margin` before any other owner can be granted the lock. The margin,
// max(ttl/5, 100 ms), absorbs: lock run's own scheduling delay in reacting, the kernel's
// delivery of SIGKILL, rate drift between this machine's clock and the Ballot leaders' clocks,
// and skew between the wall clocks of successive Ballot leaders (lock expiry runs on the
// leaders' stamped time, docs/fencing.md "Clocks and TTLs"). Choose the TTL so that ttl/5
// exceeds all of these together. The grace period defaults to min(ttl/10, 1000 ms); a
// grace period is refused unless margin + grace <= ttl/2, so that after the keepalive at
// S + ttl/3 at least ttl/6 remains to retry it before CMD is told to stop.
struct LockRunTiming {
  std::chrono::milliseconds ttl{0};
  std::chrono::milliseconds margin{0};
  std::chrono::milliseconds grace{0};
  std::chrono::milliseconds keepalive_every{0};  // ttl/3
  std::chrono::milliseconds retry_pause{0};      // after a failed keepalive: ttl/20, >= 10 ms

  // From the send time S of the last confirmed acquire/keepalive (see above).
  BootClock::time_point NextKeepAlive(BootClock::time_point s) const { return s + keepalive_every; }
  BootClock::time_point TermAt(BootClock::time_point s) const { return KillAt(s) - grace; }
  BootClock::time_point KillAt(BootClock::time_point s) const { return s + ttl - margin; }
};

inline constexpr std::chrono::milliseconds kLockRunTtlMin{500};
inline constexpr std::chrono::milliseconds kLockRunMarginMin{100};
inline constexpr std::chrono::milliseconds kLockRunGraceDefaultMax{1000};

// The timing for --ttl_ms and --grace_ms (grace_ms < 0: the default). kInvalidArgument with a
// message for the user if ttl_ms is outside [kLockRunTtlMin, one day] or margin + grace > ttl/2.
Result<LockRunTiming> MakeLockRunTiming(uint64_t ttl_ms, int64_t grace_ms);

struct LockRunRequest {
  ClusterFlags cluster;  // timeout_ms bounds each acquire, keepalive and release
  std::string name;
  std::string owner;
  LockRunTiming timing;
  std::vector<std::string> command;  // CMD and its arguments; not empty
};

// Parses the positional arguments of "lock run": NAME, then "--", then CMD [ARGS...] (ballotctl
// puts the "--" and what follows it back after the positional words). kInvalidArgument with a
// message for the user otherwise.
Status ParseLockRunArgs(const std::vector<std::string>& args, std::string* name,
                        std::vector<std::string>* command);

// ballotctl's entry point: checks the arguments and flags (usage errors: message on `err`, exit
// 2), then RunLockRun. ttl_ms is nullopt when --ttl_ms was not given; grace_ms < 0: default.
int RunLockRunCommand(const ClusterFlags& cluster, const std::vector<std::string>& args,
                      const std::string& owner, std::optional<uint64_t> ttl_ms, int64_t grace_ms,
                      std::ostream& err = std::cerr);

// Runs the command as described at the top of this file; returns the exit status. Messages go
// to `err`, one line each, prefixed "ballotctl: lock run NAME: ". Must be called on the main
// thread of a single-threaded process (it blocks SIGCHLD, SIGTERM, SIGINT and SIGHUP before it
// starts any thread, and CMD's parent-death signal follows the thread that forked it), and at
// most once per process.
int RunLockRun(const LockRunRequest& request, std::ostream& err = std::cerr);

}  // namespace ballot::tools

#endif  // BALLOT_TOOLS_CTL_LOCK_RUN_H_
