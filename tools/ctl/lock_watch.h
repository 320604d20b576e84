// ballotctl lock watch NAME: prints the holder of a lock of the lock sample, then one line per
// change of holder, until stopped (SIGINT / SIGTERM: exit 0). Built on Client::Watch, no polling.
//
// Lines: "<owner> <token>" while held, "-" while free. The first line is the current state,
// confirmed by the leader (a linearizable watch); each later one is the next change after the
// last one printed, from any replica, resumed from the last slot seen after any failure, so no
// change is skipped (a change the replicas no longer remember is reported on stderr as a gap).
// An expiry shows up once the leader applies it: at the first command stamped at or after the
// expiry time, which the leader proposes itself if nothing else comes (net/server/server.cc
// TickWatches), so about one tick after the TTL ran out by the leader's clock.
#ifndef BALLOT_TOOLS_CTL_LOCK_WATCH_H_
#define BALLOT_TOOLS_CTL_LOCK_WATCH_H_

#include <atomic>
#include <iostream>
#include <string>

#include "tools/ctl/cluster_commands.h"

namespace ballot::tools {

// Returns 0 once `stop` is set; 1 if the first state cannot be read within timeout_ms or the
// cluster refuses the watch (too many watches, not a lock server); 2 for usage errors. Later
// failures (a leader change, a dead replica) are retried until stopped.
int RunLockWatch(const ClusterFlags& flags, const std::string& name, const std::atomic<bool>& stop,
                 std::ostream& out = std::cout, std::ostream& err = std::cerr);

}  // namespace ballot::tools

#endif  // BALLOT_TOOLS_CTL_LOCK_WATCH_H_
