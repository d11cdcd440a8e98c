#pragma once
// What quotas limit on instances, and what a namespace's live instances hold: shared by the
// quota book (src/policy), which reads ResourceQuotas, and the reconciler, which scales within
// them (docs/architecture.md, "Quotas").

#include <cstdint>
#include <string>

namespace elafros {

// What a namespace's live instances hold, as their revisions' limits and requests say.
struct NamespaceUsage {
  std::int64_t instances = 0;
  std::int64_t limits_cpu_millis = 0, limits_memory_bytes = 0;
  std::int64_t requests_cpu_millis = 0, requests_memory_bytes = 0;
};

// The tightest hard limits of a namespace's quotas on instances; -1: none.
struct InstanceQuota {
  std::int64_t instances = -1, limits_cpu_millis = -1, limits_memory_bytes = -1;
  std::string names;  // the quotas, for messages
  bool any() const { return instances >= 0 || limits_cpu_millis >= 0 || limits_memory_bytes >= 0; }
};

}  // namespace elafros
