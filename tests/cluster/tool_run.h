// Running one-shot tools (ballotctl, ballot-fenced-kv's client) as child processes from process
// tests, with their output captured and a deadline on everything; and the sample fenced
// resource (ballot-fenced-kv) as a server child.
#ifndef BALLOT_TESTS_CLUSTER_TOOL_RUN_H_
#define BALLOT_TESTS_CLUSTER_TOOL_RUN_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "paxos/status.h"
#include "tests/cluster/process_cluster.h"

namespace ballot::cluster_test {

// Bytes read from a child's output at most (a tool prints a few lines).
inline constexpr size_t kOutputBytesMax = 64 * 1024;

// Milliseconds until `deadline`, at least 0 (for poll()).
int MillisLeft(Clock::time_point deadline);

// fork + exec of `args` (args[0] is the path) with stdout and stderr on the given descriptors
// (-1: /dev/null). The child dies with this thread (PR_SET_PDEATHSIG), like ProcessCluster's.
pid_t Spawn(const std::vector<std::string>& args, int out_fd, int err_fd);

// `s` without trailing newlines and spaces.
std::string Trim(std::string s);

struct ToolResult {
  int exit_code = -1;  // -signal if killed; -1000 if it did not end by the deadline
  std::string out;
  std::string err;
  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + ", stdout '" + Trim(out) + "', stderr '" +
           Trim(err) + "'";
  }
};

// Runs a one-shot tool to completion (SIGKILLed at the deadline), capturing its output.
ToolResult RunTool(const std::vector<std::string>& args, Clock::time_point deadline);

// One request line over a fresh TCP connection to 127.0.0.1:port; the reply line, or why not.
Result<std::string> LineRequest(uint16_t port, const std::string& line, Clock::time_point deadline);

// ballot-fenced-kv (`binary`) as a child process on a free port, its store in `dir`, its log in
// `dir`.log. SIGKILLed and reaped on destruction.
class FencedKv {
 public:
  FencedKv(std::string binary, std::string dir);
  ~FencedKv();
  FencedKv(const FencedKv&) = delete;
  FencedKv& operator=(const FencedKv&) = delete;

  // Starts the server and reads "listening on PORT" from its stdout.
  Status Start(Clock::time_point deadline);
  uint16_t port() const { return port_; }
  // One request line; the reply line ("" and a test failure if there is none within 15 s).
  std::string Send(const std::string& line);
  // The same request through the binary's own client mode (exit 0 ok, 3 rejected).
  ToolResult SendWithClient(const std::string& line);

 private:
  const std::string binary_;
  const std::string dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace ballot::cluster_test

#endif  // BALLOT_TESTS_CLUSTER_TOOL_RUN_H_
