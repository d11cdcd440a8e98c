#include "telemetry/forwarders.hpp"

#include <spdlog/sinks/base_sink.h>

#include <boost/json.hpp>
#include <mutex>

namespace json = boost::json;

namespace elafros {
namespace {

class ForwardingLogSink : public LogSink {
 public:
  explicit ForwardingLogSink(TelemetryHub& hub) : hub_(hub) {}
  std::string name() const override { return "telemetry"; }
  Result<void> write(const std::vector<LogLine>& lines) override {
    std::vector<LogRecord> records;
    records.reserve(lines.size());
    for (const auto& l : lines)
      records.push_back(LogRecord{l.time, l.stream == "stderr" ? 4 : 6, "app", l.message,
                                  l.namespace_, l.service, l.revision, l.instance, l.stream});
    hub_.offer(std::move(records));
    return {};  // queued or dropped (counted): never kept for the collector to offer again
  }

 private:
  TelemetryHub& hub_;
};

std::string text_of(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : "";
}

class DaemonLogForwarder : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit DaemonLogForwarder(TelemetryHub& hub) : hub_(hub) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    int severity = 6;
    switch (msg.level) {
      case spdlog::level::critical:
        severity = 2;
        break;
      case spdlog::level::err:
        severity = 3;
        break;
      case spdlog::level::warn:
        severity = 4;
        break;
      case spdlog::level::debug:
      case spdlog::level::trace:
        severity = 7;
        break;
      default:
        break;
    }
    LogRecord r;
    r.time = std::chrono::time_point_cast<std::chrono::system_clock::duration>(msg.time);
    r.severity = severity;
    r.source = "daemon";
    r.message.assign(msg.payload.data(), msg.payload.size());
    std::vector<LogRecord> one;
    one.push_back(std::move(r));
    hub_.offer(std::move(one));
  }
  void flush_() override {}

 private:
  TelemetryHub& hub_;
};

}  // namespace

std::shared_ptr<LogSink> make_forwarding_log_sink(TelemetryHub& hub) {
  return std::make_shared<ForwardingLogSink>(hub);
}

std::function<void(std::string_view)> access_log_forwarder(TelemetryHub& hub) {
  return [&hub](std::string_view lines) {
    std::vector<LogRecord> records;
    for (std::size_t i = 0; i < lines.size();) {
      auto nl = lines.find('\n', i);
      if (nl == std::string_view::npos) nl = lines.size();
      std::string_view line = lines.substr(i, nl - i);
      i = nl + 1;
      if (line.empty()) continue;
      LogRecord r;
      r.time = std::chrono::system_clock::now();
      r.source = "access";
      r.message = std::string(line);
      boost::system::error_code ec;
      json::value v = json::parse(line, ec);
      if (!ec && v.is_object()) {
        const json::object& o = v.get_object();
        r.namespace_ = text_of(o, "namespace");
        r.service = text_of(o, "service");
        r.revision = text_of(o, "revision");
        r.instance = text_of(o, "instance");
        const json::value* status = o.if_contains("status");
        if (status && status->is_int64() && status->get_int64() >= 500) r.severity = 4;
      }
      records.push_back(std::move(r));
    }
    hub.offer(std::move(records));
  };
}

std::shared_ptr<spdlog::sinks::sink> make_daemon_log_forwarder(TelemetryHub& hub) {
  return std::make_shared<DaemonLogForwarder>(hub);
}

}  // namespace elafros
