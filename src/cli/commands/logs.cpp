// elafros logs SERVICE: what its instances wrote, in time order, optionally followed.

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

struct LogsOptions {
  std::string service;
  std::string revision;
  std::string instance;
  bool follow = false;
  int tail = -1;      // -1: every stored line
  std::string since;  // "10m", "1h30m", "45s"
  bool timestamps = false;
};

int logs(const ApiClient& api, const Globals& g, const LogsOptions& o) {
  const std::string& service = o.service;
  std::string target = fmt::format("/apis/elafros.dev/v1/namespaces/{}/services/{}/logs?follow={}",
                                   g.ns, service, o.follow ? "true" : "false");
  if (!o.revision.empty()) target += "&revision=" + o.revision;
  if (!o.instance.empty()) target += "&instance=" + o.instance;
  if (o.tail >= 0) target += fmt::format("&tailLines={}", o.tail);
  if (!o.since.empty()) target += fmt::format("&sinceSeconds={}", parse_duration_seconds(o.since));
  std::string error;
  int status = api.get_stream(target, [&](const json::value& line) {
    const auto* obj = line.if_object();
    if (!obj) return;
    if (field(line, "kind") == "Status") {
      error = field(line, "message");
      return;
    }
    if (g.output != "table") {
      std::cout << json::serialize(line) << "\n" << std::flush;
      return;
    }
    // stdout lines to stdout, stderr lines to stderr, as 'docker logs' does.
    std::ostream& out = field(line, "stream") == "stderr" ? std::cerr : std::cout;
    if (o.timestamps) out << field(line, "time") << " ";
    // A sidecar's or init container's lines name it, as kubectl logs -c does.
    std::string container = field(line, "container");
    out << "[" << field(line, "instance") << (container.empty() ? "" : "/" + container) << "] "
        << field(line, "message") << "\n";
    out.flush();
  });
  if (!error.empty()) throw std::runtime_error(error);
  if (status >= 300) throw std::runtime_error(fmt::format("elafrosd answered {}", status));
  return 0;
}

}  // namespace

void add_logs_command(CLI::App& app, Session& s) {
  auto o = std::make_shared<LogsOptions>();
  auto* c = app.add_subcommand(
      "logs", "show what a service's instances wrote to stdout and stderr, in time order");
  c->add_option("service", o->service, "service name")->required();
  c->add_option("--revision", o->revision, "only this revision");
  c->add_option("--instance", o->instance, "only this instance");
  c->add_flag("-f,--follow", o->follow, "keep streaming new lines, from new instances too");
  c->add_option("--tail", o->tail, "only the last N lines")->check(CLI::NonNegativeNumber);
  c->add_option("--since", o->since, "only lines newer than this, e.g. 10m, 1h30m");
  c->add_flag("--timestamps", o->timestamps, "prefix each line with its time (UTC)");
  c->callback([&s, o] { s.run = [&s, o](const ApiClient& api) { return logs(api, s.g, *o); }; });
}

}  // namespace elafros::cli
