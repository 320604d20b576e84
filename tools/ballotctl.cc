// ballotctl: the admin command line for Ballot.
//
//   ballotctl --cluster=... seq next [--count=N]
//   ballotctl --cluster=... status [--json]
//   ballotctl --cluster=... leader
//   ballotctl --cluster=... member list [--json] | add ID@HOST:PORT | remove ID
//   ballotctl --cluster=... snapshot --id=N
//   ballotctl --cluster=... kv get|put|delete|cas|create ...
//   ballotctl --cluster=... lock acquire|keepalive|release NAME --owner=ID [--ttl_ms=N]
//   ballotctl --cluster=... lock run NAME --owner=ID --ttl_ms=N [--grace_ms=G] -- CMD [ARGS...]
//   ballotctl --cluster=... lock watch NAME
//   ballotctl store verify --data_dir=DIR
//   ballotctl store dump   --data_dir=DIR [--from_slot=N] [--slots_max=N] [--show_commands]
//
// Commands are "<group> <name>" pairs listed in kCommands below; flags are gflags, shared by all
// commands (each command's entry says which it reads). To add a command: write a function
// `int Run...(const Args&)` and add a row to kCommands; usage text is generated from the table.
//
// Exit status: 0 success; 1 the command ran and found a problem or could not do its work
// (e.g. verify found a bad record, the store could not be opened, no answer within
// --timeout_ms); 2 usage error; 3 a lock is held by another owner. lock run: CMD's status, or 4
// when the lock was lost while CMD ran (tools/ctl/lock_run.h).
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "net/client/client.h"
#include "net/cluster_config.h"
#include "statemachine/samples/lock.h"
#include "store/lmdb_store.h"
#include "store/store_inspect.h"
#include "tools/ctl/cluster_commands.h"
#include "tools/ctl/lock_run.h"
#include "tools/ctl/lock_watch.h"
#include "tools/ctl/member_commands.h"
#include "tools/flag_check.h"

DEFINE_string(data_dir, "", "A node's data directory (the LMDB store).");
DEFINE_uint64(from_slot, 0, "store dump: first slot to list.");
DEFINE_uint64(slots_max, 0, "store dump: list at most this many slots (0 = all).");
DEFINE_bool(show_commands, false, "store dump: also print every command of every slot.");
DEFINE_string(cluster, "",
              "Addresses of members as id@host:port, comma-separated: any list that includes a "
              "live member (it need not match ballotd's --cluster)");
DEFINE_uint64(cluster_id, 0,
              "Only talk to servers of this cluster (0: learn it from the first member, in id "
              "order, that answers, and refuse servers of any other cluster)");
DEFINE_int32(timeout_ms, 5000, "Deadline of the whole command, in milliseconds.");
DEFINE_uint64(count, 1, "seq next: how many numbers to draw.");
DEFINE_bool(json, false, "status, member list: print one JSON object instead of a table.");
DEFINE_uint64(id, 0, "snapshot: the node that takes the snapshot.");
DEFINE_uint64(to, 0,
              "leader transfer: the node to hand leadership to (0: the most up-to-date voter).");
DEFINE_string(owner, "", "lock: the owner id acting on the lock.");
DEFINE_uint64(ttl_ms, 10000,
              "lock acquire, lock run (required there): time to live of the grant, in "
              "milliseconds.");
DEFINE_int32(grace_ms, -1,
             "lock run: how long CMD may take to exit after SIGTERM before SIGKILL, in "
             "milliseconds (-1: min(ttl_ms/10, 1000)); margin + grace must be at most ttl_ms/2, "
             "where margin = max(ttl_ms/5, 100) (tools/ctl/lock_run.h).");
DEFINE_int32(wait_ms, 120000,
             "member add / remove: how long to wait for the change to take effect (add: until "
             "the new node has caught up and is a voter), in milliseconds.");

