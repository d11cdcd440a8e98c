#pragma once
// Runs external programs (runc). Real in the daemon, recorded in unit tests.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

struct ProcessOptions {
  // Descriptors the child gets as stdin, stdout and stderr. -1: /dev/null for stdin, and a
  // captured pipe for stdout and stderr.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Longer than this and the program and its process group are killed, and run() fails with
  // kUnavailable naming the deadline. 0: no deadline.
  std::chrono::milliseconds timeout{0};
};

struct ProcessResult {
  int exit_code = -1;  // 128+N when killed by signal N
  std::string out;     // captured stdout, when not redirected
  std::string err;     // captured stderr, when not redirected
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs argv[0] (searched in PATH when it has no slash) to completion. Blocks: call it off the
  // io_context. Fails only when the program cannot be started at all, or when it passed its
  // deadline.
  virtual Result<ProcessResult> run(const std::vector<std::string>& argv,
                                    const ProcessOptions& options) = 0;
};

using ProcessRunnerPtr = std::shared_ptr<ProcessRunner>;

}  // namespace elafros
