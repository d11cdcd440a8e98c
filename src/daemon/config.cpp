#include "config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <stdexcept>

namespace elafros {

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
  if (root.IsNull()) return;
  if (!root.IsMap())
    throw std::runtime_error(
        fmt::format("config file {} must be a mapping of keys to values", path));
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    auto str = [&](std::string& out) {
      if (!v.IsScalar())
        throw std::runtime_error(fmt::format("config file {}: {} must be a string", path, key));
      out = v.as<std::string>();
    };
    auto number = [&](double& out, double min, double max) {
      try {
        out = v.as<double>();
      } catch (const YAML::Exception&) {
        throw std::runtime_error(fmt::format("config file {}: {} must be a number", path, key));
      }
      if (out < min || out > max)
        throw std::runtime_error(
            fmt::format("config file {}: {} must be between {} and {}", path, key, min, max));
    };
    auto seconds = [&](std::chrono::seconds& out, int min, int max) {
      double n = 0;
      number(n, min, max);
      out = std::chrono::seconds(static_cast<int>(n));
    };
    auto boolean = [&](bool& out) {
      try {
        out = v.as<bool>();
      } catch (const YAML::Exception&) {
        throw std::runtime_error(
            fmt::format("config file {}: {} must be true or false", path, key));
      }
    };
    auto integer = [&](int& out) {
      try {
        out = v.as<int>();
      } catch (const YAML::Exception&) {
        throw std::runtime_error(fmt::format("config file {}: {} must be an integer", path, key));
      }
      if (out <= 0)
        throw std::runtime_error(fmt::format("config file {}: {} must be positive", path, key));
    };
    if (key == "data-dir")
      str(c.data_dir);
    else if (key == "socket")
      str(c.socket);
    else if (key == "listen")
      str(c.listen);
    else if (key == "domain")
      str(c.domain);
    else if (key == "runtime")
      str(c.runtime);
    else if (key == "log-level")
      str(c.log_level);
    else if (key == "readiness-timeout-seconds")
      integer(c.readiness_timeout_seconds);
    else if (key == "stop-grace-seconds")
      integer(c.stop_grace_seconds);
    else if (key == "shutdown-timeout-seconds")
      integer(c.shutdown_timeout_seconds);
    else if (key == "activator-queue-size")
      integer(c.activator_queue_size);
    else if (key == "max-image-bytes")
      number(c.max_image_bytes, 1, 1e15);
    else if (key == "max-layer-bytes")
      number(c.max_layer_bytes, 1, 1e15);
    // The KPA's defaults, named after Knative's config-autoscaler keys.
    else if (key == "container-concurrency-target-default")
      number(c.autoscaling.target, 0.01, 1e6);
    else if (key == "requests-per-second-target-default")
      number(c.autoscaling.target_rps, 0.01, 1e6);
    else if (key == "container-concurrency-target-percentage")
      number(c.autoscaling.utilization_percent, 1, 100);
    else if (key == "stable-window-seconds")
      seconds(c.autoscaling.stable_window, 6, 3600);
    else if (key == "panic-window-percentage")
      number(c.autoscaling.panic_window_percent, 1, 100);
    else if (key == "panic-threshold-percentage")
      number(c.autoscaling.panic_threshold_percent, 110, 1000);
    else if (key == "max-scale-up-rate")
      number(c.autoscaling.max_scale_up_rate, 1.01, 1e6);
    else if (key == "max-scale-down-rate")
      number(c.autoscaling.max_scale_down_rate, 1.01, 1e6);
    else if (key == "scale-to-zero-grace-period-seconds")
      seconds(c.autoscaling.scale_to_zero_grace, 0, 3600);
    else if (key == "enable-scale-to-zero")
      boolean(c.autoscaling.enable_scale_to_zero);
    else if (key == "initial-scale")
      integer(c.autoscaling.initial_scale);
    else
      throw std::runtime_error(fmt::format(
          "config file {}: unknown key \"{}\" (known keys: data-dir, socket, listen, "
          "domain, runtime, log-level, "
          "readiness-timeout-seconds, stop-grace-seconds, shutdown-timeout-seconds, "
          "activator-queue-size, max-image-bytes, max-layer-bytes, "
          "container-concurrency-target-default, "
          "requests-per-second-target-default, container-concurrency-target-percentage, "
          "stable-window-seconds, panic-window-percentage, panic-threshold-percentage, "
          "max-scale-up-rate, max-scale-down-rate, scale-to-zero-grace-period-seconds, "
          "enable-scale-to-zero, initial-scale)",
          path, key));
  }
}

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
