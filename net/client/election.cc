#include "net/client/election.h"

#include <algorithm>
#include <utility>

#include "statemachine/samples/lock.h"
#include "statemachine/watchable.h"

namespace ballot {

namespace {

using samples::LockService;
using std::chrono::milliseconds;

// One watch long poll at most this long, so that Observe and Campaign see their deadlines.
constexpr milliseconds kWatchWait{2000};

milliseconds Remaining(std::chrono::steady_clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(
                                       deadline - std::chrono::steady_clock::now()));
}

Result<std::optional<Election::Leader>> DecodeLeader(std::string_view data) {
  auto holder = LockService::DecodeGet(data);
  if (!holder.ok()) return holder.status();
  if (!holder.value()) return std::optional<Election::Leader>();
  const LockService::Holder& h = *holder.value();
  return std::optional<Election::Leader>(Election::Leader{h.owner, h.token, h.expires_at_ms});
}

}  // namespace

Status ElectionOptions::Validate() const {
  if (name.empty() || name.size() > 256) {
    return Status(StatusCode::kInvalidArgument, "election: name must be 1..256 bytes");
  }
  if (candidate.empty() || candidate.size() > 256) {
    return Status(StatusCode::kInvalidArgument, "election: candidate must be 1..256 bytes");
  }
  if (ttl < milliseconds(30)) {
    return Status(StatusCode::kInvalidArgument, "election: ttl must be at least 30 ms");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Election>> Election::Create(Client* client, ElectionOptions options) {
  if (client == nullptr) return Status(StatusCode::kInvalidArgument, "election: no client");
  if (Status s = options.Validate(); !s.ok()) return s;
  return std::unique_ptr<Election>(new Election(client, std::move(options)));
}

Election::Election(Client* client, ElectionOptions options)
    : client_(client), options_(std::move(options)) {
  keepalive_thread_ = std::thread([this] { KeepAliveLoop(); });
}

Election::~Election() {
  bool was_leading = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    was_leading = leading_;
  }
  cv_.notify_all();
  keepalive_thread_.join();
  if (was_leading) (void)Resign(options_.ttl / 3);
}

void Election::OnLost(LostCallback callback) {
  std::lock_guard<std::mutex> lock(mu_);
  lost_ = std::move(callback);
}

bool Election::leading() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_;
}

uint64_t Election::token() const {
  std::lock_guard<std::mutex> lock(mu_);
  return token_;
}

Result<uint64_t> Election::Campaign(milliseconds timeout) {
  std::lock_guard<std::mutex> serial(campaign_mu_);
  const Clock::time_point deadline = Clock::now() + timeout;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (leading_) return token_;
  }
  const std::string query = LockService::EncodeGet(options_.name);
  for (;;) {
    if (Remaining(deadline).count() == 0) {
      return Status(StatusCode::kTimeout,
                    "election: not elected within " + std::to_string(timeout.count()) + " ms");
    }
    const Clock::time_point sent = Clock::now();
    auto reply =
        client_->Propose(LockService::EncodeAcquire(options_.name, options_.candidate,
                                                    static_cast<uint64_t>(options_.ttl.count())),
                         Remaining(deadline));
    if (!reply.ok()) return reply.status();
    const Outcome& outcome = reply.value().outcome;
    if (outcome.code == StatusCode::kOk) {
      auto grant = LockService::DecodeGrant(outcome.data);
      if (!grant.ok()) return grant.status();
      {
        std::lock_guard<std::mutex> lock(mu_);
        leading_ = true;
        token_ = grant.value().token;
        confirmed_at_ = sent;
        ++term_;
      }
      cv_.notify_all();
      return grant.value().token;
    }
    if (outcome.code != StatusCode::kAborted ||
        outcome.message.find("is held by") == std::string::npos) {
      return Status(outcome.code, outcome.message);
    }
    // Held by another candidate as of the refused acquire's slot: wait for the lock's next
    // change after it (a release, an expiry), then try again.
    paxos::Slot after = reply.value().slot;
    for (;;) {
      Client::WatchOptions wo;
      wo.wait = kWatchWait;
      auto change = client_->Watch(query, after, Remaining(deadline), wo);
      if (!change.ok()) {
        if (change.status().code() == StatusCode::kTimeout && Remaining(deadline).count() > 0) {
          continue;
        }
        return change.status();
      }
      if (!change.value().changed) {
        if (Remaining(deadline).count() == 0) break;
        continue;
      }
      after = change.value().slot;
      auto leader = DecodeLeader(change.value().data);
      if (!leader.ok()) return leader.status();
      if (!leader.value() || leader.value()->candidate == options_.candidate) break;
    }
  }
}

