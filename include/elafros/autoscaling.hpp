#pragma once
// Knative Pod Autoscaler (KPA) settings: daemon-wide defaults (the config-autoscaler ConfigMap's
// keys) and per-revision annotations `autoscaling.knative.dev/*` (docs/architecture.md).

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

inline constexpr const char* kAnnotationPrefix = "autoscaling.knative.dev/";
// elafros's own: `autoscaling.elafros.dev/standby`.
inline constexpr const char* kElafrosAutoscalingPrefix = "autoscaling.elafros.dev/";

struct AutoscalingDefaults {
  double target = 100;              // container-concurrency-target-default
  double target_rps = 200;          // requests-per-second-target-default
  double utilization_percent = 70;  // container-concurrency-target-percentage
  std::chrono::seconds stable_window{60};
  double panic_window_percent = 10;
  double panic_threshold_percent = 200;
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  std::chrono::seconds scale_to_zero_grace{30};
  bool enable_scale_to_zero = true;
  int initial_scale = 1;
};

enum class ScaleMetric { kConcurrency, kRps };

// How a window's measurements are averaged (metric-aggregation-algorithm): equally, or with
// weights that decay with each bucket's age (Knative's weighted-exponential).
enum class Aggregation { kLinear, kWeightedExponential };

// What one revision scales by: defaults overridden by its annotations and containerConcurrency.
struct AutoscalingSpec {
  ScaleMetric metric = ScaleMetric::kConcurrency;
  double target = 100;       // per instance: in-flight requests, or requests per second
  double utilization = 0.7;  // fraction of target to aim at
  std::chrono::seconds stable_window{60};
  std::chrono::milliseconds panic_window{6000};
  double panic_threshold = 2.0;  // panic when demand ≥ this × current capacity
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  int min_scale = 0;
  int max_scale = 0;  // 0: no bound
  int initial_scale = 1;
  int activation_scale = 1;  // the least non-zero scale: a start from zero goes to at least this
  std::chrono::seconds scale_down_delay{0};
  std::chrono::seconds scale_to_zero_grace{30};
  std::chrono::seconds scale_to_zero_retention{0};  // the last instance stays at least this long
  Aggregation aggregation = Aggregation::kLinear;
  // Knative's target burst capacity: elafros' proxy is the activator and always in the path; while
  // the ready instances' spare capacity is below this (-1: always), it pokes the autoscaler with
  // the load at once (RevisionRoute::burst_capacity).
  double target_burst_capacity = 211;
  bool allow_zero = true;
  // Standby instances kept made and waiting (autoscaling.elafros.dev/standby); -1: unset, one
  // while the revision had traffic lately (docs/architecture.md, "Standby instances").
  int standby = -1;

  double target_value() const { return target * utilization; }
};

// The value of an autoscaling annotation under Knative's key priority: the canonical kebab-case
// key (`autoscaling.knative.dev/min-scale`) first, then its camelCase alias (`minScale`).
// `name` is the canonical name without the prefix.
std::optional<std::string> autoscaling_annotation(
    const std::map<std::string, std::string>& annotations, std::string_view name);

// Reads the autoscaling annotations of a revision template. A malformed or out-of-range value
// is an error naming the annotation, so it can be refused when the service is written.
Result<AutoscalingSpec> autoscaling_spec(const RevisionTemplate& tmpl,
                                         const AutoscalingDefaults& defaults);

}  // namespace elafros
