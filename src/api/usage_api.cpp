// GET /apis/elafros.dev/v1/usage: usage accounting for charge-back (docs/architecture.md,
// "Usage"), hourly buckets summed by namespace, service or revision over a window, as JSON or
// as CSV (RFC 4180, a fixed header).

#include <fmt/format.h>

#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <map>

#include "api/daemon_api.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "offload.hpp"

namespace json = boost::json;

namespace elafros::api {
namespace {

constexpr const char* kColumns =
    "window_start,window_end,namespace,service,revision,requests,errors_5xx,cold_starts,"
    "instance_seconds,active_seconds,cpu_seconds_used,vcpu_seconds_alloc,gib_seconds_used,gib_"
    "seconds_alloc,"
    "peak_memory_bytes,build_seconds,events_delivered";

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string number(double v) {
  return fmt::format("{:.3f}", v);
}

}  // namespace

void add_usage_routes(Router& router, const DaemonApiParts& parts) {
  router.add(
      "GET", "/apis/elafros.dev/v1/usage",
      [&parts](ApiRequest& req, Responder& r) -> awaitable<bool> {
        auto from = time_or_ago(req.query_value("since").value_or(""), now_s() - 86400);
        auto to = time_or_ago(req.query_value("until").value_or(""), now_s() + 1);
        std::string by = req.query_value("by").value_or("service");
        std::string format = req.query_value("format").value_or("json");
        if (!from || !to)
          co_return co_await r.send_error(Error::bad_request(
              "since and until: give RFC 3339 times or durations back from now (24h, 7d)"));
        if (by != "namespace" && by != "service" && by != "revision")
          co_return co_await r.send_error(
              Error::bad_request("by: give namespace, service or revision"));
        if (format != "json" && format != "csv")
          co_return co_await r.send_error(Error::bad_request("format: give json or csv"));
        std::string ns = req.query_value("namespace").value_or("");
        std::int64_t f = *from, t = *to;
        auto rows = co_await offload(parts.store_thread.get_executor(), &Store::usage_rows,
                                     &parts.store, f, t);
        if (!rows) co_return co_await r.send_error(rows.error());
        std::map<std::tuple<std::int64_t, std::string, std::string, std::string>, UsageRow> sums;
        for (const auto& row : *rows) {
          if (!ns.empty() && row.ns != ns) continue;
          auto key = std::make_tuple(row.window_start, row.ns, by == "namespace" ? "" : row.service,
                                     by == "revision" ? row.revision : "");
          UsageRow& s = sums[key];
          s.window_start = row.window_start;
          s.ns = row.ns;
          s.service = std::get<2>(key);
          s.revision = std::get<3>(key);
          s.requests += row.requests;
          s.errors_5xx += row.errors_5xx;
          s.cold_starts += row.cold_starts;
          s.instance_seconds += row.instance_seconds;
          s.active_seconds += row.active_seconds;
          s.cpu_seconds_used += row.cpu_seconds_used;
          s.vcpu_seconds_alloc += row.vcpu_seconds_alloc;
          s.gib_seconds_used += row.gib_seconds_used;
          s.gib_seconds_alloc += row.gib_seconds_alloc;
          s.peak_memory_bytes = std::max(s.peak_memory_bytes, row.peak_memory_bytes);
          s.build_seconds += row.build_seconds;
          s.events_delivered += row.events_delivered;
        }
        if (format == "csv") {
          std::string out = std::string(kColumns) + "\r\n";
          for (const auto& [k, s] : sums)
            out += fmt::format(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
                format_rfc3339(s.window_start), format_rfc3339(s.window_start + 3600),
                csv_field(s.ns), csv_field(s.service), csv_field(s.revision), s.requests,
                s.errors_5xx, s.cold_starts, number(s.instance_seconds), number(s.active_seconds),
                number(s.cpu_seconds_used), number(s.vcpu_seconds_alloc),
                number(s.gib_seconds_used), number(s.gib_seconds_alloc), s.peak_memory_bytes,
                number(s.build_seconds), s.events_delivered);
          co_return co_await r.send(200, "text/csv; charset=utf-8; header=present", out);
        }
        json::array items;
        for (const auto& [k, s] : sums)
          items.push_back(json::object{{"window_start", format_rfc3339(s.window_start)},
                                       {"window_end", format_rfc3339(s.window_start + 3600)},
                                       {"namespace", s.ns},
                                       {"service", s.service},
                                       {"revision", s.revision},
                                       {"requests", s.requests},
                                       {"errors_5xx", s.errors_5xx},
                                       {"cold_starts", s.cold_starts},
                                       {"instance_seconds", s.instance_seconds},
                                       {"active_seconds", s.active_seconds},
                                       {"cpu_seconds_used", s.cpu_seconds_used},
                                       {"vcpu_seconds_alloc", s.vcpu_seconds_alloc},
                                       {"gib_seconds_used", s.gib_seconds_used},
                                       {"gib_seconds_alloc", s.gib_seconds_alloc},
                                       {"peak_memory_bytes", s.peak_memory_bytes},
                                       {"build_seconds", s.build_seconds},
                                       {"events_delivered", s.events_delivered}});
        json::object out{{"apiVersion", "elafros.dev/v1"},
                         {"kind", "UsageReport"},
                         {"by", by},
                         {"items", std::move(items)}};
        co_return co_await r.send_json(200, out);
      });
}

}  // namespace elafros::api
