// SessionTable: the replicated exactly-once table.
//
// Every command carries (client_id, sequence, acked_sequence). Per client, the table keeps the
// results of recent commands by sequence number so that a retried command is answered with its
// original result instead of being applied again. It is part of the replicated state: every
// replica feeds it the same commands in the same order and so holds the same table, and it is
// stored in the Applier's snapshot.
//
// A session starts implicitly, with the first command the table sees from a client id, and
// ends only by eviction (the bounds below). A client whose session has ended cannot learn which
// of its commands were applied, so it must start a new session under a new client id
// (net/client/client.cc does this when it is answered "session expired").
//
// Rules, for a command with sequence > 0, evaluated in log order:
//   1. If the client's session was evicted by the sessions_max bound (the table keeps a
//      tombstone of its id), answer kAborted "session expired", whatever the sequence and
//      acked_sequence. Never apply it, never start a session for it. Without the tombstone, a
//      retry of a command that was applied before the eviction, sent before any reply came back
//      (acked_sequence 0, e.g. pipelined first commands), would look like a new client's first
//      command and apply twice.
//   2. Results with sequence <= acked_sequence are forgotten: the client has its replies.
//   3. If the sequence has a result, the command is a duplicate: answer with that result.
//   4. If the sequence is at or below the session's floor (the highest sequence forgotten by an
//      acknowledgement or evicted by results_per_session_max), the result is gone and the table
//      cannot tell whether the command was applied: answer kAborted "session expired". Never
//      apply it.
//   5. A command from a client with no session and no tombstone but acked_sequence > 0 is
//      treated the same way: that client has had replies, so its session existed and was
//      evicted (and its tombstone dropped since). Applying it could apply a retry twice.
//   6. Otherwise the command is fresh: the caller applies it and records its result.
// A command with sequence 0 has no session: always fresh, never recorded, does not touch the
// table.
//
// Bounds (every replica must use the same limits):
//   - at most Limits::sessions_max sessions: beyond it the session with the oldest
//     last-activity slot is evicted (ties broken by lower client id) and leaves a tombstone;
//   - at most Limits::results_per_session_max results per session: beyond it the lowest
//     sequences are evicted and the floor raised;
//   - at most Limits::tombstones_max tombstones, 16 bytes each in a snapshot: a tombstone holds
//     the client id and the slot of the eviction or of the latest command it refused (so a
//     client that keeps retrying keeps its tombstone); beyond the bound the oldest by that slot
//     goes (ties by lower client id).
// What the bound leaves open: once a tombstone is dropped, a command of that client reaching
// the log with acked_sequence 0 looks new again (rule 5 still catches acked_sequence > 0). For
// that, a retry of a command applied before the eviction must reach the log after
// tombstones_max further evictions (100000 by default) during which none of the client's
// commands did; net/client/client.cc retries a command only until its call's deadline, and switches
// to a new client id on its first "session expired" answer.
//
// Deterministic (ordered containers only), single-threaded, not thread-safe.
#ifndef BALLOT_STATEMACHINE_SESSION_TABLE_H_
#define BALLOT_STATEMACHINE_SESSION_TABLE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "paxos/status.h"
#include "paxos/types.h"
#include "statemachine/state_machine.h"

namespace ballot {

class ByteReader;

// True for the answer a command gets when its session is gone (SessionTable::Verdict::kExpired):
// kAborted with a message starting "session expired". The client must not retry that command and
// must start a new session (a new client id) for further ones.
bool IsSessionExpired(const Outcome& outcome);

class SessionTable {
 public:
  struct Limits {
    size_t sessions_max = 100000;
    size_t results_per_session_max = 1024;
    size_t tombstones_max = 100000;
  };

  enum class Verdict {
    kFresh,      // apply it, then Record() its result (if ticket != 0)
    kDuplicate,  // already applied: answer with the original result
    kExpired,    // cannot tell whether it was applied: answer with the kAborted outcome given
  };

  struct Admission {
    Verdict verdict = Verdict::kFresh;
    // kDuplicate with ticket == 0: the recorded result. kExpired: the kAborted answer.
    Outcome outcome;
    // kFresh: the ticket to pass to Record(); 0 if nothing is to be recorded (sequence 0).
    // kDuplicate: non-zero when the original was admitted as fresh but its result is not yet
    // recorded (a duplicate inside one batch); the answer is the result later recorded under
    // this ticket.
    uint64_t ticket = 0;
  };

  SessionTable() : SessionTable(Limits()) {}
  // CHECKs that every limit is at least 1.
  explicit SessionTable(Limits limits);

  SessionTable(const SessionTable&) = default;
  SessionTable& operator=(const SessionTable&) = default;
  SessionTable(SessionTable&&) = default;
  SessionTable& operator=(SessionTable&&) = default;

  // Classifies one command appearing at `slot` and updates the table as if the command were
  // processed right now: acknowledgements are forgotten, the session's activity is set to
  // `slot`, and a fresh command reserves its result so that a later duplicate, acknowledgement
  // or eviction is handled exactly as if the result were already recorded. Slots must not
  // decrease for a client (CHECKed).
  Admission Admit(const paxos::Command& command, paxos::Slot slot);

  // Stores the result of a command Admit() called fresh, under its ticket. A no-op if the
  // reservation has since been forgotten (acknowledged or evicted). Every ticket must be
  // recorded before Serialize(); the order does not matter.
  void Record(uint64_t ticket, Outcome outcome);

  // True while some fresh command's result has not been recorded.
  bool has_pending() const { return !pending_.empty(); }

