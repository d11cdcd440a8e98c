#pragma once
// The routing snapshot: what the proxy reads on every request. The control plane builds a new
// immutable table and swaps it in; the data plane never waits on the control plane.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace elafros {

// Live counters of one instance, updated by the proxy, read by the control plane.
struct EndpointStats {
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::uint64_t> requests{0};
};

struct Endpoint {
  std::string instance_id;
  std::uint16_t port = 0;  // on 127.0.0.1
  std::shared_ptr<EndpointStats> stats;
};

struct RevisionRoute {
  std::string name;
  int timeout_seconds = 300;
  std::vector<Endpoint> endpoints;  // ready instances only
};

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

// The host names of a service: NAME.NAMESPACE.DOMAIN (DESIGN.md §5).
std::string service_host(std::string_view name, std::string_view ns, std::string_view domain);

}  // namespace elafros
