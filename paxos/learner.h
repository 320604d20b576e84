// Learner: knows which slots are chosen and hands them out for application, strictly in slot
// order, each only once its value is durable on this replica.
#ifndef BALLOT_PAXOS_LEARNER_H_
#define BALLOT_PAXOS_LEARNER_H_

#include <optional>
#include <vector>

#include "paxos/options.h"
#include "paxos/slot_log.h"
#include "paxos/types.h"

namespace ballot::paxos {

class Learner {
 public:
  // Slots below chosen_below are chosen; slots below applied_below were already applied.
  Learner(SlotLog* log, Slot chosen_below, Slot applied_below, const PlantedBugs& planted);
  Learner(const Learner&) = delete;
  Learner& operator=(const Learner&) = delete;

  // The value in the log at `slot` is chosen. The log must hold it.
  void MarkChosen(Slot slot);
  bool IsChosen(Slot slot) const;

  // First slot not known to be chosen: every slot below it is chosen (the commit index).
  Slot chosen_below() const { return chosen_below_; }
  Slot applied_below() const { return applied_below_; }

  // A snapshot covers every slot below `slot`: they count as chosen and applied.
  void SkipTo(Slot slot);

  bool HasApplicable() const;
  // Appends the chosen, durable entries that come next in slot order.
  void TakeApplicable(std::vector<Entry>* out);

 private:
  void AdvanceChosenBelow();
  void TakeApplicableOutOfOrder(std::vector<Entry>* out);  // planted bug

  SlotLog* const log_;
  const PlantedBugs planted_;
  Slot chosen_below_;
  Slot applied_below_;
};

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_LEARNER_H_
