// Cluster configuration as people write it: "host:port" addresses and the cluster description
// "1@127.0.0.1:7001,2@host-b:7002,3@[::1]:7003" (ballotd, ballotctl and ballot-bench --cluster).
// The one parser for both, used by the server, the transport, the client and the tools, so that
// an address one of them accepts is accepted by all of them.
//
// Pure functions: no sockets, no name resolution (a host name is resolved when a connection is
// opened).
#ifndef BALLOT_NET_CLUSTER_CONFIG_H_
#define BALLOT_NET_CLUSTER_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot {

struct HostPort {
  std::string host;  // without IPv6 brackets
  uint16_t port = 0;
};

// "host:port" or "[v6addr]:port" -> HostPort. kInvalidArgument, saying what is wrong, for: an
// empty address, no ":port", an empty host, an IPv6 host without [brackets], a host character
// other than letters, digits, '.', '-', '_' (and ':', '%' inside brackets), or a port that is not
// a number in 1..65535.
Result<HostPort> ParseHostPort(std::string_view address);

// Parses a cluster description "1@127.0.0.1:7001,2@host-b:7002,3@[::1]:7003" into
// id -> "host:port". Spaces around an entry are ignored. kInvalidArgument, naming the entry and
// what is wrong, for: an empty description or entry, an entry without '@', an id that is not a
// decimal number in 1..paxos::kNodeIdMax, a duplicate id, an address ParseHostPort rejects, or
// two ids with the same address.
Result<std::map<paxos::NodeId, std::string>> ParseCluster(std::string_view cluster);

// The cluster id a new cluster gets at bootstrap (ballotd on a fresh data directory, without
// --join or --cluster_id), which every initial member derives alike without a coordinator:
// 64-bit FNV-1a over the initial members in id order, each formatted "id@host:port," (so the
// order of the entries in the flag does not matter), then "token=<cluster_token>" when a token
// is given (ballotd --cluster_token, like etcd's initial-cluster-token: two clusters created
// with the same member list get different ids). Never 0. After bootstrap the id lives in each
// data directory (DIR/CLUSTER) and no longer depends on the member list.
uint64_t BootstrapClusterId(const std::map<paxos::NodeId, std::string>& members,
                            std::string_view cluster_token);

// BootstrapClusterId of the members in a --cluster flag, without a token. A flag ParseCluster
// rejects is hashed as written (the caller reports the parse error anyway).
uint64_t DefaultClusterId(std::string_view cluster_flag);

}  // namespace ballot

#endif  // BALLOT_NET_CLUSTER_CONFIG_H_
