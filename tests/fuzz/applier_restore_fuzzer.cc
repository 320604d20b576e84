// Fuzz target: Applier::Restore (statemachine/applier.h), the snapshot a replica starts from:
// applied position, log epoch, session table and the state machine's own snapshot (the kv
// sample here; every sample also has its own target).
//
// Properties:
//   - a rejected snapshot is kCorruption (or the machine's own error) and leaves the applier
//     serving its old state;
//   - an accepted one is canonical (Snapshot() gives it back);
//   - the replica can continue from it: the next entry, at applied_below, with commands from
//     the restored sessions (retries and fresh ones) and a new client, applies without a CHECK
//     failure, and exactly-once holds (a retry in the same entry is answered, not re-applied).
#include <glog/logging.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "statemachine/applier.h"
#include "statemachine/samples/kv.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/fuzz/restore_check.h"

namespace {

using ballot::Applier;
using ballot::samples::KvStore;

// The wire's bound on slots (net/codec.h kSlotMax): no log gets further, so a snapshot beyond
// it is not continued here.
constexpr uint64_t kSlotMax = uint64_t{1} << 62;

ballot::paxos::Command Put(uint64_t client_id, uint64_t sequence, uint64_t acked,
                           const std::string& key) {
  ballot::paxos::Command c;
  c.client_id = client_id;
  c.sequence = sequence;
  c.acked_sequence = acked;
  c.payload = KvStore::EncodePut(key, std::to_string(client_id) + "/" + std::to_string(sequence));
  return c;
}

void ContinueFrom(Applier& applier) {
  const ballot::paxos::Slot slot = applier.applied_below();
  if (slot >= kSlotMax) return;
  ballot::paxos::Entry entry;
  entry.slot = slot;
  entry.ballot = ballot::paxos::Ballot(1, 1);
  entry.value.epoch = entry.ballot;
  std::vector<ballot::paxos::Command> commands;
  for (uint64_t client_id : {uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{77}}) {
    const uint64_t floor = applier.sessions().floor_sequence(client_id);
    commands.push_back(Put(client_id, floor + 1, floor, "k"));
    commands.push_back(Put(client_id, floor + 1, floor, "k"));  // a retry in the same entry
    if (floor > 0) commands.push_back(Put(client_id, floor, 0, "old"));
  }
  for (auto& c : commands) entry.value.commands.push_back(std::move(c));
  std::vector<ballot::Reply> replies;
  applier.Apply({entry}, &replies);
  CHECK_EQ(replies.size(), entry.value.commands.size());
  CHECK_EQ(applier.applied_below(), slot + 1);
  for (size_t i = 0; i + 1 < replies.size(); ++i) {
    if (replies[i].sequence == replies[i + 1].sequence &&
        replies[i].client_id == replies[i + 1].client_id && !replies[i].duplicate) {
      CHECK(replies[i + 1].duplicate) << "a retry in one entry was applied twice";
      CHECK(replies[i + 1].outcome == replies[i].outcome);
    }
  }
  Applier copy(std::make_unique<KvStore>());
  CHECK(copy.Restore(applier.Snapshot()).ok());
}

}  // namespace

BALLOT_FUZZ_TARGET(applier_restore) {
  const std::string_view in = ballot::fuzz::AsView(data, size);
  Applier applier(std::make_unique<KvStore>());
  const std::string before = applier.Snapshot();
  ballot::Status s = applier.Restore(in);
  if (!s.ok()) {
    CHECK(ballot::fuzz::RejectedAsCorrupt(s)) << s.ToString();
    // A failure inside the machine's own Restore may leave the machine unusable (the contract
    // says so); a failure before it must leave everything as it was.
    if (s.message().find("kv snapshot") == std::string::npos) {
      CHECK(applier.Snapshot() == before) << "a rejected snapshot changed the applier";
    }
    return;
  }
  if (in.size() > 4 && in[4] == 2) {
    // The previous format is read and written back as the current one, which reads back equal.
    Applier again(std::make_unique<KvStore>());
    CHECK(again.Restore(applier.Snapshot()).ok());
    CHECK(again.Snapshot() == applier.Snapshot()) << "an older snapshot did not settle";
  } else {
    CHECK(applier.Snapshot() == in) << "Restore accepted what Snapshot() would not write";
  }
  ContinueFrom(applier);
}
