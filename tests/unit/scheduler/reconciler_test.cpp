// The reconciler against a fake container runtime: "containers" are real `sleep` processes (so
// pidfd exit watching is real) and the fake listens on the instance's port (so the readiness
// probe is real). The store is a real SqliteStore on a temporary file.
#include "reconciler.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>

#include "elafros/object_meta.hpp"
#include "fixtures/tar_builder.hpp"
#include "sqlite_store.hpp"

using namespace elafros;
using namespace std::chrono_literals;

extern char** environ;

namespace {

// The store writes the API makes: a service with its first revision, a template change with
// its new revision, a deletion (its revisions go with it).
Result<void> store_group(Store& store, std::vector<ObjectWrite> group) {
  std::vector<std::vector<ObjectWrite>> groups;
  groups.push_back(std::move(group));
  auto r = store.write_object_groups(std::move(groups));
  if (!r[0]) return r[0].error();
  return {};
}

Result<void> store_create(Store& store, const Service& s, const Revision& r) {
  return store_group(
      store,
      {{ObjectWrite::Op::kCreate, kServingGroup, "Service", service_object(s), 0},
       {ObjectWrite::Op::kCreate, kServingGroup, "Revision", revision_object(r, s.meta.uid), 0}});
}

Result<void> store_update(Store& store, const Service& s, const Revision& r) {
  return store_group(
      store,
      {{ObjectWrite::Op::kUpdate, kServingGroup, "Service", service_object(s), 0},
       {ObjectWrite::Op::kCreate, kServingGroup, "Revision", revision_object(r, s.meta.uid), 0}});
}

Result<void> store_delete(Store& store, const Service& s) {
  return store_group(store,
                     {{ObjectWrite::Op::kDelete, kServingGroup, "Service", service_object(s), 0}});
}

class FakeRuntime final : public ContainerRuntime {
 public:
  ~FakeRuntime() override {
    for (auto& [id, c] : containers_) destroy(c);
  }

  Result<int> start(const LaunchSpec& spec) override {
    std::lock_guard lock(mutex_);
    if (fail_start) return Error::internal("fake runtime: start refused");
    Container c;
    if (!spawn(c)) return Error::internal("spawn failed");
    if (listen_on_start) listen(c, spec.port);
    containers_[spec.container_id] = c;
    started.push_back(spec.container_id);
    return c.pid;
  }

  // A standby: the process runs, but listens only once started.
  Result<int> create(const LaunchSpec& spec) override {
    std::lock_guard lock(mutex_);
    if (!can_standby) return Error::unavailable("fake runtime: no standbys");
    Container c;
    if (!spawn(c)) return Error::internal("spawn failed");
    c.created = true;
    c.port = spec.port;
    containers_[spec.container_id] = c;
    return c.pid;
  }

  Result<void> start_created(const std::string& id) override {
    std::lock_guard lock(mutex_);
    auto it = containers_.find(id);
    if (it == containers_.end() || !it->second.created)
      return Error::internal("fake runtime: " + id + " is not a standby");
    it->second.created = false;
    listen(it->second, it->second.port);
    started_created.push_back(id);
    return {};
  }

  Result<void> kill(const std::string& id, int signal) override {
    std::lock_guard lock(mutex_);
    if (auto it = containers_.find(id); it != containers_.end()) ::kill(it->second.pid, signal);
    return {};
  }

  Result<void> remove(const std::string& id) override {
    std::lock_guard lock(mutex_);
    if (fail_remove > 0) {
      --fail_remove;
      return Error::internal("runc delete " + id + " failed: pipe: Too many open files");
    }
    strays.erase(id);
    if (auto it = containers_.find(id); it != containers_.end()) {
      destroy(it->second);
      containers_.erase(it);
    }
    removed.push_back(id);
    return {};
  }

