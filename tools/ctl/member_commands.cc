#include "tools/ctl/member_commands.h"

#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

namespace ballot::tools {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often the configuration is asked again while waiting for a change to take effect.
constexpr milliseconds kPollInterval{100};

int Fail(std::ostream& err, const std::string& message) {
  err << "ballotctl: " << message << "\n";
  return kCtlExitFailed;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "ballotctl: " << message << "\n";
  return kCtlExitUsage;
}

bool ParseId(std::string_view text, paxos::NodeId* id) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *id);
  return ec == std::errc() && end == text.data() + text.size() && *id != paxos::kNoNode &&
         *id <= paxos::kNodeIdMax;
}

const paxos::Member* Find(const std::vector<paxos::Member>& members, paxos::NodeId id) {
  for (const paxos::Member& m : members) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

// Sends `change`, asking again while another change (e.g. the leader promoting a learner) is
// under way. If an attempt's answer was lost and a retry is refused because the change already
// happened, `already_done` (checked on the configuration afterwards) makes it a success.
ballot::Status SendChange(Client& client, const net::MemberChangeRequest& change,
                          Clock::time_point deadline, milliseconds attempt,
                          const std::function<bool(const std::vector<paxos::Member>&)>& done) {
  for (;;) {
    ballot::Status s = client.ChangeMember(change, attempt);
    if (s.ok()) return s;
    const bool busy = s.code() == StatusCode::kFailedPrecondition &&
                      (s.message().find("under way") != std::string::npos);
    if (s.code() != StatusCode::kTimeout && !busy) {
      // Refused. Unless the configuration shows it done (a lost answer, retried), that is the
      // answer.
      Result<std::vector<paxos::Member>> now = client.MemberList(attempt);
      if (now.ok() && done(now.value())) return ballot::Status::Ok();
      return s;
    }
    if (Clock::now() + kPollInterval >= deadline) return s;
    std::this_thread::sleep_for(kPollInterval);
  }
}

// Polls the leader's configuration until `done` holds or the deadline passes.
ballot::Status WaitFor(Client& client, Clock::time_point deadline, milliseconds attempt,
                       const std::function<bool(const std::vector<paxos::Member>&)>& done,
                       const std::string& what) {
  std::string last = "no answer";
  for (;;) {
    Result<std::vector<paxos::Member>> now = client.MemberList(attempt);
    if (now.ok() && done(now.value())) return ballot::Status::Ok();
    if (!now.ok()) last = now.status().ToString();
    if (now.ok()) {
      last = "configuration is";
      for (const paxos::Member& m : now.value()) {
        last += " " + std::to_string(m.id) + (m.voter ? "" : "(learner)");
      }
    }
    if (Clock::now() + kPollInterval >= deadline) {
      return ballot::Status(StatusCode::kTimeout,
                            "gave up waiting for " + what + " (" + last + "); raise --wait_ms");
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

int RunMemberList(const ClusterFlags& flags, bool json, std::ostream& out, std::ostream& err) {
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  Result<std::vector<paxos::Member>> members = client->MemberList(milliseconds(flags.timeout_ms));
  if (!members.ok()) return Fail(err, members.status().ToString());
  std::string text;
  if (json) {
    text = "{\"members\":[";
    bool first = true;
    for (const paxos::Member& m : members.value()) {
      text += std::string(first ? "" : ",") + "{\"id\":" + std::to_string(m.id) + ",\"address\":\"";
      for (char c : m.address) {  // host:port: nothing to escape but be safe
        if (c == '"' || c == '\\') text += '\\';
        text += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
      }
      text += std::string("\",\"voter\":") + (m.voter ? "true" : "false") + "}";
      first = false;
    }
    text += "]}\n";
  } else {
    for (const paxos::Member& m : members.value()) {
      text += std::to_string(m.id) + " " + m.address + " " + (m.voter ? "voter" : "learner") + "\n";
    }
  }
  out << text;
  return kCtlExitOk;
}

int RunMemberAdd(const ClusterFlags& flags, const std::string& spec, int wait_ms, std::ostream& out,
                 std::ostream& err) {
  // ID@HOST:PORT, checked as --cluster entries are.
  Result<std::map<paxos::NodeId, std::string>> parsed = ParseCluster(spec);
  if (!parsed.ok() || parsed.value().size() != 1) {
    return Usage(err, "member add takes ID@HOST:PORT" +
                          (parsed.ok() ? std::string() : ": " + parsed.status().message()));
  }
  if (wait_ms <= 0) return Usage(err, "--wait_ms must be positive");
  const auto [id, address] = *parsed.value().begin();
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const milliseconds attempt(flags.timeout_ms);
  const Clock::time_point deadline = Clock::now() + milliseconds(wait_ms);
  Result<std::vector<paxos::Member>> before = client->MemberList(attempt);
  if (!before.ok()) return Fail(err, before.status().ToString());
  const bool was_member = Find(before.value(), id) != nullptr;
  auto added = [&, id = id, address = address](const std::vector<paxos::Member>& now) {
    const paxos::Member* m = Find(now, id);
    return !was_member && m != nullptr && m->address == address;
  };
  ballot::Status s =
      SendChange(*client, net::MemberChangeRequest{false, id, address}, deadline, attempt, added);
  if (!s.ok()) return Fail(err, "cannot add node " + std::to_string(id) + ": " + s.ToString());
  out << "node " << id << " added as a learner at " << address
      << "; waiting until it has caught up and is a voter" << std::endl;
  s = WaitFor(
      *client, deadline, attempt,
      [id = id](const std::vector<paxos::Member>& now) {
        const paxos::Member* m = Find(now, id);
        return m != nullptr && m->voter;
      },
      "node " + std::to_string(id) + " to become a voter");
  if (!s.ok()) return Fail(err, s.ToString());
  out << "node " << id << " at " << address << " is a voter\n";
  return kCtlExitOk;
}

int RunMemberRemove(const ClusterFlags& flags, const std::string& id_text, int wait_ms,
                    std::ostream& out, std::ostream& err) {
  paxos::NodeId id = paxos::kNoNode;
  if (!ParseId(id_text, &id))
    return Usage(err, "member remove takes a node id, not '" + id_text + "'");
  if (wait_ms <= 0) return Usage(err, "--wait_ms must be positive");
  int exit_code = kCtlExitOk;
  std::unique_ptr<Client> client = MakeClient(flags, err, &exit_code);
  if (!client) return exit_code;
  const milliseconds attempt(flags.timeout_ms);
  const Clock::time_point deadline = Clock::now() + milliseconds(wait_ms);
  Result<std::vector<paxos::Member>> before = client->MemberList(attempt);
  if (!before.ok()) return Fail(err, before.status().ToString());
  const bool was_member = Find(before.value(), id) != nullptr;
  auto gone = [&](const std::vector<paxos::Member>& now) {
    return was_member && Find(now, id) == nullptr;
  };
  ballot::Status s =
      SendChange(*client, net::MemberChangeRequest{true, id, ""}, deadline, attempt, gone);
  if (!s.ok()) return Fail(err, "cannot remove node " + std::to_string(id) + ": " + s.ToString());
  s = WaitFor(
      *client, deadline, attempt,
      [id](const std::vector<paxos::Member>& now) { return Find(now, id) == nullptr; },
      "node " + std::to_string(id) + " to leave the configuration");
  if (!s.ok()) return Fail(err, s.ToString());
  out << "node " << id << " removed\n";
  return kCtlExitOk;
}

}  // namespace ballot::tools
