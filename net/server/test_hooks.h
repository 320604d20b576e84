// Test hooks of the server: slow disks and damaged snapshot chunks on demand, for the
// real-process tests (ballotd's --TEST_* flags). Not part of the installed API: only
// CreateServerWithTestHooks takes them.
#ifndef BALLOT_NET_SERVER_TEST_HOOKS_H_
#define BALLOT_NET_SERVER_TEST_HOOKS_H_

#include <chrono>
#include <cstdint>
#include <memory>

#include "net/server/server.h"

namespace ballot {

struct ServerTestHooks {
  // Test hook: after this many commits, the storage thread stalls once for TEST_storage_stall
  // before the next write, as a disk occasionally does (fsyncs of ~1 s happen on this
  // hardware). 0: never.
  uint64_t TEST_stall_storage_after_commits = 0;
  std::chrono::milliseconds TEST_storage_stall{0};
  // Test hook: every background job (a snapshot write, a received snapshot's commit) starts
  // this late, as on a slow disk or with a large state. 0: at once.
  std::chrono::milliseconds TEST_background_delay{0};
  // Test hook: DriverOptions::TEST_corrupt_every_nth_chunk (net/server/driver.h).
  uint64_t TEST_corrupt_every_nth_chunk = 0;
};

// Server::Create with test hooks (Server::Create passes none).
Result<std::unique_ptr<Server>> CreateServerWithTestHooks(ServerOptions options,
                                                          std::unique_ptr<StateMachine> machine,
                                                          ServerTestHooks hooks);

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_TEST_HOOKS_H_
