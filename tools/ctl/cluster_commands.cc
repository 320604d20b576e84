#include "tools/ctl/cluster_commands.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "net/client/sequence_numbers.h"
#include "statemachine/samples/kv.h"
#include "statemachine/samples/sequence.h"

namespace ballot::tools {
namespace {

using std::chrono::milliseconds;

int Fail(std::ostream& err, const ballot::Status& s) {
  err << "ballotctl: " << s.ToString() << "\n";
  return kCtlExitFailed;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "ballotctl: " << message << "\n";
  return kCtlExitUsage;
}

// For commands that ask several members at once (status, leader) or one named member
// (snapshot): learns the cluster id first, from the members in id order, so that which server
// it is learnt from does not depend on which answers fastest. Returns the time left of the
// command's deadline (at least `floor`), or the error if no member answered.
Result<milliseconds> LearnClusterIdFirst(Client& client, const ClusterFlags& flags,
                                         milliseconds floor) {
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(flags.timeout_ms);
  Result<uint64_t> learnt = client.LearnClusterId(milliseconds(flags.timeout_ms));
  const auto left =
      std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
  if (!learnt.ok()) return learnt.status();
  return std::max(left, floor);
}

// Text from a server, made safe to print on a terminal line.
std::string Printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  return out;
}

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", u);
          out += buf;
        } else {
          out.push_back(c);  // UTF-8 passes through; other high bytes are the server's problem
        }
    }
  }
  out += "\"";
  return out;
}

std::string EpochText(uint64_t epoch) {
  return epoch == 0 ? "-" : paxos::ToString(paxos::Ballot::FromRaw(epoch));
}

void PrintTable(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

void PrintStatusTable(const std::map<paxos::NodeId, std::string>& members,
                      const std::map<paxos::NodeId, Result<NodeStatus>>& all, std::ostream& out) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ADDRESS", "ROLE", "EPOCH", "EPOCH_RAW", "LEADER", "CHOSEN", "APPLIED", "LEASE"}};
  std::vector<std::string> errors;
  for (const auto& [id, address] : members) {
    const Result<NodeStatus>& r = all.at(id);
    if (!r.ok()) {
      rows.push_back({std::to_string(id), address, "unreachable", "-", "-", "-", "-", "-", "-"});
      errors.push_back("node " + std::to_string(id) + ": " + Printable(r.status().ToString()));
      continue;
    }
    const NodeStatus& s = r.value();
    rows.push_back({std::to_string(id), address, Printable(s.role), EpochText(s.epoch),
                    std::to_string(s.epoch), std::to_string(s.leader_id),
                    std::to_string(s.chosen_below), std::to_string(s.applied_below),
                    s.lease_held ? "yes" : "no"});
  }
  PrintTable(rows, out);
  for (const std::string& e : errors) out << e << "\n";
}

void PrintStatusJson(const std::map<paxos::NodeId, std::string>& members,
                     const std::map<paxos::NodeId, Result<NodeStatus>>& all, std::ostream& out) {
  std::string json = "{\"nodes\":[";
  bool first = true;
  for (const auto& [id, address] : members) {
    if (!first) json += ",";
    first = false;
    json += "{\"id\":" + std::to_string(id) + ",\"address\":" + JsonString(address);
    const Result<NodeStatus>& r = all.at(id);
    if (!r.ok()) {
      json += ",\"reachable\":false,\"error\":" + JsonString(r.status().ToString()) + "}";
      continue;
    }
    const NodeStatus& s = r.value();
    json += ",\"reachable\":true,\"role\":" + JsonString(s.role) +
            ",\"epoch\":" + std::to_string(s.epoch) +
            ",\"leader_id\":" + std::to_string(s.leader_id) +
            ",\"chosen\":" + std::to_string(s.chosen_below) +
            ",\"applied\":" + std::to_string(s.applied_below) +
            ",\"lease\":" + (s.lease_held ? "true" : "false") + "}";
  }
  json += "]}\n";
  out << json;
}

