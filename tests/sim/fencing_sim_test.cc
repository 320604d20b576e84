// Fencing tokens under simulation (issue 5 item 4).
//
// 1. Epochs. Hundreds of seeded simulator runs (3 and 5 nodes, short chaos phases). A
//    CheckerObserver hears every leadership event in virtual-time order and plays it against a
//    FenceGuard standing for a downstream resource: a node that becomes leader writes with its
//    epoch, and a node that learns it lost its leadership makes one last write with its epoch
//    (the write it had in flight when it noticed; the latest moment a deposed leader still acts).
//    The guard must never admit a token below one it admitted, and each rejection must be of a
//    token below its highest; rejected writes of deposed (stale) leaders are counted and printed.
//    Independently of the Checker, no epoch may be announced twice, across crashes and restarts,
//    and every epoch must belong to the node that announced it.
//
// 2. Lock grants on the simulated logs. The simulator's state machine is not pluggable: SimNode
//    builds an Applier over a SequenceGenerator itself, clients send next(n), and the Checker
//    checks numbers. So the lock service runs beside it as a shadow: every entry a node applies is
//    rewritten into lock commands (each command's (client id, sequence) picks a deterministic
//    acquire / keepalive / release of one of a few named locks, with a TTL on the simulated
//    leader's stamped time) and applied to that node's own Applier over a LockService. Node
//    shadows follow their node's real apply stream, crashes, restarts and snapshot installs
//    included (a node that resumes at slot s is rebuilt from a Snapshot()/Restore() of the state
//    at s); every node's replies must equal the reference replica's, and the reference stream
//    is checked by LockOracle: every outcome as the rules predict, grant tokens unique and
//    strictly increasing, no grant while another owner holds the lock, and, through a
//    FenceGuard per lock, the previous holder's write is refused once the new holder registered.
//
// 3. Lock replicas on generated logs (the focused test the brief asks for when the simulator
//    has no state-machine factory): per seed, a random log with leader changes, skewed leader
//    clocks, stale leader_start markers, no-ops, retries and expected_epoch commands; 3 to 5
//    replicas apply it in different random batches with snapshot round trips; all replies and
//    final states must agree and the oracle must accept the stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "paxos/ready.h"
#include "paxos/types.h"
#include "statemachine/applier.h"
#include "statemachine/samples/lock.h"
#include "store/fence.h"
#include "tests/sim/checker.h"
#include "tests/sim/rng.h"
#include "tests/sim/simulator.h"

namespace ballot::sim {
namespace {

using fence::FenceGuard;
using samples::LockService;

// --- The lock workload -------------------------------------------------------------------------

struct LockOp {
  enum class Kind { kAcquire, kKeepAlive, kRelease };
  Kind kind = Kind::kAcquire;
  std::string name;
  std::string owner;
  uint64_t ttl_ms = 0;  // acquire only
};

constexpr uint64_t kLockNames = 2;
constexpr uint64_t kTtlMsMin = 10;     // LockService::Limits::ttl_ms_min
constexpr uint64_t kTtlMsMax = 200;    // a few client think times: holds expire often
constexpr uint64_t kInvalidTtlMs = 1;  // below ttl_ms_min: kInvalidArgument

// The lock command a (client, sequence) stands for. A pure function, so that a retry (same
// client and sequence) is the same command wherever it appears.
LockOp LockOpFor(uint64_t client_id, uint64_t sequence) {
  const uint64_t h = Mix64(client_id * 0x9E3779B97F4A7C15ull ^ Mix64(sequence + 0x51));
  LockOp op;
  const uint64_t kind = h % 100;
  op.kind = kind < 55   ? LockOp::Kind::kAcquire
            : kind < 80 ? LockOp::Kind::kKeepAlive
                        : LockOp::Kind::kRelease;
  op.name = "job" + std::to_string((h >> 8) % kLockNames);
  op.owner = "client" + std::to_string(client_id);
  op.ttl_ms = (h >> 16) % 50 == 0 ? kInvalidTtlMs : kTtlMsMin + (h >> 24) % (kTtlMsMax - kTtlMsMin);
  return op;
}

std::string EncodeLockOp(const LockOp& op) {
  switch (op.kind) {
    case LockOp::Kind::kAcquire:
      return LockService::EncodeAcquire(op.name, op.owner, op.ttl_ms);
    case LockOp::Kind::kKeepAlive:
      return LockService::EncodeKeepAlive(op.name, op.owner);
    case LockOp::Kind::kRelease:
      return LockService::EncodeRelease(op.name, op.owner);
  }
  return "";
}

// The entry with every command's payload replaced by its lock command.
paxos::Entry ToLockEntry(const paxos::Entry& e) {
  paxos::Entry out = e;
  for (size_t i = 0; i < out.value.commands.size(); ++i) {
    paxos::Command& c = out.value.commands.mutable_at(i);
    c.payload = EncodeLockOp(LockOpFor(c.client_id, c.sequence));
  }
  return out;
}

std::unique_ptr<Applier> NewLockApplier() {
  return std::make_unique<Applier>(std::make_unique<LockService>());
}

const LockService& Locks(Applier& a) { return dynamic_cast<const LockService&>(a.machine()); }

bool SameReply(const Reply& a, const Reply& b) {
  return a.client_id == b.client_id && a.sequence == b.sequence && a.slot == b.slot &&
         a.epoch == b.epoch && a.outcome == b.outcome && a.duplicate == b.duplicate;
}

std::string ReplyString(const Reply& r) {
  std::ostringstream os;
  os << "{client " << r.client_id << " seq " << r.sequence << " slot " << r.slot << " epoch "
     << r.epoch << " code " << static_cast<int>(r.outcome.code) << " '" << r.outcome.message << "'"
     << (r.duplicate ? " duplicate" : "");
  if (r.outcome.code == StatusCode::kOk && !r.outcome.data.empty()) {
    auto g = LockService::DecodeGrant(r.outcome.data);
    if (g.ok()) os << " token " << g.value().token << " expires " << g.value().expires_at_ms;
  }
  os << "}";
  return os.str();
}

// --- LockOracle: the lock rules, checked against one replica's replies in log order ------------

struct LockCounts {
  uint64_t grants = 0;    // new holders, each with a new token
  uint64_t extends = 0;   // acquire or keepalive by the holder
  uint64_t refusals = 0;  // kAborted by the lock rules
  uint64_t releases = 0;
  uint64_t invalid = 0;                // kInvalidArgument (bad ttl)
  uint64_t duplicates = 0;             // answered from the session table
  uint64_t epoch_rejected = 0;         // expected_epoch did not match
  uint64_t stale_writes_rejected = 0;  // a replaced holder's write refused by the resource
  uint64_t holder_writes = 0;          // writes by the current holder (all admitted)

