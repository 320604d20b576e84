// Rng: the simulator's only source of randomness, seeded from the run's one 64-bit seed.
//
// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and its output depends only on the seed, so
// a run replays exactly on any platform (std::uniform_int_distribution is not portable).
#ifndef BALLOT_TESTS_SIM_RNG_H_
#define BALLOT_TESTS_SIM_RNG_H_

#include <glog/logging.h>

#include <cstdint>

namespace ballot::sim {

// Mixes one 64-bit word (the SplitMix64 finalizer); also used to derive per-node seeds.
constexpr uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return Mix64(state_);
  }

  // Uniform in [lo, hi] (inclusive). The modulo bias is irrelevant for simulation.
  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    CHECK_LE(lo, hi);
    const uint64_t span = hi - lo + 1;
    return span == 0 ? Next() : lo + Next() % span;
  }

  // True with probability p (p <= 0: never; p >= 1: always).
  bool Chance(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p;
  }

  // One element of a small array, uniformly.
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Uniform(0, N - 1)];
  }

 private:
  uint64_t state_;
};

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_RNG_H_
