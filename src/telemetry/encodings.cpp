// The records' encodings for the sinks: RFC 5424 syslog (with RFC 6587 octet counting), the
// journal's native protocol, and OTLP/HTTP JSON logs.

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include "log_store.hpp"
#include "telemetry/telemetry.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

constexpr const char* kFacilities[] = {
    "kern",   "user",   "mail",     "daemon", "auth",   "syslog", "lpr",    "news",
    "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "audit",  "alert",  "clock",
    "local0", "local1", "local2",   "local3", "local4", "local5", "local6", "local7"};

// RFC 5424's header fields are PRINTUSASCII (33..126), of at most `max` characters; "-" when empty.
std::string header_field(std::string_view value, std::size_t max) {
  std::string out;
  for (char c : value.substr(0, max)) out.push_back(c >= 33 && c <= 126 ? c : '_');
  return out.empty() ? "-" : out;
}

// An SD-PARAM value: '"', '\' and ']' escaped with '\'.
std::string param_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '"' || c == '\\' || c == ']') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string app_name(const LogRecord& r) {
  if (r.source == "daemon" || r.service.empty()) return "elafrosd";
  return r.service;
}

void journal_field(std::string& out, std::string_view key, std::string_view value) {
  if (value.find('\n') == std::string_view::npos) {
    out.append(key).push_back('=');
    out.append(value).push_back('\n');
    return;
  }
  out.append(key).push_back('\n');
  std::uint64_t n = value.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out.append(value).push_back('\n');
}

json::object attribute(std::string_view key, std::string_view value) {
  return json::object{{"key", key}, {"value", json::object{{"stringValue", value}}}};
}

// OpenTelemetry's SeverityNumber for a syslog severity.
int otel_severity(int syslog) {
  if (syslog <= 3) return 17;  // ERROR
  if (syslog == 4) return 13;  // WARN
  if (syslog == 7) return 5;   // DEBUG
  return 9;                    // INFO
}
const char* severity_text(int syslog) {
  if (syslog <= 3) return "ERROR";
  if (syslog == 4) return "WARN";
  if (syslog == 7) return "DEBUG";
  return "INFO";
}

std::string unix_nanos(std::chrono::system_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// --- Prometheus text, as much as the metrics push needs
// --------------------------------------------

struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// `name{a="x",b="y"} value`: nullopt for a line that is not a sample.
std::optional<Sample> parse_sample(std::string_view line) {
  Sample out;
  std::size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  out.name = std::string(line.substr(0, i));
  if (out.name.empty()) return std::nullopt;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      auto eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
        return std::nullopt;
      std::string key(line.substr(i, eq - i));
      std::string value;
      std::size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value.push_back(line[j] == 'n' ? '\n' : line[j]);
        } else {
          value.push_back(line[j]);
        }
      }
      if (j >= line.size()) return std::nullopt;
      out.labels.emplace_back(std::move(key), std::move(value));
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return std::nullopt;
    ++i;
  }
  while (i < line.size() && line[i] == ' ') ++i;
  std::string_view rest = line.substr(i);
  rest = rest.substr(0, rest.find(' '));  // a timestamp after it is ignored
  std::string number(rest);
  if (number == "+Inf") {
    out.value = std::numeric_limits<double>::infinity();
  } else if (number == "-Inf") {
    out.value = -std::numeric_limits<double>::infinity();
  } else {
    try {
      std::size_t used = 0;
      out.value = std::stod(number, &used);
      if (used != number.size()) return std::nullopt;
    } catch (...) {
      return std::nullopt;
    }
  }
  return out;
}

struct Family {
  std::string name, type = "untyped", help;
  std::vector<Sample> samples;
};

std::vector<Family> parse_prometheus(std::string_view text) {
  std::vector<Family> families;
  std::map<std::string, std::size_t> index;
  auto family = [&](const std::string& name) -> Family& {
    auto [it, added] = index.emplace(name, families.size());
    if (added) families.push_back(Family{name, "untyped", "", {}});
    return families[it->second];
  };
  for (std::size_t i = 0; i < text.size();) {
    auto nl = text.find('\n', i);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(i, nl - i);
    i = nl + 1;
    if (line.rfind("# TYPE ", 0) == 0 || line.rfind("# HELP ", 0) == 0) {
      std::string_view rest = line.substr(7);
      auto sp = rest.find(' ');
      std::string name(rest.substr(0, sp));
      std::string value = sp == std::string_view::npos ? "" : std::string(rest.substr(sp + 1));
      (line[2] == 'T' ? family(name).type : family(name).help) = value;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    auto sample = parse_sample(line);
    if (!sample) continue;
    // A histogram's or summary's series belong to their family.
    std::string owner = sample->name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string_view sv(suffix);
      if (owner.size() > sv.size() && owner.compare(owner.size() - sv.size(), sv.size(), sv) == 0) {
        std::string base = owner.substr(0, owner.size() - sv.size());
        auto it = index.find(base);
        if (it != index.end() && families[it->second].type != "counter" &&
            families[it->second].type != "gauge") {
          owner = base;
          break;
        }
      }
    }
    family(owner).samples.push_back(std::move(*sample));
  }
  return families;
}

