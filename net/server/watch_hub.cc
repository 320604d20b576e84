#include "net/server/watch_hub.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

namespace ballot {

WatchHub::WatchHub(std::unique_ptr<StateMachine> machine, size_t watches_max, Send send)
    : machine_(std::move(machine)),
      watchable_(dynamic_cast<const Watchable*>(machine_.get())),
      watches_max_(watches_max),
      send_(std::move(send)),
      tick_command_(watchable_ != nullptr ? watchable_->TickCommand() : std::string()) {}

void WatchHub::Add(ClientTag tag, net::WatchRequest request) {
  if (TryAnswer(tag, request)) return;
  if (parked_total_ >= watches_max_) {
    net::ClientResponse resp;
    resp.request_id = tag.request;
    resp.code = StatusCode::kOverloaded;
    resp.message = "too many watches: " + std::to_string(parked_total_) +
                   " are waiting on this server (--watches_max " + std::to_string(watches_max_) +
                   ")";
    send_(tag, std::move(resp));
    return;
  }
  const auto wait = std::min(std::chrono::milliseconds(request.wait_ms), kWaitMax);
  const Clock::time_point deadline = Clock::now() + wait;
  earliest_deadline_ = std::min(earliest_deadline_, deadline);
  auto [it, fresh] = parked_.try_emplace(request.query);
  Group& group = it->second;
  if (fresh || request.after_slot < group.lowest_after) group.lowest_after = request.after_slot;
  group.watches.push_back(Parked{tag, std::move(request), deadline});
  Count();
}

void WatchHub::Count() {
  size_t total = 0;
  for (const auto& [query, group] : parked_) total += group.watches.size();
  parked_total_ = total;
  parked_count_.store(total);
}

bool WatchHub::TryAnswer(ClientTag tag, const net::WatchRequest& request) {
  net::ClientResponse resp;
  resp.request_id = tag.request;
  if (watchable_ == nullptr) {
    resp.code = StatusCode::kInvalidArgument;
    resp.message = "this server's state machine does not support watches";
    send_(tag, std::move(resp));
    return true;
  }
  Result<std::optional<WatchChange>> next =
      watchable_->NextChange(request.query, request.after_slot);
  if (!next.ok()) {
    resp.code = next.status().code();
    resp.message = next.status().message();
    send_(tag, std::move(resp));
    return true;
  }
  if (!next.value().has_value()) return false;
  WatchChange& change = *next.value();
  resp.watch_changed = true;
  resp.watch_gap = change.gap;
  resp.slot = change.slot;
  resp.data = std::move(change.data);
  send_(tag, std::move(resp));
  return true;
}

void WatchHub::ExpireWaits(Clock::time_point now) {
  if (now < earliest_deadline_) return;
  earliest_deadline_ = Clock::time_point::max();
  for (auto group = parked_.begin(); group != parked_.end();) {
    std::vector<Parked>& watches = group->second.watches;
    std::erase_if(watches, [&](const Parked& p) {
      if (p.deadline > now) {
        earliest_deadline_ = std::min(earliest_deadline_, p.deadline);
        return false;
      }
      net::ClientResponse resp;  // kOk, watch_changed false: ask again with the same after_slot
      resp.request_id = p.tag.request;
      send_(p.tag, std::move(resp));
      return true;
    });
    group = watches.empty() ? parked_.erase(group) : std::next(group);
  }
  Count();
}

void WatchHub::AnswerParked() {
  for (auto group = parked_.begin(); group != parked_.end();) {
    Result<std::optional<WatchChange>> any =
        watchable_->NextChange(group->first, group->second.lowest_after);
    if (any.ok() && !any.value().has_value()) {  // no change above any of them
      ++group;
      continue;
    }
    std::vector<Parked>& watches = group->second.watches;
    std::erase_if(watches, [&](const Parked& p) { return TryAnswer(p.tag, p.request); });
    if (watches.empty()) {
      group = parked_.erase(group);
      continue;
    }
    paxos::Slot lowest = watches.front().request.after_slot;
    for (const Parked& p : watches) lowest = std::min(lowest, p.request.after_slot);
    group->second.lowest_after = lowest;
    ++group;
  }
  Count();
}

void WatchHub::Refresh() {
  if (watchable_ == nullptr) return;
  next_deadline_ms_.store(watchable_->NextDeadlineMs());
  if (!parked_.empty()) AnswerParked();
}

void WatchHub::Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) {
  machine_->Apply(batch, outcomes);
  Refresh();
}

Status WatchHub::Restore(std::string_view snapshot) {
  Status s = machine_->Restore(snapshot);
  if (s.ok()) Refresh();
  return s;
}

Status WatchHub::RestoreFrom(SnapshotReader* in) {
  Status s = machine_->RestoreFrom(in);
  if (s.ok()) Refresh();
  return s;
}

}  // namespace ballot
