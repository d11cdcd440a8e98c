#pragma once
// Runs instances as OCI containers. Implemented by RuncRuntime (runtime/). Every call blocks for
// at most the time runc takes; the scheduler calls them off the io_context.

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "elafros/config_refs.hpp"
#include "elafros/model.hpp"
#include "elafros/process_runner.hpp"
#include "elafros/result.hpp"

namespace elafros {

// Everything needed to start one instance of a revision.
struct LaunchSpec {
  std::string container_id;  // unique, also the instance id
  std::string namespace_;
  std::string service;
  std::string revision;
  std::string image_digest;  // manifest digest of an image already in the image store
  ContainerSpec container;   // command/args/env overrides on top of the image config
  int port = 0;              // the PORT the app must listen on (host network, loopback)

  // A build step (docs/architecture.md, "Builds") rather than an instance: no PORT or K_*
  // variables, and the build's directories bind-mounted.
  bool build_step = false;
  struct Bind {
    std::string source;  // a host directory or file
    std::string destination;
    bool readonly = false;
  };
  std::vector<Bind> binds;
  // Secret and configMap volumes (files written for this instance, on a tmpfs when they hold
  // secrets) and emptyDirs (docs/architecture.md, "Secrets").
  std::vector<ResolvedVolume> volumes;
  // Knative's multi-container pods: init containers run to completion, in order, then the
  // sidecars start, then this (the serving) container; all in the instance's network namespace,
  // sharing its emptyDirs. Each is a container of its own, "<container_id>_<name>"; remove()
  // and kill() reach them through the instance's id.
  std::vector<LaunchSpec> init_containers;
  std::vector<LaunchSpec> sidecars;
  std::string container_name;  // a sidecar's or init container's name, for its log lines
};

// What an instance's cgroup has counted; `known` is false when it has no cgroup (any more).
struct ResourceUsage {
  bool known = false;
  double cpu_seconds = 0;
  std::uint64_t memory_bytes = 0;
  std::uint64_t oom_kills = 0;  // processes the kernel killed for exceeding the memory limit
};

struct ContainerStatus {
  bool exists = false;
  bool running = false;
  int pid = 0;
  bool created = false;  // made by create() and not started yet (runc's "created")
};

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // Prepares the bundle (overlay rootfs, config.json, log files) and starts the container
  // detached. Returns the pid of the container's init process.
  virtual Result<int> start(const LaunchSpec& spec) = 0;
  // A standby (docs/architecture.md, "Standby instances"): everything start() prepares, and the
  // container made (runc create) with its process waiting to be started. Returns that process's
  // pid, which start_created() keeps. A runtime that cannot make standbys says so.
  virtual Result<int> create(const LaunchSpec& /*spec*/) {
    return Error::unavailable("this runtime cannot make standby instances");
  }
  // Starts a container create() made: its process runs the app from here on.
  virtual Result<void> start_created(const std::string& /*container_id*/) {
    return Error::unavailable("this runtime cannot make standby instances");
  }
  // Sends a signal to the container's init process. Succeeds if the container is already gone.
  virtual Result<void> kill(const std::string& container_id, int signal) = 0;
  // Forcibly deletes the container and removes its overlay, mounts, bundle. Idempotent.
  virtual Result<void> remove(const std::string& container_id) = 0;
  virtual ContainerStatus status(const std::string& container_id) = 0;
  // Ids of every container in elafros's runc state root.
  virtual std::vector<std::string> list() = 0;
  // CPU, memory and OOM kills from the instance's cgroup, while it exists (until remove()).
  virtual ResourceUsage usage(const std::string& /*container_id*/) { return {}; }
  // Per-instance networks (docs/architecture.md, "Isolation"): whether each instance has a
  // network namespace of its own (then PORT is the container port), the address a started one
  // has there, taking back an instance's namespace after a restart, and removing the ones no
  // instance holds. Without them, instances share the host's network on loopback ports.
  virtual bool isolated_network() const { return false; }
  virtual std::string address(const std::string& /*container_id*/) { return {}; }
  virtual Result<void> adopt_network(const std::string& /*container_id*/,
                                     const std::string& /*address*/) {
    return {};
  }
  virtual Result<void> sweep_networks() { return {}; }
  // persistentVolumeClaim volumes: removes the directories of claims not in `claims` (deleted
  // ones), except any a start mounted since `listed_at` (a claim made after the list). Returns
  // the uids whose data went.
  virtual std::vector<std::string> sweep_claims(
      const std::set<std::string>& /*claims*/,
      std::chrono::system_clock::time_point /*listed_at*/) {
    return {};
  }
  // Runs `command` inside the running container (an exec probe), with its process's user,
  // environment and limits, and returns its exit code and output. Fails when it cannot run, or ran
  // past `timeout` (then it is killed).
  virtual Result<ProcessResult> exec(const std::string& /*container_id*/,
                                     const std::vector<std::string>& /*command*/,
                                     std::chrono::milliseconds /*timeout*/) {
    return Error::unavailable("this runtime cannot run commands in an instance");
  }
  // The running sidecars of an instance, by name: their init processes' pids, for the reconciler
  // to watch (a sidecar that exits fails its instance).
  virtual std::vector<std::pair<std::string, int>> sidecar_pids(
      const std::string& /*container_id*/) {
    return {};
  }
  // The last lines the instance wrote to stdout and stderr, for failure messages.
  virtual std::string tail_logs(const std::string& container_id, std::size_t lines) = 0;
};

using ContainerRuntimePtr = std::shared_ptr<ContainerRuntime>;

}  // namespace elafros
