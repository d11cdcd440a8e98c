#include "config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <functional>
#include <stdexcept>
#include <vector>

namespace elafros {

namespace {

// Reads `root` into `c`; with `known`, only lists the keys.
void load_config_node(const YAML::Node& root, const std::string& path, DaemonConfig& c,
                      std::vector<std::string>* known);

}  // namespace

std::vector<std::string> config_keys() {
  DaemonConfig scratch;
  std::vector<std::string> keys;
  load_config_node(YAML::Node(), "", scratch, &keys);
  return keys;
}

namespace {

boost::json::value to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    boost::json::object o;
    for (const auto& kv : n) o[kv.first.as<std::string>()] = to_json(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    boost::json::array a;
    for (const auto& item : n) a.push_back(to_json(item));
    return a;
  }
  if (n.IsScalar()) return boost::json::string(n.as<std::string>());
  return nullptr;
}

}  // namespace

boost::json::value load_yaml_as_json(const std::string& path) {
  try {
    return to_json(YAML::LoadFile(path));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", path, e.what()));
  }
}

void load_config_file(const std::string& path, DaemonConfig& c) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::runtime_error(
        fmt::format("config file {} cannot be read; check the path given to --config", path));
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("config file {} is not valid YAML: {}", path, e.what()));
  }
  load_config_node(root, path, c, nullptr);
}

