#include "tests/partition/kv_workload.h"

#include <glog/logging.h>

#include <random>

#include "statemachine/samples/kv.h"

namespace ballot::partition_test {

using samples::KvStore;

KvWorkload::KvWorkload(Options options, std::function<std::unique_ptr<Client>()> make_client)
    : options_(options), make_client_(std::move(make_client)) {}

KvWorkload::~KvWorkload() { Stop(); }

void KvWorkload::Start() {
  CHECK(threads_.empty());
  start_ = std::chrono::steady_clock::now();
  for (int c = 0; c < options_.clients; ++c) threads_.emplace_back([this, c] { RunClient(c); });
}

void KvWorkload::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

int64_t KvWorkload::NowUs() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start_)
      .count();
}

void KvWorkload::Record(KvOp op) {
  std::lock_guard<std::mutex> lock(mu_);
  history_.push_back(std::move(op));
}

void KvWorkload::RunClient(int client) {
  std::unique_ptr<Client> kv = make_client_();
  std::mt19937_64 rng(static_cast<uint64_t>(client) * 7919 + 1);
  for (int n = 0; !stop_ && invoked_++ < options_.ops_max; ++n) {
    KvOp op;
    op.client = client;
    op.key = "k" + std::to_string(rng() % static_cast<uint64_t>(options_.keys));
    if (rng() % 2 == 0) {
      op.kind = KvOp::Kind::kWrite;
      op.value = "c" + std::to_string(client) + "." + std::to_string(n);
      op.invoke_us = NowUs();
      auto reply = kv->Propose(KvStore::EncodePut(op.key, *op.value), options_.op_timeout);
      // Only a definite success completes a write; anything else may still apply later (a
      // refusal would not, but treating it as indeterminate is never wrong).
      if (reply.ok() && reply.value().outcome.code == StatusCode::kOk) op.complete_us = NowUs();
      Record(std::move(op));
    } else {
      op.kind = KvOp::Kind::kRead;
      op.invoke_us = NowUs();
      auto reply = kv->Read(KvStore::EncodeGet(op.key), options_.op_timeout);
      const int64_t done_us = NowUs();
      if (reply.ok() && reply.value().code == StatusCode::kOk) {
        auto value = KvStore::DecodeGet(reply.value().data);
        CHECK(value.ok()) << "a get answered with undecodable data";
        op.value = value.value();
        op.complete_us = done_us;
        Record(std::move(op));
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        ++reads_dropped_;
      }
    }
    std::this_thread::sleep_for(options_.think);
  }
}

std::vector<KvOp> KvWorkload::History() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_;
}

int64_t KvWorkload::SucceededSince(int64_t since_us) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const KvOp& op : history_) n += op.complete_us && op.invoke_us >= since_us;
  return n;
}

int64_t KvWorkload::WritesSucceededSince(int64_t since_us) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const KvOp& op : history_) {
    n += op.kind == KvOp::Kind::kWrite && op.complete_us && op.invoke_us >= since_us;
  }
  return n;
}

std::string KvWorkload::Summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t writes_ok = 0, writes_unknown = 0, reads_ok = 0;
  for (const KvOp& op : history_) {
    if (op.kind == KvOp::Kind::kWrite) {
      (op.complete_us ? writes_ok : writes_unknown)++;
    } else {
      reads_ok++;
    }
  }
  return std::to_string(history_.size() + reads_dropped_) + " ops: " + std::to_string(writes_ok) +
         " writes ok, " + std::to_string(writes_unknown) + " writes indeterminate, " +
         std::to_string(reads_ok) + " reads ok, " + std::to_string(reads_dropped_) +
         " reads unanswered";
}

}  // namespace ballot::partition_test
