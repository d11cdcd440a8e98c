// The KPA in virtual time: measurements and ticks carry explicit times; nothing sleeps.
#include "kpa.hpp"

#include <catch2/catch.hpp>

using namespace elafros;
using namespace std::chrono_literals;

namespace {

AutoscalingSpec spec_with(double target = 10) {
  AutoscalingSpec s;
  s.target = target;
  s.utilization = 1.0;  // round numbers: target_value() == target
  s.stable_window = 60s;
  s.panic_window = 6s;
  s.scale_to_zero_grace = 30s;
  return s;
}

// Drives a Kpa second by second: feed(n, c) records n one-second buckets of concurrency c.
struct Driver {
  explicit Driver(AutoscalingSpec spec) : kpa(spec, t) { kpa.reached_initial_scale(); }
  void feed(int seconds, double concurrency) {
    for (int i = 0; i < seconds; ++i) {
      t += 1s;
      kpa.record(t, concurrency, concurrency);
    }
  }
  Kpa::Decision decide(int ready) { return kpa.decide(t, ready); }
  Kpa::TimePoint t{std::chrono::hours(1)};
  Kpa kpa;
};

}  // namespace

TEST_CASE("steady load gives ceil(average concurrency / (target × utilization))") {
  AutoscalingSpec s = spec_with(10);
  s.utilization = 0.7;  // Knative's default: aim at 7 in flight per instance
  Driver d(s);
  d.feed(60, 35);
  CHECK(d.decide(5).desired == 5);
  d.feed(60, 36);
  CHECK(d.decide(5).desired == 6);
  d.feed(60, 7);
  CHECK(d.decide(1).desired == 1);
}

TEST_CASE("the stable window averages: a short spike is diluted") {
  Driver d(spec_with(10));
  d.feed(54, 10);
  d.feed(6, 10);  // a full minute at 10: 1 instance
  CHECK(d.decide(1).desired == 1);
  CHECK_FALSE(d.decide(1).panic);
}

TEST_CASE("panic starts at twice the capacity and never scales down while it lasts") {
  Driver d(spec_with(10));
  d.feed(60, 10);
  REQUIRE(d.decide(1).desired == 1);
  d.feed(6, 40);  // panic window: 40 in flight for 1 ready instance = 4× capacity
  auto p = d.decide(1);
  CHECK(p.panic);
  CHECK(p.desired == 4);
  d.feed(6, 20);  // demand falls, but panic holds the scale
  p = d.decide(4);
  CHECK(p.panic);
  CHECK(p.desired == 4);
  d.feed(6, 80);  // and grows with demand
  CHECK(d.decide(4).desired == 8);
}

TEST_CASE("panic ends a stable window after demand fell below the threshold") {
  Driver d(spec_with(10));
  d.feed(60, 10);
  d.feed(6, 40);
  REQUIRE(d.decide(1).panic);
  d.feed(6, 10);
  REQUIRE(d.decide(4).panic);  // within a stable window of the last over-threshold tick
  d.feed(54, 10);
  auto calm = d.decide(4);
  CHECK(calm.panic);  // exactly one window after the panic started is not yet after it
  d.feed(7, 10);
  calm = d.decide(4);
  CHECK_FALSE(calm.panic);
  CHECK(calm.desired == 2);  // stable desire (1) limited by the scale-down rate: 4 / 2
}

TEST_CASE("scale-up and scale-down rates are bounded") {
  AutoscalingSpec s = spec_with(1);
  s.max_scale_up_rate = 3;
  s.max_scale_down_rate = 2;
  s.panic_threshold = 100;  // keep panic out of this test
  Driver d(s);
  d.feed(60, 100);
  CHECK(d.decide(2).desired == 6);  // wants 100, may triple 2
  d.feed(60, 1);
  CHECK(d.decide(10).desired == 5);  // wants 1, may halve 10
}

TEST_CASE("min-scale and max-scale bound every decision") {
  AutoscalingSpec s = spec_with(10);
  s.min_scale = 2;
  s.max_scale = 3;
  Driver d(s);
  d.feed(60, 0);
  CHECK(d.decide(2).desired == 2);
  d.feed(120, 0);
  CHECK(d.decide(2).desired == 2);  // never to zero with min-scale
  d.feed(60, 500);
  CHECK(d.decide(2).desired == 3);
}

TEST_CASE("initial scale holds until the revision has reached it") {
  AutoscalingSpec s = spec_with(10);
  s.initial_scale = 3;
  Kpa kpa(s, Kpa::TimePoint{1h});
  CHECK(kpa.decide(Kpa::TimePoint{1h} + 10s, 0).desired == 3);
  CHECK(kpa.decide(Kpa::TimePoint{1h} + 20s, 2).desired == 3);
  kpa.reached_initial_scale();
  kpa.record(Kpa::TimePoint{1h} + 21s, 0, 0);
  // With no traffic it then scales down, at most halving per tick.
  CHECK(kpa.decide(Kpa::TimePoint{1h} + 22s, 3).desired == 1);
}

