#include "reconciler.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>

#include "elafros/config_refs.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "elafros/traffic.hpp"
#include "elafros/usage.hpp"
#include "kpa.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;

namespace elafros {
namespace {

// "10.63.0.2" as an IPv4 address in host order, as the routing table holds it; 0 (the
// loopback) for "" or anything else.
std::uint32_t ipv4_host_order(const std::string& address) {
  if (address.empty()) return 0;
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address_v4(address, ec);
  return ec ? 0 : a.to_uint();
}

std::int64_t unix_now(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.wall().time_since_epoch()).count();
}

std::string random_hex(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += kHex[rng() % 16];
  return s;
}

std::string key(const std::string& ns, const std::string& name) {
  return ns + "/" + name;
}

enum class Phase { kStarting, kReady, kStopping, kExited };

struct Instance {
  InstanceRecord record;
  Phase phase = Phase::kStarting;
  std::shared_ptr<EndpointStats> stats = std::make_shared<EndpointStats>();
  std::unique_ptr<asio::posix::stream_descriptor> pidfd;
  std::vector<std::unique_ptr<asio::posix::stream_descriptor>> sidecar_pidfds;
  bool stop_requested = false;
  bool exited = false;
  bool was_serving = false;       // it was ready when its stop began: drain it
  bool in_runtime_start = false;  // runc is creating it on the blocking pool right now
  bool unready = false;           // ready once, then its readiness probe failed: out of the routes
  std::vector<std::shared_ptr<asio::steady_timer>> probe_timers;  // cancelled when it stops
  int exit_code = -1;
  std::chrono::steady_clock::time_point ready_at{};
  std::int64_t created_ms = 0;  // wall clock, for usage (0 for adopted ones: created_unix)
  bool standby = false;         // made and waiting to be started (RevisionState::standbys)
};
using InstancePtr = std::shared_ptr<Instance>;

struct RevisionState {
  Revision revision;
  std::vector<InstancePtr> instances;
  Condition ready{"Ready"};
  Condition healthy{"ContainerHealthy"};
  Condition resources{"ResourcesAvailable"};
  int limited_to = -1, wanted = -1;  // the last quota-bound scale, for its message
  int restarts = 0;
  RevisionStatus::Restart last_restart;  // why the last instance that ran was replaced
  std::chrono::milliseconds backoff{0};
  bool restart_pending = false;
  bool retired = false;  // its service is being deleted
  // Autoscaling: exact load from the proxy, the KPA, and its latest decision.
  std::shared_ptr<RevisionStats> stats = std::make_shared<RevisionStats>();
  std::optional<Kpa> kpa;
  int desired = 0;
  bool panic = false;
  RevisionStats::Sample last_sample;
  std::int64_t last_sample_ns = 0;
  // The proxy's request counters every 5 s for the last minute: live status subtracts the
  // oldest from the current ones.
  struct Activity {
    std::chrono::steady_clock::time_point at;
    std::uint64_t answered = 0;
    std::uint64_t errors = 0;
    Histogram::Snapshot latency;
    std::uint64_t cold_starts = 0;
    Histogram::Snapshot cold_latency;
    double active_seconds = 0;
  };
  std::deque<Activity> activity;
  Activity reported;                 // the request counters usage accounting has recorded
  double gone_instance_seconds = 0;  // the lifetimes of its instances that went (for /metrics)
  std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
  // Standby instances: made (runc create), waiting for a cold start to start one. In live_ too,
  // but never in `instances` until started.
  std::vector<InstancePtr> standbys;
  std::optional<std::chrono::steady_clock::time_point> last_active;  // it last had an instance
  std::chrono::steady_clock::time_point standby_retry_at{};          // after a failed create
};
using RevisionPtr = std::shared_ptr<RevisionState>;

struct ServiceState {
  Service service;
  std::vector<RevisionPtr> revisions;  // in creation order
  // The traffic the proxy serves. It moves to the desired traffic (spec.traffic resolved) only
  // once every revision that gets traffic or a tag has a ready instance: zero-downtime updates.
  std::vector<ResolvedTrafficTarget> published;
};

bool same_targets(const std::vector<ResolvedTrafficTarget>& a,
                  const std::vector<ResolvedTrafficTarget>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].revision_name != b[i].revision_name || a[i].percent != b[i].percent ||
        a[i].tag != b[i].tag || a[i].latest_revision != b[i].latest_revision)
      return false;
  return true;
}

bool routes_to(const std::vector<ResolvedTrafficTarget>& targets, const std::string& revision) {
  for (const auto& t : targets)
    if (t.revision_name == revision && (t.percent > 0 || !t.tag.empty())) return true;
  return false;
}

}  // namespace