Status Election::Resign(milliseconds timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!leading_) return Status::Ok();
    leading_ = false;
    token_ = 0;
    ++term_;
  }
  cv_.notify_all();
  auto reply =
      client_->Propose(LockService::EncodeRelease(options_.name, options_.candidate), timeout);
  if (!reply.ok()) return reply.status();
  const Outcome& outcome = reply.value().outcome;
  // Refused: it is no longer held by us (expired), which is what resigning wants.
  if (outcome.code == StatusCode::kOk || outcome.code == StatusCode::kAborted) return Status::Ok();
  return Status(outcome.code, outcome.message);
}

void Election::LoseLocked(std::unique_lock<std::mutex>& lock, Status why) {
  const uint64_t token = token_;
  leading_ = false;
  token_ = 0;
  ++term_;
  LostCallback callback = lost_;
  lock.unlock();
  if (callback) callback(token, std::move(why));
  lock.lock();
}

void Election::KeepAliveLoop() {
  const milliseconds interval = options_.ttl / 3;
  const milliseconds lose_after = options_.ttl * 2 / 3;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!leading_) {
      cv_.wait(lock, [this] { return stopping_ || leading_; });
      continue;
    }
    const Clock::time_point now = Clock::now();
    const Clock::time_point due = confirmed_at_ + interval;
    const Clock::time_point lose_at = confirmed_at_ + lose_after;
    if (now >= lose_at) {
      LoseLocked(lock, Status(StatusCode::kTimeout,
                              "election: the lock could not be confirmed within 2/3 of its TTL"));
      continue;
    }
    if (now < due) {
      cv_.wait_until(lock, due);
      continue;
    }
    const uint64_t term = term_;
    lock.unlock();
    const Clock::time_point sent = Clock::now();
    auto reply = client_->Propose(LockService::EncodeKeepAlive(options_.name, options_.candidate),
                                  std::max(milliseconds(1), Remaining(lose_at)));
    lock.lock();
    if (term != term_ || !leading_) continue;  // resigned (or stopped) meanwhile
    if (reply.ok() && reply.value().outcome.code == StatusCode::kOk) {
      auto grant = LockService::DecodeGrant(reply.value().outcome.data);
      if (grant.ok() && grant.value().token == token_) {
        confirmed_at_ = sent;
      } else {
        LoseLocked(lock,
                   Status(StatusCode::kAborted, "election: keepalive answered another token"));
      }
    } else if (reply.ok() && reply.value().outcome.code == StatusCode::kAborted) {
      LoseLocked(lock, Status(StatusCode::kAborted,
                              "election: keepalive refused: " + reply.value().outcome.message));
    } else if (!stopping_) {
      // Not delivered (no leader, a partition): try again soon, until lose_at.
      cv_.wait_until(lock, std::min(lose_at, Clock::now() + interval / 8));
    }
  }
}

Result<std::optional<Election::Leader>> Election::CurrentLeader(milliseconds timeout) {
  Client::WatchOptions wo;
  wo.linearizable = true;
  auto r =
      client_->Watch(LockService::EncodeGet(options_.name), Watchable::kCurrentState, timeout, wo);
  if (!r.ok()) return r.status();
  if (!r.value().changed) {
    return Status(StatusCode::kFailedPrecondition, "election: the server did not report the lock");
  }
  return DecodeLeader(r.value().data);
}

Status Election::Observe(const std::function<bool(const std::optional<Leader>&)>& on_change,
                         milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  const std::string query = LockService::EncodeGet(options_.name);
  Client::WatchOptions first;
  first.linearizable = true;
  auto start = client_->Watch(query, Watchable::kCurrentState, timeout, first);
  if (!start.ok()) return start.status();
  if (!start.value().changed) {
    return Status(StatusCode::kFailedPrecondition, "election: the server did not report the lock");
  }
  auto leader = DecodeLeader(start.value().data);
  if (!leader.ok()) return leader.status();
  std::optional<Leader> last = leader.value();
  if (!on_change(last)) return Status::Ok();
  paxos::Slot after = start.value().slot;
  for (;;) {
    if (Remaining(deadline).count() == 0) {
      return Status(StatusCode::kTimeout,
                    "election: observed for " + std::to_string(timeout.count()) + " ms");
    }
    Client::WatchOptions wo;
    wo.wait = kWatchWait;
    auto change = client_->Watch(query, after, Remaining(deadline), wo);
    if (!change.ok()) {
      if (change.status().code() == StatusCode::kInvalidArgument) return change.status();
      // A replica failed or the watch was refused there: resume from `after`, shortly.
      std::this_thread::sleep_for(std::min(milliseconds(50), Remaining(deadline)));
      continue;
    }
    if (!change.value().changed) continue;
    after = change.value().slot;
    auto next = DecodeLeader(change.value().data);
    if (!next.ok()) return next.status();
    auto same = [](const std::optional<Leader>& a, const std::optional<Leader>& b) {
      if (!a || !b) return !a && !b;
      return a->candidate == b->candidate && a->token == b->token;
    };
    if (same(next.value(), last)) continue;  // e.g. the state after a gap is the one reported
    last = next.value();
    if (!on_change(last)) return Status::Ok();
  }
}

}  // namespace ballot
