#pragma once
// The build controller (docs/architecture.md, "Builds"), on the control thread. It follows the
// Builds through the watch feed and runs each: its source into a fresh /workspace (an uploaded
// archive, a git clone, or a custom step), then its steps as containers one after another until
// the first that exits non-zero, then its output as an image. At most max_concurrent run at
// once; the rest wait in order, which their status says. A Build past its timeout, cancelled
// (spec.status: BuildCancelled) or deleted has its running step killed; its logs stay. Every
// blocking call (runc, git, unpacking, export) runs on the work pool.
//
// Status is Knative Build's: conditions[Succeeded] (Unknown while Pending or Running, then
// True, or False with Failed, BuildTimeout, BuildCancelled or DaemonRestarted), startTime,
// completionTime, stepStates, stepsCompleted, plus resolvedSteps and imageDigest.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "elafros/build_backend.hpp"
#include "elafros/clock.hpp"
#include "elafros/container_runtime.hpp"
#include "elafros/object_store.hpp"
#include "elafros/process_runner.hpp"
#include "elafros/store.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

struct BuildControllerOptions {
  std::string data_dir;  // work/ (per-build directories) and cache/ live here
  int max_concurrent = 2;
  std::string step_cpu;     // resources.limits.cpu of every step; empty: none
  std::string step_memory;  // resources.limits.memory of every step; empty: none
  std::string git = "git";
  ClockPtr clock;
  // The log files of a step that runs no container (the git clone): stdout and stderr
  // descriptors, then `close` once it is over, so that its lines join the Build's logs.
  std::function<std::pair<int, int>(const std::string& ns, const std::string& build,
                                    const std::string& id)>
      open_step_log;
  std::function<void(const std::string& id)> close_step_log;
  // A Build is over: its last lines are collected, and live followers of its logs end.
  std::function<void(const std::string& ns, const std::string& build, std::function<void()>)>
      logs_finished;
  // A Build was deleted: its logs go.
  std::function<void(const std::string& ns, const std::string& build)> logs_removed;
  // spec.output.push: pushes the stored image (its manifest digest) to a registry reference;
  // returns the digest there. Blocking: called on the work pool.
  std::function<Result<std::string>(const std::string& digest, const std::string& destination)>
      push;
  // A built image was stored: called on the control thread.
  std::function<void(const std::string& ns, const std::string& build, const ImageRecord&)> built;
};

class BuildController {
 public:
  BuildController(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
                  boost::asio::thread_pool& work, Store& store, WatchSource& watches,
                  ObjectCommitter& committer, ContainerRuntime& runtime, ProcessRunner& runner,
                  SourceArchives& sources, ImageExporter& exporter, BuildControllerOptions options);
  ~BuildController();
  BuildController(const BuildController&) = delete;
  BuildController& operator=(const BuildController&) = delete;

  // Removes what builds interrupted by a stop or a crash left (their containers and
  // directories) and marks those Builds failed, queues the ones not started, then follows the
  // feed from `from`. `done` on the control thread.
  void start(std::int64_t from, std::function<void(Result<void>)> done);
  // Stops following. Steps that run go on until the next start removes them and marks their
  // Builds DaemonRestarted (a build is not resumed midway).
  void stop();
  // Prometheus text: builds started, finished by reason, running and waiting. Any thread.
  std::string metrics() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