  void Add(const LockCounts& o) {
    grants += o.grants;
    extends += o.extends;
    refusals += o.refusals;
    releases += o.releases;
    invalid += o.invalid;
    duplicates += o.duplicates;
    epoch_rejected += o.epoch_rejected;
    stale_writes_rejected += o.stale_writes_rejected;
    holder_writes += o.holder_writes;
  }
  std::string ToString() const {
    std::ostringstream os;
    os << grants << " grants, " << extends << " extends, " << releases << " releases, " << refusals
       << " refusals, " << invalid << " invalid, " << duplicates << " duplicates, "
       << epoch_rejected << " epoch-rejected; resource: " << holder_writes
       << " holder writes admitted, " << stale_writes_rejected
       << " writes of replaced holders rejected";
    return os.str();
  }
};

class LockOracle {
 public:
  // `replies`: the Applier's replies to the entry's commands, in order.
  void OnEntry(const paxos::Entry& e, const Reply* replies, size_t count) {
    if (failed()) return;
    if (count != e.value.commands.size()) {
      return Fail("slot " + std::to_string(e.slot) + ": " + std::to_string(count) +
                  " replies for " + std::to_string(e.value.commands.size()) + " commands");
    }
    if (e.value.leader_start && e.value.epoch.raw() > log_epoch_) log_epoch_ = e.value.epoch.raw();
    for (size_t i = 0; i < count && !failed(); ++i)
      OnCommand(e.slot, e.value.commands[i], replies[i]);
  }

  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  const LockCounts& counts() const { return counts_; }

 private:
  struct Hold {
    std::string owner;
    uint64_t token = 0;
    uint64_t ttl_ms = 0;
    uint64_t expires_at_ms = 0;
    bool released = false;
  };
  using Key = std::pair<uint64_t, uint64_t>;  // (client id, sequence)

  void Fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  void OnCommand(paxos::Slot slot, const paxos::Command& c, const Reply& r) {
    const std::string where = "slot " + std::to_string(slot) + " " + ReplyString(r) + ": ";
    if (r.client_id != c.client_id || r.sequence != c.sequence || r.slot != slot) {
      return Fail(where + "reply does not match its command");
    }
    // The fencing token every command runs under is the log's epoch: the newest leader_start
    // that raised it. It never goes down.
    if (r.epoch != log_epoch_) {
      return Fail(where + "ran under epoch " + std::to_string(r.epoch) + ", log epoch is " +
                  std::to_string(log_epoch_));
    }
    const Key key{c.client_id, c.sequence};
    if (r.duplicate) {
      ++counts_.duplicates;
      auto it = first_outcome_.find(key);
      if (it != first_outcome_.end() && !(it->second == r.outcome)) {
        Fail(where + "a retry got another answer than the original");
      }
      return;
    }
    if (r.outcome.code == StatusCode::kAborted &&
        r.outcome.message.rfind("session expired", 0) == 0) {
      return;  // the session table cannot tell; the machine never saw it
    }
    if (first_outcome_.count(key) != 0) return Fail(where + "applied twice");
    first_outcome_.emplace(key, r.outcome);
    if (c.expected_epoch != 0 && c.expected_epoch != log_epoch_) {
      ++counts_.epoch_rejected;
      if (r.outcome.code != StatusCode::kAborted) {
        Fail(where + "expected epoch " + std::to_string(c.expected_epoch) + " but it ran");
      }
      return;
    }
    now_ms_ = std::max(now_ms_, c.stamp_ms);  // every command the machine sees moves time
    Check(slot, LockOpFor(c.client_id, c.sequence), r.outcome, where);
  }

