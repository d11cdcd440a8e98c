#pragma once
// The Knative Pod Autoscaler's decision for one revision (knative.dev/serving
// pkg/autoscaler/scaling/autoscaler.go), in plain arithmetic over an injected time: feed it one
// measurement per second, ask it for a decision every tick. No timers, no I/O, no locks.

#include <algorithm>
#include <chrono>
#include <deque>

#include "elafros/autoscaling.hpp"

namespace elafros {

class Kpa {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  Kpa(AutoscalingSpec spec, TimePoint created);

  // One 1-second bucket ending at `now`: the exact average in-flight requests (concurrency)
  // and the requests per second the proxy saw for this revision.
  void record(TimePoint now, double concurrency, double rps);
  // A request arrived for this revision (the activator's poke): counts as activity now.
  void poke(TimePoint now);
  // The revision has been ready with its initial scale: the autoscaler takes over.
  void reached_initial_scale() { reached_initial_ = true; }
  bool has_reached_initial_scale() const { return reached_initial_; }
  // The revision is at zero already (a restart found no instance of it): it stays there until a
  // request comes, as Knative's does, rather than holding one instance for a stable window.
  void at_zero(TimePoint now) {
    last_active_ = now - spec_.stable_window -
                   std::max(spec_.scale_to_zero_grace, spec_.scale_to_zero_retention);
  }

  struct Decision {
    int desired = 0;
    bool panic = false;
    double stable = 0;  // observed averages over the stable and panic windows
    double panic_value = 0;
  };
  // The desired number of instances, given how many are ready now.
  Decision decide(TimePoint now, int ready);

  // The desired scale for a burst observed right now (in-flight requests, queued included),
  // before the next tick: what the activator's poke scales to.
  int burst_scale(double in_flight) const;
  // The activator's poke with the requests in flight now: activity, and burst_scale() at once,
  // held as the least decision for a panic window, since the windows' averages take in a burst
  // only gradually (the next tick must not undo what the poke started).
  int burst(TimePoint now, double in_flight);

  const AutoscalingSpec& spec() const { return spec_; }
  bool panicking() const { return panic_since_ != TimePoint{}; }

 private:
  struct Bucket {
    TimePoint at;
    double concurrency;
    double rps;
  };
  double average(TimePoint now, std::chrono::milliseconds window) const;
  double weighted(TimePoint now, std::chrono::milliseconds window) const;
  int bounded(int n) const;

  AutoscalingSpec spec_;
  TimePoint created_;
  TimePoint first_record_{};
  TimePoint last_active_;
  std::deque<Bucket> buckets_;  // newest at the back, at most one stable window old
  bool reached_initial_ = false;
  TimePoint panic_since_{};
  int max_panic_ = 0;
  std::deque<std::pair<TimePoint, int>> recent_;  // desired values within the scale-down delay
  int burst_floor_ = 0;                           // burst()'s scale, until burst_until_
  TimePoint burst_until_{};
};

}  // namespace elafros
