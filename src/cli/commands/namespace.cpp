// elafros namespace create|list|describe|delete: v1 Namespaces, as kubectl manages them.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

constexpr const char* kNamespaces = "/api/v1/namespaces";

int namespace_create(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value body = json::object{
      {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object{{"name", name}}}};
  json::value out = api.call("POST", kNamespaces, &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("Namespace '{}' created.\n", name);
  return 0;
}

int namespace_list(const ApiClient& api, const Globals& g) {
  json::value list = api.call("GET", kNamespaces);
  if (g.output != "table") return print(g, list), 0;
  std::vector<std::vector<std::string>> rows{{"NAME", "STATUS", "AGE"}};
  for (const auto& o : array_at(list, {"items"}))
    rows.push_back({field(o, "metadata.name"), field(o, "status.phase"),
                    age(field(o, "metadata.creationTimestamp"))});
  std::cout << table(rows);
  return 0;
}

int namespace_delete(const ApiClient& api, const Globals& g, const std::string& name, bool wait) {
  json::value marked = api.call("DELETE", std::string(kNamespaces) + "/" + name);
  if (wait) wait_deleted(api, kNamespaces, name, marked);
  if (g.output != "table") return 0;
  std::cout << fmt::format(
      "Namespace '{}' {}.\n", name,
      wait ? "deleted, with everything in it" : "is being deleted, with everything in it");
  return 0;
}

}  // namespace

void add_namespace_commands(CLI::App& app, Session& s) {
  auto name = std::make_shared<std::string>();
  auto no_wait = std::make_shared<bool>(false);
  auto* ns = app.add_subcommand("namespace", "manage namespaces")->require_subcommand(1);
  ns->alias("ns");
  auto* create = ns->add_subcommand("create", "create a namespace");
  create->add_option("name", *name, "the namespace (a DNS-1035 label)")->required();
  create->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return namespace_create(api, s.g, *name); };
  });
  ns->add_subcommand("list", "list namespaces")->callback([&s] {
    s.run = [&s](const ApiClient& api) { return namespace_list(api, s.g); };
  });
  auto* describe = ns->add_subcommand("describe", "show a namespace");
  describe->add_option("name", *name, "the namespace")->required();
  describe->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) {
      json::value o = api.call("GET", std::string(kNamespaces) + "/" + *name);
      if (s.g.output != "table") return print(s.g, o), 0;
      std::cout << fmt::format("Name:     {}\nStatus:   {}\nAge:      {}\n", *name,
                               field(o, "status.phase"),
                               age(field(o, "metadata.creationTimestamp")));
      return 0;
    };
  });
  auto* del = ns->add_subcommand("delete", "delete a namespace and everything in it");
  del->add_option("name", *name, "the namespace")->required();
  del->add_flag("--no-wait", *no_wait, "return once the deletion has begun");
  del->callback([&s, name, no_wait] {
    s.run = [&s, name, no_wait](const ApiClient& api) {
      return namespace_delete(api, s.g, *name, !*no_wait);
    };
  });
}

}  // namespace elafros::cli