  // The hold on `name` if someone holds it now.
  Hold* Held(const std::string& name) {
    auto it = holds_.find(name);
    if (it == holds_.end() || it->second.released || it->second.expires_at_ms <= now_ms_) {
      return nullptr;
    }
    return &it->second;
  }

  void Check(paxos::Slot slot, const LockOp& op, const Outcome& got, const std::string& where) {
    if (op.kind == LockOp::Kind::kAcquire && op.ttl_ms < kTtlMsMin) {
      ++counts_.invalid;
      if (got.code != StatusCode::kInvalidArgument)
        Fail(where + "accepted ttl_ms " + std::to_string(op.ttl_ms));
      return;
    }
    Hold* held = Held(op.name);
    const bool mine = held != nullptr && held->owner == op.owner;
    if (op.kind == LockOp::Kind::kRelease) {
      if (!mine) return Refused(got, where, "release of a lock not held by its owner");
      if (got.code != StatusCode::kOk) return Fail(where + "release by the holder refused");
      held->released = true;
      ++counts_.releases;
      return;
    }
    if (op.kind == LockOp::Kind::kKeepAlive && !mine) {
      return Refused(got, where, "keepalive of a lock not held by its owner");
    }
    if (held != nullptr && !mine) {
      return Refused(got, where,
                     "acquire of a lock held by " + held->owner + " until " +
                         std::to_string(held->expires_at_ms));
    }
    if (got.code != StatusCode::kOk) return Fail(where + "refused, but the rules grant it");
    auto grant = LockService::DecodeGrant(got.data);
    if (!grant.ok()) return Fail(where + "bad grant: " + grant.status().ToString());
    if (mine) {  // extend: same token, TTL from now
      if (op.kind == LockOp::Kind::kAcquire) held->ttl_ms = op.ttl_ms;
      held->expires_at_ms = now_ms_ + held->ttl_ms;
      if (grant.value() != LockService::Grant{held->token, held->expires_at_ms}) {
        return Fail(where + "extend should keep token " + std::to_string(held->token) + " until " +
                    std::to_string(held->expires_at_ms));
      }
      ++counts_.extends;
      HolderWrite(op.name, held->token, where);
      return;
    }
    NewGrant(slot, op, grant.value(), where);
  }

  void Refused(const Outcome& got, const std::string& where, const std::string& why) {
    ++counts_.refusals;
    if (got.code != StatusCode::kAborted) Fail(where + why + " was not refused");
  }

  void NewGrant(paxos::Slot slot, const LockOp& op, const LockService::Grant& g,
                const std::string& where) {
    // Tokens strictly increase across every grant of every lock (so no two grants share one),
    // and are anchored to the slot.
    if (g.token <= last_token_) {
      return Fail(where + "new grant's token is not above the last token " +
                  std::to_string(last_token_));
    }
    if (!tokens_.insert(g.token).second) return Fail(where + "token granted twice");
    const uint64_t expected = std::max(last_token_ + 1, slot);
    if (g.token != expected || g.expires_at_ms != now_ms_ + op.ttl_ms) {
      return Fail(where + "expected token " + std::to_string(expected) + " until " +
                  std::to_string(now_ms_ + op.ttl_ms));
    }
    last_token_ = g.token;
    ++counts_.grants;
    // The new holder registers with the resource before it acts; from then on the holder it
    // replaced (expired or released) is refused, however late its write arrives.
    const std::string resource = "lock:" + op.name;
    std::optional<uint64_t> previous;
    if (auto it = holds_.find(op.name); it != holds_.end()) previous = it->second.token;
    holds_[op.name] = Hold{op.owner, g.token, op.ttl_ms, g.expires_at_ms, false};
    HolderWrite(op.name, g.token, where);
    if (!previous) return;
    const Status stale = guard_.Admit(resource, *previous);
    if (stale.code() != StatusCode::kAborted) {
      return Fail(where + "the resource admitted replaced token " + std::to_string(*previous) +
                  " after token " + std::to_string(g.token) + " registered: " + stale.ToString());
    }
    ++counts_.stale_writes_rejected;
  }

