#include "net/server/join_gate.h"

#include <algorithm>
#include <utility>

namespace ballot {

using paxos::NodeId;

JoinGate::JoinGate(NodeId self, std::vector<NodeId> members, uint64_t cluster_id,
                   std::optional<store::ClusterIdentity> identity, std::string data_dir)
    : self_(self),
      members_(std::move(members)),
      cluster_id_(cluster_id),
      data_dir_(std::move(data_dir)),
      identity_(std::move(identity)) {}

bool JoinGate::IsMember(NodeId id) const {
  return std::find(members_.begin(), members_.end(), id) != members_.end();
}

std::vector<NodeId> JoinGate::joined_members() const {
  return identity_ ? identity_->joined_members : std::vector<NodeId>();
}

JoinGate::Actions JoinGate::Start() { return Evaluate(); }

JoinGate::Actions JoinGate::OnPeerHello(const net::Hello& hello) {
  const NodeId peer = hello.node_id;
  const bool lists_me =
      std::binary_search(hello.joined_members.begin(), hello.joined_members.end(), self_);
  if (peer == self_) return Actions{};
  if (join_ && !identity_) {
    // Joining: only established members count, and one that lists this node holds it back.
    Actions actions;
    if (hello.data_state != net::DataState::kEstablished) return actions;
    if (lists_me) {
      unaware_.erase(peer);
      if (listing_me_.insert(peer).second) {
        actions.note =
            "node " + std::to_string(peer) + " lists this node as a member that joined cluster " +
            store::FormatClusterId(cluster_id_) + " before: its data was lost. Remove it first: " +
            "`ballotctl --cluster=<members> member remove " + std::to_string(self_) +
            "`, then bring the machine back under a new id (ids are never reused): "
            "`ballotctl --cluster=<members> member add NEW_ID@HOST:PORT` and start it with "
            "--id=NEW_ID --join; waiting";
      }
      return actions;
    }
    listing_me_.erase(peer);
    if (IsMember(peer)) unaware_.insert(peer);
    return Evaluate();
  }
  if (!identity_) {
    if (hello.data_state == net::DataState::kEstablished && lists_me) {
      Actions refuse;
      refuse.refuse = Status(
          StatusCode::kFailedPrecondition,
          "data directory " + data_dir_ + " is empty but cluster " +
              store::FormatClusterId(cluster_id_) + " already exists (node " +
              std::to_string(peer) + " lists node " + std::to_string(self_) +
              " as a member that joined): this node's data was lost. Remove it and add the "
              "machine back as a new member, under a new id (ids are never reused): "
              "`ballotctl --cluster=<members> member remove " +
              std::to_string(self_) +
              "`, then `ballotctl --cluster=<members> member add NEW_ID@HOST:PORT`, then start "
              "it with --id=NEW_ID --join (or restore its data directory)");
      return refuse;
    }
    // Only members of the bootstrap configuration decide whether it is being created.
    if (hello.data_state != net::DataState::kUnknown && IsMember(peer)) unaware_.insert(peer);
    return Evaluate();
  }
  Actions actions;
  if (hello.data_state == net::DataState::kEstablished &&
      !std::binary_search(identity_->joined_members.begin(), identity_->joined_members.end(),
                          peer)) {
    auto& joined = identity_->joined_members;
    joined.insert(std::upper_bound(joined.begin(), joined.end(), peer), peer);
    actions.save = *identity_;
  }
  if (hello.data_state == net::DataState::kEstablished && lists_me && IsMember(peer)) {
    listed_by_.insert(peer);
  }
  if (hello.data_state == net::DataState::kEmpty &&
      std::binary_search(identity_->joined_members.begin(), identity_->joined_members.end(),
                         peer) &&
      warned_.insert(peer).second) {
    actions.note = "peer " + std::to_string(peer) +
                   " reports an empty data directory but joined this cluster before: its data "
                   "was lost, it will not take part";
  }
  Actions later = Evaluate();
  actions.participate = later.participate;
  if (actions.note.empty()) actions.note = later.note;
  return actions;
}

JoinGate::Actions JoinGate::ForgetRemoved(const std::vector<NodeId>& members) {
  Actions actions;
  if (!identity_ || members.empty()) return actions;
  auto& joined = identity_->joined_members;
  std::vector<NodeId> forgotten;
  std::erase_if(joined, [&](NodeId id) {
    const bool removed =
        id != self_ && std::find(members.begin(), members.end(), id) == members.end();
    if (removed) forgotten.push_back(id);
    return removed;
  });
  if (forgotten.empty()) return actions;
  actions.save = *identity_;
  actions.note = "forgetting removed member(s)";
  for (NodeId id : forgotten) actions.note += " " + std::to_string(id);
  actions.note += ": they may join again as new members";
  return actions;
}

// Creates the identity once a majority is unaware of this node; takes part once a majority lists
// it. Each step happens once.
JoinGate::Actions JoinGate::Evaluate() {
  Actions actions;
  if (join_) {
    if (!identity_) {
      // A majority of the other members given agree that this node is not one of them yet.
      const size_t others = members_.size() - (IsMember(self_) ? 1 : 0);
      if (!listing_me_.empty() || unaware_.size() < others / 2 + 1) return actions;
      identity_ = store::ClusterIdentity{cluster_id_, self_, {self_}};
      identity_->bootstrap.emplace();  // joined an existing cluster: no bootstrap of its own
      actions.save = *identity_;
      actions.reconnect = true;
      actions.note = "data directory " + data_dir_ + " was empty; joining cluster " +
                     store::FormatClusterId(cluster_id_) +
                     " as a learner (--join): the configuration comes from its log";
    }
    if (!participating_) {
      participating_ = true;
      actions.participate = true;
    }
    return actions;
  }
  if (!identity_) {
    if (unaware_.size() + 1 < quorum()) return actions;
    identity_ = store::ClusterIdentity{cluster_id_, self_, {self_}};
    identity_->bootstrap = bootstrap_;
    actions.save = *identity_;
    actions.reconnect = true;  // peers list it only once they hear it joined
    actions.note = "data directory " + data_dir_ + " was empty; " +
                   std::to_string(unaware_.size() + 1) + " of " + std::to_string(members_.size()) +
                   " members are new to cluster " + store::FormatClusterId(cluster_id_) +
                   " or have never seen this node: joining it";
  }
  if (!participating_ && listed_by_.size() + 1 >= quorum()) {
    participating_ = true;
    actions.participate = true;
    actions.note += (actions.note.empty() ? "" : "; ") + std::string("listed as joined by ") +
                    std::to_string(listed_by_.size() + 1) + " of " +
                    std::to_string(members_.size()) + " members of cluster " +
                    store::FormatClusterId(cluster_id_) + ": taking part";
  }
  return actions;
}

}  // namespace ballot
