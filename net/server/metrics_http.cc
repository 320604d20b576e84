#include "net/server/metrics_http.h"

#include <glog/logging.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>
#include <utility>

namespace ballot {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class MetricsHttpServer::Impl {
 public:
  Impl(MetricsHttpOptions options, const MetricsRegistry* registry,
       std::function<HealthReport()> health)
      : options_(std::move(options)), registry_(registry), health_(std::move(health)) {}

  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Listen() {
    boost::system::error_code ec;
    // An address, or a name (e.g. localhost): its first address.
    const tcp::resolver::results_type found = tcp::resolver(io_).resolve(
        options_.host, std::to_string(options_.port), tcp::resolver::numeric_service, ec);
    if (ec || found.empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "bad metrics host '" + options_.host + "': " + ec.message());
    }
    const tcp::endpoint endpoint = found.begin()->endpoint();
    auto fail = [&](const char* what) {
      return Status(StatusCode::kIoError, std::string("metrics: cannot ") + what + " " +
                                              options_.host + ":" + std::to_string(options_.port) +
                                              ": " + ec.message());
    };
    if (acceptor_.open(endpoint.protocol(), ec); ec) return fail("open");
    if (acceptor_.set_option(tcp::acceptor::reuse_address(true), ec); ec) return fail("set up");
    if (acceptor_.bind(endpoint, ec); ec) return fail("bind");
    if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen");
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) return fail("read the port of");
    return Status::Ok();
  }

  void Run() {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }

  uint16_t port() const { return port_; }
  MetricsHttpCounters counters() const {
    MetricsHttpCounters c;
    c.requests = requests_.load();
    c.bad_requests = bad_requests_.load();
    c.connections_refused = connections_refused_.load();
    return c;
  }

 private:
  class Session;

  void Accept();

  // The response to a well-formed request.
  http::response<http::string_body> Answer(const http::request<http::string_body>& request) {
    http::response<http::string_body> response;
    response.version(request.version());
    response.keep_alive(request.keep_alive());
    const beast::string_view full = request.target();
    const beast::string_view path = full.substr(0, full.find('?'));
    const bool known = path == "/metrics" || path == "/healthz";
    const bool readable =
        request.method() == http::verb::get || request.method() == http::verb::head;
    if (!known) {
      Plain(&response, http::status::not_found, "not found: try /metrics or /healthz\n");
    } else if (!readable) {
      Plain(&response, http::status::method_not_allowed, "method not allowed: use GET\n");
      response.set(http::field::allow, "GET, HEAD");
    } else if (path == "/metrics") {
      response.result(http::status::ok);
      response.set(http::field::content_type, MetricsRegistry::kContentType);
      response.body() = registry_->Render();
    } else {
      HealthReport health = health_();
      Plain(&response, health.serving ? http::status::ok : http::status::service_unavailable,
            health.detail + "\n");
    }
    response.prepare_payload();
    if (request.method() == http::verb::head) response.body().clear();  // length stays
    return response;
  }

  // A 4xx for a request that could not be read whole; the connection closes after it.
  static http::response<http::string_body> Refusal(const boost::system::error_code& ec) {
    http::response<http::string_body> response;
    response.version(11);
    if (ec == http::error::header_limit) {
      Plain(&response, http::status::request_header_fields_too_large, "header too large\n");
    } else if (ec == http::error::body_limit) {
      Plain(&response, http::status::payload_too_large, "body too large\n");
    } else {
      Plain(&response, http::status::bad_request, "bad request: " + ec.message() + "\n");
    }
    response.keep_alive(false);
    response.prepare_payload();
    return response;
  }

  static void Plain(http::response<http::string_body>* response, http::status status,
                    std::string body) {
    response->result(status);
    response->set(http::field::content_type, "text/plain; charset=utf-8");
    response->body() = std::move(body);
  }

  const MetricsHttpOptions options_;
  const MetricsRegistry* const registry_;
  const std::function<HealthReport()> health_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bad_requests_{0};
  std::atomic<uint64_t> connections_refused_{0};
  size_t open_connections_ = 0;  // the server's thread only
  // Destroyed before the fields above (it destroys the sessions still queued on it, which
  // count themselves out of open_connections_), and the acceptor before it.
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  std::thread thread_;
};

// One connection: read a request (within the deadline), answer, repeat while kept alive.
class MetricsHttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl* server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    ++server_->open_connections_;
  }
  ~Session() { --server_->open_connections_; }

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options_.header_bytes_max));
    parser_->body_limit(server_->options_.body_bytes_max);
    stream_.expires_after(server_->options_.request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](boost::system::error_code ec, size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(boost::system::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();  // the client left, idled, or sent half a request
    }
    if (ec) {
      ++server_->bad_requests_;
      return Write(Refusal(ec));
    }
    http::response<http::string_body> response = server_->Answer(parser_->get());
    if (response.result_int() >= 400) ++server_->bad_requests_;
    Write(std::move(response));
  }

  void Write(http::response<http::string_body> response) {
    ++server_->requests_;
    response_ = std::move(response);
    stream_.expires_after(server_->options_.request_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (ec) return self->Close();
                        if (!self->response_.keep_alive()) return self->Linger();
                        self->Read();
                      });
  }

  // After the last response: stop sending, and read (and drop) what the client still sends
  // until it closes or the deadline passes. Closing with unread bytes would reset the
  // connection, and the client might lose the response (e.g. the 431 for a huge header).
  void Linger(bool first = true) {
    if (first) {  // one deadline for the whole drain
      boost::system::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.expires_after(kLingerTime);
    }
    stream_.async_read_some(asio::buffer(discard_),
                            [self = shared_from_this()](boost::system::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->Linger(/*first=*/false);
                            });
  }

  void Close() {
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  static constexpr std::chrono::milliseconds kLingerTime{1000};
  static constexpr size_t kDiscardBytes = 4096;

  Impl* const server_;
  beast::tcp_stream stream_;
  char discard_[kDiscardBytes];
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

void MetricsHttpServer::Impl::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (open_connections_ >= options_.connections_max) {
        ++connections_refused_;
        socket.close(ec);
      } else {
        std::make_shared<Session>(this, std::move(socket))->Read();
      }
    }
    Accept();
  });
}

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    MetricsHttpOptions options, const MetricsRegistry* registry,
    std::function<HealthReport()> health) {
  CHECK(registry != nullptr && health);
  auto impl = std::make_unique<Impl>(std::move(options), registry, std::move(health));
  if (Status s = impl->Listen(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(impl)));
}

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsHttpServer::~MetricsHttpServer() = default;
uint16_t MetricsHttpServer::port() const { return impl_->port(); }
MetricsHttpCounters MetricsHttpServer::counters() const { return impl_->counters(); }

}  // namespace ballot
