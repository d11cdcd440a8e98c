// Operating the daemon: status, instances, stop-all/start-all, logs (streamed), metrics.

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <deque>
#include <map>

#include "api/daemon_api.hpp"
#include "api/log_follow.hpp"
#include "api/metrics.hpp"
#include "elafros/base64.hpp"
#include "elafros/cloudevent.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "log_collector.hpp"
#include "offload.hpp"
#include "reconciler.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros::api {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

class OperationsApi : public std::enable_shared_from_this<OperationsApi> {
 public:
  OperationsApi(const DaemonApiParts& p, DaemonInfo info)
      : p_(p), info_(std::move(info)), started_(std::chrono::steady_clock::now()) {}

  asio::io_context& control() { return p_.control; }

  // RLIMIT_NOFILE's soft limit now: how many descriptors the daemon may hold (-1: unlimited).
  static std::int64_t file_limit() {
    struct rlimit nofile {};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY) return -1;
    return static_cast<std::int64_t>(nofile.rlim_cur);
  }

  struct Disk {
    std::int64_t free_bytes = -1;
    std::int64_t total_bytes = -1;
  };
  static Disk disk_of(const std::string& path) {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) return {};
    return {static_cast<std::int64_t>(st.f_bavail) * static_cast<std::int64_t>(st.f_frsize),
            static_cast<std::int64_t>(st.f_blocks) * static_cast<std::int64_t>(st.f_frsize)};
  }

  static std::string bytes_text(std::int64_t n) {
    if (n >= (1ll << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(n) / (1ll << 30));
    if (n >= (1ll << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1ll << 20));
    return fmt::format("{} KiB", n / 1024);
  }

  // What an operator should act on: low disk, failing log sinks, dropped lines, stuck removals.
  json::array warnings(const Disk& disk, const LogHealth& logs,
                       const Reconciler::Cleanup& cleanup) const {
    json::array w;
    if (disk.free_bytes >= 0 && info_.disk_free_warning_bytes > 0 &&
        static_cast<std::uint64_t>(disk.free_bytes) < info_.disk_free_warning_bytes)
      w.emplace_back(fmt::format(
          "the data dir {} has {} free, below disk-free-warning-bytes ({}); free space there, or "
          "API writes, pulls and logs will fail",
          info_.data_dir, bytes_text(disk.free_bytes),
          bytes_text(static_cast<std::int64_t>(info_.disk_free_warning_bytes))));
    for (const auto& s : logs.sinks) {
      if (!s.healthy)
        w.emplace_back(fmt::format(
            "log sink {} is failing{}; {} of lines are kept for it and retried: {}", s.name,
            s.failing_since > 0 ? " since " + format_rfc3339(s.failing_since) : "",
            bytes_text(static_cast<std::int64_t>(s.pending_bytes)), s.last_error));
      if (s.dropped_lines > 0)
        w.emplace_back(
            fmt::format("log sink {} lost {} of the oldest log lines while it was more than "
                        "log-spool-max-bytes behind",
                        s.name, s.dropped_lines));
    }
    if (cleanup.terminating > 0)
      w.emplace_back(fmt::format(
          "{} instance(s) could not be removed yet and are retried; 'elafros instance list' "
          "shows the last error",
          cleanup.terminating));
    return w;
  }

  LogHealth log_health() const {
    LogHealth h = p_.logs.health();
    if (info_.more_log_health) info_.more_log_health(h);
    return h;
  }

  // The machine, and what its live instances are allotted of it (their limits; instances
  // without one count in `unlimitedInstances`).
  json::object node() const {
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    std::int64_t cpu_millis = 0, memory = 0, unlimited = 0;
    for (const auto& r : p_.reconciler.revision_metrics()) {
      cpu_millis += r.actual * r.limits_cpu_millis;
      memory += r.actual * r.limits_memory_bytes;
      if (r.limits_cpu_millis == 0 || r.limits_memory_bytes == 0) unlimited += r.actual;
    }
    return json::object{{"cpus", cpus},
                        {"memoryBytes", static_cast<std::int64_t>(pages) * page},
                        {"allocatedCpuMillis", cpu_millis},
                        {"allocatedMemoryBytes", memory},
                        {"unlimitedInstances", unlimited}};
  }

  awaitable<bool> status(ApiRequest&, Responder& r) {
    auto images = co_await offload(p_.store_thread.get_executor(), &Store::list_images, &p_.store);
    Disk disk = co_await offload(p_.blocking.get_executor(), &OperationsApi::disk_of,
                                 std::string(info_.data_dir));
    LogHealth logs = log_health();
    auto cleanup = p_.reconciler.cleanup();
    json::array sinks;
    for (const auto& s : logs.sinks)
      sinks.push_back(json::object{{"name", s.name},
                                   {"healthy", s.healthy},
                                   {"lastError", s.last_error},
                                   {"failedWrites", s.failed_writes},
                                   {"pendingBytes", s.pending_bytes},
                                   {"droppedLines", s.dropped_lines}});
    auto c = p_.reconciler.counts();
    json::object o{{"version", info_.version},
                   {"node", node()},
                   {"dataDir", info_.data_dir},
                   {"socket", info_.socket},
                   {"listen", info_.listen},
                   {"domain", info_.domain},
                   {"runtime", info_.runtime},
                   {"services", c.services},
                   {"instances", c.instances},
                   {"readyInstances", c.ready_instances},
                   {"standbyInstances", c.standby_instances},
                   {"images", images ? images->size() : 0},
                   {"halted", p_.reconciler.halted()},
                   {"fileLimit", file_limit()},
                   {"disk", json::object{{"freeBytes", disk.free_bytes},
                                         {"totalBytes", disk.total_bytes},
                                         {"warningBytes", info_.disk_free_warning_bytes}}},
                   {"logSinks", std::move(sinks)},
                   {"terminatingInstances", cleanup.terminating},
                   {"straysRemoved", cleanup.strays_removed},
                   {"warnings", warnings(disk, logs, cleanup)},
                   {"uptimeSeconds", std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::steady_clock::now() - started_)
                                         .count()}};
    if (!info_.listen_tls.empty()) o["listenTls"] = info_.listen_tls;
    if (!info_.ca_pem.empty()) o["caCertificate"] = info_.ca_pem;
    co_return co_await r.send_json(200, o);
  }

  awaitable<bool> instances(ApiRequest&, Responder& r) {
    json::array items;
    for (const auto& i : p_.reconciler.instances()) {
      json::object o{{"id", i.record.id},
                     {"namespace", i.record.namespace_},
                     {"service", i.record.service},
                     {"revision", i.record.revision},
                     {"pid", i.record.pid},
                     {"port", i.record.port},
                     {"phase", i.phase}};
      if (!i.record.address.empty()) o["address"] = i.record.address;  // its own namespace's
      if (!i.last_error.empty()) {
        o["lastError"] = i.last_error;
        o["removalAttempts"] = i.removal_attempts;
      }
      items.push_back(std::move(o));
    }
    json::value answer = json::object{{"items", std::move(items)}};
    co_return co_await r.send_json(200, answer);
  }

  awaitable<bool> stop_all(ApiRequest&, Responder& r) {
    auto stopped =
        std::make_shared<asio::steady_timer>(p_.control, asio::steady_timer::time_point::max());
    auto finished = std::make_shared<bool>(false);
    p_.reconciler.halt([stopped, finished] {
      *finished = true;
      stopped->cancel();
    });
    while (!*finished) co_await stopped->async_wait(kAwait);
    json::value answer = json::object{{"halted", true}};
    co_return co_await r.send_json(200, answer);
  }

  // A new key for Secrets at rest; every Secret resealed with it; the old keys dropped.
  awaitable<bool> rotate_key(ApiRequest& req, Responder& r) {
    auto rotated =
        co_await offload(p_.store_thread.get_executor(), &Store::rotate_secret_key, &p_.store);
    if (!rotated) co_return co_await r.send_error(rotated.error());
    spdlog::info("{} rotated the key of Secrets at rest: key {} now seals {} Secrets", req.who.user,
                 rotated->first, rotated->second);
    json::value answer = json::object{{"keyId", rotated->first}, {"resealed", rotated->second}};
    co_return co_await r.send_json(200, answer);
  }

  awaitable<bool> start_all(ApiRequest&, Responder& r) {
    p_.reconciler.resume();
    json::value answer = json::object{{"halted", false}};
    co_return co_await r.send_json(200, answer);
  }

  // The metrics now: the reconciler's view, the proxy's counters, and every instance's cgroup
  // (read on the blocking pool).
  awaitable<bool> metrics(ApiRequest&, Responder& r) {
    std::string text = co_await metrics_text();
    co_return co_await r.send(200, "text/plain; version=0.0.4; charset=utf-8", std::move(text));
  }

  awaitable<std::string> metrics_text() {
    MetricsInput in;
    in.version = info_.version;
    in.revisions = p_.reconciler.revision_metrics();
    in.commits = p_.committer.stats();
    in.logs = log_health();
    in.cleanup = p_.reconciler.cleanup();
    if (!info_.data_dir.empty()) in.data_dir_free_bytes = disk_of(info_.data_dir).free_bytes;
    struct Usage {
      explicit Usage(const asio::any_io_executor& ex)
          : wake(ex, std::chrono::steady_clock::time_point::max()) {}
      bool done = false;
      std::vector<Reconciler::InstanceUsage> list;
      asio::steady_timer wake;
    };
    auto usage = std::make_shared<Usage>(p_.control.get_executor());
    p_.reconciler.instance_usage([usage](std::vector<Reconciler::InstanceUsage> list) {
      usage->list = std::move(list);
      usage->done = true;
      usage->wake.cancel();
    });
    while (!usage->done) co_await usage->wake.async_wait(kAwait);
    in.instances = std::move(usage->list);
    // Rendering reads /proc: off the control thread.
    std::string text = co_await offload(p_.blocking.get_executor(), &render_metrics, std::move(in));
    if (info_.more_metrics) text += info_.more_metrics();
    co_return text;
  }

  // The query of a logs request; follow or an error when it is malformed.
  static Result<bool> parse_logs_query(const ApiRequest& req, LogQuery& query) {
    query.namespace_ = req.param("namespace");
    query.service = req.param("name");
    query.revision = req.query_value("revision").value_or("");
    query.instance = req.query_value("instance").value_or("");
    for (const char* name : {"tailLines", "sinceSeconds"}) {
      std::string v = req.query_value(name).value_or("");
      if (v.empty()) continue;
      std::int64_t n = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc() || end != v.data() + v.size() || n < 0)
        return Error::bad_request(
            fmt::format("{} must be a whole number of at least 0, not \"{}\"", name, v));
      if (std::string_view(name) == "tailLines")
        query.tail = static_cast<std::size_t>(n);
      else
        query.since = std::chrono::system_clock::now() - std::chrono::seconds(n);
    }
    return req.query_flag("follow");
  }

  // The service, or a not-found error that says where to look.
  awaitable<Result<void>> service_exists(const std::string& ns, const std::string& name) {
    ObjectKey key{kServingGroup, "Service", ns, name};
    auto service = co_await offload(p_.store_thread.get_executor(), &ObjectStore::get_object,
                                    static_cast<ObjectStore*>(&p_.store), key);
    Result<void> found;
    if (service) co_return found;
    co_return Error::not_found(fmt::format(
        "service \"{}\" not found in namespace \"{}\"; 'elafros service list' shows the "
        "services there",
        name, ns));
  }

  // The logs of a service as chunked JSON lines (application/x-ndjson), oldest first; with
  // follow=true, then every new line until the client goes away or the service is deleted.
  // Query: revision, instance, follow, tailLines, sinceSeconds (Kubernetes' names).
  awaitable<bool> logs(ApiRequest& req, Responder& r) {
    LogQuery query;
    auto parsed = parse_logs_query(req, query);
    if (!parsed) co_return co_await r.send_error(parsed.error());
    bool follow = *parsed;
    auto found = co_await service_exists(query.namespace_, query.service);
    if (!found) co_return co_await r.send_error(found.error());
    if (!query.revision.empty()) {
      ObjectKey rkey{kServingGroup, "Revision", query.namespace_, query.revision};
      auto rev = co_await offload(p_.store_thread.get_executor(), &ObjectStore::get_object,
                                  static_cast<ObjectStore*>(&p_.store), rkey);
      auto labels = rev ? rev->at("metadata").as_object().if_contains("labels") : nullptr;
      const json::value* owner =
          labels && labels->is_object()
              ? labels->get_object().if_contains("serving.knative.dev/service")
              : nullptr;
      if (!rev || !owner || !owner->is_string() || owner->get_string() != query.service)
        co_return co_await r.send_error(Error::not_found(fmt::format(
            "service \"{}\" has no revision \"{}\"; 'elafros revision list -s {}' lists them",
            query.service, query.revision, query.service)));
    }
    // The backlog, then the live lines, arrive from the collector's thread.
    auto ex = p_.control.get_executor();
    auto state = open_log_follow(p_.logs, query, follow, ex);
    while (!state->opened) co_await state->wake.async_wait(kAwait);
    if (!state->error.empty()) co_return co_await r.send_error(Error::precondition(state->error));
    bool ok = co_await r.begin_stream(200, "application/x-ndjson");
    if (ok && follow)
      r.notify_close([state] {
        state->closed = true;
        state->wake.cancel();
      });
    while (ok) {
      std::string text;
      for (const auto& l : state->take()) {
        text += json::serialize(log_line_json(l));
        text += '\n';
      }
      if (!text.empty()) ok = co_await r.send_chunk(std::move(text));
      if (!ok || !follow || state->closed || state->ended) break;
      // Lines that arrived while the chunk was sent woke no one: send them before waiting.
      if (!state->lines.empty()) continue;
      co_await state->wake.async_wait(kAwait);
    }
    if (state->id != 0) p_.logs.close(state->id);
    // A follow ends with the connection; one whose service was deleted ends its answer first.
    if (!ok || state->closed) co_return false;
    if (follow && !state->ended) co_return false;
    bool ended = co_await r.end_stream();
    co_return ended && !follow;
  }

  // One reading of a revision: the proxy's counters and the autoscaler's counts.
  struct RevisionReading {
    std::string service;
    std::uint64_t requests = 0, errors = 0, cold_starts = 0;
    Histogram::Snapshot latency;
    int desired = 0, ready = 0, restarts = 0;
    std::int64_t in_flight = 0, queued = 0;
  };
  struct MetricsReading {
    std::chrono::steady_clock::time_point at;
    std::map<std::string, RevisionReading> revisions;  // by revision name
  };

  MetricsReading read_metrics(const std::string& ns, const std::string& service) const {
    MetricsReading m;
    m.at = std::chrono::steady_clock::now();
    auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(m.at.time_since_epoch()).count();
    for (const auto& r : p_.reconciler.revision_metrics()) {
      if (r.namespace_ != ns || (!service.empty() && r.service != service) || !r.stats) continue;
      const RequestTotals rm = r.stats->totals();
      RevisionReading& x = m.revisions[r.revision];
      x.service = r.service;
      for (auto n : rm.by_class) x.requests += n;
      x.errors = rm.by_class[4];
      x.cold_starts = rm.cold_starts;
      x.latency = rm.latency;
      x.desired = r.desired;
      x.ready = r.actual;
      x.restarts = r.restarts;
      x.in_flight = r.stats->read(now_ns).in_flight;
      x.queued = rm.queued;
    }
    return m;
  }

  // What a revision's counter grew by since `earlier`: nothing without an earlier reading, all
  // of it for a revision that was not there yet.
  static std::uint64_t growth(const MetricsReading* earlier, const std::string& revision,
                              const RevisionReading& now, std::uint64_t RevisionReading::*counter) {
    if (!earlier) return 0;
    auto it = earlier->revisions.find(revision);
    std::uint64_t before = it == earlier->revisions.end() ? 0 : it->second.*counter;
    return now.*counter >= before ? now.*counter - before : 0;
  }

  // The line the metrics stream sends now: per service and revision, the rates over the last
  // second, latency quantiles over the last 10 s, cold starts over the last minute, and the
  // autoscaler's desired and ready instances. `history` holds the readings, oldest first, the
  // newest last (at most a minute of them).
  static json::object metrics_line(const std::string& ns,
                                   const std::deque<MetricsReading>& history) {
    const MetricsReading& now = history.back();
    // The oldest reading at most `ago` before now (half a second of slack for the ticks).
    auto since = [&history, &now](std::chrono::seconds ago) -> const MetricsReading* {
      for (const auto& h : history)
        if (&h != &now && now.at - h.at <= ago + std::chrono::milliseconds(500)) return &h;
      return nullptr;
    };
    const MetricsReading* second = history.size() >= 2 ? &history[history.size() - 2] : nullptr;
    const MetricsReading* ten = since(std::chrono::seconds(10));
    const MetricsReading* minute = since(std::chrono::seconds(60));
    const double dt = second ? std::chrono::duration<double>(now.at - second->at).count() : 0.0;
    auto rate = [dt](std::uint64_t n) { return dt > 0 ? static_cast<double>(n) / dt : 0.0; };

    struct Sum {
      double rps = 0, eps = 0;
      std::uint64_t cold = 0;
      Histogram::Snapshot latency;
      int desired = 0, ready = 0;
      std::int64_t in_flight = 0, queued = 0;
      json::array revisions;
    };
    std::map<std::string, Sum> services;
    for (const auto& [name, x] : now.revisions) {
      Sum& s = services[x.service];
      double rps = rate(growth(second, name, x, &RevisionReading::requests));
      double eps = rate(growth(second, name, x, &RevisionReading::errors));
      std::uint64_t cold = growth(minute, name, x, &RevisionReading::cold_starts);
      Histogram::Snapshot window = x.latency;
      if (ten) {
        auto before = ten->revisions.find(name);
        if (before != ten->revisions.end()) window = x.latency.minus(before->second.latency);
      }
      s.rps += rps;
      s.eps += eps;
      s.cold += cold;
      for (std::size_t i = 0; i < window.counts.size(); ++i)
        s.latency.counts[i] += window.counts[i];
      s.latency.sum += window.sum;
      s.desired += x.desired;
      s.ready += x.ready;
      s.in_flight += x.in_flight;
      s.queued += x.queued;
      s.revisions.push_back(json::object{{"name", name},
                                         {"requestsPerSecond", rps},
                                         {"errorsPerSecond", eps},
                                         {"desiredInstances", x.desired},
                                         {"readyInstances", x.ready},
                                         {"inFlight", x.in_flight},
                                         {"queued", x.queued},
                                         {"coldStartsLastMinute", cold},
                                         {"requestsTotal", x.requests},
                                         {"restarts", x.restarts}});
    }
    auto quantile_ms = [](const Histogram::Snapshot& h, double q) {
      return h.count() > 0 ? json::value(h.quantile(q) * 1000) : json::value(nullptr);
    };
    json::array items;
    for (auto& [name, s] : services)
      items.push_back(json::object{{"name", name},
                                   {"requestsPerSecond", s.rps},
                                   {"errorsPerSecond", s.eps},
                                   {"latencyP50Ms", quantile_ms(s.latency, 0.5)},
                                   {"latencyP99Ms", quantile_ms(s.latency, 0.99)},
                                   {"desiredInstances", s.desired},
                                   {"readyInstances", s.ready},
                                   {"inFlight", s.in_flight},
                                   {"queued", s.queued},
                                   {"coldStartsLastMinute", s.cold},
                                   {"revisions", std::move(s.revisions)}});
    auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    return json::object{{"kind", "ServiceMetrics"},
                        {"namespace", ns},
                        {"timeUnixMs", unix_ms},
                        {"intervalSeconds", dt},
                        {"services", std::move(items)}};
  }

  // A followed answer (JSON lines until the client goes): its clock on the control strand, and
  // `closed` once the client is gone. Null when the answer could not begin.
  struct Follow {
    explicit Follow(const asio::any_io_executor& ex) : tick(ex) {}
    asio::steady_timer tick;
    bool closed = false;
  };
  awaitable<std::shared_ptr<Follow>> begin_follow(Responder& r) {
    bool ok = co_await r.begin_stream(200, "application/x-ndjson");
    if (!ok) co_return nullptr;
    auto state = std::make_shared<Follow>(p_.control.get_executor());
    r.notify_close([state, ex = p_.control.get_executor()] {
      asio::post(ex, [state] {
        state->closed = true;
        state->tick.cancel();
      });
    });
    co_return state;
  }

  // The live figures of a namespace's services (or one, with service=NAME) as JSON lines:
  // one now, and with follow=true one a second after it until the client goes away. What the
  // dashboard's charts draw; the counters behind them are /metrics'.
  awaitable<bool> service_metrics(ApiRequest& req, Responder& r) {
    std::string ns = req.param("namespace");
    std::string service = req.query_value("service").value_or("");
    auto follow_asked = req.query_flag("follow");
    if (!follow_asked) co_return co_await r.send_error(follow_asked.error());
    const bool follow = *follow_asked;
    if (!service.empty()) {
      auto found = co_await service_exists(ns, service);
      if (!found) co_return co_await r.send_error(found.error());
    }
    std::deque<MetricsReading> history;
    history.push_back(read_metrics(ns, service));
    if (!follow) {
      json::value line = metrics_line(ns, history);
      co_return co_await r.send_json(200, line);
    }
    auto state = co_await begin_follow(r);
    bool ok = state != nullptr;
    while (ok && !state->closed) {
      std::string text = json::serialize(metrics_line(ns, history));
      text += '\n';
      ok = co_await r.send_chunk(std::move(text));
      if (!ok) break;
      state->tick.expires_after(std::chrono::seconds(1));
      co_await state->tick.async_wait(kAwait);
      if (state->closed) break;
      history.push_back(read_metrics(ns, service));
      while (history.size() > 62) history.pop_front();
    }
    co_return false;  // a follow ends with the connection
  }

  // A broker's latest events and what became of each delivery, newest first (limit: 50 by
  // default, at most 1000): what 'elafros broker events' and describe show. With follow=true,
  // JSON lines: the list now, then again whenever it changed (checked once a second against
  // the event log's change count, so an idle broker costs no read), until the client goes.
  awaitable<bool> broker_events(ApiRequest& req, Responder& r) {
    std::string ns = req.param("namespace"), name = req.param("name");
    std::size_t limit = 50;
    if (auto v = req.query_value("limit"); v && !v->empty()) {
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || end != v->data() + v->size() || n == 0 || n > 1000)
        co_return co_await r.send_error(Error::bad_request(
            fmt::format("limit must be a number from 1 to 1000, not \"{}\"", *v)));
      limit = n;
    }
    auto follow = req.query_flag("follow");
    if (!follow) co_return co_await r.send_error(follow.error());
    ObjectKey key{"eventing.knative.dev", "Broker", ns, name};
    auto broker = co_await offload(p_.store_thread.get_executor(), &ObjectStore::get_object,
                                   static_cast<ObjectStore*>(&p_.store), key);
    if (!broker)
      co_return co_await r.send_error(Error::not_found(fmt::format(
          "broker \"{}\" not found in namespace \"{}\"; 'elafros broker list' lists them", name,
          ns)));
    std::uint64_t seen = p_.store.changes();
    auto events = co_await offload(p_.store_thread.get_executor(), &EventLog::recent_events,
                                   static_cast<EventLog*>(&p_.store), ns, name, limit);
    if (!events) co_return co_await r.send_error(events.error());
    if (!*follow) {
      json::value answer = broker_events_json(*events);
      co_return co_await r.send_json(200, answer);
    }
    auto state = co_await begin_follow(r);
    bool ok = state != nullptr;
    std::string sent;
    while (ok && !state->closed) {
      std::string line = json::serialize(broker_events_json(*events)) + "\n";
      if (line != sent) {
        ok = co_await r.send_chunk(line);
        sent = std::move(line);
      }
      while (ok && !state->closed && p_.store.changes() == seen) {
        state->tick.expires_after(std::chrono::seconds(1));
        co_await state->tick.async_wait(kAwait);
      }
      if (!ok || state->closed) break;
      seen = p_.store.changes();
      events = co_await offload(p_.store_thread.get_executor(), &EventLog::recent_events,
                                static_cast<EventLog*>(&p_.store), ns, name, limit);
      if (!events) break;  // the store failed: end the stream, the client reconnects
    }
    co_return false;  // a follow ends with the connection
  }

  static json::object broker_events_json(
      const std::vector<std::pair<StoredEvent, std::vector<Delivery>>>& events) {
    json::array items;
    for (const auto& [e, deliveries] : events) {
      json::object attrs;
      for (const auto& [k, v] : e.event.attributes) attrs[k] = v;
      json::array ds;
      for (const auto& d : deliveries)
        ds.push_back(
            json::object{{"trigger", d.trigger},
                         {"state", to_string(d.state)},
                         {"attempts", d.attempts},
                         {"lastCode", d.last_code},
                         {"lastError", d.last_error},
                         {"nextAttempt", d.state == DeliveryState::kPending
                                             ? json::value(format_rfc3339(d.next_ms / 1000))
                                             : json::value(nullptr)}});
      json::object item{{"sequence", e.seq},
                        {"received", format_rfc3339(e.received_ms / 1000)},
                        {"attributes", std::move(attrs)},
                        {"dataBytes", e.event.data.size()},
                        {"deliveries", std::move(ds)}};
      if (e.event.has_data) add_data_preview(item, e.event.data);
      items.push_back(std::move(item));
    }
    return json::object{{"items", std::move(items)}};
  }

  // An event's data, at most kDataPreview bytes of it: as text when it is UTF-8 ("data"), else
  // as base64 ("dataBase64"); "dataTruncated" when there is more.
  static void add_data_preview(json::object& item, const std::string& data) {
    constexpr std::size_t kDataPreview = 1024;
    std::size_t n = std::min(data.size(), kDataPreview);
    if (valid_utf8(data)) {
      // Not through a character: back to the first byte of the one cut.
      while (n < data.size() && n > 0 && (static_cast<unsigned char>(data[n]) & 0xc0) == 0x80) --n;
      item["data"] = data.substr(0, n);
    } else {
      item["dataBase64"] = base64_encode(std::string_view(data).substr(0, n));
    }
    if (n < data.size()) item["dataTruncated"] = true;
  }

  DaemonApiParts p_;
  DaemonInfo info_;
  std::chrono::steady_clock::time_point started_;
};

