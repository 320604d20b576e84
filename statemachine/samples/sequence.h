// SequenceGenerator: a replicated generator of unique, strictly increasing numbers.
//
// The command next(n) hands out the block [next, next + n) and advances; the first number ever
// handed out is 1. Because every replica applies the same commands in the same order, blocks
// never overlap, even across leader changes, and a retried next(n) gets its original block back
// (the session table answers it). The query "peek" returns the next number that would be handed
// out. Clients build payloads and read answers with the static Encode/Decode helpers.
#ifndef BALLOT_STATEMACHINE_SAMPLES_SEQUENCE_H_
#define BALLOT_STATEMACHINE_SAMPLES_SEQUENCE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"
#include "statemachine/state_machine.h"

namespace ballot::samples {

class SequenceGenerator : public StateMachine {
 public:
  // Largest block one next(n) may ask for; larger requests are kInvalidArgument.
  static constexpr uint64_t kCountMax = 1'000'000;

  struct Block {
    uint64_t first = 0;
    uint64_t count = 0;
    friend bool operator==(const Block&, const Block&) = default;
  };

  // Client side. EncodeNext's count is not checked here; the replicas reject a bad one.
  static std::string EncodeNext(uint64_t count);
  // Reads the data of a successful next(n). kInvalidArgument if malformed.
  static Result<Block> DecodeBlock(std::string_view data);
  static std::string EncodePeek();
  // Reads the data of a successful peek. kInvalidArgument if malformed.
  static Result<uint64_t> DecodePeek(std::string_view data);

  SequenceGenerator() = default;
  SequenceGenerator(const SequenceGenerator&) = delete;
  SequenceGenerator& operator=(const SequenceGenerator&) = delete;

  // Per command: kOk with an encoded Block; kInvalidArgument for a malformed payload or a count
  // outside [1, kCountMax]; kAborted if the block would run past 2^64 - 1. Only kOk changes state.
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override;
  // EncodePeek() -> kOk with the next number; anything else -> kInvalidArgument.
  Outcome Query(std::string_view request) const override;
  std::string Snapshot() const override;
  // kCorruption if the snapshot is malformed; the state is unchanged then.
  Status Restore(std::string_view snapshot) override;

  uint64_t next() const { return next_; }

 private:
  Outcome ApplyOne(std::string_view payload);

  uint64_t next_ = 1;  // the next number to hand out; never 0
};

}  // namespace ballot::samples

#endif  // BALLOT_STATEMACHINE_SAMPLES_SEQUENCE_H_