  void HolderWrite(const std::string& name, uint64_t token, const std::string& where) {
    const Status s = guard_.Admit("lock:" + name, token);
    if (!s.ok()) return Fail(where + "the resource refused the holder's token: " + s.ToString());
    ++counts_.holder_writes;
  }

  std::string failure_;
  uint64_t log_epoch_ = 0;
  uint64_t now_ms_ = 0;
  uint64_t last_token_ = 0;
  std::set<uint64_t> tokens_;
  std::map<std::string, Hold> holds_;  // the newest hold per lock, released or expired too
  std::map<Key, Outcome> first_outcome_;
  FenceGuard guard_;
  LockCounts counts_;
};

// --- EpochFence: leadership events against a fenced resource -----------------------------------

struct EpochCounts {
  uint64_t leaderships = 0;      // kBecameLeader events
  uint64_t became_admitted = 0;  // a new leader's first write, admitted
  uint64_t became_rejected = 0;  // a new leader already fenced off by a newer one
  uint64_t lost_admitted = 0;    // a departing leader's last write, still the newest
  uint64_t lost_rejected = 0;    // a deposed leader's write after a newer leader wrote
  void Add(const EpochCounts& o) {
    leaderships += o.leaderships;
    became_admitted += o.became_admitted;
    became_rejected += o.became_rejected;
    lost_admitted += o.lost_admitted;
    lost_rejected += o.lost_rejected;
  }
  std::string ToString() const {
    std::ostringstream os;
    os << leaderships << " leaderships; writes on becoming leader: " << became_admitted
       << " admitted, " << became_rejected
       << " rejected; last writes on losing it: " << lost_admitted << " admitted, " << lost_rejected
       << " rejected (stale leaders)";
    return os.str();
  }
};

class EpochFence {
 public:
  static constexpr const char* kResource = "epoch:resource";

  void OnLeadershipEvent(paxos::NodeId n, const paxos::LeadershipEvent& e) {
    if (failed()) return;
    const uint64_t epoch = e.epoch.raw();
    const std::string what = "node " + std::to_string(n) + " epoch " + paxos::ToString(e.epoch);
    if (e.kind == paxos::LeadershipEvent::Kind::kBecameLeader) {
      ++counts_.leaderships;
      if (e.epoch.node() != n) return Fail(what + ": announced an epoch of another node");
      auto [it, fresh] = announced_.emplace(epoch, n);
      if (!fresh)
        return Fail(what + ": announced twice (first by node " + std::to_string(it->second) + ")");
      Write(epoch, what + " becomes leader", &counts_.became_admitted, &counts_.became_rejected);
    } else {
      if (announced_.count(epoch) == 0) return Fail(what + ": lost a leadership never announced");
      Write(epoch, what + " loses leadership", &counts_.lost_admitted, &counts_.lost_rejected);
    }
  }

  // End of run: the resource's highest token is the newest epoch announced.
  void Finish() {
    if (failed() || announced_.empty()) return;
    const uint64_t newest = announced_.rbegin()->first;
    if (guard_.Highest(kResource) != newest) {
      Fail("resource's highest token " + std::to_string(guard_.Highest(kResource)) +
           " is not the newest epoch " + std::to_string(newest));
    }
  }

  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  const EpochCounts& counts() const { return counts_; }

 private:
  void Fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  // One write attempt with `token`: the guard must admit it iff it is at least the highest
  // admitted so far, and its highest must never go down.
  void Write(uint64_t token, const std::string& what, uint64_t* admitted, uint64_t* rejected) {
    const uint64_t before = guard_.Highest(kResource);
    const Status s = guard_.Admit(kResource, token);
    const uint64_t after = guard_.Highest(kResource);
    if (after < before) return Fail(what + ": the highest token went down");
    if (s.ok()) {
      if (token < before || after != token) {
        return Fail(what + ": admitted token " + std::to_string(token) + " below highest " +
                    std::to_string(before));
      }
      ++*admitted;
    } else if (s.code() == StatusCode::kAborted) {
      if (token >= before || after != before) {
        return Fail(what + ": rejected token " + std::to_string(token) + " at highest " +
                    std::to_string(before) + ": " + s.ToString());
      }
      ++*rejected;
    } else {
      Fail(what + ": " + s.ToString());
    }
  }

  std::string failure_;
  std::map<uint64_t, paxos::NodeId> announced_;
  FenceGuard guard_;
  EpochCounts counts_;
};

// --- LockShadows: a LockService replica beside every simulated node ----------------------------

class LockShadows {
 public:
  // The reference keeps a snapshot every this many slots, to rebuild node shadows from.
  static constexpr paxos::Slot kSnapshotEverySlots = 64;

  explicit LockShadows(int nodes) : nodes_(nodes + 1), reference_(NewLockApplier()) {
    snapshots_.emplace(1, reference_->Snapshot());
  }

