#include "elafros/autoscaling.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>

namespace elafros {
namespace {

std::optional<double> number(const std::string& s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int> whole(const std::string& s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Kubernetes-style durations as Knative takes them: "60s", "1m", "1m30s", "500ms", or plain
// seconds.
std::optional<std::chrono::milliseconds> duration(std::string s) {
  if (auto n = whole(s)) return std::chrono::seconds(*n);
  std::chrono::milliseconds total{0};
  std::size_t i = 0;
  if (s.empty()) return std::nullopt;
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    auto value = number(s.substr(i, j - i));
    if (!value) return std::nullopt;
    std::size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    std::string unit = s.substr(j, k - j);
    double ms = unit == "ms"  ? 1
                : unit == "s" ? 1000
                : unit == "m" ? 60000
                : unit == "h" ? 3600000
                              : -1;
    if (ms < 0) return std::nullopt;
    total += std::chrono::milliseconds(static_cast<std::int64_t>(*value * ms));
    i = k;
  }
  return total;
}

// Knative's camelCase aliases (pkg/apis/autoscaling/register.go), each with its canonical name.
struct Alias {
  std::string_view alias, name;
};
constexpr Alias kAliases[] = {
    {"initialScale", "initial-scale"},
    {"maxScale", "max-scale"},
    {"metricAggregationAlgorithm", "metric-aggregation-algorithm"},
    {"minScale", "min-scale"},
    {"panicThresholdPercentage", "panic-threshold-percentage"},
    {"panicWindowPercentage", "panic-window-percentage"},
    {"scaleDownDelay", "scale-down-delay"},
    {"scaleToZeroPodRetentionPeriod", "scale-to-zero-pod-retention-period"},
    {"targetBurstCapacity", "target-burst-capacity"},
    {"targetUtilizationPercentage", "target-utilization-percentage"},
};

std::optional<std::string_view> canonical_of(std::string_view alias) {
  for (const auto& a : kAliases)
    if (a.alias == alias) return a.name;
  return std::nullopt;
}

std::string full_key(std::string_view name) {
  return std::string(kAnnotationPrefix) + std::string(name);
}

}  // namespace

std::optional<std::string> autoscaling_annotation(
    const std::map<std::string, std::string>& annotations, std::string_view name) {
  if (auto it = annotations.find(full_key(name)); it != annotations.end()) return it->second;
  for (const auto& a : kAliases)
    if (a.name == name)
      if (auto it = annotations.find(full_key(a.alias)); it != annotations.end()) return it->second;
  return std::nullopt;
}

Result<AutoscalingSpec> autoscaling_spec(const RevisionTemplate& tmpl,
                                         const AutoscalingDefaults& d) {
  AutoscalingSpec spec;
  spec.target = d.target;
  spec.utilization = d.utilization_percent / 100.0;
  spec.stable_window = d.stable_window;
  spec.max_scale_up_rate = d.max_scale_up_rate;
  spec.max_scale_down_rate = d.max_scale_down_rate;
  spec.panic_threshold = d.panic_threshold_percent / 100.0;
  spec.scale_to_zero_grace = d.scale_to_zero_grace;
  spec.allow_zero = d.enable_scale_to_zero;
  spec.initial_scale = d.initial_scale;
  if (tmpl.container_concurrency > 0) spec.target = tmpl.container_concurrency;
  bool target_set = false;
  double panic_window_percent = d.panic_window_percent;
  // Which key set min-scale and max-scale, for the messages that compare them.
  std::string min_key = "min-scale", max_key = "max-scale";
  std::optional<int> activation;
  std::string activation_key;

  for (const auto& [key, value] : tmpl.annotations) {
    if (key.rfind(kAnnotationPrefix, 0) != 0) continue;
    std::string name = key.substr(std::string_view(kAnnotationPrefix).size());
    std::string shown = name;  // the key as written, alias or not
    if (auto canonical = canonical_of(name)) {
      // Knative's key priority: the canonical key wins over its alias when both are there.
      if (tmpl.annotations.count(full_key(*canonical))) continue;
      name = std::string(*canonical);
    }
    auto bad = [&](const char* what) {
      return Error::invalid(
          fmt::format("spec.template.metadata.annotations[{}]: \"{}\" {}", key, value, what));
    };
    if (name == "class") {
      if (value != "kpa.autoscaling.knative.dev")
        return bad(
            "is not supported; elafros autoscales with the KPA (kpa.autoscaling.knative.dev)");
    } else if (name == "metric") {
      if (value == "concurrency")
        spec.metric = ScaleMetric::kConcurrency;
      else if (value == "rps")
        spec.metric = ScaleMetric::kRps;
      else
        return bad("must be \"concurrency\" or \"rps\"");
    } else if (name == "metric-aggregation-algorithm") {
      if (value == "linear")
        spec.aggregation = Aggregation::kLinear;
      else if (value == "weighted-exponential" || value == "weightedExponential")
        spec.aggregation = Aggregation::kWeightedExponential;
      else
        return bad("must be \"linear\" or \"weighted-exponential\" (or \"weightedExponential\")");
    } else if (name == "target") {
      auto v = number(value);
      if (!v || *v < 0.01) return bad("must be a number of at least 0.01");
      spec.target = *v;
      target_set = true;
    } else if (name == "target-utilization-percentage") {
      auto v = number(value);
      if (!v || *v < 1 || *v > 100) return bad("must be a percentage between 1 and 100");
      spec.utilization = *v / 100.0;
    } else if (name == "target-burst-capacity") {
      auto v = number(value);
      if (!v || (*v < 0 && *v != -1)) return bad("must be a number, 0 or more, or -1 (unlimited)");
      spec.target_burst_capacity = *v;
    } else if (name == "window") {
      auto v = duration(value);
      if (!v || *v < std::chrono::seconds(6) || *v > std::chrono::hours(1))
        return bad("must be a duration between 6s and 1h");
      if (v->count() % 1000 != 0) return bad("must be whole seconds (e.g. 60s)");
      spec.stable_window = std::chrono::duration_cast<std::chrono::seconds>(*v);
    } else if (name == "panic-window-percentage") {
      auto v = number(value);
      if (!v || *v < 1 || *v > 100) return bad("must be a percentage between 1 and 100");
      panic_window_percent = *v;
    } else if (name == "panic-threshold-percentage") {
      auto v = number(value);
      if (!v || *v < 110 || *v > 1000) return bad("must be a percentage between 110 and 1000");
      spec.panic_threshold = *v / 100.0;
    } else if (name == "min-scale" || name == "max-scale" || name == "initial-scale") {
      auto v = whole(value);
      if (!v || *v < 0) return bad("must be a whole number, 0 or more");
      if (name == "min-scale") {
        spec.min_scale = *v;
        min_key = shown;
      } else if (name == "max-scale") {
        spec.max_scale = *v;
        max_key = shown;
      } else {
        spec.initial_scale = *v;
      }
    } else if (name == "activation-scale") {
      auto v = whole(value);
      if (!v || *v < 2)
        return bad(
            "must be a whole number, 2 or more (the least scale a start from zero "
            "goes to; 1 is what every start does)");
      activation = *v;
      activation_key = key;
    } else if (name == "scale-down-delay") {
      auto v = duration(value);
      if (!v || *v > std::chrono::hours(1)) return bad("must be a duration between 0s and 1h");
      if (v->count() % 1000 != 0) return bad("must be whole seconds (e.g. 30s)");
      spec.scale_down_delay = std::chrono::duration_cast<std::chrono::seconds>(*v);
    } else if (name == "scale-to-zero-pod-retention-period") {
      auto v = duration(value);
      if (!v || *v > std::chrono::hours(1)) return bad("must be a duration between 0s and 1h");
      spec.scale_to_zero_retention =
          std::chrono::duration_cast<std::chrono::seconds>(*v + std::chrono::milliseconds(999));
    } else {
      return Error::invalid(fmt::format(
          "spec.template.metadata.annotations[{}]: unknown autoscaling annotation (known: "
          "class, metric, target, target-utilization-percentage, target-burst-capacity, "
          "window, panic-window-percentage, panic-threshold-percentage, min-scale, max-scale, "
          "initial-scale, activation-scale, scale-down-delay, "
          "scale-to-zero-pod-retention-period, metric-aggregation-algorithm, and Knative's "
          "camelCase aliases such as minScale)",
          key));
    }
  }
  for (const auto& [key, value] : tmpl.annotations) {
    if (key.rfind(kElafrosAutoscalingPrefix, 0) != 0) continue;
    if (key.substr(std::string_view(kElafrosAutoscalingPrefix).size()) != "standby")
      return Error::invalid(fmt::format(
          "spec.template.metadata.annotations[{}]: unknown annotation (known: {}standby)", key,
          kElafrosAutoscalingPrefix));
    auto v = whole(value);
    if (!v || *v < 0 || *v > 64)
      return Error::invalid(
          fmt::format("spec.template.metadata.annotations[{}]: \"{}\" must be a whole number "
                      "from 0 to 64 (standby instances kept ready to start; 0: none)",
                      key, value));
    spec.standby = *v;
  }
  if (spec.metric == ScaleMetric::kRps && !target_set) spec.target = d.target_rps;
  if (spec.max_scale > 0 && spec.min_scale > spec.max_scale)
    return Error::invalid(fmt::format(
        "spec.template.metadata.annotations: {} {} is above {} {}; lower it or raise the other",
        min_key, spec.min_scale, max_key, spec.max_scale));
  if (activation) {
    if (*activation < spec.min_scale)
      return Error::invalid(fmt::format(
          "spec.template.metadata.annotations[{}]: {} is below {} {}; activation-scale must "
          "be at least the minimum",
          activation_key, *activation, min_key, spec.min_scale));
    if (spec.max_scale > 0 && *activation > spec.max_scale)
      return Error::invalid(fmt::format(
          "spec.template.metadata.annotations[{}]: {} is above {} {}; activation-scale must "
          "be at most the maximum",
          activation_key, *activation, max_key, spec.max_scale));
    spec.activation_scale = *activation;
  }
  if (spec.max_scale > 0 && spec.initial_scale > spec.max_scale)
    spec.initial_scale = spec.max_scale;
  auto panic_ms = std::chrono::duration_cast<std::chrono::milliseconds>(spec.stable_window) *
                  panic_window_percent / 100.0;
  spec.panic_window =
      std::max(std::chrono::milliseconds(1000),
               std::chrono::milliseconds(static_cast<std::int64_t>(panic_ms.count())));
  return spec;
}

}  // namespace elafros
