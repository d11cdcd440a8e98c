// The telemetry sinks' encodings (RFC 5424 with octet counting, the journal's native fields,
// OTLP/HTTP JSON logs) and the hub's bounded queues, batches and retries.
#include "telemetry/telemetry.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

using namespace elafros;
namespace json = boost::json;

namespace {

LogRecord app_line(std::string message) {
  LogRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::microseconds(1700000000123456));
  r.severity = 6;
  r.source = "app";
  r.message = std::move(message);
  r.namespace_ = "team-a";
  r.service = "hello";
  r.revision = "hello-00001";
  r.instance = "hello-00001-abc123";
  r.stream = "stdout";
  return r;
}

}  // namespace

TEST_CASE("syslog messages are RFC 5424, with elafros's structured data") {
  SyslogFormat f;
  f.facility = *syslog_facility("local0");
  f.hostname = "box";
  f.pid = 42;
  LogRecord r = app_line("hello \"world\"");
  CHECK(syslog_message(r, f) ==
        "<134>1 2023-11-14T22:13:20.123456Z box hello hello-00001-abc123 app "
        "[elafros@32473 namespace=\"team-a\" service=\"hello\" revision=\"hello-00001\" "
        "instance=\"hello-00001-abc123\" stream=\"stdout\"] hello \"world\"");
  LogRecord d;
  d.time = r.time;
  d.severity = 4;
  d.source = "daemon";
  d.message = "a ] \\ \" line";
  d.service = "with space";  // not for the daemon's own: it is elafrosd
  CHECK(syslog_message(d, f) ==
        "<132>1 2023-11-14T22:13:20.123456Z box elafrosd 42 daemon "
        "[elafros@32473 service=\"with space\"] a ] \\ \" line");
  d.service.clear();
  CHECK(syslog_message(d, f).find(" daemon - a ] ") != std::string::npos);  // no SD: NILVALUE
  r.revision = "a]b\"c";
  CHECK(syslog_message(r, f).find("revision=\"a\\]b\\\"c\"") != std::string::npos);
  CHECK(octet_counted("<1>1 x") == "6 <1>1 x");
  CHECK(syslog_facility("kern") == 0);
  CHECK(syslog_facility("local7") == 23);
  CHECK_FALSE(syslog_facility("locl0"));
}

TEST_CASE("journal entries use the native protocol's text and binary fields") {
  LogRecord r = app_line("one line");
  std::string e = journal_entry(r);
  CHECK(e ==
        "MESSAGE=one line\nPRIORITY=6\nSYSLOG_IDENTIFIER=hello\nELAFROS_SOURCE=app\n"
        "ELAFROS_NAMESPACE=team-a\nELAFROS_SERVICE=hello\nELAFROS_REVISION=hello-00001\n"
        "ELAFROS_INSTANCE=hello-00001-abc123\nELAFROS_STREAM=stdout\n");
  r.message = "two\nlines";
  e = journal_entry(r);
  std::string want =
      std::string("MESSAGE\n") + std::string("\x09\0\0\0\0\0\0\0", 8) + "two\nlines\n";
  CHECK(e.rfind(want, 0) == 0);
}

TEST_CASE("OTLP logs are the proto3 JSON mapping, grouped by resource") {
  LogRecord a = app_line("from the app");
  LogRecord d;
  d.time = a.time;
  d.severity = 3;
  d.source = "daemon";
  d.message = "from the daemon";
  json::value v = json::parse(otlp_logs_json({a, d, a}, "0.1.0"));
  const auto& rl = v.at("resourceLogs").as_array();
  REQUIRE(rl.size() == 2);
  auto attr = [](const json::value& attrs, std::string_view key) {
    for (const auto& kv : attrs.as_array())
      if (kv.at("key").as_string() == key)
        return std::string(kv.at("value").at("stringValue").as_string());
    return std::string();
  };
  const json::value* app = nullptr;
  for (const auto& r : rl)
    if (attr(r.at("resource").at("attributes"), "service.name") == "hello") app = &r;
  REQUIRE(app);
  CHECK(attr(app->at("resource").at("attributes"), "service.namespace") == "team-a");
  CHECK(attr(app->at("resource").at("attributes"), "faas.version") == "hello-00001");
  const auto& logs = app->at("scopeLogs").at(0).at("logRecords").as_array();
  REQUIRE(logs.size() == 2);
  CHECK(logs[0].at("timeUnixNano") == "1700000000123456000");  // a string: a 64-bit integer
  CHECK(logs[0].at("severityNumber") == 9);                    // an enum: an integer
  CHECK(logs[0].at("body").at("stringValue") == "from the app");
  CHECK(attr(logs[0].at("attributes"), "log.iostream") == "stdout");
  CHECK(attr(logs[0].at("attributes"), "faas.instance") == "hello-00001-abc123");
}

