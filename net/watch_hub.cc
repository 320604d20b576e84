#include "net/watch_hub.h"

#include <algorithm>
#include <utility>

namespace ballot {

WatchHub::WatchHub(std::unique_ptr<StateMachine> machine, size_t watches_max, Send send)
    : machine_(std::move(machine)),
      watchable_(dynamic_cast<const Watchable*>(machine_.get())),
      watches_max_(watches_max),
      send_(std::move(send)),
      tick_command_(watchable_ != nullptr ? watchable_->TickCommand() : std::string()) {}

void WatchHub::Add(ClientTag tag, net::WatchRequest request) {
  if (TryAnswer(tag, request)) return;
  if (parked_.size() >= watches_max_) {
    net::ClientResponse resp;
    resp.request_id = tag.request;
    resp.code = StatusCode::kOverloaded;
    resp.message = "too many watches: " + std::to_string(parked_.size()) +
                   " are waiting on this server (--watches_max " + std::to_string(watches_max_) +
                   ")";
    send_(tag, std::move(resp));
    return;
  }
  const auto wait = std::min(std::chrono::milliseconds(request.wait_ms), kWaitMax);
  parked_.push_back(Parked{tag, std::move(request), Clock::now() + wait});
  parked_count_.store(parked_.size());
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
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->deadline > now) {
      ++it;
      continue;
    }
    net::ClientResponse resp;  // kOk, watch_changed false: ask again with the same after_slot
    resp.request_id = it->tag.request;
    send_(it->tag, std::move(resp));
    it = parked_.erase(it);
  }
  parked_count_.store(parked_.size());
}

void WatchHub::AnswerParked() {
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (TryAnswer(it->tag, it->request)) {
      it = parked_.erase(it);
    } else {
      ++it;
    }
  }
  parked_count_.store(parked_.size());
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
