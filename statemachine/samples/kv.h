// KvStore: a replicated key-value map, and the example of how to write a StateMachine.
//
// Commands (replicated, applied on every replica in log order):
//   put(key, value)                     set key to value
//   delete(key)                         remove key (removing an absent key is fine)
//   compare_and_set(key, expected, new) set key to new only if its current value is `expected`,
//                                       where "expected absent" is std::nullopt; otherwise
//                                       kAborted with a message and no change
// Query (read-only, answered from one replica's current state):
//   get(key)                            the value, or "absent"
//
// A client never builds bytes by hand: the static Encode* functions make payloads and the
// Decode* functions read answers, so client and replicas cannot disagree about the format.
//
// Sizes are bounded (Limits): oversized keys or values are kInvalidArgument, and a put of a new
// key into a full store is kAborted. The limits are part of the replicated rules, so every
// replica must be built with the same ones.
#ifndef BALLOT_STATEMACHINE_SAMPLES_KV_H_
#define BALLOT_STATEMACHINE_SAMPLES_KV_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"
#include "statemachine/state_machine.h"

namespace ballot::samples {

class KvStore : public StateMachine {
 public:
  struct Limits {
    size_t key_bytes_max = 1024;
    size_t value_bytes_max = 64 * 1024;
    size_t keys_max = 1'000'000;
  };

  // Client side: command payloads (pass to Propose) and the query for get.
  static std::string EncodePut(std::string_view key, std::string_view value);
  static std::string EncodeDelete(std::string_view key);
  // `expected` == std::nullopt means "only if the key is absent".
  static std::string EncodeCompareAndSet(std::string_view key,
                                         std::optional<std::string_view> expected,
                                         std::string_view value);
  static std::string EncodeGet(std::string_view key);
  // Reads the data of a successful get: the value, or std::nullopt if the key is absent.
  // kInvalidArgument if malformed.
  static Result<std::optional<std::string>> DecodeGet(std::string_view data);

  KvStore() : KvStore(Limits()) {}
  // CHECKs that every limit is at least 1.
  explicit KvStore(Limits limits);
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  // Per command: kOk with empty data on success; kAborted for a failed compare_and_set or a
  // full store; kInvalidArgument for a malformed payload or an oversized key or value. Only kOk
  // changes state.
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override;
  // EncodeGet(key) -> kOk with data for DecodeGet; anything else -> kInvalidArgument.
  Outcome Query(std::string_view request) const override;
  std::string Snapshot() const override;
  // kCorruption if the snapshot is malformed or exceeds the limits; the state is unchanged then.
  Status Restore(std::string_view snapshot) override;

  size_t size() const { return map_.size(); }

 private:
  Outcome ApplyOne(std::string_view payload);
  Outcome Put(std::string_view key, std::string_view value);
  Outcome Delete(std::string_view key);
  Outcome CompareAndSet(std::string_view key, std::optional<std::string_view> expected,
                        std::string_view value);
  Status CheckSizes(std::string_view key, std::string_view value) const;

  const Limits limits_;
  // std::map, not unordered_map: Snapshot() iterates it, and every replica must produce the
  // same bytes.
  std::map<std::string, std::string, std::less<>> map_;
};

}  // namespace ballot::samples

#endif  // BALLOT_STATEMACHINE_SAMPLES_KV_H_