class Reconciler::Impl : public std::enable_shared_from_this<Reconciler::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, asio::thread_pool& blocking,
       Store& store, ContainerRuntime& runtime, RoutingSnapshot& routes, ClockPtr clock,
       ReconcilerOptions options)
      : control_(control),
        store_thread_(store_thread),
        blocking_(blocking),
        store_(store),
        runtime_(runtime),
        routes_(routes),
        clock_(std::move(clock)),
        options_(std::move(options)) {}

  // --- recovery -------------------------------------------------------------------------------

  awaitable<Result<void>> recover() {
    recovering_ = true;
    ObjectQuery sq{kServingGroup, "Service", "", "", 0, "", ""};
    auto services = co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects,
                                     static_cast<ObjectStore*>(&store_), sq);
    if (!services) co_return services.error();
    ObjectQuery rq{kServingGroup, "Revision", "", "", 0, "", ""};
    auto revisions = co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects,
                                      static_cast<ObjectStore*>(&store_), rq);
    if (!revisions) co_return revisions.error();
    for (const auto& o : services->items) {
      auto s = service_from_object(o);
      if (!s) co_return s.error();
      if (!meta_string(o, "deletionTimestamp").empty())
        deleting_.emplace_back(s->meta.namespace_, s->meta.name);
      auto& state = services_[key(s->meta.namespace_, s->meta.name)];
      state.service = std::move(s.value());
    }
    ObjectQuery dq{kServingGroup, "DomainMapping", "", "", 0, "", ""};
    auto mappings = co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects,
                                     static_cast<ObjectStore*>(&store_), dq);
    if (!mappings) co_return mappings.error();
    for (const auto& o : mappings->items) {
      auto ref = json_path_value(o, ".spec.ref.name");
      if (ref.is_string())
        domain_mappings_[meta_string(o, "name")].push_back(
            {meta_string(o, "namespace"), std::string(ref.get_string()),
             parse_rfc3339(meta_string(o, "creationTimestamp")).value_or(0)});
    }
    std::vector<Revision> stored;
    for (const auto& o : revisions->items) {
      auto r = revision_from_object(o);
      if (!r) co_return r.error();
      stored.push_back(std::move(r.value()));
    }
    // Creation order: the configuration generation each was made at, then the time.
    std::stable_sort(stored.begin(), stored.end(), [](const Revision& a, const Revision& b) {
      return std::tie(a.meta.generation, a.meta.created_unix) <
             std::tie(b.meta.generation, b.meta.created_unix);
    });
    for (auto& r : stored)
      if (auto it = services_.find(key(r.meta.namespace_, r.service)); it != services_.end())
        it->second.revisions.push_back(make_revision(std::move(r)));
    auto records = co_await offload(store_thread_.get_executor(), &Store::list_instances, &store_);
    if (!records) co_return records.error();

    std::set<std::string> known;
    for (auto& rec : records.value()) {
      known.insert(rec.id);
      RevisionPtr rev = find_revision(rec.namespace_, rec.revision);
      ContainerStatus st =
          co_await offload(blocking_.get_executor(), &ContainerRuntime::status, &runtime_, rec.id);
      bool network_ok = true;
      const bool standby = rec.state == InstanceState::kStandby;
      if (rev && (st.created || st.running) && runtime_.isolated_network()) {
        // Its network namespace must still be there, attached to the bridge made anew.
        auto adopted = co_await offload(blocking_.get_executor(), &ContainerRuntime::adopt_network,
                                        &runtime_, rec.id, rec.address);
        if (!adopted) spdlog::warn("instance {}: {}", rec.id, adopted.error().message);
        network_ok = adopted.ok() && !rec.address.empty();
      }
      if (standby && rev && st.created && network_ok && st.pid == rec.pid && rec.pid > 0) {
        // A standby still waiting: kept, for the balance to keep or remove.
        auto inst = std::make_shared<Instance>();
        inst->record = rec;
        inst->standby = true;
        used_ports_.insert(rec.port);
        if (!watch_exit(inst)) {
          co_await discard(rec);
          continue;
        }
        rev->standbys.push_back(inst);
        live_[rec.id] = inst;
        spdlog::info("adopted standby instance {} of revision {} (pid {})", rec.id, rec.revision,
                     rec.pid);
      } else if (rev && st.running && network_ok && st.pid == rec.pid &&
                 rec.state != InstanceState::kStopping) {
        // (A standby started just before the crash, its record not rewritten yet, is one too.)
        rec.state = InstanceState::kRunning;
        auto inst = std::make_shared<Instance>();
        inst->record = rec;
        used_ports_.insert(rec.port);
        rev->instances.push_back(inst);
        if (!watch_exit(inst)) {
          rev->instances.pop_back();
          co_await discard(rec);
          continue;
        }
        live_[rec.id] = inst;
        spdlog::info("adopted instance {} of revision {} (pid {}, port {})", rec.id, rec.revision,
                     rec.pid, rec.port);
        if (!rev->revision.spec.sidecars.empty()) co_await watch_sidecars(rev, inst);
        asio::co_spawn(control_, probe(rev, inst), asio::detached);
      } else {
        spdlog::info("removing {}instance {} of revision {}: {}", standby ? "standby " : "", rec.id,
                     rec.revision,
                     !rev         ? "its revision is gone"
                     : st.running ? "it is being stopped"
                                  : (standby ? "it is not waiting any more" : "it no longer runs"));
        co_await discard(rec);
      }
    }
    // Containers in our runc root that no record names: a crash between start and record.
    auto ids = co_await offload(blocking_.get_executor(), &ContainerRuntime::list, &runtime_);
    for (const auto& id : ids)
      if (!known.count(id)) co_await discard(stray_record(id));
    // Network namespaces and veths no adopted instance holds (docs/architecture.md, "Faults").
    (void)co_await offload(blocking_.get_executor(), &ContainerRuntime::sweep_networks, &runtime_);
    co_await sweep_claims(shared_from_this());

    recovering_ = false;
    for (auto& [k, s] : services_) {
      s.published = desired(s);
      // Keep what was adopted until the autoscaler has measured the load itself.
      for (auto& rev : s.revisions) {
        rev->desired = std::max(rev->desired, static_cast<int>(rev->instances.size()));
        if (!rev->instances.empty() || !rev->standbys.empty()) rev->last_active = clock_->now();
        if (rev->instances.empty() && rev->revision.ever_ready) {
          rev->kpa->at_zero(clock_->now());
          rev->desired = rev->kpa->decide(clock_->now(), 0).desired;
        }
      }
    }
    publish_routes();
    for (auto& [k, s] : services_) reconcile(s);
    co_return Result<void>{};
  }

  static InstanceRecord stray_record(const std::string& id) {
    InstanceRecord rec;
    rec.id = id;
    return rec;
  }

  // Removes an instance's container and its record. When the removal fails (runc errs or hangs,
  // EMFILE, EBUSY on the unmount), the instance is kept as terminating, its record and port with
  // it, and the removal is retried with a backoff until it succeeds. True when it is gone now.
  awaitable<bool> discard(InstanceRecord rec) {
    auto r =
        co_await offload(blocking_.get_executor(), &ContainerRuntime::remove, &runtime_, rec.id);
    if (r) {
      (void)co_await offload(store_thread_.get_executor(), &Store::delete_instance, &store_,
                             rec.id);
      co_return true;
    }
    auto [it, fresh] = terminating_.try_emplace(rec.id);
    Terminating& t = it->second;
    if (fresh) t.record = rec;
    t.last_error = r.error().message;
    ++t.attempts;
    spdlog::warn("removing instance {} failed; it stays terminating and is retried: {}", rec.id,
                 t.last_error);
    if (!rec.namespace_.empty()) {
      rec.state = InstanceState::kStopping;  // a restart removes it too, whatever runs then
      (void)co_await offload(store_thread_.get_executor(), &Store::put_instance, &store_, rec);
    }
    if (fresh) asio::co_spawn(control_, retry_removal(shared_from_this(), rec.id), asio::detached);
    co_return false;
  }

  awaitable<void> retry_removal(std::shared_ptr<Impl> /*keeps this alive*/, std::string id) {
    std::chrono::milliseconds backoff = options_.backoff_initial;
    asio::steady_timer timer(control_);
    boost::system::error_code ec;
    for (;;) {
      timer.expires_after(backoff);
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (stopped_) co_return;  // the next start removes it: its record says it was stopping
      auto r = co_await offload(blocking_.get_executor(), &ContainerRuntime::remove, &runtime_, id);
      auto it = terminating_.find(id);
      if (it == terminating_.end()) co_return;
      if (r) {
        spdlog::info("removed instance {} after {} failed attempts", id, it->second.attempts);
        (void)co_await offload(store_thread_.get_executor(), &Store::delete_instance, &store_, id);
        if (it->second.record.port > 0 && !live_port(it->second.record.port))
          used_ports_.erase(it->second.record.port);
        terminating_.erase(id);
        co_return;
      }
      it->second.last_error = r.error().message;
      ++it->second.attempts;
      backoff = std::min(backoff * 2, options_.removal_backoff_max);
    }
  }

  bool live_port(int port) const {
    for (const auto& [id, inst] : live_)
      if (inst->record.port == port) return true;
    return false;
  }

  // Like the kubelet's orphan GC: what runc and the bundles hold that no instance tracks (a crash
  // between a start and its record, a runc that finished after the daemon gave up on it) goes.
  awaitable<void> sweep_loop(std::shared_ptr<Impl> /*keeps this alive*/) {
    asio::steady_timer timer(control_);
    boost::system::error_code ec;
    while (!stopped_) {
      timer.expires_after(options_.orphan_sweep);
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (stopped_) co_return;
      if (recovering_) continue;
      co_await sweep();
    }
  }

  awaitable<void> sweep() {
    auto ids = co_await offload(blocking_.get_executor(), &ContainerRuntime::list, &runtime_);
    ++sweeps_;
    for (const auto& id : ids) {
      if (stopped_ || recovering_) co_return;
      if (live_.count(id) || terminating_.count(id)) continue;
      spdlog::warn("removing stray container {}: no instance tracks it (orphan sweep)", id);
      // Counted once gone (a failed removal is terminating, and counted there).
      if (co_await discard(stray_record(id))) ++strays_removed_;
    }
    if (!stopped_ && !recovering_) co_await sweep_claims(shared_from_this());
  }

  // --- desired state --------------------------------------------------------------------------

  RevisionPtr make_revision(Revision r) {
    auto rev = std::make_shared<RevisionState>();
    rev->revision = std::move(r);
    rev->ready.last_transition_unix = unix_now(*clock_);
    if (rev->revision.ever_ready) rev->ready.status = "True";  // it served before; it may again
    auto spec = autoscaling_spec(rev->revision.spec, options_.autoscaling);
    if (!spec) {
      // Validated when the service was written; a stored one from an older version falls back.
      spdlog::warn("revision {}: {}; using the default autoscaling settings",
                   rev->revision.meta.name, spec.error().message);
      spec = autoscaling_spec(RevisionTemplate{}, options_.autoscaling);
    }
    rev->kpa.emplace(spec.value(), clock_->now());
    if (rev->revision.ever_ready) rev->kpa->reached_initial_scale();
    rev->desired = rev->kpa->decide(clock_->now(), 0).desired;
    activate(rev);
    return rev;
  }

  void created(const Service& service, const Revision& revision) {
    auto& state = services_[key(service.meta.namespace_, service.meta.name)];
    state.service = service;
    state.revisions.push_back(make_revision(revision));
    publish_routes(service.meta.namespace_, service.meta.name);
    reconcile(state);
  }

  void updated(const Service& service, const Revision* new_revision) {
    auto it = services_.find(key(service.meta.namespace_, service.meta.name));
    if (it == services_.end()) return;
    ServiceState& state = it->second;
    state.service = service;
    if (new_revision) state.revisions.push_back(make_revision(*new_revision));
    reconcile(state);
  }

  void revision_deleted(const std::string& ns, const std::string& name) {
    revision_index_.erase(key(ns, name));
    RevisionPtr rev = find_revision(ns, name);
    if (!rev) return;
    ServiceState* s = service_of(*rev);
    rev->retired = true;
    if (s) {
      auto& v = s->revisions;
      v.erase(std::remove(v.begin(), v.end(), rev), v.end());
    }
    for (auto& inst : std::vector<InstancePtr>(rev->instances)) stop_later(rev, inst);
    for (auto& inst : std::vector<InstancePtr>(rev->standbys)) retire_standby(rev, inst);
  }

  // 'elafros system stop-all': every instance stops (drained, SIGTERM, SIGKILL after the grace)
  // and none starts until resume() or a daemon restart; `done` once they are all gone.
  void halt(std::function<void()> done) {
    halted_ = true;
    publish_routes();
    asio::co_spawn(control_, halt_all(shared_from_this(), std::move(done)), asio::detached);
  }

  awaitable<void> halt_all(std::shared_ptr<Impl> /*keeps this alive*/, std::function<void()> done) {
    for (auto& [k, s] : services_)
      for (auto& rev : s.revisions) {
        for (auto& inst : std::vector<InstancePtr>(rev->instances)) stop_later(rev, inst);
        for (auto& inst : std::vector<InstancePtr>(rev->standbys)) retire_standby(rev, inst);
      }
    auto deadline =
        clock_->now() + options_.drain_timeout + options_.stop_grace + std::chrono::seconds(10);
    auto any = [this] {
      for (const auto& [k, s] : services_)
        for (const auto& rev : s.revisions)
          if (!rev->instances.empty()) return true;
      return false;
    };
    while (any() && clock_->now() < deadline) co_await pause();
    spdlog::info("stopped every instance ('elafros system stop-all')");
    done();
  }

  void resume() {
    if (!halted_) return;
    halted_ = false;
    publish_routes();
    for (auto& [k, s] : services_) reconcile(s);
    spdlog::info("instances start again ('elafros system start-all')");
  }

  bool halted() const { return halted_; }

  void deleted(const std::string& ns, const std::string& name, std::function<void()> done) {
    auto it = services_.find(key(ns, name));
    if (it == services_.end()) return done();
    ServiceState state = std::move(it->second);
    services_.erase(it);
    for (const auto& rev : state.revisions) revision_index_.erase(key(ns, rev->revision.meta.name));
    publish_routes(ns, name);
    asio::co_spawn(control_, retire(std::move(state), std::move(done)), asio::detached);
  }

  awaitable<void> retire(ServiceState state, std::function<void()> done) {
    for (auto& rev : state.revisions) {
      rev->retired = true;
      for (auto& inst : std::vector<InstancePtr>(rev->standbys)) {
        forget_standby(*rev, inst);
        if (inst->stop_requested) continue;
        inst->stop_requested = true;
        co_await drop_standby(inst);
      }
      auto instances = rev->instances;
      for (auto& inst : instances) co_await stop(rev, inst);
    }
    done();
  }

  // spec.traffic with @latest resolved to the latest ready revision.
  std::vector<ResolvedTrafficTarget> desired(const ServiceState& s) const {
    RevisionPtr lr = latest_ready(s);
    return resolve_traffic(s.service.traffic, lr ? lr->revision.meta.name : "");
  }

  // Brings a service's instances and served traffic toward its desired state. Idempotent; called
  // whenever something about the service changes.
  void reconcile(ServiceState& s) {
    // While start() adopts, an adopted instance that proves ready must not make us start one
    // for an instance not adopted yet: start() reconciles everything once it is done.
    if (s.revisions.empty() || stopped_ || recovering_) return;
    auto want = desired(s);
    bool switchable = !want.empty();
    bool moving = !same_targets(want, s.published);
    for (const auto& t : want)
      if ((t.percent > 0 || !t.tag.empty())) {
        RevisionPtr rev = find_in(s, t.revision_name);
        switchable = switchable && rev && has_ready(*rev);
        // Traffic is about to move to it: bring it up (from zero) before the switch.
        if (moving && rev && !has_ready(*rev)) {
          rev->kpa->poke(clock_->now());
          rev->desired = std::max(rev->desired, 1);
        }
      }
    if (switchable && !same_targets(want, s.published)) {
      s.published = want;
      publish_routes(s.service.meta.namespace_, s.service.meta.name);
    }
    for (auto& rev : s.revisions) scale_to(rev, desired_count(s, rev, want));
  }

  // How many instances a revision should have now: the autoscaler's decision while it gets
  // traffic or a tag; its initial scale while the latest revision proves it can become ready;
  // none otherwise.
  int desired_count(const ServiceState& s, const RevisionPtr& rev,
                    const std::vector<ResolvedTrafficTarget>& want) const {
    if (halted_) return 0;  // 'elafros system stop-all'
    const std::string& name = rev->revision.meta.name;
    if (routes_to(want, name) || routes_to(s.published, name)) return rev->desired;
    if (rev == s.revisions.back() && !rev->revision.ever_ready) return std::max(1, rev->desired);
    return 0;
  }

  static bool is_live(const InstancePtr& inst) {
    return !inst->stop_requested &&
           (inst->phase == Phase::kStarting || inst->phase == Phase::kReady);
  }

  NamespaceUsage namespace_usage(const std::string& ns, const Revision* except = nullptr) const {
    NamespaceUsage u;
    for (const auto& [k, s] : services_) {
      if (!ns.empty() && s.service.meta.namespace_ != ns) continue;
      for (const auto& r : s.revisions) {
        if (&r->revision == except) continue;
        const PodResources pod = pod_resources(r->revision.spec);
        for (const auto& inst : r->instances) {
          if (!is_live(inst)) continue;
          ++u.instances;
          u.limits_cpu_millis += pod.limits_cpu_millis;
          u.limits_memory_bytes += pod.limits_memory_bytes;
          u.requests_cpu_millis += pod.requests_cpu_millis;
          u.requests_memory_bytes += pod.requests_memory_bytes;
        }
      }
    }
    return u;
  }

  // The most instances the revision may have under its namespace's quotas and the machine's
  // cap, and which limit binds ("" when none does).
  std::pair<int, std::string> allowed(const RevisionPtr& rev, int n) const {
    int most = n;
    std::string why;
    auto bound = [&most, &why](std::int64_t can, std::string what) {
      if (can < most) {
        most = static_cast<int>(std::max<std::int64_t>(0, can));
        why = std::move(what);
      }
    };
    if (options_.max_instances > 0) {
      NamespaceUsage all = namespace_usage("", &rev->revision);
      bound(options_.max_instances - all.instances,
            fmt::format("the machine's max-instances {}", options_.max_instances));
    }
    InstanceQuota q =
        options_.quota ? options_.quota(rev->revision.meta.namespace_) : InstanceQuota{};
    if (!q.any()) return {most, why};
    NamespaceUsage others = namespace_usage(rev->revision.meta.namespace_, &rev->revision);
    const PodResources pod = pod_resources(rev->revision.spec);
    std::int64_t cpu = pod.limits_cpu_millis;
    std::int64_t mem = pod.limits_memory_bytes;
    if (q.instances >= 0)
      bound(q.instances - others.instances, fmt::format("instances {} ({})", q.instances, q.names));
    if (q.limits_cpu_millis >= 0 && cpu > 0)
      bound((q.limits_cpu_millis - others.limits_cpu_millis) / cpu,
            fmt::format("limits.cpu {}m ({})", q.limits_cpu_millis, q.names));
    if (q.limits_memory_bytes >= 0 && mem > 0)
      bound((q.limits_memory_bytes - others.limits_memory_bytes) / mem,
            fmt::format("limits.memory {}Mi ({})", q.limits_memory_bytes >> 20, q.names));
    return {most, why};
  }

  // Starts or stops instances until `n` are starting or ready (no more than quotas allow).
  // Stops the ones not ready yet first, then the least busy.
  void scale_to(const RevisionPtr& rev, int n) {
    auto [most, why] = allowed(rev, n);
    if (most < n) {
      if (rev->resources.reason != "QuotaExceeded" || rev->limited_to != most || rev->wanted != n) {
        rev->limited_to = most;
        rev->wanted = n;
        // set_condition republishes: the activator's 503 names the limit.
        set_condition(*rev, rev->resources, "False", "QuotaExceeded",
                      fmt::format("wanted {}, quota allows {} ({})", n, most, why));
        spdlog::warn("revision {}: wanted {} instances, quota allows {} ({})",
                     rev->revision.meta.name, n, most, why);
      }
      n = most;
    } else if (rev->resources.reason == "QuotaExceeded") {
      set_condition(*rev, rev->resources, "True", "", "");
    }
    std::vector<InstancePtr> live_now;
    for (const auto& inst : rev->instances)
      if (is_live(inst)) live_now.push_back(inst);
    int have = static_cast<int>(live_now.size());
    if (have < n && !rev->restart_pending && !rev->retired && !stopped_) {
      for (int i = have; i < n; ++i) launch_later(rev);
    } else if (have > n) {
      std::stable_sort(live_now.begin(), live_now.end(),
                       [](const InstancePtr& a, const InstancePtr& b) {
                         if ((a->phase == Phase::kReady) != (b->phase == Phase::kReady))
                           return a->phase != Phase::kReady;
                         return a->stats->in_flight.load() < b->stats->in_flight.load();
                       });
      for (int i = 0; i < have - n; ++i) stop_later(rev, live_now[static_cast<std::size_t>(i)]);
    }
  }

  static RevisionPtr find_in(const ServiceState& s, const std::string& name) {
    for (const auto& r : s.revisions)
      if (r->revision.meta.name == name) return r;
    return nullptr;
  }

  RevisionPtr find_revision(const std::string& ns, const std::string& name) const {
    for (const auto& [k, s] : services_)
      if (s.service.meta.namespace_ == ns)
        for (const auto& r : s.revisions)
          if (r->revision.meta.name == name) return r;
    return nullptr;
  }

  // --- instance lifecycle ---------------------------------------------------------------------

  int allocate_port() {
    for (int attempt = 0; attempt < 64; ++attempt) {
      asio::ip::tcp::acceptor probe(control_);
      boost::system::error_code ec;
      probe.open(asio::ip::tcp::v4(), ec);
      probe.bind({asio::ip::make_address_v4("127.0.0.1"), 0}, ec);
      if (ec) continue;
      int port = probe.local_endpoint(ec).port();
      if (!ec && used_ports_.insert(port).second) return port;
    }
    return 0;
  }

  // Sets one of a revision's conditions; a change is a status change of its service.
  void set_condition(const RevisionState& rev, Condition& c, const char* status, std::string reason,
                     std::string message) {
    bool changed = c.status != status || c.reason != reason || c.message != message;
    if (c.status != status) c.last_transition_unix = unix_now(*clock_);
    c.status = status;
    c.reason = std::move(reason);
    c.message = std::move(message);
    if (!changed) return;
    status_changed(rev.revision.meta.namespace_, rev.revision.service);
    // The activator answers from these: a revision that cannot serve, or cannot scale further.
    if (&c == &rev.ready || &c == &rev.resources) publish_routes(rev);
  }

  void status_changed(const std::string& ns, const std::string& service) const {
    if (options_.status_changed) options_.status_changed(ns, service);
  }

  // An instance of the revision with its id and port, tracked in live_ from here.
  InstancePtr new_instance(const Revision& r) {
    auto inst = std::make_shared<Instance>();
    inst->record.id = fmt::format("{}-{}", r.meta.name, random_hex(6));
    inst->record.namespace_ = r.meta.namespace_;
    inst->record.service = r.service;
    inst->record.revision = r.meta.name;
    // In a network namespace of its own, an instance listens on its container port (Knative's
    // runtime contract); on the host's network, on a loopback port of its own.
    inst->record.port = runtime_.isolated_network() ? r.spec.container.port() : allocate_port();
    inst->record.created_unix = unix_now(*clock_);
    live_[inst->record.id] = inst;
    return inst;
  }

  // Creates the instance now (so that it counts at once) and starts it in the background: a
  // standby of the revision when one is waiting, else a container made for it.
  void launch_later(const RevisionPtr& rev) {
    activate(rev);
    if (InstancePtr standby = take_standby(*rev)) {
      rev->instances.push_back(standby);
      if (rev->ready.status != "True")
        set_condition(*rev, rev->ready, "Unknown", "Deploying", "starting an instance");
      asio::co_spawn(control_, launch_standby(rev, standby), asio::detached);
      return;
    }
    InstancePtr inst = new_instance(rev->revision);
    inst->created_ms = wall_ms();
    rev->instances.push_back(inst);
    if (rev->ready.status != "True")
      set_condition(*rev, rev->ready, "Unknown", "Deploying", "starting an instance");
    asio::co_spawn(control_, launch(rev, inst), asio::detached);
  }

  // On the store thread.
  Result<ResolvedConfig> resolve_config_now(const RevisionTemplate& t, const std::string& ns) {
    return resolve_config(t, ns, [this, &ns](const std::string& kind, const std::string& name) {
      return store_.get_object(ObjectKey{"", kind, ns, name});
    });
  }

  // What runc gets for an instance of the revision, before its Secrets and ConfigMaps are read.
  static LaunchSpec launch_spec(const Revision& r, const InstanceRecord& record) {
    LaunchSpec spec;
    spec.container_id = record.id;
    spec.namespace_ = r.meta.namespace_;
    spec.service = r.service;
    spec.revision = r.meta.name;
    spec.image_digest = r.image_digest;
    spec.container = r.spec.container;
    spec.port = record.port;
    // Sidecars and init containers: containers of their own, named after the instance.
    auto child = [&](const ContainerSpec& c, const std::string& digest) {
      LaunchSpec one;
      one.container_id = record.id + "_" + c.name;
      one.namespace_ = spec.namespace_;
      one.service = spec.service;
      one.revision = spec.revision;
      one.image_digest = digest;
      one.container = c;
      one.container_name = c.name;
      return one;
    };
    for (std::size_t i = 0; i < r.spec.sidecars.size(); ++i)
      spec.sidecars.push_back(child(
          r.spec.sidecars[i], i < r.sidecar_digests.size() ? r.sidecar_digests[i] : std::string()));
    for (std::size_t i = 0; i < r.spec.init_containers.size(); ++i)
      spec.init_containers.push_back(child(r.spec.init_containers[i], i < r.init_digests.size()
                                                                          ? r.init_digests[i]
                                                                          : std::string()));
    return spec;
  }

  awaitable<void> launch(RevisionPtr rev, InstancePtr inst) {
    const Revision& r = rev->revision;
    if (inst->stop_requested) co_return;

    // Recorded while runc starts it, not before, to keep the store's fsync off the cold path:
    // the store thread runs writes in order, and a crash in between leaves a container that no
    // record names, which the next start removes.
    asio::post(store_thread_, [this, rec = inst->record] {
      if (auto r = store_.put_instance(rec); !r)
        spdlog::warn("recording instance {} failed: {}", rec.id, r.error().message);
    });
    LaunchSpec spec = launch_spec(r, inst->record);
    // Secrets and ConfigMaps are read now, at each start, as Kubernetes does.
    if (uses_config(r.spec)) {
      auto resolved = co_await offload(store_thread_.get_executor(), &Impl::resolve_config_now,
                                       this, r.spec, r.meta.namespace_);
      if (!resolved) {
        if (!inst->stop_requested)
          co_await fail(rev, inst, "CreateContainerConfigError", resolved.error().message, false);
        co_return;
      }
      spec.container.env = std::move(resolved->env);
      spec.volumes = std::move(resolved->volumes);
      for (std::size_t i = 0; i < spec.sidecars.size() && i < resolved->sidecars.size(); ++i) {
        spec.sidecars[i].container.env = std::move(resolved->sidecars[i].env);
        spec.sidecars[i].volumes = std::move(resolved->sidecars[i].volumes);
      }
      for (std::size_t i = 0;
           i < spec.init_containers.size() && i < resolved->init_containers.size(); ++i) {
        spec.init_containers[i].container.env = std::move(resolved->init_containers[i].env);
        spec.init_containers[i].volumes = std::move(resolved->init_containers[i].volumes);
      }
    }
    auto started_at = clock_->now();
    inst->in_runtime_start = true;
    auto pid =
        co_await offload(blocking_.get_executor(), &ContainerRuntime::start, &runtime_, spec);
    inst->in_runtime_start = false;
    // stop() may have been asked for meanwhile; it waited for the start and finishes the job.
    if (!pid) {
      const std::string& why = pid.error().message;
      std::string reason =
          why.rfind("init container", 0) == 0 ? "InitContainerFailed" : "ContainerStartFailed";
      if (!inst->stop_requested) co_await fail(rev, inst, std::move(reason), why, false);
      co_return;
    }
    inst->record.pid = pid.value();
    inst->record.state = InstanceState::kRunning;
    if (runtime_.isolated_network()) inst->record.address = runtime_.address(inst->record.id);
    if (inst->stop_requested) {
      watch_exit(inst);  // so that stop() sees the exit it causes
      co_return;
    }
    spdlog::info(
        "started instance {} of revision {} (pid {}, port {}) in {} ms", inst->record.id,
        r.meta.name, inst->record.pid, inst->record.port,
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now() - started_at).count());
    if (!watch_exit(inst)) {
      co_await fail(rev, inst, "ExitCode", "the container exited at once", true);
      co_return;
    }
    if (!r.spec.sidecars.empty()) co_await watch_sidecars(rev, inst);
    (void)co_await offload(store_thread_.get_executor(), &Store::put_instance, &store_,
                           inst->record);
    if (inst->stop_requested || inst->exited) co_return;
    co_await probe(rev, inst);
  }

  // --- standby instances (docs/architecture.md, "Standby instances") --------------------------

  // How many standbys the revision should keep now: its annotation's count, or one while it
  // had an instance within standby_idle; none for what a standby cannot hold (init containers,
  // sidecars, Secrets and ConfigMaps, which are read at each start), or when it serves no
  // traffic.
  int standby_wanted(const ServiceState& s, const RevisionState& rev,
                     std::chrono::steady_clock::time_point now) const {
    const RevisionTemplate& t = rev.revision.spec;
    if (halted_ || stopped_ || recovering_ || rev.retired || options_.standby_per_revision <= 0 ||
        !rev.revision.ever_ready || !t.sidecars.empty() || !t.init_containers.empty() ||
        uses_config(t) || !routes_to(s.published, rev.revision.meta.name))
      return 0;
    int n = rev.kpa->spec().standby;
    if (n < 0) n = rev.last_active && now - *rev.last_active <= options_.standby_idle ? 1 : 0;
    return std::min(n, options_.standby_per_revision);
  }

  // Makes and removes standbys toward what each revision wants, within standby_max: revisions
  // whose annotation asks for them first, then the most recently active. One is made at a
  // time, so that a cold start always finds a blocking thread free.
  void balance_standbys() {
    if (stopped_ || recovering_) return;  // a restart adopts what waits
    auto now = clock_->now();
    struct Want {
      RevisionPtr rev;
      int n;
      bool asked;
    };
    std::vector<Want> wants;
    for (const auto& rev : active_) {  // a revision with standbys is active
      const ServiceState* s = rev->retired ? nullptr : service_of(*rev);
      int n = s ? standby_wanted(*s, *rev, now) : 0;
      if (n > 0 || !rev->standbys.empty()) wants.push_back({rev, n, rev->kpa->spec().standby > 0});
    }
    std::stable_sort(wants.begin(), wants.end(), [](const Want& a, const Want& b) {
      if (a.asked != b.asked) return a.asked;
      return a.rev->last_active > b.rev->last_active;
    });
    int budget = std::max(0, options_.standby_max);
    for (auto& w : wants) {
      int keep = std::min(w.n, budget);
      budget -= keep;
      auto& have = w.rev->standbys;
      while (static_cast<int>(have.size()) > keep) retire_standby(w.rev, have.back());
      if (now < w.rev->standby_retry_at) continue;
      while (static_cast<int>(have.size()) < keep && standbys_creating_ == 0) make_standby(w.rev);
    }
  }

  void make_standby(const RevisionPtr& rev) {
    InstancePtr inst = new_instance(rev->revision);
    inst->standby = true;
    inst->record.state = InstanceState::kStandby;
    inst->in_runtime_start = true;
    rev->standbys.push_back(inst);
    activate(rev);
    ++standbys_creating_;
    asio::co_spawn(control_, create_standby(rev, inst), asio::detached);
  }

  awaitable<void> create_standby(RevisionPtr rev, InstancePtr inst) {
    // Recorded first, so that a crash during the create leaves a record the next start removes.
    (void)co_await offload(store_thread_.get_executor(), &Store::put_instance, &store_,
                           inst->record);
    LaunchSpec spec = launch_spec(rev->revision, inst->record);
    auto began = clock_->now();
    auto pid =
        co_await offload(blocking_.get_executor(), &ContainerRuntime::create, &runtime_, spec);
    inst->in_runtime_start = false;
    --standbys_creating_;
    if (!pid) {
      spdlog::warn("revision {}: making a standby instance failed; retried in 30 s: {}",
                   rev->revision.meta.name, pid.error().message);
      rev->standby_retry_at = clock_->now() + std::chrono::seconds(30);
      if (inst->stop_requested) co_return;  // retire_standby() removes it
      forget_standby(*rev, inst);
      inst->stop_requested = true;
      co_await drop_standby(inst);
      co_return;
    }
    inst->record.pid = pid.value();
    if (runtime_.isolated_network()) inst->record.address = runtime_.address(inst->record.id);
    if (inst->stop_requested) co_return;  // retire_standby() waited for the create; it removes it
    if (!watch_exit(inst)) {
      forget_standby(*rev, inst);
      inst->stop_requested = true;
      co_await drop_standby(inst);
      co_return;
    }
    spdlog::info(
        "made standby instance {} of revision {} (pid {}) in {} ms", inst->record.id,
        rev->revision.meta.name, inst->record.pid,
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now() - began).count());
    (void)co_await offload(store_thread_.get_executor(), &Store::put_instance, &store_,
                           inst->record);
    balance_standbys();  // the next one wanted, if any
  }

  static void forget_standby(RevisionState& rev, const InstancePtr& inst) {
    auto& v = rev.standbys;
    v.erase(std::remove(v.begin(), v.end(), inst), v.end());
  }

  // A standby made and watched, for launch_later() to start; null when none is.
  InstancePtr take_standby(RevisionState& rev) const {
    for (auto it = rev.standbys.begin(); it != rev.standbys.end(); ++it) {
      InstancePtr inst = *it;
      if (inst->in_runtime_start || inst->exited || inst->stop_requested || !inst->pidfd) continue;
      rev.standbys.erase(it);
      inst->standby = false;
      inst->phase = Phase::kStarting;
      inst->created_ms = wall_ms();
      return inst;
    }
    return nullptr;
  }

  void retire_standby(const RevisionPtr& rev, const InstancePtr& inst) {
    forget_standby(*rev, inst);
    if (inst->stop_requested) return;
    inst->stop_requested = true;
    asio::co_spawn(control_, drop_standby(inst), asio::detached);
  }

  // Removes a standby's container (its process never ran the app) and its record.
  awaitable<void> drop_standby(InstancePtr inst) {
    while (inst->in_runtime_start) co_await pause();
    cancel_watches(*inst);
    bool gone = co_await discard(inst->record);
    if (auto it = live_.find(inst->record.id); it != live_.end() && it->second == inst)
      live_.erase(it);
    if (gone && !live_port(inst->record.port)) used_ports_.erase(inst->record.port);
    close_watches(*inst);
  }

  // A cold start from a standby: its process is told to go, then probed like any instance. One
  // that cannot start is removed, and the revision is reconciled again (another standby, or a
  // container made for it).
  awaitable<void> launch_standby(RevisionPtr rev, InstancePtr inst) {
    auto began = clock_->now();
    inst->in_runtime_start = true;
    auto started = co_await offload(blocking_.get_executor(), &ContainerRuntime::start_created,
                                    &runtime_, inst->record.id);
    inst->in_runtime_start = false;
    if (!started) {
      spdlog::warn("instance {}: {}; starting another", inst->record.id, started.error().message);
      if (inst->stop_requested) co_return;  // stop() waited for the start; it finishes the job
      inst->stop_requested = true;
      inst->phase = Phase::kExited;
      co_await remove_instance(rev, inst);
      if (auto* s = service_of(*rev); s && !rev->retired && !stopped_) reconcile(*s);
      co_return;
    }
    inst->record.state = InstanceState::kRunning;
    inst->record.created_unix = unix_now(*clock_);
    spdlog::info(
        "started instance {} of revision {} (pid {}, port {}) from standby in {} ms",
        inst->record.id, rev->revision.meta.name, inst->record.pid, inst->record.port,
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now() - began).count());
    // Off the cold path, as launch() does: the store thread writes it in order.
    asio::post(store_thread_, [this, rec = inst->record] {
      if (auto r = store_.put_instance(rec); !r)
        spdlog::warn("recording instance {} failed: {}", rec.id, r.error().message);
    });
    if (inst->stop_requested || inst->exited) co_return;
    co_await probe(rev, inst);
  }

  // A standby's process ended before it was started (killed, or its cgroup's OOM): it goes, and
  // the next balance makes another.
  void standby_exited(const InstancePtr& inst) {
    spdlog::warn("standby instance {} of revision {} exited before it was started; removing it",
                 inst->record.id, inst->record.revision);
    if (RevisionPtr rev = find_revision(inst->record.namespace_, inst->record.revision))
      forget_standby(*rev, inst);
    inst->stop_requested = true;
    asio::co_spawn(control_, drop_standby(inst), asio::detached);
  }

  // Watches the instance's init process through a pidfd; works for adopted instances too.
  bool watch_exit(const InstancePtr& inst) {
    // glibc 2.36's <sys/pidfd.h> lacks C linkage for C++, so call the syscall directly.
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, inst->record.pid, 0));
    if (fd < 0) return false;
    inst->pidfd = std::make_unique<asio::posix::stream_descriptor>(control_, fd);
    inst->pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
                            [self = shared_from_this(), inst](boost::system::error_code ec) {
                              if (ec == asio::error::operation_aborted || self->stopped_) return;
                              self->on_exit(inst);
                            });
    return true;
  }

  // A sidecar shares its instance's lifecycle: one that exits fails the instance, which is
  // replaced with the backoff, as when the serving container exits.
  awaitable<void> watch_sidecars(RevisionPtr rev, InstancePtr inst) {
    auto pids = co_await offload(blocking_.get_executor(), &ContainerRuntime::sidecar_pids,
                                 &runtime_, inst->record.id);
    for (const auto& [name, pid] : pids) {
      int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (fd < 0) {
        spdlog::warn("instance {}: sidecar {} (pid {}) is gone already", inst->record.id, name,
                     pid);
        continue;
      }
      inst->sidecar_pidfds.push_back(
          std::make_unique<asio::posix::stream_descriptor>(control_, fd));
      auto* watched = inst->sidecar_pidfds.back().get();
      watched->async_wait(
          asio::posix::stream_descriptor::wait_read,
          [self = shared_from_this(), rev, inst, name = name,
           watched](boost::system::error_code ec) {
            if (ec == asio::error::operation_aborted || self->stopped_ || inst->stop_requested ||
                inst->phase == Phase::kExited || rev->retired)
              return;
            siginfo_t info{};
            int code = -1;
            if (::waitid(P_PIDFD, static_cast<id_t>(watched->native_handle()), &info,
                         WEXITED | WNOHANG) == 0 &&
                info.si_pid != 0)
              code = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
            spdlog::warn("sidecar {} of instance {} exited with code {}", name, inst->record.id,
                         code);
            inst->phase = Phase::kExited;
            self->publish_routes(*inst);
            asio::co_spawn(self->control_, self->sidecar_exited(rev, inst, name, code),
                           asio::detached);
          });
    }
  }

  awaitable<void> sidecar_exited(RevisionPtr rev, InstancePtr inst, std::string name, int code) {
    std::string child = inst->record.id + "_" + name;
    std::string tail = co_await offload(blocking_.get_executor(), &ContainerRuntime::tail_logs,
                                        &runtime_, child, std::size_t{10});
    std::string message = fmt::format("sidecar \"{}\" exited with code {}{}{}", name,
                                      code >= 0 ? std::to_string(code) : "unknown",
                                      tail.empty() ? "" : "; last output:\n", tail);
    co_await fail(rev, inst, "ExitCode", std::move(message), true);
  }

  void on_exit(const InstancePtr& inst) {
    inst->exited = true;
    cancel_probes(*inst);
    siginfo_t info{};
    // Reap it if it is our child (it is unless adopted after a restart).
    if (::waitid(P_PIDFD, static_cast<id_t>(inst->pidfd->native_handle()), &info,
                 WEXITED | WNOHANG) == 0 &&
        info.si_pid != 0)
      inst->exit_code = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    if (inst->stop_requested) return;  // stop() finishes the job
    if (inst->standby) return standby_exited(inst);
    RevisionPtr rev = find_revision(inst->record.namespace_, inst->record.revision);
    if (!rev) return;
    std::string code = inst->exit_code >= 0 ? std::to_string(inst->exit_code) : "unknown";
    spdlog::warn("instance {} of revision {} exited with code {}", inst->record.id,
                 inst->record.revision, code);
    bool was_ready = inst->phase == Phase::kReady;
    if (was_ready && clock_->now() - inst->ready_at > std::chrono::seconds(10))
      rev->backoff = std::chrono::milliseconds(0);
    // Out of the routes now; the log files are read off the control thread.
    inst->phase = Phase::kExited;
    publish_routes(*inst);
    asio::co_spawn(control_, exited(rev, inst, code), asio::detached);
  }

  awaitable<void> exited(RevisionPtr rev, InstancePtr inst, std::string code) {
    std::string tail = co_await offload(blocking_.get_executor(), &ContainerRuntime::tail_logs,
                                        &runtime_, inst->record.id, std::size_t{10});
    // The cgroup is still there until remove(): did the kernel kill it for its memory?
    ResourceUsage usage = co_await offload(blocking_.get_executor(), &ContainerRuntime::usage,
                                           &runtime_, inst->record.id);
    const std::string& limit = rev->revision.spec.container.limits.memory;
    bool oom = usage.oom_kills > 0;
    std::string message = oom ? fmt::format(
                                    "the container used more memory than its limit{}{} and the "
                                    "kernel killed it (exit "
                                    "code {}); raise resources.limits.memory{}{}",
                                    limit.empty() ? "" : " of ", limit, code,
                                    tail.empty() ? "" : "; last output:\n", tail)
                              : fmt::format("container exited with code {}{}{}", code,
                                            tail.empty() ? "" : "; last output:\n", tail);
    std::string reason = oom ? "OOMKilled" : "ExitCode";
    co_await fail(rev, inst, std::move(reason), std::move(message), true);
  }

  // The instance failed: take it out of service, remove it, and start another after a backoff.
  awaitable<void> fail(RevisionPtr rev, InstancePtr inst, std::string reason, std::string message,
                       bool started) {
    inst->phase = Phase::kExited;
    publish_routes(*rev);
    co_await remove_instance(rev, inst);
    co_await restart_later(rev, std::move(reason), std::move(message), started);
  }

  awaitable<void> restart_later(RevisionPtr rev, std::string reason, std::string message,
                                bool started) {
    rev->restarts += started ? 1 : 0;
    if (started) rev->last_restart = {reason, message, unix_now(*clock_)};
    rev->backoff = rev->backoff.count() == 0 ? options_.backoff_initial
                                             : std::min(rev->backoff * 2, options_.backoff_max);
    // Failing again before it could run a while: a crash loop, restarted ever more slowly.
    if (started && rev->backoff > options_.backoff_initial) {
      auto wait_s = std::chrono::duration_cast<std::chrono::seconds>(rev->backoff).count();
      message = fmt::format(
          "restarted {} times; the next start is in {} s, at {}; last failure: "
          "{}: {}",
          rev->restarts, wait_s, format_rfc3339(unix_now(*clock_) + wait_s), reason, message);
      reason = "CrashLoopBackOff";
    }
    set_condition(*rev, rev->healthy, "False", reason, message);
    if (!rev->revision.ever_ready || !has_ready(*rev))
      set_condition(*rev, rev->ready, "False", reason, message);
    spdlog::warn("revision {}: {}: {}", rev->revision.meta.name, reason, message);
    if (rev->retired || stopped_) co_return;
    rev->restart_pending = true;
    asio::steady_timer timer(control_, rev->backoff);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    rev->restart_pending = false;
    if (rev->retired || stopped_) co_return;
    if (auto* s = service_of(*rev)) reconcile(*s);
  }

  ServiceState* service_of(const RevisionState& rev) {
    auto it = services_.find(key(rev.revision.meta.namespace_, rev.revision.service));
    return it == services_.end() ? nullptr : &it->second;
  }

  // --- probes (Kubernetes' startupProbe, readinessProbe and livenessProbe) ---------------------

  struct Check {
    bool ok = false;
    std::string detail;  // why it failed
  };

  static bool gone(const Instance& inst) { return inst.exited || inst.stop_requested; }

  // What a probe does, for messages.
  static std::string probe_text(const Probe* p, int port) {
    if (p && p->exec()) {
      std::string cmd;
      for (const auto& a : p->exec_command) cmd += (cmd.empty() ? "" : " ") + a;
      return fmt::format("exec '{}'", cmd);
    }
    if (p && p->http) return fmt::format("GET {} on port {}", p->http_path, port);
    return fmt::format("a TCP connect to port {}", port);
  }

  static std::string times(int n) { return n == 1 ? "once" : fmt::format("{} times", n); }

  // The first line of a command's output, for a failure message.
  static std::string first_line(const std::string& out) {
    auto end = out.find('\n');
    std::string line = out.substr(0, std::min<std::size_t>(end, 200));
    return line;
  }

  // One check: a TCP connect to PORT, an HTTP GET answered with 2xx or 3xx, or a command run in
  // the instance that exits with 0. `probe` null: the TCP connect.
  awaitable<Check> check_once(InstancePtr inst, const Probe* probe) {
    Check c;
    if (probe && probe->exec()) {
      std::chrono::milliseconds timeout(1000 * probe->timeout());
      auto r = co_await offload(blocking_.get_executor(), &ContainerRuntime::exec, &runtime_,
                                inst->record.id, probe->exec_command, timeout);
      if (!r) {
        c.detail = r.error().message;
      } else if (r->exit_code != 0) {
        std::string out = first_line(r->out.empty() ? r->err : r->out);
        c.detail =
            fmt::format("it exited with code {}{}{}", r->exit_code, out.empty() ? "" : ": ", out);
      }
      c.ok = r && r->exit_code == 0;
      co_return c;
    }
    boost::system::error_code aec;
    auto address = inst->record.address.empty()
                       ? asio::ip::address_v4::loopback()
                       : asio::ip::make_address_v4(inst->record.address, aec);
    asio::ip::tcp::endpoint ep(address, static_cast<unsigned short>(inst->record.port));
    asio::ip::tcp::socket socket(control_);
    int timeout_s = probe ? probe->timeout() : 1;
    asio::steady_timer deadline(control_, std::chrono::seconds(timeout_s));
    deadline.async_wait([&socket](boost::system::error_code e) {
      if (!e) socket.close();
    });
    boost::system::error_code ec;
    co_await socket.async_connect(ep, asio::redirect_error(use_awaitable, ec));
    if (ec || !probe || !probe->http) {
      deadline.cancel();
      c.ok = !ec;
      if (ec)
        c.detail = ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor
                       ? fmt::format("no connection within {} s", timeout_s)
                       : ec.message();
      co_return c;
    }
    std::string request =
        fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: elafros-probe\r\n",
                    probe->http_path, inst->record.port);
    for (const auto& [name, value] : probe->http_headers) request += name + ": " + value + "\r\n";
    request += "Connection: close\r\n\r\n";
    co_await asio::async_write(socket, asio::buffer(request),
                               asio::redirect_error(use_awaitable, ec));
    std::string head;
    char buf[256];
    while (!ec && head.find("\r\n") == std::string::npos && head.size() < 4096) {
      std::size_t n = co_await socket.async_read_some(asio::buffer(buf),
                                                      asio::redirect_error(use_awaitable, ec));
      head.append(buf, n);
    }
    deadline.cancel();
    // "HTTP/1.1 200 OK"
    if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) {
      c.detail = head.empty() ? fmt::format("no answer within {} s", timeout_s)
                              : "the answer was not HTTP";
      co_return c;
    }
    char klass = head[9];
    c.ok = klass == '2' || klass == '3';
    if (!c.ok) c.detail = fmt::format("it answered {}", first_line(head.substr(9)));
    if (!c.detail.empty() && c.detail.back() == '\r') c.detail.pop_back();
    co_return c;
  }

  // Waits `d`, or less when the instance stops or exits meanwhile (its probe timer is
  // cancelled then). True when the instance is still there to probe.
  awaitable<bool> probe_wait(InstancePtr inst, std::chrono::milliseconds d) {
    if (gone(*inst) || stopped_) co_return false;
    auto timer = std::make_shared<asio::steady_timer>(control_, d);
    inst->probe_timers.push_back(timer);
    boost::system::error_code ec;
    co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
    auto& v = inst->probe_timers;
    v.erase(std::remove(v.begin(), v.end(), timer), v.end());
    co_return !gone(*inst) && !stopped_;
  }

  // Waits until `seconds` after the instance was created (a probe's initialDelaySeconds; an
  // adopted instance may be past it already).
  awaitable<bool> wait_from_start(InstancePtr inst, int seconds) {
    std::int64_t left = started_ms(*inst) + 1000LL * seconds - wall_ms();
    if (seconds <= 0 || left <= 0) co_return !gone(*inst) && !stopped_;
    co_return co_await probe_wait(inst, std::chrono::milliseconds(left));
  }

  static void cancel_probes(Instance& inst) {
    for (auto& t : inst.probe_timers) t->cancel();
  }

  // The probe failed for good: replace the instance (with the backoff) and say why.
  awaitable<void> probe_failed(RevisionPtr rev, InstancePtr inst, std::string reason,
                               std::string message) {
    spdlog::warn("instance {} of revision {}: {}", inst->record.id, rev->revision.meta.name,
                 message);
    co_await stop(rev, inst);
    co_await restart_later(rev, std::move(reason), std::move(message), true);
  }

  // startupProbe: every periodSeconds from initialDelaySeconds until it succeeds; failureThreshold
  // failures in a row restart the instance. True once it succeeded.
  awaitable<bool> startup(RevisionPtr rev, InstancePtr inst) {
    const Probe& p = *rev->revision.spec.container.startup_probe;
    if (!co_await wait_from_start(inst, p.initial_delay_seconds)) co_return false;
    for (int failures = 1;; ++failures) {
      Check c = co_await check_once(inst, &p);
      if (gone(*inst) || stopped_) co_return false;
      if (c.ok) co_return true;
      if (failures >= p.failures()) {
        std::string message = fmt::format(
            "the startup probe ({}) failed {}{} (failureThreshold {}): {}; the instance was "
            "restarted",
            probe_text(&p, inst->record.port), times(failures),
            failures > 1 ? fmt::format(" in a row, {} s apart", p.period()) : "", p.failures(),
            c.detail);
        co_await probe_failed(rev, inst, "StartupProbeFailed", std::move(message));
        co_return false;
      }
      if (!co_await probe_wait(inst, std::chrono::seconds(p.period()))) co_return false;
    }
  }

  // livenessProbe, once started: every periodSeconds from initialDelaySeconds; failureThreshold
  // failures in a row restart the instance, as the kubelet restarts a container.
  awaitable<void> liveness(RevisionPtr rev, InstancePtr inst) {
    const Probe& p = *rev->revision.spec.container.liveness_probe;
    if (!co_await wait_from_start(inst, p.initial_delay_seconds)) co_return;
    int failures = 0;
    for (;;) {
      Check c = co_await check_once(inst, &p);
      if (gone(*inst) || stopped_) co_return;
      failures = c.ok ? 0 : failures + 1;
      if (failures >= p.failures()) {
        std::string message = fmt::format(
            "the liveness probe ({}) failed {}{} (failureThreshold {}): {}; the instance was "
            "restarted",
            probe_text(&p, inst->record.port), times(failures),
            failures > 1 ? fmt::format(" in a row, {} s apart", p.period()) : "", p.failures(),
            c.detail);
        co_await probe_failed(rev, inst, "LivenessProbeFailed", std::move(message));
        co_return;
      }
      if (!co_await probe_wait(inst, std::chrono::seconds(p.period()))) co_return;
    }
  }

  // An explicit readinessProbe keeps running once the instance is ready, every periodSeconds:
  // failureThreshold failures in a row take it out of the routes (it keeps running, and counts
  // as an instance), successThreshold successes bring it back.
  awaitable<void> readiness(RevisionPtr rev, InstancePtr inst) {
    const Probe& p = *rev->revision.spec.container.readiness_probe;
    int failures = 0, successes = 0;
    while (co_await probe_wait(inst, std::chrono::seconds(p.period()))) {
      if (inst->phase != Phase::kReady && !inst->unready) co_return;
      Check c = co_await check_once(inst, &p);
      if (gone(*inst) || stopped_) co_return;
      failures = c.ok ? 0 : failures + 1;
      successes = c.ok ? successes + 1 : 0;
      if (inst->phase == Phase::kReady && failures >= p.failures()) {
        inst->unready = true;
        inst->phase = Phase::kStarting;
        spdlog::warn(
            "instance {} of revision {} is not ready: the readiness probe ({}) failed {}: {}; it "
            "gets no requests until it passes again",
            inst->record.id, rev->revision.meta.name, probe_text(&p, inst->record.port),
            times(failures), c.detail);
        publish_routes(*rev);
        status_changed(rev->revision.meta.namespace_, rev->revision.service);
      } else if (inst->unready && successes >= p.successes()) {
        inst->unready = false;
        inst->phase = Phase::kReady;
        spdlog::info("instance {} of revision {} is ready again", inst->record.id,
                     rev->revision.meta.name);
        publish_routes(*rev);
        status_changed(rev->revision.meta.namespace_, rev->revision.service);
        if (auto* s = service_of(*rev)) reconcile(*s);
      }
    }
  }

  // A started (or adopted) instance: its startup probe, then readiness until it serves, with
  // liveness alongside; an explicit readiness probe goes on after.
  awaitable<void> probe(RevisionPtr rev, InstancePtr inst) {
    const ContainerSpec& container = rev->revision.spec.container;
    if (container.startup_probe && !co_await startup(rev, inst)) co_return;
    if (container.liveness_probe && !gone(*inst))
      asio::co_spawn(control_, liveness(rev, inst), asio::detached);
    const Probe* spec = container.readiness_probe ? &*container.readiness_probe : nullptr;
    auto began = clock_->now();
    auto deadline = began + options_.readiness_timeout;
    if (spec && spec->initial_delay_seconds > 0) {
      if (!co_await wait_from_start(inst, spec->initial_delay_seconds)) co_return;
      deadline += std::chrono::seconds(spec->initial_delay_seconds);
    }
    asio::steady_timer timer(control_);
    boost::system::error_code ec;
    for (;;) {
      if (gone(*inst) || stopped_) co_return;
      Check c = co_await check_once(inst, spec);
      if (c.ok) break;
      if (clock_->now() >= deadline) {
        std::string what = spec && spec->http
                               ? fmt::format("GET {} on port {} did not answer 2xx or 3xx ({})",
                                             spec->http_path, inst->record.port, c.detail)
                           : spec && spec->exec()
                               ? fmt::format("{} did not succeed ({})",
                                             probe_text(spec, inst->record.port), c.detail)
                               : fmt::format(
                                     "nothing accepted TCP connections on port {} (the $PORT the "
                                     "app must listen on)",
                                     inst->record.port);
        std::string message =
            fmt::format("{} within {:g} s", what,
                        std::chrono::duration<double>(options_.readiness_timeout).count());
        co_await probe_failed(rev, inst, "ReadinessProbeFailed", std::move(message));
        co_return;
      }
      // Poll tightly while a start is fresh (a cold start is tens of milliseconds), then ease
      // off. An exec probe runs runc each time: never more often than every 100 ms.
      bool fresh = clock_->now() - began < std::chrono::milliseconds(300);
      auto wait = fresh ? std::min(options_.probe_interval, std::chrono::milliseconds(2))
                        : options_.probe_interval;
      if (spec && spec->exec()) wait = std::max(wait, std::chrono::milliseconds(100));
      timer.expires_after(wait);
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    if (gone(*inst)) co_return;
    inst->phase = Phase::kReady;
    inst->ready_at = clock_->now();
    if (!rev->revision.ever_ready) {
      rev->revision.ever_ready = true;
      (void)co_await offload(store_thread_.get_executor(), &Store::mark_revision_ready, &store_,
                             rev->revision.meta.namespace_, rev->revision.meta.name);
      if (gone(*inst)) co_return;
    }
    set_condition(*rev, rev->ready, "True", "", "");
    set_condition(*rev, rev->healthy, "True", "", "");
    set_condition(*rev, rev->resources, "True", "", "");
    spdlog::info("instance {} of revision {} is ready", inst->record.id, rev->revision.meta.name);
    publish_routes(*rev);
    if (container.readiness_probe) asio::co_spawn(control_, readiness(rev, inst), asio::detached);
    if (auto* s = service_of(*rev)) reconcile(*s);
  }

  // Drain, SIGTERM, SIGKILL after the grace period, then remove (docs/architecture.md, Stopping).
  // Takes the instance out of service now; returns false if that was done before.
  bool mark_stopping(const InstancePtr& inst) {
    if (inst->stop_requested) return false;
    inst->stop_requested = true;
    inst->was_serving = inst->phase == Phase::kReady || inst->unready;
    inst->phase = Phase::kStopping;
    cancel_probes(*inst);
    inst->stats->draining.store(true);  // before the wait for in_flight: see EndpointStats
    publish_routes(*inst);
    return true;
  }

  void stop_later(const RevisionPtr& rev, const InstancePtr& inst) {
    if (mark_stopping(inst)) asio::co_spawn(control_, finish_stop(rev, inst), asio::detached);
  }

  awaitable<void> stop(RevisionPtr rev, InstancePtr inst) {
    if (mark_stopping(inst)) co_await finish_stop(rev, inst);
  }

  awaitable<void> finish_stop(RevisionPtr rev, InstancePtr inst) {
    bool was_serving = inst->was_serving;
    // Never remove a container while runc is still creating it: wait for the start to return.
    while (inst->in_runtime_start) co_await pause();
    // A request that read the previous snapshot and picked this instance has either counted
    // itself in flight by now, or will see draining and pick another (EndpointStats).
    auto drain_deadline = clock_->now() + options_.drain_timeout;
    while (was_serving && inst->stats->in_flight.load() > 0 && clock_->now() < drain_deadline)
      co_await pause();
    if (!inst->exited && inst->record.pid > 0) {
      inst->record.state = InstanceState::kStopping;
      (void)co_await offload(store_thread_.get_executor(), &Store::put_instance, &store_,
                             inst->record);
      (void)co_await offload(blocking_.get_executor(), &ContainerRuntime::kill, &runtime_,
                             inst->record.id, SIGTERM);
      auto grace_deadline = clock_->now() + options_.stop_grace;
      while (!inst->exited && clock_->now() < grace_deadline) co_await pause();
      if (!inst->exited) {
        (void)co_await offload(blocking_.get_executor(), &ContainerRuntime::kill, &runtime_,
                               inst->record.id, SIGKILL);
        auto kill_deadline = clock_->now() + std::chrono::seconds(5);
        while (!inst->exited && clock_->now() < kill_deadline) co_await pause();
      }
    }
    co_await remove_instance(rev, inst);
  }

  // A short wait while polling for a drain or an exit.
  awaitable<void> pause() {
    asio::steady_timer timer(control_, std::chrono::milliseconds(10));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
  }

  // The pidfds that watch an instance's processes: their waits cancelled, then closed.
  static void cancel_watches(Instance& inst) {
    boost::system::error_code ec;
    if (inst.pidfd) inst.pidfd->cancel(ec);
    for (auto& fd : inst.sidecar_pidfds) fd->cancel(ec);
  }
  static void close_watches(Instance& inst) {
    boost::system::error_code ec;
    if (inst.pidfd) inst.pidfd->close(ec);
    for (auto& fd : inst.sidecar_pidfds) fd->close(ec);
  }

  awaitable<void> remove_instance(RevisionPtr rev, InstancePtr inst) {
    cancel_watches(*inst);
    rev->gone_instance_seconds += instance_seconds(*inst);
    co_await final_usage(*rev, *inst);
    bool gone = co_await discard(inst->record);
    live_.erase(inst->record.id);
    if (gone) used_ports_.erase(inst->record.port);  // a terminating one keeps it until it goes
    auto& v = rev->instances;
    v.erase(std::remove(v.begin(), v.end(), inst), v.end());
    close_watches(*inst);
  }

  static bool has_ready(const RevisionState& rev) {
    for (const auto& i : rev.instances)
      if (i->phase == Phase::kReady) return true;
    return false;
  }

  // --- autoscaling ----------------------------------------------------------------------------

  // Every second, one exact measurement per revision; every second second (the KPA's 2 s tick),
  // a decision per revision, then the instances follow.
  awaitable<void> autoscale_loop(std::shared_ptr<Impl> /*keeps this alive*/) {
    asio::steady_timer timer(control_);
    boost::system::error_code ec;
    for (std::uint64_t n = 1; !stopped_; ++n) {
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
      if (stopped_) co_return;
      sample_all();
      if (n % 2 == 0) tick_all();
      if (n % 10 == 0) asio::co_spawn(control_, usage_pass(shared_from_this()), asio::detached);
    }
  }

  // --- usage accounting (docs/architecture.md, "Usage") ---------------------------------------

  // When an instance was created (wall clock, ms).
  static std::int64_t started_ms(const Instance& inst) {
    return inst.created_ms ? inst.created_ms : inst.record.created_unix * 1000;
  }

  // How long an instance has lived, from its creation.
  double instance_seconds(const Instance& inst) const {
    std::int64_t started = started_ms(inst);
    return started > 0 ? static_cast<double>(std::max<std::int64_t>(0, wall_ms() - started)) / 1000
                       : 0.0;
  }

  UsageSample instance_sample(const RevisionState& rev, const Instance& inst) const {
    const PodResources pod = pod_resources(rev.revision.spec);
    UsageSample u;
    u.instance = inst.record.id;
    u.ns = inst.record.namespace_;
    u.service = inst.record.service;
    u.revision = inst.record.revision;
    u.started_ms = started_ms(inst);
    u.cpu_limit_millis = pod.limits_cpu_millis;
    u.memory_limit_bytes = pod.limits_memory_bytes;
    return u;
  }

  std::int64_t wall_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->wall().time_since_epoch())
        .count();
  }

  // On the blocking pool: each instance's cgroup now; an instance without one is left out.
  std::vector<UsageSample> read_usage(std::vector<UsageSample> samples) {
    std::vector<UsageSample> out;
    for (auto& u : samples) {
      if (!u.instance.empty()) {
        ResourceUsage r = runtime_.usage(u.instance);
        if (!r.known) continue;
        u.cpu_ns = static_cast<std::uint64_t>(std::llround(r.cpu_seconds * 1e9));
        u.memory_bytes = r.memory_bytes;
      }
      out.push_back(std::move(u));
    }
    return out;
  }

  void record_usage(std::vector<UsageSample> samples) {
    if (samples.empty()) return;
    asio::post(store_thread_, [this, samples = std::move(samples)] {
      if (auto r = store_.record_usage(samples); !r)
        spdlog::warn("recording usage failed: {}", r.error().message);
    });
  }

  // Every 10 s: every live instance's cgroup, and every revision's request counters.
  awaitable<void> usage_pass(std::shared_ptr<Impl> /*keeps this alive*/) {
    std::vector<UsageSample> samples;
    std::int64_t now = wall_ms();
    auto steady = clock_->now();
    for (auto& [k, s] : services_)
      for (auto& rev : s.revisions) {
        RevisionState::Activity a = read_activity(*rev, steady);
        UsageSample r;
        r.ns = rev->revision.meta.namespace_;
        r.service = rev->revision.service;
        r.revision = rev->revision.meta.name;
        r.t_ms = now;
        r.requests = a.answered - std::min(a.answered, rev->reported.answered);
        r.errors_5xx = a.errors - std::min(a.errors, rev->reported.errors);
        r.cold_starts = a.cold_starts - std::min(a.cold_starts, rev->reported.cold_starts);
        r.active_ms = static_cast<std::int64_t>(
            std::max(0.0, a.active_seconds - rev->reported.active_seconds) * 1000);
        // What went into whole milliseconds is reported; the rest waits for the next pass.
        a.active_seconds = rev->reported.active_seconds + static_cast<double>(r.active_ms) / 1000;
        rev->reported = a;
        if (r.requests || r.errors_5xx || r.cold_starts || r.active_ms)
          samples.push_back(std::move(r));
        for (const auto& inst : rev->instances)
          if (inst->record.pid > 0 && inst->phase != Phase::kExited) {
            UsageSample u = instance_sample(*rev, *inst);
            u.t_ms = now;
            samples.push_back(std::move(u));
          }
      }
    auto read = co_await offload(blocking_.get_executor(), &Impl::read_usage, this, samples);
    record_usage(std::move(read));
  }

  // The last sample of an instance that goes, before its cgroup does.
  awaitable<void> final_usage(const RevisionState& rev, const Instance& inst) {
    if (inst.record.pid <= 0) co_return;
    UsageSample u = instance_sample(rev, inst);
    u.t_ms = wall_ms();
    u.final = true;
    std::vector<UsageSample> one{u};
    auto read = co_await offload(blocking_.get_executor(), &Impl::read_usage, this, one);
    record_usage(std::move(read));
  }

  static std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // The revisions the autoscaler looks at each second: those with instances, standbys, a desired
  // scale, requests, or a poke since. The rest, at zero and idle, cost a tick nothing
  // (docs/architecture.md, "Density"); a request for one pokes it back in (demand()).
  void activate(const RevisionPtr& rev) {
    if (active_.insert(rev).second) rev->last_sample_ns = 0;  // its first sample is a baseline
  }

  static bool idle(const RevisionState& rev) {
    return rev.instances.empty() && rev.standbys.empty() && rev.desired == 0 &&
           rev.last_sample.in_flight == 0 && !rev.restart_pending &&
           rev.kpa->spec().standby <= 0;  // one that asks for standbys is kept in view
  }

  void sample_all() {
    auto now = clock_->now();
    std::int64_t ns = steady_ns();
    for (const auto& rev : active_) {
      {
        RevisionStats::Sample sample = rev->stats->read(ns);
        if (rev->last_sample_ns > 0 && ns > rev->last_sample_ns) {
          double dt = static_cast<double>(ns - rev->last_sample_ns) / 1e9;
          double concurrency = (sample.busy_seconds - rev->last_sample.busy_seconds) / dt;
          double rps = static_cast<double>(sample.requests - rev->last_sample.requests) / dt;
          rev->kpa->record(now, std::max(0.0, concurrency), rps);
        }
        rev->last_sample = sample;
        rev->last_sample_ns = ns;
        if (rev->activity.empty() || now - rev->activity.back().at >= std::chrono::seconds(5))
          rev->activity.push_back(read_activity(*rev, now));
        while (rev->activity.size() > 1 && now - rev->activity[1].at >= std::chrono::seconds(60))
          rev->activity.pop_front();
      }
    }
  }

  static RevisionState::Activity read_activity(const RevisionState& rev,
                                               std::chrono::steady_clock::time_point now) {
    const RequestTotals m = rev.stats->totals();
    RevisionState::Activity a;
    a.at = now;
    for (auto c : m.by_class) a.answered += c;
    a.errors = m.by_class[4];
    a.latency = m.latency;
    a.cold_starts = m.cold_starts;
    a.cold_latency = m.cold_start_latency;
    a.active_seconds = rev.stats->read(steady_ns()).active_seconds;
    return a;
  }

  void tick_all() {
    auto now = clock_->now();
    std::vector<ServiceState*> touched;
    for (auto it = active_.begin(); it != active_.end();) {
      RevisionPtr rev = *it;
      ServiceState* s = rev->retired ? nullptr : service_of(*rev);
      if (!s || find_in(*s, rev->revision.meta.name) != rev) {
        it = active_.erase(it);  // deleted, or its service was
        continue;
      }
      int ready = 0;
      for (const auto& i : rev->instances) ready += i->phase == Phase::kReady ? 1 : 0;
      const auto& spec = rev->kpa->spec();
      int initial = std::max(1, spec.max_scale > 0 ? std::min(spec.initial_scale, spec.max_scale)
                                                   : spec.initial_scale);
      if (!rev->kpa->has_reached_initial_scale() && ready >= initial)
        rev->kpa->reached_initial_scale();
      auto decision = rev->kpa->decide(now, ready);
      if (decision.desired != rev->desired || decision.panic != rev->panic)
        spdlog::debug("revision {}: desired {} (ready {}, stable {:.2f}, panic {:.2f}{})",
                      rev->revision.meta.name, decision.desired, ready, decision.stable,
                      decision.panic_value, decision.panic ? ", PANIC" : "");
      if (decision.desired != rev->desired)
        status_changed(s->service.meta.namespace_, s->service.meta.name);
      rev->desired = decision.desired;
      rev->panic = decision.panic;
      if (!rev->instances.empty()) rev->last_active = now;
      if (std::find(touched.begin(), touched.end(), s) == touched.end()) touched.push_back(s);
      ++it;
    }
    for (ServiceState* s : touched) reconcile(*s);
    // Idle now, after the reconcile: out of the autoscaler's view, its last minute's activity
    // (none) kept as the base of its live status.
    for (auto it = active_.begin(); it != active_.end();) {
      RevisionState& rev = **it;
      if (!idle(rev)) {
        ++it;
        continue;
      }
      rev.activity.clear();
      rev.activity.push_back(read_activity(rev, now));
      it = active_.erase(it);
    }
    balance_standbys();
  }

  // The activator has requests for a revision without capacity: scale it now.
  // Reconciled only when the scale moved or nothing runs: a busy revision's proxy pokes it
  // up to 10 times a second.
  void demand(const std::string& ns, const std::string& revision, std::int64_t in_flight) {
    RevisionPtr rev = indexed_revision(ns, revision);
    if (!rev || stopped_) return;
    activate(rev);
    int before = rev->desired;
    rev->desired =
        std::max(rev->desired, rev->kpa->burst(clock_->now(), static_cast<double>(in_flight)));
    if (rev->desired == before && !rev->instances.empty()) return;
    if (auto* s = service_of(*rev)) reconcile(*s);
  }

  // find_revision() through an index of every revision made, without a walk over the services.
  RevisionPtr indexed_revision(const std::string& ns, const std::string& name) {
    auto it = revision_index_.find(key(ns, name));
    if (it != revision_index_.end()) {
      RevisionPtr rev = it->second.lock();
      if (rev && !rev->retired) return rev;
      revision_index_.erase(it);  // deleted (a new one of the name is found below)
    }
    RevisionPtr rev = find_revision(ns, name);
    if (rev) revision_index_[key(ns, name)] = rev;
    return rev;
  }

  // --- routing and status ---------------------------------------------------------------------

  static RevisionPtr latest_ready(const ServiceState& s) {
    for (auto it = s.revisions.rbegin(); it != s.revisions.rend(); ++it)
      if ((*it)->revision.ever_ready) return *it;
    return nullptr;
  }

  // Builds the routing snapshot from what each service serves (`published`): the service host
  // splits by percent; each tag gets a host of its own that always hits its revision.
  // Every service's routes again (a halt, the start, a domain mapping), or one service's: the
  // snapshot is rebuilt only for what changed (docs/architecture.md, "Density").
  void publish_routes() {
    routes_all_dirty_ = true;
    flush_routes();
  }
  void publish_routes(const std::string& ns, const std::string& service) {
    dirty_services_.insert(key(ns, service));
    flush_routes();
  }
  void publish_routes(const RevisionState& rev) {
    publish_routes(rev.revision.meta.namespace_, rev.revision.service);
  }
  void publish_routes(const Instance& inst) {
    publish_routes(inst.record.namespace_, inst.record.service);
  }

  // A service's routes as the proxy reads them: its host and its tags' hosts.
  struct ServiceRoutes {
    std::vector<std::pair<std::string, std::shared_ptr<const ServiceRoute>>> hosts;
    std::shared_ptr<const ServiceRoute> main;
    std::string print;  // what it serves and how many instances are ready, for status changes
  };

  ServiceRoutes build_routes(const ServiceState& s) const {
    ServiceRoutes out;
    const std::string& ns = s.service.meta.namespace_;
    const std::string& name = s.service.meta.name;
    std::map<std::string, std::shared_ptr<const RevisionRoute>> revision_routes;
    auto revision_route = [&](const std::string& rev_name) -> std::shared_ptr<const RevisionRoute> {
      if (auto it = revision_routes.find(rev_name); it != revision_routes.end()) return it->second;
      auto rr = std::make_shared<RevisionRoute>();
      rr->namespace_ = ns;
      rr->name = rev_name;
      if (RevisionPtr rev = find_in(s, rev_name)) {
        rr->timeout_seconds = rev->revision.spec.timeout_seconds;
        rr->response_start_timeout_seconds = rev->revision.spec.response_start_timeout_seconds;
        rr->idle_timeout_seconds = rev->revision.spec.idle_timeout_seconds;
        rr->container_concurrency = rev->revision.spec.container_concurrency;
        rr->h2c = rev->revision.spec.container.port_name == "h2c";
        const AutoscalingSpec& as = rev->kpa->spec();
        rr->instance_capacity = as.metric == ScaleMetric::kConcurrency ? as.target : 0;
        rr->burst_capacity = as.target_burst_capacity;
        rr->stats = rev->stats;
        if (halted_)
          rr->unavailable =
              "every instance was stopped with 'elafros system stop-all'; 'elafros system "
              "start-all' (or a daemon restart) starts them again";
        else if (rev->ready.status == "False" && !has_ready(*rev))
          rr->unavailable = fmt::format("revision \"{}\" cannot serve: {}: {}", rev_name,
                                        rev->ready.reason, rev->ready.message);
        if (rev->resources.status == "False" && rev->resources.reason == "QuotaExceeded")
          rr->limited = rev->resources.message;
        for (const auto& inst : rev->instances)
          if (inst->phase == Phase::kReady)
            rr->endpoints.push_back({inst->record.id, static_cast<std::uint16_t>(inst->record.port),
                                     inst->stats, ipv4_host_order(inst->record.address)});
      }
      return revision_routes[rev_name] = std::move(rr);
    };
    auto route = std::make_shared<ServiceRoute>();
    route->namespace_ = ns;
    route->service = name;
    for (const auto& t : s.published) {
      if (t.percent > 0) route->targets.push_back({t.percent, revision_route(t.revision_name)});
      if (!t.tag.empty()) {
        auto tagged = std::make_shared<ServiceRoute>();
        tagged->namespace_ = ns;
        tagged->service = name;
        tagged->targets.push_back({100, revision_route(t.revision_name)});
        out.hosts.emplace_back(tag_host(t.tag, name, ns, options_.domain), std::move(tagged));
      }
    }
    if (route->targets.empty() && !s.revisions.empty()) {
      // Nothing served yet: requests wait in the activator for the revision being deployed.
      route->targets.push_back({100, revision_route(s.revisions.back()->revision.meta.name)});
    }
    out.main = route;
    out.hosts.emplace_back(service_host(name, ns, options_.domain), std::move(route));
    for (const auto& t : s.published)
      out.print +=
          fmt::format("{}/{}/{}/{};", t.revision_name, t.percent, t.tag, t.latest_revision);
    for (const auto& rev : s.revisions) {
      int ready = 0;
      for (const auto& i : rev->instances) ready += i->phase == Phase::kReady ? 1 : 0;
      out.print += fmt::format("{}={};", rev->revision.meta.name, ready);
    }
    return out;
  }

  // Builds the next snapshot from the last: the changed services' hosts replaced, the domain
  // mappings' pointed at their services' routes again; then publishes it. A service whose print
  // moved (what it serves, how many instances are ready) may read differently in its status.
  void flush_routes() {
    auto table = std::make_shared<RoutingTable>(*table_);
    std::vector<std::string> keys;
    if (routes_all_dirty_) {
      for (const auto& [k, r] : service_routes_) keys.push_back(k);
      for (const auto& [k, s] : services_)
        if (!service_routes_.count(k)) keys.push_back(k);
    } else {
      keys.assign(dirty_services_.begin(), dirty_services_.end());
    }
    routes_all_dirty_ = false;
    dirty_services_.clear();
    std::vector<std::pair<std::string, std::string>> changed;  // (namespace, service)
    for (const auto& k : keys) {
      auto old = service_routes_.find(k);
      if (old != service_routes_.end())
        for (const auto& [host, r] : old->second.hosts) table->remove(host);
      auto it = services_.find(k);
      if (it == services_.end()) {
        if (old != service_routes_.end()) service_routes_.erase(old);
        continue;
      }
      ServiceRoutes built = build_routes(it->second);
      for (const auto& [host, r] : built.hosts) table->add(host, r);
      if (old == service_routes_.end() || old->second.print != built.print)
        changed.emplace_back(it->second.service.meta.namespace_, it->second.service.meta.name);
      service_routes_[k] = std::move(built);
    }
    for (const auto& host : mapped_hosts_) table->remove(host);
    mapped_hosts_.clear();
    for (const auto& [host, claims] : domain_mappings_) {
      const DomainClaim* holder = claim_of(claims);
      if (!holder) continue;
      auto it = service_routes_.find(key(holder->ns, holder->service));
      if (it == service_routes_.end()) continue;
      table->add(host, it->second.main);
      mapped_hosts_.push_back(host);
    }
    table_ = table;
    routes_.publish(std::move(table));
    if (options_.routes_published) options_.routes_published();
    for (const auto& [ns, name] : changed) status_changed(ns, name);
  }

  std::string url_of(const std::string& host) const {
    return options_.listen_port == 80 ? "http://" + host
                                      : fmt::format("http://{}:{}", host, options_.listen_port);
  }

  std::string url(const std::string& ns, const std::string& name) const {
    return url_of(service_host(name, ns, options_.domain));
  }

  std::optional<std::int64_t> known_generation(const std::string& ns,
                                               const std::string& name) const {
    auto it = services_.find(key(ns, name));
    if (it == services_.end()) return std::nullopt;
    return it->second.service.config_generation;
  }

  ServiceStatus status(const Service& service) const {
    ServiceStatus st;
    st.observed_generation = service.meta.generation;
    st.url = url(service.meta.namespace_, service.meta.name);
    Condition ready{"Ready"}, config{"ConfigurationsReady"}, routes{"RoutesReady"};
    auto it = services_.find(key(service.meta.namespace_, service.meta.name));
    if (it != services_.end() && !it->second.revisions.empty()) {
      const ServiceState& s = it->second;
      const RevisionState& latest = *s.revisions.back();
      st.latest_created_revision = latest.revision.meta.name;
      if (RevisionPtr lr = latest_ready(s)) st.latest_ready_revision = lr->revision.meta.name;
      for (auto t : s.published) {
        if (!t.tag.empty())
          t.url =
              url_of(tag_host(t.tag, service.meta.name, service.meta.namespace_, options_.domain));
        st.traffic.push_back(std::move(t));
      }
      config = latest.ready;
      config.type = "ConfigurationsReady";
      if (latest.ready.status == "False") {
        config.reason = "RevisionFailed";
        config.message = fmt::format("Revision \"{}\" failed with message: {}",
                                     latest.revision.meta.name, latest.ready.message);
      }
      auto want = desired(s);
      if (!want.empty() && same_targets(want, s.published)) {
        routes.status = "True";
        routes.last_transition_unix = latest.ready.last_transition_unix;
      } else {
        // Traffic waits for a revision that is not ready: say which, and whether it failed.
        const RevisionState* blocking = want.empty() ? &latest : nullptr;
        for (const auto& t : want)
          if (RevisionPtr r = find_in(s, t.revision_name);
              r && !has_ready(*r) && (t.percent > 0 || !t.tag.empty()))
            blocking = r.get();
        bool failed = blocking && blocking->ready.status == "False";
        routes.status = failed ? "False" : "Unknown";
        routes.reason = failed ? "RevisionFailed" : "RevisionMissing";
        routes.message =
            blocking ? fmt::format("Revision \"{}\" {}", blocking->revision.meta.name,
                                   failed ? "failed with message: " + blocking->ready.message
                                          : std::string("is not ready yet"))
                     : "traffic is moving";
      }
      if (config.status == "True" && routes.status == "True") {
        ready.status = "True";
        ready.last_transition_unix =
            std::max(config.last_transition_unix, routes.last_transition_unix);
      } else {
        ready = config.status == "False" ? config : (routes.status != "True" ? routes : config);
        ready.type = "Ready";
      }
    }
    st.conditions = {config, ready, routes};
    return st;
  }

  RevisionStatus revision_status(const std::string& ns, const std::string& name) const {
    RevisionStatus st;
    RevisionPtr rev = find_revision(ns, name);
    if (!rev) return st;
    st.conditions = {rev->healthy, rev->ready, rev->resources};
    for (const auto& i : rev->instances) st.actual_replicas += i->phase == Phase::kReady ? 1 : 0;
    const ServiceState* s = const_cast<Impl*>(this)->service_of(*rev);
    st.desired_replicas = s ? desired_count(*s, rev, desired(*s)) : 0;
    st.panic = rev->panic;
    st.restarts = rev->restarts;
    st.last_restart = rev->last_restart;
    auto now = clock_->now();
    RevisionState::Activity cur = read_activity(*rev, now);
    RevisionState::Activity base;
    base.at = rev->created;
    if (!rev->activity.empty()) base = rev->activity.front();
    RevisionActivity& a = st.activity;
    a.window_seconds = std::max(0.001, std::chrono::duration<double>(now - base.at).count());
    std::uint64_t answered = cur.answered - std::min(cur.answered, base.answered);
    a.requests_per_second = static_cast<double>(answered) / a.window_seconds;
    Histogram::Snapshot lat = cur.latency.minus(base.latency);
    a.p50_ms = lat.quantile(0.5) * 1000;
    a.p99_ms = lat.quantile(0.99) * 1000;
    a.error_rate = answered ? static_cast<double>(cur.errors - std::min(cur.errors, base.errors)) /
                                  static_cast<double>(answered)
                            : 0;
    a.cold_starts = cur.cold_starts - std::min(cur.cold_starts, base.cold_starts);
    Histogram::Snapshot cold = cur.cold_latency.minus(base.cold_latency);
    a.cold_start_p50_ms = cold.quantile(0.5) * 1000;
    a.cold_start_max_ms = cold.quantile(1.0) * 1000;
    a.requests_total = cur.answered;
    return st;
  }

  std::vector<Reconciler::RevisionMetrics> revision_metrics() const {
    std::vector<Reconciler::RevisionMetrics> out;
    for (const auto& [k, s] : services_)
      for (const auto& rev : s.revisions) {
        Reconciler::RevisionMetrics m;
        m.namespace_ = rev->revision.meta.namespace_;
        m.service = rev->revision.service;
        m.revision = rev->revision.meta.name;
        for (const auto& i : rev->instances) m.actual += i->phase == Phase::kReady ? 1 : 0;
        m.desired = desired_count(s, rev, desired(s));
        m.panic = rev->panic;
        m.restarts = rev->restarts;
        m.stats = rev->stats;
        // Usage as counters: lifetimes of its instances, and what they were allotted.
        m.instance_seconds = rev->gone_instance_seconds;
        for (const auto& i : rev->instances) m.instance_seconds += instance_seconds(*i);
        const PodResources pod = pod_resources(rev->revision.spec);
        m.limits_cpu_millis = pod.limits_cpu_millis;
        m.limits_memory_bytes = pod.limits_memory_bytes;
        m.vcpu_seconds_alloc =
            m.instance_seconds * static_cast<double>(pod.limits_cpu_millis) / 1000;
        m.gib_seconds_alloc = m.instance_seconds * static_cast<double>(pod.limits_memory_bytes) /
                              (1024.0 * 1024 * 1024);
        out.push_back(std::move(m));
      }
    return out;
  }

  // --- domain mappings ----------------------------------------------------------------------

  struct DomainClaim {
    std::string ns, service;
    std::int64_t created_unix = 0;
  };

  // The mapping that holds a name: the oldest, then the first namespace by name.
  static const DomainClaim* claim_of(const std::vector<DomainClaim>& claims) {
    const DomainClaim* best = nullptr;
    for (const auto& c : claims)
      if (!best || std::tie(c.created_unix, c.ns) < std::tie(best->created_unix, best->ns))
        best = &c;
    return best;
  }

  void domain_mapping_put(const std::string& ns, const std::string& name,
                          const std::string& service, std::int64_t created_unix) {
    auto& claims = domain_mappings_[name];
    bool found = false;
    for (auto& c : claims)
      if (c.ns == ns) {
        if (c.service == service) return;
        c.service = service;
        found = true;
      }
    if (!found) claims.push_back({ns, service, created_unix});
    flush_routes();  // the mappings are always laid again
  }

  void domain_mapping_deleted(const std::string& ns, const std::string& name) {
    auto it = domain_mappings_.find(name);
    if (it == domain_mappings_.end()) return;
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&ns](const DomainClaim& c) { return c.ns == ns; }),
            v.end());
    if (v.empty()) domain_mappings_.erase(it);
    flush_routes();
  }

  Reconciler::DomainMappingStatus domain_mapping_status(const std::string& ns,
                                                        const std::string& name) const {
    Reconciler::DomainMappingStatus st;
    st.url = url_of(name);
    auto it = domain_mappings_.find(name);
    if (it == domain_mappings_.end()) return st;
    const DomainClaim* holder = claim_of(it->second);
    if (holder) st.claimed_by = holder->ns;
    for (const auto& c : it->second)
      if (c.ns == ns) st.service_exists = services_.count(key(ns, c.service)) > 0;
    return st;
  }

  const std::string& domain() const { return options_.domain; }

  // --- persistentVolumeClaim volumes --------------------------------------------------------

  std::vector<std::string> claim_users(const std::string& ns, const std::string& claim) const {
    std::vector<std::string> out;
    for (const auto& [k, s] : services_) {
      if (s.service.meta.namespace_ != ns) continue;
      for (const auto& rev : s.revisions) {
        const RevisionTemplate& t = rev->revision.spec;
        bool mounts = false;
        for (const auto& v : t.volumes)
          for (const auto& m : t.container.volume_mounts)
            mounts = mounts ||
                     (v.kind == "PersistentVolumeClaim" && v.source == claim && m.name == v.name);
        if (!mounts) continue;
        for (const auto& inst : rev->instances)
          if (!inst->exited) out.push_back(inst->record.id);
      }
    }
    return out;
  }

  asio::io_context& control() { return control_; }

  // The directories of deleted claims go; a claim made while this runs keeps its own (it is
  // newer than the list).
  awaitable<void> sweep_claims(std::shared_ptr<Impl> /*keeps this alive*/) {
    // File times are the real clock's: compare them with it, not the injected one.
    auto listed_at = std::chrono::system_clock::now();
    ObjectQuery q{"", "PersistentVolumeClaim", "", "", 0, "", ""};
    auto claims = co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects,
                                   static_cast<ObjectStore*>(&store_), q);
    if (!claims) {
      spdlog::warn("cannot list volume claims to remove deleted ones' data: {}",
                   claims.error().message);
      co_return;
    }
    std::set<std::string> uids;
    for (const auto& o : claims->items) uids.insert(meta_string(o, "uid"));
    auto removed = co_await offload(blocking_.get_executor(), &ContainerRuntime::sweep_claims,
                                    &runtime_, uids, listed_at);
    for (const auto& uid : removed)
      spdlog::info("removed the data of deleted volume claim {} (uid)", uid);
  }

  std::vector<Reconciler::InstanceView> instances() const {
    std::vector<Reconciler::InstanceView> out;
    for (const auto& [id, i] : live_) {
      const char* phase = i->standby                     ? "standby"
                          : i->stop_requested            ? "stopping"
                          : i->unready                   ? "unready"
                          : i->phase == Phase::kStarting ? "starting"
                          : i->phase == Phase::kReady    ? "ready"
                          : i->phase == Phase::kStopping ? "stopping"
                                                         : "exited";
      out.push_back({i->record, phase, "", 0});
    }
    for (const auto& [id, t] : terminating_)
      out.push_back({t.record, "terminating", t.last_error, t.attempts});
    return out;
  }

  Reconciler::Cleanup cleanup() const { return {terminating_.size(), strays_removed_, sweeps_}; }

  void instance_usage(std::function<void(std::vector<Reconciler::InstanceUsage>)> done) {
    std::vector<Reconciler::InstanceUsage> list;
    for (const auto& [k, s] : services_)
      for (const auto& rev : s.revisions)
        for (const auto& i : rev->instances)
          if (i->record.pid > 0 && !i->exited)
            list.push_back(
                {i->record.namespace_, i->record.service, i->record.revision, i->record.id, {}});
    asio::post(blocking_, [this, self = shared_from_this(), list = std::move(list),
                           done = std::move(done)]() mutable {
      for (auto& u : list) u.usage = runtime_.usage(u.instance);
      asio::post(control_, [list = std::move(list), done = std::move(done)]() mutable {
        done(std::move(list));
      });
    });
  }

  Counts counts() const {
    Counts c;
    c.services = services_.size();
    c.instances = terminating_.size();
    for (const auto& [id, i] : live_) {
      (i->standby ? c.standby_instances : c.instances) += 1;
      c.ready_instances += i->phase == Phase::kReady && !i->standby ? 1 : 0;
    }
    return c;
  }

  void shutdown() {
    stopped_ = true;
    for (auto& [k, s] : services_)
      for (auto& r : s.revisions)
        for (const auto* v : {&r->instances, &r->standbys})
          for (auto& i : *v) cancel_watches(*i);
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  asio::thread_pool& blocking_;
  Store& store_;
  ContainerRuntime& runtime_;
  RoutingSnapshot& routes_;
  ClockPtr clock_;
  ReconcilerOptions options_;
  std::map<std::string, ServiceState> services_;
  std::map<std::string, std::vector<DomainClaim>> domain_mappings_;  // by host name
  // The routing snapshot last published, each service's part of it, and what must be rebuilt.
  std::shared_ptr<RoutingTable> table_ = std::make_shared<RoutingTable>();
  std::map<std::string, ServiceRoutes> service_routes_;
  std::set<std::string> dirty_services_;
  bool routes_all_dirty_ = true;
  std::vector<std::string> mapped_hosts_;  // the domain mappings' hosts in table_
  std::set<int> used_ports_;
  // Every instance from its launch or adoption until its container is removed, whether its
  // revision or service is still held or not.
  std::map<std::string, InstancePtr> live_;
  struct Terminating {
    InstanceRecord record;
    std::string last_error;
    int attempts = 0;
  };
  std::map<std::string, Terminating> terminating_;  // by id
  std::uint64_t strays_removed_ = 0;
  std::uint64_t sweeps_ = 0;
  int standbys_creating_ = 0;
  std::set<RevisionPtr> active_;  // the revisions the autoscaler looks at (activate())
  std::unordered_map<std::string, std::weak_ptr<RevisionState>> revision_index_;  // ns/name
  bool halted_ = false;      // 'elafros system stop-all' until start-all or a restart
  bool recovering_ = false;  // start() is loading and adopting
  std::vector<std::pair<std::string, std::string>> deleting_;  // marked for deletion when loaded
  bool stopped_ = false;
};

