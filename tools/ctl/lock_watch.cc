#include "tools/ctl/lock_watch.h"

#include <chrono>
#include <optional>
#include <thread>

#include "statemachine/samples/lock.h"
#include "statemachine/watchable.h"

namespace ballot::tools {

namespace {

using samples::LockService;
using std::chrono::milliseconds;

// How long one long poll waits on the server: also how soon a stop request is noticed.
constexpr milliseconds kWait{500};

std::string Line(const std::optional<LockService::Holder>& holder) {
  if (!holder) return "-";
  return holder->owner + " " + std::to_string(holder->token);
}

}  // namespace

int RunLockWatch(const ClusterFlags& flags, const std::string& name, const std::atomic<bool>& stop,
                 std::ostream& out, std::ostream& err) {
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const std::string query = LockService::EncodeGet(name);
  const milliseconds timeout(flags.timeout_ms);

  // Where to start: the current state, confirmed by the leader.
  Client::WatchOptions first;
  first.linearizable = true;
  Result<Client::WatchReply> start = client->Watch(query, Watchable::kCurrentState, timeout, first);
  if (!start.ok()) {
    err << "ballotctl: " << start.status().ToString() << "\n";
    return kCtlExitFailed;
  }
  if (!start.value().changed) {  // a server that does not know kCurrentState
    err << "ballotctl: the server did not report the current state of the lock\n";
    return kCtlExitFailed;
  }
  auto holder = LockService::DecodeGet(start.value().data);
  if (!holder.ok()) {
    err << "ballotctl: " << holder.status().ToString() << "\n";
    return kCtlExitFailed;
  }
  std::string last_line = Line(holder.value());
  out << last_line << std::endl;
  paxos::Slot after = start.value().slot;

  Client::WatchOptions next;
  next.wait = kWait;
  while (!stop.load()) {
    Result<Client::WatchReply> r = client->Watch(query, after, timeout, next);
    if (!r.ok()) {
      if (r.status().code() == StatusCode::kInvalidArgument) {
        err << "ballotctl: " << r.status().ToString() << "\n";
        return kCtlExitFailed;
      }
      // A leader change, a dead replica, too many watches: try again from the same slot.
      err << "ballotctl: watch: " << r.status().ToString() << " (retrying)\n";
      std::this_thread::sleep_for(milliseconds(100));
      continue;
    }
    if (!r.value().changed) continue;
    auto changed = LockService::DecodeGet(r.value().data);
    if (!changed.ok()) {
      err << "ballotctl: " << changed.status().ToString() << "\n";
      return kCtlExitFailed;
    }
    if (r.value().gap) {
      err << "ballotctl: watch: changes before slot " << r.value().slot
          << " were forgotten by the replicas; continuing from there\n";
    }
    after = r.value().slot;
    std::string line = Line(changed.value());
    if (line == last_line) continue;  // e.g. the state after a gap equals the last one printed
    last_line = std::move(line);
    out << last_line << std::endl;
  }
  return kCtlExitOk;
}

}  // namespace ballot::tools
