// elafros revision list|describe|delete.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <map>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

int revision_list(const ApiClient& api, const Globals& g, const std::string& service) {
  json::value revs =
      api.call("GET", revisions_path(g) + (service.empty() ? "" : of_service(service)));
  if (g.output != "table") return print(g, revs), 0;
  json::value services = api.call("GET", services_path(g));
  std::map<std::string, std::pair<int, std::string>> routed;  // revision → percent, tags
  for (const auto& s : array_at(services, {"items"}))
    for (const auto& t : array_at(s, {"status", "traffic"})) {
      auto& [percent, tags] = routed[field(t, "revisionName")];
      percent += static_cast<int>(t.at("percent").to_number<std::int64_t>());
      if (!field(t, "tag").empty()) tags += (tags.empty() ? "" : ",") + field(t, "tag");
    }
  const auto items = array_at(revs, {"items"});
  if (items.empty()) {
    std::cout << fmt::format("No revisions found in namespace '{}'.\n", g.ns);
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"NAME", "SERVICE", "TRAFFIC", "TAGS", "GENERATION", "AGE", "CONDITIONS", "READY", "REASON"}};
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    const auto& r = *it;
    std::string rname = field(r, "metadata.name");
    auto route = routed.find(rname);
    const json::object* ready = condition(r, "Ready");
    rows.push_back({rname, label(r, "serving.knative.dev/service"),
                    route != routed.end() ? fmt::format("{}%", route->second.first) : "",
                    route != routed.end() ? route->second.second : "",
                    field(r, "metadata.generation"), age(field(r, "metadata.creationTimestamp")),
                    condition_summary(r), ready ? field(*ready, "status") : "Unknown",
                    ready ? field(*ready, "reason") : ""});
  }
  std::cout << table(rows);
  return 0;
}

int revision_describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value r = api.call("GET", revisions_path(g) + "/" + name);
  if (g.output != "table") return print(g, r), 0;
  auto containers = array_at(r, {"spec", "containers"});
  json::value c =
      containers.empty() ? json::value(json::object{}) : containers[serving_container(containers)];
  std::cout << fmt::format(
      "Name:         {}\nNamespace:    {}\nService:      {}\nAge:          {}\n", name,
      field(r, "metadata.namespace"), label(r, "serving.knative.dev/service"),
      age(field(r, "metadata.creationTimestamp")));
  auto statuses = array_at(r, {"status", "containerStatuses"});
  std::cout << fmt::format("Image:        {} (pinned to {})\n", field(c, "image"),
                           statuses.empty() ? "" : field(statuses[0], "imageDigest"));
  for (const auto& e : array_at(c, {"env"}))
    std::cout << fmt::format("Env:          {}={}\n", field(e, "name"), field(e, "value"));
  std::cout << fmt::format(
      "Concurrency:  {}\nTimeout:      {}s\nInstances:    {} ready of {} desired{}\n",
      field(r, "spec.containerConcurrency"), field(r, "spec.timeoutSeconds"),
      field(r, "status.actualReplicas"), field(r, "status.desiredReplicas"),
      field(r, "status.autoscalerPanic") == "true" ? " (autoscaler in panic mode)" : "");
  print_conditions(r);
  return 0;
}

int revision_delete(const ApiClient& api, const Globals& g, const std::string& name) {
  api.call("DELETE", revisions_path(g) + "/" + name);
  std::cout << fmt::format("Revision '{}' deleted in namespace '{}'.\n", name, g.ns);
  return 0;
}

}  // namespace

void add_revision_commands(CLI::App& app, Session& s) {
  auto* revision = app.add_subcommand("revision", "manage revisions")->require_subcommand(1);
  auto service = std::make_shared<std::string>();
  auto* list = revision->add_subcommand("list", "list revisions, newest first");
  list->add_option("-s,--service", *service, "only the revisions of this service");
  list->callback([&s, service] {
    s.run = [&s, service](const ApiClient& api) { return revision_list(api, s.g, *service); };
  });
  auto name = std::make_shared<std::string>();
  auto* describe = revision->add_subcommand("describe", "show a revision");
  describe->add_option("name", *name, "revision name")->required();
  describe->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return revision_describe(api, s.g, *name); };
  });
  auto* del =
      revision->add_subcommand("delete", "delete a revision that gets no traffic and has no tag");
  del->add_option("name", *name, "revision name")->required();
  del->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return revision_delete(api, s.g, *name); };
  });
}

}  // namespace elafros::cli
