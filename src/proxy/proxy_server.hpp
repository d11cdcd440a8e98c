#pragma once
// The data plane: an HTTP/1.1 reverse proxy that routes on the Host header to the ready
// instances of a service's revisions (docs/architecture.md). It reads only the routing snapshot and
// atomics, so it never waits on the control plane.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "elafros/result.hpp"
#include "elafros/routing.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

class BrokerIngress;
class ProxyCertificates;

class AccessLog;
class Tracer;

struct ProxyOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;
  std::uint32_t header_limit = 32 * 1024;           // like nginx's large header buffers
  std::uint64_t body_limit = 100ULL * 1024 * 1024;  // request bodies beyond get 413
  // A request's header must arrive within header_timeout of its first byte (slowloris), each
  // read of its body within body_timeout of the last; a connection waits idle_timeout for the
  // next request.
  std::chrono::seconds header_timeout{15};
  std::chrono::seconds body_timeout{60};  // client_body_timeout
  std::chrono::seconds idle_timeout{75};  // keepalive_timeout
  std::chrono::seconds connect_timeout{5};
  std::size_t max_idle_upstream = 64;        // pooled connections per instance
  std::size_t activator_queue_limit = 1000;  // requests waiting per revision
  AccessLog* access_log = nullptr;           // per-request JSON lines, when set
  Tracer* tracer = nullptr;  // traceparent to the apps, and spans of sampled requests, when set
  // Descriptors kept free for the API, runc and logs: a client connection accepted above
  // RLIMIT_NOFILE's soft limit less this gets a fast 503 with Retry-After (docs/architecture.md,
  // "Faults"). 0: an eighth of the limit, at least 64.
  int descriptor_headroom = 0;
  // Client connections held at most (the max-connections key); more get the same fast 503.
  // 0: no fixed cap.
  std::size_t max_connections = 0;
  // Client connections held at most from one IP address (max-connections-per-client); more
  // get the same fast 503. 0: no cap.
  std::size_t max_connections_per_client = 0;
  // The brokers' ingress, on this listener for requests to ingress_host (any port).
  BrokerIngress* ingress = nullptr;
  std::string ingress_host;
  // Instances in network namespaces of their own (runtime/bridge_network) connect from this
  // IPv4 subnet (host order; mask 0: none): they reach the brokers' ingress, and services only
  // with service_to_service (network-service-to-service).
  std::uint32_t instance_subnet = 0;
  std::uint32_t instance_mask = 0;
  bool service_to_service = true;
  // The HTTPS listener (--listen-tls), when certificates is set: the same routes, with
  // HTTP/1.1 and HTTP/2 (ALPN h2).
  ProxyCertificates* certificates = nullptr;
  std::string tls_address = "127.0.0.1";
  std::uint16_t tls_port = 8443;
};

// Called on the proxy thread when a revision has requests waiting for capacity: namespace,
// revision, and its requests in flight (waiting ones included). It must not block.
using DemandCallback = std::function<void(const std::string&, const std::string&, std::int64_t)>;

class ProxyServer {
 public:
  ProxyServer(boost::asio::io_context& io, const RoutingSnapshot& routes, ProxyOptions options);
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Binds the listening sockets. Call on any thread before the io_context runs.
  Result<void> listen();
  // Starts accepting connections.
  void start();
  // Stops accepting; open connections finish their current request.
  void stop_accepting();
  // Where instances connect from (ProxyOptions::instance_subnet); before start().
  void set_instance_network(std::uint32_t subnet, std::uint32_t mask, bool service_to_service);
  std::uint16_t port() const;
  std::uint16_t tls_port() const;  // 0 without an HTTPS listener
  // Set before start(): how the activator pokes the autoscaler.
  void set_demand_callback(DemandCallback callback);
  // The routing snapshot was replaced: requests waiting in the activator look again. Any thread.
  void routes_changed();
  // Requests being served right now.
  std::int64_t active_requests() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
