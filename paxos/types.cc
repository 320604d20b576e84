#include "paxos/types.h"

namespace ballot::paxos {

std::string ToString(Ballot b) {
  return std::to_string(b.round()) + "." + std::to_string(b.node());
}

size_t Value::ByteSize() const {
  size_t bytes = 0;
  for (const Command& c : commands) bytes += c.payload.size() + 5 * sizeof(uint64_t);
  if (config) {
    for (const Member& m : config->members()) bytes += m.address.size() + 8;
  }
  return bytes;
}

namespace {
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

void Mix(uint64_t* h, uint64_t x) {
  for (int i = 0; i < 8; ++i) {
    *h ^= (x >> (8 * i)) & 0xFF;
    *h *= kFnvPrime;
  }
}
}  // namespace

uint64_t HashValue(const Value& v) {
  uint64_t h = kFnvOffset;
  Mix(&h, v.epoch.raw());
  Mix(&h, v.leader_start ? 1 : 0);
  Mix(&h, v.commands.size());
  for (const Command& c : v.commands) {
    Mix(&h, c.client_id);
    Mix(&h, c.sequence);
    Mix(&h, c.acked_sequence);
    Mix(&h, c.expected_epoch);
    Mix(&h, c.stamp_ms);
    Mix(&h, c.payload.size());
    for (unsigned char ch : c.payload) {
      h ^= ch;
      h *= kFnvPrime;
    }
  }
  if (v.config) {
    Mix(&h, v.config->members().size());
    for (const Member& m : v.config->members()) {
      Mix(&h, m.id);
      Mix(&h, m.voter ? 1 : 0);
      for (unsigned char ch : m.address) {
        h ^= ch;
        h *= kFnvPrime;
      }
    }
    Mix(&h, v.config->retired().size());
    for (NodeId id : v.config->retired()) Mix(&h, id);
  }
  return h;
}

}  // namespace ballot::paxos
