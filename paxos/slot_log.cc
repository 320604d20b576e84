#include "paxos/slot_log.h"

#include <glog/logging.h>

namespace ballot::paxos {

const SlotRecord* SlotLog::Find(Slot slot) const {
  auto it = records_.find(slot);
  return it == records_.end() ? nullptr : &it->second;
}

void SlotLog::Write(const Entry& entry) {
  CHECK_GE(entry.slot, dropped_below_) << "write below the snapshot point";
  SlotRecord& r = records_[entry.slot];
  r.entry = entry;
  r.durable = false;
  r.version = next_version_++;
  dirty_.insert(entry.slot);
}

void SlotLog::MarkChosen(Slot slot) {
  auto it = records_.find(slot);
  CHECK(it != records_.end()) << "slot " << slot << " chosen without a value";
  it->second.chosen = true;
}

void SlotLog::Restore(const Entry& entry) {
  SlotRecord& r = records_[entry.slot];
  r.entry = entry;
  r.durable = true;
  r.version = next_version_++;
}

std::vector<Entry> SlotLog::TakeDirty(WrittenVersions* versions) {
  std::vector<Entry> out;
  out.reserve(dirty_.size());
  for (Slot s : dirty_) {
    auto it = records_.find(s);
    if (it == records_.end()) continue;  // dropped by a snapshot meanwhile
    out.push_back(it->second.entry);
    versions->emplace_back(s, it->second.version);
  }
  dirty_.clear();
  return out;
}

void SlotLog::MarkDurable(const WrittenVersions& versions) {
  for (const auto& [slot, version] : versions) {
    auto it = records_.find(slot);
    if (it != records_.end() && it->second.version == version) it->second.durable = true;
  }
}

SlotLog::Records SlotLog::DropBelow(Slot slot) {
  Records dropped;
  if (slot <= dropped_below_) return dropped;
  // Node by node: extract() relinks a node without freeing it, and appending at end() with a
  // hint is amortized constant time.
  while (!records_.empty() && records_.begin()->first < slot) {
    dropped.insert(dropped.end(), records_.extract(records_.begin()));
  }
  dirty_.erase(dirty_.begin(), dirty_.lower_bound(slot));
  dropped_below_ = slot;
  return dropped;
}

}  // namespace ballot::paxos
