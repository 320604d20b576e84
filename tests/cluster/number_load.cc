#include "tests/cluster/number_load.h"

#include <glog/logging.h>

#include <algorithm>
#include <random>

#include "net/client/sequence_numbers.h"

namespace ballot::cluster_test {

NumberLoad::NumberLoad(const ProcessCluster& cluster, NumberLoadOptions options)
    : options_(options), acked_per_worker_(options.workers, 0) {
  CHECK_GE(options_.count_max, 1u);
  for (size_t i = 0; i < options_.workers; ++i) clients_.push_back(cluster.NewClient());
}

NumberLoad::~NumberLoad() { Stop(); }

void NumberLoad::Start() {
  CHECK(threads_.empty()) << "started twice";
  for (size_t i = 0; i < options_.workers; ++i) threads_.emplace_back([this, i] { Run(i); });
}

void NumberLoad::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void NumberLoad::Run(size_t worker) {
  std::mt19937_64 rng(options_.seed * 1000 + worker);
  std::uniform_int_distribution<uint64_t> pick(1, options_.count_max);
  Client& client = *clients_[worker];
  while (!stop_) {
    const uint64_t count = pick(rng);
    NumberCall call;
    call.worker = worker;
    call.sent = Clock::now();
    auto r = NextNumbers(client, count, options_.call_timeout);
    call.replied = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!r.ok()) {
        const std::string code = StatusCodeName(r.status().code());
        ++failures_[code];
        last_failure_[code] = r.status().message();
        ++failed_;
      } else if (r.value().count != count || r.value().first == 0) {
        bad_replies_.push_back("asked for " + std::to_string(count) + ", got [" +
                               std::to_string(r.value().first) + ", +" +
                               std::to_string(r.value().count) + ")");
      } else {
        call.first = r.value().first;
        call.count = r.value().count;
        acked_.push_back(call);
        ++acked_per_worker_[worker];
      }
    }
    changed_.notify_all();
  }
}

std::vector<NumberCall> NumberLoad::acked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

size_t NumberLoad::acked_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_.size();
}

size_t NumberLoad::failed_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

std::vector<std::string> NumberLoad::bad_replies() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bad_replies_;
}

std::string NumberLoad::DescribeFailures() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (failures_.empty()) return "none";
  std::string out;
  for (const auto& [code, n] : failures_) {
    out += (out.empty() ? "" : "; ") + std::to_string(n) + " x " + code +
           " (last: " + last_failure_.at(code) + ")";
  }
  return out;
}

size_t NumberLoad::CountSentAfterLocked(Clock::time_point t) const {
  size_t n = 0;
  for (const NumberCall& c : acked_) n += c.sent >= t ? 1 : 0;
  return n;
}

std::optional<Clock::time_point> NumberLoad::WaitForAckSentAfter(Clock::time_point t,
                                                                 Clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<Clock::time_point> first;
  changed_.wait_until(lock, deadline, [&] {
    for (const NumberCall& c : acked_) {
      if (c.sent >= t && (!first || c.replied < *first)) first = c.replied;
    }
    return first.has_value();
  });
  return first;
}

bool NumberLoad::WaitForAcksSentAfter(Clock::time_point t, size_t count,
                                      Clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_until(lock, deadline, [&] { return CountSentAfterLocked(t) >= count; });
}

bool NumberLoad::WaitForEveryWorker(Clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_until(lock, deadline, [&] {
    return std::all_of(acked_per_worker_.begin(), acked_per_worker_.end(),
                       [](size_t n) { return n > 0; });
  });
}

namespace {

std::string Describe(const NumberCall& c, Clock::time_point origin) {
  return "worker " + std::to_string(c.worker) + " [" + std::to_string(c.first) + ".." +
         std::to_string(c.last()) + "] sent at " + std::to_string(MsBetween(origin, c.sent)) +
         " ms, answered at " + std::to_string(MsBetween(origin, c.replied)) + " ms";
}

Clock::time_point Origin(const std::vector<NumberCall>& calls) {
  Clock::time_point origin = Clock::time_point::max();
  for (const NumberCall& c : calls) origin = std::min(origin, c.sent);
  return origin;
}

}  // namespace

std::vector<std::string> FindDuplicates(std::vector<NumberCall> calls, size_t max) {
  const Clock::time_point origin = Origin(calls);
  std::sort(calls.begin(), calls.end(),
            [](const NumberCall& a, const NumberCall& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 1; i < calls.size() && out.size() < max; ++i) {
    if (calls[i].first <= calls[i - 1].last()) {
      out.push_back("numbers handed out twice: " + Describe(calls[i - 1], origin) + " and " +
                    Describe(calls[i], origin));
    }
  }
  return out;
}

std::vector<std::string> FindOrderViolations(const std::vector<NumberCall>& calls, size_t max) {
  const Clock::time_point origin = Origin(calls);
  std::vector<const NumberCall*> by_reply;
  std::vector<const NumberCall*> by_send;
  for (const NumberCall& c : calls) {
    by_reply.push_back(&c);
    by_send.push_back(&c);
  }
  std::sort(by_reply.begin(), by_reply.end(),
            [](const NumberCall* a, const NumberCall* b) { return a->replied < b->replied; });
  std::sort(by_send.begin(), by_send.end(),
            [](const NumberCall* a, const NumberCall* b) { return a->sent < b->sent; });
  // Sweep the calls in send order, folding in every call answered before the current one was
  // sent; the largest number among those must be below the current call's first.
  const NumberCall* highest_before = nullptr;
  size_t answered = 0;
  std::vector<std::string> out;
  for (const NumberCall* b : by_send) {
    while (answered < by_reply.size() && by_reply[answered]->replied < b->sent) {
      const NumberCall* a = by_reply[answered++];
      if (highest_before == nullptr || a->last() > highest_before->last()) highest_before = a;
    }
    if (highest_before != nullptr && highest_before->last() >= b->first && out.size() < max) {
      out.push_back("real-time order broken: " + Describe(*highest_before, origin) +
                    " was answered before " + Describe(*b, origin) + " was sent");
    }
  }
  return out;
}

}  // namespace ballot::cluster_test
