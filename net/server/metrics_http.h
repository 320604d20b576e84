// MetricsHttpServer: a small HTTP/1.1 server (Boost.Beast) for operators' tools.
//
//   GET /metrics   200, the registry in the Prometheus text format (MetricsRegistry::Render)
//   GET /healthz   200 and a one-line body while the health check says the node serves,
//                  else 503 and the reason
//   HEAD on either: the same status and headers, no body.
//
// Anything else is answered and counted, never fatal: another path 404, another method 405
// (with Allow: GET, HEAD), a request whose header exceeds header_bytes_max 431, a body over
// body_bytes_max 413, bytes that are not HTTP 400; after a 4xx for a malformed request the
// connection closes. Keep-alive is supported. Every read has a deadline (request_timeout), so a
// client that sends half a request or idles holds its connection only that long, and at most
// connections_max connections are open (more are closed at once).
//
// Threads: one thread of its own runs every connection; the registry's Render and the health
// check are called on it (both must be thread-safe, and outlive the server). Start and the
// destructor may be called from any thread.
#ifndef BALLOT_NET_METRICS_HTTP_H_
#define BALLOT_NET_METRICS_HTTP_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/server/metrics_registry.h"
#include "paxos/status.h"

namespace ballot {

struct MetricsHttpOptions {
  // Where to listen. Port 0 picks a free port; MetricsHttpServer::port() reports it.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  size_t header_bytes_max = 8192;                    // request line and headers
  size_t body_bytes_max = 4096;                      // GET needs none; a little is tolerated
  std::chrono::milliseconds request_timeout{10000};  // per request, and idle keep-alive
  size_t connections_max = 64;
};

// What GET /healthz answers: 200 with `detail` while `serving`, else 503 with it.
struct HealthReport {
  bool serving = false;
  std::string detail;
};

// Counters for tests and logs.
struct MetricsHttpCounters {
  uint64_t requests = 0;             // answered, whatever the status
  uint64_t bad_requests = 0;         // answered 4xx
  uint64_t connections_refused = 0;  // over connections_max
};

class MetricsHttpServer {
 public:
  // Listens and starts serving. kInvalidArgument for a bad host, kIoError if the port cannot be
  // bound. `registry` must outlive the server; `health` is called on the server's thread.
  static Result<std::unique_ptr<MetricsHttpServer>> Start(MetricsHttpOptions options,
                                                          const MetricsRegistry* registry,
                                                          std::function<HealthReport()> health);
  // Closes every connection and joins the thread.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The port actually listened on.
  uint16_t port() const;
  MetricsHttpCounters counters() const;

  class Impl;

 private:
  explicit MetricsHttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ballot

#endif  // BALLOT_NET_METRICS_HTTP_H_