  void OnApply(paxos::NodeId n, const paxos::Entry& raw) {
    if (failed()) return;
    const paxos::Entry e = ToLockEntry(raw);
    if (e.slot == log_.size() + 1) {
      Extend(e);
    } else if (e.slot > log_.size()) {
      return Fail("node " + std::to_string(n) + " applied slot " + std::to_string(e.slot) +
                  " beyond the known prefix " + std::to_string(log_.size()));
    } else if (!(log_[e.slot - 1].value == e.value)) {  // ballots may differ; values may not
      return Fail("node " + std::to_string(n) + " applied another value at slot " +
                  std::to_string(e.slot));
    }
    std::unique_ptr<Applier>& shadow = nodes_.at(n);
    if (shadow == nullptr || shadow->applied_below() != e.slot) {
      shadow = Rebuild(e.slot);  // a start, restart or snapshot install: resume where it does
      ++rebuilds_;
      if (shadow == nullptr) return;
    }
    std::vector<Reply> replies;
    shadow->Apply({e}, &replies);
    const std::vector<Reply>& want = replies_[e.slot - 1];
    if (replies.size() != want.size())
      return Fail("reply count differs at slot " + std::to_string(e.slot));
    for (size_t i = 0; i < replies.size(); ++i) {
      if (!SameReply(replies[i], want[i])) {
        return Fail("node " + std::to_string(n) + "'s lock replica answered " +
                    ReplyString(replies[i]) + ", the reference " + ReplyString(want[i]));
      }
    }
  }

  bool failed() const { return !failure_.empty() || oracle_.failed(); }
  std::string failure() const { return failure_.empty() ? oracle_.failure() : failure_; }
  const LockCounts& counts() const { return oracle_.counts(); }
  uint64_t rebuilds() const { return rebuilds_; }
  paxos::Slot slots() const { return log_.size(); }

 private:
  void Fail(const std::string& what) {
    if (failure_.empty()) failure_ = what;
  }

  void Extend(const paxos::Entry& e) {
    log_.push_back(e);
    std::vector<Reply> replies;
    reference_->Apply({e}, &replies);
    oracle_.OnEntry(e, replies.data(), replies.size());
    replies_.push_back(std::move(replies));
    if ((reference_->applied_below() - 1) % kSnapshotEverySlots == 0) {
      snapshots_.emplace(reference_->applied_below(), reference_->Snapshot());
    }
  }

  // A shadow whose next slot is `below`: restored from the newest reference snapshot at or
  // before it, then the rest of the log applied as one batch.
  std::unique_ptr<Applier> Rebuild(paxos::Slot below) {
    auto snapshot = std::prev(snapshots_.upper_bound(below));
    std::unique_ptr<Applier> a = NewLockApplier();
    const Status restored = a->Restore(snapshot->second);
    if (!restored.ok()) {
      Fail("restoring a lock snapshot at slot " + std::to_string(snapshot->first) + ": " +
           restored.ToString());
      return nullptr;
    }
    std::vector<paxos::Entry> rest(log_.begin() + (snapshot->first - 1),
                                   log_.begin() + (below - 1));
    std::vector<Reply> ignored;
    if (!rest.empty()) a->Apply(rest, &ignored);
    return a;
  }

  std::string failure_;
  std::vector<paxos::Entry> log_;                 // lock entries, slot s at s - 1
  std::vector<std::vector<Reply>> replies_;       // the reference's, by slot - 1
  std::map<paxos::Slot, std::string> snapshots_;  // applied_below -> reference Snapshot()
  std::vector<std::unique_ptr<Applier>> nodes_;   // by node id
  std::unique_ptr<Applier> reference_;
  LockOracle oracle_;
  uint64_t rebuilds_ = 0;
};

class FencingObserver final : public CheckerObserver {
 public:
  explicit FencingObserver(int nodes) : locks_(nodes) {}
  void OnLeadershipEvent(paxos::NodeId n, const paxos::LeadershipEvent& e) override {
    epochs_.OnLeadershipEvent(n, e);
  }
  void OnApply(paxos::NodeId n, const paxos::Entry& e) override { locks_.OnApply(n, e); }

  EpochFence& epochs() { return epochs_; }
  LockShadows& locks() { return locks_; }