Reconciler::Reconciler(asio::io_context& control, asio::thread_pool& store_thread,
                       asio::thread_pool& blocking, Store& store, ContainerRuntime& runtime,
                       RoutingSnapshot& routes, ClockPtr clock, ReconcilerOptions options)
    : impl_(std::make_shared<Impl>(control, store_thread, blocking, store, runtime, routes,
                                   std::move(clock), std::move(options))) {
  asio::co_spawn(control, impl_->autoscale_loop(impl_), asio::detached);
  asio::co_spawn(control, impl_->sweep_loop(impl_), asio::detached);
}

Reconciler::~Reconciler() {
  impl_->shutdown();
}

void Reconciler::demand(const std::string& ns, const std::string& revision,
                        std::int64_t in_flight) {
  impl_->demand(ns, revision, in_flight);
}

void Reconciler::start(std::function<void(Result<void>)> done) {
  asio::co_spawn(
      impl_->control_, impl_->recover(),
      [done = std::move(done)](std::exception_ptr e, Result<void> r) {
        if (e) return done(Error::internal("recovering the stored state failed unexpectedly"));
        done(std::move(r));
      });
}

void Reconciler::service_created(const Service& service, const Revision& revision) {
  impl_->created(service, revision);
}

void Reconciler::service_updated(const Service& service, const Revision* new_revision) {
  impl_->updated(service, new_revision);
}

