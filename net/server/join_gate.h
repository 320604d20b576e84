// JoinGate: when a node may take part in the protocol (safe bootstrap, issue 11 item 1).
//
// A Paxos acceptor that forgets what it promised breaks safety: a node whose data directory was
// wiped must never vote as if it were blank. So a node decides from its data directory and from
// its peers' Hellos (net/wire.h: DataState, joined members) whether to promise or accept at all:
//
//   - A node that has joined records it in DIR/CLUSTER (store/cluster_identity.h): the cluster
//     id and the members it has seen join ("joined"). It says kEstablished in its Hellos, with
//     that list. When an established peer says it is established too, the node adds the peer to
//     its list (durably, before answering). It takes part only once a majority of the members,
//     itself included, list it: from then on every majority holds a member that remembers that
//     it joined.
//   - A node with an EMPTY data directory (no DIR/CLUSTER, no protocol state) says kEmpty and
//     waits. If any peer lists it as joined, its data was lost: it refuses, with a message saying
//     what to do, and the process exits having promised nothing. Once a majority of the members,
//     itself included, said kEmpty (the cluster is being created) or kEstablished without
//     listing it (it is a founding member that starts after the others created the cluster and
//     has never taken part), it records the identity, tells its peers (reconnecting with the new
//     Hello) and then waits, as an established node, until a majority lists it.
//
// Why this is safe: a node took part only after a majority had durably listed it; a wiped node
// takes part again only after a majority said it is not listed. Two majorities share a member,
// which listed it and would have said so, unless that member lost its data too; a majority
// losing their disks is beyond what any quorum protocol survives, and the refusal then comes
// from whichever listing member is reachable.
//
// Membership changes (docs/membership.md): a node started with --join on an empty data directory
// does not create a cluster. It waits until a majority of the other members it was given
// (--cluster) say they are established and do not list it, then records the identity (bootstrap
// "join") and takes part; on every restart it takes part at once. It never votes before the
// cluster's log has made it a voter (it starts as a learner with an unknown configuration,
// paxos::Options::join). A peer that lists it shows that it is a member whose data was lost:
// started with --join before the operator removed it, it would otherwise learn from the log that
// it is a voter and vote blank. It then waits (logging what to do) and hears its peers again
// (the node reconnects) until the cluster has removed it: established nodes forget members that
// left the configuration (ForgetRemoved) and list every established peer that handshakes with
// them, members of the bootstrap configuration or not, so that a node added later that comes
// back empty is refused like a founding one.
//
// The cluster id is fixed when the cluster is created: --cluster_id if given, else derived from
// the initial --cluster list and --cluster_token (BootstrapClusterId in net/cluster_config.h). It
// is then recorded in DIR/CLUSTER (and in the LMDB identity record), and once recorded it is what
// the node uses, whatever --cluster says later (net/server/server.h ServerOptions::cluster_id); a
// node whose --cluster_id gives another id is refused at start. A node started with --join learns
// it from the first other member that answers; clients learn it the same way (net/client/client.h).
//
// Pure logic: no I/O, no clock, no threads. The node persists and reconnects as told.
#ifndef BALLOT_NET_SERVER_JOIN_GATE_H_
#define BALLOT_NET_SERVER_JOIN_GATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "net/wire.h"
#include "paxos/status.h"
#include "paxos/types.h"
#include "store/cluster_identity.h"

namespace ballot {

class JoinGate {
 public:
  // What the node must do after an input, in this order.
  struct Actions {
    // Write this identity to DIR/CLUSTER before anything else (before answering the Hello).
    std::optional<store::ClusterIdentity> save;
    // Tell peers the new state: reconnect every peer connection (the node just joined).
    bool reconnect = false;
    // Start promising, accepting and ticking.
    bool participate = false;
    // Stop the process with this error (kFailedPrecondition): its data was lost.
    std::optional<Status> refuse;
    // One line worth logging, if any.
    std::string note;
  };

  // `identity`: DIR/CLUSTER, or nullopt for an empty data directory. `members`: every member of
  // the initial configuration (from --cluster), self included. `data_dir` is only for messages.
  JoinGate(paxos::NodeId self, std::vector<paxos::NodeId> members, uint64_t cluster_id,
           std::optional<store::ClusterIdentity> identity, std::string data_dir);

  // This node joins an existing cluster (ballotd --join, or DIR/CLUSTER says it did): it records
  // the identity if it has none and takes part at once. Call before Start().
  void set_join(bool join) { join_ = join; }
  // The bootstrap configuration to record when the identity is created (DIR/CLUSTER
  // "bootstrap"). Call before Start().
  void set_bootstrap(std::map<paxos::NodeId, std::string> bootstrap) {
    bootstrap_ = std::move(bootstrap);
  }

  // What holds before any peer was heard (a one-node cluster joins and takes part at once).
  Actions Start();
  // One accepted Hello from a peer (its cluster id was checked by the transport).
  Actions OnPeerHello(const net::Hello& hello);
  // The configuration now in force has these members: joined members that are not among them
  // were removed, and are forgotten (a removed node may come back empty, with --join, once it
  // is added again). Nothing while the identity does not exist.
  Actions ForgetRemoved(const std::vector<paxos::NodeId>& members);
  // A --join node waiting on an empty directory (it hears its peers again from time to time).
  bool waiting_to_join() const { return join_ && !identity_; }

  bool established() const { return identity_.has_value(); }
  bool participating() const { return participating_; }
  net::DataState data_state() const {
    return established() ? net::DataState::kEstablished : net::DataState::kEmpty;
  }
  // The joined members this node reports (empty while it is empty).
  std::vector<paxos::NodeId> joined_members() const;

 private:
  size_t quorum() const { return members_.size() / 2 + 1; }
  bool IsMember(paxos::NodeId id) const;
  Actions Evaluate();

  // Constant after construction.
  const paxos::NodeId self_;
  const std::vector<paxos::NodeId> members_;
  const uint64_t cluster_id_;
  const std::string data_dir_;

  bool join_ = false;
  std::optional<std::map<paxos::NodeId, std::string>> bootstrap_;
  std::optional<store::ClusterIdentity> identity_;
  bool participating_ = false;
  // While empty: peers that said empty, or established without listing this node.
  std::set<paxos::NodeId> unaware_;
  // Once established: peers whose Hello listed this node as joined.
  std::set<paxos::NodeId> listed_by_;
  // Peers already warned about (an empty peer this node lists as joined), so it is logged once.
  std::set<paxos::NodeId> warned_;
  // --join, empty: peers whose latest Hello lists this node as joined.
  std::set<paxos::NodeId> listing_me_;
};

}  // namespace ballot

#endif  // BALLOT_NET_SERVER_JOIN_GATE_H_
