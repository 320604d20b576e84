#include "tests/cluster/tool_run.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

namespace ballot::cluster_test {

using std::chrono::milliseconds;

int MillisLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// fork + exec of `args` (args[0] is the path) with stdout and stderr on the given descriptors
// (-1: /dev/null). The child dies with this thread (PR_SET_PDEATHSIG), like ProcessCluster's.
pid_t Spawn(const std::vector<std::string>& args, int out_fd, int err_fd) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  PCHECK(null_fd >= 0) << "open /dev/null";
  const pid_t parent = getpid();
  const pid_t pid = fork();
  PCHECK(pid >= 0) << "fork";
  if (pid == 0) {
    // Async-signal-safe only, until exec.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    if (dup2(null_fd, STDIN_FILENO) < 0 ||
        dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO) < 0 ||
        dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO) < 0) {
      _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(null_fd);
  return pid;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs a one-shot tool to completion (SIGKILLed at the deadline), capturing its output.
ToolResult RunTool(const std::vector<std::string>& args, Clock::time_point deadline) {
  int out_pipe[2], err_pipe[2];
  PCHECK(pipe2(out_pipe, O_CLOEXEC) == 0 && pipe2(err_pipe, O_CLOEXEC) == 0) << "pipe2";
  const pid_t pid = Spawn(args, out_pipe[1], err_pipe[1]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  ToolResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    const int ready = poll(fds, 2, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;  // deadline
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char chunk[4096];
      const ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || sinks[i]->size() > kOutputBytesMax) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      sinks[i]->append(chunk, static_cast<size_t>(n));
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  bool timed_out = open_fds > 0;
  int status = 0;
  if (timed_out) kill(pid, SIGKILL);
  // Output closed: the tool is exiting; reap it (bounded: SIGKILL at the deadline).
  while (waitpid(pid, &status, timed_out ? 0 : WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      kill(pid, SIGKILL);
      timed_out = true;
    } else {
      WaitUntil(std::min(deadline, Clock::now() + milliseconds(2)), [] { return false; });
    }
  }
  if (timed_out) {
    result.exit_code = -1000;
  } else {
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  return result;
}

// One request line over a fresh TCP connection to 127.0.0.1:port; the reply line, or why not.
Result<std::string> LineRequest(uint16_t port, const std::string& line,
                                Clock::time_point deadline) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  PCHECK(fd >= 0) << "socket";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string why = strerror(errno);
    close(fd);
    return Status(StatusCode::kIoError, "connect: " + why);
  }
  const std::string request = line + "\n";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return Status(StatusCode::kIoError, "send failed");
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  while (reply.find('\n') == std::string::npos && reply.size() < kOutputBytesMax) {
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char chunk[4096];
    const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  const size_t newline = reply.find('\n');
  if (newline == std::string::npos) {
    return Status(StatusCode::kTimeout, "no reply line to '" + line + "' (got '" + reply + "')");
  }
  return reply.substr(0, newline);
}

FencedKv::FencedKv(std::string binary, std::string dir)
    : binary_(std::move(binary)), dir_(std::move(dir)) {}

FencedKv::~FencedKv() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

Status FencedKv::Start(Clock::time_point deadline) {
  int out_pipe[2];
  PCHECK(pipe2(out_pipe, O_CLOEXEC) == 0) << "pipe2";
  const int log_fd = open((dir_ + ".log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  PCHECK(log_fd >= 0) << "open " << dir_ << ".log";
  pid_ = Spawn({binary_, "--port=0", "--data_dir=" + dir_}, out_pipe[1], log_fd);
  close(out_pipe[1]);
  close(log_fd);
  std::string line;
  while (line.find('\n') == std::string::npos && line.size() < kOutputBytesMax) {
    pollfd p{out_pipe[0], POLLIN, 0};
    const int ready = poll(&p, 1, MillisLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char c;
    const ssize_t n = read(out_pipe[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.push_back(c);
  }
  close(out_pipe[0]);  // the server prints nothing else to stdout
  unsigned port = 0;
  if (std::sscanf(line.c_str(), "listening on %u", &port) != 1 || port == 0 || port > 65535) {
    return Status(StatusCode::kAborted,
                  "ballot-fenced-kv did not say where it listens: '" + Trim(line) + "'");
  }
  port_ = static_cast<uint16_t>(port);
  return Status::Ok();
}

std::string FencedKv::Send(const std::string& line) {
  auto reply = LineRequest(port_, line, Clock::now() + std::chrono::seconds(15));
  EXPECT_TRUE(reply.ok()) << line << ": " << reply.status().ToString();
  return reply.ok() ? reply.value() : "";
}

ToolResult FencedKv::SendWithClient(const std::string& line) {
  return RunTool({binary_, "--connect=127.0.0.1:" + std::to_string(port_), "--send=" + line},
                 Clock::now() + std::chrono::seconds(15));
}

}  // namespace ballot::cluster_test