  ContainerStatus status(const std::string& id) override {
    std::lock_guard lock(mutex_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return {};
    bool alive = ::kill(it->second.pid, 0) == 0;
    return {true, alive && !it->second.created, it->second.pid, alive && it->second.created};
  }

  std::vector<std::string> list() override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> ids;
    for (const auto& [id, c] : containers_) ids.push_back(id);
    for (const auto& id : strays) ids.push_back(id);
    return ids;
  }

  std::string tail_logs(const std::string&, std::size_t) override { return "fake last line\n"; }

  // An exec probe: exits with exec_exit, and says so.
  Result<ProcessResult> exec(const std::string&, const std::vector<std::string>& command,
                             std::chrono::milliseconds) override {
    ++execs;
    ProcessResult r;
    r.exit_code = exec_exit.load();
    r.out = command[0] + " says " + std::to_string(r.exit_code) + "\nsecond line\n";
    return r;
  }
  std::atomic<int> exec_exit{0};
  std::atomic<int> execs{0};

  int pid_of(const std::string& id) {
    std::lock_guard lock(mutex_);
    return containers_.count(id) ? containers_[id].pid : 0;
  }
  std::size_t live() {
    std::lock_guard lock(mutex_);
    return containers_.size();
  }
  // The standbys made and not started.
  std::vector<std::string> standbys() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> ids;
    for (const auto& [id, c] : containers_)
      if (c.created) ids.push_back(id);
    return ids;
  }
  std::vector<std::string> started_standbys() {
    std::lock_guard lock(mutex_);
    return started_created;
  }
  // The strays, under the lock the runtime's calls take (they run on the blocking pool).
  void set_strays(std::set<std::string> ids) {
    std::lock_guard lock(mutex_);
    strays = std::move(ids);
  }
  std::size_t stray_count() {
    std::lock_guard lock(mutex_);
    return strays.size();
  }

  std::vector<std::string> started;
  std::vector<std::string> removed;
  bool fail_start = false;
  bool listen_on_start = true;
  bool can_standby = false;      // create() makes standbys (else it refuses, as a runtime may)
  int fail_remove = 0;           // this many removals fail
  std::set<std::string> strays;  // bundles no instance has (list() shows them)

