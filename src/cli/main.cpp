// elafros: the command-line client. Verbs and flags follow kn's where kn has them.

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/api_client.hpp"
#include "cli/output.hpp"
#include "version.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;
using elafros::cli::ApiClient;
using elafros::cli::field;

namespace {

struct Globals {
  std::string socket;
  std::string ns = "default";
  std::string output = "table";
};

std::string services_path(const Globals& g) {
  return fmt::format("/apis/serving.knative.dev/v1/namespaces/{}/services", g.ns);
}

// oci:DIR paths are relative to where the user runs the command, not to the daemon.
std::string absolutize_reference(const std::string& ref) {
  const std::string prefix = "oci:";
  if (ref.rfind(prefix, 0) != 0) return ref;
  std::string rest = ref.substr(prefix.size());
  std::string path = rest, tag;
  if (auto colon = rest.rfind(':');
      colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
    path = rest.substr(0, colon);
    tag = rest.substr(colon);
  }
  if (path.empty() || path.front() == '/') return ref;
  return prefix + fs::absolute(path).lexically_normal().string() + tag;
}

void print(const Globals& g, const json::value& v) {
  if (g.output == "json")
    std::cout << elafros::cli::to_pretty_json(v);
  else
    std::cout << elafros::cli::to_yaml(v);
}

const json::object* condition(const json::value& obj, std::string_view type) {
  const auto* o = obj.if_object();
  const auto* st = o ? o->if_contains("status") : nullptr;
  const auto* cs = st && st->is_object() ? st->get_object().if_contains("conditions") : nullptr;
  if (!cs || !cs->is_array()) return nullptr;
  for (const auto& c : cs->get_array())
    if (c.is_object() && field(c, "type") == type) return &c.get_object();
  return nullptr;
}

// Polls the service until Ready is True or False, or the timeout passes. Returns the exit code.
int wait_ready(const ApiClient& api, const Globals& g, const std::string& name, int timeout_seconds,
               const char* verb) {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(timeout_seconds);
  std::string last_message;
  for (;;) {
    json::value s = api.call("GET", services_path(g) + "/" + name);
    const json::object* ready = condition(s, "Ready");
    std::string status = ready ? field(*ready, "status") : "Unknown";
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status == "True") {
      std::cout << fmt::format("  {:.3f}s Ready to serve.\n\n", elapsed);
      std::cout << fmt::format("Service '{}' {} to latest revision '{}' is available at URL:\n{}\n",
                               name, verb, field(s, "status.latestReadyRevisionName"),
                               field(s, "status.url"));
      return 0;
    }
    if (status == "False") {
      std::cerr << fmt::format("Error: service '{}' is not ready after {:.3f}s: {}: {}\n", name,
                               elapsed, field(*ready, "reason"), field(*ready, "message"));
      std::cerr << fmt::format(
          "Run 'elafros service describe {}' for details; the service stays and retries until "
          "deleted.\n",
          name);
      return 1;
    }
    std::string message = ready ? field(*ready, "message") : "";
    if (!message.empty() && message != last_message) {
      std::cout << fmt::format("  {:.3f}s {}\n", elapsed, message);
      last_message = message;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << fmt::format(
          "Error: service '{}' did not become ready within {} s (--wait-timeout); "
          "'elafros service describe {}' shows its state\n",
          name, timeout_seconds, name);
      return 1;
    }
    // Poll tightly at first (a local start takes tens of milliseconds), then back off.
    auto pause = elapsed < 2.0 ? std::chrono::milliseconds(5) : std::chrono::milliseconds(100);
    std::this_thread::sleep_for(pause);
  }
}

std::string condition_summary(const json::value& obj) {
  const auto* cs = obj.is_object() && obj.get_object().if_contains("status")
                       ? obj.get_object().at("status").as_object().if_contains("conditions")
                       : nullptr;
  int ok = 0, total = 0;
  if (cs && cs->is_array())
    for (const auto& c : cs->get_array()) {
      ++total;
      ok += field(c, "status") == "True";
    }
  return fmt::format("{} OK / {}", ok, total);
}

