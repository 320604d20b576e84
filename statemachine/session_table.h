// SessionTable: the replicated exactly-once table.
//
// Every command carries (client_id, sequence, acked_sequence). Per client, the table keeps the
// results of recent commands by sequence number so that a retried command is answered with its
// original result instead of being applied again. It is part of the replicated state: every
// replica feeds it the same commands in the same order and so holds the same table, and it is
// stored in the Applier's snapshot.
//
// Rules, for a command with sequence > 0, evaluated in log order:
//   1. Results with sequence <= acked_sequence are forgotten: the client has its replies.
//   2. If the sequence has a result, the command is a duplicate: answer with that result.
//   3. If the sequence is at or below the session's floor (the highest sequence forgotten by an
//      acknowledgement or evicted by the bounds), the result is gone and the table cannot tell
//      whether the command was applied: answer kAborted "session expired". Never apply it.
//   4. A command from a client with no session and acked_sequence > 0 is treated the same way:
//      that client has had replies, so its session existed and was evicted. Applying it could
//      apply a retry twice.
//   5. Otherwise the command is fresh: the caller applies it and records its result.
// A command with sequence 0 has no session: always fresh, never recorded, does not touch the
// table.
//
// Bounds: at most Limits::sessions_max sessions (beyond it the session with the oldest
// last-activity slot is evicted, ties broken by lower client id) and at most
// Limits::results_per_session_max results per session (beyond it the lowest sequences are
// evicted and the floor raised). The limits must be the same on every replica.
//
// Deterministic (ordered containers only), single-threaded, not thread-safe.
#ifndef BALLOT_STATEMACHINE_SESSION_TABLE_H_
#define BALLOT_STATEMACHINE_SESSION_TABLE_H_

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

class SessionTable {
 public:
  struct Limits {
    size_t sessions_max = 100000;
    size_t results_per_session_max = 1024;
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
  // CHECKs that both limits are at least 1.
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
  const Limits& limits() const { return limits_; }
  // The highest slot any session was last active at; 0 without sessions. A snapshot taken at
  // applied_below has every session's activity below it (Applier::Restore checks).
  paxos::Slot last_active_slot_max() const {
    return by_activity_.empty() ? 0 : by_activity_.rbegin()->first;
  }

  // A self-contained little-endian encoding of every session. CHECKs !has_pending().
  std::string Serialize() const;
  // Replaces the contents with a Serialize() output. On any malformed input, or one holding more
  // than this table's limits allow, returns kCorruption and leaves the table unchanged.
  Status Deserialize(std::string_view data);

  // Same replicated contents (sessions, results, floors, activity); how replicas are compared.
  friend bool operator==(const SessionTable& a, const SessionTable& b) {
    return a.sessions_ == b.sessions_;
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
  void EvictSessionsOverLimit(uint64_t keep_client_id);
  void DropPending(const Session& session);
  Status DecodeSession(ByteReader* reader, uint64_t* client_id, Session* session) const;
  void CheckInvariants() const;

  Limits limits_;
  std::map<uint64_t, Session> sessions_;                    // by client id
  std::set<std::pair<paxos::Slot, uint64_t>> by_activity_;  // (last_active_slot, client id)
  // Not replicated: reservations live only between Admit and Record within one Applier::Apply.
  Pending pending_;  // ticket -> reserved result
  Spares<Results> result_spares_;
  Spares<Pending> pending_spares_;
  uint64_t next_ticket_ = 1;
};

}  // namespace ballot

#endif  // BALLOT_STATEMACHINE_SESSION_TABLE_H_
