// elafros domain create|update|list|describe|delete: Knative DomainMappings
// (serving.knative.dev/v1beta1), as kn domain has them: a host name of your own routed to a
// service of the namespace.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

struct DomainFlags {
  std::string name, ref, tls;
};

std::string collection(const Globals& g) {
  return fmt::format("/apis/serving.knative.dev/v1beta1/namespaces/{}/domainmappings", g.ns);
}

// A condition's field ("status", "reason", "message") by type, "" when absent.
std::string condition(const json::value& o, const std::string& type, const char* what) {
  for (const auto& c : array_at(o, {"status", "conditions"}))
    if (field(c, "type") == type) return field(c, what);
  return "";
}

json::object mapping(const Globals& g, const DomainFlags& f) {
  json::object spec{{"ref", json::object{{"apiVersion", "serving.knative.dev/v1"},
                                         {"kind", "Service"},
                                         {"name", f.ref},
                                         {"namespace", g.ns}}}};
  if (!f.tls.empty()) spec["tls"] = json::object{{"secretName", f.tls}};
  return json::object{{"apiVersion", "serving.knative.dev/v1beta1"},
                      {"kind", "DomainMapping"},
                      {"metadata", json::object{{"name", f.name}, {"namespace", g.ns}}},
                      {"spec", std::move(spec)}};
}

int create(const ApiClient& api, const Globals& g, const DomainFlags& f) {
  if (f.ref.empty())
    throw std::runtime_error("domain create needs --ref SERVICE: the service to map it to");
  json::value body = mapping(g, f);
  json::value out = api.call("POST", collection(g), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format(
      "Domain mapping '{}' created in namespace '{}': {} serves service '{}'.\n", f.name, g.ns,
      field(out, "status.url"), f.ref);
  return 0;
}

int update(const ApiClient& api, const Globals& g, const DomainFlags& f) {
  json::value current = api.call("GET", collection(g) + "/" + f.name);
  json::object& spec = current.as_object()["spec"].as_object();
  if (!f.ref.empty()) spec["ref"].as_object()["name"] = f.ref;
  if (!f.tls.empty()) spec["tls"] = json::object{{"secretName", f.tls}};
  json::value out = api.call("PUT", collection(g) + "/" + f.name, &current);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("Domain mapping '{}' updated in namespace '{}'.\n", f.name, g.ns);
  return 0;
}

int list(const ApiClient& api, const Globals& g) {
  json::value l = api.call("GET", collection(g));
  if (g.output != "table") return print(g, l), 0;
  std::vector<std::vector<std::string>> rows{{"NAME", "URL", "SERVICE", "READY", "REASON", "AGE"}};
  for (const auto& o : array_at(l, {"items"}))
    rows.push_back({field(o, "metadata.name"), field(o, "status.url"), field(o, "spec.ref.name"),
                    condition(o, "Ready", "status"), condition(o, "Ready", "reason"),
                    age(field(o, "metadata.creationTimestamp"))});
  std::cout << table(rows);
  return 0;
}

int describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value o = api.call("GET", collection(g) + "/" + name);
  if (g.output != "table") return print(g, o), 0;
  std::cout << fmt::format("Name:       {}\nNamespace:  {}\nURL:        {}\nService:    {}\n", name,
                           g.ns, field(o, "status.url"), field(o, "spec.ref.name"));
  if (!field(o, "spec.tls.secretName").empty())
    std::cout << fmt::format("TLS:        secret {}\n", field(o, "spec.tls.secretName"));
  std::cout << fmt::format("Age:        {}\n\nConditions:\n",
                           age(field(o, "metadata.creationTimestamp")));
  for (const auto& c : array_at(o, {"status", "conditions"})) {
    std::string reason = field(c, "reason"), message = field(c, "message");
    std::cout << fmt::format("  {:<24} {:<5} {}{}{}\n", field(c, "type"), field(c, "status"),
                             reason, message.empty() ? "" : ": ", message);
  }
  return 0;
}

}  // namespace

void add_domain_commands(CLI::App& app, Session& s) {
  auto* top = app.add_subcommand("domain", "map domains of your own to services (DomainMappings)")
                  ->require_subcommand(1);
  auto f = std::make_shared<DomainFlags>();
  auto* create_cmd = top->add_subcommand("create", "map a domain to a service");
  create_cmd->add_option("name", f->name, "the domain, e.g. app.example.com")->required();
  create_cmd->add_option("--ref", f->ref, "the service it serves")->required();
  create_cmd->add_option("--tls", f->tls, "a Secret with tls.crt and tls.key for the domain");
  create_cmd->callback(
      [&s, f] { s.run = [&s, f](const ApiClient& api) { return create(api, s.g, *f); }; });
  auto* update_cmd = top->add_subcommand("update", "point a domain at another service");
  update_cmd->add_option("name", f->name, "the domain")->required();
  update_cmd->add_option("--ref", f->ref, "the service it serves");
  update_cmd->add_option("--tls", f->tls, "a Secret with tls.crt and tls.key for the domain");
  update_cmd->callback(
      [&s, f] { s.run = [&s, f](const ApiClient& api) { return update(api, s.g, *f); }; });
  top->add_subcommand("list", "list domain mappings")->callback([&s] {
    s.run = [&s](const ApiClient& api) { return list(api, s.g); };
  });
  auto name = std::make_shared<std::string>();
  auto* desc = top->add_subcommand("describe", "show a domain mapping and its conditions");
  desc->add_option("name", *name, "the domain")->required();
  desc->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return describe(api, s.g, *name); };
  });
  auto* del = top->add_subcommand("delete", "remove a domain mapping");
  del->add_option("name", *name, "the domain")->required();
  del->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) {
      api.call("DELETE", collection(s.g) + "/" + *name);
      if (s.g.output == "table")
        std::cout << fmt::format("Domain mapping '{}' deleted in namespace '{}'.\n", *name, s.g.ns);
      return 0;
    };
  });
}

}  // namespace elafros::cli