TEST_CASE("scale-down delay keeps the highest decision of the delay period") {
  AutoscalingSpec s = spec_with(10);
  s.stable_window = 6s;
  s.panic_window = 1s;
  s.scale_down_delay = 10s;
  s.panic_threshold = 100;
  Driver d(s);
  d.feed(6, 40);
  REQUIRE(d.decide(4).desired == 4);
  d.feed(6, 10);
  CHECK(d.decide(4).desired == 4);  // wants 1 (2 after the rate limit), held by the delay
  d.feed(5, 10);
  CHECK(d.decide(4).desired == 2);  // the 4 is older than the delay now
}

TEST_CASE("scale to zero exactly after the stable window plus the grace period, and not before") {
  Driver d(spec_with(10));
  d.feed(10, 5);  // last traffic in the bucket ending at t0 + 10 s
  auto last_traffic = d.t;
  d.feed(60, 0);  // a whole stable window without traffic
  REQUIRE(d.t == last_traffic + 60s);
  CHECK(d.decide(1).desired == 1);  // window over, grace not yet
  d.feed(29, 0);
  CHECK(d.decide(1).desired == 1);  // one second before window + grace
  d.feed(1, 0);
  CHECK(d.decide(1).desired == 0);  // exactly window + grace
}

TEST_CASE("a poke counts as activity: no scale to zero right after a request at zero") {
  Driver d(spec_with(10));
  d.feed(100, 0);
  REQUIRE(d.decide(1).desired == 0);
  d.kpa.poke(d.t);
  CHECK(d.decide(0).desired == 1);
  CHECK(d.kpa.burst_scale(25) == 3);  // 25 queued at target 10 → 3 instances at once
}

TEST_CASE("scale to zero can be disabled") {
  AutoscalingSpec s = spec_with(10);
  s.allow_zero = false;
  Driver d(s);
  d.feed(200, 0);
  CHECK(d.decide(1).desired == 1);
}

TEST_CASE("the rps metric scales on requests per second") {
  AutoscalingSpec s = spec_with(50);
  s.metric = ScaleMetric::kRps;
  s.panic_threshold = 100;
  Driver d(s);
  d.feed(60, 120);  // the driver records the same number as concurrency and rps
  CHECK(d.decide(3).desired == 3);
}

TEST_CASE("autoscaling annotations override the defaults and are validated") {
  AutoscalingDefaults defaults;
  RevisionTemplate t;
  t.container_concurrency = 10;
  auto s = autoscaling_spec(t, defaults);
  REQUIRE(s.ok());
  CHECK(s->target == 10);  // containerConcurrency is the default target
  CHECK(s->target_value() == Approx(7));
  CHECK(s->stable_window == 60s);
  CHECK(s->panic_window == 6s);
  t.annotations = {{"autoscaling.knative.dev/target", "3"},
                   {"autoscaling.knative.dev/target-utilization-percentage", "50"},
                   {"autoscaling.knative.dev/window", "20s"},
                   {"autoscaling.knative.dev/min-scale", "1"},
                   {"autoscaling.knative.dev/max-scale", "4"},
                   {"autoscaling.knative.dev/initial-scale", "2"},
                   {"autoscaling.knative.dev/scale-down-delay", "1m30s"},
                   {"autoscaling.knative.dev/metric", "rps"}};
  s = autoscaling_spec(t, defaults);
  REQUIRE(s.ok());
  CHECK(s->target == 3);
  CHECK(s->utilization == Approx(0.5));
  CHECK(s->stable_window == 20s);
  CHECK(s->panic_window == 2s);
  CHECK(s->min_scale == 1);
  CHECK(s->max_scale == 4);
  CHECK(s->initial_scale == 2);
  CHECK(s->scale_down_delay == 90s);
  CHECK(s->metric == ScaleMetric::kRps);

  auto refused = [&](const char* key, const char* value) {
    RevisionTemplate bad;
    bad.annotations = {{std::string("autoscaling.knative.dev/") + key, value}};
    auto r = autoscaling_spec(bad, defaults);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  CHECK(refused("window", "5s").find("between 6s and 1h") != std::string::npos);
  CHECK(refused("target", "zero").find("greater than 0") != std::string::npos);
  CHECK(refused("min-scale", "-1").find("0 or more") != std::string::npos);
  CHECK(refused("metric", "cpu").find("\"concurrency\" or \"rps\"") != std::string::npos);
  CHECK(refused("target-utilization-percentage", "150").find("between 1 and 100") !=
        std::string::npos);
  CHECK(refused("max-scal", "3").find("unknown autoscaling annotation") != std::string::npos);
  RevisionTemplate inverted;
  inverted.annotations = {{"autoscaling.knative.dev/min-scale", "5"},
                          {"autoscaling.knative.dev/max-scale", "2"}};
  CHECK(autoscaling_spec(inverted, defaults).error().message.find("above max-scale") !=
        std::string::npos);
}
