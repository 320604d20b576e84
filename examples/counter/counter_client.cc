// Talks to a replicated counter:
//   counter-client --cluster=1@127.0.0.1:7001,... add 5    # prints the new value
//   counter-client --cluster=1@127.0.0.1:7001,... get      # prints the value
// Exit code 0 with the answer on stdout; 1 with the error on stderr.
#include <ballot/ballot.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  if (argc < 3 || std::string_view(argv[1]).rfind("--cluster=", 0) != 0) {
    std::fprintf(stderr, "usage: counter-client --cluster=ID@HOST:PORT,... add N | get\n");
    return 2;
  }
  auto members = ballot::ParseCluster(std::string_view(argv[1]).substr(10));
  if (!members.ok()) {
    std::fprintf(stderr, "counter-client: %s\n", members.status().ToString().c_str());
    return 2;
  }
  ballot::ClientOptions options;
  options.members = members.value();
  auto client = ballot::Client::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "counter-client: %s\n", client.status().ToString().c_str());
    return 1;
  }
  const std::chrono::seconds timeout(10);
  const std::string verb = argv[2];
  ballot::Outcome outcome;
  if (verb == "add" && argc == 4) {
    auto reply = client.value()->Propose("add " + std::string(argv[3]), timeout);
    if (!reply.ok()) {
      std::fprintf(stderr, "counter-client: %s\n", reply.status().ToString().c_str());
      return 1;
    }
    outcome = reply.value().outcome;
  } else if (verb == "get" && argc == 3) {
    auto reply = client.value()->Read("get", timeout);
    if (!reply.ok()) {
      std::fprintf(stderr, "counter-client: %s\n", reply.status().ToString().c_str());
      return 1;
    }
    outcome = reply.value();
  } else {
    std::fprintf(stderr, "usage: counter-client --cluster=ID@HOST:PORT,... add N | get\n");
    return 2;
  }
  if (outcome.code != ballot::StatusCode::kOk) {
    std::fprintf(stderr, "counter-client: refused: %s\n", outcome.message.c_str());
    return 1;
  }
  std::printf("%s\n", outcome.data.c_str());
  return 0;
}
