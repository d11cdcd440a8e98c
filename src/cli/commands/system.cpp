// elafros status, elafros system stop-all|start-all|rotate-key|trust and elafros kubeconfig.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/yaml_json.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

int status(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/status");
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format(
      "elafrosd {}: running for {}s\n  API socket:  {}\n  Proxy:       http://{}\n  Domain:      "
      "{}\n  Data dir:    {}\n"
      "  Runtime:     {}\n  Services:    {}\n  Instances:   {} ({} ready)\n  Images:      {}\n",
      field(v, "version"), field(v, "uptimeSeconds"), field(v, "socket"), field(v, "listen"),
      field(v, "domain"), field(v, "dataDir"), field(v, "runtime"), field(v, "services"),
      field(v, "instances"), field(v, "readyInstances"), field(v, "images"));
  if (!field(v, "listenTls").empty())
    std::cout << fmt::format("  HTTPS proxy: https://{} ('elafros system trust' shows its CA)\n",
                             field(v, "listenTls"));
  if (!field(v, "fileLimit").empty())
    std::cout << fmt::format("  Open files:  limit {}\n",
                             field(v, "fileLimit") == "-1" ? "none" : field(v, "fileLimit"));
  if (const auto* disk = v.as_object().if_contains("disk"); disk && disk->is_object()) {
    auto gib = [](const std::string& n) {
      return n.empty() || n == "-1" ? std::string("?")
                                    : fmt::format("{:.1f} GiB", std::stod(n) / (1 << 30));
    };
    std::cout << fmt::format("  Disk:        {} free of {}\n", gib(field(*disk, "freeBytes")),
                             gib(field(*disk, "totalBytes")));
  }
  if (const auto* sinks = v.as_object().if_contains("logSinks"); sinks && sinks->is_array())
    for (const auto& s : sinks->as_array())
      std::cout << fmt::format("  Log sink:    {} {}{}\n", field(s, "name"),
                               field(s, "healthy") == "true" ? "working" : "FAILING",
                               field(s, "droppedLines") == "0"
                                   ? ""
                                   : fmt::format(", {} lines dropped", field(s, "droppedLines")));
  if (const auto* w = v.as_object().if_contains("warnings"); w && w->is_array())
    for (const auto& text : w->as_array())
      if (text.is_string()) std::cout << "  Warning:     " << text.get_string().c_str() << "\n";
  if (field(v, "halted") == "true")
    std::cout << "  Halted:      every instance stopped by 'elafros system stop-all'; "
                 "'elafros system start-all' resumes\n";
  return 0;
}

int system_stop_all(const ApiClient& api, const Globals& g) {
  json::value body = json::object{};
  json::value v = api.call("POST", "/apis/elafros.dev/v1/system/stop-all", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << "Every instance is stopped, and none starts until 'elafros system start-all' or a "
               "daemon restart.\n'systemctl stop elafrosd' now takes everything down.\n";
  return 0;
}

int system_start_all(const ApiClient& api, const Globals& g) {
  json::value body = json::object{};
  json::value v = api.call("POST", "/apis/elafros.dev/v1/system/start-all", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << "Instances start again as their services need them.\n";
  return 0;
}

// The local CA that the proxy's HTTPS certificates chain to, and how to trust it.
int system_trust(const ApiClient& api, const Globals& g, bool pem_only) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/status");
  std::string pem = field(v, "caCertificate");
  if (pem.empty())
    throw std::runtime_error(
        "elafrosd serves no HTTPS proxy, so there is no CA to trust: start it with --listen-tls "
        "ADDRESS:PORT (or the listen-tls key)");
  if (pem_only || g.output == "pem") return std::cout << pem, 0;
  if (g.output != "table") return print(g, json::object{{"caCertificate", pem}}), 0;
  std::cout << fmt::format(
      "elafrosd's HTTPS proxy (https://{}) presents certificates issued by its local CA, kept "
      "in {}/tls/ca.crt.\n"
      "Trust it, in one of these ways:\n"
      "  one command:  elafros system trust --pem > elafros-ca.crt && curl --cacert "
      "elafros-ca.crt https://NAME.NAMESPACE.{}:{}/\n"
      "  this machine: elafros system trust --pem > /usr/local/share/ca-certificates/elafros.crt "
      "&& update-ca-certificates\n"
      "  a browser:    import elafros-ca.crt as an authority (Chromium: Settings, Privacy and "
      "security, Manage certificates)\n"
      "Anyone who holds ca.key can issue certificates this machine then trusts: keep "
      "<data-dir>/tls private.\n\n{}",
      field(v, "listenTls"), field(v, "dataDir"), field(v, "domain"),
      field(v, "listenTls").substr(field(v, "listenTls").rfind(':') + 1), pem);
  return 0;
}

int kubeconfig(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/kubeconfig");
  if (g.output == "json")
    std::cout << json::serialize(v) << "\n";
  else
    std::cout << to_yaml(v);
  return 0;
}

}  // namespace

int system_rotate_key(const ApiClient& api, const Globals& g) {
  json::value body = json::object{};
  json::value v = api.call("POST", "/apis/elafros.dev/v1/system/rotate-key", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format(
      "Secrets at rest are now sealed with key {}: {} resealed, the old keys "
      "dropped. Back up <data-dir>/keys/secrets.keys.\n",
      field(v, "keyId"), field(v, "resealed"));
  return 0;
}

void add_system_commands(CLI::App& app, Session& s) {
  auto set = [&s](CLI::App* c, int (*run)(const ApiClient&, const Globals&)) {
    c->callback([&s, run] { s.run = [&s, run](const ApiClient& api) { return run(api, s.g); }; });
  };
  set(app.add_subcommand("status", "show the daemon's state"), &status);
  set(app.add_subcommand(
          "kubeconfig",
          "print a kubeconfig for the HTTPS API (elafrosd --api-listen): server, CA and admin "
          "token, for kubectl --kubeconfig FILE"),
      &kubeconfig);
  auto* sys = app.add_subcommand("system", "operate the daemon")->require_subcommand(1);
  set(sys->add_subcommand(
          "stop-all",
          "stop every instance and launch none until 'system start-all' or a daemon restart "
          "(then 'systemctl stop elafrosd' takes everything down)"),
      &system_stop_all);
  set(sys->add_subcommand("start-all", "undo 'stop-all': instances start again as they should"),
      &system_start_all);
  set(sys->add_subcommand("rotate-key",
                          "seal every Secret at rest with a new key, then drop the old keys"),
      &system_rotate_key);
  static bool pem_only = false;
  auto* trust = sys->add_subcommand(
      "trust", "show the local CA of the HTTPS proxy (--listen-tls) and how to trust it");
  trust->add_flag("--pem", pem_only, "print only the CA certificate, in PEM");
  trust->callback(
      [&s] { s.run = [&s](const ApiClient& api) { return system_trust(api, s.g, pem_only); }; });
}

}  // namespace elafros::cli
