// A candidate process for election_test: campaigns with ballot::Election and reports on stdout,
// one line each, flushed: "elected <token>" once it leads, "lost <token> <status>" from the
// OnLost callback (then it exits 0). The test SIGSTOPs it to freeze a leader past its TTL.
//
//   election_candidate CLUSTER_FLAG CLUSTER_ID NAME CANDIDATE TTL_MS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>

#include "net/client/client.h"
#include "net/client/election.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s CLUSTER_FLAG CLUSTER_ID NAME CANDIDATE TTL_MS\n", argv[0]);
    return 2;
  }
  auto members = ballot::ParseCluster(argv[1]);
  if (!members.ok()) return 2;
  ballot::ClientOptions co;
  co.members = members.value();
  co.cluster_id = std::strtoull(argv[2], nullptr, 10);
  auto client = ballot::Client::Create(co);
  if (!client.ok()) return 1;
  ballot::ElectionOptions eo;
  eo.name = argv[3];
  eo.candidate = argv[4];
  eo.ttl = std::chrono::milliseconds(std::strtoull(argv[5], nullptr, 10));
  auto election = ballot::Election::Create(client.value().get(), eo);
  if (!election.ok()) return 2;
  std::promise<void> lost;
  election.value()->OnLost([&lost](uint64_t token, ballot::Status why) {
    std::printf("lost %llu %s\n", static_cast<unsigned long long>(token), why.ToString().c_str());
    std::fflush(stdout);
    lost.set_value();
  });
  auto token = election.value()->Campaign(std::chrono::minutes(5));
  if (!token.ok()) {
    std::printf("campaign failed %s\n", token.status().ToString().c_str());
    return 1;
  }
  std::printf("elected %llu\n", static_cast<unsigned long long>(token.value()));
  std::fflush(stdout);
  lost.get_future().wait();
  return 0;
}
