// Configuration: who belongs to the group for a range of slots, and how it changes.
//
// Membership is part of the replicated log. A value may carry a whole new configuration
// (Value::config); once that slot is chosen, the new configuration governs every later slot.
// The rule (one change at a time with a window of one, "α = 1" in Lamport's reconfiguration
// scheme; its safety argument is in docs/membership.md):
//   - a change adds a learner, promotes a learner to voter, or removes one member: the voters
//     of two consecutive configurations differ by at most one node, so a majority of either
//     intersects a majority of the other;
//   - the leader proposes a change only when no other slot is in flight and proposes nothing
//     after it until it is chosen, so every slot in flight is governed by one configuration;
//   - a new leader's phase 1 that finds a change among the values it recovers first settles
//     the slots up to that change, then needs promises from a majority of the new voters before
//     it decides anything after it (Proposer).
//   - a node that joins blank (Options::join) neither promises nor accepts until it has learnt
//     the chosen change that added it, so its empty memory is never taken for that of a past
//     member with the same id (Replica::may_vote_);
//   - a leader serves lease reads only once its recovery is done, and re-counts its lease among
//     the new voters after every change.
// Learners receive every accept and heartbeat and store values like voters, but their votes
// are not counted and they never campaign: a node being added catches up as a learner before
// its vote can matter.
#ifndef BALLOT_PAXOS_CONFIGURATION_H_
#define BALLOT_PAXOS_CONFIGURATION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "paxos/status.h"

namespace ballot::paxos {

using NodeId = uint32_t;

struct Member {
  NodeId id = 0;
  std::string address;  // host:port for peers and clients; opaque to the core
  bool voter = true;

  friend bool operator==(const Member&, const Member&) = default;
};

class Configuration {
 public:
  // Empty: not known yet (a node that joins an existing cluster learns it from the log).
  Configuration() = default;
  // Sorts by id. Use Validate() to check ids are distinct and in range.
  explicit Configuration(std::vector<Member> members);
  // Every id a voter, no addresses: the bootstrap configuration of a core-only group.
  static Configuration AllVoters(const std::vector<NodeId>& ids);

  const std::vector<Member>& members() const { return members_; }
  bool empty() const { return members_.empty(); }
  const Member* Find(NodeId id) const;
  bool IsMember(NodeId id) const { return Find(id) != nullptr; }
  bool IsVoter(NodeId id) const;
  std::vector<NodeId> voters() const;
  std::vector<NodeId> learners() const;
  size_t voter_count() const;
  // Votes needed for a majority of the voters.
  size_t QuorumSize() const { return voter_count() / 2 + 1; }
  // Do the voters among `nodes` form a majority? (Non-voters and strangers do not count.)
  bool IsQuorum(const std::vector<NodeId>& nodes) const;

  // Ids removed from the group: they never come back (a node that returns needs a new id, as
  // in etcd). A blank node under an old id could otherwise be counted, by a candidate working
  // from an older configuration where that id voted, as the old member it no longer remembers
  // being (found by the simulator: a removed, stale node served the rejoined one a snapshot of
  // that older configuration).
  const std::vector<NodeId>& retired() const { return retired_; }
  bool IsRetired(NodeId id) const;
  void set_retired(std::vector<NodeId> retired);  // sorts

  // Distinct ids in 1..65535, at least one voter, no member retired.
  Status Validate() const;
  std::string ToString() const;  // "1@h:p,2@h:p,4@h:p(learner)"

  friend bool operator==(const Configuration&, const Configuration&) = default;

 private:
  std::vector<Member> members_;  // by id
  std::vector<NodeId> retired_;  // increasing
};

// One membership change, as an operator asks for it.
struct MemberChange {
  enum class Kind { kAddLearner, kPromote, kRemove };
  Kind kind = Kind::kAddLearner;
  NodeId id = 0;
  std::string address;  // kAddLearner only
};

const char* MemberChangeKindName(MemberChange::Kind kind);

// The configuration after `change`, or why the change is not allowed: adding an id that is
// already a member or was removed before, promoting a non-learner, removing a non-member or the
// last voter. A removal retires the id.
Result<Configuration> ApplyMemberChange(const Configuration& config, const MemberChange& change);

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_CONFIGURATION_H_
