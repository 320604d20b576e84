#include "paxos/learner.h"

#include <glog/logging.h>

#include <algorithm>

namespace ballot::paxos {

Learner::Learner(SlotLog* log, Slot chosen_below, Slot applied_below, const PlantedBugs& planted)
    : log_(log),
      planted_(planted),
      chosen_below_(std::max(chosen_below, applied_below)),
      applied_below_(applied_below) {
  CHECK_GE(applied_below_, 1u);
  for (auto it = log_->LowerBound(applied_below_); it != log_->end(); ++it) {
    if (it->first >= chosen_below_) break;
    log_->MarkChosen(it->first);
  }
  AdvanceChosenBelow();
}

void Learner::MarkChosen(Slot slot) {
  if (slot < chosen_below_ || slot < log_->dropped_below()) return;
  log_->MarkChosen(slot);
  AdvanceChosenBelow();
}

void Learner::SkipTo(Slot slot) {
  if (slot <= applied_below_) return;
  applied_below_ = slot;
  chosen_below_ = std::max(chosen_below_, slot);
  AdvanceChosenBelow();
}

bool Learner::IsChosen(Slot slot) const {
  if (slot < chosen_below_) return true;
  const SlotRecord* r = log_->Find(slot);
  return r != nullptr && r->chosen;
}

void Learner::AdvanceChosenBelow() {
  // Bounded by the number of records in the log.
  for (;;) {
    const SlotRecord* r = log_->Find(chosen_below_);
    if (r == nullptr || !r->chosen) return;
    ++chosen_below_;
  }
}

bool Learner::HasApplicable() const {
  if (applied_below_ >= chosen_below_) return false;
  const SlotRecord* r = log_->Find(applied_below_);
  return r != nullptr && r->durable;
}

void Learner::TakeApplicable(std::vector<Entry>* out) {
  if (planted_.apply_out_of_order) return TakeApplicableOutOfOrder(out);
  while (applied_below_ < chosen_below_) {
    const SlotRecord* r = log_->Find(applied_below_);
    CHECK(r != nullptr) << "chosen slot " << applied_below_ << " missing from the log";
    CHECK(r->chosen);
    if (!r->durable) return;  // applied once the value is synced here
    out->push_back(r->entry);
    ++applied_below_;
  }
}

void Learner::TakeApplicableOutOfOrder(std::vector<Entry>* out) {
  // BUG (planted for the simulator's teeth tests): applies any chosen slot, skipping gaps.
  for (auto it = log_->LowerBound(applied_below_); it != log_->end(); ++it) {
    if (!it->second.chosen || !it->second.durable) continue;
    out->push_back(it->second.entry);
    applied_below_ = it->first + 1;
  }
}

}  // namespace ballot::paxos
