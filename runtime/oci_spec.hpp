#pragma once
// Generates the OCI runtime spec (config.json) of an instance: the process from the image config
// and the revision, and hardened defaults at least as strict as Docker's (docs/architecture.md).

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <optional>
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

// Container ids 0..size-1 map to host ids host_base..host_base+size-1.
struct IdMapping {
  std::uint32_t host_base = 100000;
  std::uint32_t size = 65536;
  // The host id of container id `id`; ids past the range map to the range's last (nobody-like).
  std::uint32_t host_id(std::uint32_t id) const {
    return host_base + (id < size ? id : size - 1);
  }
};

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
  // What the securityContext resolves to (resolve_security): the capabilities granted (bounding,
  // effective, permitted), those also ambient (for a non-root user), no_new_privs, a read-only
  // root, and RuntimeDefault seccomp (false: Unconfined).
  std::vector<std::string> capabilities = default_capabilities_list();
  std::vector<std::string> ambient_capabilities;
  bool no_new_privileges = true;
  bool readonly_rootfs = false;
  bool seccomp = true;
  std::string netns_path;  // a network namespace to join; "": the host's network
  // A user namespace of its own: container ids 0..size-1 are host ids base..base+size-1, for
  // users and groups alike (user-namespaces); none: the host's.
  std::optional<IdMapping> user_namespace;
  // The user namespace to join (the one that owns netns_path), made with that mapping by the
  // bridge; "": runc makes one (and /sys is the host's, as no sysfs can be mounted then).
  std::string userns_path;

  static std::vector<std::string> default_capabilities_list();
};

// How the daemon's configuration bounds securityContext (docs/architecture.md, "Isolation").
struct SecurityPolicy {
  // Knative's secure-pod-defaults: "disabled", "AllowRootBounded" (unset fields get: no
  // privilege escalation, RuntimeDefault, capabilities dropped but NET_BIND_SERVICE when the
  // port is below 1024) or "Enabled" (those, and runAsNonRoot).
  std::string secure_pod_defaults = "disabled";
  bool allow_unconfined = false;  // seccomp-unconfined: whether Unconfined may be asked for
};

// Applies a container's securityContext (and the policy's defaults) to a bundle whose process
// the image resolved: the user, the capabilities, no_new_privs, a read-only root and seccomp.
// Refuses, naming the field, what the policy or the image does not allow (runAsNonRoot with an
// image that runs as root, Unconfined where seccomp-unconfined is off).
Result<void> resolve_security(const std::optional<SecurityContext>& context,
                              const SecurityPolicy& policy, int port, BundleSpec& bundle);

boost::json::object make_runtime_spec(const BundleSpec& bundle);

// Docker's 14 default capabilities.
const std::vector<std::string>& default_capabilities();

}  // namespace elafros
