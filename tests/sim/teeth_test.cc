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
#include <ostream>
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

// nodes 0: alternate 3 and 5 nodes (seed = run / 2 + 1); else that many nodes (seed = run + 1).
SimConfig ConfigForRun(const paxos::PlantedBugs& planted, int nodes, uint64_t run) {
  SimConfig config;
  config.planted = planted;
  config.membership = planted.wiped_disk_votes_blank;  // disks are wiped only among changes
  config.nodes = nodes != 0 ? nodes : run % 2 == 0 ? 3 : 5;
  config.seed = nodes != 0 ? run + 1 : run / 2 + 1;
  return config;
}

// Child: one line per seed ("run <i>") before running it, then "caught <i> <violation>" or
// "missed". Never returns.
[[noreturn]] void HuntInChild(const paxos::PlantedBugs& planted, int nodes, int fd) {
  InstallCheckFailureReporter();
  FILE* out = fdopen(fd, "w");
  for (uint64_t run = 0; run < kSeedsMax; ++run) {
    std::fprintf(out, "run %llu\n", static_cast<unsigned long long>(run));
    std::fflush(out);
    const SimResult r = RunSimulation(ConfigForRun(planted, nodes, run));
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

Hunt HuntFor(const paxos::PlantedBugs& planted, int nodes) {
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  std::fflush(stdout);
  const pid_t pid = fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    HuntInChild(planted, nodes, fds[1]);
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
  hunt.replay = ReplayCommand(ConfigForRun(planted, nodes, last_run));
  return hunt;
}

struct Plant {
  const char* name;
  int nodes;  // 0: alternate 3 and 5
};

void PrintTo(const Plant& p, std::ostream* os) {
  *os << p.name << (p.nodes == 0 ? " (3 and 5 nodes)" : " (" + std::to_string(p.nodes) + " nodes)");
}

class Teeth : public ::testing::TestWithParam<Plant> {};

TEST_P(Teeth, SimulatorCatchesPlantedBug) {
  paxos::PlantedBugs planted;
  ASSERT_TRUE(SetPlant(GetParam().name, &planted));
  const Hunt hunt = HuntFor(planted, GetParam().nodes);
  ASSERT_TRUE(hunt.caught) << "planted bug " << GetParam().name << " survived " << kSeedsMax
                           << " seeds";
  std::printf("teeth: %s caught after %llu seeds%s: %s\n  replay: %s\n", GetParam().name,
              static_cast<unsigned long long>(hunt.runs), hunt.by_check ? " (core CHECK)" : "",
              hunt.what.c_str(), hunt.replay.c_str());
}

// wiped_disk_votes_blank (membership changes on) hunts over 3-node groups, where one blank
// voter is a third of the votes.
// announce_older_epoch needs two candidates of one round and a third acceptor that promised the
// higher one and refused the lower one, while the lower one still wins a majority: only
// groups of 5 have room for that, so it hunts over 5-node seeds only.
INSTANTIATE_TEST_SUITE_P(
    Plants, Teeth,
    ::testing::Values(Plant{"ack_before_durable", 0}, Plant{"ignore_accepted", 0},
                      Plant{"forget_promise", 0}, Plant{"apply_out_of_order", 0},
                      Plant{"lease_from_ack", 0}, Plant{"lease_to_lower_ballot", 0},
                      Plant{"announce_older_epoch", 5}, Plant{"no_persist_stall_stepdown", 0},
                      Plant{"clock_drift_beyond_bound", 0}, Plant{"wiped_disk_votes_blank", 3}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ballot::sim
