#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "atomic_file.hpp"
#include "bridge_network.hpp"
#include "elafros/container_runtime.hpp"
#include "elafros/process_runner.hpp"
#include "image_store.hpp"
#include "log_collector.hpp"
#include "oci_spec.hpp"

namespace elafros {

struct RuncOptions {
  std::string runc = "runc";  // the runc binary
  std::string data_dir;       // instances/, logs/ and runc/ (runc's state root) live here
  std::int64_t pids_limit = 4096;
  // A runc call that takes longer is killed, with its process group, and fails.
  std::chrono::milliseconds timeout{60000};
  std::string cgroup_root = "/sys/fs/cgroup";  // where the instances' cgroups are looked for
  // Every container's cgroup is <parent>/<id> in each hierarchy. The builds' runtime has its
  // own data dir (and so runc state root) and parent, so that the reconciler never sees steps.
  std::string cgroup_parent = "elafros";
  SecurityPolicy security;  // how securityContext is bounded and defaulted
  // user-namespaces: every instance (not build steps) in a user namespace of its own with this
  // mapping, on a copy of its image's root filesystem chowned into it.
  std::optional<IdMapping> user_namespace;
  // hostPath volumes may mount only paths below these (host-path-prefixes); none: no hostPath.
  std::vector<std::string> host_path_prefixes;
  // An init container running longer is killed, and the instance fails.
  std::chrono::milliseconds init_timeout{600000};
};

// Runs instances with the runc binary (docs/architecture.md): one bundle per instance under
// <data-dir>/instances/<id>, its rootfs an overlay on the image's shared rootfs, its stdout and
// stderr appended to files under <data-dir>/logs that outlive the daemon.
class RuncRuntime final : public ContainerRuntime {
 public:
  RuncRuntime(RuncOptions options, ProcessRunnerPtr runner, std::shared_ptr<ImageStore> images);

  // ContainerRuntime
  Result<int> start(const LaunchSpec& spec) override;
  Result<int> create(const LaunchSpec& spec) override;
  // Opens the container's exec fifo itself, as `runc start` does, without forking runc: the
  // waiting process reads the go-ahead and execs the app; the fifo's removal marks it running.
  Result<void> start_created(const std::string& container_id) override;
  Result<void> kill(const std::string& container_id, int signal) override;
  // runc delete --force, then whatever an interrupted runc left: the state, the cgroups (their
  // processes killed), the overlay mount, the bundle. Fails, to be retried, while any remains.
  Result<void> remove(const std::string& container_id) override;
  ContainerStatus status(const std::string& container_id) override;
  // Every id that has a runc state or a bundle (and so maybe an overlay mount or a cgroup).
  std::vector<std::string> list() override;
  std::string tail_logs(const std::string& container_id, std::size_t lines) override;
  std::vector<std::pair<std::string, int>> sidecar_pids(const std::string& container_id) override;
  // runc exec: the container's process settings from its config.json, `command` as the args.
  Result<ProcessResult> exec(const std::string& container_id,
                             const std::vector<std::string>& command,
                             std::chrono::milliseconds timeout) override;
  ResourceUsage usage(const std::string& container_id) override;
  bool isolated_network() const override;
  std::string address(const std::string& container_id) override;
  Result<void> adopt_network(const std::string& container_id, const std::string& address) override;
  Result<void> sweep_networks() override;
  std::vector<std::string> sweep_claims(const std::set<std::string>& claims,
                                        std::chrono::system_clock::time_point listed_at) override;

  // Gives every instance (not build steps) a network namespace of its own from `network`
  // (docs/architecture.md, "Isolation"); set before the first start. Null: the host's network.
  void set_network(BridgeNetwork* network) { network_ = network; }

  // Ends the runc calls a killed predecessor on this data dir left running (runc, started in
  // its own process group, outlives the daemon that ran it): one still creating a container
  // would otherwise finish after the start's stray pass and leave a container nothing tracks.
  // Call before any runc call of this process. Returns how many it ended.
  int end_predecessor_calls();

  // Removes the chowned image copies of user-namespaces that nothing can use any more: those of
  // images no longer in the store, of another mapping, or left half made by a crash.
  void sweep_shifted_rootfs();

  std::string instance_dir(const std::string& container_id) const;

  // The CPU weight of the containers' parent cgroup as a whole (cgroup v1 cpu.shares, whose
  // default is 1024; cgroup v2 cpu.weight in proportion), e.g. to give builds less than
  // instances under contention.
  Result<void> set_parent_cpu_shares(int shares);
  void finish_spools(const std::string& container_id);
  const std::string& state_root() const { return state_root_; }

 private:
  // One container's bundle, started detached (its pid), made and left waiting to be started (its
  // pid), or run to its end (its exit code). `pod`: the serving container's, for a sidecar or init
  // container, whose network namespace it joins and under whose instance dir its emptyDirs are.
  struct Pod {
    std::string dir;
    std::optional<NetworkSlot> slot;
  };
  enum class Run { kDetached, kCreated, kToEnd };
  Result<int> start_container(const LaunchSpec& spec, const Pod* pod = nullptr,
                              Run how = Run::kDetached);
  ResourceUsage cgroup_usage(const std::string& container_id) const;
  // The init containers, the sidecars, then the serving container.
  Result<int> start_pod(const LaunchSpec& spec);
  // A sidecar's or init container's ids, "<id>_<name>", found by their bundles and states.
  std::vector<std::string> children(const std::string& id) const;
  std::vector<std::string> runc_argv(std::initializer_list<std::string> args) const;
  // Runs runc with the deadline; `what` names the call in errors ("delete abc").
  Result<ProcessResult> run_runc(const std::string& what, std::vector<std::string> argv,
                                 ProcessOptions po = {});
  Result<void> cleanup_files(const std::string& container_id);
  std::vector<std::string> cgroup_dirs(const std::string& container_id) const;
  Result<void> remove_cgroups(const std::string& container_id);
  // The image's root filesystem chowned into the user-namespace mapping, made once per image
  // and mapping under <data-dir>/userns/<base>-<size>/<digest>.
  Result<std::string> shifted_rootfs(const std::string& digest, const std::string& rootfs);

  RuncOptions options_;
  ProcessRunnerPtr runner_;
  std::shared_ptr<ImageStore> images_;
  std::string state_root_;
  BridgeNetwork* network_ = nullptr;
  // When each claim was last mounted by a start, so that a claim sweep spares the ones mounted
  // after its list of claims was taken; held while a start makes a claim's directory.
  std::mutex claims_mutex_;
  std::map<std::string, std::chrono::system_clock::time_point> claim_mounts_;
};

}  // namespace elafros
