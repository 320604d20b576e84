// ballot-fenced-kv: a sample fenced resource, a key-value server that requires a fencing token
// on every write (store/fence.h, docs/fencing.md).
//
// Server:  ballot-fenced-kv --data_dir=DIR [--port=P]
//   Listens on 127.0.0.1:P (0 = any free port) and prints "listening on PORT" as its first line
//   on stdout. Line protocol, one request per line, one reply line each:
//     WRITE <resource> <token> <key> <value>  -> OK | REJECTED <why>   (value: rest of the line)
//     REGISTER <resource> <token>             -> OK | REJECTED <why>
//     READ <key>                              -> VALUE <value> | NONE
//     HIGHEST <resource>                      -> TOKEN <n>
//   A malformed request is answered "ERROR <why>" and the connection stays open; a line longer
//   than 64 KiB closes it. SIGTERM / SIGINT stop the server; exit code 1 if the store failed.
//
// Client:  ballot-fenced-kv --connect=127.0.0.1:PORT --send="WRITE r 5 k v"
//   Sends one line, prints the reply line, and exits 0 on success (OK, VALUE, NONE, TOKEN),
//   3 on REJECTED, 1 on ERROR or any failure to talk to the server. Bad flags: exit 2.
//
// One io thread serves every connection and runs the store's durable writes inline: this is a
// sample, not a throughput server, and the order of replies on a connection is the order of the
// requests.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "store/fence.h"
#include "tools/flag_check.h"

DEFINE_int32(port, 0, "server: TCP port on 127.0.0.1 (0: any free port, printed on stdout)");
DEFINE_string(data_dir, "", "server: directory of the fenced store (created if missing)");
DEFINE_string(connect, "", "client: the server's host:port; with --send, send one line and exit");
DEFINE_string(send, "", "client: the request line to send (see the protocol in --help)");
DEFINE_uint32(timeout_ms, 5000, "client: give up after this long");
DEFINE_uint32(connections_max, 64, "server: open connections at most (more are closed at once)");

namespace ballot::tools {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr size_t kLineBytesMax = 64 * 1024;  // without the newline
constexpr size_t kReadChunkBytes = 16 * 1024;
constexpr int kExitError = 1;
constexpr int kExitRejected = 3;

constexpr char kUsage[] =
    "A sample fenced key-value server (and its one-shot client).\n"
    "  server: ballot-fenced-kv --data_dir=DIR [--port=0]\n"
    "  client: ballot-fenced-kv --connect=127.0.0.1:PORT --send=\"WRITE r 5 k v\"\n"
    "  requests: WRITE <resource> <token> <key> <value> | REGISTER <resource> <token> |\n"
    "            READ <key> | HIGHEST <resource>";

[[noreturn]] void UsageError(const std::string& why) {
  std::fprintf(stderr, "ballot-fenced-kv: %s (see --help)\n", why.c_str());
  std::exit(kExitUsage);
}

// --- Requests ---

// The next space-separated field of *rest (up to one space, which is consumed).
std::string_view NextField(std::string_view* rest) {
  const size_t space = rest->find(' ');
  const std::string_view field = rest->substr(0, space);
  rest->remove_prefix(space == std::string_view::npos ? rest->size() : space + 1);
  return field;
}

bool ParseToken(std::string_view text, uint64_t* token) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *token);
  return !text.empty() && ec == std::errc() && ptr == end;
}

std::string Error(std::string_view why) { return "ERROR " + std::string(why); }

// The reply to a fenced write or register. `fatal` is set if the store can no longer write.
std::string FencedReply(const Status& s, bool* fatal) {
  if (s.ok()) return "OK";
  if (s.code() == StatusCode::kAborted) return "REJECTED " + s.message();
  if (s.code() == StatusCode::kIoError) *fatal = true;
  return Error(s.message());
}

