// The records' encodings for the sinks: RFC 5424 syslog (with RFC 6587 octet counting), the
// journal's native protocol, and OTLP/HTTP JSON logs.

#include <fmt/format.h>

#include <boost/json.hpp>
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

}  // namespace

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