void describe_service(const ApiClient& api, const Globals& g, const json::value& s) {
  std::string name = field(s, "metadata.name");
  json::value revs = api.call(
      "GET",
      fmt::format("/apis/serving.knative.dev/v1/namespaces/{}/revisions?service={}", g.ns, name));
  std::cout << fmt::format("Name:       {}\nNamespace:  {}\nAge:        {}\nURL:        {}\n", name,
                           field(s, "metadata.namespace"),
                           elafros::cli::age(field(s, "metadata.creationTimestamp")),
                           field(s, "status.url"));
  std::cout << "\nRevisions:\n";
  std::string latest_ready = field(s, "status.latestReadyRevisionName");
  if (const auto* items = revs.as_object().if_contains("items"); items && items->is_array()) {
    for (const auto& r : items->get_array()) {
      std::string rname = field(r, "metadata.name");
      bool routed = rname == latest_ready;
      const json::object* ready = condition(r, "Ready");
      std::cout << fmt::format("  {:>4}  {}{} [{}] ({})\n", routed ? "100%" : "",
                               routed ? "@latest " : "", routed ? "(" + rname + ")" : rname,
                               field(r, "metadata.generation"),
                               elafros::cli::age(field(r, "metadata.creationTimestamp")));
      const auto& containers = r.at("spec").at("containers").as_array();
      std::cout << fmt::format("        Image:     {} (pinned to {})\n",
                               field(containers[0], "image"),
                               r.at("status")
                                   .at("containerStatuses")
                                   .as_array()[0]
                                   .at("imageDigest")
                                   .as_string()
                                   .c_str());
      std::cout << fmt::format("        Replicas:  {}/{}\n", field(r, "status.actualReplicas"),
                               field(r, "status.desiredReplicas"));
      if (ready && field(*ready, "status") != "True" && !field(*ready, "reason").empty())
        std::cout << fmt::format("        Ready:     {} {}: {}\n", field(*ready, "status"),
                                 field(*ready, "reason"), field(*ready, "message"));
    }
  }
  std::cout << "\nConditions:\n";
  std::vector<std::vector<std::string>> rows{{"  OK", "TYPE", "AGE", "REASON"}};
  if (const auto* cs = s.at("status").as_object().if_contains("conditions"); cs && cs->is_array())
    for (const auto& c : cs->get_array()) {
      std::string st = field(c, "status");
      rows.push_back(
          {st == "True"    ? "  ++"
           : st == "False" ? "  !!"
                           : "  ??",
           field(c, "type"), elafros::cli::age(field(c, "lastTransitionTime")),
           field(c, "reason") + (field(c, "message").empty() ? "" : " " + field(c, "message"))});
    }
  std::cout << elafros::cli::table(rows);
}

