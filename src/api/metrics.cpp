#include "api/metrics.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "elafros/prometheus_text.hpp"

namespace elafros {
namespace {

std::string labels(const Reconciler::RevisionMetrics& r) {
  return fmt::format(R"(namespace="{}",service="{}",revision="{}")",
                     prometheus_escape(r.namespace_), prometheus_escape(r.service),
                     prometheus_escape(r.revision));
}

void process_metrics(PrometheusText& w) {
  // /proc/self/stat: utime (14) and stime (15) in clock ticks, starttime (22) in ticks since
  // boot, vsize (23) in bytes, rss (24) in pages.
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; fields >> x;) f.push_back(x);
  // f[0] is field 3 (state).
  if (f.size() < 22) return;
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  double start_ticks = std::stod(f[19]);
  double vsize = std::stod(f[20]);
  double rss = std::stod(f[21]) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  double boot = 0;
  std::ifstream st("/proc/stat");
  for (std::string key; st >> key;)
    if (key == "btime") {
      st >> boot;
      break;
    }
  int fds = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++fds;
    ::closedir(d);
  }
  struct rlimit nofile {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  w.family("process_cpu_seconds_total", "counter", "User and system CPU time of elafrosd.");
  w.sample("process_cpu_seconds_total", "", cpu);
  w.family("process_resident_memory_bytes", "gauge", "Resident memory of elafrosd.");
  w.sample("process_resident_memory_bytes", "", rss);
  w.family("process_virtual_memory_bytes", "gauge", "Virtual memory of elafrosd.");
  w.sample("process_virtual_memory_bytes", "", vsize);
  w.family("process_start_time_seconds", "gauge", "When elafrosd started, in Unix seconds.");
  w.sample("process_start_time_seconds", "", boot + start_ticks / ticks);
  w.family("process_open_fds", "gauge", "File descriptors elafrosd has open.");
  w.sample("process_open_fds", "", fds - 1);  // less the one reading the directory
  w.family("process_max_fds", "gauge", "elafrosd's limit of open file descriptors.");
  w.sample("process_max_fds", "", static_cast<double>(nofile.rlim_cur));
}

}  // namespace

