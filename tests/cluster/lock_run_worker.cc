// lock_run_worker: the command lock_run_test.cc runs under `ballotctl lock run`. It records what
// it sees and does in --events, one line per event, each appended with a single write to a file
// opened O_APPEND (so the lines of several workers never interleave):
//   start <owner> <token> <lock name> <pid>
//   overlap <owner> <token>          another worker holds --flock: two commands run at once
//   register <owner> <token> <reply> the REGISTER before its first fenced write
//   write <owner> <token> <reply>    one per fenced write (reply: OK, REJECTED ..., or an error)
//   term <owner> <token>             SIGTERM received (not recorded with --ignore_term)
//   exit <owner> <token> <status>    it ends by itself (--exit_after_ms) or after SIGTERM
// The token and lock name come from BALLOT_FENCING_TOKEN and BALLOT_LOCK_NAME (exit 98 if the
// token is missing or not a number).
//
// Flags (--name=value):
//   --events=FILE       required
//   --owner=ID          required; a label (the lock run's --owner)
//   --flock=FILE        hold an exclusive flock on FILE while running; if another process holds
//                       it, record "overlap" and exit 99. The kernel drops the flock when the
//                       process dies, however it dies, so a held flock means a live worker.
//   --fenced_port=P     with --resource=R: REGISTER R <token>, then WRITE R <token> owner <owner>
//                       every --write_every_ms (default 50) to ballot-fenced-kv on 127.0.0.1:P
//   --exit_after_ms=N   exit by itself after N ms with status --exit_code (default 0)
//   --ignore_term       ignore SIGTERM (lock run must SIGKILL it)
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "tests/cluster/tool_run.h"

namespace {

volatile std::sig_atomic_t g_terminated = 0;

void OnTerm(int) { g_terminated = 1; }

int g_events_fd = -1;

void Record(const std::string& line) {
  const std::string text = line + "\n";
  ssize_t ignored = write(g_events_fd, text.data(), text.size());
  (void)ignored;
}

int Main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) return 2;
    const size_t eq = arg.find('=');
    flags[arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2)] =
        eq == std::string::npos ? "true" : arg.substr(eq + 1);
  }
  const auto flag = [&](const std::string& name, const std::string& fallback = "") {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  };
  if (flag("events").empty() || flag("owner").empty()) return 2;
  g_events_fd = open(flag("events").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (g_events_fd < 0) return 2;
  const char* token_text = getenv("BALLOT_FENCING_TOKEN");
  const char* name = getenv("BALLOT_LOCK_NAME");
  char* end = nullptr;
  const uint64_t token = token_text != nullptr ? std::strtoull(token_text, &end, 10) : 0;
  if (token_text == nullptr || *token_text == '\0' || *end != '\0' || name == nullptr) return 98;
  const std::string who = flag("owner") + " " + std::to_string(token);

  struct sigaction action {};
  action.sa_handler = flag("ignore_term") == "true" ? SIG_IGN : OnTerm;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);

  if (!flag("flock").empty()) {
    const int fd = open(flag("flock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
      Record("overlap " + who);
      return 99;
    }
  }
  Record("start " + who + " " + name + " " + std::to_string(getpid()));

  using Clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  const auto started = Clock::now();
  const int exit_after_ms = std::atoi(flag("exit_after_ms", "-1").c_str());
  const int write_every_ms = std::atoi(flag("write_every_ms", "50").c_str());
  const int port = std::atoi(flag("fenced_port", "0").c_str());
  const std::string resource = flag("resource", "jobs");
  const auto request = [&](const std::string& line) {
    auto reply = ballot::cluster_test::LineRequest(static_cast<uint16_t>(port), line,
                                                   Clock::now() + milliseconds(2000));
    return reply.ok() ? reply.value() : "ERROR " + reply.status().ToString();
  };
  if (port > 0) {
    Record("register " + who + " " + request("REGISTER " + resource + " " + std::to_string(token)));
  }
  auto next_write = Clock::now();
  while (true) {
    if (g_terminated) {
      Record("term " + who);
      Record("exit " + who + " 143");
      return 143;
    }
    const auto now = Clock::now();
    if (exit_after_ms >= 0 && now - started >= milliseconds(exit_after_ms)) {
      const int code = std::atoi(flag("exit_code", "0").c_str());
      Record("exit " + who + " " + std::to_string(code));
      return code;
    }
    if (port > 0 && now >= next_write) {
      Record(
          "write " + who + " " +
          request("WRITE " + resource + " " + std::to_string(token) + " owner " + flag("owner")));
      next_write = now + milliseconds(write_every_ms);
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
