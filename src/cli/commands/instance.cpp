// elafros instance list: the containers the daemon runs.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

int instance_list(const ApiClient& api, const Globals& g, const std::string& service,
                  bool standbys) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/instances");
  json::array items;
  bool failing = false;
  for (const auto& i : v.at("items").as_array()) {
    // A stray container whose removal fails belongs to no namespace: every list shows it.
    bool stray = field(i, "namespace").empty() && service.empty();
    if (!standbys && field(i, "phase") == "standby") continue;
    if (stray ||
        (field(i, "namespace") == g.ns && (service.empty() || field(i, "service") == service))) {
      items.push_back(i);
      failing = failing || !field(i, "lastError").empty();
    }
  }
  if (g.output != "table") return print(g, json::object{{"items", std::move(items)}}), 0;
  std::vector<std::vector<std::string>> rows{{"ID", "SERVICE", "REVISION", "PID", "PORT", "PHASE"}};
  if (failing) rows[0].push_back("LAST ERROR");
  for (const auto& i : items) {
    rows.push_back({field(i, "id"), field(i, "service"), field(i, "revision"), field(i, "pid"),
                    field(i, "port"), field(i, "phase")});
    if (failing)
      rows.back().push_back(
          field(i, "lastError").empty()
              ? ""
              : fmt::format("{} (attempt {})", field(i, "lastError"), field(i, "removalAttempts")));
  }
  std::cout << table(rows);
  return 0;
}

}  // namespace

void add_instance_commands(CLI::App& app, Session& s) {
  auto service = std::make_shared<std::string>();
  auto standbys = std::make_shared<bool>(false);
  auto* inst = app.add_subcommand("instance", "see instances (containers)")->require_subcommand(1);
  auto* list = inst->add_subcommand("list", "list instances: pid, port and phase");
  list->add_option("-s,--service", *service, "only the instances of this service");
  list->add_flag("--standbys", *standbys,
                 "also the standbys: containers made ahead and waiting, for the next cold start");
  list->callback([&s, service, standbys] {
    s.run = [&s, service, standbys](const ApiClient& api) {
      return instance_list(api, s.g, *service, *standbys);
    };
  });
}

}  // namespace elafros::cli