json::array label_attributes(const std::vector<std::pair<std::string, std::string>>& labels,
                             const std::map<std::string, std::string>& rename = {}) {
  json::array out;
  for (const auto& [k, v] : labels) {
    if (k == "le") continue;
    auto it = rename.find(k);
    if (it != rename.end() && it->second.empty()) continue;
    out.push_back(attribute(it == rename.end() ? k : it->second, v));
  }
  return out;
}

json::object number_point(const json::array& attrs, const std::string& start,
                          const std::string& now, double value) {
  return json::object{{"attributes", attrs},
                      {"startTimeUnixNano", start},
                      {"timeUnixNano", now},
                      {"asDouble", value}};
}

// A histogram's points, one per label set: per-bucket counts from Prometheus' cumulative ones.
json::array histogram_points(const Family& f, const std::string& start, const std::string& now,
                             const std::map<std::string, std::string>& rename) {
  struct Point {
    std::vector<std::pair<std::string, std::string>> labels;
    std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
    double sum = 0, count = 0;
  };
  std::map<std::string, Point> points;
  for (const auto& s : f.samples) {
    std::string key;
    std::vector<std::pair<std::string, std::string>> labels;
    double le = 0;
    for (const auto& [k, v] : s.labels) {
      if (k == "le") {
        le = v == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(v);
        continue;
      }
      key += k + "=" + v + ",";
      labels.emplace_back(k, v);
    }
    Point& p = points[key];
    p.labels = labels;
    if (s.name == f.name + "_bucket") p.buckets.emplace_back(le, s.value);
    if (s.name == f.name + "_sum") p.sum = s.value;
    if (s.name == f.name + "_count") p.count = s.value;
  }
  json::array out;
  for (auto& [key, p] : points) {
    std::sort(p.buckets.begin(), p.buckets.end());
    json::array bounds, counts;
    double before = 0;
    for (const auto& [le, cumulative] : p.buckets) {
      if (!std::isinf(le)) bounds.emplace_back(le);
      counts.emplace_back(std::to_string(static_cast<std::uint64_t>(cumulative - before)));
      before = cumulative;
    }
    if (p.buckets.empty() || !std::isinf(p.buckets.back().first))
      counts.emplace_back(std::to_string(static_cast<std::uint64_t>(p.count - before)));
    out.push_back(json::object{{"attributes", label_attributes(p.labels, rename)},
                               {"startTimeUnixNano", start},
                               {"timeUnixNano", now},
                               {"count", std::to_string(static_cast<std::uint64_t>(p.count))},
                               {"sum", p.sum},
                               {"bucketCounts", std::move(counts)},
                               {"explicitBounds", std::move(bounds)}});
  }
  return out;
}

json::object resource_of(std::string_view service) {
  return json::object{{"attributes", json::array{attribute("service.name", service)}}};
}

}  // namespace

std::string hex(const std::uint8_t* bytes, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 0xf]);
  }
  return out;
}

std::optional<TraceParent> parse_traceparent(std::string_view h) {
  // 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
  if (h.size() != 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // uppercase is invalid, as the spec says
  };
  auto bytes = [&](std::size_t from, std::size_t n, std::uint8_t* out) {
    bool any = false;
    for (std::size_t i = 0; i < n; ++i) {
      int hi = nibble(h[from + 2 * i]), lo = nibble(h[from + 2 * i + 1]);
      if (hi < 0 || lo < 0) return false;
      out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
      any = any || out[i] != 0;
    }
    return any;  // all zeros is invalid
  };
  TraceParent tp;
  if (h.substr(0, 2) != "00") return std::nullopt;  // a later version: a new trace here
  if (!bytes(3, 16, tp.trace_id.data()) || !bytes(36, 8, tp.parent_id.data())) return std::nullopt;
  if (nibble(h[53]) < 0 || nibble(h[54]) < 0) return std::nullopt;
  tp.sampled = (nibble(h[54]) & 1) != 0;
  return tp;
}

