// The simulator's fake network: what travels (peer messages, client requests and replies) and
// the fate of each message (delay, drop, duplicate, partitions). Reordering falls out of random
// delays. The network only decides fates; the simulator's event queue carries the messages.
#ifndef BALLOT_TESTS_SIM_NETWORK_H_
#define BALLOT_TESTS_SIM_NETWORK_H_

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "paxos/message.h"
#include "paxos/types.h"
#include "statemachine/state_machine.h"
#include "tests/sim/checker.h"
#include "tests/sim/rng.h"
#include "tests/sim/trace.h"

namespace ballot::sim {

// An address on the fake network: nodes are 1..kNodesMax, clients are kClientEndpointBase + i.
using Endpoint = uint32_t;
inline constexpr int kNodesMax = 7;
inline constexpr Endpoint kClientEndpointBase = 1000;
inline bool IsNode(Endpoint e) { return e >= 1 && e <= kNodesMax; }

// Client -> node.
struct ClientRequest {
  enum class Kind : uint8_t { kNext, kRead };
  Kind kind = Kind::kNext;
  uint64_t client_id = 0;
  uint64_t op_id = 0;     // the client's operation counter (a retried op keeps its id)
  uint64_t sequence = 0;  // kNext: session sequence
  uint64_t acked_sequence = 0;
  uint64_t count = 0;  // kNext: how many numbers
};

// Node -> client.
struct ClientReply {
  enum class Kind : uint8_t { kResult, kNotLeader, kRetry };
  Kind kind = Kind::kRetry;
  uint64_t client_id = 0;
  uint64_t op_id = 0;     // reads and rejections: the request's op id
  uint64_t sequence = 0;  // command results: the command's sequence (op_id unknown to the log)
  bool is_read = false;
  paxos::NodeId hint = paxos::kNoNode;  // kNotLeader
  Outcome outcome;                      // kResult
  paxos::Slot slot = 0;                 // kResult of a command
  bool duplicate = false;
};

// paxos::Message also carries snapshot transfer (kSnapshotRequest / kSnapshotChunk).
using Payload = std::variant<paxos::Message, ClientRequest, ClientReply>;

struct Envelope {
  Endpoint from = 0;
  Endpoint to = 0;
  Payload payload;
};

// Knobs of the network's behaviour; the chaos phase draws them from the seed, the liveness phase
// uses Calm().
struct NetworkConfig {
  double drop = 0;       // probability that a message is lost
  double duplicate = 0;  // probability that a delivered message arrives twice
  Time delay_min_ms = 1;
  Time delay_max_ms = 5;
  double long_delay = 0;  // probability of a delay in (delay_max_ms, long_delay_max_ms]
  Time long_delay_max_ms = 200;

  static NetworkConfig Calm() { return NetworkConfig{}; }
  static NetworkConfig Draw(Rng* rng);
  std::string ToString() const;
};

// What becomes of one message: 0, 1 or 2 copies, each with its delay.
struct Fate {
  int copies = 0;
  std::array<Time, 2> delay_ms{};
};

class Network {
 public:
  Network(int nodes, Rng* rng);

  void Configure(const NetworkConfig& config) { config_ = config; }
  const NetworkConfig& config() const { return config_; }

  // Partitions. A cut blocks a set of directed node-to-node links until `until`. Cuts overlap;
  // at most kCutsMax are active (further ones are refused). Clients are never cut off, only
  // subject to drops and delays. A holding cut loses nothing: like a connection that stalls and
  // reconnects with its queue kept, it delivers everything sent across it late, after `until`
  // (far beyond the election timeout, when newer leaders may exist).
  static constexpr size_t kCutsMax = 4;
  static uint64_t LinkBit(paxos::NodeId from, paxos::NodeId to);
  bool AddCut(uint64_t links, Time until, bool hold = false);
  void ExpireCuts(Time now);
  void ClearCuts() { cuts_.clear(); }
  bool Blocked(Endpoint from, Endpoint to) const;
  size_t active_cuts() const { return cuts_.size(); }

  // Draws a random cut (symmetric split, one-way split, isolation, or random links).
  uint64_t DrawCut(std::string* description);
  // Cuts `node` off: both ways, or (at random) only its sending or only its receiving side.
  uint64_t IsolateCut(paxos::NodeId node, std::string* description);

  Fate Route(Endpoint from, Endpoint to, Time now);

 private:
  struct Cut {
    uint64_t links;
    Time until;
    bool hold;
  };
  Time DrawDelay();

  const int nodes_;
  Rng* const rng_;
  NetworkConfig config_;
  std::vector<Cut> cuts_;
};

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_NETWORK_H_
