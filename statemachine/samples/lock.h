// LockService: replicated named locks with a time to live, and fencing tokens for their holders.
//
// For services that need their own leader election, the way Kubernetes controllers use etcd
// leases: every candidate asks for the same lock; the one granted it acts, keeps it alive while
// it works, and passes the grant's token to every resource it writes (store/fence.h), so that a
// holder that stalled past its TTL and was replaced is refused by the resources it comes back to.
//
// Commands (replicated, applied on every replica in log order):
//   acquire(name, owner, ttl_ms)  free lock: grant it to `owner` with a new token, until
//                                 now + ttl_ms. Held by `owner`: extend to now + ttl_ms, same
//                                 token. Held by someone else: kAborted naming the holder and
//                                 when its hold expires.
//   keepalive(name, owner)        held by `owner`: extend by the TTL of its last acquire, same
//                                 token; otherwise kAborted "not held by <owner>".
//   release(name, owner)          held by `owner`: free it; otherwise kAborted.
//   tick()                        nothing but time: the leader proposes it once a lock's TTL
//                                 ran out by its clock (Watchable::TickCommand), so that the
//                                 expiry is applied, and watchers see it, without other traffic.
// Query (read-only):
//   get(name)                     holder, token and expiry, or absent if the lock is free.
//
// Watches (statemachine/watchable.h; the get query names the lock). A change of a lock is a
// change of its holder or token: a grant (a new token), a release, an expiry. Extending a hold
// (keepalive, or acquire by the holder) is not a change. An expiry happens at the first command
// whose stamp reaches the expiry time (a tick, if nothing else comes). Each change's data is the
// get answer right after it. Every lock's last-change slot is replicated state (in the snapshot);
// the last kRecentChangesMax changes of each lock are kept in memory only, so a replica restored
// from a snapshot, or a watcher more than that many changes behind, gets the lock's current
// state with WatchChange::gap set. Change slots of free locks are forgotten, oldest first, beyond
// 2 * locks_max names; a watch of a forgotten name behind that point gets its current (free)
// state with gap set.
//
// Time. The machine never reads a clock. Its `now` is the largest AppliedCommand::stamp_ms it
// has seen (the leader's wall clock stamped into the log), so every replica agrees on it and it
// never goes back, even if a new leader's clock is behind the old one's. It advances with every
// command the machine sees, whatever that command's outcome: time passes whether or not a
// request is accepted, and nothing else changes on a refusal. A lock is free if it was never
// held, was released, or expired (expires_at_ms <= now). Between commands time stands still, so
// get() answers "as of the last command"; compare expires_at_ms with your own clock if you must.
//
// Tokens. Every grant gets a token strictly greater than every earlier grant's token of any
// lock: token = max(last token + 1, slot of the granting command). The counter alone would give
// the order; anchoring it to the slot costs nothing and keeps new tokens above old ones even if
// this machine's state is ever reset or migrated on the same log (slots only grow), and it lets
// an operator find the grant in the log (token == slot unless several grants shared a slot).
// These tokens are one sequence; the leader's epoch (AppliedCommand::epoch) is another. A
// resource must check one of them, never both for the same resource (docs/fencing.md).
//
// Bounds (Limits, part of the replicated rules: every replica needs the same ones): empty or
// oversized name or owner, or a ttl outside [ttl_ms_min, ttl_ms_max], is kInvalidArgument; a
// grant of a new name when locks_max locks are held (after forgetting expired ones) is kAborted.
#ifndef BALLOT_STATEMACHINE_SAMPLES_LOCK_H_
#define BALLOT_STATEMACHINE_SAMPLES_LOCK_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "paxos/status.h"
#include "statemachine/state_machine.h"
#include "statemachine/watchable.h"

namespace ballot::samples {

class LockService : public StateMachine, public Watchable {
 public:
  struct Limits {
    size_t name_bytes_max = 256;
    size_t owner_bytes_max = 256;
    uint64_t ttl_ms_min = 10;
    uint64_t ttl_ms_max = 24 * 3600 * 1000;  // one day
    size_t locks_max = 100'000;
  };

  // What acquire and keepalive answer: the holder's token and when its hold ends (leader time).
  struct Grant {
    uint64_t token = 0;
    uint64_t expires_at_ms = 0;
    friend bool operator==(const Grant&, const Grant&) = default;
  };

  // What get answers for a held lock.
  struct Holder {
    std::string owner;
    uint64_t token = 0;
    uint64_t expires_at_ms = 0;
    friend bool operator==(const Holder&, const Holder&) = default;
  };