// Answers one request line (without its newline). Never throws.
std::string Handle(fence::FenceStore* store, std::string_view line, bool* fatal) {
  std::string_view rest = line;
  const std::string_view verb = NextField(&rest);
  uint64_t token = 0;
  if (verb == "WRITE") {
    const std::string_view resource = NextField(&rest);
    const std::string_view token_text = NextField(&rest);
    const size_t key_end = rest.find(' ');
    if (resource.empty() || key_end == std::string_view::npos || key_end == 0) {
      return Error("usage: WRITE <resource> <token> <key> <value>");
    }
    if (!ParseToken(token_text, &token)) {
      return Error("bad token '" + std::string(token_text) + "'");
    }
    const std::string_view key = rest.substr(0, key_end);
    const std::string_view value = rest.substr(key_end + 1);
    return FencedReply(store->Write(resource, token, key, value), fatal);
  }
  if (verb == "REGISTER") {
    const std::string_view resource = NextField(&rest);
    const std::string_view token_text = NextField(&rest);
    if (resource.empty() || !rest.empty()) return Error("usage: REGISTER <resource> <token>");
    if (!ParseToken(token_text, &token)) {
      return Error("bad token '" + std::string(token_text) + "'");
    }
    return FencedReply(store->Register(resource, token), fatal);
  }
  if (verb == "READ") {
    const std::string_view key = NextField(&rest);
    if (key.empty() || !rest.empty()) return Error("usage: READ <key>");
    Result<std::optional<std::string>> value = store->Read(key);
    if (!value.ok()) return Error(value.status().message());
    return value.value().has_value() ? "VALUE " + *value.value() : "NONE";
  }
  if (verb == "HIGHEST") {
    const std::string_view resource = NextField(&rest);
    if (resource.empty() || !rest.empty()) return Error("usage: HIGHEST <resource>");
    Result<uint64_t> highest = store->HighestToken(resource);
    if (!highest.ok()) return Error(highest.status().message());
    return "TOKEN " + std::to_string(highest.value());
  }
  return Error("unknown request; expected WRITE, REGISTER, READ or HIGHEST");
}

// --- Server ---

class Server;

// One connection: reads lines, answers each in order. Does not read while a reply is being
// written, so a client that never reads its replies cannot make the server buffer without end.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server* server, tcp::socket socket) : server_(server), socket_(std::move(socket)) {}
  void Start() { Read(); }

 private:
  void Read();
  void OnRead(const error_code& ec, size_t bytes);
  void Write();
  void Close() {
    error_code ignored;
    socket_.close(ignored);
  }

  Server* const server_;
  tcp::socket socket_;
  std::string in_;             // bytes received, not yet a complete line
  std::string out_;            // replies being written
  bool store_failed_ = false;  // a write failed for good: answer it, then stop the server
  char chunk_[kReadChunkBytes];
};

class Server {
 public:
  Server(asio::io_context* io, fence::FenceStore* store, size_t connections_max)
      : io_(io), store_(store), connections_max_(connections_max), acceptor_(*io) {}

  Status Listen(uint16_t port) {
    error_code ec;
    const tcp::endpoint endpoint(asio::ip::address_v4::loopback(), port);
    if (acceptor_.open(endpoint.protocol(), ec) ||
        acceptor_.set_option(tcp::acceptor::reuse_address(true), ec) ||
        acceptor_.bind(endpoint, ec) ||
        acceptor_.listen(asio::socket_base::max_listen_connections, ec)) {
      return Status(StatusCode::kIoError,
                    "cannot listen on 127.0.0.1:" + std::to_string(port) + ": " + ec.message());
    }
    return Status::Ok();
  }
  uint16_t port() const {
    error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }
  void Accept() {
    acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (connections_ >= connections_max_) {
          LOG(WARNING) << "connections_max (" << connections_max_ << ") reached; closing one";
        } else {
          std::make_shared<Session>(this, std::move(socket))->Start();
          ++connections_;
        }
      }
      Accept();
    });
  }
  void Stop() {
    error_code ignored;
    acceptor_.close(ignored);
    io_->stop();
  }

  fence::FenceStore* store() { return store_; }
  void Closed() { --connections_; }
  // The store cannot write any more: stop serving rather than answer ERROR forever.
  void Fail(const std::string& why) {
    LOG(ERROR) << "stopping: " << why;
    failed_ = true;
    Stop();
  }
  bool failed() const { return failed_; }

 private:
  asio::io_context* const io_;
  fence::FenceStore* const store_;
  const size_t connections_max_;
  tcp::acceptor acceptor_;
  size_t connections_ = 0;
  bool failed_ = false;
};

void Session::Read() {
  socket_.async_read_some(
      asio::buffer(chunk_),
      [self = shared_from_this()](const error_code& ec, size_t bytes) { self->OnRead(ec, bytes); });
}

void Session::OnRead(const error_code& ec, size_t bytes) {
  if (ec) {
    server_->Closed();
    Close();
    return;
  }
  in_.append(chunk_, bytes);
  bool overlong = false;
  size_t start = 0;
  for (size_t newline = in_.find('\n'); newline != std::string::npos && !store_failed_;
       newline = in_.find('\n', start)) {
    if (newline - start > kLineBytesMax) {
      overlong = true;
      break;
    }
    std::string_view line(in_.data() + start, newline - start);
    start = newline + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out_ += Handle(server_->store(), line, &store_failed_);
    out_ += '\n';
  }
  in_.erase(0, start);
  // What is left is at most one incomplete line (unless the store failed, which ends it all).
  if (overlong || (!store_failed_ && in_.size() > kLineBytesMax)) {
    LOG(WARNING) << "closing a connection: a line longer than " << kLineBytesMax << " bytes";
    server_->Closed();
    Close();
    return;
  }
  if (out_.empty()) {
    Read();
  } else {
    Write();
  }
}

