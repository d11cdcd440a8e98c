// The build controller against a fake container runtime whose "steps" are real processes (so the
// pidfd exit watching and reaping are real): the queue, a failing step, a cancel that kills the
// running step, and the recovery of builds a restart interrupted. The store is a real
// SqliteStore on a temporary file, written through the CommitQueue as the API does.
#include "build/build_controller.hpp"

#include <spawn.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <future>
#include <map>
#include <mutex>

#include "commit_queue.hpp"
#include "elafros/build.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "fixtures/tar_builder.hpp"
#include "sqlite_store.hpp"

using namespace elafros;
namespace json = boost::json;

extern char** environ;

namespace {

// A step's image says what its process does: "ok" exits 0, "exit3" exits 3, "sleep" runs until
// killed.
class FakeStepRuntime final : public ContainerRuntime {
 public:
  Result<int> start(const LaunchSpec& spec) override {
    std::lock_guard lock(mutex_);
    std::string script = images_.count(spec.image_digest) ? images_[spec.image_digest] : "exit 0";
    pid_t pid = 0;
    char sh[] = "sh", c[] = "-c";
    char* argv[] = {sh, c, script.data(), nullptr};
    if (::posix_spawnp(&pid, "sh", nullptr, nullptr, argv, environ) != 0)
      return Error::internal("spawn failed");
    pids_[spec.container_id] = pid;
    started.push_back(spec);
    return pid;
  }
  Result<void> kill(const std::string& id, int signal) override {
    std::lock_guard lock(mutex_);
    killed.push_back(id);
    if (auto it = pids_.find(id); it != pids_.end()) ::kill(it->second, signal);
    return {};
  }
  Result<void> remove(const std::string& id) override {
    std::lock_guard lock(mutex_);
    if (auto it = pids_.find(id); it != pids_.end()) ::kill(it->second, SIGKILL);
    pids_.erase(id);
    strays.erase(std::remove(strays.begin(), strays.end(), id), strays.end());
    removed.push_back(id);
    return {};
  }
  ContainerStatus status(const std::string&) override { return {}; }
  std::vector<std::string> list() override {
    std::lock_guard lock(mutex_);
    return strays;
  }
  std::string tail_logs(const std::string&, std::size_t) override { return "cc: error\n"; }

  void set_image(const std::string& digest, std::string script) {
    std::lock_guard lock(mutex_);
    images_[digest] = std::move(script);
  }
  template <class F>
  auto locked(F f) {
    std::lock_guard lock(mutex_);
    return f();
  }

  std::vector<LaunchSpec> started;
  std::vector<std::string> killed, removed, strays;

 private:
  std::mutex mutex_;
  std::map<std::string, std::string> images_;
  std::map<std::string, pid_t> pids_;
};

class NoRunner final : public ProcessRunner {
 public:
  Result<ProcessResult> run(const std::vector<std::string>&, const ProcessOptions&) override {
    return Error::internal("no process runs in this test");
  }
};

class NoSources final : public SourceArchives {
 public:
  Result<std::string> add(const std::string&) override { return Error::internal("unused"); }
  bool has(const std::string&) const override { return false; }
  Result<void> unpack(const std::string&, const std::string&) const override { return {}; }
};

class NoExporter final : public ImageExporter {
 public:
  Result<ExportedImage> export_image(const ImageExport&) override {
    return Error::internal("unused");
  }
};

std::string digest(char c) {
  return "sha256:" + std::string(64, c);
}

struct Harness {
  test::TempDir dir;
  std::unique_ptr<SqliteStore> store =
      std::move(SqliteStore::open(dir.path() + "/elafros.db").value());
  boost::asio::io_context control;
  boost::asio::thread_pool store_thread{1};
  boost::asio::thread_pool work{2};
  WatchCache cache{store->current_resource_version(), 64};
  CommitQueue commits{*store, store_thread.get_executor(), cache};
  FakeStepRuntime runtime;
  NoRunner runner;
  NoSources sources;
  NoExporter exporter;
  std::unique_ptr<BuildController> controller;

  Harness() {
    for (auto [name, c, script] :
         {std::tuple{"ok", 'a', "exit 0"}, std::tuple{"exit3", 'b', "exit 3"},
          std::tuple{"sleep", 'c', "exec sleep 1000"}}) {
      ImageRecord rec;
      rec.name = std::string(name) + ":latest";
      rec.digest = digest(c);
      REQUIRE(store->put_image(rec));  // before any other thread uses the store
      runtime.set_image(rec.digest, script);
    }
  }
  ~Harness() {
    if (controller) controller->stop();
    control.run_for(std::chrono::milliseconds(50));
    work.join();
    store_thread.join();
  }

  void start(int max_concurrent) {
    BuildControllerOptions o;
    o.data_dir = dir.path() + "/builds";
    o.max_concurrent = max_concurrent;
    controller = std::make_unique<BuildController>(control, store_thread, work, *store, cache,
                                                   commits, runtime, runner, sources, exporter, o);
    bool started = false;
    controller->start(cache.latest(), [&](Result<void> r) {
      REQUIRE(r);
      started = true;
    });
    REQUIRE(run_until([&] { return started; }));
  }

  // Writes through the commit queue, as the API does, and waits for the commit.
  void write(ObjectWrite::Op op, json::object o) {
    bool done = false;
    commits.commit({{op, kBuildGroup, "Build", std::move(o), 0}},
                   [&](Result<std::vector<ObjectEvent>> r) {
                     REQUIRE(r);
                     done = true;
                   });
    REQUIRE(run_until([&] { return done; }));
  }

