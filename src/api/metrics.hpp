#pragma once
// Prometheus text exposition (format 0.0.4) of the daemon's metrics (docs/architecture.md). Names
// follow Prometheus conventions with the elafros_ prefix; labels are namespace, service, revision,
// instance and code (the status class, "2xx"). Series come from the revisions and instances
// that exist now, so a deleted revision's series go away and label values stay bounded.

#include <string>
#include <vector>

#include "elafros/object_store.hpp"
#include "log_collector.hpp"
#include "reconciler.hpp"

namespace elafros {

struct MetricsInput {
  std::string version;
  std::vector<Reconciler::RevisionMetrics> revisions;
  std::vector<Reconciler::InstanceUsage> instances;
  CommitStats commits;
  LogHealth logs;
  Reconciler::Cleanup cleanup;
  std::int64_t data_dir_free_bytes = -1;  // -1: unknown
};

// Renders everything, the daemon's own process metrics (process_*) included.
std::string render_metrics(const MetricsInput& in);

}  // namespace elafros