NamespaceUsage Reconciler::namespace_usage(const std::string& ns) const {
  return impl_->namespace_usage(ns);
}

void Reconciler::halt(std::function<void()> done) {
  impl_->halt(std::move(done));
}

void Reconciler::resume() {
  impl_->resume();
}

bool Reconciler::halted() const {
  return impl_->halted();
}

void Reconciler::revision_deleted(const std::string& ns, const std::string& revision) {
  impl_->revision_deleted(ns, revision);
}

void Reconciler::service_deleted(const std::string& ns, const std::string& name,
                                 std::function<void()> done) {
  impl_->deleted(ns, name, std::move(done));
}

ServiceStatus Reconciler::service_status(const Service& service) const {
  return impl_->status(service);
}

RevisionStatus Reconciler::revision_status(const std::string& ns,
                                           const std::string& revision) const {
  return impl_->revision_status(ns, revision);
}

std::optional<Reconciler::ServiceReport> Reconciler::report(const std::string& ns,
                                                            const std::string& name) const {
  auto it = impl_->services_.find(key(ns, name));
  if (it == impl_->services_.end()) return std::nullopt;
  const ServiceState& s = it->second;
  ServiceReport r{s.service, impl_->status(s.service), {}};
  for (const auto& rev : s.revisions)
    r.revisions.emplace_back(rev->revision.meta.name,
                             impl_->revision_status(ns, rev->revision.meta.name));
  return r;
}