  size_t session_count() const { return sessions_.size(); }
  // Number of results (and reservations) held for a client; 0 if it has no session.
  size_t result_count(uint64_t client_id) const;
  // Every sequence <= floor that has no result answers kExpired; 0 if no session.
  uint64_t floor_sequence(uint64_t client_id) const;
  bool has_session(uint64_t client_id) const { return sessions_.contains(client_id); }
  // True while the table keeps a tombstone for a client whose session was evicted (rule 1).
  bool has_tombstone(uint64_t client_id) const { return tombstones_.contains(client_id); }
  size_t tombstone_count() const { return tombstones_.size(); }
  const Limits& limits() const { return limits_; }
  // The highest slot any session was last active at or any tombstone was last touched at; 0 if
  // there are neither. A snapshot taken at applied_below has all of them below it
  // (Applier::Restore checks).
  paxos::Slot last_active_slot_max() const {
    paxos::Slot max = by_activity_.empty() ? 0 : by_activity_.rbegin()->first;
    if (!tombstones_by_slot_.empty()) max = std::max(max, tombstones_by_slot_.rbegin()->first);
    return max;
  }

  // A self-contained little-endian encoding of every session and tombstone. Format version 1
  // when there is no tombstone (the encoding every earlier release wrote and reads), version 2
  // otherwise. CHECKs !has_pending().
  std::string Serialize() const;
  // Replaces the contents with a Serialize() output, of either version. On any malformed or
  // non-canonical input (version 2 without tombstones), or one holding more than this table's
  // limits allow, returns kCorruption and leaves the table unchanged.
  Status Deserialize(std::string_view data);

  // Same replicated contents (sessions, results, floors, activity, tombstones); how replicas
  // are compared.
  friend bool operator==(const SessionTable& a, const SessionTable& b) {
    return a.sessions_ == b.sessions_ && a.tombstones_ == b.tombstones_;
  }

 private:
  struct StoredResult {
    Outcome outcome;
    uint64_t ticket = 0;  // non-zero: reserved by Admit, not yet recorded
    friend bool operator==(const StoredResult&, const StoredResult&) = default;
  };
  struct Session {
    uint64_t floor_sequence = 0;
    paxos::Slot last_active_slot = 0;
    std::map<uint64_t, StoredResult> results;  // by sequence; every key > floor_sequence
    friend bool operator==(const Session&, const Session&) = default;
  };
  using Key = std::pair<uint64_t, uint64_t>;  // (client id, sequence)
  using Results = std::map<uint64_t, StoredResult>;
  using Pending = std::map<uint64_t, Key>;  // ticket -> (client id, sequence)

  // Map nodes kept after an erase for the next insert: every command inserts a result and a
  // reservation and an acknowledgement erases them, so in steady state nothing is allocated.
  // Not part of the replicated contents: a copy starts without spares.
  template <typename Map>
  class Spares {
   public:
    Spares() = default;
    Spares(const Spares&) {}
    Spares& operator=(const Spares&) { return *this; }
    Spares(Spares&&) = default;
    Spares& operator=(Spares&&) = default;
    void Keep(typename Map::node_type node) {
      if (nodes_.size() >= kKeptMax) return;
      node.mapped() = typename Map::mapped_type{};  // a kept result must not hold its outcome
      nodes_.push_back(std::move(node));
    }
    // Inserts (key, value), reusing a kept node if there is one.
    template <typename K, typename V>
    typename Map::iterator Insert(Map* map, K key, V value) {
      if (nodes_.empty()) return map->emplace(key, std::move(value)).first;
      typename Map::node_type node = std::move(nodes_.back());
      nodes_.pop_back();
      node.key() = key;
      node.mapped() = std::move(value);
      return map->insert(std::move(node)).position;
    }

   private:
    static constexpr size_t kKeptMax = 4096;
    std::vector<typename Map::node_type> nodes_;
  };
  void ErasePending(uint64_t ticket);

  void Touch(uint64_t client_id, Session* session, paxos::Slot slot);
  void Forget(Session* session, uint64_t acked_sequence);
  void Reserve(uint64_t client_id, Session* session, uint64_t sequence, uint64_t ticket);
  void EvictSessionsOverLimit(uint64_t keep_client_id, paxos::Slot slot);
  void DropPending(const Session& session);
  // Adds or refreshes the tombstone of `client_id` at `slot` (never moving it back), then drops
  // the oldest ones over tombstones_max.
  void Bury(uint64_t client_id, paxos::Slot slot);
  Status DecodeSession(ByteReader* reader, uint64_t* client_id, Session* session) const;
  Status DecodeTombstones(ByteReader* reader);
  void CheckInvariants() const;

  Limits limits_;
  std::map<uint64_t, Session> sessions_;                    // by client id
  std::set<std::pair<paxos::Slot, uint64_t>> by_activity_;  // (last_active_slot, client id)
  // Clients whose session was evicted by sessions_max: client id -> the slot of the eviction or
  // of the latest command refused since. Never a client that has a session.
  std::map<uint64_t, paxos::Slot> tombstones_;
  std::set<std::pair<paxos::Slot, uint64_t>> tombstones_by_slot_;  // (slot, client id)
  // Not replicated: reservations live only between Admit and Record within one Applier::Apply.
  Pending pending_;  // ticket -> reserved result
  Spares<Results> result_spares_;
  Spares<Pending> pending_spares_;
  uint64_t next_ticket_ = 1;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_SESSION_TABLE_H_