namespace {

// A sink that fails as told, on the hub's thread.
class ScriptedExporter : public LogExporter {
 public:
  std::string name() const override { return "scripted"; }
  void send(std::vector<LogRecord> batch, std::function<void(SendOutcome)> done) override {
    SendOutcome outcome;
    {
      std::lock_guard lock(mu);
      ++calls;
      if (failures > 0) {
        --failures;
        outcome = {false, retry, "down"};
      } else {
        for (auto& r : batch) got.push_back(r.message);
      }
    }
    done(std::move(outcome));
  }
  std::mutex mu;
  int failures = 0, calls = 0;
  bool retry = true;
  std::vector<std::string> got;
};

std::vector<LogRecord> lines(int from, int n, const char* source = "app") {
  std::vector<LogRecord> out;
  for (int i = from; i < from + n; ++i) {
    LogRecord r = app_line(std::to_string(i));
    r.source = source;
    out.push_back(r);
  }
  return out;
}

bool eventually(const std::function<bool()>& ok) {
  for (int i = 0; i < 300; ++i) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ok();
}

}  // namespace

TEST_CASE("the hub keeps a failing sink's batch, in order, and sends it once it works") {
  SinkOptions o;
  o.first_retry = std::chrono::milliseconds(5);
  o.max_retry = std::chrono::milliseconds(20);
  o.batch = 3;
  TelemetryHub hub(o);
  auto e = std::make_shared<ScriptedExporter>();
  e->failures = 3;
  hub.add(e);
  hub.start();
  hub.offer(lines(0, 5));
  hub.offer(lines(0, 2, "elsewhere"));  // not a source the sinks take
  REQUIRE(eventually([&] {
    std::lock_guard lock(e->mu);
    return e->got.size() == 5;
  }));
  {
    std::lock_guard lock(e->mu);
    CHECK(e->got == std::vector<std::string>{"0", "1", "2", "3", "4"});
  }
  auto h = hub.health();
  REQUIRE(h.size() == 1);
  CHECK(h[0].sent == 5);
  CHECK(h[0].retries == 3);
  CHECK(h[0].dropped == 0);
  CHECK(h[0].healthy);
  CHECK(h[0].last_error == "down");
  CHECK(
      hub.metrics().find("elafros_log_sink_records_total{sink=\"scripted\",outcome=\"sent\"} 5") !=
      std::string::npos);
  hub.stop();
}

TEST_CASE("a sink that stays down fills its queue, and what does not fit is dropped, counted") {
  SinkOptions o;
  o.queue_limit = 10;
  o.first_retry = std::chrono::milliseconds(1000);
  TelemetryHub hub(o);
  auto e = std::make_shared<ScriptedExporter>();
  e->failures = 1000000;
  hub.add(e);
  hub.start();
  for (int i = 0; i < 10; ++i) hub.offer(lines(i * 4, 4));  // 40 offered, at most 10 kept
  REQUIRE(eventually([&] {
    auto h = hub.health()[0];
    return h.dropped + h.queued == 40 && h.queued >= 4 && h.queued <= 10;
  }));
  hub.offer(lines(100, 20));  // the hub has caught up: this one reaches the sink's bound
  REQUIRE(eventually([&] {
    auto h = hub.health()[0];
    return h.dropped + h.queued == 60 && h.queued == 10;
  }));
  CHECK_FALSE(hub.health()[0].healthy);
  hub.stop(std::chrono::milliseconds(0));
}

TEST_CASE("a refusal that is not retried drops the batch, counted as failed") {
  TelemetryHub hub(SinkOptions{});
  auto e = std::make_shared<ScriptedExporter>();
  e->failures = 1;
  e->retry = false;
  hub.add(e);
  hub.start();
  hub.offer(lines(0, 3));
  REQUIRE(eventually([&] { return hub.health()[0].failed == 3; }));
  hub.offer(lines(3, 1));
  REQUIRE(eventually([&] { return hub.health()[0].sent == 1; }));
  hub.stop();
}