 private:
  struct Container {
    pid_t pid = 0;
    int listen_fd = -1;
    bool created = false;  // a standby, not started
    int port = 0;
  };
  static bool spawn(Container& c) {
    char arg0[] = "sleep", arg1[] = "1000";
    char* argv[] = {arg0, arg1, nullptr};
    return ::posix_spawnp(&c.pid, "sleep", nullptr, nullptr, argv, environ) == 0;
  }
  static void listen(Container& c, int port) {
    c.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(c.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(c.listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(c.listen_fd, 16);
  }
  static void destroy(Container& c) {
    if (c.listen_fd >= 0) ::close(c.listen_fd);
    c.listen_fd = -1;
    ::kill(c.pid, SIGKILL);
  }
  std::mutex mutex_;
  std::map<std::string, Container> containers_;
  std::vector<std::string> started_created;
};

Service make_service(const std::string& name) {
  Service s;
  s.meta.name = name;
  s.meta.uid = "uid-" + name;
  s.meta.generation = 1;
  s.spec.container.image = "oci:/img";
  return s;
}

Revision make_revision(const Service& s) {
  Revision r;
  r.meta.name = s.meta.name + "-00001";
  r.meta.uid = new_uid();
  r.meta.generation = s.config_generation;
  r.service = s.meta.name;
  r.spec = s.spec;
  r.image_digest = "sha256:" + std::string(64, 'c');
  return r;
}

struct Harness {
  test::TempDir dir;
  std::unique_ptr<SqliteStore> store =
      std::move(SqliteStore::open(dir.path() + "/elafros.db").value());
  FakeRuntime runtime;
  boost::asio::io_context io;
  boost::asio::thread_pool store_thread{1};
  boost::asio::thread_pool blocking{2};
  RoutingSnapshot routes;
  std::unique_ptr<Reconciler> reconciler;

  explicit Harness(ReconcilerOptions options = fast_options()) {
    reconciler = std::make_unique<Reconciler>(io, store_thread, blocking, *store, runtime, routes,
                                              std::make_shared<RealClock>(), options);
  }
  ~Harness() {
    reconciler->shutdown();
    io.run_for(50ms);
    store_thread.join();
    blocking.join();
  }

  // Stores a service with its first revision and tells the reconciler, as the API does.
  Service create(const std::string& name, const std::function<void(ContainerSpec&)>& edit = {}) {
    Service s = make_service(name);
    if (edit) edit(s.spec.container);
    Revision r = make_revision(s);
    REQUIRE(store_create(*store, s, r).ok());
    reconciler->service_created(s, r);
    return s;
  }

  // Runs a store write on the store thread, as the API does, while the reconciler writes too.
  Result<void> on_store(const std::function<Result<void>()>& write) {
    std::promise<Result<void>> done;
    boost::asio::post(store_thread, [&] { done.set_value(write()); });
    return done.get_future().get();
  }

  // The same, with the revision template's metadata edited (annotations).
  Service create_template(const std::string& name,
                          const std::function<void(RevisionTemplate&)>& edit) {
    Service s = make_service(name);
    if (edit) edit(s.spec);
    Revision r = make_revision(s);
    REQUIRE(on_store([&] { return store_create(*store, s, r); }).ok());
    reconciler->service_created(s, r);
    return s;
  }

  static ReconcilerOptions fast_options() {
    ReconcilerOptions o;
    o.listen_port = 8080;
    o.backoff_initial = 20ms;
    o.backoff_max = 100ms;
    o.readiness_timeout = 2s;
    o.stop_grace = 1s;
    return o;
  }

  // Runs the control loop until pred() holds, for at most `limit`.
  template <class Pred>
  bool run_until(Pred pred, std::chrono::milliseconds limit = 5s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(5ms);
    }
    return pred();
  }

  const Endpoint* endpoint(const std::string& host) {
    table_ = routes.load();
    const ServiceRoute* r = table_->find(host);
    if (!r || r->targets.empty() || r->targets[0].revision->endpoints.empty()) return nullptr;
    return &r->targets[0].revision->endpoints[0];
  }

  std::string ready_status(const Service& s) {
    for (const auto& c : reconciler->service_status(s).conditions)
      if (c.type == "Ready") return c.status;
    return "";
  }

 private:
  RoutingTablePtr table_;
};

constexpr const char* kHost = "hello.default.localhost";

}  // namespace

TEST_CASE("a created service gets one ready instance, a route and a Ready status") {
  Harness h;
  Service s = h.create("hello");
  CHECK(h.routes.load()->find(kHost) != nullptr);  // routed at once, with no endpoint yet
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  CHECK(h.runtime.started.size() == 1);
  CHECK(h.endpoint(kHost)->instance_id == h.runtime.started[0]);
  ServiceStatus st = h.reconciler->service_status(s);
  CHECK(st.url == "http://hello.default.localhost:8080");
  CHECK(st.latest_ready_revision == "hello-00001");
  CHECK(h.ready_status(s) == "True");
  CHECK(h.reconciler->revision_status("default", "hello-00001").actual_replicas == 1);
  auto records = h.store->list_instances();
  REQUIRE(records->size() == 1);
  CHECK((*records)[0].pid == h.runtime.pid_of(h.runtime.started[0]));
  CHECK((*records)[0].state == InstanceState::kRunning);
}