 private:
  EpochFence epochs_;
  LockShadows locks_;
};

// --- The sweeps --------------------------------------------------------------------------------

struct SweepTotals {
  uint64_t seeds = 0;
  EpochCounts epochs;
  LockCounts locks;
  uint64_t rebuilds = 0;
  uint64_t slots = 0;
  std::vector<uint64_t> stale_leader_seeds;  // seeds where a deposed leader's write bounced
};

// Runs `seeds` seeds from `first`; returns one failure line per failing seed.
std::vector<std::string> RunFencingSweep(int nodes, uint64_t first, uint64_t seeds,
                                         uint64_t chaos_ticks, SweepTotals* totals) {
  std::vector<std::string> failures;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    FencingObserver observer(nodes);
    SimConfig config;
    config.seed = seed;
    config.nodes = nodes;
    config.chaos_ticks = chaos_ticks;
    config.observer = &observer;
    const SimResult r = RunSimulation(config);
    observer.epochs().Finish();
    std::string why;
    if (!r.ok()) why = "simulator: " + r.violation;
    if (why.empty() && observer.epochs().failed())
      why = "epoch fence: " + observer.epochs().failure();
    if (why.empty() && observer.locks().failed()) why = "locks: " + observer.locks().failure();
    if (!why.empty()) {
      config.observer = nullptr;
      failures.push_back("seed " + std::to_string(seed) + " nodes " + std::to_string(nodes) + ": " +
                         why + "\nreplay: " + ReplayCommand(config));
    }
    ++totals->seeds;
    if (observer.epochs().counts().lost_rejected > 0) totals->stale_leader_seeds.push_back(seed);
    totals->epochs.Add(observer.epochs().counts());
    totals->locks.Add(observer.locks().counts());
    totals->rebuilds += observer.locks().rebuilds();
    totals->slots += observer.locks().slots();
  }
  return failures;
}

void RunAndReport(int nodes, uint64_t first, uint64_t seeds, uint64_t chaos_ticks) {
  const auto start = std::chrono::steady_clock::now();
  SweepTotals totals;
  const std::vector<std::string> failures =
      RunFencingSweep(nodes, first, seeds, chaos_ticks, &totals);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const std::string& f : failures) ADD_FAILURE() << f;
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << seeds << " seeds failed";
  std::printf("[ fencing ] %d nodes, seeds %llu..%llu, chaos %llu ticks, %.1f s\n", nodes,
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + seeds - 1),
              static_cast<unsigned long long>(chaos_ticks), seconds);
  std::printf("[ fencing ]   epochs: %s\n", totals.epochs.ToString().c_str());
  std::string stale_seeds;
  for (uint64_t s : totals.stale_leader_seeds) stale_seeds += " " + std::to_string(s);
  std::printf("[ fencing ]   seeds with a stale leader's write rejected:%s\n",
              stale_seeds.empty() ? " none" : stale_seeds.c_str());
  std::printf("[ fencing ]   locks over %llu slots (%llu shadow rebuilds): %s\n",
              static_cast<unsigned long long>(totals.slots),
              static_cast<unsigned long long>(totals.rebuilds), totals.locks.ToString().c_str());
  // The sweep must have exercised what it claims to check.
  EXPECT_GT(totals.epochs.leaderships, seeds);
  EXPECT_GT(totals.locks.grants, seeds);
  EXPECT_GT(totals.locks.stale_writes_rejected, 0u);
  EXPECT_GT(totals.locks.refusals, 0u);
}

class FencingSimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InstallCheckFailureReporter(); }
};

// Seeds from 2,000,001 so that they do not repeat the other sweeps' seeds.
TEST_F(FencingSimTest, ThreeNodes300Seeds) { RunAndReport(3, 2'000'001, 300, 1000); }
TEST_F(FencingSimTest, FiveNodes100Seeds) { RunAndReport(5, 2'000'001, 100, 1000); }

// The observer only watches: a run with one replays exactly the run without.
TEST_F(FencingSimTest, ObserverDoesNotChangeTheRun) {
  for (uint64_t seed = 2'000'001; seed < 2'000'011; ++seed) {
    SimConfig config;
    config.seed = seed;
    config.chaos_ticks = 1000;
    const SimResult plain = RunSimulation(config);
    FencingObserver observer(config.nodes);
    config.observer = &observer;
    const SimResult watched = RunSimulation(config);
    EXPECT_EQ(plain.trace_hash, watched.trace_hash) << "seed " << seed;
    EXPECT_EQ(plain.ops_acked, watched.ops_acked) << "seed " << seed;
  }
}

// The checks have teeth: an epoch announced twice, and a stale leader's write, are seen.
TEST_F(FencingSimTest, EpochFenceFlagsADuplicateEpoch) {
  using Kind = paxos::LeadershipEvent::Kind;
  EpochFence fence;
  fence.OnLeadershipEvent(1, {Kind::kBecameLeader, paxos::Ballot(1, 1), 1});
  fence.OnLeadershipEvent(2, {Kind::kBecameLeader, paxos::Ballot(2, 2), 3});
  fence.OnLeadershipEvent(1, {Kind::kLostLeadership, paxos::Ballot(1, 1), 0});
  EXPECT_FALSE(fence.failed()) << fence.failure();
  EXPECT_EQ(fence.counts().lost_rejected, 1u);  // node 1's late write bounced
  fence.OnLeadershipEvent(1, {Kind::kBecameLeader, paxos::Ballot(1, 1), 5});
  EXPECT_TRUE(fence.failed());
  EXPECT_NE(fence.failure().find("announced twice"), std::string::npos) << fence.failure();
}