TEST_CASE("the journald sink sends an entry too big for a datagram as a sealed memfd") {
  char dir[] = "/tmp/elafros-journal-XXXXXX";
  REQUIRE(::mkdtemp(dir));
  std::string path = std::string(dir) + "/socket";
  int rx = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  REQUIRE(::bind(rx, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  int big = 4 << 20;
  ::setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);

  boost::asio::io_context io;
  auto journald = make_journald_exporter(io, path);
  LogRecord small = app_line("small");
  LogRecord large = app_line(std::string(600 * 1024, 'x'));
  std::optional<SendOutcome> outcome;
  journald->send({small, large}, [&](SendOutcome o) { outcome = std::move(o); });
  REQUIRE(outcome);
  CHECK(outcome->ok);

  auto receive = [rx](int* passed) {
    std::string buf(1 << 20, '\0');
    char control[CMSG_SPACE(sizeof(int))] = {};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(rx, &msg, MSG_DONTWAIT);
    *passed = -1;
    if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(passed, CMSG_DATA(c), sizeof(int));
    buf.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return buf;
  };
  int fd = -1;
  CHECK(receive(&fd) == journal_entry(small));
  CHECK(fd == -1);
  CHECK(receive(&fd).empty());  // the memfd's datagram carries nothing itself
  REQUIRE(fd >= 0);
  CHECK((::fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE) != 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  std::string content(static_cast<std::size_t>(st.st_size), '\0');
  REQUIRE(::pread(fd, content.data(), content.size(), 0) == st.st_size);
  CHECK(content == journal_entry(large));
  ::close(fd);
  ::close(rx);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

TEST_CASE("traceparent is read and written as W3C Trace Context says") {
  auto tp = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  REQUIRE(tp);
  CHECK(tp->sampled);
  CHECK(hex(tp->trace_id.data(), 16) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(hex(tp->parent_id.data(), 8) == "00f067aa0ba902b7");
  CHECK(format_traceparent(tp->trace_id, tp->parent_id, false) ==
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  CHECK_FALSE(
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
  for (const char* bad : {"", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
                          "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"})
    CHECK_FALSE(parse_traceparent(bad));
}

TEST_CASE("OTLP spans carry hex ids, the parent, kind and typed attributes") {
  Span s;
  s.trace_id[0] = 0xab;
  s.span_id[7] = 0x01;
  s.parent_span_id[0] = 0xff;
  s.has_parent = true;
  s.name = "GET";
  s.kind = 2;
  s.start_ns = 1;
  s.end_ns = 2;
  s.status = 2;
  s.int_attributes = {{"http.response.status_code", 503}};
  s.bool_attributes = {{"faas.coldstart", true}};
  s.service = "hello";
  json::value v = json::parse(otlp_traces_json({s}, "0.1.0"));
  const auto& span = v.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0);
  CHECK(span.at("traceId") == "ab000000000000000000000000000000");
  CHECK(span.at("spanId") == "0000000000000001");
  CHECK(span.at("parentSpanId") == "ff00000000000000");
  CHECK(span.at("kind") == 2);
  CHECK(span.at("status").at("code") == 2);
  CHECK(span.at("startTimeUnixNano") == "1");
  CHECK(span.at("attributes").at(0).at("value").at("intValue") == "503");
  CHECK(span.at("attributes").at(1).at("value").at("boolValue") == true);
}

TEST_CASE("OTLP metrics from Prometheus text: sums, gauges, histograms, and the FaaS names") {
  const char* text =
      "# HELP elafros_requests_total Requests.\n"
      "# TYPE elafros_requests_total counter\n"
      "elafros_requests_total{namespace=\"d\",service=\"s\",revision=\"s-1\",code=\"2xx\"} 3\n"
      "elafros_requests_total{namespace=\"d\",service=\"s\",revision=\"s-1\",code=\"5xx\"} 1\n"
      "# TYPE elafros_instances_ready gauge\n"
      "elafros_instances_ready{revision=\"a\\\"b\"} 2\n"
      "# TYPE elafros_request_duration_seconds histogram\n"
      "elafros_request_duration_seconds_bucket{service=\"s\",le=\"0.1\"} 2\n"
      "elafros_request_duration_seconds_bucket{service=\"s\",le=\"1\"} 3\n"
      "elafros_request_duration_seconds_bucket{service=\"s\",le=\"+Inf\"} 4\n"
      "elafros_request_duration_seconds_sum{service=\"s\"} 2.5\n"
      "elafros_request_duration_seconds_count{service=\"s\"} 4\n";
  json::value v = json::parse(otlp_metrics_json(text, 10, 20, "0.1.0"));
  std::map<std::string, json::value> by;
  for (const auto& m :
       v.at("resourceMetrics").at(0).at("scopeMetrics").at(0).at("metrics").as_array())
    by[std::string(m.at("name").as_string())] = m;
  REQUIRE(by.count("elafros_requests_total"));
  const auto& sum = by["elafros_requests_total"].at("sum");
  CHECK(sum.at("isMonotonic") == true);
  CHECK(sum.at("aggregationTemporality") == 2);
  CHECK(sum.at("dataPoints").as_array().size() == 2);
  CHECK(sum.at("dataPoints").at(0).at("startTimeUnixNano") == "10");
  const auto& inv = by.at("faas.invocations").at("sum").at("dataPoints").as_array();
  REQUIRE(inv.size() == 1);  // the codes summed
  CHECK(inv[0].at("asDouble").as_double() == 4);
  CHECK(by.at("elafros_instances_ready")
            .at("gauge")
            .at("dataPoints")
            .at(0)
            .at("attributes")
            .at(0)
            .at("value")
            .at("stringValue") == "a\"b");
  const auto& h = by.at("faas.invoke_duration").at("histogram").at("dataPoints").at(0);
  CHECK(by.at("faas.invoke_duration").at("unit") == "s");
  CHECK(h.at("count") == "4");
  CHECK(h.at("sum").as_double() == 2.5);
  CHECK(h.at("bucketCounts") == json::array{"2", "1", "1"});  // per bucket, not cumulative
  CHECK(h.at("explicitBounds") == json::array{0.1, 1.0});
}