std::string format_traceparent(const std::array<std::uint8_t, 16>& trace_id,
                               const std::array<std::uint8_t, 8>& span_id, bool sampled) {
  return fmt::format("00-{}-{}-{}", hex(trace_id.data(), 16), hex(span_id.data(), 8),
                     sampled ? "01" : "00");
}

std::string otlp_traces_json(const std::vector<Span>& spans, std::string_view version) {
  using Key = std::tuple<std::string, std::string, std::string>;
  std::map<Key, json::array> by_resource;
  for (const auto& s : spans) {
    json::array attrs;
    for (const auto& [k, v] : s.attributes) attrs.push_back(attribute(k, v));
    for (const auto& [k, v] : s.int_attributes)
      attrs.push_back(
          json::object{{"key", k}, {"value", json::object{{"intValue", std::to_string(v)}}}});
    for (const auto& [k, v] : s.bool_attributes)
      attrs.push_back(json::object{{"key", k}, {"value", json::object{{"boolValue", v}}}});
    json::object span{{"traceId", hex(s.trace_id.data(), 16)},
                      {"spanId", hex(s.span_id.data(), 8)},
                      {"name", s.name},
                      {"kind", s.kind},
                      {"startTimeUnixNano", std::to_string(s.start_ns)},
                      {"endTimeUnixNano", std::to_string(s.end_ns)},
                      {"attributes", std::move(attrs)},
                      {"status", json::object{{"code", s.status}}}};
    if (s.has_parent) span["parentSpanId"] = hex(s.parent_span_id.data(), 8);
    by_resource[{s.namespace_, s.service, s.revision}].push_back(std::move(span));
  }
  json::array resource_spans;
  for (auto& [key, list] : by_resource) {
    const auto& [ns, service, revision] = key;
    json::array attrs;
    attrs.push_back(attribute("service.name", service.empty() ? "elafrosd" : service));
    if (!ns.empty()) attrs.push_back(attribute("service.namespace", ns));
    if (!service.empty()) attrs.push_back(attribute("faas.name", service));
    if (!revision.empty()) {
      attrs.push_back(attribute("service.version", revision));
      attrs.push_back(attribute("faas.version", revision));
    }
    resource_spans.push_back(json::object{
        {"resource", json::object{{"attributes", std::move(attrs)}}},
        {"scopeSpans", json::array{json::object{
                           {"scope", json::object{{"name", "elafros"}, {"version", version}}},
                           {"spans", std::move(list)}}}}});
  }
  return json::serialize(json::object{{"resourceSpans", std::move(resource_spans)}});
}

std::string otlp_metrics_json(std::string_view text, std::int64_t start_ns, std::int64_t now_ns,
                              std::string_view version) {
  const std::string start = std::to_string(start_ns), now = std::to_string(now_ns);
  json::array metrics;
  auto add = [&](const Family& f, const std::string& name, const std::string& unit,
                 const std::map<std::string, std::string>& rename, bool merge_codes) {
    json::object m{{"name", name}, {"description", f.help}, {"unit", unit}};
    if (f.type == "histogram") {
      m["histogram"] = json::object{{"aggregationTemporality", 2},
                                    {"dataPoints", histogram_points(f, start, now, rename)}};
    } else if (f.type == "counter" || f.type == "gauge" || f.type == "untyped") {
      std::map<std::string, std::pair<json::array, double>> points;  // merged by attributes
      for (const auto& s : f.samples) {
        json::array attrs = label_attributes(s.labels, rename);
        std::string key = merge_codes ? json::serialize(attrs) : std::to_string(points.size());
        auto& [a, v] = points[key];
        a = attrs;
        v += s.value;
      }
      json::array dps;
      for (auto& [key, p] : points) dps.push_back(number_point(p.first, start, now, p.second));
      if (f.type == "counter")
        m["sum"] = json::object{
            {"aggregationTemporality", 2}, {"isMonotonic", true}, {"dataPoints", std::move(dps)}};
      else
        m["gauge"] = json::object{{"dataPoints", std::move(dps)}};
    } else {
      return;  // summaries: none of ours
    }
    metrics.push_back(std::move(m));
  };
  // OpenTelemetry's FaaS names for what fits them, per revision.
  const std::map<std::string, std::string> faas_labels{{"namespace", "faas.namespace"},
                                                       {"service", "faas.name"},
                                                       {"revision", "faas.version"},
                                                       {"code", ""}};
  for (const auto& f : parse_prometheus(text)) {
    add(f, f.name, f.name.find("_seconds") != std::string::npos ? "s" : "", {}, false);
    if (f.name == "elafros_requests_total")
      add(f, "faas.invocations", "{invocation}", faas_labels, true);
    if (f.name == "elafros_cold_starts_total")
      add(f, "faas.coldstarts", "{coldstart}", faas_labels, true);
    if (f.name == "elafros_request_duration_seconds")
      add(f, "faas.invoke_duration", "s", faas_labels, false);
  }
  json::value body = json::object{
      {"resourceMetrics",
       json::array{json::object{
           {"resource", resource_of("elafrosd")},
           {"scopeMetrics", json::array{json::object{
                                {"scope", json::object{{"name", "elafros"}, {"version", version}}},
                                {"metrics", std::move(metrics)}}}}}}}};
  return json::serialize(body);
}

