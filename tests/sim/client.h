// Client: one simulated user of the replicated sequence generator. It has at most one operation
// in flight: next(n) (a session command, retried under the same sequence until answered) or a
// linearizable read of the next number. It sends to the node it believes leads, follows
// not-leader hints, and resends after a timeout of silence. Every answered operation goes to the
// Checker with its real-time interval (first send, reply arrival).
#ifndef BALLOT_TESTS_SIM_CLIENT_H_
#define BALLOT_TESTS_SIM_CLIENT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "tests/sim/checker.h"
#include "tests/sim/network.h"
#include "tests/sim/rng.h"
#include "tests/sim/trace.h"

namespace ballot::sim {

class ClientHost {
 public:
  virtual ~ClientHost() = default;
  virtual Time now() const = 0;
  virtual void Send(Envelope envelope) = 0;
  virtual Rng& rng() = 0;
  virtual Checker& checker() = 0;
  virtual Trace& trace() = 0;
};

class Client {
 public:
  // A silent node is given up on after this long.
  static constexpr Time kTimeoutMs = 30 * kTickMs;
  static constexpr uint64_t kCountMax = 5;  // next(n): n in 1..kCountMax

  Client(int index, int nodes, ClientHost* host);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Endpoint endpoint() const { return kClientEndpointBase + index_; }
  uint64_t client_id() const { return 100 + index_; }

  // Called once per tick: starts operations after think time, resends after timeouts.
  void Tick();
  void OnReply(Endpoint from, const ClientReply& r);

  // Liveness phase: finish the operation in flight, then `ops` more, then stop.
  void Drain(int ops);
  bool done() const { return draining_ && !op_ && drain_ops_left_ == 0; }
  std::string Describe() const;

 private:
  struct Op {
    bool is_read = false;
    uint64_t op_id = 0;
    uint64_t sequence = 0;
    uint64_t count = 0;
    Time sent_ms = 0;  // first send
    Time last_send_ms = 0;
    paxos::NodeId target = paxos::kNoNode;
    uint64_t attempts = 0;
  };

  void StartOp();
  void Send();
  void RetryLater(paxos::NodeId target);
  void Complete(Endpoint from, const ClientReply& r);
  bool Matches(const ClientReply& r) const;
  paxos::NodeId RandomNode();
  void Log(const std::string& what) const;

  const int index_;
  const int nodes_;
  ClientHost* const host_;

  std::optional<Op> op_;
  Time next_op_ms_ = 0;
  Time resend_at_ms_ = 0;  // 0: none scheduled
  int bounces_ = 0;        // consecutive not-leader redirects followed at once
  uint64_t next_op_id_ = 1;
  uint64_t next_sequence_ = 1;
  uint64_t acked_sequence_ = 0;
  paxos::NodeId leader_guess_ = paxos::kNoNode;
  bool draining_ = false;
  int drain_ops_left_ = 0;
};

}  // namespace ballot::sim

#endif  // BALLOT_TESTS_SIM_CLIENT_H_
