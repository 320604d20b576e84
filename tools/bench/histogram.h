// LatencyHistogram: log-bucketed latency counts with bounded memory and ~3% precision.
//
// Values (microseconds) fall into 64 power-of-two ranges, each split into 32 linear
// sub-buckets, so the error of a reported percentile is at most 1/32 of its value.
#ifndef BALLOT_TOOLS_BENCH_HISTOGRAM_H_
#define BALLOT_TOOLS_BENCH_HISTOGRAM_H_

#include <array>
#include <bit>
#include <cstdint>

namespace ballot::bench {

class LatencyHistogram {
 public:
  void Record(uint64_t us) {
    ++counts_[Index(us)];
    ++total_;
    if (us > max_) max_ = us;
  }

  void Merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    if (other.max_ > max_) max_ = other.max_;
  }

  uint64_t count() const { return total_; }
  uint64_t max() const { return max_; }

  // The smallest bucket upper bound below which `fraction` of the values fall.
  uint64_t Percentile(double fraction) const {
    if (total_ == 0) return 0;
    uint64_t want = static_cast<uint64_t>(fraction * static_cast<double>(total_));
    if (want >= total_) want = total_ - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > want) return UpperBound(i) < max_ ? UpperBound(i) : max_;
    }
    return max_;
  }

 private:
  static constexpr int kSubBits = 5;  // 32 sub-buckets per power of two
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;

  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int top = 63 - std::countl_zero(v);  // >= kSubBits
    int shift = top - kSubBits;
    uint64_t sub = (v >> shift) & (kSub - 1);
    return static_cast<size_t>((shift + 1) * kSub + sub);
  }

  static uint64_t UpperBound(size_t index) {
    if (index < kSub) return index;
    int shift = static_cast<int>(index / kSub) - 1;
    uint64_t sub = index % kSub;
    return ((kSub + sub + 1) << shift) - 1;
  }

  std::array<uint64_t, (64 - kSubBits + 1) * (uint64_t{1} << kSubBits)> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace ballot::bench

#endif  // BALLOT_TOOLS_BENCH_HISTOGRAM_H_
