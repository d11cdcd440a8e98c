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
    else
      throw std::runtime_error(
          fmt::format("config file {}: unknown key \"{}\" (known keys: data-dir, socket, listen, "
                      "domain, runtime, log-level, "
                      "readiness-timeout-seconds, stop-grace-seconds, shutdown-timeout-seconds)",
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
