#pragma once
// Logging plugins (docs/architecture.md, "Telemetry sinks"): the records every sink takes (an
// app's line, an access log line, the daemon's own), their encodings (RFC 5424 syslog, the
// journal's native protocol, OTLP/HTTP JSON), and the hub that feeds the sinks on a thread of
// its own. Nothing that offers a record ever waits: each sink has a bounded queue, and what does
// not fit is dropped and counted. A sink that fails keeps its batch and retries with backoff.
// Beast-free: the sinks' sockets are in src/telemetry/*.cpp.

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
  bool empty() const;
  bool takes(std::string_view source) const;  // whether records of this source are wanted
  void start();
  // Gives queued records up to `grace` to go, then stops the thread.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

  // Any thread; never waits. Records beyond a sink's queue are dropped, counted.
  void offer(std::vector<LogRecord> records);

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
