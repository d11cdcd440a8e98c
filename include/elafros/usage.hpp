#pragma once
// Usage accounting for charge-back (docs/architecture.md, "Usage"): samples of each instance's
// cgroup (CPU time, memory) every 10 s and at stop, and of each revision's request counters,
// rolled up into hourly buckets per namespace, service and revision (with the time a request was
// in flight: active seconds). A namespace's builds and event deliveries, which belong to no
// revision, go to its row with service and revision "".

#include <cstdint>
#include <string>

namespace elafros {

struct UsageSample {
  std::string instance;  // "" for a revision's request counters
  std::string ns, service, revision;
  std::int64_t t_ms = 0;           // wall clock
  std::int64_t started_ms = 0;     // when the instance was created: the first sample's base
  std::uint64_t cpu_ns = 0;        // cumulative, from the cgroup
  std::uint64_t memory_bytes = 0;  // now
  std::int64_t cpu_limit_millis = 0, memory_limit_bytes = 0;  // what it was allotted
  bool final = false;  // the instance is going: its mark goes too
  std::uint64_t requests = 0, errors_5xx = 0, cold_starts = 0;  // deltas, for "" instances
  std::int64_t active_ms = 0;  // delta of time with a request in flight, for "" instances
  std::int64_t build_ms = 0;   // a build's run, for a namespace's row (service "")
};

// One hourly bucket of one revision.
struct UsageRow {
  std::int64_t window_start = 0;  // unix seconds, UTC hour
  std::string ns, service, revision;
  std::uint64_t requests = 0, errors_5xx = 0, cold_starts = 0;
  double instance_seconds = 0, active_seconds = 0, cpu_seconds_used = 0, vcpu_seconds_alloc = 0;
  double gib_seconds_used = 0, gib_seconds_alloc = 0;
  std::uint64_t peak_memory_bytes = 0;
  double build_seconds = 0;            // builds that ran in the namespace (service "")
  std::uint64_t events_delivered = 0;  // deliveries to Triggers' subscribers (service "")
};

}  // namespace elafros
