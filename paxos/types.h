// Basic vocabulary of the Multi-Paxos core: node ids, slots, ballots, commands and values.
//
// Everything here is plain data. The core (paxos/) is pure and deterministic: it never touches
// clocks, threads, sockets, storage or global randomness; see paxos/replica.h.
#ifndef BALLOT_PAXOS_TYPES_H_
#define BALLOT_PAXOS_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "paxos/command_list.h"
#include "paxos/configuration.h"

namespace ballot::paxos {

// A member of the group. 0 is "nobody"; valid ids are 1..kNodeIdMax so that a ballot can hold
// one in its low 16 bits.
using NodeId = uint32_t;
inline constexpr NodeId kNoNode = 0;
inline constexpr NodeId kNodeIdMax = 0xFFFF;

// A position in the replicated log. Slots start at 1; 0 means "none".
using Slot = uint64_t;

// A ballot orders proposals: (round, node id), compared as one integer. The ballot under which a
// leader leads is its epoch, and because the encoding compares exactly like the pair, the same
// integer serves directly as a fencing token.
class Ballot {
 public:
  constexpr Ballot() = default;
  constexpr Ballot(uint64_t round, NodeId node) : value_(round << 16 | (node & kNodeIdMax)) {}
  static constexpr Ballot FromRaw(uint64_t raw) {
    Ballot b;
    b.value_ = raw;
    return b;
  }

  constexpr uint64_t round() const { return value_ >> 16; }
  constexpr NodeId node() const { return static_cast<NodeId>(value_ & kNodeIdMax); }
  constexpr uint64_t raw() const { return value_; }
  constexpr bool IsZero() const { return value_ == 0; }

  friend constexpr auto operator<=>(Ballot, Ballot) = default;

 private:
  uint64_t value_ = 0;
};

std::string ToString(Ballot b);

// One client request. (client_id, sequence) identifies it for exactly-once application: the
// replicated session table answers a retry with the original result (statemachine/session_table.h).
struct Command {
  uint64_t client_id = 0;
  uint64_t sequence = 0;  // 1, 2, 3... per client; 0 = no session (not deduplicated)
  // The client has received the replies of every sequence <= acked_sequence, so the replicas may
  // forget those results.
  uint64_t acked_sequence = 0;
  // If non-zero, the command applies only if the log's current epoch (the epoch of the newest
  // leadership entry before it) equals this; otherwise every replica rejects it identically.
  uint64_t expected_epoch = 0;
  // Wall-clock milliseconds stamped by the leader's runtime when it proposed the command. State
  // machines that need time (lock TTLs) use this, never their own clock.
  uint64_t stamp_ms = 0;
  std::string payload;  // opaque to the core; interpreted by the StateMachine

  friend bool operator==(const Command&, const Command&) = default;
};

// What one slot holds: a batch of commands, proposed by the leader of `epoch`. A value with no
// commands is a no-op (used to fill gaps found during recovery). A value with `leader_start` set
// is the entry a new leader appends after recovery; its epoch is "the log's current epoch" for
// every entry after it until the next such entry. A value with `config` set is a membership
// change (paxos/configuration.h): it carries no commands, and the configuration it holds
// governs every slot after it.
struct Value {
  Ballot epoch;
  bool leader_start = false;
  CowList<Command> commands;  // shared by copies of the value (paxos/command_list.h)
  std::optional<Configuration> config;

  bool IsNoop() const { return commands.empty() && !config; }
  size_t ByteSize() const;
  friend bool operator==(const Value&, const Value&) = default;
};

// A slot with the value an acceptor accepted there and the ballot it accepted it under.
struct Entry {
  Slot slot = 0;
  Ballot ballot;
  Value value;
  friend bool operator==(const Entry&, const Entry&) = default;
};

// 64-bit FNV-1a over a value's contents; used by checks and trace hashes, not for security.
uint64_t HashValue(const Value& v);

}  // namespace ballot::paxos

#endif  // BALLOT_PAXOS_TYPES_H_
