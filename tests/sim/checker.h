// Checker: the simulator's oracle. It watches every replica and client and flags the first
// violation of the safety properties:
//   (a) never two different values chosen for one slot: a global slot -> value oracle fed by
//       every replica's applied entries and by acceptor quorums (a majority durably accepted the
//       same (slot, ballot)); any disagreement is a violation;
//   (b) at most one kBecameLeader per epoch; leader_start entries have strictly increasing
//       epochs in slot order; a new leader's start slot holds its leader_start entry; a node
//       never becomes leader of an epoch lower than one it has seen in this incarnation;
//   (c) each replica applies contiguously (the caller checks continuity) the oracle's values;
//   (d) every acknowledged command is applied exactly once at each replica, with the outcome
//       the client got;
//   (e) the numbers clients received are unique and linearizable.
// Liveness (f) is the simulator's job.
#ifndef BALLOT_TESTS_SIM_CHECKER_H_
#define BALLOT_TESTS_SIM_CHECKER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "paxos/ready.h"
#include "paxos/types.h"
#include "statemachine/applier.h"
#include "tests/sim/trace.h"

namespace ballot::sim {

// One operation whose reply reached its client. Numbers are the interval [lo, hi]: a block of
// next(n) is [first, first + n - 1]; a read that saw "next is v" is [v, v - 1] (empty), so that
// "A was acknowledged before B was sent" requires A.hi < B.lo for every pair of kinds.
struct AckedOp {
  uint64_t client_id = 0;
  uint64_t op_id = 0;
  bool is_read = false;
  uint64_t sequence = 0;  // commands only
  Time sent_ms = 0;       // first send of the op
  Time acked_ms = 0;      // its reply arrived
  int64_t lo = 0;
  int64_t hi = 0;
  Outcome outcome;
};

// Test hook (tests/sim/fencing_sim_test.cc): sees every leadership event and every applied
// entry the Checker sees, in the order they happen in virtual time. An observer only watches:
// it must not change the run (the trace hash is the same with or without one).
class CheckerObserver {
 public:
  virtual ~CheckerObserver() = default;
  virtual void OnLeadershipEvent(paxos::NodeId n, const paxos::LeadershipEvent& e) = 0;
  virtual void OnApply(paxos::NodeId n, const paxos::Entry& e) = 0;
};

class Checker {
 public:
  // Per node: the commands (client id, sequence) its state machine applied, and where.
  using FreshMap = std::map<std::pair<uint64_t, uint64_t>, paxos::Slot>;

  // Node ids 1..nodes; the group starts with voters 1..founders (0: all of them) and changes
  // through membership values in the log, which the oracle follows.
  explicit Checker(int nodes, int founders = 0);

  bool failed() const { return !violation_.empty(); }
  const std::string& violation() const { return violation_; }
  // Records a violation; the first one is kept (later ones are usually consequences).
  void Fail(const std::string& what);

  // Node n starts (or restarts) with an empty state machine, or with one restored from a
  // snapshot whose applied commands were `fresh` (what fresh(n) was when it was taken).
  void OnNodeStart(paxos::NodeId n, FreshMap fresh = {});
  const FreshMap& fresh(paxos::NodeId n) const { return fresh_.at(n); }
  // Node n synced `batch`: its entries are now durably accepted there.
  void OnDurable(paxos::NodeId n, const paxos::PersistBatch& batch);
  // Node n applied `e` (the caller has checked that it continues n's applied sequence).
  void OnApply(paxos::NodeId n, const paxos::Entry& e);
  // Node n's applier passed a command to the state machine (a non-duplicate Reply).
  void OnFreshReply(paxos::NodeId n, const Reply& r);
  void OnLeadershipEvent(paxos::NodeId n, const paxos::LeadershipEvent& e);
  // A message delivered to node n showed that `epoch` was promised or led somewhere: the
  // promise an acceptor reports, or the ballot of a leader's message (the core's own rule, see
  // Replica::NoteEpochSeen).
  void OnEpochSeen(paxos::NodeId n, paxos::Ballot epoch);
  paxos::Ballot epoch_seen(paxos::NodeId n) const { return epoch_seen_.at(n); }
  // Node n told its state machine and callbacks that it leads `epoch`, with its state applied
  // below `applied_below`: every command acknowledged so far must be in that state.
  void OnAnnounced(paxos::NodeId n, uint64_t epoch, paxos::Slot applied_below);
  // A reply reached its client.
  void OnAck(const AckedOp& op);

