#pragma once
// The control plane: turns the desired state (services and their revisions) into running,
// ready instances, and publishes the routing snapshot the proxy reads. Every method must be
// called on the control io_context's thread, which owns all of this state (docs/architecture.md).
// Blocking work (runc, SQLite) runs on the executors it is given, never on the control thread.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "elafros/autoscaling.hpp"
#include "elafros/clock.hpp"
#include "elafros/container_runtime.hpp"
#include "elafros/model.hpp"
#include "elafros/quota.hpp"
#include "elafros/routing.hpp"
#include "elafros/store.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

struct ReconcilerOptions {
  std::string domain = "localhost";
  int listen_port = 8080;                              // for service URLs
  std::chrono::milliseconds probe_interval{10};        // readiness polling while starting
  std::chrono::milliseconds readiness_timeout{60000};  // an instance must be ready by then
  std::chrono::seconds stop_grace{10};                 // SIGTERM → SIGKILL
  std::chrono::seconds drain_timeout{30};              // in-flight requests may finish
  std::chrono::milliseconds backoff_initial{1000};     // first restart delay after a crash
  std::chrono::milliseconds backoff_max{60000};        // restart delays double up to this
  // A failed container removal is retried after backoff_initial, doubling up to this.
  std::chrono::milliseconds removal_backoff_max{30000};
  // How often runc's containers and bundles are compared with the instances tracked; strays go.
  std::chrono::milliseconds orphan_sweep{60000};
  AutoscalingDefaults autoscaling;         // the KPA's daemon-wide defaults
  std::function<void()> routes_published;  // called after each new routing snapshot
  // Called (on the control thread) when a condition, what a service serves or a desired scale
  // changed: the service's status may read differently now (the serving controller writes it
  // to the store). (namespace, service)
  std::function<void(const std::string&, const std::string&)> status_changed;
  // The namespace's quotas on instances (docs/architecture.md, "Quotas"): a revision is never
  // scaled past them, and says so in ResourcesAvailable. Unset: none.
  std::function<InstanceQuota(const std::string& ns)> quota;
  int max_instances = 0;  // live instances on the machine at most (max-instances); 0: no cap
  // Standby instances (docs/architecture.md, "Standby instances"): containers made ahead and left
  // waiting, so that a cold start only starts one. At most this many per revision and on the
  // machine (0: none); a revision without the standby annotation keeps one this long after it
  // last had an instance.
  int standby_per_revision = 1;
  int standby_max = 8;
  std::chrono::seconds standby_idle{600};
};

class Reconciler {
 public:
  // store_thread runs every Store call, one at a time; blocking runs runc and file work.
  Reconciler(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
             boost::asio::thread_pool& blocking, Store& store, ContainerRuntime& runtime,
             RoutingSnapshot& routes, ClockPtr clock, ReconcilerOptions options);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Loads the stored state, adopts the instances that still run, removes the ones that do
  // not, and starts what is missing. `done` is called once routes are published.
  void start(std::function<void(Result<void>)> done);

  // A service (with its first revision) was committed to the store.
  void service_created(const Service& service, const Revision& revision);
  // A service's spec or traffic changed in the store; new_revision is set when the template did.
  void service_updated(const Service& service, const Revision* new_revision);
  // A revision (unrouted, untagged) was deleted from the store.
  void revision_deleted(const std::string& ns, const std::string& revision);
  // A service was deleted from the store: stop and remove its instances, then call `done`.
  void service_deleted(const std::string& ns, const std::string& name, std::function<void()> done);

  // The activator has requests waiting for capacity on a revision (in_flight counts them):
  // scale it up now rather than at the next tick.
  void demand(const std::string& ns, const std::string& revision, std::int64_t in_flight);

  // The configuration generation of the service as the reconciler holds it; nullopt when it
  // does not hold the service.
  std::optional<std::int64_t> known_generation(const std::string& ns,
                                               const std::string& name) const;
  // Services that were being deleted when start() loaded them (namespace, name).
  std::vector<std::pair<std::string, std::string>> deleting() const;

