#pragma once

#include <memory>
#include <string>

#include "atomic_file.hpp"
#include "elafros/container_runtime.hpp"
#include "elafros/process_runner.hpp"
#include "image_store.hpp"
#include "log_collector.hpp"

namespace elafros {

struct RuncOptions {
  std::string runc = "runc";  // the runc binary
  std::string data_dir;       // instances/, logs/ and runc/ (runc's state root) live here
  std::int64_t pids_limit = 4096;
};

// Runs instances with the runc binary (docs/architecture.md): one bundle per instance under
// <data-dir>/instances/<id>, its rootfs an overlay on the image's shared rootfs, its stdout and
// stderr appended to files under <data-dir>/logs that outlive the daemon.
class RuncRuntime final : public ContainerRuntime {
 public:
  RuncRuntime(RuncOptions options, ProcessRunnerPtr runner, std::shared_ptr<ImageStore> images);

  // ContainerRuntime
  Result<int> start(const LaunchSpec& spec) override;
  Result<void> kill(const std::string& container_id, int signal) override;
  Result<void> remove(const std::string& container_id) override;
  ContainerStatus status(const std::string& container_id) override;
  std::vector<std::string> list() override;
  std::string tail_logs(const std::string& container_id, std::size_t lines) override;
  ResourceUsage usage(const std::string& container_id) override;

  std::string instance_dir(const std::string& container_id) const;
  void finish_spools(const std::string& container_id);
  const std::string& state_root() const { return state_root_; }

 private:
  Result<int> start_container(const LaunchSpec& spec);
  std::vector<std::string> runc_argv(std::initializer_list<std::string> args) const;
  void cleanup_files(const std::string& container_id);

  RuncOptions options_;
  ProcessRunnerPtr runner_;
  std::shared_ptr<ImageStore> images_;
  std::string state_root_;
};

}  // namespace elafros
