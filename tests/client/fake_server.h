// A fake Ballot node for client tests: raw Boost.Asio plus the real codec, on 127.0.0.1 port 0,
// with its own io thread. It answers the Hello handshake (or misbehaves on request) and hands
// every ClientRequest to a test-supplied handler, which answers through a Reply at once, later,
// several times, or never.
#ifndef BALLOT_TESTS_CLIENT_FAKE_SERVER_H_
#define BALLOT_TESTS_CLIENT_FAKE_SERVER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "net/wire.h"
#include "paxos/types.h"
#include "statemachine/state_machine.h"

namespace ballot::client_test {

class ServerConn;

class FakeServer {
 public:
  enum class Mode {
    kNormal,             // answers the Hello, then passes requests to the handler
    kSilent,             // accepts connections and reads, never writes anything
    kWrongCluster,       // answers the Hello with another cluster id
    kGarbageAfterHello,  // answers the Hello, then sends a malformed frame header
  };
  // Sends a response on the connection the request came on. Thread-safe; may be called any
  // number of times, at any time (a no-op once the connection or server is gone).
  using Reply = std::function<void(net::ClientResponse)>;
  // Called on the server's io thread for every request after the handshake.
  using Handler = std::function<void(const net::ClientRequest&, const Reply&)>;

  FakeServer(uint64_t cluster_id, paxos::NodeId id, Handler handler, Mode mode = Mode::kNormal);
  ~FakeServer();
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  paxos::NodeId id() const { return id_; }
  // The cluster id it expects and answers with (kWrongCluster answers with this + 1).
  void set_cluster_id(uint64_t cluster_id) { cluster_id_.store(cluster_id); }

  // Every request received after a handshake, in arrival order.
  std::vector<net::ClientRequest> requests() const;
  // Waits until at least `n` requests have arrived; false after `within`.
  bool WaitForRequests(size_t n, std::chrono::milliseconds within = std::chrono::seconds(10)) const;
  // Hellos from clients that were not {cluster id, node 0, protocol version}.
  int bad_hellos() const { return bad_hellos_.load(); }

  class Impl;

 private:
  const paxos::NodeId id_;
  std::atomic<uint64_t> cluster_id_;
  std::atomic<int> bad_hellos_{0};
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<net::ClientRequest> requests_;  // guarded by mu_
  std::shared_ptr<Impl> impl_;

  friend class Impl;
  friend class ServerConn;
};

// A port on 127.0.0.1 that refuses connections (bound to find a free one, then closed).
uint16_t RefusedPort();

// A handler that serves a real StateMachine as a leader would: proposals are applied once per
// (client id, sequence) and retries answered with the recorded outcome, reads go to Query,
// status says "leader" with `epoch`. Thread-safe.
class MachineNode {
 public:
  MachineNode(paxos::NodeId id, uint64_t epoch, std::unique_ptr<StateMachine> machine);
  FakeServer::Handler handler();
  size_t applied() const;

 private:
  void Serve(const net::ClientRequest& request, const FakeServer::Reply& reply);

  const paxos::NodeId id_;
  const uint64_t epoch_;
  mutable std::mutex mu_;
  std::unique_ptr<StateMachine> machine_;  // guarded by mu_
  std::map<std::pair<uint64_t, uint64_t>, std::pair<Outcome, paxos::Slot>> results_;  // ditto
  paxos::Slot next_slot_ = 1;                                                         // ditto
};

// A response that echoes a proposal: kOk, outcome data = payload, slot = sequence.
net::ClientResponse EchoResponse(const net::ClientRequest& request, uint64_t epoch);
net::ClientResponse NotLeaderResponse(const net::ClientRequest& request, paxos::NodeId hint);

}  // namespace ballot::client_test

#endif  // BALLOT_TESTS_CLIENT_FAKE_SERVER_H_
