#include "tests/partition/linearizability.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_set>

namespace ballot::partition_test {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// One key's operations, with values numbered: 0 = absent, i + 1 = the i-th distinct value.
struct RegisterOp {
  bool write = false;
  int value = 0;
  int64_t invoke_us = 0;
  int64_t complete_us = kNever;  // kNever: indeterminate write
  size_t source = 0;             // index in the caller's history
};

class RegisterSearch {
 public:
  RegisterSearch(std::vector<RegisterOp> ops, uint64_t steps_max)
      : ops_(std::move(ops)), steps_max_(steps_max), done_(ops_.size(), false) {
    for (const RegisterOp& op : ops_) {
      if (op.complete_us != kNever) ++must_linearize_;
    }
  }

  // True if some order of the operations is legal for a register and respects real time.
  // *gave_up is set if the step bound was reached first.
  bool Run(bool* gave_up) {
    const bool ok = Search(/*value=*/0, /*linearized_complete=*/0);
    *gave_up = !ok && steps_ >= steps_max_;
    return ok;
  }
  uint64_t steps() const { return steps_; }

 private:
  // Depth-first: any operation invoked before every pending completed operation completes may
  // go next. Completed operations must all be placed; indeterminate writes may be left out.
  bool Search(int value, size_t linearized_complete) {
    if (linearized_complete == must_linearize_) return true;
    if (++steps_ >= steps_max_) return false;
    if (!seen_.insert(Key(value)).second) return false;  // this state failed before
    int64_t deadline = kNever;  // the earliest completion of a pending operation
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (!done_[i]) deadline = std::min(deadline, ops_[i].complete_us);
    }
    for (size_t i = 0; i < ops_.size(); ++i) {
      const RegisterOp& op = ops_[i];
      if (done_[i] || op.invoke_us > deadline) continue;
      if (!op.write && op.value != value) continue;  // a read must see the current value
      done_[i] = true;
      const bool found = Search(op.write ? op.value : value,
                                linearized_complete + (op.complete_us != kNever ? 1 : 0));
      done_[i] = false;
      if (found) return true;
      if (steps_ >= steps_max_) return false;
    }
    return false;
  }

  std::string Key(int value) const {
    std::string key(sizeof(value), '\0');
    std::memcpy(key.data(), &value, sizeof(value));
    std::string bits((ops_.size() + 7) / 8, '\0');
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (done_[i]) bits[i / 8] = static_cast<char>(bits[i / 8] | (1 << (i % 8)));
    }
    return key + bits;
  }

  const std::vector<RegisterOp> ops_;
  const uint64_t steps_max_;
  std::vector<bool> done_;
  size_t must_linearize_ = 0;
  uint64_t steps_ = 0;
  std::unordered_set<std::string> seen_;
};

}  // namespace

std::string Describe(const KvOp& op) {
  std::ostringstream out;
  out << "client " << op.client << (op.kind == KvOp::Kind::kWrite ? " write " : " read  ") << op.key
      << " = " << (op.value ? *op.value : "<absent>") << "  [" << op.invoke_us << ", "
      << (op.complete_us ? std::to_string(*op.complete_us) : "?") << "] us";
  return out.str();
}

CheckResult CheckLinearizable(const std::vector<KvOp>& history, uint64_t steps_max) {
  std::map<std::string, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.size(); ++i) by_key[history[i].key].push_back(i);

  CheckResult result;
  for (const auto& [key, indexes] : by_key) {
    // Number the values; find which writes were ever read.
    std::map<std::string, int> number;
    std::set<int> read_values;
    for (size_t i : indexes) {
      const KvOp& op = history[i];
      CHECK(!op.complete_us || *op.complete_us >= op.invoke_us) << Describe(op);
      if (op.kind == KvOp::Kind::kWrite) {
        CHECK(op.value.has_value()) << Describe(op);
        CHECK(number.emplace(*op.value, static_cast<int>(number.size()) + 1).second)
            << "value written twice to one key: " << Describe(op);
      } else {
        CHECK(op.complete_us.has_value()) << "a read without an answer: " << Describe(op);
      }
    }
    std::vector<RegisterOp> ops;
    for (size_t i : indexes) {
      const KvOp& op = history[i];
      RegisterOp r;
      r.write = op.kind == KvOp::Kind::kWrite;
      r.invoke_us = op.invoke_us;
      r.complete_us = op.complete_us ? *op.complete_us : kNever;
      r.source = i;
      if (op.value) {
        auto it = number.find(*op.value);
        // A read of a value nobody wrote: keep it, numbered so that nothing can match it.
        r.value = it != number.end() ? it->second : -1;
      }
      if (!r.write) read_values.insert(r.value);
      ops.push_back(r);
    }
    // An indeterminate write nobody read can be taken to have never happened: leaving it out
    // keeps the search small and loses nothing.
    std::erase_if(ops, [&](const RegisterOp& r) {
      return r.write && r.complete_us == kNever && !read_values.contains(r.value);
    });
    std::sort(ops.begin(), ops.end(),
              [](const RegisterOp& a, const RegisterOp& b) { return a.invoke_us < b.invoke_us; });

    RegisterSearch search(ops, steps_max - std::min(steps_max, result.steps));
    bool gave_up = false;
    const bool ok = search.Run(&gave_up);
    result.steps += search.steps();
    if (ok) continue;
    result.verdict =
        gave_up ? CheckResult::Verdict::kGaveUp : CheckResult::Verdict::kNotLinearizable;
    result.key = key;
    std::ostringstream out;
    out << (gave_up ? "search gave up" : "no linearization exists") << " for key " << key << " ("
        << ops.size() << " operations):\n";
    for (const RegisterOp& r : ops) out << "  " << Describe(history[r.source]) << "\n";
    result.explanation = out.str();
    return result;
  }
  return result;
}

}  // namespace ballot::partition_test