std::string human_size(std::int64_t bytes) {
  double b = static_cast<double>(bytes);
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", b, units[u]);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"elafros: deploy and run serverless services on one machine (kn-compatible verbs)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (-o, -n, --socket) may follow the subcommand, as in kn
  Globals g;
  const char* env_socket = std::getenv("ELAFROS_SOCKET");
  g.socket = env_socket && *env_socket ? env_socket : "/run/elafros/elafros.sock";
  app.add_option("--socket", g.socket,
                 "elafrosd's API socket (default $ELAFROS_SOCKET or /run/elafros/elafros.sock)");
  app.add_option("-n,--namespace", g.ns, "namespace (default \"default\")");
  app.add_option("-o,--output", g.output, "output format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  app.set_version_flag("--version", std::string(elafros::kVersion));

  // service
  auto* service = app.add_subcommand("service", "manage services")->require_subcommand(1);
  auto* create = service->add_subcommand("create", "create a service and wait until it is ready");
  std::string name, image, port_s, cmd, revision_name;
  std::vector<std::string> envs, args;
  int wait_timeout = 600, port = 0;
  bool no_wait = false;
  create->add_option("name", name, "service name (a DNS-1035 label)")->required();
  create->add_option("--image", image, "image: oci:DIR[:TAG] or the name of an imported image")
      ->required();
  create->add_option("-e,--env", envs, "environment variable NAME=VALUE (repeatable)");
  create->add_option("--port", port, "port the app listens on, passed as $PORT (default 8080)")
      ->check(CLI::Range(1, 65535));
  create->add_option("--cmd", cmd, "command to run instead of the image's entrypoint");
  create->add_option("--arg", args, "argument for the command (repeatable)");
  create->add_option("--revision-name", revision_name,
                     "name of the first revision (default NAME-00001)");
  create
      ->add_option("--wait-timeout", wait_timeout,
                   "seconds to wait for the service to become ready (default 600)")
      ->check(CLI::PositiveNumber);
  create->add_flag("--no-wait", no_wait, "return as soon as the service is created");
  auto* list = service->add_subcommand("list", "list services");
  auto* describe =
      service->add_subcommand("describe", "show a service, its revisions and conditions");
  describe->add_option("name", name, "service name")->required();
  auto* del = service->add_subcommand("delete", "delete a service and stop its instances");
  del->add_option("name", name, "service name")->required();

  // image
  auto* img = app.add_subcommand("image", "manage images")->require_subcommand(1);
  auto* imp = img->add_subcommand("import", "import an image into elafrosd's image store");
  std::string reference, image_name;
  imp->add_option("reference", reference, "oci:DIR[:TAG]")->required();
  imp->add_option("--name", image_name, "name to store it under (default DIR:TAG)");
  auto* ilist = img->add_subcommand("list", "list images");

  auto* status = app.add_subcommand("status", "show the daemon's state");

  CLI11_PARSE(app, argc, argv);
  ApiClient api(g.socket);
  try {
    if (create->parsed()) {
      json::object container{{"image", absolutize_reference(image)}};
      if (!cmd.empty()) container["command"] = json::array{json::string(cmd)};
      if (!args.empty()) {
        json::array a;
        for (const auto& x : args) a.emplace_back(x);
        container["args"] = std::move(a);
      }
      if (!envs.empty()) {
        json::array env;
        for (const auto& e : envs) {
          auto eq = e.find('=');
          if (eq == std::string::npos || eq == 0) {
            std::cerr << fmt::format("Error: -e \"{}\" must be NAME=VALUE\n", e);
            return 2;
          }
          env.push_back(json::object{{"name", e.substr(0, eq)}, {"value", e.substr(eq + 1)}});
        }
        container["env"] = std::move(env);
      }
      if (port) container["ports"] = json::array{json::object{{"containerPort", port}}};
      json::object tmpl{{"spec", json::object{{"containers", json::array{std::move(container)}}}}};
      if (!revision_name.empty()) tmpl["metadata"] = json::object{{"name", revision_name}};
      json::value body =
          json::object{{"apiVersion", "serving.knative.dev/v1"},
                       {"kind", "Service"},
                       {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                       {"spec", json::object{{"template", std::move(tmpl)}}}};
      std::cout << fmt::format("Creating service '{}' in namespace '{}':\n\n", name, g.ns);
      json::value created = api.call("POST", services_path(g), &body);
      if (no_wait) {
        std::cout << fmt::format("Service '{}' created in namespace '{}'.\n{}\n", name, g.ns,
                                 field(created, "status.url"));
        return 0;
      }
      return wait_ready(api, g, name, wait_timeout, "created");
    }
    if (list->parsed()) {
      json::value v = api.call("GET", services_path(g));
      if (g.output != "table") return print(g, v), 0;
      const auto& items = v.at("items").as_array();
      if (items.empty()) {
        std::cout << fmt::format("No services found in namespace '{}'.\n", g.ns);
        return 0;
      }
      std::vector<std::vector<std::string>> rows{
          {"NAME", "URL", "LATEST", "AGE", "CONDITIONS", "READY", "REASON"}};
      for (const auto& s : items) {
        const json::object* ready = condition(s, "Ready");
        rows.push_back({field(s, "metadata.name"), field(s, "status.url"),
                        field(s, "status.latestReadyRevisionName"),
                        elafros::cli::age(field(s, "metadata.creationTimestamp")),
                        condition_summary(s), ready ? field(*ready, "status") : "Unknown",
                        ready ? field(*ready, "reason") : ""});
      }
      std::cout << elafros::cli::table(rows);
      return 0;
    }
    if (describe->parsed()) {
      json::value s = api.call("GET", services_path(g) + "/" + name);
      if (g.output != "table") return print(g, s), 0;
      describe_service(api, g, s);
      return 0;
    }
    if (del->parsed()) {
      api.call("DELETE", services_path(g) + "/" + name);
      std::cout << fmt::format("Service '{}' successfully deleted in namespace '{}'.\n", name,
                               g.ns);
      return 0;
    }
    if (imp->parsed()) {
      json::value body =
          json::object{{"reference", absolutize_reference(reference)}, {"name", image_name}};
      if (image_name.empty()) body.as_object().erase("name");
      json::value v = api.call("POST", "/api/v1/images", &body);
      if (g.output != "table") return print(g, v), 0;
      std::cout << fmt::format("Image '{}' imported: {} ({})\n", field(v, "name"),
                               field(v, "digest"),
                               human_size(v.at("size").to_number<std::int64_t>()));
      return 0;
    }
    if (ilist->parsed()) {
      json::value v = api.call("GET", "/api/v1/images");
      if (g.output != "table") return print(g, v), 0;
      std::vector<std::vector<std::string>> rows{{"NAME", "DIGEST", "SIZE", "AGE", "SOURCE"}};
      for (const auto& i : v.at("items").as_array())
        rows.push_back({field(i, "name"), field(i, "digest").substr(0, 19),
                        human_size(i.at("size").to_number<std::int64_t>()),
                        elafros::cli::age(field(i, "created")), field(i, "source")});
      std::cout << elafros::cli::table(rows);
      return 0;
    }
    if (status->parsed()) {
      json::value v = api.call("GET", "/api/v1/status");
      if (g.output != "table") return print(g, v), 0;
      std::cout << fmt::format(
          "elafrosd {}: running for {}s\n  API socket:  {}\n  Proxy:       http://{}\n  Domain:    "
          "  {}\n  Data dir:    {}\n"
          "  Runtime:     {}\n  Services:    {}\n  Instances:   {} ({} ready)\n  Images:      {}\n",
          field(v, "version"), field(v, "uptimeSeconds"), field(v, "socket"), field(v, "listen"),
          field(v, "domain"), field(v, "dataDir"), field(v, "runtime"), field(v, "services"),
          field(v, "instances"), field(v, "readyInstances"), field(v, "images"));
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
