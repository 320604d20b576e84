#include "paxos/configuration.h"

#include <algorithm>
#include <set>

namespace ballot::paxos {

Configuration::Configuration(std::vector<Member> members) : members_(std::move(members)) {
  std::sort(members_.begin(), members_.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
}

Configuration Configuration::AllVoters(const std::vector<NodeId>& ids) {
  std::vector<Member> members;
  for (NodeId id : ids) members.push_back(Member{id, "", true});
  return Configuration(std::move(members));
}

const Member* Configuration::Find(NodeId id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), id,
                             [](const Member& m, NodeId n) { return m.id < n; });
  return it != members_.end() && it->id == id ? &*it : nullptr;
}

bool Configuration::IsVoter(NodeId id) const {
  const Member* m = Find(id);
  return m != nullptr && m->voter;
}

std::vector<NodeId> Configuration::voters() const {
  std::vector<NodeId> out;
  for (const Member& m : members_) {
    if (m.voter) out.push_back(m.id);
  }
  return out;
}

std::vector<NodeId> Configuration::learners() const {
  std::vector<NodeId> out;
  for (const Member& m : members_) {
    if (!m.voter) out.push_back(m.id);
  }
  return out;
}

size_t Configuration::voter_count() const {
  return static_cast<size_t>(
      std::count_if(members_.begin(), members_.end(), [](const Member& m) { return m.voter; }));
}

bool Configuration::IsRetired(NodeId id) const {
  return std::binary_search(retired_.begin(), retired_.end(), id);
}

void Configuration::set_retired(std::vector<NodeId> retired) {
  std::sort(retired.begin(), retired.end());
  retired.erase(std::unique(retired.begin(), retired.end()), retired.end());
  retired_ = std::move(retired);
}

bool Configuration::IsQuorum(const std::vector<NodeId>& nodes) const {
  std::set<NodeId> counted;
  for (NodeId n : nodes) {
    if (IsVoter(n)) counted.insert(n);
  }
  return !empty() && counted.size() >= QuorumSize();
}

Status Configuration::Validate() const {
  auto invalid = [](std::string why) {
    return Status(StatusCode::kInvalidArgument, "configuration: " + why);
  };
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].id == 0 || members_[i].id > 0xFFFF) {
      return invalid("node id " + std::to_string(members_[i].id) + " is not in 1..65535");
    }
    if (i > 0 && members_[i].id == members_[i - 1].id) {
      return invalid("node id " + std::to_string(members_[i].id) + " appears twice");
    }
  }
  if (voter_count() == 0) return invalid("no voters");
  for (const Member& m : members_) {
    if (IsRetired(m.id)) return invalid("node id " + std::to_string(m.id) + " was retired");
  }
  return Status::Ok();
}

std::string Configuration::ToString() const {
  std::string out;
  for (const Member& m : members_) {
    if (!out.empty()) out += ",";
    out += std::to_string(m.id);
    if (!m.address.empty()) out += "@" + m.address;
    if (!m.voter) out += "(learner)";
  }
  if (out.empty()) return "(unknown)";
  if (!retired_.empty()) {
    out += " retired";
    for (NodeId id : retired_) out += " " + std::to_string(id);
  }
  return out;
}

const char* MemberChangeKindName(MemberChange::Kind kind) {
  switch (kind) {
    case MemberChange::Kind::kAddLearner:
      return "add";
    case MemberChange::Kind::kPromote:
      return "promote";
    case MemberChange::Kind::kRemove:
      return "remove";
  }
  return "unknown";
}

Result<Configuration> ApplyMemberChange(const Configuration& config, const MemberChange& change) {
  auto refuse = [&](std::string why) {
    return Status(StatusCode::kFailedPrecondition, std::string("member ") +
                                                       MemberChangeKindName(change.kind) + " " +
                                                       std::to_string(change.id) + ": " + why);
  };
  if (change.id == 0 || change.id > 0xFFFF) return refuse("node id is not in 1..65535");
  std::vector<Member> members = config.members();
  const Member* existing = config.Find(change.id);
  switch (change.kind) {
    case MemberChange::Kind::kAddLearner:
      if (existing != nullptr) {
        return refuse(existing->voter ? "already a voter" : "already a learner");
      }
      if (config.IsRetired(change.id)) {
        return refuse(
            "this id belonged to a member that was removed; ids are never reused, so "
            "add the node under a new id");
      }
      if (change.address.empty()) return refuse("no address given");
      members.push_back(Member{change.id, change.address, false});
      break;
    case MemberChange::Kind::kPromote:
      if (existing == nullptr) return refuse("not a member");
      if (existing->voter) return refuse("already a voter");
      for (Member& m : members) {
        if (m.id == change.id) m.voter = true;
      }
      break;
    case MemberChange::Kind::kRemove:
      if (existing == nullptr) return refuse("not a member");
      if (existing->voter && config.voter_count() == 1) return refuse("it is the last voter");
      members.erase(std::remove_if(members.begin(), members.end(),
                                   [&](const Member& m) { return m.id == change.id; }),
                    members.end());
      break;
  }
  Configuration next(std::move(members));
  std::vector<NodeId> retired = config.retired();
  if (change.kind == MemberChange::Kind::kRemove) retired.push_back(change.id);
  next.set_retired(std::move(retired));
  Status s = next.Validate();
  if (!s.ok()) return s;
  return next;
}

}  // namespace ballot::paxos
