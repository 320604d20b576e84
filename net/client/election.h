// Election: leader election among an application's own processes, over the lock sample of a
// Ballot cluster (ballotd --state_machine=lock; statemachine/samples/lock.h). The shape of etcd's
// concurrency.Election, with Ballot's fencing tokens:
//
//   auto client = ballot::Client::Create(options).value();
//   ballot::ElectionOptions eo;
//   eo.name = "orders-controller";   // the lock every candidate campaigns for
//   eo.candidate = "host-a:1234";    // unique among the candidates
//   eo.ttl = std::chrono::seconds(10);
//   auto election = ballot::Election::Create(client.get(), eo).value();
//   election->OnLost([](uint64_t token, ballot::Status why) { /* stop working, now */ });
//   uint64_t token = election->Campaign(std::chrono::hours(24)).value();  // blocks until elected
//   ... register `token` with every resource, then write with it (docs/fencing.md) ...
//   election->Resign(std::chrono::seconds(5));
//
// Campaign acquires the lock; while another candidate holds it, it waits for the lock's next
// change with a watch (Client::Watch: no polling) and tries again, so it is elected as soon as
// the holder resigns or its TTL runs out (its expiry is applied by the leader's clock tick,
// net/server/server.cc). Once elected, a background thread keeps the lock alive every ttl/3.
//
// Leadership ends, and the OnLost callback runs at once (on that thread, once per term), when a
// keepalive is refused (the lock expired or went to someone else) or when no keepalive was
// confirmed for 2/3 of the TTL, measured on this process's monotonic clock from before the last
// confirmed request was sent: so the callback runs before the cluster can grant the lock to
// anyone else, unless this process's clock or scheduling stalls (then the token still protects:
// docs/fencing.md). token() is the fencing token of the current term, 0 when not leading.
//
// Observe reports who leads: the current holder (confirmed by the leader of the cluster), then
// every change, from watches that resume where they left off across reconnects and leader changes.
//
// Threads: every method is thread-safe. Campaign calls are serialized. Callbacks (OnLost,
// Observe's) must not destroy the Election. The Client must outlive the Election.
#ifndef BALLOT_NET_ELECTION_H_
#define BALLOT_NET_ELECTION_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "net/client/client.h"
#include "paxos/status.h"

namespace ballot {

struct ElectionOptions {
  std::string name;       // the lock (1..256 bytes)
  std::string candidate;  // this candidate's id, the lock's owner (1..256 bytes), unique
  std::chrono::milliseconds ttl{10000};  // the lock's TTL; at least 30 ms

  // kInvalidArgument naming the field.
  Status Validate() const;
};

class Election {
 public:
  using LostCallback = std::function<void(uint64_t token, Status why)>;
  struct Leader {
    std::string candidate;
    uint64_t token = 0;
    uint64_t expires_at_ms = 0;  // the cluster leader's clock, as of the change
    friend bool operator==(const Leader&, const Leader&) = default;
  };

  // `client` must be connected to a lock-sample cluster and outlive the Election.
  static Result<std::unique_ptr<Election>> Create(Client* client, ElectionOptions options);
  // Resigns if leading (best effort, within ttl/3) and stops the keepalive thread.
  ~Election();
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Called when leadership is lost (not after Resign), with the lost term's token and why:
  // kAborted for a refused keepalive, kTimeout when none was confirmed within 2/3 of the TTL.
  void OnLost(LostCallback callback);

  // Blocks until this candidate leads and returns the token; at once if it leads already.
  // kTimeout at the deadline (still not leading); kInvalidArgument if the cluster refuses the
  // lock's name or owner; kAborted if the lock table is full; a Client error otherwise.
  Result<uint64_t> Campaign(std::chrono::milliseconds timeout);

  // Stops leading and releases the lock, so that another candidate is elected at once. OK if
  // not leading. The lock's own TTL frees it if the release cannot be delivered.
  Status Resign(std::chrono::milliseconds timeout);

  bool leading() const;
  uint64_t token() const;  // of the current term; 0 when not leading

  // The current leader (std::nullopt: none), confirmed by the cluster's leader.
  Result<std::optional<Leader>> CurrentLeader(std::chrono::milliseconds timeout);
  // Calls `on_change` with the current leader, then once per change of leader, until it returns
  // false (then OK) or `timeout` passes (kTimeout). Failures of replicas are retried; a change
  // the replicas forgot (a watch gap) is skipped over to the state after it.
  Status Observe(const std::function<bool(const std::optional<Leader>&)>& on_change,
                 std::chrono::milliseconds timeout);

 private:
  using Clock = std::chrono::steady_clock;
  Election(Client* client, ElectionOptions options);
  void KeepAliveLoop();
  // With mu_ held (released while the callback runs).
  void LoseLocked(std::unique_lock<std::mutex>& lock, Status why);

  Client* const client_;
  const ElectionOptions options_;

  std::mutex campaign_mu_;  // one Campaign at a time
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;           // guarded by mu_
  bool leading_ = false;            // guarded by mu_
  uint64_t token_ = 0;              // guarded by mu_
  uint64_t term_ = 0;               // guarded by mu_: counts elections and resignations
  Clock::time_point confirmed_at_;  // guarded by mu_: when the last confirmed request was sent
  LostCallback lost_;               // guarded by mu_
  std::thread keepalive_thread_;
};

}  // namespace ballot

#endif  // BALLOT_NET_ELECTION_H_