template <class Api>
auto binder(std::shared_ptr<Api> api) {
  return [api](awaitable<bool> (Api::*fn)(ApiRequest&, Responder&)) -> Handler {
    return [api, fn](ApiRequest& req, Responder& r) { return ((*api).*fn)(req, r); };
  };
}

}  // namespace

void add_operation_routes(Router& router, const DaemonApiParts& parts, DaemonInfo info) {
  auto api = std::make_shared<OperationsApi>(parts, std::move(info));
  auto bind = binder(api);
  router.add("GET", "/metrics", bind(&OperationsApi::metrics));
  router.add("GET", "/api/v1/namespaces/{namespace}/services/{name}/logs",
             bind(&OperationsApi::logs));
  for (std::string base : {"/api/v1", "/apis/elafros.dev/v1"}) {
    router.add("GET", base + "/status", bind(&OperationsApi::status));
    router.add("GET", base + "/instances", bind(&OperationsApi::instances));
    router.add("POST", base + "/system/stop-all", bind(&OperationsApi::stop_all));
    router.add("POST", base + "/system/start-all", bind(&OperationsApi::start_all));
  }
  router.add("POST", "/apis/elafros.dev/v1/system/rotate-key", bind(&OperationsApi::rotate_key));
  router.add("GET", "/apis/elafros.dev/v1/namespaces/{namespace}/services/{name}/logs",
             bind(&OperationsApi::logs));
  router.add("GET", "/apis/elafros.dev/v1/namespaces/{namespace}/brokers/{name}/events",
             bind(&OperationsApi::broker_events));
  router.add("GET", "/apis/elafros.dev/v1/namespaces/{namespace}/servicemetrics",
             bind(&OperationsApi::service_metrics));
}

MetricsText add_metrics_route(Router& router, const DaemonApiParts& parts, DaemonInfo info) {
  auto api = std::make_shared<OperationsApi>(parts, std::move(info));
  router.add("GET", "/metrics", binder(api)(&OperationsApi::metrics));
  return [api](std::function<void(std::string)> done) {
    asio::co_spawn(api->control(), api->metrics_text(),
                   [done = std::move(done)](std::exception_ptr e, std::string text) {
                     if (!e) done(std::move(text));
                   });
  };
}

}  // namespace elafros::api
