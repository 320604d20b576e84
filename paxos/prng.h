// A small deterministic PRNG (SplitMix64). The core draws its randomized election timeouts from
// one of these, seeded through Options::seed, so a run is a pure function of its inputs.
#ifndef BALLOT_PAXOS_PRNG_H_
#define BALLOT_PAXOS_PRNG_H_

#include <cstdint>

namespace ballot::paxos {

class Prng {
 public:
  explicit Prng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound); bound > 0. The modulo bias is irrelevant for timeouts.
  uint64_t Below(uint64_t bound) { return Next() % bound; }

 private:
  uint64_t state_;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_PRNG_H_
