// Teeth: the simulator must catch each bug planted in the core (paxos::PlantedBugs). For each
// plant it runs seeds, alternating 3 and 5 nodes, until one is flagged, and fails if none is
// within kSeedsMax. A plant may also trip a CHECK inside the core; the hunt runs in a child
// process so that such a crash is observed (and reported) instead of killing the test.
#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "tests/sim/simulator.h"

namespace ballot::sim {
namespace {

constexpr uint64_t kSeedsMax = 2000;

struct Hunt {
  bool caught = false;
  bool by_check = false;  // the core crashed on a CHECK rather than the checker flagging it
  uint64_t runs = 0;      // seeds run, including the one that caught it
  std::string replay;
  std::string what;
};

SimConfig ConfigForRun(const paxos::PlantedBugs& planted, uint64_t run) {
  SimConfig config;
  config.planted = planted;
  config.nodes = run % 2 == 0 ? 3 : 5;
  config.seed = run / 2 + 1;
  return config;
}

// Child: one line per seed ("run <i>") before running it, then "caught <i> <violation>" or
// "missed". Never returns.
[[noreturn]] void HuntInChild(const paxos::PlantedBugs& planted, int fd) {
  InstallCheckFailureReporter();
  FILE* out = fdopen(fd, "w");
  for (uint64_t run = 0; run < kSeedsMax; ++run) {
    std::fprintf(out, "run %llu\n", static_cast<unsigned long long>(run));
    std::fflush(out);
    const SimResult r = RunSimulation(ConfigForRun(planted, run));
    if (r.ok()) continue;
    std::string what = r.violation;
    for (char& c : what) c = c == '\n' ? ' ' : c;
    std::fprintf(out, "caught %llu %s\n", static_cast<unsigned long long>(run), what.c_str());
    std::fflush(out);
    _exit(0);
  }
  std::fprintf(out, "missed\n");
  std::fflush(out);
  _exit(0);
}

Hunt HuntFor(const paxos::PlantedBugs& planted) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  std::fflush(stdout);
  const pid_t pid = fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    HuntInChild(planted, fds[1]);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  close(fds[0]);
  int status = 0;
  CHECK_EQ(waitpid(pid, &status, 0), pid);

  Hunt hunt;
  uint64_t last_run = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string tag;
    words >> tag;
    if (tag == "run") words >> last_run;
    if (tag == "caught") {
      hunt.caught = true;
      std::getline(words >> last_run >> std::ws, hunt.what);
    }
  }
  if (!hunt.caught && WIFSIGNALED(status)) {
    hunt.caught = true;
    hunt.by_check = true;
    hunt.what = "the core crashed on a CHECK";
  }
  hunt.runs = last_run + 1;
  hunt.replay = ReplayCommand(ConfigForRun(planted, last_run));
  return hunt;
}

class Teeth : public ::testing::TestWithParam<const char*> {};

TEST_P(Teeth, SimulatorCatchesPlantedBug) {
  paxos::PlantedBugs planted;
  ASSERT_TRUE(SetPlant(GetParam(), &planted));
  const Hunt hunt = HuntFor(planted);
  ASSERT_TRUE(hunt.caught) << "planted bug " << GetParam() << " survived " << kSeedsMax << " seeds";
  std::printf("teeth: %s caught after %llu seeds%s: %s\n  replay: %s\n", GetParam(),
              static_cast<unsigned long long>(hunt.runs), hunt.by_check ? " (core CHECK)" : "",
              hunt.what.c_str(), hunt.replay.c_str());
}

INSTANTIATE_TEST_SUITE_P(Plants, Teeth,
                         ::testing::Values("ack_before_durable", "ignore_accepted",
                                           "forget_promise", "apply_out_of_order",
                                           "lease_from_ack", "lease_to_lower_ballot",
                                           "announce_older_epoch", "no_persist_stall_stepdown",
                                           "clock_drift_beyond_bound"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace ballot::sim