TEST_CASE("an instance that exits is replaced after a backoff, and the exit is reported") {
  Harness h;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  std::string first = h.runtime.started[0];
  ::kill(h.runtime.pid_of(first), SIGKILL);
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) == nullptr; }));  // out of the route at once
  // The reason follows once its last output is read and it is removed (off the control thread).
  auto health = [&] {
    return h.reconciler->revision_status("default", "hello-00001").conditions[0];
  };
  REQUIRE(h.run_until([&] { return health().status == "False"; }));
  auto healthy = health();
  CHECK(healthy.type == "ContainerHealthy");
  CHECK(healthy.status == "False");
  CHECK(healthy.reason == "ExitCode");
  CHECK(healthy.message.find("code 137") != std::string::npos);
  CHECK(healthy.message.find("fake last line") != std::string::npos);
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  CHECK(h.runtime.started.size() == 2);
  CHECK(h.endpoint(kHost)->instance_id == h.runtime.started[1]);
  CHECK(std::find(h.runtime.removed.begin(), h.runtime.removed.end(), first) !=
        h.runtime.removed.end());
  CHECK(h.store->list_instances()->size() == 1);
}

TEST_CASE("a start that fails makes the service not Ready with the reason, and is retried") {
  Harness h;
  h.runtime.fail_start = true;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.ready_status(s) == "False"; }));
  ServiceStatus st = h.reconciler->service_status(s);
  for (const auto& c : st.conditions)
    if (c.type == "Ready") {
      CHECK(c.reason == "RevisionFailed");
      CHECK(c.message.find("fake runtime: start refused") != std::string::npos);
    }
  CHECK(h.store->list_instances()->empty());
  h.runtime.fail_start = false;
  REQUIRE(h.run_until([&] { return h.ready_status(s) == "True"; }));
  CHECK(h.endpoint(kHost) != nullptr);
}

TEST_CASE("an instance that never listens fails its readiness deadline and is removed") {
  auto options = Harness::fast_options();
  options.readiness_timeout = 200ms;
  Harness h(options);
  h.runtime.listen_on_start = false;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.ready_status(s) == "False"; }));
  auto ready = h.reconciler->revision_status("default", "hello-00001").conditions[1];
  CHECK(ready.reason == "ReadinessProbeFailed");
  CHECK(ready.message.find("within 0.2 s") != std::string::npos);
  REQUIRE(h.run_until([&] { return !h.runtime.removed.empty(); }));
  CHECK(h.runtime.removed[0] == h.runtime.started[0]);
}

Probe exec_probe(int period, int failures) {
  Probe p;
  p.exec_command = {"check"};
  p.period_seconds = period;
  p.failure_threshold = failures;
  return p;
}

TEST_CASE("a failing liveness probe restarts the instance, and the reason stays for describe") {
  Harness h;
  Service s = h.create("hello", [](ContainerSpec& c) { c.liveness_probe = exec_probe(1, 2); });
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  REQUIRE(h.run_until([&] { return h.runtime.execs.load() >= 1; }));
  h.runtime.exec_exit = 3;
  auto failing_since = std::chrono::steady_clock::now();
  REQUIRE(h.run_until([&] { return h.runtime.started.size() == 2; }));
  // Two failures a period apart: not before the second.
  CHECK(std::chrono::steady_clock::now() - failing_since > 900ms);
  CHECK(h.runtime.removed.size() >= 1);
  RevisionStatus st = h.reconciler->revision_status("default", "hello-00001");
  CHECK(st.restarts == 1);
  CHECK(st.last_restart.reason == "LivenessProbeFailed");
  CHECK_THAT(st.last_restart.message,
             Catch::Contains("the liveness probe (exec 'check') failed 2 times in a row") &&
                 Catch::Contains("it exited with code 3: check says 3;") &&
                 Catch::Contains("restarted"));
  CHECK(st.last_restart.at_unix > 0);
  h.runtime.exec_exit = 0;
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
}

TEST_CASE("a startup probe holds readiness back until it passes") {
  Harness h;
  Service s = h.create("hello", [](ContainerSpec& c) { c.startup_probe = exec_probe(1, 10); });
  h.runtime.exec_exit = 1;
  REQUIRE(h.run_until([&] { return h.runtime.execs.load() >= 1; }));
  // Listening, but the startup probe has not passed: not ready.
  h.run_until([] { return false; }, 300ms);
  CHECK(h.endpoint(kHost) == nullptr);
  h.runtime.exec_exit = 0;
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  CHECK(h.runtime.started.size() == 1);
}

