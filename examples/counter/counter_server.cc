// One member of a replicated counter:
//   C=1@127.0.0.1:7001,2@127.0.0.1:7002,3@127.0.0.1:7003
//   counter-server --id=1 --cluster=$C --data_dir=/tmp/counter/1
// Runs until SIGTERM or SIGINT, then hands leadership over and stops.
#include <ballot/ballot.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "counter.h"

namespace {

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "counter-server: %s\nusage: counter-server --id=N --cluster=ID@HOST:PORT,... "
               "--data_dir=DIR\n",
               why.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string id_text, cluster, data_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.rfind("--id=", 0) == 0)
      id_text = arg.substr(5);
    else if (arg.rfind("--cluster=", 0) == 0)
      cluster = arg.substr(10);
    else if (arg.rfind("--data_dir=", 0) == 0)
      data_dir = arg.substr(11);
    else
      Usage("unknown argument " + std::string(arg));
  }
  auto members = ballot::ParseCluster(cluster);
  if (!members.ok()) Usage("bad --cluster: " + members.status().message());
  if (data_dir.empty()) Usage("--data_dir is required");

  ballot::ServerOptions options;
  options.id = static_cast<ballot::paxos::NodeId>(std::strtoul(id_text.c_str(), nullptr, 10));
  options.members = members.value();
  options.data_dir = data_dir;
  options.apply_inline = true;  // Counter::Apply takes nanoseconds

  // Block the stop signals before any thread starts, so that only sigwait below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = ballot::Server::Create(options, std::make_unique<Counter>());
  if (!server.ok()) {
    std::fprintf(stderr, "counter-server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  server.value()->Start();
  std::fprintf(stderr, "counter-server %u: serving on port %u\n", options.id,
               server.value()->port());
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server.value()->Shutdown(std::chrono::seconds(2));
  const ballot::Status stopped = server.value()->Wait();
  if (!stopped.ok()) {
    std::fprintf(stderr, "counter-server: %s\n", stopped.ToString().c_str());
    return 1;
  }
  return 0;
}