// Proposes a kv command and reports it; the state machine's refusal is exit 1.
int ProposeKv(Client& client, std::string payload, milliseconds timeout, std::ostream& out,
              std::ostream& err) {
  Result<Client::ProposeReply> r = client.Propose(std::move(payload), timeout);
  if (!r.ok()) return Fail(err, r.status());
  const Client::ProposeReply& reply = r.value();
  if (reply.outcome.code != StatusCode::kOk) {
    return Fail(err, ballot::Status(reply.outcome.code, reply.outcome.message));
  }
  out << "ok slot=" << reply.slot << " epoch=" << reply.epoch << "\n";
  return kCtlExitOk;
}

int KvGet(Client& client, const std::string& key, milliseconds timeout, std::ostream& out,
          std::ostream& err) {
  Result<Outcome> r = client.Read(samples::KvStore::EncodeGet(key), timeout);
  if (!r.ok()) return Fail(err, r.status());
  if (r.value().code != StatusCode::kOk) {
    return Fail(err, ballot::Status(r.value().code, r.value().message));
  }
  Result<std::optional<std::string>> value = samples::KvStore::DecodeGet(r.value().data);
  if (!value.ok()) return Fail(err, value.status());
  if (!value.value().has_value()) {
    err << "ballotctl: key '" << Printable(key) << "' is absent\n";
    return kCtlExitFailed;
  }
  out << *value.value() << "\n";
  return kCtlExitOk;
}

}  // namespace

// A client for --cluster, or null after printing why (and setting *exit_code).
std::unique_ptr<Client> MakeClient(const ClusterFlags& flags, std::ostream& err, int* exit_code) {
  if (flags.timeout_ms <= 0) {
    *exit_code = Usage(err, "--timeout_ms must be positive");
    return nullptr;
  }
  Result<std::map<paxos::NodeId, std::string>> members = ParseCluster(flags.cluster);
  if (!members.ok()) {
    *exit_code = Usage(err, "--cluster: " + members.status().message());
    return nullptr;
  }
  ClientOptions options;
  options.cluster_id = flags.cluster_id;  // 0: learnt from the first server that answers
  options.members = std::move(members).value();
  Result<std::unique_ptr<Client>> client = Client::Create(std::move(options));
  if (!client.ok()) {
    *exit_code = Usage(err, client.status().ToString());
    return nullptr;
  }
  return std::move(client).value();
}

int RunSeqNext(const ClusterFlags& flags, uint64_t count, std::ostream& out, std::ostream& err) {
  if (count == 0 || count > samples::SequenceGenerator::kCountMax) {
    return Usage(err,
                 "count must be in 1.." + std::to_string(samples::SequenceGenerator::kCountMax));
  }
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  Result<samples::SequenceGenerator::Block> block =
      NextNumbers(*client, count, milliseconds(flags.timeout_ms));
  if (!block.ok()) return Fail(err, block.status());
  if (block.value().count != count) {
    return Fail(err, ballot::Status(StatusCode::kCorruption,
                                    "asked for " + std::to_string(count) + " numbers, got " +
                                        std::to_string(block.value().count)));
  }
  std::string text;
  for (uint64_t i = 0; i < count; ++i) {
    text += std::to_string(block.value().first + i);
    text += '\n';
  }
  out << text;
  return kCtlExitOk;
}

int RunStatus(const ClusterFlags& flags, bool json, std::ostream& out, std::ostream& err) {
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const std::map<paxos::NodeId, std::string> members = ParseCluster(flags.cluster).value();
  // If no member answers while learning, every row still shows that member's own error.
  const Result<milliseconds> left = LearnClusterIdFirst(*client, flags, milliseconds(1));
  const std::map<paxos::NodeId, Result<NodeStatus>> all =
      client->StatusAll(left.ok() ? left.value() : milliseconds(100));
  if (json) {
    PrintStatusJson(members, all, out);
  } else {
    PrintStatusTable(members, all, out);
  }
  const bool any = std::any_of(all.begin(), all.end(), [](const auto& e) { return e.second.ok(); });
  if (!any) {
    err << "ballotctl: no node answered\n";
    return kCtlExitFailed;
  }
  return kCtlExitOk;
}

