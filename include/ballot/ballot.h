// Ballot's public API: everything a replicated service needs.
//   - ballot::StateMachine (statemachine/state_machine.h): subclass it; Apply runs on every
//     replica in log order, Query answers reads, Snapshot/Restore move the state.
//   - ballot::Server and ballot::ServerOptions (net/server/server.h): one member of the cluster
//     serving your StateMachine over TCP, its log in LMDB.
//   - ballot::Client (net/client/client.h): proposes commands and reads, finds the leader,
//     retries without applying a command twice.
//   - ballot::ParseCluster (net/cluster_config.h): "1@host:port,2@host:port,..." -> members.
// Installed by `cmake --install`; use it with find_package(ballot) and ballot::ballot, or
// pkg-config ballot. The headers below are the only ones installed.
#ifndef BALLOT_BALLOT_H_
#define BALLOT_BALLOT_H_

#include "net/client/client.h"
#include "net/client/election.h"
#include "net/cluster_config.h"
#include "net/server/server.h"
#include "paxos/status.h"
#include "statemachine/state_machine.h"

#endif  // BALLOT_BALLOT_H_