  json::object build(const std::string& name, const std::string& image, bool cancel = false) {
    json::object step{{"name", "step"}, {"image", image}};
    json::object spec{{"steps", json::array{step}}};
    if (cancel) spec["status"] = "BuildCancelled";
    return json::object{{"apiVersion", kBuildApiVersion},
                        {"kind", "Build"},
                        {"metadata", json::object{{"name", name},
                                                  {"namespace", "default"},
                                                  {"uid", name + "-0123456789"},
                                                  {"generation", 1}}},
                        {"spec", spec}};
  }

  // Read on the store thread: the store is one-thread-at-a-time, and the controller uses it.
  json::object get(const std::string& name) {
    std::promise<Result<json::object>> read;
    boost::asio::post(store_thread, [&] {
      read.set_value(store->get_object({kBuildGroup, "Build", "default", name}));
    });
    auto o = read.get_future().get();
    REQUIRE(o);
    return *o;
  }
  std::string succeeded(const std::string& name, const char* field = "status") {
    json::value v = json_path_value(
        get(name), std::string(".status.conditions[?(@.type=='Succeeded')].") + field);
    return v.is_string() ? std::string(v.get_string()) : "";
  }

  template <class Pred>
  bool run_until(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      control.run_for(std::chrono::milliseconds(5));
      control.restart();
    }
    return true;
  }
};

}  // namespace

TEST_CASE("builds beyond max_concurrent wait in order; a cancel kills the running step") {
  Harness h;
  h.start(1);
  h.write(ObjectWrite::Op::kCreate, h.build("first", "sleep"));
  REQUIRE(h.run_until([&] { return h.succeeded("first", "reason") == "Running"; }));
  REQUIRE(
      h.run_until([&] { return h.runtime.locked([&] { return h.runtime.started.size(); }) == 1; }));
  h.write(ObjectWrite::Op::kCreate, h.build("second", "ok"));
  REQUIRE(h.run_until([&] { return h.succeeded("second", "reason") == "Pending"; }));
  CHECK_THAT(
      h.succeeded("second", "message"),
      Catch::Contains("1 build(s) run at once (build-max-concurrent), 1 running, 0 waiting"));
  // Cancel: spec.status BuildCancelled, as a client's update writes it.
  h.write(ObjectWrite::Op::kUpdate, h.build("first", "sleep", true));
  REQUIRE(h.run_until([&] { return h.succeeded("first") == "False"; }));
  CHECK(h.succeeded("first", "reason") == "BuildCancelled");
  CHECK(h.runtime.locked([&] { return h.runtime.killed.size(); }) >= 1);
  REQUIRE(h.run_until([&] { return h.succeeded("second") == "True"; }));
  auto removed = h.runtime.locked([&] { return h.runtime.removed; });
  CHECK(std::count(removed.begin(), removed.end(),
                   build_step_container_id("first", "first-0123456789", 0)) == 1);
  // The step ran as a build step: /workspace, HOME and /cache bound, no PORT.
  auto spec = h.runtime.locked([&] { return h.runtime.started.back(); });
  CHECK(spec.build_step);
  CHECK(spec.container.working_dir == kWorkspaceDir);
  bool workspace = false, cache = false;
  for (const auto& b : spec.binds) {
    workspace = workspace || b.destination == kWorkspaceDir;
    cache = cache || b.destination == kCacheDir;
  }
  CHECK(workspace);
  CHECK(cache);
  CHECK(std::find(spec.container.env.begin(), spec.container.env.end(),
                  EnvVar{"HOME", kBuilderHome}) != spec.container.env.end());
}

TEST_CASE("a failing step fails the build with its name, exit code and last lines") {
  Harness h;
  h.start(2);
  h.write(ObjectWrite::Op::kCreate, h.build("broken", "exit3"));
  REQUIRE(h.run_until([&] { return h.succeeded("broken") == "False"; }));
  CHECK(h.succeeded("broken", "reason") == "Failed");
  std::string message = h.succeeded("broken", "message");
  CHECK_THAT(message, Catch::Contains("step \"step\" exited with code 3"));
  CHECK_THAT(message, Catch::Contains("cc: error"));
  CHECK_THAT(message, Catch::Contains("full logs: elafros build logs broken --step step"));
  json::value exit = json_path_value(h.get("broken"), ".status.stepStates");
  REQUIRE(exit.is_array());
  CHECK(exit.as_array().at(0).at("terminated").at("exitCode") == 3);
}

TEST_CASE("at start, builds a restart interrupted are failed and their containers removed") {
  Harness h;
  json::object interrupted = h.build("interrupted", "sleep");
  interrupted["status"] = json::object{
      {"startTime", "2026-12-01T00:00:00Z"},
      {"conditions", json::array{json::object{
                         {"type", "Succeeded"}, {"status", "Unknown"}, {"reason", "Running"}}}}};
  h.write(ObjectWrite::Op::kCreate, interrupted);
  h.write(ObjectWrite::Op::kCreate, h.build("waiting", "ok"));
  std::string stray = build_step_container_id("interrupted", "interrupted-0123456789", 0);
  h.runtime.locked([&] {
    h.runtime.strays.push_back(stray);
    return 0;
  });
  h.start(1);
  REQUIRE(h.run_until([&] { return h.succeeded("interrupted") == "False"; }));
  CHECK(h.succeeded("interrupted", "reason") == "DaemonRestarted");
  CHECK_THAT(h.succeeded("interrupted", "message"),
             Catch::Contains("restarted while this build ran"));
  auto removed = h.runtime.locked([&] { return h.runtime.removed; });
  CHECK(std::find(removed.begin(), removed.end(), stray) != removed.end());
  // One that had not started yet runs now.
  REQUIRE(h.run_until([&] { return h.succeeded("waiting") == "True"; }));
}
