#pragma once
// The routing snapshot: what the proxy reads on every request. The control plane builds a new
// immutable table and swaps it in; the data plane never waits on the control plane.

#include <algorithm>
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

// The proxy's threads (docs/architecture.md, "Data plane"): each writes the per-revision counters
// of its own shard, so that no counter has two writers; readers sum the shards. Set the count
// once, before any RevisionStats is made; each proxy thread sets its index when it starts.
inline std::size_t& proxy_thread_count() {
  static std::size_t n = 1;
  return n;
}
inline std::size_t& proxy_thread_index() {
  static thread_local std::size_t i = 0;
  return i;
}

// What became of a revision's requests, written by one proxy thread (its shard), read by the
// control plane for live status and /metrics through RevisionStats::totals().
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

// RequestMetrics summed over the shards.
struct RequestTotals {
  std::array<std::uint64_t, 5> by_class{};
  Histogram::Snapshot latency;
  std::uint64_t cold_starts = 0;
  Histogram::Snapshot cold_start_latency;
  std::int64_t queued = 0;
};

// Exact per-revision load, kept by the proxy threads, each in its own shard (the only writer of
// it), and read by the autoscaler through a sequence lock per shard, summed: no mutex on the
// data plane. In-flight counts every request routed to the revision from its arrival, waiting
// in the activator included, so that demand at zero instances is seen.
class RevisionStats {
 public:
  struct Sample {
    double busy_seconds = 0;     // ∫ in-flight dt since creation: concurrency × time
    std::uint64_t requests = 0;  // requests begun since creation
    std::int64_t in_flight = 0;
    double active_seconds = 0;  // time with at least one request in flight, since creation
  };

  explicit RevisionStats(std::size_t shards = proxy_thread_count())
      : count_(shards < 1 ? 1 : shards), shards_(new Shard[count_]) {}

  // On a proxy thread: its own shard.
  void begin(std::int64_t now_ns) { mine().change(now_ns, +1); }
  void end(std::int64_t now_ns) { mine().change(now_ns, -1); }
  RequestMetrics& metrics() { return mine().metrics; }

  // From any thread: the shards summed. Concurrency adds up; "active" (some request in flight) is
  // the longest of the shards', a lower bound of the union's.
  Sample read(std::int64_t now_ns) const {
    Sample sum;
    for (std::size_t i = 0; i < count_; ++i) {
      Sample one = shards_[i].read(now_ns);
      sum.busy_seconds += one.busy_seconds;
      sum.requests += one.requests;
      sum.in_flight += one.in_flight;
      sum.active_seconds = std::max(sum.active_seconds, one.active_seconds);
    }
    return sum;
  }
  RequestTotals totals() const {
    RequestTotals t;
    for (std::size_t i = 0; i < count_; ++i) {
      const RequestMetrics& m = shards_[i].metrics;
      for (std::size_t c = 0; c < t.by_class.size(); ++c)
        t.by_class[c] += m.by_class[c].load(std::memory_order_relaxed);
      t.latency.add(m.latency.read());
      t.cold_starts += m.cold_starts.load(std::memory_order_relaxed);
      t.cold_start_latency.add(m.cold_start_latency.read());
      t.queued += m.queued.load(std::memory_order_relaxed);
    }
    return t;
  }
  std::size_t shards() const { return count_; }

 private:
  struct alignas(64) Shard {
    std::atomic<std::uint64_t> seq{0};
    std::atomic<double> busy{0};
    std::atomic<double> active{0};
    std::atomic<std::int64_t> in_flight{0};
    std::atomic<std::int64_t> last_ns{0};
    std::atomic<std::uint64_t> requests{0};
    RequestMetrics metrics;

    void change(std::int64_t now_ns, int delta) {
      seq.fetch_add(1, std::memory_order_acq_rel);
      std::int64_t last = last_ns.load(std::memory_order_relaxed);
      std::int64_t n = in_flight.load(std::memory_order_relaxed);
      if (last != 0 && now_ns > last) {
        double dt = static_cast<double>(now_ns - last) / 1e9;
        busy.store(busy.load(std::memory_order_relaxed) + static_cast<double>(n) * dt,
                   std::memory_order_relaxed);
        if (n > 0)
          active.store(active.load(std::memory_order_relaxed) + dt, std::memory_order_relaxed);
      }
      last_ns.store(now_ns, std::memory_order_relaxed);
      in_flight.store(n + delta, std::memory_order_relaxed);
      if (delta > 0)
        requests.store(requests.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      seq.fetch_add(1, std::memory_order_release);
    }

    Sample read(std::int64_t now_ns) const {
      for (;;) {
        std::uint64_t s1 = seq.load(std::memory_order_acquire);
        if (s1 & 1) continue;
        double b = busy.load(std::memory_order_relaxed);
        double a = active.load(std::memory_order_relaxed);
        std::int64_t n = in_flight.load(std::memory_order_relaxed);
        std::int64_t last = last_ns.load(std::memory_order_relaxed);
        std::uint64_t r = requests.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (seq.load(std::memory_order_relaxed) != s1) continue;
        double since = now_ns > last && last != 0 ? static_cast<double>(now_ns - last) / 1e9 : 0.0;
        return {b + static_cast<double>(n) * since, r, n, a + (n > 0 ? since : 0.0)};
      }
    }
  };
  Shard& mine() {
    std::size_t i = proxy_thread_index();
    return shards_[i < count_ ? i : 0];
  }

  std::size_t count_;
  std::unique_ptr<Shard[]> shards_;
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

// Host names to routes, in shards: a table made from another shares its shards, and a change
// copies only the shard it touches, so that the control plane's update of a few services costs
// those services, not every host (docs/architecture.md, "Density").
class RoutingTable {
 public:
  RoutingTable();
  // Shares every shard of `base`; add() and remove() then copy the shards they change.
  RoutingTable(const RoutingTable& base);
  RoutingTable& operator=(const RoutingTable&) = delete;

  // Adds a host name (lowercase, no port) for a route.
  void add(std::string host, std::shared_ptr<const ServiceRoute> route);
  void remove(const std::string& host);
  // Looks up a Host header value: case-insensitive, an optional :port and trailing dot ignored.
  const ServiceRoute* find(std::string_view host_header) const;
  std::size_t size() const { return size_; }
  template <class F>
  void for_each(F&& f) const {
    for (const auto& shard : shards_)
      for (const auto& [host, route] : *shard) f(*route);
  }

 private:
  static constexpr std::size_t kShards = 64;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Shard =
      std::unordered_map<std::string, std::shared_ptr<const ServiceRoute>, Hash, std::equal_to<>>;
  static std::size_t shard_of(std::string_view host) { return Hash{}(host) % kShards; }
  Shard& writable(std::size_t i);

  std::array<std::shared_ptr<Shard>, kShards> shards_;
  std::array<bool, kShards> owned_{};  // made by this table: changed in place
  std::size_t size_ = 0;
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