TEST_CASE("a startup probe that keeps failing restarts the instance") {
  Harness h;
  Service s = h.create("hello", [](ContainerSpec& c) { c.startup_probe = exec_probe(1, 1); });
  h.runtime.exec_exit = 1;
  REQUIRE(h.run_until([&] { return h.runtime.started.size() >= 2; }));
  RevisionStatus st = h.reconciler->revision_status("default", "hello-00001");
  CHECK(st.last_restart.reason == "StartupProbeFailed");
  CHECK(h.endpoint(kHost) == nullptr);
}

TEST_CASE(
    "a readiness probe that fails once ready takes the instance out of the routes, not down") {
  Harness h;
  Service s = h.create("hello", [](ContainerSpec& c) { c.readiness_probe = exec_probe(1, 1); });
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  h.runtime.exec_exit = 1;
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) == nullptr; }));
  CHECK(h.runtime.started.size() == 1);
  CHECK(h.runtime.removed.empty());
  auto views = h.reconciler->instances();
  REQUIRE(views.size() == 1);
  CHECK(views[0].phase == "unready");
  h.runtime.exec_exit = 0;
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  CHECK(h.runtime.started.size() == 1);
}

TEST_CASE("deleting a service stops and removes its instance and its route") {
  Harness h;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  bool done = false;
  REQUIRE(store_delete(*h.store, s).ok());
  h.reconciler->service_deleted("default", "hello", [&] { done = true; });
  CHECK(h.routes.load()->find(kHost) == nullptr);
  REQUIRE(h.run_until([&] { return done; }));
  CHECK(h.runtime.live() == 0);
  CHECK(h.store->list_instances()->empty());
  CHECK(h.reconciler->counts().instances == 0);
}

TEST_CASE("a failed removal keeps the instance terminating, with its error, until a retry works") {
  Harness h;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  std::string id = h.runtime.started.at(0);
  h.runtime.fail_remove = 2;
  bool done = false;
  REQUIRE(store_delete(*h.store, s).ok());
  h.reconciler->service_deleted("default", "hello", [&] { done = true; });
  REQUIRE(h.run_until([&] { return done; }));
  auto views = h.reconciler->instances();
  REQUIRE(views.size() == 1);
  CHECK(views[0].record.id == id);
  CHECK(views[0].phase == "terminating");
  CHECK(views[0].last_error.find("Too many open files") != std::string::npos);
  CHECK(h.reconciler->cleanup().terminating == 1);
  CHECK(h.reconciler->counts().instances == 1);  // still counted: the container may still run
  auto records = h.store->list_instances();
  REQUIRE(records->size() == 1);  // a restart would remove it too
  CHECK(records->at(0).state == InstanceState::kStopping);
  // Retried with a backoff (20 ms, then 40 ms) until it goes.
  REQUIRE(h.run_until([&] { return h.reconciler->instances().empty(); }));
  CHECK(h.runtime.fail_remove == 0);
  CHECK(h.runtime.live() == 0);
  CHECK(h.store->list_instances()->empty());
  CHECK(h.reconciler->cleanup().terminating == 0);
}

TEST_CASE("the orphan sweep removes containers no instance tracks, and no others") {
  auto options = Harness::fast_options();
  options.orphan_sweep = 30ms;
  Harness h(options);
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  h.runtime.set_strays({"hello-00001-stray1", "gone-00003-stray2"});
  REQUIRE(h.run_until([&] { return h.reconciler->cleanup().strays_removed == 2; }));
  CHECK(h.runtime.stray_count() == 0);
  CHECK(h.runtime.live() == 1);  // the tracked instance kept running
  CHECK(h.endpoint(kHost) != nullptr);
  auto sweeps = h.reconciler->cleanup().sweeps;
  REQUIRE(h.run_until([&] { return h.reconciler->cleanup().sweeps > sweeps + 1; }));
  CHECK(h.reconciler->cleanup().strays_removed == 2);
}

