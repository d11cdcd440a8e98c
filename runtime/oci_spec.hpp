#pragma once
// Generates the OCI runtime spec (config.json) of an instance: the process from the image config
// and the revision, and hardened defaults at least as strict as Docker's (docs/architecture.md).

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "elafros/container_runtime.hpp"
#include "elafros/result.hpp"
#include "image_store.hpp"

namespace elafros {

struct ProcessSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;  // "K=V", later entries of a name replace earlier ones
  std::string cwd = "/";
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
};

// Merges the image config with the revision's container spec, Kubernetes-style: `command`
// replaces Entrypoint (and drops Cmd), `args` replaces Cmd. Sets PORT and K_* last, so users
// cannot override them. Resolves a user name through the rootfs's /etc/passwd and /etc/group.
Result<ProcessSpec> resolve_process(const ImageConfig& image, const LaunchSpec& launch,
                                    const std::string& rootfs);

struct BundleSpec {
  ProcessSpec process;
  std::string rootfs;  // absolute path of the merged overlay
  std::string hostname;
  std::string cgroups_path;  // e.g. /elafros/<container-id>
  std::int64_t pids_limit = 4096;
  std::uint64_t nofile_limit = 1048576;  // never above what the daemon itself may raise it to
  std::int64_t memory_limit_bytes = 0;   // resources.limits.memory; 0: none
  std::int64_t cpu_limit_millis = 0;     // resources.limits.cpu; 0: none
  // Files bind-mounted read-only: (the host's file, where it appears), e.g. /etc/resolv.conf.
  std::vector<std::pair<std::string, std::string>> readonly_files;
  std::vector<LaunchSpec::Bind> binds;  // directories bind-mounted (a build's /workspace)
};

boost::json::object make_runtime_spec(const BundleSpec& bundle);

// Docker's 14 default capabilities.
const std::vector<std::string>& default_capabilities();

}  // namespace elafros
