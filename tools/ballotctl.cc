// ballotctl: the admin command line for Ballot.
//
//   ballotctl store verify --data_dir=DIR
//   ballotctl store dump   --data_dir=DIR [--from_slot=N] [--slots_max=N] [--show_commands]
//
// Commands are "<group> <name>" pairs listed in kCommands below; flags are gflags, shared by all
// commands (each command's entry says which it reads). To add a command: write a function
// `int Run...(const Args&)` and add a row to kCommands; usage text is generated from the table.
//
// Exit status: 0 success; 1 the command ran and found a problem or could not do its work
// (e.g. verify found a bad record, the store could not be opened); 2 usage error.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "store/lmdb_store.h"
#include "store/store_inspect.h"

DEFINE_string(data_dir, "", "A node's data directory (the LMDB store).");
DEFINE_uint64(from_slot, 0, "store dump: first slot to list.");
DEFINE_uint64(slots_max, 0, "store dump: list at most this many slots (0 = all).");
DEFINE_bool(show_commands, false, "store dump: also print every command of every slot.");

namespace ballot::tools {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

using Args = std::vector<std::string>;  // positional arguments after "<group> <name>"

struct Command {
  const char* group;
  const char* name;
  const char* flags;  // the flags it reads, for the usage text
  const char* help;
  int (*run)(const Args& args);
};

int Fail(const Status& s) {
  std::cerr << "ballotctl: " << s.ToString() << "\n";
  return kExitFailed;
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
};

std::string Usage() {
  std::string u = "Ballot admin tool.\n\nusage: ballotctl <group> <command> [flags]\n\ncommands:\n";
  for (const Command& c : kCommands) {
    u += "  " + std::string(c.group) + " " + c.name + " " + c.flags + "\n      " + c.help + "\n";
  }
  u += "\nexit status: 0 ok, 1 problem found or command failed, 2 usage error";
  return u;
}

int Main(int argc, char** argv) {
  gflags::SetUsageMessage(Usage());
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  const Args words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "help") {
    std::cout << Usage() << "\n";
    return words.empty() ? kExitUsage : kExitOk;
  }
  for (const Command& c : kCommands) {
    if (words.size() >= 2 && words[0] == c.group && words[1] == c.name) {
      const Args rest(words.begin() + 2, words.end());
      if (!rest.empty()) {
        std::cerr << "ballotctl: unexpected argument '" << rest[0] << "'\n\n" << Usage() << "\n";
        return kExitUsage;
      }
      return c.run(rest);
    }
  }
  std::cerr << "ballotctl: unknown command '" << words[0]
            << (words.size() > 1 ? " " + words[1] : "") << "'\n\n"
            << Usage() << "\n";
  return kExitUsage;
}

}  // namespace
}  // namespace ballot::tools

int main(int argc, char** argv) { return ballot::tools::Main(argc, argv); }