  ServiceStatus service_status(const Service& service) const;
  RevisionStatus revision_status(const std::string& ns, const std::string& revision) const;

  // A service as the reconciler holds it, with its status and its revisions'; nullopt when it
  // does not hold it.
  struct ServiceReport {
    Service service;
    ServiceStatus status;
    std::vector<std::pair<std::string, RevisionStatus>> revisions;  // name, status
  };
  std::optional<ServiceReport> report(const std::string& ns, const std::string& name) const;

  struct Counts {
    std::size_t services = 0;
    std::size_t instances = 0;
    std::size_t ready_instances = 0;
    std::size_t standby_instances = 0;  // made and waiting, not counted in instances
  };
  Counts counts() const;

  // What /metrics reports of every revision the daemon runs (deleted ones are gone).
  struct RevisionMetrics {
    std::string namespace_, service, revision;
    int desired = 0;
    int actual = 0;
    bool panic = false;
    int restarts = 0;
    std::shared_ptr<const RevisionStats> stats;  // the proxy's counters
    // Usage since the daemon started: its instances' lifetimes, and the limits × those.
    double instance_seconds = 0, vcpu_seconds_alloc = 0, gib_seconds_alloc = 0;
    // What one instance is allotted (its containers' limits; 0: none set).
    std::int64_t limits_cpu_millis = 0, limits_memory_bytes = 0;
  };
  std::vector<RevisionMetrics> revision_metrics() const;
  // Every instance the daemon manages, with its phase: "starting", "ready", "stopping",
  // "exited", or "terminating" (its removal failed and is retried; last_error says why).
  struct InstanceView {
    InstanceRecord record;
    std::string phase;
    std::string last_error;
    int removal_attempts = 0;
  };
  std::vector<InstanceView> instances() const;
  // Knative DomainMappings: a host name routed to a service of the mapping's namespace. When
  // several namespaces map one name, the oldest mapping holds it (Knative's domain claim).
  void domain_mapping_put(const std::string& ns, const std::string& name,
                          const std::string& service, std::int64_t created_unix);
  void domain_mapping_deleted(const std::string& ns, const std::string& name);
  struct DomainMappingStatus {
    std::string url;
    std::string claimed_by;  // the namespace whose mapping holds the name ("" when unknown)
    bool service_exists = false;
  };
  DomainMappingStatus domain_mapping_status(const std::string& ns, const std::string& name) const;
  const std::string& domain() const;  // the domain of services' own host names
  // persistentVolumeClaim volumes: the live instances that mount the claim, by id.
  std::vector<std::string> claim_users(const std::string& ns, const std::string& claim) const;
  // A claim was deleted: the data of every claim that no longer exists goes (Kubernetes'
  // Delete reclaim policy). Also done at start and with each orphan sweep.
  void claim_deleted();
  // Instances whose removal failed, kept and retried until it succeeds (docs/architecture.md,
  // "Faults"), and the strays the orphan sweep found and removed since the start.
  struct Cleanup {
    std::size_t terminating = 0;
    std::uint64_t strays_removed = 0;
    std::uint64_t sweeps = 0;
  };
  Cleanup cleanup() const;
  struct InstanceUsage {
    std::string namespace_, service, revision, instance;
    ResourceUsage usage;
  };
  // Reads every running instance's cgroup on the blocking pool, then calls `done` on the
  // control thread.
  void instance_usage(std::function<void(std::vector<InstanceUsage>)> done);

  // 'elafros system stop-all': stops every instance and starts none until resume() or a daemon
  // restart; `done` once they are all gone.
  // What the namespace's live instances hold (for quotas), on the control thread.
  NamespaceUsage namespace_usage(const std::string& ns) const;
  void halt(std::function<void()> done);
  void resume();
  bool halted() const;

  // Stops timers and probes and leaves containers running, for a daemon restart to adopt.
  void shutdown();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