// --- Lock replicas on generated logs -----------------------------------------------------------

struct GeneratedLog {
  std::vector<paxos::Entry> entries;
  uint64_t leader_changes = 0;
};

// A log as Multi-Paxos could choose it: leader changes (each a leader_start with a higher epoch,
// the new leader's clock up to 300 ms behind or ahead), stale leader_start markers that do not
// raise the epoch, no-ops, batches of commands from 5 clients with retries (same client and
// sequence, stamped anew), and commands that carry the current or an old expected_epoch.
GeneratedLog GenerateLockLog(uint64_t seed) {
  Rng rng(Mix64(seed) ^ 0xF3A7C3D5ull);
  GeneratedLog log;
  const paxos::Slot slots = rng.Uniform(100, 400);
  uint64_t round = 1;
  paxos::Ballot epoch(round, 1);
  std::vector<paxos::Ballot> old_epochs;
  uint64_t clock_ms = 1'000'000;
  constexpr uint64_t kClients = 5;
  std::vector<uint64_t> next_sequence(kClients + 1, 1);
  auto entry = [&](paxos::Slot slot, paxos::Ballot e, bool leader_start) {
    paxos::Entry out;
    out.slot = slot;
    out.ballot = e;
    out.value.epoch = e;
    out.value.leader_start = leader_start;
    return out;
  };
  log.entries.push_back(entry(1, epoch, true));
  for (paxos::Slot slot = 2; slot <= slots; ++slot) {
    const uint64_t roll = rng.Uniform(0, 99);
    if (roll < 5) {
      old_epochs.push_back(epoch);
      round += rng.Uniform(1, 3);
      epoch = paxos::Ballot(round, static_cast<paxos::NodeId>(rng.Uniform(1, 5)));
      clock_ms = clock_ms + rng.Uniform(0, 600) - 300;  // the new leader's clock
      ++log.leader_changes;
      log.entries.push_back(entry(slot, epoch, true));
      continue;
    }
    if (roll < 7 && !old_epochs.empty()) {  // a leadership that never became usable
      const paxos::Ballot stale = old_epochs[rng.Uniform(0, old_epochs.size() - 1)];
      log.entries.push_back(entry(slot, paxos::Ballot(stale.round(), stale.node()), true));
      continue;
    }
    paxos::Entry e = entry(slot, epoch, false);
    if (roll >= 10) {  // otherwise a no-op
      const uint64_t commands = rng.Uniform(1, 6);
      for (uint64_t i = 0; i < commands; ++i) {
        paxos::Command c;
        c.client_id = rng.Uniform(1, kClients);
        const bool retry = next_sequence[c.client_id] > 1 && rng.Chance(0.15);
        c.sequence = retry ? next_sequence[c.client_id] - 1 : next_sequence[c.client_id]++;
        clock_ms += rng.Uniform(0, 40);
        c.stamp_ms = clock_ms;
        const uint64_t expect = rng.Uniform(0, 99);
        if (expect < 12) {
          c.expected_epoch = epoch.raw();
        } else if (expect < 20 && !old_epochs.empty()) {
          c.expected_epoch = old_epochs.back().raw();
        }
        c.payload = EncodeLockOp(LockOpFor(c.client_id, c.sequence));
        e.value.commands.push_back(std::move(c));
      }
    }
    log.entries.push_back(std::move(e));
  }
  return log;
}

struct ReplicaRun {
  std::vector<Reply> replies;  // in log order
  std::string final_snapshot;
  uint64_t last_token = 0;
  uint64_t now_ms = 0;
  uint64_t round_trips = 0;
};

// Applies the log in random batches, with Snapshot()/Restore() round trips between batches (a
// restart from a snapshot).
ReplicaRun RunReplica(const GeneratedLog& log, uint64_t seed, std::string* failure) {
  Rng rng(seed);
  ReplicaRun run;
  std::unique_ptr<Applier> a = NewLockApplier();
  size_t next = 0;
  while (next < log.entries.size()) {
    const size_t batch = std::min<size_t>(rng.Uniform(1, 12), log.entries.size() - next);
    std::vector<paxos::Entry> entries(log.entries.begin() + next,
                                      log.entries.begin() + next + batch);
    a->Apply(entries, &run.replies);
    next += batch;
    if (rng.Chance(0.05)) {
      const std::string snapshot = a->Snapshot();
      std::unique_ptr<Applier> restored = NewLockApplier();
      const Status s = restored->Restore(snapshot);
      if (!s.ok() || restored->Snapshot() != snapshot) {
        *failure = "snapshot round trip at slot " + std::to_string(next) + ": " + s.ToString();
        return run;
      }
      a = std::move(restored);
      ++run.round_trips;
    }
  }
  run.final_snapshot = a->Snapshot();
  run.last_token = Locks(*a).last_token();
  run.now_ms = Locks(*a).now_ms();
  return run;
}

