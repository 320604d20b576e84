#include "paxos/options.h"

#include <algorithm>
#include <set>
#include <string>

namespace ballot::paxos {

namespace {
// 5%: far beyond any working clock (quartz is within ~100 ppm).
constexpr uint32_t kClockDriftPpmMax = 50'000;
Status Invalid(const std::string& why) { return Status(StatusCode::kInvalidArgument, why); }
}  // namespace

Status Options::Validate() const {
  if (id == kNoNode || id > kNodeIdMax) {
    return Invalid("id must be in 1.." + std::to_string(kNodeIdMax));
  }
  if (members.empty() && !join) return Invalid("members must not be empty");
  std::set<NodeId> unique(members.begin(), members.end());
  if (unique.size() != members.size()) return Invalid("members must not repeat");
  if (!unique.empty() && (unique.count(kNoNode) || *unique.rbegin() > kNodeIdMax)) {
    return Invalid("every member id must be in 1.." + std::to_string(kNodeIdMax));
  }
  if (!unique.count(id) && !join) return Invalid("id must be one of members");
  if (heartbeat_ticks == 0) return Invalid("heartbeat tick must be at least 1");
  if (election_ticks <= heartbeat_ticks) {
    return Invalid("election tick must be greater than heartbeat tick");
  }
  if (max_clock_drift_ppm > kClockDriftPpmMax) {
    return Invalid("max clock drift ppm must be at most " + std::to_string(kClockDriftPpmMax) +
                   " (a clock that far off is broken, not drifting)");
  }
  if (lease_ticks <= LeaseMarginTicks()) {
    return Invalid("lease ticks must be greater than the lease margin (" +
                   std::to_string(LeaseMarginTicks()) +
                   " ticks from max_clock_drift_ppm), or the leader never holds a lease");
  }
  if (lease_ticks >= election_ticks) {
    // Otherwise acceptors still hold a dead leader's lease when followers time out, and every
    // failover waits for the lease instead of the election timeout.
    return Invalid("lease ticks must be less than election ticks");
  }
  if (check_quorum_ticks < lease_ticks) {
    return Invalid("check quorum ticks must be at least lease ticks");
  }
  if (persist_stall_ticks_max <= election_ticks) {
    // Otherwise one slow sync deposes a healthy leader.
    return Invalid("persist stall ticks max must be greater than election ticks");
  }
  if (accept_retry_ticks == 0 || catchup_retry_ticks == 0) {
    return Invalid("retry ticks must be at least 1");
  }
  if (batch_commands_max == 0 || batch_bytes_max == 0 || window_slots_max == 0 ||
      pending_commands_max == 0 || reads_pending_max == 0 || catchup_entries_max == 0 ||
      promise_entries_max == 0 || accept_entries_max == 0 || message_bytes_max == 0) {
    return Invalid("every *_max bound must be at least 1");
  }
  if (batch_bytes_max > message_bytes_max) {
    return Invalid("batch bytes max must not exceed message bytes max");
  }
  return Status::Ok();
}

uint32_t Tuning::LeaseMarginTicks() const {
  // Integer ceil, so that rounding can never eat the drift part; the 1 is the tick granularity.
  const uint64_t drift = (2 * uint64_t{max_clock_drift_ppm} * lease_ticks + 999'999) / 1'000'000;
  return static_cast<uint32_t>(1 + drift);
}

}  // namespace ballot::paxos
