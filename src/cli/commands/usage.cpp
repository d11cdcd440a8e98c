// elafros usage: what namespaces, services and revisions used, hour by hour, for charge-back
// (docs/architecture.md, "Usage"): a table, JSON, or CSV (RFC 4180, a fixed header).

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

struct UsageFlags {
  std::string since = "24h", until, by = "service";
  bool all_namespaces = false;
};

int usage(const ApiClient& api, const Globals& g, const UsageFlags& f) {
  std::string target = fmt::format("/apis/elafros.dev/v1/usage?since={}&by={}", f.since, f.by);
  if (!f.until.empty()) target += "&until=" + f.until;
  if (!f.all_namespaces) target += "&namespace=" + g.ns;
  if (g.output == "csv") {
    json::value out = api.call("GET", target + "&format=csv");
    std::cout << (out.is_string() ? std::string(out.get_string()) : json::serialize(out));
    return 0;
  }
  json::value report = api.call("GET", target);
  if (g.output != "table") return print(g, report), 0;
  std::vector<std::vector<std::string>> rows{{"HOUR", "NAMESPACE", "SERVICE", "REVISION",
                                              "REQUESTS", "5XX", "COLD", "INSTANCE-S", "ACTIVE-S",
                                              "CPU-S", "VCPU-S ALLOC", "GIB-S", "GIB-S ALLOC",
                                              "PEAK MEM", "BUILD-S", "EVENTS"}};
  auto num = [](const json::value& v, const char* key) {
    const json::value* x = v.as_object().if_contains(key);
    if (!x) return std::string();
    if (x->is_double()) return fmt::format("{:.1f}", x->get_double());
    return json::serialize(*x);
  };
  for (const auto& r : array_at(report, {"items"}))
    rows.push_back(
        {field(r, "window_start"), field(r, "namespace"), field(r, "service"), field(r, "revision"),
         num(r, "requests"), num(r, "errors_5xx"), num(r, "cold_starts"),
         num(r, "instance_seconds"), num(r, "active_seconds"), num(r, "cpu_seconds_used"),
         num(r, "vcpu_seconds_alloc"), num(r, "gib_seconds_used"), num(r, "gib_seconds_alloc"),
         num(r, "peak_memory_bytes"), num(r, "build_seconds"), num(r, "events_delivered")});
  std::cout << table(rows);
  return 0;
}

}  // namespace

void add_usage_command(CLI::App& app, Session& s) {
  auto f = std::make_shared<UsageFlags>();
  auto* c = app.add_subcommand("usage", "usage per hour for charge-back (-o table|json|csv)");
  c->add_option("--since", f->since, "from: a duration back (24h, 7d) or an RFC 3339 time");
  c->add_option("--until", f->until, "to: the same (default now)");
  c->add_option("--by", f->by, "namespace, service or revision (default service)")
      ->check(CLI::IsMember({"namespace", "service", "revision"}));
  c->add_flag("-A,--all-namespaces", f->all_namespaces, "every namespace");
  c->callback([&s, f] { s.run = [&s, f](const ApiClient& api) { return usage(api, s.g, *f); }; });
}

}  // namespace elafros::cli