// Empty if every replica agrees and the oracle accepts the stream; else why not.
std::string CheckLockReplicas(uint64_t seed, LockCounts* counts, uint64_t* round_trips) {
  const GeneratedLog log = GenerateLockLog(seed);
  const int replicas = 3 + static_cast<int>(seed % 3);
  std::vector<ReplicaRun> runs;
  for (int i = 0; i < replicas; ++i) {
    std::string failure;
    runs.push_back(RunReplica(log, Mix64(seed * 31 + static_cast<uint64_t>(i)), &failure));
    if (!failure.empty()) return "replica " + std::to_string(i) + ": " + failure;
    *round_trips += runs.back().round_trips;
  }
  for (int i = 1; i < replicas; ++i) {
    if (runs[i].replies.size() != runs[0].replies.size()) {
      return "replica " + std::to_string(i) + " has " + std::to_string(runs[i].replies.size()) +
             " replies, replica 0 " + std::to_string(runs[0].replies.size());
    }
    for (size_t r = 0; r < runs[0].replies.size(); ++r) {
      if (!SameReply(runs[i].replies[r], runs[0].replies[r])) {
        return "replica " + std::to_string(i) + " answered " + ReplyString(runs[i].replies[r]) +
               ", replica 0 " + ReplyString(runs[0].replies[r]);
      }
    }
    if (runs[i].final_snapshot != runs[0].final_snapshot ||
        runs[i].last_token != runs[0].last_token || runs[i].now_ms != runs[0].now_ms) {
      return "replica " + std::to_string(i) + " ends in another state";
    }
  }
  LockOracle oracle;
  size_t at = 0;
  for (const paxos::Entry& e : log.entries) {
    oracle.OnEntry(e, runs[0].replies.data() + at, e.value.commands.size());
    at += e.value.commands.size();
  }
  counts->Add(oracle.counts());
  if (oracle.failed()) return "oracle: " + oracle.failure();
  return "";
}

TEST(LockReplicasTest, GeneratedLogsRandomBatchesAgreeAndTokensStrictlyIncrease) {
  constexpr uint64_t kSeeds = 500;
  const auto start = std::chrono::steady_clock::now();
  LockCounts counts;
  uint64_t round_trips = 0;
  int failed = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const std::string why = CheckLockReplicas(seed, &counts, &round_trips);
    if (why.empty()) continue;
    ADD_FAILURE() << "lock log seed " << seed << ": " << why;
    if (++failed >= 5) break;
  }
  std::printf("[ locks   ] %llu generated logs, %llu snapshot round trips, %.1f s: %s\n",
              static_cast<unsigned long long>(kSeeds), static_cast<unsigned long long>(round_trips),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
              counts.ToString().c_str());
  EXPECT_GT(counts.grants, kSeeds);
  EXPECT_GT(counts.stale_writes_rejected, 0u);
  EXPECT_GT(counts.epoch_rejected, 0u);
  EXPECT_GT(counts.duplicates, 0u);
  EXPECT_GT(counts.invalid, 0u);
}

// The oracle has teeth: a reply that reuses an earlier grant's token is flagged.
TEST(LockReplicasTest, OracleFlagsAReusedToken) {
  const GeneratedLog log = GenerateLockLog(7);
  std::string failure;
  ReplicaRun run = RunReplica(log, 7, &failure);
  ASSERT_TRUE(failure.empty()) << failure;
  // The first two new grants (tokens differ): give the second the first one's answer.
  std::vector<size_t> grants;
  std::set<uint64_t> seen;
  for (size_t i = 0; i < run.replies.size() && grants.size() < 2; ++i) {
    const Reply& r = run.replies[i];
    if (r.duplicate || r.outcome.code != StatusCode::kOk || r.outcome.data.empty()) continue;
    auto g = LockService::DecodeGrant(r.outcome.data);
    if (g.ok() && seen.insert(g.value().token).second) grants.push_back(i);
  }
  ASSERT_EQ(grants.size(), 2u);
  run.replies[grants[1]].outcome = run.replies[grants[0]].outcome;
  LockOracle oracle;
  size_t at = 0;
  for (const paxos::Entry& e : log.entries) {
    oracle.OnEntry(e, run.replies.data() + at, e.value.commands.size());
    at += e.value.commands.size();
  }
  EXPECT_TRUE(oracle.failed());
  std::printf("[ locks   ] tampered stream flagged: %s\n", oracle.failure().c_str());
}

}  // namespace
}  // namespace ballot::sim
