// SlotLog: the in-memory image of every slot a replica knows about, shared by its Acceptor
// (what it accepted) and its Learner (what is chosen). It also tracks which records still have
// to be written (dirty) and which are durable, because a value may be applied only once it is
// durable here.
#ifndef BALLOT_PAXOS_SLOT_LOG_H_
#define BALLOT_PAXOS_SLOT_LOG_H_

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "paxos/types.h"

namespace ballot::paxos {

struct SlotRecord {
  Entry entry;           // the accepted (or learned-chosen) ballot and value
  bool chosen = false;   // known chosen (in memory; re-learned after a restart)
  bool durable = false;  // this version of the record is synced
  uint64_t version = 0;  // bumped by every write, so a later write is not marked durable early
};

// Identifies what one persist batch wrote, for MarkDurable().
using WrittenVersions = std::vector<std::pair<Slot, uint64_t>>;

class SlotLog {
 public:
  using Records = std::map<Slot, SlotRecord>;

  SlotLog() = default;
  SlotLog(const SlotLog&) = delete;
  SlotLog& operator=(const SlotLog&) = delete;

  const SlotRecord* Find(Slot slot) const;
  // Writes a record (dirty, not yet durable). Keeps `chosen` if it was already set.
  void Write(const Entry& entry);
  void MarkChosen(Slot slot);
  // A record restored from durable storage at start-up.
  void Restore(const Entry& entry);

  bool HasDirty() const { return !dirty_.empty(); }
  // Removes and returns the dirty records, with their versions.
  std::vector<Entry> TakeDirty(WrittenVersions* versions);
  void MarkDurable(const WrittenVersions& versions);

  // Records with slot >= from, in slot order.
  std::map<Slot, SlotRecord>::const_iterator LowerBound(Slot from) const {
    return records_.lower_bound(from);
  }
  std::map<Slot, SlotRecord>::const_iterator end() const { return records_.end(); }
  Slot LastSlot() const { return records_.empty() ? 0 : records_.rbegin()->first; }
  // Forgets records below `slot` (covered by a snapshot) and returns them, unfreed: thousands of
  // slots of commands take the caller's thread 100 ms and more to free, so the runtime frees
  // them on another thread (Driver::CompactMemory). Unlinking them costs microseconds.
  Records DropBelow(Slot slot);
  Slot dropped_below() const { return dropped_below_; }

 private:
  std::map<Slot, SlotRecord> records_;
  std::set<Slot> dirty_;
  uint64_t next_version_ = 1;
  Slot dropped_below_ = 1;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_SLOT_LOG_H_
