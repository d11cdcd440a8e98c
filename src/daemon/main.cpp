// elafrosd: wires the concrete parts together and runs them (docs/architecture.md).
//   control io_context (this thread): API, reconciler, instance lifecycle
//   proxy io_context (its own thread): the data plane
//   store thread: every SQLite call; blocking pool: runc and image work

#include <fcntl.h>
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "api/api_credentials.hpp"
#include "api/api_server.hpp"
#include "api/api_tokens.hpp"
#include "api/audit_log.hpp"
#include "build/build_controller.hpp"
#include "commit_queue.hpp"
#include "config.hpp"
#include "daemon/sd_notify.hpp"
#include "elafros/build.hpp"
#include "elafros/errno_text.hpp"
#include "elafros/resource_json.hpp"
#include "event_queue.hpp"
#include "events/dispatcher.hpp"
#include "events/event_controller.hpp"
#include "events/event_credentials.hpp"
#include "events/event_sender.hpp"
#include "events/source_controller.hpp"
#include "image_exporter.hpp"
#include "image_store.hpp"
#include "log_collector.hpp"
#include "policy/namespace_controller.hpp"
#include "policy/quota_book.hpp"
#include "policy/rbac_authorizer.hpp"
#include "posix_process_runner.hpp"
#include "proxy/access_log.hpp"
#include "proxy/broker_ingress.hpp"
#include "proxy/domain_certificates.hpp"
#include "proxy/proxy_server.hpp"
#include "proxy/proxy_tls.hpp"
#include "reconciler.hpp"
#include "registry_client.hpp"
#include "registry_credentials.hpp"
#include "runc_runtime.hpp"
#include "secret_cipher.hpp"
#include "serving_controller.hpp"
#include "source_archive_store.hpp"
#include "sqlite_store.hpp"
#include "telemetry/forwarders.hpp"
#include "telemetry/tracer.hpp"
#include "version.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace elafros;

namespace {

// One daemon per data dir: an flock held for the life of the process.
int lock_data_dir(const std::string& data_dir) {
  std::string path = data_dir + "/elafrosd.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open {}: {}", path, errno_text(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw std::runtime_error(
        fmt::format("another elafrosd is already running on data dir {} (it holds {}); stop it "
                    "first or use another --data-dir",
                    data_dir, path));
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::write(fd, pid.data(), pid.size()) < 0) {
  }
  return fd;
}

// RLIMIT_NOFILE's soft limit up to the hard one, as Go's runtime does: a shell's 1024 (or 256)
// is far too few for a proxy and its instances (docs/architecture.md, "Faults").
void raise_file_limit(bool raise) {
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return;
  if (raise && nofile.rlim_cur < nofile.rlim_max) {
    rlim_t was = nofile.rlim_cur;
    nofile.rlim_cur = nofile.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &nofile) == 0)
      spdlog::info("raised the open-files limit from {} to {}", was, nofile.rlim_cur);
    else
      spdlog::warn("cannot raise the open-files limit from {}: {}", was, errno_text(errno));
    return;
  }
  if (nofile.rlim_cur < 4096)
    spdlog::warn("the open-files limit is {}; new proxy connections are answered 503 near it ({})",
                 nofile.rlim_cur,
                 raise ? "the hard limit is as low: raise LimitNOFILE or ulimit -Hn"
                       : "set raise-file-limit: true, or raise LimitNOFILE or ulimit -n");
}

// In a user namespace, runc's init runs as the mapped root (an unprivileged host uid) and must
// reach every instance's bundle: the data dir and its instances/ are made traversable (not
// listable) for others, and a parent that is not refuses the start, saying which.
void let_mapped_root_reach(const std::string& data_dir, std::int64_t base) {
  std::error_code ec;
  fs::create_directories(data_dir + "/instances", ec);
  for (const std::string& dir : {data_dir, data_dir + "/instances"})
    if (::chmod(dir.c_str(), 0711) != 0)
      throw std::runtime_error(fmt::format("user-namespaces: cannot make {} traversable: {}", dir,
                                           errno_text(errno)));
  for (fs::path p = fs::path(data_dir).parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH))
      throw std::runtime_error(fmt::format(
          "user-namespaces: instances run as host uid {} and up, which cannot traverse {} (mode "
          "{:04o}) on the way to the data dir {}; chmod o+x {} or choose a data dir below "
          "directories others may traverse",
          base, p.string(), st.st_mode & 07777, data_dir, p.string()));
    if (p == p.root_path()) break;
  }
}

