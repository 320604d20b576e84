// The property every snapshot Restore must have, shared by the restore fuzz targets.
//
// For a StateMachine (or anything with Snapshot/Restore):
//   - a rejected snapshot is kCorruption or kInvalidArgument and leaves the state as it was;
//   - an accepted one is canonical (Snapshot() gives the same bytes back) and restores equally
//     into a fresh instance;
//   - the restored state keeps working: `exercise` applies commands and queries to it, so a
//     snapshot that passes validation but breaks an invariant a later Apply CHECKs is found here
//     rather than on a replica months later.
#ifndef BALLOT_TESTS_FUZZ_RESTORE_CHECK_H_
#define BALLOT_TESTS_FUZZ_RESTORE_CHECK_H_

#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "paxos/status.h"
#include "statemachine/state_machine.h"

namespace ballot::fuzz {

inline std::string_view AsView(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Applies `payloads` one command per slot from `slot` on, all at `stamp_ms`, by client 1.
inline std::vector<Outcome> ApplyAll(StateMachine& machine, paxos::Slot slot, uint64_t stamp_ms,
                                     const std::vector<std::string>& payloads) {
  std::vector<AppliedCommand> batch;
  for (const std::string& p : payloads) {
    batch.push_back(AppliedCommand{slot++, /*epoch=*/1, /*client_id=*/1, stamp_ms, p});
  }
  std::vector<Outcome> outcomes;
  machine.Apply(batch, &outcomes);
  CHECK_EQ(outcomes.size(), batch.size());
  return outcomes;
}

inline bool RejectedAsCorrupt(const Status& s) {
  return s.code() == StatusCode::kCorruption || s.code() == StatusCode::kInvalidArgument;
}

// `make` returns a fresh machine; `prime` puts a non-trivial state into one (so that "unchanged
// after a rejected snapshot" means something); `exercise` drives a restored one.
template <typename Make, typename Prime, typename Exercise>
void CheckRestore(std::string_view snapshot, Make make, Prime prime, Exercise exercise) {
  std::unique_ptr<StateMachine> machine = make();
  prime(*machine);
  const std::string before = machine->Snapshot();
  Status s = machine->Restore(snapshot);
  if (!s.ok()) {
    CHECK(RejectedAsCorrupt(s)) << s.ToString();
    CHECK(machine->Snapshot() == before) << "a rejected snapshot changed the state";
    return;
  }
  const std::string after = machine->Snapshot();
  CHECK(after == snapshot) << "Restore accepted a snapshot Snapshot() would not write";
  std::unique_ptr<StateMachine> copy = make();
  Status again = copy->Restore(after);
  CHECK(again.ok()) << again.ToString();
  CHECK(copy->Snapshot() == after);
  exercise(*machine);
}

}  // namespace ballot::fuzz

#endif  // BALLOT_TESTS_FUZZ_RESTORE_CHECK_H_
