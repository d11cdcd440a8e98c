#pragma once
// The routing snapshot: what the proxy reads on every request. The control plane builds a new
// immutable table and swaps it in; the data plane never waits on the control plane.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "elafros/histogram.hpp"

namespace elafros {

// Live counters of one instance, updated by the proxy, read by the control plane.
struct EndpointStats {
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::uint64_t> requests{0};
  // The drain handshake, without a lock and without timing: the control plane sets draining and
  // then waits for in_flight to reach 0; the proxy counts a request in flight and then checks
  // draining, and backs off if it is set. Both sequentially consistent, so either the proxy
  // sees the drain or the control plane sees the request (ProxyServer, Reconciler).
  std::atomic<bool> draining{false};
};

// What became of a revision's requests, written by the proxy thread only, read by the control
// plane for live status and /metrics.
struct RequestMetrics {
  std::array<std::atomic<std::uint64_t>, 5> by_class{};  // responses 1xx … 5xx
  Histogram latency;                                     // arrival to the end of the response
  std::atomic<std::uint64_t> cold_starts{0};  // requests that found no instance and waited
  Histogram cold_start_latency;               // how long they waited for one
  std::atomic<std::int64_t> queued{0};        // waiting in the activator now

  void count(int status) {
    int c = status / 100;
    if (c < 1 || c > 5) return;
    auto& n = by_class[static_cast<std::size_t>(c - 1)];
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

// Exact per-revision load, kept by the proxy thread (the only writer) and read by the
// autoscaler through a sequence lock: no mutex on the data plane. In-flight counts every
// request routed to the revision from its arrival, waiting in the activator included, so that
// demand at zero instances is seen.
class RevisionStats {
 public:
  struct Sample {
    double busy_seconds = 0;     // ∫ in-flight dt since creation: concurrency × time
    std::uint64_t requests = 0;  // requests begun since creation
    std::int64_t in_flight = 0;
    double active_seconds = 0;  // time with at least one request in flight, since creation
  };

  void begin(std::int64_t now_ns) { change(now_ns, +1); }
  void end(std::int64_t now_ns) { change(now_ns, -1); }
  RequestMetrics metrics;

  Sample read(std::int64_t now_ns) const {
    for (;;) {
      std::uint64_t s1 = seq_.load(std::memory_order_acquire);
      if (s1 & 1) continue;
      double busy = busy_.load(std::memory_order_relaxed);
      double active = active_.load(std::memory_order_relaxed);
      std::int64_t in_flight = in_flight_.load(std::memory_order_relaxed);
      std::int64_t last = last_ns_.load(std::memory_order_relaxed);
      std::uint64_t requests = requests_.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) != s1) continue;
      double since = now_ns > last ? static_cast<double>(now_ns - last) / 1e9 : 0.0;
      return {busy + static_cast<double>(in_flight) * since, requests, in_flight,
              active + (in_flight > 0 ? since : 0.0)};
    }
  }

 private:
  void change(std::int64_t now_ns, int delta) {
    seq_.fetch_add(1, std::memory_order_acq_rel);
    std::int64_t last = last_ns_.load(std::memory_order_relaxed);
    std::int64_t in_flight = in_flight_.load(std::memory_order_relaxed);
    if (last != 0 && now_ns > last) {
      double dt = static_cast<double>(now_ns - last) / 1e9;
      busy_.store(busy_.load(std::memory_order_relaxed) + static_cast<double>(in_flight) * dt,
                  std::memory_order_relaxed);
      if (in_flight > 0)
        active_.store(active_.load(std::memory_order_relaxed) + dt, std::memory_order_relaxed);
    }
    last_ns_.store(now_ns, std::memory_order_relaxed);
    in_flight_.store(in_flight + delta, std::memory_order_relaxed);
    if (delta > 0)
      requests_.store(requests_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    seq_.fetch_add(1, std::memory_order_release);
  }

  std::atomic<std::uint64_t> seq_{0};
  std::atomic<double> busy_{0};
  std::atomic<double> active_{0};
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::int64_t> last_ns_{0};
  std::atomic<std::uint64_t> requests_{0};
};

struct Endpoint {
  std::string instance_id;
  std::uint16_t port = 0;
  std::shared_ptr<EndpointStats> stats;
  std::uint32_t address = 0;  // IPv4, host order; 0: 127.0.0.1
};

struct RevisionRoute {
  std::string namespace_;
  std::string name;
  int timeout_seconds = 300;
  int container_concurrency =
      0;  // the breaker: at most this many in flight per instance; 0: no cap
  std::shared_ptr<RevisionStats> stats;
  std::vector<Endpoint> endpoints;  // ready instances only
  // Set when the revision has no ready instance because it fails (crash loop, bad image…):
  // the activator answers 503 with this at once rather than holding requests.
  std::string unavailable;
  // Set while a quota or max-instances keeps it from scaling further: what ResourcesAvailable
  // says, for the activator's 503 when its queue is full.
  std::string limited;
  int response_start_timeout_seconds = 0;  // 0: timeoutSeconds
  int idle_timeout_seconds = 0;            // 0: none
  bool h2c = false;  // its port is named h2c: the proxy speaks HTTP/2 to it (gRPC)
  // Knative's target burst capacity (docs/architecture.md, "Bursts"): while the ready instances'
  // spare capacity (each holds `instance_capacity` requests in flight; 0: not measured so, the rps
  // metric) is below `burst_capacity` (-1: always), the proxy tells the autoscaler of the load at
  // once, so that the desired scale follows a burst in the same tick.
  double instance_capacity = 0;
  double burst_capacity = 211;
};

// The burst capacity rule: ready × capacity − in flight < burst, or burst −1 (always).
inline bool below_burst_capacity(std::size_t ready, double instance_capacity,
                                 std::int64_t in_flight, double burst_capacity) {
  if (burst_capacity < 0) return true;
  if (instance_capacity <= 0) return false;
  return static_cast<double>(ready) * instance_capacity - static_cast<double>(in_flight) <
         burst_capacity;
}

struct WeightedRevision {
  int percent = 0;
  std::shared_ptr<const RevisionRoute> revision;
};

struct ServiceRoute {
  std::string namespace_;
  std::string service;
  std::vector<WeightedRevision> targets;  // percents sum to 100
};

class RoutingTable {
 public:
  // Adds a host name (lowercase, no port) for a route.
  void add(std::string host, std::shared_ptr<const ServiceRoute> route);
  // Looks up a Host header value: case-insensitive, an optional :port and trailing dot ignored.
  const ServiceRoute* find(std::string_view host_header) const;
  std::size_t size() const { return hosts_.size(); }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& [host, route] : hosts_) f(*route);
  }

 private:
  std::unordered_map<std::string, std::shared_ptr<const ServiceRoute>> hosts_;
};

using RoutingTablePtr = std::shared_ptr<const RoutingTable>;

// Holds the current snapshot. Readers take a reference with load(); writers publish().
class RoutingSnapshot {
 public:
  RoutingSnapshot() : table_(std::make_shared<const RoutingTable>()) {}
  RoutingTablePtr load() const { return table_.load(std::memory_order_acquire); }
  void publish(RoutingTablePtr table) { table_.store(std::move(table), std::memory_order_release); }

 private:
  std::atomic<RoutingTablePtr> table_;
};

// The host names of a service: NAME.NAMESPACE.DOMAIN (docs/architecture.md).
std::string service_host(std::string_view name, std::string_view ns, std::string_view domain);

}  // namespace elafros