TEST_CASE("start adopts instances that still run and removes those that do not") {
  Harness h;
  Service s = make_service("hello");
  Revision r = make_revision(s);
  REQUIRE(store_create(*h.store, s, r).ok());
  // What a previous daemon left: one live instance, one whose container died meanwhile, and a
  // container no record names.
  LaunchSpec live;
  live.container_id = "hello-00001-live";
  live.port = 0;
  h.runtime.listen_on_start = false;
  int live_pid = h.runtime.start(live).value();
  h.runtime.listen_on_start = true;
  // Listen on an ephemeral port for the adopted instance to be probed on.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd, 16);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  REQUIRE(h.store
              ->put_instance({"hello-00001-live", "default", "hello", "hello-00001", port, live_pid,
                              InstanceState::kRunning, 1})
              .ok());
  REQUIRE(h.store
              ->put_instance({"hello-00001-dead", "default", "hello", "hello-00001", 1, 999999,
                              InstanceState::kRunning, 1})
              .ok());
  LaunchSpec stray;
  stray.container_id = "stray-00001-x";
  (void)h.runtime.start(stray);
  h.runtime.started.clear();

  bool started = false;
  h.reconciler->start([&](Result<void> res) { started = res.ok(); });
  REQUIRE(h.run_until([&] { return started && h.endpoint(kHost) != nullptr; }));
  CHECK(h.endpoint(kHost)->instance_id == "hello-00001-live");
  CHECK(h.runtime.started.empty());  // nothing re-created
  CHECK(h.runtime.pid_of("hello-00001-live") == live_pid);
  CHECK(h.runtime.pid_of("stray-00001-x") == 0);
  auto records = h.store->list_instances();
  REQUIRE(records->size() == 1);
  CHECK((*records)[0].id == "hello-00001-live");
  ::close(fd);
}

TEST_CASE("traffic moves to a new revision only once it is ready; the old one then stops") {
  auto options = Harness::fast_options();
  options.readiness_timeout = 300ms;
  Harness h(options);
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  std::string first = h.endpoint(kHost)->instance_id;

  // The new revision does not listen at first: the old one keeps all the traffic.
  h.runtime.listen_on_start = false;
  s.meta.generation = 2;
  s.config_generation = 2;
  s.spec.container.env = {{"A", "2"}};
  Revision r2 = make_revision(s);
  r2.meta.name = "hello-00002";
  REQUIRE(store_update(*h.store, s, r2).ok());
  h.reconciler->service_updated(s, &r2);
  REQUIRE(h.run_until([&] { return h.runtime.started.size() == 2; }));
  h.io.run_for(50ms);
  CHECK(h.endpoint(kHost)->instance_id == first);
  CHECK(h.ready_status(s) == "Unknown");

  // Once a later attempt listens, traffic switches and the first instance is stopped.
  h.runtime.listen_on_start = true;
  REQUIRE(h.run_until([&] {
    const Endpoint* e = h.endpoint(kHost);
    return e && e->instance_id != first;
  }));
  CHECK(h.reconciler->service_status(s).latest_ready_revision == "hello-00002");
  REQUIRE(h.run_until([&] { return h.runtime.pid_of(first) == 0; }));
  CHECK(h.ready_status(s) == "True");
  CHECK(h.reconciler->revision_status("default", "hello-00001").desired_replicas == 0);
}

