#include "cli/contexts.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "elafros/base64.hpp"

namespace fs = std::filesystem;

namespace elafros::cli {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string default_config_path() {
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    return std::string(x) + "/elafros/config.yaml";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/elafros/config.yaml";
}

CliConfig CliConfig::load(const std::string& path) {
  CliConfig c;
  std::error_code ec;
  if (!fs::exists(path, ec)) return c;
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root["current-context"]) c.current = root["current-context"].as<std::string>();
    for (const auto& n : root["contexts"]) {
      Context ctx;
      auto text = [&n](const char* key) { return n[key] ? n[key].as<std::string>() : ""; };
      ctx.name = text("name");
      ctx.server = text("server");
      ctx.ca_data = text("certificate-authority-data");
      ctx.ca_file = text("certificate-authority");
      ctx.token = text("token");
      ctx.token_file = text("token-file");
      ctx.ns = text("namespace");
      c.contexts.push_back(std::move(ctx));
    }
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("{} is not a valid elafros config: {}", path, e.what()));
  }
  return c;
}

void CliConfig::save(const std::string& path) const {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "current-context" << YAML::Value << current << YAML::Key
      << "contexts" << YAML::Value << YAML::BeginSeq;
  for (const auto& c : contexts) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << c.name << YAML::Key << "server"
        << YAML::Value << c.server;
    for (const auto& [k, v] : std::vector<std::pair<const char*, const std::string*>>{
             {"certificate-authority-data", &c.ca_data},
             {"certificate-authority", &c.ca_file},
             {"token", &c.token},
             {"token-file", &c.token_file},
             {"namespace", &c.ns}})
      if (!v->empty()) out << YAML::Key << k << YAML::Value << *v;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write {}", tmp));
  std::string text = std::string(out.c_str()) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::fchmod(fd, 0600);
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error(fmt::format("cannot write {}", path));
}

const Context* CliConfig::find(const std::string& name) const {
  for (const auto& c : contexts)
    if (c.name == name) return &c;
  return nullptr;
}

ApiEndpoint resolve_endpoint(const CliConfig& config, const Overrides& o,
                             const std::string& default_socket, std::string& ns) {
  ApiEndpoint e;
  const Context* ctx = nullptr;
  if (!o.context.empty()) {
    ctx = config.find(o.context);
    if (!ctx)
      throw std::runtime_error(
          fmt::format("no context is named \"{}\"; 'elafros context list' lists them", o.context));
  } else if (!config.current.empty()) {
    ctx = config.find(config.current);
  }
  std::string server = !o.server.empty()   ? o.server
                       : !o.socket.empty() ? "unix://" + o.socket
                       : ctx               ? ctx->server
                                           : "unix://" + default_socket;
  if (server.rfind("unix://", 0) == 0)
    e.socket = server.substr(7);
  else
    e.server = server;
  e.token = o.token;
  if (e.token.empty() && ctx) {
    e.token = ctx->token;
    if (e.token.empty() && !ctx->token_file.empty()) e.token = trimmed(read_text(ctx->token_file));
  }
  if (!o.ca_file.empty())
    e.ca_pem = read_text(o.ca_file);
  else if (ctx && !ctx->ca_data.empty())
    e.ca_pem = base64_decode(ctx->ca_data).value_or("");
  else if (ctx && !ctx->ca_file.empty())
    e.ca_pem = read_text(ctx->ca_file);
  ns = !o.ns.empty() ? o.ns : ctx && !ctx->ns.empty() ? ctx->ns : "default";
  return e;
}

}  // namespace elafros::cli