std::optional<int> syslog_facility(std::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kFacilities)); ++i)
    if (name == kFacilities[i]) return i;
  return std::nullopt;
}

std::string syslog_message(const LogRecord& r, const SyslogFormat& f) {
  std::string procid =
      r.source == "daemon" || r.instance.empty() ? std::to_string(f.pid) : r.instance;
  std::string sd;
  for (const auto& [key, value] :
       {std::pair{"namespace", &r.namespace_}, std::pair{"service", &r.service},
        std::pair{"revision", &r.revision}, std::pair{"instance", &r.instance},
        std::pair{"stream", &r.stream}})
    if (!value->empty()) sd += fmt::format(" {}=\"{}\"", key, param_value(*value));
  sd = sd.empty() ? "-" : "[elafros@32473" + sd + "]";
  return fmt::format("<{}>1 {} {} {} {} {} {} {}", f.facility * 8 + r.severity,
                     format_log_time(r.time), header_field(f.hostname, 255),
                     header_field(app_name(r), 48), header_field(procid, 128),
                     header_field(r.source, 32), sd, r.message);
}

std::string octet_counted(std::string_view message) {
  return fmt::format("{} {}", message.size(), message);
}

std::string journal_entry(const LogRecord& r) {
  std::string out;
  journal_field(out, "MESSAGE", r.message);
  journal_field(out, "PRIORITY", std::to_string(r.severity));
  journal_field(out, "SYSLOG_IDENTIFIER", app_name(r));
  for (const auto& [key, value] :
       {std::pair{"ELAFROS_SOURCE", &r.source}, std::pair{"ELAFROS_NAMESPACE", &r.namespace_},
        std::pair{"ELAFROS_SERVICE", &r.service}, std::pair{"ELAFROS_REVISION", &r.revision},
        std::pair{"ELAFROS_INSTANCE", &r.instance}, std::pair{"ELAFROS_STREAM", &r.stream}})
    if (!value->empty()) journal_field(out, key, *value);
  return out;
}

std::string otlp_logs_json(const std::vector<LogRecord>& records, std::string_view version) {
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  std::map<Key, json::array> by_resource;
  for (const auto& r : records) {
    json::object rec{{"timeUnixNano", unix_nanos(r.time)},
                     {"observedTimeUnixNano", unix_nanos(r.time)},
                     {"severityNumber", otel_severity(r.severity)},
                     {"severityText", severity_text(r.severity)},
                     {"body", json::object{{"stringValue", r.message}}}};
    json::array attrs;
    attrs.push_back(attribute("elafros.source", r.source));
    if (!r.instance.empty()) attrs.push_back(attribute("faas.instance", r.instance));
    if (!r.stream.empty()) attrs.push_back(attribute("log.iostream", r.stream));
    rec["attributes"] = std::move(attrs);
    by_resource[{r.source == "daemon" ? "daemon" : "", r.namespace_, r.service, r.revision}]
        .push_back(std::move(rec));
  }
  json::array resource_logs;
  for (auto& [key, logs] : by_resource) {
    const auto& [daemon, ns, service, revision] = key;
    json::array attrs;
    attrs.push_back(
        attribute("service.name", daemon.empty() && !service.empty() ? service : "elafrosd"));
    if (!ns.empty()) attrs.push_back(attribute("service.namespace", ns));
    if (!service.empty()) attrs.push_back(attribute("faas.name", service));
    if (!revision.empty()) {
      attrs.push_back(attribute("service.version", revision));
      attrs.push_back(attribute("faas.version", revision));
    }
    resource_logs.push_back(json::object{
        {"resource", json::object{{"attributes", std::move(attrs)}}},
        {"scopeLogs", json::array{json::object{
                          {"scope", json::object{{"name", "elafros"}, {"version", version}}},
                          {"logRecords", std::move(logs)}}}}});
  }
  return json::serialize(json::object{{"resourceLogs", std::move(resource_logs)}});
}

}  // namespace elafros