namespace ballot::tools {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitLockHeld = 3;

using Args = std::vector<std::string>;  // positional arguments after "<group> <name>"

struct Command {
  const char* group;
  const char* name;
  const char* flags;  // the flags it reads, for the usage text
  const char* help;
  int (*run)(const Args& args);
  size_t args_min = 0;  // positional arguments it takes
  size_t args_max = 0;
  bool takes_command = false;  // "-- CMD [ARGS...]" follows (appended to its arguments)
};

int Fail(const Status& s) {
  std::cerr << "ballotctl: " << s.ToString() << "\n";
  return kExitFailed;
}

ClusterFlags Cluster() {
  ClusterFlags f;
  f.cluster = FLAGS_cluster;
  f.cluster_id = FLAGS_cluster_id;
  f.timeout_ms = FLAGS_timeout_ms;
  return f;
}

bool NeedCluster() {
  if (!FLAGS_cluster.empty()) return true;
  std::cerr << "ballotctl: --cluster is required\n";
  return false;
}

int RunSeqNextCommand(const Args&) {
  if (!NeedCluster()) return kExitUsage;
  return RunSeqNext(Cluster(), FLAGS_count);
}
int RunStatusCommand(const Args&) {
  if (!NeedCluster()) return kExitUsage;
  return RunStatus(Cluster(), FLAGS_json);
}
int RunLeaderCommand(const Args&) {
  if (!NeedCluster()) return kExitUsage;
  return RunLeader(Cluster());
}
int RunLeaderTransferCommand(const Args&) {
  if (!NeedCluster()) return kExitUsage;
  return RunLeaderTransfer(Cluster(), FLAGS_to);
}
int RunSnapshotCommand(const Args&) {
  if (!NeedCluster()) return kExitUsage;
  return RunSnapshot(Cluster(), FLAGS_id);
}
int RunKvCommand(const Args& args) {
  if (!NeedCluster()) return kExitUsage;
  return RunKv(Cluster(), args);
}

int RunMemberListCommand(const Args&) {
  if (!NeedCluster()) return kExitUsage;
  return RunMemberList(Cluster(), FLAGS_json);
}
int RunMemberAddCommand(const Args& args) {
  if (!NeedCluster()) return kExitUsage;
  return RunMemberAdd(Cluster(), args[0], FLAGS_wait_ms);
}
int RunMemberRemoveCommand(const Args& args) {
  if (!NeedCluster()) return kExitUsage;
  return RunMemberRemove(Cluster(), args[0], FLAGS_wait_ms);
}

// Sends one lock command; prints the token on success. A refusal (held by another owner, not
// held) is exit 3 with the state machine's message.
int RunLock(const std::string& payload, bool prints_token) {
  if (!NeedCluster()) return kExitUsage;
  if (FLAGS_owner.empty()) {
    std::cerr << "ballotctl: --owner is required\n";
    return kExitUsage;
  }
  auto members = ParseCluster(FLAGS_cluster);
  if (!members.ok()) {
    std::cerr << "ballotctl: bad --cluster: " << members.status().message() << "\n";
    return kExitUsage;
  }
  ClientOptions options;
  options.members = members.value();
  options.cluster_id = FLAGS_cluster_id;  // 0: learnt from the first server that answers
  auto client = Client::Create(options);
  if (!client.ok()) return Fail(client.status());
  auto reply = client.value()->Propose(payload, std::chrono::milliseconds(FLAGS_timeout_ms));
  if (!reply.ok()) return Fail(reply.status());
  const Outcome& o = reply.value().outcome;
  if (o.code == StatusCode::kAborted) {
    std::cerr << "ballotctl: " << o.message << "\n";
    return kExitLockHeld;
  }
  if (o.code != StatusCode::kOk) return Fail(Status(o.code, o.message));
  if (prints_token) {
    auto grant = samples::LockService::DecodeGrant(o.data);
    if (!grant.ok()) return Fail(grant.status());
    std::cout << grant.value().token << "\n";
  }
  return kExitOk;
}
int RunLockAcquire(const Args& args) {
  return RunLock(samples::LockService::EncodeAcquire(args[0], FLAGS_owner, FLAGS_ttl_ms), true);
}
int RunLockKeepAlive(const Args& args) {
  return RunLock(samples::LockService::EncodeKeepAlive(args[0], FLAGS_owner), true);
}
int RunLockRelease(const Args& args) {
  return RunLock(samples::LockService::EncodeRelease(args[0], FLAGS_owner), false);
}
int RunLockRunCommand(const Args& args) {
  if (!NeedCluster()) return kExitUsage;
  const bool ttl_given = !gflags::GetCommandLineFlagInfoOrDie("ttl_ms").is_default;
  return tools::RunLockRunCommand(Cluster(), args, FLAGS_owner,
                                  ttl_given ? std::optional<uint64_t>(FLAGS_ttl_ms) : std::nullopt,
                                  FLAGS_grace_ms);
}

std::atomic<bool> watch_stop{false};
extern "C" void StopWatching(int) { watch_stop.store(true); }

// Runs until SIGINT or SIGTERM, then exits 0.
int RunLockWatchCommand(const Args& args) {
  if (!NeedCluster()) return kExitUsage;
  std::signal(SIGINT, StopWatching);
  std::signal(SIGTERM, StopWatching);
  return RunLockWatch(Cluster(), args[0], watch_stop);
}

// Opens --data_dir read-only; on failure prints why and returns null.
std::unique_ptr<store::LmdbStore> OpenStoreForInspection(int* exit_code) {
  if (FLAGS_data_dir.empty()) {
    std::cerr << "ballotctl: --data_dir is required\n";
    *exit_code = kExitUsage;
    return nullptr;
  }
  Result<std::unique_ptr<store::LmdbStore>> r = store::LmdbStore::OpenForInspection(FLAGS_data_dir);
  if (!r.ok()) {
    *exit_code = Fail(r.status());
    return nullptr;
  }
  return std::move(r).value();
}

int RunStoreVerify(const Args& /*args*/) {
  int exit_code = kExitOk;
  std::unique_ptr<store::LmdbStore> s = OpenStoreForInspection(&exit_code);
  if (s == nullptr) return exit_code;
  Result<store::VerifyReport> report = store::VerifyStore(s.get());
  if (!report.ok()) return Fail(report.status());
  std::cout << "data_dir: " << FLAGS_data_dir << "\n";
  store::PrintVerifyReport(report.value(), std::cout);
  return report.value().ok() ? kExitOk : kExitFailed;
}

int RunStoreDump(const Args& /*args*/) {
  int exit_code = kExitOk;
  std::unique_ptr<store::LmdbStore> s = OpenStoreForInspection(&exit_code);
  if (s == nullptr) return exit_code;
  store::DumpOptions options;
  options.from_slot = FLAGS_from_slot;
  options.slots_max = FLAGS_slots_max;
  options.show_commands = FLAGS_show_commands;
  if (Status st = store::DumpStore(s.get(), options, std::cout); !st.ok()) return Fail(st);
  return kExitOk;
}

constexpr Command kCommands[] = {
    {"store", "verify", "--data_dir",
     "check every record's checksum and the store's invariants; exit 1 on any problem",
     &RunStoreVerify},
    {"store", "dump", "--data_dir [--from_slot] [--slots_max] [--show_commands]",
     "print identity, promise, chosen_below, snapshot and slots readably", &RunStoreDump},
    {"seq", "next", "--cluster [--count]", "draw numbers from the sequence sample, one per line",
     &RunSeqNextCommand},
    {"status", "", "--cluster [--json]",
     "every member's role, epoch, chosen and applied positions and lease", &RunStatusCommand},
    // Before "leader": a command with an empty name matches any second word.
    {"leader", "transfer", "--cluster [--to]",
     "hand leadership to node --to (default: the most up-to-date voter); prints the new "
     "leader's id and epoch",
     &RunLeaderTransferCommand},
    {"leader", "", "--cluster", "print the leader's id and epoch", &RunLeaderCommand},
    {"snapshot", "", "--cluster --id",
     "node --id takes a snapshot now and compacts its log; prints the slot it covers",
     &RunSnapshotCommand},
    {"member", "list", "--cluster [--json]",
     "the configuration: id, address, voter or learner, one member per line",
     &RunMemberListCommand},
    {"member", "add", "--cluster ID@HOST:PORT [--wait_ms]",
     "add a node as a learner (start it with ballotd --join); returns once it caught up and is "
     "a voter",
     &RunMemberAddCommand, 1, 1},
    {"member", "remove", "--cluster ID [--wait_ms]",
     "remove a node (the leader hands over first if it is the one); returns once it is gone",
     &RunMemberRemoveCommand, 1, 1},
    {"kv", "",
     "--cluster get KEY | put KEY VALUE | delete KEY | cas KEY EXPECTED NEW | create "
     "KEY VALUE",
     "the key-value sample", &RunKvCommand, 2, 4},
    {"lock", "acquire", "--cluster NAME --owner [--ttl_ms]",
     "acquire a lock of the lock sample; prints its token; exit 3 if another owner holds it",
     &RunLockAcquire, 1, 1},
    {"lock", "keepalive", "--cluster NAME --owner", "extend a held lock; prints its token",
     &RunLockKeepAlive, 1, 1},
    {"lock", "release", "--cluster NAME --owner", "release a held lock", &RunLockRelease, 1, 1},
    {"lock", "run", "--cluster NAME --owner --ttl_ms [--grace_ms] -- CMD [ARGS...]",
     "run CMD only while holding the lock, with BALLOT_FENCING_TOKEN and BALLOT_LOCK_NAME in "
     "its environment; keepalive every ttl/3; unless a later one is confirmed, SIGTERM to CMD at "
     "S+ttl-margin-grace and SIGKILL at S+ttl-margin, then exit 4 (S: send time of the last "
     "confirmed keepalive; margin: max(ttl/5, 100 ms), choose the TTL so that it exceeds clock "
     "skew and scheduling delays; docs/fencing.md); else CMD's exit status",
     &RunLockRunCommand, 1, SIZE_MAX, true},
    {"lock", "watch", "--cluster NAME",
     "print the holder ('<owner> <token>', or '-' when free), then one line per change of "
     "holder, until interrupted (exit 0)",
     &RunLockWatchCommand, 1, 1},
};

std::string Usage() {
  std::string u = "Ballot admin tool.\n\nusage: ballotctl <group> <command> [flags]\n\ncommands:\n";
  for (const Command& c : kCommands) {
    u += "  " + std::string(c.group) + " " + c.name + " " + c.flags + "\n      " + c.help + "\n";
  }
  u += "\nexit status: 0 ok, 1 problem found or command failed, 2 usage error, 3 lock held by "
       "another owner; lock run: CMD's status, or 4 if the lock was lost while CMD ran";
  return u;
}

// Finds the command for the words; single-word commands have an empty name.
const Command* Find(const Args& words, size_t* used) {
  for (const Command& c : kCommands) {
    if (words[0] != c.group) continue;
    if (c.name[0] == '\0') {
      *used = 1;
      return &c;
    }
    if (words.size() >= 2 && words[1] == c.name) {
      *used = 2;
      return &c;
    }
  }
  return nullptr;
}

int Main(int argc, char** argv) {
  static const std::string usage = Usage();
  // "lock run" takes a command after "--". gflags would move it before the positional words
  // (it permutes them), so it is cut off before parsing and handed over separately.
  Args command;
  bool has_command = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) != "--") continue;
    command.assign(argv + i + 1, argv + argc);
    has_command = true;
    argv[i] = nullptr;
    argc = i;
    break;
  }
  ParseFlagsStrict(usage.c_str(), &argc, &argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  const Args words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "help") {
    std::cout << Usage() << "\n";
    return words.empty() ? kExitUsage : kExitOk;
  }
  size_t used = 0;
  const Command* c = Find(words, &used);
  if (c == nullptr) {
    std::cerr << "ballotctl: unknown command '" << words[0]
              << (words.size() > 1 ? " " + words[1] : "") << "'\n\n"
              << Usage() << "\n";
    return kExitUsage;
  }
  Args rest(words.begin() + used, words.end());
  if (has_command && !c->takes_command) {
    std::cerr << "ballotctl: " << c->group << (c->name[0] ? " " : "") << c->name
              << " takes no '-- CMD'\n";
    return kExitUsage;
  }
  if (rest.size() < c->args_min || rest.size() > c->args_max) {
    std::cerr << "ballotctl: " << c->group << (c->name[0] ? " " : "") << c->name << " takes "
              << c->flags << "\n";
    return kExitUsage;
  }
  if (has_command) {
    rest.push_back("--");
    rest.insert(rest.end(), command.begin(), command.end());
  }
  return c->run(rest);
}

}  // namespace
}  // namespace ballot::tools

int main(int argc, char** argv) { return ballot::tools::Main(argc, argv); }