  // Client side: command payloads (pass to Propose) and the get query. Arguments are not
  // checked here; the replicas reject bad ones.
  static std::string EncodeAcquire(std::string_view name, std::string_view owner, uint64_t ttl_ms);
  static std::string EncodeKeepAlive(std::string_view name, std::string_view owner);
  static std::string EncodeRelease(std::string_view name, std::string_view owner);
  static std::string EncodeGet(std::string_view name);
  static std::string EncodeTick();
  // Reads the data of a successful acquire or keepalive. kInvalidArgument if malformed.
  static Result<Grant> DecodeGrant(std::string_view data);
  // Reads the data of a successful get: the holder, or std::nullopt if the lock is free.
  // kInvalidArgument if malformed.
  static Result<std::optional<Holder>> DecodeGet(std::string_view data);

  LockService() : LockService(Limits()) {}
  // CHECKs that every limit is at least 1 and ttl_ms_min <= ttl_ms_max.
  explicit LockService(Limits limits);
  LockService(const LockService&) = delete;
  LockService& operator=(const LockService&) = delete;

  // Per command: acquire/keepalive -> kOk with an encoded Grant; release -> kOk, empty data;
  // kAborted when the rules refuse (held by another, not held by this owner, table full);
  // kInvalidArgument for a malformed payload or out-of-bounds arguments. Only kOk changes locks;
  // every command advances `now` (see the file comment).
  void Apply(std::span<const AppliedCommand> batch, std::vector<Outcome>* outcomes) override;
  // EncodeGet(name) -> kOk with data for DecodeGet; anything else -> kInvalidArgument.
  Outcome Query(std::string_view request) const override;
  std::string Snapshot() const override;
  // kCorruption if the snapshot is malformed or breaks the limits or the invariants (tokens at
  // most the last token, expiry at most now + ttl); the state is unchanged then.
  Status Restore(std::string_view snapshot) override;

  // Watchable.
  static constexpr size_t kRecentChangesMax = 16;  // per lock, in memory
  Result<std::optional<WatchChange>> NextChange(std::string_view query,
                                                paxos::Slot after) const override;
  uint64_t NextDeadlineMs() const override;
  std::string TickCommand() const override { return EncodeTick(); }

  uint64_t now_ms() const { return now_ms_; }
  uint64_t last_token() const { return last_token_; }
  // Locks the table remembers, including expired ones not yet forgotten.
  size_t size() const { return locks_.size(); }

 private:
  struct Lock {
    std::string owner;
    uint64_t token = 0;
    uint64_t ttl_ms = 0;
    uint64_t expires_at_ms = 0;
  };
  struct Request;
  using LockMap = std::map<std::string, Lock, std::less<>>;
  // What watches need of one lock name.
  struct Change {
    paxos::Slot slot = 0;
    std::optional<Holder> holder;  // after the change; nullopt: free
  };
  struct ChangeRecord {
    paxos::Slot slot = 0;           // the last change (replicated, in the snapshot)
    paxos::Slot complete_from = 0;  // `recent` holds every change in a slot >= this
    std::deque<Change> recent;      // memory only; at most kRecentChangesMax
  };

  Outcome ApplyOne(const AppliedCommand& command);
  Outcome Acquire(paxos::Slot slot, std::string_view name, std::string_view owner, uint64_t ttl_ms);
  Outcome KeepAlive(std::string_view name, std::string_view owner);
  Outcome Release(paxos::Slot slot, std::string_view name, std::string_view owner);
  Status CheckRequest(const Request& request) const;
  // The lock if someone holds it now; nullptr if it is free.
  Lock* HeldLock(std::string_view name);
  const Lock* HeldLock(std::string_view name) const;
  void ForgetExpired();
  // Records a change of `name` in `slot` (watches); replaces one recorded in the same slot.
  void RecordChange(paxos::Slot slot, std::string_view name, std::optional<Holder> holder);
  // Held locks whose TTL ran out by now_ms_: each is a change (free) in `slot`.
  void ExpireDue(paxos::Slot slot);
  void SetExpiry(std::string_view name, uint64_t old_expires_at_ms, uint64_t new_expires_at_ms);
  static std::string EncodeHolder(const Lock* held);
  bool ValidLock(std::string_view name, const Lock& lock, uint64_t now_ms,
                 uint64_t last_token) const;

  const Limits limits_;
  uint64_t now_ms_ = 0;      // the largest stamp_ms seen; never decreases
  uint64_t last_token_ = 0;  // the token of the newest grant; 0 before the first
  // std::map, not unordered_map: Snapshot() iterates it, and every replica must produce the
  // same bytes.
  LockMap locks_;
  // Watches. changes_ and forgotten_below_ are replicated (in the snapshot, except `recent`).
  std::map<std::string, ChangeRecord, std::less<>> changes_;
  paxos::Slot forgotten_below_ = 0;  // names without a record last changed below this slot
  // (expires_at_ms, name) of every lock held at now_ms_: derived from locks_, not snapshotted.
  std::set<std::pair<uint64_t, std::string>> expiries_;
};

}  // namespace ballot::samples

#endif  // BALLOT_STATEMACHINE_SAMPLES_LOCK_H_