namespace {

void load_config_node(const YAML::Node& root, const std::string& path, DaemonConfig& c,
                      std::vector<std::string>* known) {
  if (root.IsNull() && !known) return;
  if (!root.IsMap() && !known)
    throw std::runtime_error(
        fmt::format("config file {} must be a mapping of keys to values", path));
  // Every key, with how its value is read and checked. The order is the one error messages list.
  std::string key;  // the key being read, for messages
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(fmt::format("config file {}: {} {}", path, key, what));
  };
  auto str = [&](std::string& out) {
    return [&out, &fail](const YAML::Node& v) {
      if (!v.IsScalar()) fail("must be a string");
      out = v.as<std::string>();
    };
  };
  auto number = [&](double& out, double min, double max) {
    return [&out, &fail, min, max](const YAML::Node& v) {
      double n = 0;
      if (!v.IsScalar() || !YAML::convert<double>::decode(v, n)) fail("must be a number");
      if (n < min || n > max) fail(fmt::format("must be between {} and {}", min, max));
      out = n;
    };
  };
  auto integer = [&](int& out, int min) {
    return [&out, &fail, min](const YAML::Node& v) {
      int n = 0;
      if (!v.IsScalar() || !YAML::convert<int>::decode(v, n)) fail("must be an integer");
      if (n < min) fail(fmt::format("must be at least {}", min));
      out = n;
    };
  };
  auto id = [&](std::int64_t& out, std::int64_t min, std::int64_t max) {
    return [&out, &fail, min, max](const YAML::Node& v) {
      std::int64_t n = 0;
      if (!v.IsScalar() || !YAML::convert<std::int64_t>::decode(v, n))
        fail("must be a whole number");
      if (n < min || n > max) fail(fmt::format("must be between {} and {}", min, max));
      out = n;
    };
  };
  auto seconds = [&](std::chrono::seconds& out, double min, double max) {
    return [&out, &fail, min, max](const YAML::Node& v) {
      double n = 0;
      if (!v.IsScalar() || !YAML::convert<double>::decode(v, n))
        fail("must be a number of seconds");
      if (n < min || n > max) fail(fmt::format("must be between {} and {}", min, max));
      out = std::chrono::seconds(static_cast<std::int64_t>(n));
    };
  };
  auto choice = [&](std::string& out, std::vector<std::string> allowed) {
    return [&out, &fail, allowed](const YAML::Node& v) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      if (!v.IsScalar()) fail("must be one of " + list);
      std::string text = v.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), text) == allowed.end())
        fail(fmt::format("\"{}\" is not one of {}", text, list));
      out = text;
    };
  };
  auto boolean = [&](bool& out) {
    return [&out, &fail](const YAML::Node& v) {
      if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out)) fail("must be true or false");
    };
  };
  auto strings = [&](std::vector<std::string>& out) {
    return [&out, &fail](const YAML::Node& v) {
      if (!v.IsSequence()) fail("must be a list of strings");
      out.clear();
      for (const auto& item : v) {
        if (!item.IsScalar()) fail("must be a list of strings");
        out.push_back(item.as<std::string>());
      }
    };
  };
  AutoscalingDefaults& a = c.autoscaling;
  const std::vector<std::pair<std::string, std::function<void(const YAML::Node&)>>> keys = {
      {"data-dir", str(c.data_dir)},
      {"socket", str(c.socket)},
      {"socket-group", str(c.socket_group)},
      {"listen", str(c.listen)},
      {"domain", str(c.domain)},
      {"runtime", str(c.runtime)},
      {"log-level", str(c.log_level)},
      {"readiness-timeout-seconds", integer(c.readiness_timeout_seconds, 1)},
      {"stop-grace-seconds", integer(c.stop_grace_seconds, 1)},
      {"shutdown-timeout-seconds", integer(c.shutdown_timeout_seconds, 1)},
      {"activator-queue-size", integer(c.activator_queue_size, 1)},
      {"max-image-bytes", number(c.max_image_bytes, 1, 1e15)},
      {"max-layer-bytes", number(c.max_layer_bytes, 1, 1e15)},
      {"insecure-registries", strings(c.insecure_registries)},
      {"host-path-prefixes", strings(c.host_path_prefixes)},
      {"registry-certs-dir", str(c.registry_certs_dir)},
      {"registry-timeout-seconds", integer(c.registry_timeout_seconds, 1)},
      {"metrics-listen", str(c.metrics_listen)},
      {"api-listen", str(c.api_listen)},
      {"listen-tls", str(c.listen_tls)},
      {"tls-cert-dir", str(c.tls_cert_dir)},
      {"watch-cache-size", integer(c.watch_cache_size, 16)},
      {"watch-cache-bytes", number(c.watch_cache_bytes, 65536, 1e12)},
      {"raise-file-limit", boolean(c.raise_file_limit)},
      {"max-connections", integer(c.max_connections, 0)},
      {"api-max-connections", integer(c.api_max_connections, 0)},
      {"max-connections-per-client", integer(c.max_connections_per_client, 0)},
      {"header-timeout-seconds", integer(c.header_timeout_seconds, 1)},
      {"body-timeout-seconds", integer(c.body_timeout_seconds, 1)},
      {"keepalive-timeout-seconds", integer(c.keepalive_timeout_seconds, 1)},
      {"send-timeout-seconds", integer(c.send_timeout_seconds, 1)},
      {"runtime-timeout-seconds", integer(c.runtime_timeout_seconds, 1)},
      {"orphan-sweep-seconds", integer(c.orphan_sweep_seconds, 1)},
      {"disk-free-warning-bytes", number(c.disk_free_warning_bytes, 0, 1e15)},
      {"tls-cert", str(c.tls_cert)},
      {"tls-key", str(c.tls_key)},
      {"access-log", str(c.access_log)},
      {"log-sinks", strings(c.log_sinks)},
      {"log-sink-sources", strings(c.log_sink_sources)},
      {"log-sink-queue", integer(c.log_sink_queue, 1)},
      {"journald-socket", str(c.journald_socket)},
      {"syslog-address", str(c.syslog_address)},
      {"syslog-facility", str(c.syslog_facility)},
      {"otlp-endpoint", str(c.otlp_endpoint)},
      {"tracing-protocol", choice(c.tracing_protocol, {"none", "http/json"})},
      {"tracing-endpoint", str(c.tracing_endpoint)},
      {"tracing-sampling-rate", number(c.tracing_sampling_rate, 0, 1)},
      {"metrics-protocol", choice(c.metrics_protocol, {"prometheus", "http/json"})},
      {"metrics-endpoint", str(c.metrics_endpoint)},
      {"metrics-export-interval-seconds", integer(c.metrics_export_interval_seconds, 1)},
      {"log-max-file-bytes", number(c.log_max_file_bytes, 4096, 1e12)},
      {"log-max-files", integer(c.log_max_files, 1)},
      {"log-spool-max-bytes", number(c.log_spool_max_bytes, 65536, 1e15)},
      {"event-max-bytes", number(c.event_max_bytes, 1024, 1e9)},
      {"event-retention-seconds", integer(c.event_retention_seconds, 1)},
      {"event-retention-count", integer(c.event_retention_count, 1)},
      {"event-retention-bytes", number(c.event_retention_bytes, 0, 1e15)},
      {"eventtype-auto-create", boolean(c.eventtype_auto_create)},
      {"metrics-anonymous", boolean(c.metrics_anonymous)},
      {"broker-anonymous-publish", choice(c.broker_anonymous_publish, {"loopback", "none", "any"})},
      {"default-authorization-mode",
       choice(c.default_authorization_mode, {"allow-same-namespace", "allow-all", "deny-all"})},
      {"max-instances", integer(c.max_instances, 0)},
      {"standby-per-revision", integer(c.standby_per_revision, 0)},
      {"standby-max", integer(c.standby_max, 0)},
      {"standby-idle-seconds", integer(c.standby_idle_seconds, 1)},
      {"secure-pod-defaults",
       choice(c.secure_pod_defaults, {"disabled", "AllowRootBounded", "Enabled"})},
      {"seccomp-unconfined", boolean(c.seccomp_unconfined)},
      {"user-namespaces", boolean(c.user_namespaces)},
      {"user-namespace-base", id(c.user_namespace_base, 1, 4294967294LL)},
      {"user-namespace-size", id(c.user_namespace_size, 1, 4294967294LL)},
      {"network", choice(c.network, {"bridge", "host"})},
      {"network-bridge", str(c.network_bridge)},
      {"network-subnet", str(c.network_subnet)},
      {"network-pool-size", integer(c.network_pool_size, 0)},
      {"network-service-to-service", boolean(c.network_service_to_service)},
      {"audit-dir", str(c.audit_dir)},
      {"audit-max-file-bytes", number(c.audit_max_file_bytes, 4096, 1e12)},
      {"audit-max-files", integer(c.audit_max_files, 1)},
      {"audit-policy", str(c.audit_policy)},
      {"build-max-concurrent", integer(c.build_max_concurrent, 1)},
      {"build-step-cpu", str(c.build_step_cpu)},
      {"build-step-memory", str(c.build_step_memory)},
      {"build-step-pids", integer(c.build_step_pids, 16)},
      {"build-cpu-shares", integer(c.build_cpu_shares, 2)},
      {"build-source-max-bytes", number(c.build_source_max_bytes, 1024, 1e12)},
      // The KPA's defaults, named after Knative's config-autoscaler keys.
      {"container-concurrency-target-default", number(a.target, 0.01, 1e6)},
      {"requests-per-second-target-default", number(a.target_rps, 0.01, 1e6)},
      {"container-concurrency-target-percentage", number(a.utilization_percent, 1, 100)},
      {"stable-window-seconds", seconds(a.stable_window, 6, 3600)},
      {"panic-window-percentage", number(a.panic_window_percent, 1, 100)},
      {"panic-threshold-percentage", number(a.panic_threshold_percent, 110, 1000)},
      {"max-scale-up-rate", number(a.max_scale_up_rate, 1.01, 1e6)},
      {"max-scale-down-rate", number(a.max_scale_down_rate, 1.01, 1e6)},
      {"scale-to-zero-grace-period-seconds", seconds(a.scale_to_zero_grace, 0, 3600)},
      {"enable-scale-to-zero", boolean(a.enable_scale_to_zero)},
      {"initial-scale", integer(a.initial_scale, 0)},
  };
  if (known) {
    for (const auto& k : keys) known->push_back(k.first);
    return;
  }
  for (const auto& kv : root) {
    key = kv.first.as<std::string>();
    auto it = std::find_if(keys.begin(), keys.end(), [&](const auto& k) { return k.first == key; });
    if (it == keys.end()) {
      std::string known;
      for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k.first;
      throw std::runtime_error(
          fmt::format("config file {}: unknown key \"{}\" (known keys: {})", path, key, known));
    }
    it->second(kv.second);
  }
  key = "user-namespace-size";
  if (c.user_namespace_base + c.user_namespace_size > 4294967295LL)
    fail(fmt::format("{} from user-namespace-base {} runs past the last id, 4294967294; lower "
                     "either", c.user_namespace_size, c.user_namespace_base));
  key = "host-path-prefixes";
  for (const auto& prefix : c.host_path_prefixes)
    if (prefix.empty() || prefix[0] != '/' || prefix.find("/..") != std::string::npos)
      fail(fmt::format("has \"{}\"; give absolute directories without '..', e.g. /srv/elafros",
                       prefix));
  key = "log-sinks";
  for (const auto& sink : c.log_sinks)
    if (sink != "file" && sink != "stdout" && sink != "journald" && sink != "syslog" &&
        sink != "otlp")
      fail(fmt::format("has \"{}\"; the sinks are file, stdout, journald, syslog and otlp", sink));
  key = "log-sink-sources";
  for (const auto& source : c.log_sink_sources)
    if (source != "app" && source != "access" && source != "daemon")
      fail(fmt::format("has \"{}\"; the sources are app, access and daemon", source));
}

}  // namespace

std::pair<std::string, unsigned short> parse_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw std::runtime_error(
        fmt::format("--listen \"{}\" must be ADDRESS:PORT, e.g. 127.0.0.1:8080", listen));
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  std::string_view p(listen.data() + colon + 1, listen.size() - colon - 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || end != p.data() + p.size() || port > 65535)
    throw std::runtime_error(
        fmt::format("--listen \"{}\": the port must be a number from 0 to 65535", listen));
  return {host, static_cast<unsigned short>(port)};
}

}  // namespace elafros
