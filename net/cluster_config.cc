#include "net/cluster_config.h"

#include <cctype>
#include <charconv>
#include <string>
#include <system_error>
#include <utility>

namespace ballot {

using paxos::NodeId;

namespace {

Status Invalid(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool ValidHostChar(char c, bool bracketed) {
  if (std::isalnum(static_cast<unsigned char>(c)) || c == '.') return true;
  return bracketed ? (c == ':' || c == '%') : (c == '-' || c == '_');
}

Result<NodeId> ParseNodeId(std::string_view text) {
  uint64_t id = 0;
  const char* first = text.data();
  const char* last = first + text.size();
  const auto [end, ec] = std::from_chars(first, last, id);
  if (text.empty() || ec != std::errc() || end != last || id == 0 || id > paxos::kNodeIdMax) {
    return Invalid("node id '" + std::string(text) + "' is not a number in 1.." +
                   std::to_string(paxos::kNodeIdMax));
  }
  return static_cast<NodeId>(id);
}

uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

Result<HostPort> ParseHostPort(std::string_view address) {
  const std::string quoted = "address '" + std::string(address) + "'";
  if (address.empty()) return Invalid("empty address (expected host:port)");
  HostPort hp;
  std::string_view port_text;
  bool bracketed = false;
  if (address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string_view::npos) return Invalid(quoted + " has no closing ']'");
    hp.host = std::string(address.substr(1, close - 1));
    const std::string_view rest = address.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return Invalid(quoted + " is missing ':port'");
    port_text = rest.substr(1);
    bracketed = true;
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return Invalid(quoted + " is missing ':port'");
    hp.host = std::string(address.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) {
      return Invalid(quoted + ": an IPv6 host must be written in [brackets]");
    }
    port_text = address.substr(colon + 1);
  }
  if (hp.host.empty()) return Invalid(quoted + " has no host");
  for (char c : hp.host) {
    if (!ValidHostChar(c, bracketed)) {
      return Invalid(quoted + " has an invalid character '" + std::string(1, c) + "' in its host");
    }
  }
  if (port_text.empty()) return Invalid(quoted + " is missing the port after ':'");
  uint64_t port = 0;
  const char* first = port_text.data();
  const char* last = first + port_text.size();
  const auto [end, ec] = std::from_chars(first, last, port);
  if (ec == std::errc::result_out_of_range) {
    return Invalid(quoted + ": port " + std::string(port_text) + " is out of range (1..65535)");
  }
  if (ec != std::errc() || end != last) {
    return Invalid(quoted + ": port '" + std::string(port_text) + "' is not a number");
  }
  if (port == 0 || port > 65535) {
    return Invalid(quoted + ": port " + std::to_string(port) + " is out of range (1..65535)");
  }
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

// ---------------------------------------------------------------------------------------------
// Cluster descriptions

Result<std::map<NodeId, std::string>> ParseCluster(std::string_view cluster) {
  if (Trim(cluster).empty()) {
    return Invalid("cluster is empty (expected id@host:port,id@host:port,...)");
  }
  std::map<NodeId, std::string> members;
  std::map<std::string, NodeId> ids_by_address;
  size_t position = 0;
  for (int index = 1;; ++index) {
    const size_t comma = cluster.find(',', position);
    const std::string_view entry = Trim(cluster.substr(
        position, comma == std::string_view::npos ? std::string_view::npos : comma - position));
    const std::string where = "cluster entry " + std::to_string(index);
    if (entry.empty()) return Invalid(where + " is empty (a stray ','?)");
    const std::string quoted = where + " '" + std::string(entry) + "'";
    const size_t at = entry.find('@');
    if (at == std::string_view::npos) return Invalid(quoted + " is not id@host:port");
    Result<NodeId> id = ParseNodeId(Trim(entry.substr(0, at)));
    if (!id.ok()) return Invalid(quoted + ": " + id.status().message());
    const std::string_view address = Trim(entry.substr(at + 1));
    Result<HostPort> hp = ParseHostPort(address);
    if (!hp.ok()) return Invalid(quoted + ": " + hp.status().message());
    const auto [it, fresh] = members.emplace(id.value(), std::string(address));
    if (!fresh)
      return Invalid(quoted + ": node id " + std::to_string(id.value()) + " appears twice");
    const auto [other, unique] = ids_by_address.emplace(std::string(address), id.value());
    if (!unique) {
      return Invalid(quoted + ": address " + std::string(address) + " is also node " +
                     std::to_string(other->second));
    }
    if (comma == std::string_view::npos) break;
    position = comma + 1;
  }
  return members;
}

uint64_t BootstrapClusterId(const std::map<NodeId, std::string>& members,
                            std::string_view cluster_token) {
  std::string canonical;
  for (const auto& [id, address] : members) canonical += std::to_string(id) + "@" + address + ",";
  if (!cluster_token.empty()) canonical += "token=" + std::string(cluster_token);
  const uint64_t h = Fnv1a64(canonical);
  return h == 0 ? 1 : h;
}

uint64_t DefaultClusterId(std::string_view cluster_flag) {
  Result<std::map<NodeId, std::string>> members = ParseCluster(cluster_flag);
  if (members.ok()) return BootstrapClusterId(members.value(), "");
  const uint64_t h = Fnv1a64(cluster_flag);
  return h == 0 ? 1 : h;
}

}  // namespace ballot
