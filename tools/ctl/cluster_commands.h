// ballotctl commands that talk to a running cluster through ballot::Client (net/client/client.h).
//
// Each Run* function is one command for ballotctl's dispatcher. It parses nothing but its
// ClusterFlags and arguments, writes its result to `out` and any failure to `err` (one line,
// prefixed "ballotctl: "), and returns the exit status:
//   0  success
//   1  the command could not do its work (no leader, no answer within the timeout, refused)
//   2  usage error (malformed --cluster, a non-positive timeout, bad arguments)
// Every command finishes within about timeout_ms, whatever the cluster does.
#ifndef BALLOT_TOOLS_CTL_CLUSTER_COMMANDS_H_
#define BALLOT_TOOLS_CTL_CLUSTER_COMMANDS_H_

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/client/client.h"
#include "net/cluster_config.h"
#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::tools {

inline constexpr int kCtlExitOk = 0;
inline constexpr int kCtlExitFailed = 1;
inline constexpr int kCtlExitUsage = 2;

struct ClusterFlags {
  std::string cluster;      // "1@127.0.0.1:7001,2@127.0.0.1:7002,..." (see ballot::ParseCluster)
  uint64_t cluster_id = 0;  // 0 = learnt from the first server that answers (net/client/client.h)
  int timeout_ms = 5000;    // the whole command's deadline
};

// ParseCluster lives in net/cluster_config.h (ballot::ParseCluster) so that the server parses
// --cluster the same way; it is visible here unqualified.

// Proposes next(count) to the sequence-generator sample and prints the numbers handed out, one
// per line. Usage error for count outside 1..SequenceGenerator::kCountMax.
// A client for --cluster (the cluster id pinned by --cluster_id, else learnt from the first
// server that answers), or null after printing why and setting *exit_code. Shared by every
// ballotctl command that talks to the cluster.
std::unique_ptr<Client> MakeClient(const ClusterFlags& flags, std::ostream& err, int* exit_code);

int RunSeqNext(const ClusterFlags& flags, uint64_t count, std::ostream& out = std::cout,
               std::ostream& err = std::cerr);

// Asks every member for its status and prints one row per member: id, address, role, epoch as
// round.node and raw, leader id, chosen (chosen_below: every slot below it is chosen), applied
// (applied_below), lease. Unreachable members get role "unreachable" and their error is printed
// under the table. With json, prints exactly one JSON object and a newline:
//   {"nodes":[{"id":1,"address":"127.0.0.1:7001","reachable":true,"role":"leader",
//              "epoch":65537,"leader_id":1,"chosen":12,"applied":12,"lease":true},
//             {"id":2,"address":"127.0.0.1:7002","reachable":false,"error":"..."}]}
// Exit 0 if at least one member answered.
int RunStatus(const ClusterFlags& flags, bool json, std::ostream& out = std::cout,
              std::ostream& err = std::cerr);

// Prints "<id> <epoch>" of the leader (Client::FindLeader).
int RunLeader(const ClusterFlags& flags, std::ostream& out = std::cout,
              std::ostream& err = std::cerr);

// Moves leadership to node `to` (0: the most up-to-date voter, picked by the leader) and prints
// "<id> <epoch>" of the new leader once it leads (Client::TransferLeadership). Exit 1 with the
// reason if the transfer failed (the old leader then keeps leading).
int RunLeaderTransfer(const ClusterFlags& flags, uint64_t to, std::ostream& out = std::cout,
                      std::ostream& err = std::cerr);

// Asks node `node` to take a snapshot now; prints "node N snapshot covers slots below S" once it
// is durable there. Usage error without a node id.
int RunSnapshot(const ClusterFlags& flags, uint64_t node, std::ostream& out = std::cout,
                std::ostream& err = std::cerr);

// The key-value sample:
//   get KEY                   prints the value; exit 1 (and a message) if the key is absent
//   put KEY VALUE             prints "ok slot=<slot> epoch=<epoch>"
//   delete KEY                ditto
//   cas KEY EXPECTED NEW      compare-and-set; exit 1 with the reason if refused
//   create KEY VALUE          compare-and-set expecting the key absent
int RunKv(const ClusterFlags& flags, const std::vector<std::string>& args,
          std::ostream& out = std::cout, std::ostream& err = std::cerr);

// The usage text of the commands above, for ballotctl's help.
const char* ClusterCommandsUsage();

}  // namespace ballot::tools

#endif  // BALLOT_TOOLS_CTL_CLUSTER_COMMANDS_H_
