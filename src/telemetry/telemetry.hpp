#pragma once
// Logging plugins (docs/architecture.md, "Telemetry sinks"): the records every sink takes (an
// app's line, an access log line, the daemon's own), their encodings (RFC 5424 syslog, the
// journal's native protocol, OTLP/HTTP JSON), and the hub that feeds the sinks on a thread of
// its own. Nothing that offers a record ever waits: each sink has a bounded queue, and what does
// not fit is dropped and counted. A sink that fails keeps its batch and retries with backoff.
// Beast-free: the sinks' sockets are in src/telemetry/*.cpp.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/result.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

struct LogRecord {
  std::chrono::system_clock::time_point time;
  int severity = 6;     // syslog's: 3 error, 4 warning, 6 info, 7 debug
  std::string source;   // "app", "access" or "daemon"
  std::string message;  // without its newline
  std::string namespace_, service, revision, instance;
  std::string stream;  // an app's "stdout" or "stderr"
};

// --- Encodings (pure)
// ------------------------------------------------------------------------------

// One span of a proxied request (docs/architecture.md, "Tracing"): the request's SERVER span,
// or a child for the activator's wait and the cold start.
struct Span {
  std::array<std::uint8_t, 16> trace_id{};
  std::array<std::uint8_t, 8> span_id{}, parent_span_id{};
  bool has_parent = false;
  std::string name;
  int kind = 1;                           // OTLP SpanKind: 1 internal, 2 server
  std::int64_t start_ns = 0, end_ns = 0;  // Unix nanoseconds
  int status = 0;                         // OTLP StatusCode: 0 unset, 2 error
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<std::pair<std::string, std::int64_t>> int_attributes;
  std::vector<std::pair<std::string, bool>> bool_attributes;
  std::string namespace_, service, revision;  // its resource
};

// W3C Trace Context: "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>".
struct TraceParent {
  std::array<std::uint8_t, 16> trace_id{};
  std::array<std::uint8_t, 8> parent_id{};
  bool sampled = false;
};
// nullopt when it is not a valid version-00 header (all-zero ids included), as the spec says.
std::optional<TraceParent> parse_traceparent(std::string_view header);
std::string format_traceparent(const std::array<std::uint8_t, 16>& trace_id,
                               const std::array<std::uint8_t, 8>& span_id, bool sampled);
std::string hex(const std::uint8_t* bytes, std::size_t n);

struct SyslogFormat {
  int facility = 3;  // daemon
  std::string hostname = "-";
  int pid = 0;
};
// Names RFC 5424 gives the facilities ("daemon", "local0", …): the code, or nullopt.
std::optional<int> syslog_facility(std::string_view name);
// <PRI>1 TIMESTAMP HOST APP-NAME PROCID MSGID [elafros@32473 namespace=".." …] MSG
// APP-NAME is the record's service ("elafrosd" for the daemon's own), PROCID its instance (the
// daemon's pid), MSGID its source.
std::string syslog_message(const LogRecord& record, const SyslogFormat& format);
// RFC 6587 octet counting: "LEN SP MSG".
std::string octet_counted(std::string_view message);

// The journal's native protocol (systemd's JOURNAL_NATIVE_PROTOCOL): KEY=value lines, a value
// holding a newline as KEY\n<64-bit little-endian length><bytes>\n. Fields MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER, and ELAFROS_SOURCE, ELAFROS_NAMESPACE, ELAFROS_SERVICE, ELAFROS_REVISION,
// ELAFROS_INSTANCE, ELAFROS_STREAM where set. One datagram; the same bytes and a blank line are
// an entry of the Journal Export Format.
std::string journal_entry(const LogRecord& record);

// OTLP/HTTP JSON (opentelemetry-proto's JSON mapping: lowerCamelCase, enums as integers, 64-bit
// integers as strings) for /v1/logs: one resource per (source, namespace, service, revision).
std::string otlp_logs_json(const std::vector<LogRecord>& records, std::string_view version);
// /v1/traces: one resource per (namespace, service, revision); ids as hex, as OTLP JSON wants.
std::string otlp_traces_json(const std::vector<Span>& spans, std::string_view version);
// /v1/metrics from Prometheus text (the daemon's /metrics): counters as cumulative monotonic
// sums, gauges as gauges, histograms as cumulative histograms (per-bucket counts), each under
// its Prometheus name; and the OpenTelemetry FaaS names where they fit: faas.invocations,
// faas.coldstarts and faas.invoke_duration per revision. `start_ns`: when the counters began.
std::string otlp_metrics_json(std::string_view prometheus_text, std::int64_t start_ns,
                              std::int64_t now_ns, std::string_view version);

