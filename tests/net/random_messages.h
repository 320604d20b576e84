// Seeded generators of valid wire contents, shared by the net tests.
#ifndef BALLOT_TESTS_NET_RANDOM_MESSAGES_H_
#define BALLOT_TESTS_NET_RANDOM_MESSAGES_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "net/codec.h"
#include "net/wire.h"
#include "paxos/message.h"
#include "paxos/types.h"

namespace ballot::net::testing {

class RandomWire {
 public:
  explicit RandomWire(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  uint64_t AnyU64() { return rng_(); }
  bool Coin() { return Below(2) == 1; }

  // Small values most of the time, extremes sometimes: edges are where codecs break.
  uint64_t Interesting(uint64_t max) {
    switch (Below(4)) {
      case 0:
        return 0;
      case 1:
        return max;
      case 2:
        return Below(16);
      default:
        return max == UINT64_MAX ? AnyU64() : Below(max + 1);
    }
  }

  std::string Bytes(size_t size_max) {
    std::string s(Below(size_max + 1), '\0');
    for (char& c : s) c = static_cast<char>(Below(256));  // embedded NULs included
    return s;
  }

  paxos::NodeId Node() { return static_cast<paxos::NodeId>(1 + Below(paxos::kNodeIdMax)); }

  paxos::Ballot Ballot() {
    if (Below(8) == 0) return paxos::Ballot();
    return paxos::Ballot(Below(uint64_t{1} << 40), Node());
  }

  paxos::Slot Slot() { return 1 + Interesting(kSlotMax - 1); }

  paxos::Command Command() {
    paxos::Command c;
    c.client_id = Interesting(UINT64_MAX);
    c.sequence = Interesting(UINT64_MAX);
    c.acked_sequence = Interesting(UINT64_MAX);
    c.expected_epoch = Interesting(UINT64_MAX);
    c.stamp_ms = Interesting(UINT64_MAX);
    c.payload = Bytes(Below(4) == 0 ? 2000 : 40);
    return c;
  }

  paxos::Entry Entry() {
    paxos::Entry e;
    e.slot = Slot();
    e.ballot = Ballot();
    e.value.epoch = Ballot();
    e.value.leader_start = Coin();
    const size_t commands = Below(5);
    for (size_t i = 0; i < commands; ++i) e.value.commands.push_back(Command());
    return e;
  }

  paxos::Message Message() {
    paxos::Message m;
    m.type = static_cast<paxos::MessageType>(1 + Below(10));
    m.from = Node();
    m.to = Node();
    m.ballot = Ballot();
    m.promised = Ballot();
    m.slot = Interesting(kSlotMax);
    m.commit = Interesting(kSlotMax);
    m.round = Interesting(UINT64_MAX);
    m.ok = Coin();
    const size_t entries = Below(3) == 0 ? Below(6) : 0;
    for (size_t i = 0; i < entries; ++i) m.entries.push_back(Entry());
    const size_t slots = Below(3) == 0 ? Below(20) : 0;
    for (size_t i = 0; i < slots; ++i) m.slots.push_back(Slot());
    return m;
  }

  std::vector<paxos::Message> Batch(size_t size_max) {
    std::vector<paxos::Message> batch(1 + Below(size_max));
    for (auto& m : batch) m = Message();
    return batch;
  }

  Hello RandomHello() {
    Hello h{AnyU64(), static_cast<paxos::NodeId>(Below(paxos::kNodeIdMax + 1)),
            static_cast<uint32_t>(Interesting(UINT32_MAX))};
    const size_t timing = Below(kTimingValuesMax + 1);
    for (size_t i = 0; i < timing; ++i) {
      h.timing.push_back(TimingValue{"field_" + std::to_string(i) + std::string(Below(30), 'x'),
                                     Interesting(UINT64_MAX)});
    }
    h.data_state = static_cast<DataState>(Below(3));
    paxos::NodeId id = 0;
    const size_t joined = Below(8);
    for (size_t i = 0; i < joined; ++i) {
      id += 1 + static_cast<paxos::NodeId>(Below(1000));
      if (id > paxos::kNodeIdMax) break;
      h.joined_members.push_back(id);
    }
    return h;
  }

  ClientRequest Request() {
    ClientRequest r;
    r.request_id = Interesting(UINT64_MAX);
    r.kind = static_cast<ClientRequest::Kind>(
        Below(static_cast<uint64_t>(ClientRequest::Kind::kTransferLeader) + 1));
    if (r.kind == ClientRequest::Kind::kPropose) r.command = Command();
    if (r.kind == ClientRequest::Kind::kRead) r.query = Bytes(100);
    if (r.kind == ClientRequest::Kind::kTransferLeader) {
      r.transfer_to = static_cast<paxos::NodeId>(Below(paxos::kNodeIdMax + 1));
    }
    return r;
  }

  StatusCode Code() {
    return static_cast<StatusCode>(Below(static_cast<uint64_t>(StatusCode::kAborted) + 1));
  }

  ClientResponse Response() {
    ClientResponse r;
    r.request_id = Interesting(UINT64_MAX);
    r.code = Code();
    r.leader_hint = static_cast<paxos::NodeId>(Below(paxos::kNodeIdMax + 1));
    r.leader_address = Bytes(30);
    r.message = Bytes(60);
    r.outcome_code = Code();
    r.data = Bytes(300);
    r.slot = Interesting(UINT64_MAX);
    r.epoch = Interesting(UINT64_MAX);
    if (Coin()) {
      NodeStatus& s = r.status.emplace();
      s.node_id = Node();
      s.role = Coin() ? "leader" : "follower";
      s.epoch = AnyU64();
      s.leader_id = Node();
      s.chosen_below = AnyU64();
      s.applied_below = AnyU64();
      s.lease_held = Coin();
      s.promised = AnyU64();
    }
    return r;
  }

  Frame AnyFrame() {
    switch (Below(4)) {
      case 0:
        return RandomHello();
      case 1:
        return Batch(8);
      case 2:
        return Request();
      default:
        return Response();
    }
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace ballot::net::testing

#endif  // BALLOT_TESTS_NET_RANDOM_MESSAGES_H_