void Session::Write() {
  asio::async_write(socket_, asio::buffer(out_),
                    [self = shared_from_this()](const error_code& ec, size_t) {
                      self->out_.clear();
                      if (self->store_failed_) {
                        self->server_->Fail("the store can no longer write (see above)");
                        return;
                      }
                      if (ec) {
                        self->server_->Closed();
                        self->Close();
                        return;
                      }
                      self->Read();
                    });
}

int RunServer() {
  if (FLAGS_data_dir.empty()) UsageError("--data_dir is required (or --connect for the client)");
  if (FLAGS_port < 0 || FLAGS_port > 65535) UsageError("--port must be in 0..65535");
  if (!FLAGS_send.empty()) UsageError("--send needs --connect");
  if (FLAGS_connections_max < 1) UsageError("--connections_max must be at least 1");
  Result<std::unique_ptr<fence::FenceStore>> store = fence::FenceStore::Open(FLAGS_data_dir);
  if (!store.ok()) {
    std::fprintf(stderr, "ballot-fenced-kv: %s\n", store.status().ToString().c_str());
    return kExitError;
  }
  asio::io_context io(1);
  Server server(&io, store.value().get(), FLAGS_connections_max);
  if (Status s = server.Listen(static_cast<uint16_t>(FLAGS_port)); !s.ok()) {
    std::fprintf(stderr, "ballot-fenced-kv: %s\n", s.ToString().c_str());
    return kExitError;
  }
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&server](const error_code& ec, int) {
    if (!ec) server.Stop();
  });
  server.Accept();
  std::printf("listening on %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  LOG(INFO) << "ballot-fenced-kv serving 127.0.0.1:" << server.port() << ", data in "
            << FLAGS_data_dir;
  io.run();
  return server.failed() ? kExitError : 0;
}

// --- Client ---

int RunClient() {
  if (FLAGS_send.empty()) UsageError("--connect needs --send");
  if (!FLAGS_data_dir.empty()) UsageError("--data_dir is for the server, not with --connect");
  if (FLAGS_send.find('\n') != std::string::npos) UsageError("--send must be one line");
  const size_t colon = FLAGS_connect.rfind(':');
  if (colon == std::string::npos || colon == 0) UsageError("--connect must be host:port");
  const std::string host = FLAGS_connect.substr(0, colon);
  const std::string port = FLAGS_connect.substr(colon + 1);

  asio::io_context io(1);
  tcp::socket socket(io);
  error_code ec;
  const tcp::resolver::results_type endpoints = tcp::resolver(io).resolve(host, port, ec);
  if (ec) {
    std::fprintf(stderr, "ballot-fenced-kv: cannot resolve %s: %s\n", FLAGS_connect.c_str(),
                 ec.message().c_str());
    return kExitError;
  }
  const std::string request = FLAGS_send + "\n";
  std::string reply;
  error_code result = asio::error::timed_out;
  asio::async_connect(socket, endpoints, [&](const error_code& ec1, const tcp::endpoint&) {
    if (ec1) {
      result = ec1;
      return;
    }
    asio::async_write(socket, asio::buffer(request), [&](const error_code& ec2, size_t) {
      if (ec2) {
        result = ec2;
        return;
      }
      asio::async_read_until(socket, asio::dynamic_buffer(reply, kLineBytesMax + 1), '\n',
                             [&](const error_code& ec3, size_t) { result = ec3; });
    });
  });
  io.run_for(std::chrono::milliseconds(FLAGS_timeout_ms));
  if (result) {
    std::fprintf(stderr, "ballot-fenced-kv: %s: %s\n", FLAGS_connect.c_str(),
                 result.message().c_str());
    return kExitError;
  }
  reply.resize(reply.find('\n'));
  std::printf("%s\n", reply.c_str());
  if (reply.rfind("REJECTED", 0) == 0) return kExitRejected;
  if (reply.rfind("ERROR", 0) == 0) return kExitError;
  return 0;
}

int Main(int argc, char** argv) {
  ParseFlagsStrict(kUsage, &argc, &argv);
  if (argc > 1) UsageError(std::string("unexpected argument '") + argv[1] + "'");
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  return FLAGS_connect.empty() ? RunServer() : RunClient();
}

}  // namespace
}  // namespace ballot::tools

int main(int argc, char** argv) {
  // Asio and the standard library may throw (e.g. std::bad_alloc); nothing escapes main.
  try {
    return ballot::tools::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ballot-fenced-kv: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "ballot-fenced-kv: unknown exception\n");
  }
  return ballot::tools::kExitError;
}