// --- Sinks -------------------------------------------------------------------------------------

// What a send came to: done, or failed (kept and retried when `retry`, else dropped, counted).
struct SendOutcome {
  bool ok = true;
  bool retry = false;
  std::string error;
};

class TelemetryHub;

// One destination. send() runs on the hub's thread and must not block it: sockets are async.
class LogExporter {
 public:
  virtual ~LogExporter() = default;
  virtual std::string name() const = 0;  // "syslog", "journald", "otlp"
  // Sends a batch; `done` once it is sent or has failed, on the hub's thread.
  virtual void send(std::vector<LogRecord> batch, std::function<void(SendOutcome)> done) = 0;
};

class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  virtual void send(std::vector<Span> batch, std::function<void(SendOutcome)> done) = 0;
};
class MetricsExporter {
 public:
  virtual ~MetricsExporter() = default;
  // OTLP metrics bodies, oldest first; only the newest need go (the sums are cumulative).
  virtual void send(std::vector<std::string> bodies, std::function<void(SendOutcome)> done) = 0;
};

struct SinkOptions {
  std::size_t queue_limit = 10000;  // records waiting per sink; more are dropped and counted
  std::size_t batch = 512;          // records per send at most
  std::chrono::milliseconds first_retry{100};
  std::chrono::milliseconds max_retry{5000};
  std::vector<std::string> sources = {"app", "access", "daemon"};  // what the sinks take
};

// syslog-address: unix:///dev/log, udp://HOST:PORT or tcp://HOST:PORT (octet counting).
Result<std::shared_ptr<LogExporter>> make_syslog_exporter(boost::asio::io_context& io,
                                                          const std::string& address,
                                                          SyslogFormat format);
// journald-socket: the journal's native socket (/run/systemd/journal/socket).
std::shared_ptr<LogExporter> make_journald_exporter(boost::asio::io_context& io,
                                                    const std::string& socket_path);
// otlp-endpoint: http://HOST:PORT (the path /v1/logs is added).
Result<std::shared_ptr<LogExporter>> make_otlp_log_exporter(boost::asio::io_context& io,
                                                            const std::string& endpoint,
                                                            std::string version);

// tracing-endpoint / metrics-endpoint: http://HOST:PORT (/v1/traces, /v1/metrics are added).
Result<std::shared_ptr<SpanExporter>> make_otlp_trace_exporter(boost::asio::io_context& io,
                                                               const std::string& endpoint,
                                                               std::string version);
Result<std::shared_ptr<MetricsExporter>> make_otlp_metrics_exporter(boost::asio::io_context& io,
                                                                    const std::string& endpoint);

class TelemetryHub {
 public:
  explicit TelemetryHub(SinkOptions options);
  ~TelemetryHub();
  TelemetryHub(const TelemetryHub&) = delete;
  TelemetryHub& operator=(const TelemetryHub&) = delete;

  // The hub's thread's io_context, which the exporters' sockets use.
  boost::asio::io_context& io();
  // Before start().
  void add(std::shared_ptr<LogExporter> exporter);
  void set_traces(std::shared_ptr<SpanExporter> exporter);
  void set_metrics(std::shared_ptr<MetricsExporter> exporter);
  bool empty() const;
  bool tracing() const;
  bool pushing_metrics() const;
  bool takes(std::string_view source) const;  // whether records of this source are wanted
  void start();
  // Gives queued records up to `grace` to go, then stops the thread.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  // Any thread; never waits. Records beyond a sink's queue are dropped, counted.
  void offer(std::vector<LogRecord> records);
  void offer_spans(std::vector<Span> spans);
  void offer_metrics(std::string otlp_body);

  struct SinkHealth {
    std::string name;
    bool healthy = true;
    std::string last_error;
    std::uint64_t sent = 0, dropped = 0, failed = 0, retries = 0, queued = 0;
  };
  std::vector<SinkHealth> health() const;  // any thread
  std::string metrics() const;             // Prometheus text

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
