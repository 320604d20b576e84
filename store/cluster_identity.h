// ClusterIdentity: which cluster a data directory belongs to, written once the node has safely
// joined it (safe bootstrap, net/server/server.h). Kept beside the LMDB store, in DIR/CLUSTER, a
// small checksummed text file an operator can read:
//
//   ballot cluster identity 2
//   cluster_id 0x5c1f0e9a7d3b2a10
//   node_id 2
//   joined 1,2,3
//   bootstrap 1@10.0.0.1:7001,2@10.0.0.2:7001,3@10.0.0.3:7001
//   crc32c 0x8d1f2a3b          <- CRC-32C of every line above, newlines included
//
// "joined" lists the members this directory has seen join the cluster (itself included): a peer
// in that list that comes back with an empty data directory has lost its data. "bootstrap" is
// the configuration the cluster was created with (--cluster when this directory was created),
// or "join" for a node that joined an existing cluster (ballotd --join) and learnt the
// configuration from the log: a restart uses it, whatever --cluster says then, for as long as
// no snapshot holds the configuration (membership lives in the log, paxos/configuration.h).
// Format 1 had no bootstrap line; it is read (bootstrap unknown) and rewritten as 2 on the next
// save. Absent file: the directory has not joined a cluster (it is empty, or was written before
// this file existed).
#ifndef BALLOT_STORE_CLUSTER_IDENTITY_H_
#define BALLOT_STORE_CLUSTER_IDENTITY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"

namespace ballot::store {

inline constexpr char kClusterIdentityFile[] = "CLUSTER";
inline constexpr uint32_t kClusterIdentityVersion = 2;
inline constexpr size_t kClusterIdentityBytesMax = 64 << 10;

struct ClusterIdentity {
  uint64_t cluster_id = 0;
  paxos::NodeId node_id = paxos::kNoNode;
  std::vector<paxos::NodeId> joined_members;  // increasing; includes node_id
  // The bootstrap configuration, id -> "host:port", every member a voter; empty: this node
  // joined an existing cluster (--join). nullopt: not recorded (a format 1 file).
  std::optional<std::map<paxos::NodeId, std::string>> bootstrap;

  friend bool operator==(const ClusterIdentity&, const ClusterIdentity&) = default;
};

// "0x" and 16 hex digits: how cluster ids are shown to operators.
std::string FormatClusterId(uint64_t cluster_id);

// nullopt if DIR/CLUSTER does not exist. kCorruption if it does not parse or fails its checksum
// (never treated as absent: that would make the node look empty); kIoError if it cannot be read.
Result<std::optional<ClusterIdentity>> LoadClusterIdentity(const std::string& dir);

// Replaces DIR/CLUSTER atomically and durably (temporary file, fsync, rename, fsync of DIR).
// kInvalidArgument for an identity that would not load back; kIoError.
Status SaveClusterIdentity(const std::string& dir, const ClusterIdentity& identity);

}  // namespace ballot::store

#endif  // BALLOT_STORE_CLUSTER_IDENTITY_H_