std::vector<Reconciler::RevisionMetrics> Reconciler::revision_metrics() const {
  return impl_->revision_metrics();
}

std::vector<Reconciler::InstanceView> Reconciler::instances() const {
  return impl_->instances();
}

std::vector<std::string> Reconciler::claim_users(const std::string& ns,
                                                 const std::string& claim) const {
  return impl_->claim_users(ns, claim);
}

void Reconciler::domain_mapping_put(const std::string& ns, const std::string& name,
                                    const std::string& service, std::int64_t created_unix) {
  impl_->domain_mapping_put(ns, name, service, created_unix);
}

void Reconciler::domain_mapping_deleted(const std::string& ns, const std::string& name) {
  impl_->domain_mapping_deleted(ns, name);
}

Reconciler::DomainMappingStatus Reconciler::domain_mapping_status(const std::string& ns,
                                                                  const std::string& name) const {
  return impl_->domain_mapping_status(ns, name);
}

const std::string& Reconciler::domain() const {
  return impl_->domain();
}

void Reconciler::claim_deleted() {
  asio::co_spawn(impl_->control(), impl_->sweep_claims(impl_), asio::detached);
}

Reconciler::Cleanup Reconciler::cleanup() const {
  return impl_->cleanup();
}

void Reconciler::instance_usage(std::function<void(std::vector<InstanceUsage>)> done) {
  impl_->instance_usage(std::move(done));
}

std::optional<std::int64_t> Reconciler::known_generation(const std::string& ns,
                                                         const std::string& name) const {
  return impl_->known_generation(ns, name);
}

std::vector<std::pair<std::string, std::string>> Reconciler::deleting() const {
  return impl_->deleting_;
}

Reconciler::Counts Reconciler::counts() const {
  return impl_->counts();
}

void Reconciler::shutdown() {
  impl_->shutdown();
}

}  // namespace elafros