int RunLeader(const ClusterFlags& flags, std::ostream& out, std::ostream& err) {
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const Result<milliseconds> left = LearnClusterIdFirst(*client, flags, milliseconds(1));
  if (!left.ok()) return Fail(err, left.status());
  Result<std::pair<paxos::NodeId, uint64_t>> leader = client->FindLeader(left.value());
  if (!leader.ok()) return Fail(err, leader.status());
  out << leader.value().first << " " << leader.value().second << "\n";
  return kCtlExitOk;
}

int RunLeaderTransfer(const ClusterFlags& flags, uint64_t to, std::ostream& out,
                      std::ostream& err) {
  if (to > paxos::kNodeIdMax) return Usage(err, "leader transfer: --to must be a node id");
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const Result<milliseconds> left = LearnClusterIdFirst(*client, flags, milliseconds(1));
  if (!left.ok()) return Fail(err, left.status());
  Result<std::pair<paxos::NodeId, uint64_t>> moved =
      client->TransferLeadership(static_cast<paxos::NodeId>(to), left.value());
  if (!moved.ok()) return Fail(err, moved.status());
  out << moved.value().first << " " << moved.value().second << "\n";
  return kCtlExitOk;
}

int RunSnapshot(const ClusterFlags& flags, uint64_t node, std::ostream& out, std::ostream& err) {
  if (node == 0 || node > paxos::kNodeIdMax) return Usage(err, "snapshot: --id=N is required");
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const Result<milliseconds> left = LearnClusterIdFirst(*client, flags, milliseconds(1));
  if (!left.ok()) return Fail(err, left.status());
  Result<paxos::Slot> below = client->TakeSnapshot(static_cast<paxos::NodeId>(node), left.value());
  if (!below.ok()) return Fail(err, below.status());
  out << "node " << node << " snapshot covers slots below " << below.value() << "\n";
  return kCtlExitOk;
}

int RunKv(const ClusterFlags& flags, const std::vector<std::string>& args, std::ostream& out,
          std::ostream& err) {
  const std::string op = args.empty() ? "" : args[0];
  const size_t want = op == "get" || op == "delete"   ? 2
                      : op == "put" || op == "create" ? 3
                      : op == "cas"                   ? 4
                                                      : 0;
  if (want == 0) return Usage(err, "kv: expected get|put|delete|cas|create");
  if (args.size() != want) {
    return Usage(err, "kv " + op + ": expected " + std::to_string(want - 1) + " argument" +
                          (want == 2 ? "" : "s"));
  }
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const milliseconds timeout(flags.timeout_ms);
  using samples::KvStore;
  if (op == "get") return KvGet(*client, args[1], timeout, out, err);
  if (op == "put")
    return ProposeKv(*client, KvStore::EncodePut(args[1], args[2]), timeout, out, err);
  if (op == "delete") return ProposeKv(*client, KvStore::EncodeDelete(args[1]), timeout, out, err);
  if (op == "create") {
    return ProposeKv(*client, KvStore::EncodeCompareAndSet(args[1], std::nullopt, args[2]), timeout,
                     out, err);
  }
  return ProposeKv(*client, KvStore::EncodeCompareAndSet(args[1], args[2], args[3]), timeout, out,
                   err);
}

const char* ClusterCommandsUsage() {
  return "  cluster status [--json]      every member's role, epoch, chosen/applied, lease\n"
         "  cluster leader               prints '<id> <epoch>' of the leader\n"
         "  leader transfer [--to=ID]    moves leadership; prints '<id> <epoch>' of the new one\n"
         "  seq next [COUNT]             hands out COUNT numbers (default 1), one per line\n"
         "  kv get KEY | put KEY VALUE | delete KEY | cas KEY EXPECTED NEW | create KEY VALUE\n"
         "  (all: --cluster=1@host:port,2@host:port,... [--cluster_id=N] [--timeout_ms=N])\n";
}

}  // namespace ballot::tools