TEST_CASE("a pinned revision keeps serving while a new revision deploys; a tag gets its own host") {
  Harness h;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  s.meta.generation = 2;
  s.config_generation = 2;
  s.spec.container.env = {{"A", "2"}};
  s.traffic = {{"hello-00001", false, 100, ""}, {"", true, 0, "next"}};
  Revision r2 = make_revision(s);
  r2.meta.name = "hello-00002";
  REQUIRE(store_update(*h.store, s, r2).ok());
  h.reconciler->service_updated(s, &r2);
  // @latest resolves to the latest *ready* revision: the tag moves once hello-00002 is ready.
  REQUIRE(h.run_until([&] {
    const Endpoint* e = h.endpoint("next-hello.default.localhost");
    return e && e->instance_id.rfind("hello-00002-", 0) == 0;
  }));
  CHECK(h.endpoint(kHost)->instance_id.rfind("hello-00001-", 0) == 0);
  auto status = h.reconciler->service_status(s);
  REQUIRE(status.traffic.size() == 2);
  CHECK(status.traffic[0].revision_name == "hello-00001");
  CHECK(status.traffic[1].revision_name == "hello-00002");
  CHECK(status.traffic[1].url == "http://next-hello.default.localhost:8080");
  CHECK(h.runtime.live() == 2);  // the pinned revision and the tagged latest
}

// --- standby instances -------------------------------------------------------------------------

namespace {

std::vector<std::string> standbys_of(FakeRuntime& rt, const std::string& revision) {
  std::vector<std::string> out;
  for (auto& id : rt.standbys())
    if (id.rfind(revision + "-", 0) == 0) out.push_back(id);
  return out;
}

}  // namespace

TEST_CASE("a revision that had an instance keeps a standby, and a cold start starts it") {
  Harness h;
  h.runtime.can_standby = true;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return h.endpoint(kHost) != nullptr; }));
  // Made at the autoscaler's next tick (every 2 s), beside the serving instance.
  REQUIRE(h.run_until([&] { return standbys_of(h.runtime, "hello-00001").size() == 1; }, 5s));
  std::string standby = standbys_of(h.runtime, "hello-00001")[0];
  CHECK(h.reconciler->counts().standby_instances == 1);
  CHECK(h.reconciler->counts().instances == 1);  // a standby is not an instance
  // Made once the reconciler holds it with its pid (a restart adopts it by its record: below).
  REQUIRE(h.run_until([&] {
    for (const auto& i : h.reconciler->instances())
      if (i.record.id == standby && i.phase == "standby" && i.record.pid > 0) return true;
    return false;
  }));

  // More demand than one instance holds: the next instance is the standby, started, not made.
  auto made = h.runtime.started.size();
  h.reconciler->demand("default", "hello-00001", 100);
  REQUIRE(h.run_until([&] {
    for (const auto& i : h.reconciler->instances())
      if (i.record.id == standby && i.phase == "ready") return true;
    return false;
  }));
  CHECK(h.runtime.started_standbys() == std::vector<std::string>{standby});
  CHECK(h.runtime.started.size() == made);
  // Another standby is made for the next one.
  REQUIRE(h.run_until([&] { return standbys_of(h.runtime, "hello-00001").size() == 1; }, 5s));
  CHECK(standbys_of(h.runtime, "hello-00001")[0] != standby);
}

