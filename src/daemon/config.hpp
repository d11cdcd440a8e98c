#pragma once
// elafrosd's settings: defaults, then the YAML config file, then flags (docs/architecture.md).

#include <boost/json/value.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "elafros/autoscaling.hpp"

namespace elafros {

struct DaemonConfig {
  std::string config_file;
  std::string data_dir = "/var/lib/elafros";
  std::string socket = "/run/elafros/elafros.sock";
  std::string socket_group;  // the group that owns the API socket; empty: the daemon's
  std::string listen = "127.0.0.1:8080";
  std::string domain = "localhost";
  std::string runtime = "runc";
  // securityContext's bounds (docs/architecture.md, "Isolation"): Knative's secure-pod-defaults,
  // and whether a container may ask for seccompProfile Unconfined.
  std::string secure_pod_defaults = "disabled";
  // Per-instance networks (docs/architecture.md, "Isolation"): "bridge" gives every instance a
  // network namespace on network-bridge's network-subnet; "host" shares the host's network
  // (the old behaviour, opt-in).
  std::string network = "bridge";
  std::string network_bridge = "elafros0";
  std::string network_subnet = "10.63.0.0/16";
  int network_pool_size = 8;
  bool network_service_to_service = false;  // instances may call services through the proxy
  bool seccomp_unconfined = false;
  // User namespaces (docs/architecture.md, "Isolation"): container ids 0..size-1 are host ids
  // base..base+size-1 for every instance, on a chowned copy of the image made once.
  bool user_namespaces = false;
  std::int64_t user_namespace_base = 100000;
  std::int64_t user_namespace_size = 65536;
  std::string log_level = "info";
  int readiness_timeout_seconds = 60;
  int stop_grace_seconds = 10;
  int shutdown_timeout_seconds = 10;
  int activator_queue_size = 1000;
  double max_image_bytes = 32.0 * (1ULL << 30);  // stored bytes of one image
  double max_layer_bytes = 16.0 * (1ULL << 30);  // uncompressed bytes of one layer
  // Registries (docs/architecture.md): HOST[:PORT]s that may use plain HTTP or unverified TLS, a
  // Docker-style certs.d directory of extra CAs, and the timeout for connecting and reading.
  std::vector<std::string> insecure_registries;
  // hostPath volumes may mount only paths below these directories; none (the default): no
  // hostPath volume is allowed, since it reaches the host's files.
  std::vector<std::string> host_path_prefixes;
  std::string registry_certs_dir = "/etc/elafros/certs.d";
  int registry_timeout_seconds = 60;
  // Logs (docs/architecture.md): where collected lines go ("file": the store that 'elafros logs'
  // reads; "stdout": JSON lines on the daemon's stdout, for the journal), and the file store's
  // size-based rotation per revision.
  std::string metrics_listen;  // ADDRESS:PORT for GET /metrics over TCP; empty: socket only
  // The API over HTTPS with Bearer tokens (ADDRESS:PORT; empty: the socket only), with the
  // operator's certificate and key, or ones generated under <data-dir>/tls.
  std::string api_listen;
  // The proxy's HTTPS listener (ADDRESS:PORT; empty: none), with HTTP/2 by ALPN. Certificates
  // come from tls_cert_dir (HOST.crt and HOST.key, *.DOMAIN.crt for a wildcard), DomainMappings'
  // Secrets, and else from the daemon's local CA (<data-dir>/tls/ca.crt).
  std::string listen_tls;
  std::string tls_cert_dir;
  // Changes the watch cache keeps: a watch from an older resourceVersion gets 410 Gone and
  // lists again (kube-apiserver's --default-watch-cache-size).
  int watch_cache_size = 4096;
  double watch_cache_bytes = 4 << 20;  // and at most this much of their JSON
  // At start, raise RLIMIT_NOFILE's soft limit to the hard one (as Go's runtime and nginx's
  // worker_rlimit_nofile do). Off: keep the limit the daemon was started with.
  bool raise_file_limit = true;
  // Connections each listener holds at most (docs/architecture.md, "Faults"): the proxy's, and
  // the API's (socket and HTTPS each). Past it new ones get 503 with Retry-After. 0: no fixed
  // cap; the descriptor headroom still applies to the proxy.
  int max_connections = 0;
  int api_max_connections = 0;
  int max_connections_per_client = 256;  // the proxy's, from one client address; 0: no cap
  // Deadlines of the proxy and the API listeners (docs/architecture.md, "HTTP front end").
  int header_timeout_seconds = 15;     // a request's header, from its first byte
  int body_timeout_seconds = 60;       // between reads of a request's body
  int keepalive_timeout_seconds = 75;  // the proxy's, idle between requests
  int send_timeout_seconds = 60;       // each write of an API answer or stream
  // runc calls that take longer are killed and count as failed.
  int runtime_timeout_seconds = 60;
  // How often the orphan sweep compares runc's containers, overlay mounts and cgroups with the
  // instances the daemon tracks, and removes strays.
  int orphan_sweep_seconds = 60;
  // status warns when the data dir's file system has less free space than this.
  double disk_free_warning_bytes = 1.0 * (1ULL << 30);
  // A log sink this many bytes behind on a spool loses the oldest lines there (counted).
  double log_spool_max_bytes = 256.0 * (1 << 20);
  std::string tls_cert;
  std::string tls_key;
  std::string access_log;  // per-request JSON lines: a file path, "stdout", or empty (off)
  // Where logs go (docs/architecture.md, "Telemetry sinks"): file and stdout take apps' lines;
  // journald, syslog and otlp take what log-sink-sources name (apps', access and the daemon's).
  std::vector<std::string> log_sinks = {"file"};
  std::vector<std::string> log_sink_sources = {"app", "access", "daemon"};
  int log_sink_queue = 10000;  // records waiting per network sink; more are dropped, counted
  std::string journald_socket = "/run/systemd/journal/socket";
  std::string syslog_address = "unix:///dev/log";  // or udp://HOST:PORT, tcp://HOST:PORT
  std::string syslog_facility = "daemon";
  std::string otlp_endpoint = "http://127.0.0.1:4318";  // OTLP/HTTP; /v1/logs is added
  // Tracing (Knative's config-observability keys): none, or http/json (OTLP/HTTP JSON spans of
  // proxied requests to tracing-endpoint, otlp-endpoint when empty); the share of new traces
  // sampled (a caller's traceparent decides for its own).
  std::string tracing_protocol = "none";
  std::string tracing_endpoint;
  double tracing_sampling_rate = 0.1;
  // Metrics: prometheus (scraped at /metrics only), or http/json (also pushed as OTLP every
  // metrics-export-interval-seconds to metrics-endpoint, otlp-endpoint when empty).
  std::string metrics_protocol = "prometheus";
  std::string metrics_endpoint;
  int metrics_export_interval_seconds = 60;
  double log_max_file_bytes = 10.0 * (1 << 20);
  int log_max_files = 5;
  // Events: the largest event the ingress takes (413 above), and how long and how many finished
  // events are kept for 'elafros broker events'.
  double event_max_bytes = 1 << 20;
  int event_retention_seconds = 3600;
  int event_retention_count = 10000;
  double event_retention_bytes = 256.0 * (1 << 20);  // the kept events' attributes and data
  // The brokers' ingress creates an EventType for each (type, source) it sees on a broker.
  bool eventtype_auto_create = true;
  // GET /metrics without a token (a Prometheus scrape): allowed unless this is false.
  bool metrics_anonymous = true;
  // Who may send events to brokers (docs/architecture.md, "Event policy"): senders without a
  // token on the loopback, from anywhere, or none; and what decides for a broker no
  // EventPolicy selects (Knative's default-authorization-mode).
  std::string broker_anonymous_publish = "loopback";
  std::string default_authorization_mode = "allow-same-namespace";
  // Live instances on the machine at most, whatever the quotas say (0: no cap).
  int max_instances = 0;
  // Standby instances (docs/architecture.md, "Standby instances"): per revision and in all at
  // most, and how long a revision without the annotation keeps one after its last instance.
  int standby_per_revision = 1;
  int standby_max = 8;
  int standby_idle_seconds = 600;
  // Builds: how many run at once (the rest wait in order), the cgroup limits of every step, the
  // builds' CPU weight against instances (cgroup v1 cpu.shares of their parent; instances'
  // is 1024), and the largest source upload.
  int build_max_concurrent = 2;
  std::string build_step_cpu;
  std::string build_step_memory;
  int build_step_pids = 4096;
  int build_cpu_shares = 512;
  double build_source_max_bytes = 512.0 * (1 << 20);
  AutoscalingDefaults autoscaling;
  // The audit log: where (empty: <data-dir>/audit), its rotation, and a policy file (an
  // audit.k8s.io/v1 Policy in YAML; empty: mutations and denials at Metadata).
  std::string audit_dir;
  double audit_max_file_bytes = 100.0 * (1 << 20);
  int audit_max_files = 10;
  std::string audit_policy;
};

// Reads a YAML config file into `config`. Throws std::runtime_error naming the bad key or value.
void load_config_file(const std::string& path, DaemonConfig& config);
// A YAML file (an audit policy) as JSON; scalars are strings. Throws std::runtime_error.
boost::json::value load_yaml_as_json(const std::string& path);
// Every key a config file may hold.
std::vector<std::string> config_keys();

// Splits "ADDRESS:PORT". Throws std::runtime_error when malformed.
std::pair<std::string, unsigned short> parse_listen(const std::string& listen);

}  // namespace elafros
