#include "tests/sim/network.h"

#include <algorithm>
#include <bit>
#include <sstream>

namespace ballot::sim {

NetworkConfig NetworkConfig::Draw(Rng* rng) {
  static constexpr double kDrops[] = {0, 0.005, 0.02, 0.05, 0.15};
  static constexpr double kDuplicates[] = {0, 0.01, 0.05};
  static constexpr Time kDelayMaxMs[] = {2, 5, 10, 20, 40};
  static constexpr double kLongDelays[] = {0, 0.005, 0.02, 0.05};
  static constexpr Time kLongDelayMaxMs[] = {100, 300, 1000};
  NetworkConfig c;
  c.drop = rng->Pick(kDrops);
  c.duplicate = rng->Pick(kDuplicates);
  c.delay_min_ms = 1;
  c.delay_max_ms = rng->Pick(kDelayMaxMs);
  c.long_delay = rng->Pick(kLongDelays);
  c.long_delay_max_ms = rng->Pick(kLongDelayMaxMs);
  return c;
}

std::string NetworkConfig::ToString() const {
  std::ostringstream os;
  os << "drop=" << drop << " dup=" << duplicate << " delay_ms=" << delay_min_ms << ".."
     << delay_max_ms << " long=" << long_delay << " long_max_ms=" << long_delay_max_ms;
  return os.str();
}

Network::Network(int nodes, Rng* rng) : nodes_(nodes), rng_(rng) {
  CHECK(nodes >= 1 && nodes <= kNodesMax) << "nodes=" << nodes;
}

uint64_t Network::LinkBit(paxos::NodeId from, paxos::NodeId to) {
  CHECK(IsNode(from) && IsNode(to));
  return uint64_t{1} << ((from - 1) * 8 + (to - 1));
}

bool Network::AddCut(uint64_t links, Time until, bool hold) {
  if (cuts_.size() >= kCutsMax || links == 0) return false;
  cuts_.push_back(Cut{links, until, hold});
  return true;
}

void Network::ExpireCuts(Time now) {
  std::erase_if(cuts_, [now](const Cut& c) { return c.until <= now; });
}

bool Network::Blocked(Endpoint from, Endpoint to) const {
  if (!IsNode(from) || !IsNode(to)) return false;
  const uint64_t bit = LinkBit(from, to);
  for (const Cut& c : cuts_) {
    if (c.links & bit) return true;
  }
  return false;
}

// Links from every node in `a` to every node not in `a` (nodes as a bitmask, bit i = node i+1).
static uint64_t LinksAcross(uint32_t a, int nodes) {
  uint64_t links = 0;
  for (int i = 0; i < nodes; ++i) {
    for (int j = 0; j < nodes; ++j) {
      if ((a >> i & 1) && !(a >> j & 1)) links |= Network::LinkBit(i + 1, j + 1);
    }
  }
  return links;
}

static uint32_t Flip(uint32_t set, int nodes) { return ~set & ((1u << nodes) - 1); }

uint64_t Network::DrawCut(std::string* description) {
  const uint32_t all = (1u << nodes_) - 1;
  // A non-empty proper subset of the nodes.
  const uint32_t side = static_cast<uint32_t>(rng_->Uniform(1, all - 1));
  std::ostringstream os;
  uint64_t links = 0;
  switch (rng_->Uniform(0, 3)) {
    case 0:  // symmetric split
      links = LinksAcross(side, nodes_) | LinksAcross(Flip(side, nodes_), nodes_);
      os << "split " << std::hex << side << "|" << Flip(side, nodes_);
      break;
    case 1:  // one-way: `side` cannot reach the others, but hears them
      links = LinksAcross(side, nodes_);
      os << "one-way " << std::hex << side << "-/->" << Flip(side, nodes_);
      break;
    case 2: {  // isolate one node, both ways
      const uint32_t one = 1u << rng_->Uniform(0, nodes_ - 1);
      links = LinksAcross(one, nodes_) | LinksAcross(Flip(one, nodes_), nodes_);
      os << "isolate " << std::hex << one;
      break;
    }
    default:  // random directed links
      for (int i = 1; i <= nodes_; ++i) {
        for (int j = 1; j <= nodes_; ++j) {
          if (i != j && rng_->Chance(0.3)) links |= LinkBit(i, j);
        }
      }
      os << "links " << std::hex << links;
      break;
  }
  *description = os.str();
  return links;
}

uint64_t Network::IsolateCut(paxos::NodeId node, std::string* description) {
  const uint32_t one = 1u << (node - 1);
  const uint64_t out = LinksAcross(one, nodes_);
  uint64_t into = 0;  // links from the others to `node`
  for (int i = 1; i <= nodes_; ++i) {
    if (static_cast<paxos::NodeId>(i) != node) into |= LinkBit(i, node);
  }
  switch (rng_->Uniform(0, 2)) {
    case 0:
      *description = "isolate node " + std::to_string(node);
      return out | into;
    case 1:
      *description = "node " + std::to_string(node) + " cannot send";
      return out;
    default:
      *description = "node " + std::to_string(node) + " cannot receive";
      return into;
  }
}

Time Network::DrawDelay() {
  if (rng_->Chance(config_.long_delay)) {
    return rng_->Uniform(config_.delay_max_ms + 1,
                         std::max(config_.long_delay_max_ms, config_.delay_max_ms + 1));
  }
  return rng_->Uniform(config_.delay_min_ms, config_.delay_max_ms);
}

Fate Network::Route(Endpoint from, Endpoint to, Time now) {
  Fate f;
  Time held_until = 0;
  if (IsNode(from) && IsNode(to)) {
    const uint64_t bit = LinkBit(from, to);
    for (const Cut& c : cuts_) {
      if (!(c.links & bit)) continue;
      if (!c.hold) return f;  // dropped, whatever other cuts do
      held_until = std::max(held_until, c.until);
    }
  }
  if (held_until > now) {
    f.copies = 1;  // queued on a stalled connection: neither lost nor duplicated
    f.delay_ms[0] = held_until - now + DrawDelay();
    return f;
  }
  if (rng_->Chance(config_.drop)) return f;
  f.copies = rng_->Chance(config_.duplicate) ? 2 : 1;
  for (int i = 0; i < f.copies; ++i) f.delay_ms[i] = DrawDelay();
  return f;
}

}  // namespace ballot::sim
