// Drives the real ballot-fenced-kv binary as a child process: its line protocol over TCP, its
// client mode, and durability across SIGKILL. Port 0 everywhere; every wait has a deadline.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/store/test_util.h"

extern char** environ;

namespace ballot::fence {
namespace {

using Clock = std::chrono::steady_clock;
using store::testing::TempDir;

constexpr auto kDeadline = std::chrono::seconds(20);

// Milliseconds left until `deadline`, for poll(); 0 once it has passed.
int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Reads from `fd` into *buffer until it holds a newline; returns the first line (without it)
// and leaves the rest in *buffer. std::nullopt on EOF, error or deadline.
std::optional<std::string> ReadLine(int fd, std::string* buffer, Clock::time_point deadline) {
  for (;;) {
    const size_t newline = buffer->find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer->substr(0, newline);
      buffer->erase(0, newline + 1);
      return line;
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    buffer->append(chunk, static_cast<size_t>(n));
  }
}

// A child process running the binary with stdout on a pipe. Killed (SIGKILL) and reaped on
// destruction if still running.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int fds[2];
    CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
    stdout_fd_ = fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<std::string> argv_strings = {BALLOT_FENCED_KV};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, BALLOT_FENCED_KV, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    CHECK_EQ(rc, 0) << "posix_spawn " << BALLOT_FENCED_KV << ": " << strerror(rc);
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    close(stdout_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  std::optional<std::string> ReadStdoutLine(Clock::time_point deadline) {
    return ReadLine(stdout_fd_, &stdout_buffer_, deadline);
  }
  // Everything the child writes to stdout until it closes it (exits), or the deadline.
  std::string ReadAllStdout(Clock::time_point deadline) {
    for (;;) {
      pollfd p{stdout_fd_, POLLIN, 0};
      if (poll(&p, 1, MillisLeft(deadline)) <= 0) break;
      char chunk[4096];
      const ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
      if (n <= 0) break;
      stdout_buffer_.append(chunk, static_cast<size_t>(n));
    }
    return std::exchange(stdout_buffer_, "");
  }
  // The exit code, or -signal if it was killed; std::nullopt if it is still running at the
  // deadline.
  std::optional<int> Wait(Clock::time_point deadline) {
    for (;;) {
      int status = 0;
      const pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      if (Clock::now() >= deadline) return std::nullopt;
      poll(nullptr, 0, 5);  // the child exits on its own: check again shortly
    }
  }
  void Kill(int signal) { kill(pid_, signal); }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_buffer_;
};

// A server child and the port it printed.
struct Server {
  std::unique_ptr<Child> child;
  uint16_t port = 0;
};

Server StartServer(const std::string& data_dir) {
  Server server;
  server.child =
      std::make_unique<Child>(std::vector<std::string>{"--data_dir=" + data_dir, "--port=0"});
  const std::optional<std::string> first = server.child->ReadStdoutLine(Clock::now() + kDeadline);
  CHECK(first.has_value()) << "the server printed no first line";
  CHECK(first->rfind("listening on ", 0) == 0) << "unexpected first line: " << *first;
  server.port = static_cast<uint16_t>(std::stoi(first->substr(13)));
  CHECK_NE(server.port, 0);
  return server;
}

// A TCP connection to 127.0.0.1:port.
class Connection {
 public:
  explicit Connection(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_GE(fd_, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << "connect to port " << port << ": " << strerror(errno);
  }
  ~Connection() { close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the server closed the connection; reads will show it
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  std::optional<std::string> ReadReply() {
    return ReadLine(fd_, &buffer_, Clock::now() + kDeadline);
  }
  // One request, one reply; "<no reply>" if the connection ended or the deadline passed.
  std::string Ask(std::string_view line) {
    Send(std::string(line) + "\n");
    return ReadReply().value_or("<no reply>");
  }
  // True once the server has closed the connection (EOF or reset) before the deadline.
  bool WaitClosed() {
    const Clock::time_point deadline = Clock::now() + kDeadline;
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, MillisLeft(deadline)) <= 0) return false;
      char chunk[4096];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
    }
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

TEST(FencedKvTest, LineProtocol) {
  TempDir tmp;
  Server server = StartServer(tmp.Sub("data"));
  Connection c(server.port);
  EXPECT_EQ(c.Ask("WRITE orders 5 balance 100 euros"), "OK");
  EXPECT_EQ(c.Ask("WRITE orders 5 balance 110 euros"), "OK") << "equal token: same holder";
  EXPECT_EQ(c.Ask("WRITE orders 4 balance 0"),
            "REJECTED stale token 4 for resource orders: highest seen is 5");
  EXPECT_EQ(c.Ask("READ balance"), "VALUE 110 euros");
  EXPECT_EQ(c.Ask("READ missing"), "NONE");
  EXPECT_EQ(c.Ask("HIGHEST orders"), "TOKEN 5");
  EXPECT_EQ(c.Ask("HIGHEST unknown"), "TOKEN 0");
  EXPECT_EQ(c.Ask("REGISTER orders 9"), "OK");
  EXPECT_EQ(c.Ask("REGISTER orders 8"),
            "REJECTED stale token 8 for resource orders: highest seen is 9");
  EXPECT_EQ(c.Ask("WRITE orders 5 balance 0"),
            "REJECTED stale token 5 for resource orders: highest seen is 9");
  EXPECT_EQ(c.Ask("READ balance"), "VALUE 110 euros") << "a rejected write changes nothing";
  EXPECT_EQ(c.Ask("WRITE orders 9 empty "), "OK");
  EXPECT_EQ(c.Ask("READ empty"), "VALUE ");
}

TEST(FencedKvTest, GarbageIsAnErrorAndTheConnectionStaysOpen) {
  TempDir tmp;
  Server server = StartServer(tmp.Sub("data"));
  Connection c(server.port);
  for (const char* garbage :
       {"", "hello", "write r 1 k v", "WRITE r", "WRITE r 1 k", "WRITE r x k v", "WRITE r -1 k v",
        "WRITE r 0 k v", "WRITE r 99999999999999999999 k v", "REGISTER r", "REGISTER r 1 extra",
        "READ", "READ a b", "HIGHEST", "WRITE  1 k v", "\x01\x02\xff"}) {
    const std::string reply = c.Ask(garbage);
    EXPECT_EQ(reply.rfind("ERROR ", 0), 0u) << "'" << garbage << "' -> " << reply;
  }
  EXPECT_EQ(c.Ask("WRITE r 1 k v"), "OK");
  EXPECT_EQ(c.Ask("HIGHEST r"), "TOKEN 1");
  // Requests split across sends and several in one send are answered in order.
  c.Send("REA");
  c.Send("D k\r\nHIGHEST r\nREAD nothing\n");
  EXPECT_EQ(c.ReadReply(), "VALUE v");
  EXPECT_EQ(c.ReadReply(), "TOKEN 1");
  EXPECT_EQ(c.ReadReply(), "NONE");
}

TEST(FencedKvTest, AnOverlongLineClosesOnlyThatConnection) {
  TempDir tmp;
  Server server = StartServer(tmp.Sub("data"));
  Connection bad(server.port);
  bad.Send("WRITE r 1 k " + std::string(70 * 1024, 'x'));  // no newline: never a request
  EXPECT_TRUE(bad.WaitClosed());
  Connection good(server.port);
  EXPECT_EQ(good.Ask("WRITE r 1 k v"), "OK");
  EXPECT_EQ(good.Ask("READ k"), "VALUE v");
}

TEST(FencedKvTest, TheHighestTokenSurvivesSigkill) {
  TempDir tmp;
  const std::string data = tmp.Sub("data");
  {
    Server server = StartServer(data);
    Connection c(server.port);
    ASSERT_EQ(c.Ask("WRITE jobs 41 state running"), "OK");
    ASSERT_EQ(c.Ask("REGISTER jobs 42"), "OK");  // acknowledged, so it must be durable
    server.child->Kill(SIGKILL);
    EXPECT_EQ(server.child->Wait(Clock::now() + kDeadline), -SIGKILL);
  }
  Server again = StartServer(data);  // same directory: the dead process's lock is gone
  Connection c(again.port);
  EXPECT_EQ(c.Ask("HIGHEST jobs"), "TOKEN 42");
  EXPECT_EQ(c.Ask("READ state"), "VALUE running");
  EXPECT_EQ(c.Ask("WRITE jobs 41 state stale"),
            "REJECTED stale token 41 for resource jobs: highest seen is 42");
  EXPECT_EQ(c.Ask("WRITE jobs 42 state done"), "OK");
}

TEST(FencedKvTest, SigtermStopsCleanly) {
  TempDir tmp;
  Server server = StartServer(tmp.Sub("data"));
  Connection c(server.port);  // an open connection does not hold the server up
  ASSERT_EQ(c.Ask("WRITE r 1 k v"), "OK");
  server.child->Kill(SIGTERM);
  EXPECT_EQ(server.child->Wait(Clock::now() + kDeadline), 0);
}

// Runs the binary's client mode; returns (exit code, stdout).
std::pair<int, std::string> RunClient(const std::vector<std::string>& args) {
  Child child(args);
  const Clock::time_point deadline = Clock::now() + kDeadline;
  std::string out = child.ReadAllStdout(deadline);
  const std::optional<int> code = child.Wait(deadline);
  CHECK(code.has_value()) << "the client did not exit";
  return {*code, out};
}

TEST(FencedKvTest, ClientModeExitCodes) {
  TempDir tmp;
  Server server = StartServer(tmp.Sub("data"));
  const std::string connect = "--connect=127.0.0.1:" + std::to_string(server.port);
  EXPECT_EQ(RunClient({connect, "--send=WRITE r 5 k v"}), std::make_pair(0, std::string("OK\n")));
  EXPECT_EQ(RunClient({connect, "--send=WRITE r 4 k v"}),
            std::make_pair(3, std::string("REJECTED stale token 4 for resource r: highest seen "
                                          "is 5\n")));
  EXPECT_EQ(RunClient({connect, "--send=READ k"}), std::make_pair(0, std::string("VALUE v\n")));
  EXPECT_EQ(RunClient({connect, "--send=nonsense"}).first, 1);

  // Nothing listening: a port bound but not listening refuses connections.
  const int reserved = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(reserved, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(reserved, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string dead = "--connect=127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  EXPECT_EQ(RunClient({dead, "--send=READ k", "--timeout_ms=2000"}).first, 1);
  close(reserved);

  // Strict flags: usage errors are exit code 2.
  EXPECT_EQ(RunClient({"--no_such_flag=1"}).first, 2);
  EXPECT_EQ(RunClient({connect}).first, 2) << "--connect needs --send";
  EXPECT_EQ(RunClient({}).first, 2) << "the server needs --data_dir";
  EXPECT_EQ(RunClient({"--data_dir=" + tmp.Sub("x"), "--port=70000"}).first, 2);
}

}  // namespace
}  // namespace ballot::fence