int run(const DaemonConfig& cfg) {
  auto level = spdlog::level::from_str(cfg.log_level);
  if (level == spdlog::level::off && cfg.log_level != "off")
    throw std::runtime_error(fmt::format(
        "--log-level \"{}\" is not one of trace, debug, info, warn, error, off", cfg.log_level));
  spdlog::set_level(level);
  raise_file_limit(cfg.raise_file_limit);
  auto [address, port] = parse_listen(cfg.listen);

  std::error_code ec;
  fs::create_directories(cfg.data_dir, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("cannot create --data-dir {}: {}", cfg.data_dir, ec.message()));
  std::string data_dir = fs::canonical(cfg.data_dir).string();
  int lock_fd = lock_data_dir(data_dir);
  (void)lock_fd;

  // Detached containers are re-parented to us when runc exits; we reap them (docs/architecture.md).
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::signal(SIGPIPE, SIG_IGN);

  auto store = SqliteStore::open(data_dir + "/elafros.db");
  if (!store) throw std::runtime_error(store.error().message);
  // Secrets are sealed at rest under keys kept beside, not in, the database.
  auto secret_keys = SecretCipher::open(data_dir + "/keys/secrets.keys");
  if (!secret_keys) throw std::runtime_error(secret_keys.error().message);
  (*store)->set_secret_cipher(secret_keys->get());
  UnpackLimits limits;
  limits.max_image_bytes = static_cast<std::uint64_t>(cfg.max_image_bytes);
  limits.max_layer_bytes = static_cast<std::uint64_t>(cfg.max_layer_bytes);
  auto credentials = std::make_shared<CredentialStore>(data_dir + "/registries/auth.json");
  if (auto r = credentials->load(); !r) throw std::runtime_error(r.error().message);
  RegistryOptions registry_options;
  registry_options.certs_dir = cfg.registry_certs_dir;
  registry_options.timeout = std::chrono::seconds(cfg.registry_timeout_seconds);
  for (const auto& host : cfg.insecure_registries) {
    auto canonical = canonical_registry_host(host);
    if (!canonical) throw std::runtime_error("insecure-registries: " + canonical.error().message);
    registry_options.insecure_registries.push_back(*canonical);
  }
  auto registry = std::make_shared<RegistryClient>(registry_options, credentials);
  auto images = std::make_shared<ImageStore>(data_dir + "/images", limits, registry);
  auto runner = std::make_shared<PosixProcessRunner>();
  auto version = runner->run({cfg.runtime, "--version"}, {});
  if (!version || version->exit_code != 0)
    throw std::runtime_error(fmt::format(
        "the container runtime \"{}\" cannot be run; install runc or point --runtime at it",
        cfg.runtime));
  RuncOptions runc_options;
  runc_options.runc = cfg.runtime;
  runc_options.data_dir = data_dir;
  runc_options.timeout = std::chrono::seconds(cfg.runtime_timeout_seconds);
  runc_options.security.secure_pod_defaults = cfg.secure_pod_defaults;
  runc_options.security.allow_unconfined = cfg.seccomp_unconfined;
  runc_options.host_path_prefixes = cfg.host_path_prefixes;
  if (cfg.user_namespaces) {
    runc_options.user_namespace = IdMapping{static_cast<std::uint32_t>(cfg.user_namespace_base),
                                            static_cast<std::uint32_t>(cfg.user_namespace_size)};
    let_mapped_root_reach(data_dir, cfg.user_namespace_base);
  }
  RuncRuntime runtime(runc_options, runner, images);
  runtime.end_predecessor_calls();
  runtime.sweep_shifted_rootfs();

  // Logs: spools the runtime creates, collected on a thread of their own into the sinks.
  std::vector<std::shared_ptr<LogSink>> sinks;
  std::shared_ptr<FileLogStore> log_store;
  for (const auto& sink : cfg.log_sinks) {
    if (sink != "file" && sink != "stdout") continue;  // the network sinks: below
    if (sink == "file") {
      log_store = std::make_shared<FileLogStore>(
          data_dir + "/logs/store",
          LogRetention{static_cast<std::uint64_t>(cfg.log_max_file_bytes), cfg.log_max_files});
      sinks.push_back(log_store);
    } else {
      sinks.push_back(std::make_shared<StdoutLogSink>());
    }
  }
  // The network sinks (journald, syslog, otlp): apps' lines, access lines and the daemon's own,
  // through the telemetry hub's bounded queues, on its own thread.
  SinkOptions sink_options;
  sink_options.queue_limit = static_cast<std::size_t>(cfg.log_sink_queue);
  sink_options.sources = cfg.log_sink_sources;
  TelemetryHub telemetry(sink_options);
  for (const auto& sink : cfg.log_sinks) {
    if (sink == "journald") {
      telemetry.add(make_journald_exporter(telemetry.io(), cfg.journald_socket));
    } else if (sink == "syslog") {
      SyslogFormat format;
      auto facility = syslog_facility(cfg.syslog_facility);
      if (!facility)
        throw std::runtime_error(fmt::format(
            "syslog-facility \"{}\" is not a syslog facility (daemon, user, local0 … local7, …)",
            cfg.syslog_facility));
      format.facility = *facility;
      char host[256] = {};
      if (::gethostname(host, sizeof host - 1) == 0) format.hostname = host;
      format.pid = static_cast<int>(::getpid());
      auto exporter = make_syslog_exporter(telemetry.io(), cfg.syslog_address, format);
      if (!exporter) throw std::runtime_error(exporter.error().message);
      telemetry.add(std::move(*exporter));
    } else if (sink == "otlp") {
      auto exporter = make_otlp_log_exporter(telemetry.io(), cfg.otlp_endpoint, kVersion);
      if (!exporter) throw std::runtime_error(exporter.error().message);
      telemetry.add(std::move(*exporter));
    }
  }
  if (cfg.tracing_protocol == "http/json") {
    auto exporter = make_otlp_trace_exporter(
        telemetry.io(), cfg.tracing_endpoint.empty() ? cfg.otlp_endpoint : cfg.tracing_endpoint,
        kVersion);
    if (!exporter) throw std::runtime_error(exporter.error().message);
    telemetry.set_traces(std::move(*exporter));
  }
  if (cfg.metrics_protocol == "http/json") {
    auto exporter = make_otlp_metrics_exporter(
        telemetry.io(), cfg.metrics_endpoint.empty() ? cfg.otlp_endpoint : cfg.metrics_endpoint);
    if (!exporter) throw std::runtime_error(exporter.error().message);
    telemetry.set_metrics(std::move(*exporter));
  }
  telemetry.start();
  if (telemetry.takes("app")) sinks.push_back(make_forwarding_log_sink(telemetry));
  // The daemon's own lines, until this scope ends (an early throw included): the forwarder goes
  // before the hub it feeds.
  struct DaemonForward {
    bool on = false;
    ~DaemonForward() {
      if (on) spdlog::default_logger()->sinks().pop_back();
    }
  } daemon_forward;
  if (telemetry.takes("daemon")) {
    spdlog::default_logger()->sinks().push_back(make_daemon_log_forwarder(telemetry));
    daemon_forward.on = true;
  }
  LogCollectorOptions log_options;
  log_options.spool_max_bytes = static_cast<std::uint64_t>(cfg.log_spool_max_bytes);
  LogCollector logs(data_dir, sinks, log_store, log_options);
  logs.start();

  // Builds: their own runtime (runc state, bundles, spools and a cgroup parent apart from the
  // instances', so the reconciler never sees a step), log collector and store of logs that
  // outlive them, uploaded sources, and the exporter of their images.
  for (const auto& [key, value] : {std::pair{"build-step-cpu", cfg.build_step_cpu},
                                   std::pair{"build-step-memory", cfg.build_step_memory}}) {
    bool cpu = std::string_view(key) == "build-step-cpu";
    if (!value.empty() && !(cpu ? parse_cpu_millis(value) : parse_memory_bytes(value)))
      throw std::runtime_error(fmt::format("{}: \"{}\" is not a {} quantity, e.g. {}", key, value,
                                           cpu ? "CPU" : "memory", cpu ? "2 or 500m" : "2Gi"));
  }
  const std::string builds_dir = build_data_dir(data_dir);
  RuncOptions build_runc = runc_options;
  build_runc.data_dir = builds_dir;
  build_runc.user_namespace.reset();  // build steps keep the host's user namespace
  build_runc.cgroup_parent = "elafros-builds";
  build_runc.pids_limit = cfg.build_step_pids;
  RuncRuntime build_runtime(build_runc, runner, images);
  build_runtime.end_predecessor_calls();
  if (auto r = build_runtime.set_parent_cpu_shares(cfg.build_cpu_shares); !r)
    spdlog::warn("builds run with the CPU weight of instances: {}", r.error().message);
  auto build_log_store = std::make_shared<FileLogStore>(
      builds_dir + "/logs/store",
      LogRetention{static_cast<std::uint64_t>(cfg.log_max_file_bytes), cfg.log_max_files});
  LogCollector build_logs(builds_dir, {build_log_store}, build_log_store, log_options);
  build_logs.start();
  SourceLimits source_limits;
  source_limits.max_bytes = static_cast<std::uint64_t>(cfg.max_layer_bytes);
  SourceArchiveStore build_sources(builds_dir + "/sources", source_limits);
  OciImageExporter exporter(images);

  asio::io_context control(1);
  asio::io_context proxy_io(1);
  asio::io_context events_io(1);  // the dispatcher's
  asio::thread_pool store_thread(1);
  asio::thread_pool blocking(2);
  asio::thread_pool build_work(2);  // runc, git, unpacking and export for builds
  RoutingSnapshot routes;

  // Events: the brokers' ingress on the proxy's listener, the durable queue, the dispatcher.
  BrokerSnapshot brokers;
  EventQueue event_queue(**store, store_thread.get_executor());
  BrokerIngress ingress(brokers, event_queue, static_cast<std::uint64_t>(cfg.event_max_bytes));
  ProxyOptions popts;
  popts.ingress = &ingress;
  popts.ingress_host = "broker-ingress." + cfg.domain;
  popts.address = address;
  popts.port = port;
  popts.activator_queue_limit = static_cast<std::size_t>(cfg.activator_queue_size);
  popts.max_connections = static_cast<std::size_t>(cfg.max_connections);
  popts.max_connections_per_client = static_cast<std::size_t>(cfg.max_connections_per_client);
  popts.header_timeout = std::chrono::seconds(cfg.header_timeout_seconds);
  popts.body_timeout = std::chrono::seconds(cfg.body_timeout_seconds);
  popts.idle_timeout = std::chrono::seconds(cfg.keepalive_timeout_seconds);
  std::unique_ptr<AccessLog> access_log;
  if (!cfg.access_log.empty()) {
    auto opened = AccessLog::open(proxy_io, cfg.access_log);
    if (!opened) throw std::runtime_error(opened.error().message);
    access_log = std::move(*opened);
    popts.access_log = access_log.get();
  }
  if (telemetry.takes("access")) {
    if (!access_log) {
      auto opened = AccessLog::open(proxy_io, "");  // forwarded only
      if (!opened) throw std::runtime_error(opened.error().message);
      access_log = std::move(*opened);
      popts.access_log = access_log.get();
    }
    access_log->set_forward(access_log_forwarder(telemetry));
  }
  std::unique_ptr<Tracer> tracer;
  if (telemetry.tracing()) {
    tracer = std::make_unique<Tracer>(proxy_io, telemetry, cfg.tracing_sampling_rate);
    popts.tracer = tracer.get();
  }
  // HTTPS on the proxy: certificates from the operator's directory, DomainMappings' Secrets,
  // or the local CA.
  std::optional<LocalCa> local_ca;
  std::unique_ptr<ProxyCertificates> proxy_certificates;
  if (!cfg.listen_tls.empty()) {
    auto [taddr, tport] = parse_listen(cfg.listen_tls);
    auto ca = LocalCa::open(data_dir + "/tls");
    if (!ca) throw std::runtime_error(ca.error().message);
    local_ca = std::move(*ca);
    auto opened =
        ProxyCertificates::open({cfg.tls_cert_dir, &*local_ca, &routes, popts.ingress_host});
    if (!opened) throw std::runtime_error(opened.error().message);
    proxy_certificates = std::move(*opened);
    popts.certificates = proxy_certificates.get();
    popts.tls_address = taddr;
    popts.tls_port = tport;
  }
  ProxyServer proxy(proxy_io, routes, popts);
  if (auto r = proxy.listen(); !r) throw std::runtime_error(r.error().message);
  std::string listen = fmt::format("{}:{}", address, proxy.port());
  // A network namespace per instance (docs/architecture.md, "Isolation"), once the proxy's
  // port is known: instances reach it at the bridge's gateway.
  std::unique_ptr<BridgeNetwork> network;
  if (cfg.network == "bridge") {
    BridgeOptions nopts;
    nopts.bridge = cfg.network_bridge;
    nopts.subnet = cfg.network_subnet;
    nopts.pool_size = static_cast<std::size_t>(cfg.network_pool_size);
    nopts.proxy_port = proxy.port();
    if (cfg.user_namespaces) {  // namespaces the instances' root owns
      nopts.userns_base = static_cast<std::uint32_t>(cfg.user_namespace_base);
      nopts.userns_size = static_cast<std::uint32_t>(cfg.user_namespace_size);
    }
    auto opened = BridgeNetwork::open(nopts);
    if (!opened)
      throw std::runtime_error(opened.error().message +
                               " (network: host in the config shares the host's network instead)");
    network = std::move(opened.value());
    runtime.set_network(network.get());
    proxy.set_instance_network(network->subnet_base(), network->subnet_mask(),
                               cfg.network_service_to_service);
  }
  // The daemon's own senders (sources, triggers) prove to the ingress who they are.
  EventCredentials event_credentials(
      fmt::format("http://broker-ingress.{}:{}", cfg.domain, proxy.port()));
  DispatcherOptions dopts;
  dopts.proxy_port = proxy.port();
  dopts.defaults.retry = 10;
  dopts.defaults.backoff_policy = "exponential";
  dopts.defaults.backoff_delay = std::chrono::milliseconds(200);
  dopts.retention = std::chrono::seconds(cfg.event_retention_seconds);
  dopts.retention_count = cfg.event_retention_count;
  dopts.retention_bytes = static_cast<std::int64_t>(cfg.event_retention_bytes);
  dopts.credentials = &event_credentials;
  Dispatcher dispatcher(events_io, store_thread, **store, event_queue, brokers, dopts);
  event_queue.on_committed([&dispatcher] { dispatcher.wake(); });
  EventSender sender(events_io, &event_credentials);  // the sources', on the events thread

  ReconcilerOptions ropts;
  ropts.domain = cfg.domain;
  ropts.listen_port = proxy.port();
  ropts.readiness_timeout = std::chrono::seconds(cfg.readiness_timeout_seconds);
  ropts.stop_grace = std::chrono::seconds(cfg.stop_grace_seconds);
  ropts.autoscaling = cfg.autoscaling;
  ropts.orphan_sweep = std::chrono::seconds(cfg.orphan_sweep_seconds);
  // New snapshots wake the requests waiting in the activator (on the proxy's thread).
  ropts.routes_published = [&proxy] { proxy.routes_changed(); };
  // The serving controller's, once it exists.
  std::function<void(const std::string&, const std::string&)> status_changed;
  ropts.status_changed = [&status_changed](const std::string& ns, const std::string& service) {
    if (status_changed) status_changed(ns, service);
  };
  // Quotas: the quota book, made below, bounds how far revisions scale.
  QuotaBook* quota_ptr = nullptr;
  ropts.quota = [&quota_ptr](const std::string& ns) {
    return quota_ptr ? quota_ptr->instance_quota(ns) : InstanceQuota{};
  };
  ropts.max_instances = cfg.max_instances;
  ropts.standby_per_revision = cfg.standby_per_revision;
  ropts.standby_max = cfg.standby_max;
  ropts.standby_idle = std::chrono::seconds(cfg.standby_idle_seconds);
  Reconciler reconciler(control, store_thread, blocking, **store, runtime, routes,
                        std::make_shared<RealClock>(), ropts);

  // The activator's pokes reach the autoscaler on the control thread, without blocking the proxy.
  proxy.set_demand_callback([&control, &reconciler](const std::string& ns,
                                                    const std::string& revision,
                                                    std::int64_t in_flight) {
    asio::post(control, [&reconciler, ns, revision, in_flight] {
      reconciler.demand(ns, revision, in_flight);
    });
  });

  // API writes commit grouped on the store thread; what commits feeds the watchers (the API's
  // watch verb, and the serving controller that deploys).
  WatchCache watch_cache((*store)->current_resource_version(),
                         static_cast<std::size_t>(cfg.watch_cache_size),
                         static_cast<std::size_t>(cfg.watch_cache_bytes));
  CommitQueue commits(**store, store_thread.get_executor(), watch_cache);
  QuotaBook quotas(control, store_thread, **store, watch_cache, commits,
                   [&reconciler](const std::string& ns) { return reconciler.namespace_usage(ns); });
  quota_ptr = &quotas;
  ServingController serving(
      control, watch_cache, commits, reconciler,
      [&logs](const std::string& ns, const std::string& service, const std::string& revision,
              std::function<void()> done) { logs.remove(ns, service, revision, std::move(done)); });
  status_changed = [&serving](const std::string& ns, const std::string& service) {
    serving.status_changed(ns, service);
  };
  const std::int64_t loaded_version = watch_cache.latest();
  EventControllerOptions eopts;
  eopts.ingress_url = fmt::format("http://broker-ingress.{}:{}", cfg.domain, proxy.port());
  eopts.domain = cfg.domain;
  eopts.proxy_port = proxy.port();
  eopts.published = [&dispatcher] { dispatcher.wake(); };
  EventController event_controller(control, store_thread, **store, watch_cache, commits, brokers,
                                   eopts);

  BuildController* builds_ptr = nullptr;  // for /metrics, set once it exists
  ApiInfo api_info{kVersion,
                   data_dir,
                   cfg.socket,
                   listen,
                   cfg.domain,
                   cfg.runtime,
                   static_cast<std::uint64_t>(cfg.disk_free_warning_bytes),
                   static_cast<std::size_t>(cfg.api_max_connections),
                   [&access_log, &telemetry, &cfg](LogHealth& h) {
                     for (const auto& t : telemetry.health()) {
                       LogHealth::Sink s;
                       s.name = t.name;
                       s.healthy = t.healthy;
                       s.last_error = t.last_error;
                       s.failed_writes = t.retries;
                       s.dropped_lines = t.dropped + t.failed;
                       h.sinks.push_back(std::move(s));
                     }
                     if (!access_log || cfg.access_log.empty()) return;
                     AccessLog::Health a = access_log->health();
                     LogHealth::Sink s;
                     s.name = "access-log";
                     s.healthy = a.healthy;
                     s.last_error = a.last_error;
                     s.failed_writes = a.failed_writes;
                     s.pending_bytes = a.pending_bytes;
                     s.dropped_lines = a.dropped_lines;
                     h.sinks.push_back(std::move(s));
                   },
                   [&dispatcher, &ingress, &sender, &builds_ptr, &telemetry] {
                     return telemetry.metrics() +
                            render_event_metrics(dispatcher.stats(), ingress.stats()) +
                            render_source_metrics(sender.stats()) +
                            (builds_ptr ? builds_ptr->metrics() : std::string());
                   }};
  api_info.build_sources = &build_sources;
  api_info.build_logs = &build_logs;
  api_info.runner = runner.get();
  api_info.build_source_max_bytes = static_cast<std::size_t>(cfg.build_source_max_bytes);
  // Identities and RBAC: tokens, the socket-group's administrators, the authorizer (made
  // below, once the API's writer exists; it serves before any request does).
  auto tokens = ApiTokens::open(data_dir);
  if (!tokens) throw std::runtime_error(tokens.error().message);
  RbacAuthorizer* rbac_ptr = nullptr;
  api_info.tokens = tokens->get();
  api_info.authorize = [&rbac_ptr](const Identity& who, const RequestAttributes& request) {
    return rbac_ptr ? rbac_ptr->authorize(who, request)
                    : Decision{false, "RBAC: the authorizer is not loaded yet"};
  };
  api_info.rules_for = [&rbac_ptr](const Identity& who, const std::string& ns) {
    return rbac_ptr ? rbac_ptr->rules_for(who, ns) : std::vector<PolicyRule>{};
  };
  api_info.metrics_anonymous = cfg.metrics_anonymous;
  std::unique_ptr<DomainCertificates> domain_certificates;
  if (proxy_certificates) {
    api_info.listen_tls = fmt::format("{}:{}", popts.tls_address, proxy.tls_port());
    api_info.ca_pem = local_ca->cert_pem();
    domain_certificates = std::make_unique<DomainCertificates>(control, store_thread, **store,
                                                               watch_cache, *proxy_certificates);
    domain_certificates->start();
    api_info.domain_tls = [&domain_certificates, port = proxy.tls_port()](const std::string& ns,
                                                                          const std::string& name) {
      auto st = domain_certificates->status(ns, name);
      DomainTlsStatus out{st.served, st.message, ""};
      if (st.served)
        out.url = port == 443 ? "https://" + name : fmt::format("https://{}:{}", name, port);
      return out;
    };
  }
  api_info.header_timeout = std::chrono::seconds(cfg.header_timeout_seconds);
  api_info.body_timeout = std::chrono::seconds(cfg.body_timeout_seconds);
  api_info.send_timeout = std::chrono::seconds(cfg.send_timeout_seconds);
  api_info.max_connections_per_client = static_cast<std::size_t>(cfg.max_connections_per_client);
  api_info.host_path_prefixes = cfg.host_path_prefixes;
  api_info.admission = [&quotas](const KindInfo& k, const boost::json::object* old,
                                 boost::json::object& o) { return quotas.admit(k, old, o); };
  api::AuditOptions audit_options;
  audit_options.dir = cfg.audit_dir.empty() ? data_dir + "/audit" : cfg.audit_dir;
  audit_options.max_file_bytes = static_cast<std::uint64_t>(cfg.audit_max_file_bytes);
  audit_options.max_files = cfg.audit_max_files;
  if (!cfg.audit_policy.empty()) {
    auto policy = api::AuditPolicy::parse(load_yaml_as_json(cfg.audit_policy));
    if (!policy) throw std::runtime_error(policy.error().message);
    audit_options.policy = std::move(*policy);
  }
  auto audit = api::AuditLog::open(std::move(audit_options));
  if (!audit) throw std::runtime_error(audit.error().message);
  api_info.audit = audit->get();
  std::optional<gid_t> socket_gid;
  if (!cfg.socket_group.empty()) {
    struct group grp {};
    struct group* found = nullptr;
    std::vector<char> buf(16384);
    ::getgrnam_r(cfg.socket_group.c_str(), &grp, buf.data(), buf.size(), &found);
    if (!found)
      throw std::runtime_error(fmt::format(
          "socket-group \"{}\" does not exist; create it (groupadd --system {}) or set another",
          cfg.socket_group, cfg.socket_group));
    socket_gid = found->gr_gid;
    api_info.socket_gid = found->gr_gid;
  }
  ApiServer api(control, store_thread, blocking, **store, commits, watch_cache, *images, *registry,
                *credentials, logs, reconciler, std::move(api_info));
  RbacAuthorizer rbac(control, store_thread, **store, watch_cache, api.writer());
  rbac_ptr = &rbac;
  // Who may publish to brokers: tokens through RBAC (brokers/publish), the daemon's own senders
  // by their credentials, anonymous ones as broker-anonymous-publish says; then EventPolicies.
  PublishTokens publish_tokens(
      [&api](const std::string& authorization, const std::string& ns, const std::string& broker) {
        return api.token_publisher(authorization, ns, broker);
      });
  IngressPolicy ingress_policy;
  ingress_policy.credentials = &event_credentials;
  ingress_policy.tokens = &publish_tokens;
  ingress_policy.anonymous = cfg.broker_anonymous_publish == "none"  ? AnonymousPublish::kNone
                             : cfg.broker_anonymous_publish == "any" ? AnonymousPublish::kAny
                                                                     : AnonymousPublish::kLoopback;
  ingress_policy.mode = authorization_mode_from(cfg.default_authorization_mode)
                            .value_or(AuthorizationMode::kAllowSameNamespace);
  if (network) {
    ingress_policy.instance_subnet = network->subnet_base();
    ingress_policy.instance_mask = network->subnet_mask();
  }
  ingress.set_policy(ingress_policy, control);
  BuildControllerOptions bopts;
  bopts.data_dir = builds_dir;
  bopts.max_concurrent = cfg.build_max_concurrent;
  bopts.step_cpu = cfg.build_step_cpu;
  bopts.step_memory = cfg.build_step_memory;
  bopts.open_step_log = [&builds_dir](const std::string& ns, const std::string& build,
                                      const std::string& id) {
    auto open = [&](const char* stream) {
      return ::open(spool_path(builds_dir, ns, build, id, stream).c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    };
    return std::pair<int, int>{open("stdout"), open("stderr")};
  };
  bopts.close_step_log = [&build_runtime](const std::string& id) {
    build_runtime.finish_spools(id);
  };
  bopts.logs_finished = [&build_logs, &control](const std::string& ns, const std::string& build,
                                                std::function<void()> done) {
    build_logs.end_follows(ns, build, [&control, done = std::move(done)] {
      if (done) asio::post(control, done);
    });
  };
  bopts.logs_removed = [&build_logs](const std::string& ns, const std::string& build) {
    build_logs.remove(ns, build, "");
  };
  bopts.push = [&images](const std::string& digest, const std::string& destination) {
    return images->push(digest, destination);
  };
  BuildController builds(control, store_thread, build_work, **store, watch_cache, commits,
                         build_runtime, *runner, build_sources, exporter, bopts);
  builds_ptr = &builds;
  // Sources' events: their controller writes through the API's hooks.
  SourceControllerOptions sopts;
  sopts.ingress_url = eopts.ingress_url;
  sopts.domain = cfg.domain;
  sopts.proxy_port = proxy.port();
  sopts.api_server_url =
      cfg.api_listen.empty() ? "unix://" + cfg.socket : "https://" + cfg.api_listen;
  SourceController sources(control, store_thread, **store, watch_cache, commits, api.writer(),
                           sender, sopts);
  if (cfg.eventtype_auto_create)
    ingress.on_type_seen([&sources](const std::string& ns, const std::string& broker,
                                    const std::string& type, const std::string& source) {
      sources.register_event_type(ns, broker, type, source);
    });
  // Anyone on the machine may connect: every request is authorized by its peer's uid (root and
  // socket-group's members are administrators; other uids get what RoleBindings grant them).
  if (auto r = api.listen(cfg.socket, 0666); !r) throw std::runtime_error(r.error().message);
  if (socket_gid && ::chown(cfg.socket.c_str(), static_cast<uid_t>(-1), *socket_gid) != 0)
    throw std::runtime_error(fmt::format("cannot give {} to group {}: {}", cfg.socket,
                                         cfg.socket_group, errno_text(errno)));
  std::unique_ptr<ApiCredentials> api_credentials;
  if (!cfg.api_listen.empty()) {
    auto [aaddr, aport] = parse_listen(cfg.api_listen);
    std::vector<std::string> hosts{"localhost", "127.0.0.1", "::1"};
    if (aaddr != "0.0.0.0" && aaddr != "::" && aaddr != "127.0.0.1") hosts.push_back(aaddr);
    auto opened = ApiCredentials::open(data_dir, cfg.tls_cert, cfg.tls_key, hosts);
    if (!opened) throw std::runtime_error(opened.error().message);
    api_credentials = std::move(*opened);
    auto bound = api.listen_https(aaddr, aport, *api_credentials);
    if (!bound) throw std::runtime_error(bound.error().message);
  }
  if (!cfg.metrics_listen.empty()) {
    auto [maddr, mport] = parse_listen(cfg.metrics_listen);
    if (auto r = api.listen_metrics(maddr, mport); !r) throw std::runtime_error(r.error().message);
  }

  auto proxy_guard = asio::make_work_guard(proxy_io);
  std::thread proxy_thread([&proxy_io] { proxy_io.run(); });
  auto events_guard = asio::make_work_guard(events_io);
  std::thread events_thread([&events_io] { events_io.run(); });

  int exit_code = 0;
  NamespaceController namespaces(control, store_thread, **store, watch_cache, commits,
                                 api.writer());
  // The OTLP metrics push: the /metrics text, rendered on the control thread every interval.
  asio::steady_timer push_timer(control);
  const std::int64_t started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
  std::function<void()> push_metrics = [&] {
    push_timer.expires_after(std::chrono::seconds(cfg.metrics_export_interval_seconds));
    push_timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      api.metrics_text([&](std::string text) {
        std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
        telemetry.offer_metrics(otlp_metrics_json(text, started_ns, now, kVersion));
      });
      push_metrics();
    });
  };
  std::function<void()> start_serving;
  reconciler.start([&](Result<void> r) {
    if (!r) {
      spdlog::critical("cannot recover the stored state: {}", r.error().message);
      exit_code = 1;
      control.stop();
      return;
    }
    // Namespaces first: `default` exists before any other controller or client writes.
    namespaces.start(loaded_version, [&](Result<void> nr) {
      if (!nr) {
        spdlog::critical("cannot load the namespaces: {}", nr.error().message);
        exit_code = 1;
        control.stop();
        return;
      }
      // Then the roles: every request after this is authorized against them.
      rbac.start(loaded_version, [&](Result<void> rr) {
        if (!rr) {
          spdlog::critical("cannot load the roles and bindings: {}", rr.error().message);
          exit_code = 1;
          control.stop();
          return;
        }
        quotas.start(loaded_version, [&](Result<void> qr) {
          if (!qr) {
            spdlog::critical("cannot load the quotas: {}", qr.error().message);
            exit_code = 1;
            control.stop();
            return;
          }
          start_serving();
        });
      });
    });
  });
  start_serving = [&] {
    if (auto w = serving.start(loaded_version); !w) {
      spdlog::critical("cannot watch the stored state: {}", w.error().message);
      exit_code = 1;
      control.stop();
      return;
    }
    event_controller.start(loaded_version, [&](Result<void> er) {
      if (!er) spdlog::error("cannot load brokers and triggers: {}", er.error().message);
      dispatcher.start();
    });
    sources.start(loaded_version, [](Result<void> sr) {
      if (!sr) spdlog::error("cannot load the event sources: {}", sr.error().message);
    });
    builds.start(loaded_version, [](Result<void> br) {
      if (!br) spdlog::error("cannot load the builds: {}", br.error().message);
    });
    // The buildpacks ClusterBuildTemplate ships with elafros; one the operator changed stays.
    api.writer().write(buildpacks_template(), ObjectWriter::Mode::kCreateOnly, [](Result<void> w) {
      if (!w)
        spdlog::warn("cannot create the buildpacks ClusterBuildTemplate: {}", w.error().message);
    });
    proxy.start();
    (*audit)->start(control);
    api.start();
    if (telemetry.pushing_metrics()) push_metrics();
    spdlog::info("elafrosd {} serving: API on {}, proxy on http://{} (data dir {})", kVersion,
                 cfg.socket, listen, data_dir);
    notify_systemd("READY=1\nSTATUS=serving");
  };

  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish (bounded), leave workloads
  // running for the next start to adopt, and exit 0.
  asio::signal_set signals(control, SIGTERM, SIGINT);
  asio::steady_timer drain(control);
  auto deadline = std::make_shared<std::chrono::steady_clock::time_point>();
  std::function<void()> wait_drained = [&] {
    if (proxy.active_requests() == 0 || std::chrono::steady_clock::now() >= *deadline) {
      serving.stop();
      event_controller.stop();
      sources.stop();
      builds.stop();
      namespaces.stop();
      rbac.stop();
      quotas.stop();
      dispatcher.stop();
      reconciler.shutdown();
      control.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(10));
    drain.async_wait([&](boost::system::error_code) { wait_drained(); });
  };
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("received signal {}: stopping; instances keep running", sig);
    registry->cancel();  // pulls in progress end now rather than hold the exit
    notify_systemd("STOPPING=1");
    api.stop();
    push_timer.cancel();
    proxy.stop_accepting();
    *deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(cfg.shutdown_timeout_seconds);
    wait_drained();
  });

  control.run();
  status_changed = nullptr;  // the serving controller goes before the reconciler
  proxy_guard.reset();
  proxy_io.stop();
  proxy_thread.join();
  events_guard.reset();
  events_io.stop();
  events_thread.join();
  if (access_log) access_log->close();
  api.join();
  store_thread.join();
  blocking.join();
  build_work.join();
  if (network) network->shut_down();  // the bridge and its rules; instances keep their namespaces
  logs.stop();
  build_logs.stop();
  telemetry.stop();
  std::error_code rm;
  fs::remove(cfg.socket, rm);
  spdlog::info("elafrosd stopped");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  take_notify_socket();
  CLI::App app{
      "elafrosd: a serverless runtime for one machine (Knative semantics, runc containers)"};
  DaemonConfig defaults;
  std::string config_file, data_dir, socket, listen, domain, runtime, log_level, metrics_listen,
      access_log, api_listen, tls_cert, tls_key, network, network_bridge, network_subnet,
      listen_tls, tls_cert_dir;
  app.add_option("--config", config_file, "YAML config file; flags override its keys");
  app.add_option("--data-dir", data_dir,
                 fmt::format("state directory (default {})", defaults.data_dir));
  app.add_option("--socket", socket, fmt::format("API unix socket (default {})", defaults.socket));
  app.add_option("--listen", listen,
                 fmt::format("proxy address ADDRESS:PORT (default {})", defaults.listen));
  app.add_option("--listen-tls", listen_tls,
                 "also serve the proxy over HTTPS (HTTP/1.1 and HTTP/2) on ADDRESS:PORT, e.g. "
                 "127.0.0.1:8443 (default: off)");
  app.add_option("--tls-cert-dir", tls_cert_dir,
                 "certificates for --listen-tls: HOST.crt and HOST.key, *.DOMAIN.crt for a "
                 "wildcard (default: issued by the local CA, <data-dir>/tls/ca.crt)");
  app.add_option(
      "--domain", domain,
      fmt::format("domain of service hosts NAME.NAMESPACE.DOMAIN (default {})", defaults.domain));
  app.add_option("--runtime", runtime, "path of the runc binary (default: runc in PATH)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off (default info)");
  app.add_option("--metrics-listen", metrics_listen,
                 "also serve GET /metrics on ADDRESS:PORT over TCP (default: the API socket only)");
  app.add_option("--api-listen", api_listen,
                 "also serve the API over HTTPS on ADDRESS:PORT; every request needs a Bearer "
                 "token ('elafros kubeconfig' prints one)");
  app.add_option("--tls-cert", tls_cert,
                 "the HTTPS API's certificate chain (PEM; default: one generated under "
                 "<data-dir>/tls)");
  app.add_option("--tls-key", tls_key, "the key of --tls-cert (PEM)");
  app.add_option("--access-log", access_log,
                 "per-request JSON lines to this file, or \"stdout\" (default: off)");
  app.add_option("--network", network,
                 "bridge: a network namespace per instance (default); host: the host's network")
      ->check(CLI::IsMember({"bridge", "host"}));
  app.add_option("--network-bridge", network_bridge,
                 fmt::format("the instances' bridge (default {})", defaults.network_bridge));
  app.add_option("--network-subnet", network_subnet,
                 fmt::format("the instances' IPv4 subnet (default {})", defaults.network_subnet));
  app.set_version_flag("--version", std::string(kVersion));
  CLI11_PARSE(app, argc, argv);

  try {
    DaemonConfig cfg;
    if (!config_file.empty()) load_config_file(config_file, cfg);
    if (!data_dir.empty()) cfg.data_dir = data_dir;
    if (!socket.empty()) cfg.socket = socket;
    if (!listen.empty()) cfg.listen = listen;
    if (!domain.empty()) cfg.domain = domain;
    if (!runtime.empty()) cfg.runtime = runtime;
    if (!log_level.empty()) cfg.log_level = log_level;
    if (!metrics_listen.empty()) cfg.metrics_listen = metrics_listen;
    if (!api_listen.empty()) cfg.api_listen = api_listen;
    if (!listen_tls.empty()) cfg.listen_tls = listen_tls;
    if (!tls_cert_dir.empty()) cfg.tls_cert_dir = tls_cert_dir;
    if (!tls_cert.empty()) cfg.tls_cert = tls_cert;
    if (!tls_key.empty()) cfg.tls_key = tls_key;
    if (!access_log.empty()) cfg.access_log = access_log;
    if (!network.empty()) cfg.network = network;
    if (!network_bridge.empty()) cfg.network_bridge = network_bridge;
    if (!network_subnet.empty()) cfg.network_subnet = network_subnet;
    return run(cfg);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
