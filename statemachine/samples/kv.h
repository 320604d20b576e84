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
//
// Snapshots while serving (the streaming pair, statemachine/snapshot_stream.h): TakeSnapshotView
// is O(1); its WriteTo walks the live map on another thread while Apply goes on. While a view is
// active, the first change to a key the writer has not passed yet records that key's value as
// of the view (or "absent") in an undo map; the writer merges the live map and the undo map in
// key order, a bounded number of keys per hold of the mutex (so Apply waits at most that long),
// and writes outside the mutex. The bytes are identical to Snapshot()'s for the same state.
// Memory: the undo map holds at most one old value per key changed ahead of the writer.
// At most one streaming view at a time: TakeSnapshotView while one is active returns a copy
// (StateMachine's default, O(state) on the apply thread) instead of blocking, because the caller
// may be the very thread that would write the first view.
#ifndef BALLOT_STATEMACHINE_SAMPLES_KV_H_
#define BALLOT_STATEMACHINE_SAMPLES_KV_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
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
  // The whole state as one string (blocking): the same bytes a view of it writes.
  std::string Snapshot() const override;
  // kCorruption if the snapshot is malformed or exceeds the limits; the state is unchanged then.
  Status Restore(std::string_view snapshot) override;
  // See the top of this file. The view may outlive this KvStore.
  std::unique_ptr<SnapshotView> TakeSnapshotView() override;
  // Streams: holds one key and value at a time besides the map being built. kCorruption as for
  // Restore, and the state is unchanged then too (the map is built aside and swapped in).
  Status RestoreFrom(SnapshotReader* in) override;

  size_t size() const;
  // For tests: whether a streaming view is active (taken and neither written nor destroyed).
  bool TEST_streaming_view_active() const;

 private:
  Outcome ApplyOne(std::string_view payload);
  Outcome Put(std::string_view key, std::string_view value);
  Outcome Delete(std::string_view key);
  Outcome CompareAndSet(std::string_view key, std::optional<std::string_view> expected,
                        std::string_view value);
  Status CheckSizes(std::string_view key, std::string_view value) const;

  struct State;
  class View;
  using Map = std::map<std::string, std::string, std::less<>>;
  // Call before changing `key`: keeps its value as of an active view, if the view needs it.
  void SaveForView(std::string_view key, Map::const_iterator it);

  const Limits limits_;
  // The map and what an active view needs, shared with the view so that it survives Restore
  // (which swaps in a new State and leaves the old one to the view) and this object.
  std::shared_ptr<State> state_;
};

}  // namespace ballot::samples

#endif  // BALLOT_STATEMACHINE_SAMPLES_KV_H_
