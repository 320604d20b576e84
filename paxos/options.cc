#include "paxos/options.h"

#include <algorithm>
#include <set>

namespace ballot::paxos {

namespace {
Status Invalid(const std::string& why) { return Status(StatusCode::kInvalidArgument, why); }
}  // namespace

Status Options::Validate() const {
  if (id == kNoNode || id > kNodeIdMax) {
    return Invalid("id must be in 1.." + std::to_string(kNodeIdMax));
  }
  if (members.empty()) return Invalid("members must not be empty");
  std::set<NodeId> unique(members.begin(), members.end());
  if (unique.size() != members.size()) return Invalid("members must not repeat");
  if (unique.count(kNoNode) || *unique.rbegin() > kNodeIdMax) {
    return Invalid("every member id must be in 1.." + std::to_string(kNodeIdMax));
  }
  if (!unique.count(id)) return Invalid("id must be one of members");
  if (heartbeat_ticks == 0) return Invalid("heartbeat tick must be at least 1");
  if (election_ticks <= heartbeat_ticks) {
    return Invalid("election tick must be greater than heartbeat tick");
  }
  if (lease_ticks <= lease_margin_ticks) {
    return Invalid("lease ticks must be greater than the lease margin");
  }
  if (lease_ticks >= election_ticks) {
    // Otherwise acceptors still hold a dead leader's lease when followers time out, and every
    // failover waits for the lease instead of the election timeout.
    return Invalid("lease ticks must be less than election ticks");
  }
  if (check_quorum_ticks < lease_ticks) {
    return Invalid("check quorum ticks must be at least lease ticks");
  }
  if (accept_retry_ticks == 0 || catchup_retry_ticks == 0) {
    return Invalid("retry ticks must be at least 1");
  }
  if (batch_commands_max == 0 || batch_bytes_max == 0 || window_slots_max == 0 ||
      pending_commands_max == 0 || reads_pending_max == 0 || catchup_entries_max == 0 ||
      promise_entries_max == 0 ||
      accept_entries_max == 0 || message_bytes_max == 0) {
    return Invalid("every *_max bound must be at least 1");
  }
  if (batch_bytes_max > message_bytes_max) {
    return Invalid("batch bytes max must not exceed message bytes max");
  }
  return Status::Ok();
}

}  // namespace ballot::paxos