TEST_CASE("a restart adopts a waiting standby; superseded and deleted revisions' standbys go") {
  Harness h;
  h.runtime.can_standby = true;
  Service s = h.create("hello");
  REQUIRE(h.run_until([&] { return standbys_of(h.runtime, "hello-00001").size() == 1; }, 6s));
  std::string standby = standbys_of(h.runtime, "hello-00001")[0];
  int pid = h.runtime.pid_of(standby);
  REQUIRE(h.run_until([&] {
    for (const auto& i : h.reconciler->instances())
      if (i.record.id == standby && i.record.pid == pid) return true;
    return false;
  }));
  h.io.run_for(20ms);  // its record, with the pid, is written

  // The daemon dies (kill -9: nothing is stopped) and a new one starts on the same store.
  h.reconciler->shutdown();
  h.io.run_for(50ms);
  h.reconciler =
      std::make_unique<Reconciler>(h.io, h.store_thread, h.blocking, *h.store, h.runtime, h.routes,
                                   std::make_shared<RealClock>(), Harness::fast_options());
  bool started = false;
  h.reconciler->start([&](Result<void> res) { started = res.ok(); });
  REQUIRE(h.run_until([&] { return started && h.endpoint(kHost) != nullptr; }));
  CHECK(h.runtime.pid_of(standby) == pid);  // kept, not made again
  CHECK(h.reconciler->counts().standby_instances == 1);
  CHECK(standbys_of(h.runtime, "hello-00001") == std::vector<std::string>{standby});

  // A new revision takes all the traffic: the old one's standby goes, the new one gets its own.
  s.meta.generation = 2;
  s.config_generation = 2;
  s.spec.container.env = {{"A", "2"}};
  Revision r2 = make_revision(s);
  r2.meta.name = "hello-00002";
  REQUIRE(h.on_store([&] { return store_update(*h.store, s, r2); }).ok());
  h.reconciler->service_updated(s, &r2);
  REQUIRE(h.run_until([&] { return h.runtime.pid_of(standby) == 0; }, 6s));
  REQUIRE(h.run_until([&] { return standbys_of(h.runtime, "hello-00002").size() == 1; }, 6s));
  CHECK(standbys_of(h.runtime, "hello-00001").empty());

  // Deleting the service removes its standby with its instances, and their records.
  REQUIRE(h.on_store([&] { return store_delete(*h.store, s); }).ok());
  bool done = false;
  h.reconciler->service_deleted("default", "hello", [&] { done = true; });
  REQUIRE(h.run_until([&] { return done; }));
  CHECK(h.runtime.live() == 0);
  CHECK(h.store->list_instances()->empty());
  CHECK(h.reconciler->counts().standby_instances == 0);
}

TEST_CASE("the standby annotation and the daemon's caps bound how many standbys are kept") {
  auto options = Harness::fast_options();
  options.standby_per_revision = 2;
  options.standby_max = 3;
  Harness h(options);
  h.runtime.can_standby = true;
  auto standby = [](const std::string& n) {
    return [n](RevisionTemplate& t) { t.annotations["autoscaling.elafros.dev/standby"] = n; };
  };
  // Asked for 2 and 5 (the per-revision cap makes it 2), none, and unset (1 while active).
  h.create_template("two", standby("2"));
  h.create_template("five", standby("5"));
  h.create_template("none", standby("0"));
  h.create_template("plain", {});
  REQUIRE(h.run_until([&] { return h.runtime.standbys().size() == 3; }, 8s));
  h.io.run_for(2500ms);  // another tick: no more than the machine's 3
  CHECK(h.runtime.standbys().size() == 3);
  CHECK(standbys_of(h.runtime, "none-00001").empty());
  // The annotated ones come first: 2 + 1 of the 4 they ask for; the unannotated one gets none.
  CHECK(standbys_of(h.runtime, "two-00001").size() + standbys_of(h.runtime, "five-00001").size() ==
        3);
  CHECK(standbys_of(h.runtime, "plain-00001").empty());
}

TEST_CASE("the standby annotation is validated") {
  RevisionTemplate t;
  t.annotations["autoscaling.elafros.dev/standby"] = "1";
  CHECK(autoscaling_spec(t, {}).value().standby == 1);
  CHECK(autoscaling_spec(RevisionTemplate{}, {}).value().standby == -1);
  t.annotations["autoscaling.elafros.dev/standby"] = "many";
  auto bad = autoscaling_spec(t, {});
  REQUIRE(!bad);
  CHECK_THAT(bad.error().message, Catch::Contains("must be a whole number from 0 to 64"));
  RevisionTemplate u;
  u.annotations["autoscaling.elafros.dev/standbys"] = "1";
  REQUIRE(!autoscaling_spec(u, {}));
  CHECK_THAT(autoscaling_spec(u, {}).error().message,
             Catch::Contains("known: autoscaling.elafros.dev/standby"));
}
