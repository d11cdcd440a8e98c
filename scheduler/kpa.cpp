#include "kpa.hpp"

#include <algorithm>
#include <cmath>

namespace elafros {
namespace {

int ceil_count(double x) {
  // Averages of exact measurements carry float noise: 0.7 / 0.7 must be 1, not 2.
  return static_cast<int>(std::ceil(x - 1e-9));
}

}  // namespace

Kpa::Kpa(AutoscalingSpec spec, TimePoint created)
    : spec_(spec), created_(created), last_active_(created) {}

void Kpa::record(TimePoint now, double concurrency, double rps) {
  if (buckets_.empty() && first_record_ == TimePoint{})
    first_record_ = now - std::chrono::seconds(1);
  buckets_.push_back({now, concurrency, rps});
  if (concurrency > 0 || rps > 0) last_active_ = now;
  while (!buckets_.empty() && buckets_.front().at <= now - spec_.stable_window)
    buckets_.pop_front();
}

void Kpa::poke(TimePoint now) {
  last_active_ = std::max(last_active_, now);
}

double Kpa::average(TimePoint now, std::chrono::milliseconds window) const {
  if (spec_.aggregation == Aggregation::kWeightedExponential) return weighted(now, window);
  // Buckets with no request are zeros: divide by the whole window, or by the time since the
  // first measurement when the revision is younger than that (Knative's windowed average).
  double sum = 0;
  for (auto it = buckets_.rbegin(); it != buckets_.rend() && it->at > now - window; ++it)
    sum += spec_.metric == ScaleMetric::kRps ? it->rps : it->concurrency;
  auto span = std::chrono::duration_cast<std::chrono::milliseconds>(now - first_record_);
  double seconds = std::chrono::duration<double>(
                       std::min(window, std::max(span, std::chrono::milliseconds(1000))))
                       .count();
  return sum / std::max(1.0, std::round(seconds));
}

// Knative's weighted-exponential average (pkg/autoscaler/aggregation/bucketing.go): the newest
// 1-second bucket weighs c, the one k seconds older c·(1−c)^k, with c chosen so that the
// window's weights sum to 0.9999 (at least 0.2). Missing seconds are zeros that still age
// the older buckets.
double Kpa::weighted(TimePoint now, std::chrono::milliseconds window) const {
  double seconds = std::ceil(std::chrono::duration<double>(window).count());  // 1 s buckets
  double c = std::max(1 - std::pow(1 - 0.9999, 1 / std::max(seconds, 1.0)), 0.2);
  double sum = 0;
  for (auto it = buckets_.rbegin(); it != buckets_.rend() && it->at > now - window; ++it) {
    auto age = std::chrono::duration_cast<std::chrono::seconds>(now - it->at).count();
    double value = spec_.metric == ScaleMetric::kRps ? it->rps : it->concurrency;
    sum += value * c * std::pow(1 - c, static_cast<double>(std::max<std::int64_t>(age, 0)));
  }
  return sum;
}

int Kpa::bounded(int n) const {
  if (spec_.max_scale > 0) n = std::min(n, spec_.max_scale);
  return std::max(n, spec_.min_scale);
}

int Kpa::burst_scale(double in_flight) const {
  double per_instance = spec_.metric == ScaleMetric::kRps ? spec_.target : spec_.target_value();
  return bounded(
      std::max(spec_.activation_scale, ceil_count(in_flight / std::max(per_instance, 0.01))));
}

int Kpa::burst(TimePoint now, double in_flight) {
  poke(now);
  int n = burst_scale(in_flight);
  if (now >= burst_until_ || n >= burst_floor_) {
    burst_floor_ = n;
    burst_until_ = now + spec_.panic_window;
  }
  return n;
}

Kpa::Decision Kpa::decide(TimePoint now, int ready) {
  Decision d;
  if (!reached_initial_) {
    d.desired = bounded(std::max(1, spec_.initial_scale));
    return d;
  }
  d.stable =
      average(now, std::chrono::duration_cast<std::chrono::milliseconds>(spec_.stable_window));
  d.panic_value = average(now, spec_.panic_window);
  double per_instance = spec_.target_value();
  int desired_stable = ceil_count(d.stable / per_instance);
  int desired_panic = ceil_count(d.panic_value / per_instance);

  // Rate limits relative to what is ready now (at least one, as Knative counts).
  double ready_now = std::max(1, ready);
  int max_up = static_cast<int>(std::ceil(spec_.max_scale_up_rate * ready_now));
  int max_down = static_cast<int>(std::floor(ready_now / spec_.max_scale_down_rate));
  bool stable_demand = desired_stable > 0, panic_demand = desired_panic > 0;
  desired_stable = std::clamp(desired_stable, std::min(max_down, max_up), max_up);
  desired_panic = std::clamp(desired_panic, std::min(max_down, max_up), max_up);
  // activation-scale: where there is demand, at least that many (Knative looks at the demand
  // before the rate limits, so the hold at 1 before zero stays 1).
  if (stable_demand) desired_stable = std::max(desired_stable, spec_.activation_scale);
  if (panic_demand) desired_panic = std::max(desired_panic, spec_.activation_scale);

  // Panic when the short window's demand is at least the threshold times current capacity.
  bool over = static_cast<double>(ceil_count(d.panic_value / per_instance)) / ready_now >=
              spec_.panic_threshold;
  if (over) {
    panic_since_ = now;
  } else if (panicking() &&
             now > panic_since_ + spec_.stable_window) {  // strictly after, as Knative
    panic_since_ = {};
    max_panic_ = 0;
  }
  int desired = desired_stable;
  if (panicking()) {
    // In panic the scale only grows.
    max_panic_ = std::max({max_panic_, desired_panic, ready});
    desired = max_panic_;
    d.panic = true;
  }

  // Scale-down delay: the highest decision of the last delay period wins.
  if (spec_.scale_down_delay.count() > 0) {
    recent_.emplace_back(now, desired);
    while (!recent_.empty() && recent_.front().first <= now - spec_.scale_down_delay)
      recent_.pop_front();
    for (const auto& [at, n] : recent_) desired = std::max(desired, n);
  }

  if (now < burst_until_) desired = std::max(desired, burst_floor_);

  // Scale to zero only after a whole stable window without traffic, plus the grace period.
  if (desired == 0) {
    // Knative's last-instance rule: inactive (a stable window idle) for the longer of the
    // grace period and the revision's scale-to-zero-pod-retention-period.
    auto linger = std::max(spec_.scale_to_zero_grace, spec_.scale_to_zero_retention);
    bool idle_long_enough = now >= last_active_ + spec_.stable_window + linger;
    if (!spec_.allow_zero || !idle_long_enough) desired = 1;
  }
  d.desired = bounded(desired);
  return d;
}

}  // namespace elafros
