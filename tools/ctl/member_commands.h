// ballotctl's membership commands (docs/membership.md), through the leader (net/client/client.h):
//
//   ballotctl --cluster=... member list [--json]
//   ballotctl --cluster=... member add ID@HOST:PORT [--wait_ms=N]
//   ballotctl --cluster=... member remove ID [--wait_ms=N]
//
// Exit status as the other cluster commands (tools/ctl/cluster_commands.h): 0 done, 1 failed
// (refused, with the leader's reason, or not done within wait_ms), 2 usage error.
#ifndef BALLOT_TOOLS_CTL_MEMBER_COMMANDS_H_
#define BALLOT_TOOLS_CTL_MEMBER_COMMANDS_H_

#include <iostream>
#include <string>
#include <vector>

#include "tools/ctl/cluster_commands.h"

namespace ballot::tools {

// One line per member, by id: "<id> <host:port> voter|learner". With json exactly one object:
//   {"members":[{"id":1,"address":"127.0.0.1:7001","voter":true},...]}
int RunMemberList(const ClusterFlags& flags, bool json, std::ostream& out = std::cout,
                  std::ostream& err = std::cerr);

// Adds ID at HOST:PORT as a learner and waits (at most wait_ms) until the leader has promoted it
// to voter, which it does once the new node (started with `ballotd --join`) has caught up.
// Prints "node ID at HOST:PORT is a voter".
int RunMemberAdd(const ClusterFlags& flags, const std::string& spec, int wait_ms,
                 std::ostream& out = std::cout, std::ostream& err = std::cerr);

// Removes ID (a learner or a voter; the leader hands over first if ID leads) and waits until it
// has left the configuration. Prints "node ID removed".
int RunMemberRemove(const ClusterFlags& flags, const std::string& id, int wait_ms,
                    std::ostream& out = std::cout, std::ostream& err = std::cerr);

}  // namespace ballot::tools

#endif  // BALLOT_TOOLS_CTL_MEMBER_COMMANDS_H_