  // End of run: (b) over the chosen log, (e) over all acknowledged operations, and (d) for
  // every node in `converged` (nodes that applied everything chosen).
  void FinalChecks(const std::vector<paxos::NodeId>& converged);

  uint64_t ops_acked() const { return acked_.size(); }
  uint64_t leader_changes() const { return leader_starts_.size(); }
  paxos::Slot known_chosen_below() const;  // first slot the oracle does not know

  // Test hook: `observer` (not owned; nullptr for none) is told of what the Checker is told.
  void TEST_SetObserver(CheckerObserver* observer) { observer_ = observer; }

 private:
  struct Chosen {
    bool known = false;
    bool leader_start = false;
    uint64_t hash = 0;
    uint64_t epoch = 0;
    std::string source;
    std::optional<uint32_t> config_voters;  // a membership change: its voters (bit n-1: node n)
  };
  struct Votes {
    uint64_t hash = 0;
    uint32_t nodes = 0;  // bit n-1 for node n
    bool chosen = false;
    paxos::Value value;  // for judging later
  };
  struct SlotBallot {
    paxos::Slot slot;
    uint64_t ballot;
    bool operator==(const SlotBallot&) const = default;
  };
  struct SlotBallotHash {
    size_t operator()(const SlotBallot& k) const {
      return Mix64(k.slot * 0x9E3779B97F4A7C15ull ^ k.ballot);
    }
  };
  struct FirstApply {
    paxos::Slot slot;
    Outcome outcome;
  };
  struct LeaderStart {
    paxos::NodeId node;
    uint64_t epoch;
    paxos::Slot start_slot;
  };
  using SessionKey = std::pair<uint64_t, uint64_t>;  // (client id, sequence)

  void Choose(paxos::Slot slot, const paxos::Value& v, uint64_t hash, const std::string& source);
  // Acceptor-quorum detection needs the voters of the slot, known once every slot below it is:
  // votes above the oracle's known prefix wait, and are judged as the prefix grows.
  void JudgeVotes(const SlotBallot& key);
  void AdvancePrefix();
  uint32_t VotersAt(paxos::Slot slot) const;
  void CheckLeaderStarts();
  void CheckUnique();
  void CheckRealTimeOrder();
  void CheckExactlyOnce(const std::vector<paxos::NodeId>& converged);

  const int nodes_;
  const bool fixed_voters_;  // no spares: the voters never change, votes are judged at once
  std::map<paxos::Slot, uint32_t> voters_from_;  // slot -> voters governing it and later slots
  paxos::Slot prefix_ = 1;                       // every slot below is known chosen
  std::map<paxos::Slot, std::vector<SlotBallot>> unjudged_;  // votes at slots >= prefix_
  bool advancing_ = false;
  std::string violation_;
  std::vector<Chosen> chosen_;  // by slot
  std::unordered_map<SlotBallot, Votes, SlotBallotHash> votes_;
  std::vector<FreshMap> fresh_;  // per node (index n): this incarnation
  std::map<SessionKey, FirstApply> first_apply_;
  std::map<uint64_t, paxos::NodeId> epochs_led_;
  std::vector<paxos::Ballot> epoch_seen_;  // per node (index n): this incarnation
  std::vector<LeaderStart> leader_starts_;
  std::vector<AckedOp> acked_;
  CheckerObserver* observer_ = nullptr;  // test hook
};

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_CHECKER_H_
