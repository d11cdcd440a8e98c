#pragma once

#include "elafros/process_runner.hpp"

namespace elafros {

// Runs programs with posix_spawn. Every descriptor above 2 is closed in the child, so no
// socket of the daemon leaks into runc or a container.
class PosixProcessRunner final : public ProcessRunner {
 public:
  // ProcessRunner
  Result<ProcessResult> run(const std::vector<std::string>& argv,
                            const ProcessOptions& options) override;
};

}  // namespace elafros
