#include "tools/flag_check.h"

#include <gflags/gflags.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ballot::tools {

namespace {

[[noreturn]] void Fail(const std::string& program, const std::string& why) {
  std::fprintf(stderr, "%s: %s (see --help)\n", program.c_str(), why.c_str());
  std::exit(kExitUsage);
}

// Checks one "--name[=value]" argument; returns true if it consumed the next argv entry.
bool CheckOne(const std::string& program, const std::string& arg, const char* next) {
  std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
  size_t eq = body.find('=');
  std::string name = body.substr(0, eq);
  gflags::CommandLineFlagInfo info;
  if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
    // gflags also accepts --noflag for booleans.
    if (name.rfind("no", 0) == 0 && gflags::GetCommandLineFlagInfo(name.c_str() + 2, &info) &&
        info.type == "bool" && eq == std::string::npos) {
      return false;
    }
    Fail(program, "unknown flag --" + name);
  }
  bool consumed_next = false;
  std::string value;
  if (eq != std::string::npos) {
    value = body.substr(eq + 1);
  } else if (info.type == "bool") {
    value = "true";
  } else if (next != nullptr) {
    value = next;
    consumed_next = true;
  } else {
    Fail(program, "flag --" + name + " needs a value");
  }
  // Validates the value by type (and by any registered validator) without keeping it yet.
  std::string old = info.current_value;
  if (gflags::SetCommandLineOption(name.c_str(), value.c_str()).empty()) {
    Fail(program, "bad value '" + value + "' for --" + name + " (" + info.type + ")");
  }
  gflags::SetCommandLineOption(name.c_str(), old.c_str());
  return consumed_next;
}

}  // namespace

void ParseFlagsStrict(const char* usage, int* argc, char*** argv) {
  gflags::SetUsageMessage(usage);
  std::string program = (*argc > 0) ? (*argv)[0] : "ballot";
  program = program.substr(program.rfind('/') + 1);
  for (int i = 1; i < *argc; ++i) {
    std::string arg = (*argv)[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    if (arg == "--help" || arg == "-help" || arg == "--helpshort" || arg == "--helpfull") {
      gflags::ShowUsageWithFlagsRestrict(program.c_str(), "tools/");
      std::exit(0);
    }
    if (CheckOne(program, arg, i + 1 < *argc ? (*argv)[i + 1] : nullptr)) ++i;
  }
  gflags::ParseCommandLineFlags(argc, argv, /*remove_flags=*/true);
}

}  // namespace ballot::tools
