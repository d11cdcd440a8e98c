#include "posix_process_runner.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>

#include "elafros/errno_text.hpp"

extern char** environ;

namespace elafros {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

Result<ProcessResult> PosixProcessRunner::run(const std::vector<std::string>& argv,
                                              const ProcessOptions& options) {
  if (argv.empty()) return Error::internal("no program to run");
  Fd devnull, out_r, out_w, err_r, err_w;
  devnull.fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int pipes[2];
  if (options.stdout_fd < 0) {
    if (::pipe2(pipes, O_CLOEXEC) != 0)
      return Error::internal(fmt::format("pipe: {}", errno_text(errno)));
    out_r.fd = pipes[0];
    out_w.fd = pipes[1];
  }
  if (options.stderr_fd < 0) {
    if (::pipe2(pipes, O_CLOEXEC) != 0)
      return Error::internal(fmt::format("pipe: {}", errno_text(errno)));
    err_r.fd = pipes[0];
    err_w.fd = pipes[1];
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, options.stdin_fd >= 0 ? options.stdin_fd : devnull.fd, 0);
  posix_spawn_file_actions_adddup2(&fa, options.stdout_fd >= 0 ? options.stdout_fd : out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&fa, options.stderr_fd >= 0 ? options.stderr_fd : err_w.fd, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  // A group of its own: a program killed at its deadline takes its children along.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error::internal(fmt::format("cannot run {}: {}", argv[0], errno_text(rc)));
  out_w.reset();
  err_w.reset();

  // Its exit is watched through a pidfd, so that a deadline holds even with no pipe to read.
  Fd exit_fd;
  exit_fd.fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  using Clock = std::chrono::steady_clock;
  auto deadline =
      options.timeout.count() > 0 ? Clock::now() + options.timeout : Clock::time_point::max();
  bool timed_out = false;

  ProcessResult result;
  // Drain both pipes until the child closes them and has exited.
  bool exited = exit_fd.fd < 0;
  while (out_r.fd >= 0 || err_r.fd >= 0 || !exited) {
    pollfd fds[3];
    int n = 0;
    if (out_r.fd >= 0) fds[n++] = {out_r.fd, POLLIN, 0};
    if (err_r.fd >= 0) fds[n++] = {err_r.fd, POLLIN, 0};
    if (!exited) fds[n++] = {exit_fd.fd, POLLIN, 0};
    int wait_ms = -1;
    if (deadline != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      wait_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
    }
    int ready = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (ready == 0) {  // past the deadline: the whole group goes
      timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == exit_fd.fd) {
        exited = true;
        continue;
      }
      char buf[4096];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      bool is_out = fds[i].fd == out_r.fd;
      if (got <= 0) {
        (is_out ? out_r : err_r).reset();
        continue;
      }
      (is_out ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return Error::internal(fmt::format("waiting for {}: {}", argv[0], errno_text(errno)));
  }
  if (timed_out)
    return Error::unavailable(fmt::format("{} did not finish within {:g} s and was killed", argv[0],
                                          std::chrono::duration<double>(options.timeout).count()));
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace elafros
