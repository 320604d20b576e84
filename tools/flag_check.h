// Strict command-line parsing for Ballot's binaries: an unknown flag or a malformed value is a
// clear one-line message and exit code 2 (operators' scripts rely on it), not gflags' exit 1.
#ifndef BALLOT_TOOLS_FLAG_CHECK_H_
#define BALLOT_TOOLS_FLAG_CHECK_H_

namespace ballot::tools {

inline constexpr int kExitUsage = 2;

// Checks every --flag in argv against the registered gflags (name and value), exiting with
// kExitUsage on the first bad one; then parses them, removing flags from argv. --help and
// --helpshort print usage and exit 0.
void ParseFlagsStrict(const char* usage, int* argc, char*** argv);

}  // namespace ballot::tools

#endif  // BALLOT_TOOLS_FLAG_CHECK_H_