std::string render_metrics(const MetricsInput& in) {
  PrometheusText w;
  w.family("elafros_build_info", "gauge", "The running elafrosd's version (always 1).");
  w.sample("elafros_build_info", fmt::format(R"(version="{}")", prometheus_escape(in.version)), 1);

  static constexpr const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  // Each revision's counters, summed over the proxy threads' shards once.
  std::vector<RequestTotals> totals;
  totals.reserve(in.revisions.size());
  for (const auto& r : in.revisions) totals.push_back(r.stats->totals());
  w.family("elafros_requests_total", "counter",
           "Requests the proxy answered for a revision, by status class.");
  for (std::size_t i = 0; i < in.revisions.size(); ++i)
    for (std::size_t c = 0; c < 5; ++c)
      w.sample("elafros_requests_total",
               labels(in.revisions[i]) + fmt::format(R"(,code="{}")", kClasses[c]),
               static_cast<double>(totals[i].by_class[c]));
  w.family("elafros_request_duration_seconds", "histogram",
           "Time from a request's arrival at the proxy to the end of its response.");
  for (std::size_t i = 0; i < in.revisions.size(); ++i)
    w.histogram("elafros_request_duration_seconds", labels(in.revisions[i]), totals[i].latency);
  w.family("elafros_requests_in_flight", "gauge",
           "Requests in flight to a revision, those waiting in the activator included.");
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  for (const auto& r : in.revisions)
    w.sample("elafros_requests_in_flight", labels(r),
             static_cast<double>(r.stats->read(now).in_flight));
  // Usage as counters per revision, since the daemon started.
  auto per_revision = [&w, &in](const char* name, const char* help, auto value) {
    w.family(name, "counter", help);
    for (const auto& r : in.revisions) w.sample(name, labels(r), value(r));
  };
  using M = Reconciler::RevisionMetrics;
  per_revision("elafros_revision_active_seconds_total",
               "Time a revision had at least one request in flight (usage accounting's active "
               "seconds), since the daemon started.",
               [now](const M& r) { return r.stats->read(now).active_seconds; });
  per_revision("elafros_revision_instance_seconds_total",
               "The lifetimes of a revision's instances, the live ones' so far (usage "
               "accounting's instance-seconds).",
               [](const M& r) { return r.instance_seconds; });
  per_revision("elafros_revision_vcpu_seconds_allocated_total",
               "vCPU-seconds a revision's instances were allotted: their CPU limit × their "
               "lifetimes.",
               [](const M& r) { return r.vcpu_seconds_alloc; });
  per_revision("elafros_revision_memory_gib_seconds_allocated_total",
               "GiB-seconds a revision's instances were allotted: their memory limit × their "
               "lifetimes.",
               [](const M& r) { return r.gib_seconds_alloc; });
  per_revision("elafros_revision_busy_seconds_total",
               "Requests in flight integrated over time (concurrency × seconds), since the "
               "daemon started.",
               [now](const M& r) { return r.stats->read(now).busy_seconds; });
  w.family("elafros_activator_queue_depth", "gauge",
           "Requests waiting in the activator for an instance of a revision.");
  for (std::size_t i = 0; i < in.revisions.size(); ++i)
    w.sample("elafros_activator_queue_depth", labels(in.revisions[i]),
             static_cast<double>(totals[i].queued));
  w.family("elafros_cold_starts_total", "counter",
           "Requests that found no instance of their revision and waited for one to start.");
  for (std::size_t i = 0; i < in.revisions.size(); ++i)
    w.sample("elafros_cold_starts_total", labels(in.revisions[i]),
             static_cast<double>(totals[i].cold_starts));
  w.family("elafros_cold_start_duration_seconds", "histogram",
           "How long cold-starting requests waited for an instance.");
  for (std::size_t i = 0; i < in.revisions.size(); ++i)
    w.histogram("elafros_cold_start_duration_seconds", labels(in.revisions[i]),
                totals[i].cold_start_latency);
  w.family("elafros_instances_desired", "gauge", "Instances the autoscaler wants for a revision.");
  for (const auto& r : in.revisions) w.sample("elafros_instances_desired", labels(r), r.desired);
  w.family("elafros_instances_ready", "gauge", "Ready instances of a revision.");
  for (const auto& r : in.revisions) w.sample("elafros_instances_ready", labels(r), r.actual);
  w.family("elafros_autoscaler_panic", "gauge",
           "1 while the autoscaler is in panic mode for a revision.");
  for (const auto& r : in.revisions)
    w.sample("elafros_autoscaler_panic", labels(r), r.panic ? 1 : 0);
  w.family("elafros_container_restarts_total", "counter",
           "Instances of a revision replaced after they failed.");
  for (const auto& r : in.revisions)
    w.sample("elafros_container_restarts_total", labels(r), r.restarts);

  auto instance_labels = [](const Reconciler::InstanceUsage& i) {
    return fmt::format(R"(namespace="{}",service="{}",revision="{}",instance="{}")",
                       prometheus_escape(i.namespace_), prometheus_escape(i.service),
                       prometheus_escape(i.revision), prometheus_escape(i.instance));
  };
  w.family("elafros_instance_cpu_seconds_total", "counter",
           "CPU time an instance's cgroup has used.");
  for (const auto& i : in.instances)
    if (i.usage.known)
      w.sample("elafros_instance_cpu_seconds_total", instance_labels(i), i.usage.cpu_seconds);
  w.family("elafros_instance_memory_bytes", "gauge", "Memory an instance's cgroup uses now.");
  for (const auto& i : in.instances)
    if (i.usage.known)
      w.sample("elafros_instance_memory_bytes", instance_labels(i),
               static_cast<double>(i.usage.memory_bytes));
  w.family("elafros_store_transactions_total", "counter",
           "Transactions the store committed, one fsync each.");
  w.sample("elafros_store_transactions_total", "", static_cast<double>(in.commits.transactions));
  w.family("elafros_store_write_groups_total", "counter",
           "Write groups (one API write each, with what it brings along) those transactions "
           "committed; more groups than transactions means writes were grouped.");
  w.sample("elafros_store_write_groups_total", "", static_cast<double>(in.commits.groups));
  auto sink = [](const LogHealth::Sink& s) {
    return fmt::format(R"(sink="{}")", prometheus_escape(s.name));
  };
  w.family("elafros_log_sink_up", "gauge", "1 while a log sink's last write succeeded.");
  for (const auto& s : in.logs.sinks) w.sample("elafros_log_sink_up", sink(s), s.healthy ? 1 : 0);
  w.family("elafros_log_sink_failed_writes_total", "counter",
           "Writes to a log sink that failed; their lines were kept and offered again.");
  for (const auto& s : in.logs.sinks)
    w.sample("elafros_log_sink_failed_writes_total", sink(s), static_cast<double>(s.failed_writes));
  w.family("elafros_log_sink_pending_bytes", "gauge",
           "Spooled log bytes a sink does not have yet.");
  for (const auto& s : in.logs.sinks)
    w.sample("elafros_log_sink_pending_bytes", sink(s), static_cast<double>(s.pending_bytes));
  w.family("elafros_log_lines_dropped_total", "counter",
           "The oldest spooled log lines a sink lost while it was more than log-spool-max-bytes "
           "behind.");
  for (const auto& s : in.logs.sinks)
    w.sample("elafros_log_lines_dropped_total", sink(s), static_cast<double>(s.dropped_lines));
  w.family("elafros_instances_terminating", "gauge",
           "Instances whose container removal failed and is being retried.");
  w.sample("elafros_instances_terminating", "", static_cast<double>(in.cleanup.terminating));
  w.family("elafros_stray_containers_removed_total", "counter",
           "Containers or bundles no instance tracked, removed by the orphan sweep.");
  w.sample("elafros_stray_containers_removed_total", "",
           static_cast<double>(in.cleanup.strays_removed));
  if (in.data_dir_free_bytes >= 0) {
    w.family("elafros_data_dir_free_bytes", "gauge",
             "Free space on the data dir's file system, for unprivileged writers.");
    w.sample("elafros_data_dir_free_bytes", "", static_cast<double>(in.data_dir_free_bytes));
  }
  process_metrics(w);
  return w.take();
}

}  // namespace elafros
