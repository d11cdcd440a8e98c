// The KPA in virtual time: measurements and ticks carry explicit times; nothing sleeps.
#include "kpa.hpp"

#include <catch2/catch.hpp>

#include "elafros/routing.hpp"

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

// Reads autoscaling annotations given without their prefix: {{"min-scale", "2"}}.
Result<AutoscalingSpec> read(const std::map<std::string, std::string>& annotations) {
  RevisionTemplate t;
  for (const auto& [k, v] : annotations) t.annotations["autoscaling.knative.dev/" + k] = v;
  return autoscaling_spec(t, AutoscalingDefaults{});
}

std::string refusal(const std::map<std::string, std::string>& annotations) {
  auto r = read(annotations);
  return r.ok() ? std::string("accepted") : r.error().message;
}

AutoscalingSpec parsed(const std::map<std::string, std::string>& annotations) {
  auto r = read(annotations);
  REQUIRE(r.ok());
  return *r;
}

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

  auto refused = [](const char* key, const char* value) { return refusal({{key, value}}); };
  CHECK(refused("window", "5s").find("between 6s and 1h") != std::string::npos);
  CHECK(refused("target", "zero").find("at least 0.01") != std::string::npos);
  CHECK(refused("window", "6500ms").find("whole seconds") != std::string::npos);
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

TEST_CASE("Knative's camelCase aliases are read, and the kebab-case key wins over its alias") {
  auto s = parsed({{"minScale", "2"},
                   {"maxScale", "6"},
                   {"initialScale", "3"},
                   {"targetUtilizationPercentage", "80"},
                   {"panicWindowPercentage", "20"},
                   {"panicThresholdPercentage", "150"},
                   {"scaleDownDelay", "15s"},
                   {"scaleToZeroPodRetentionPeriod", "1m"},
                   {"targetBurstCapacity", "-1"},
                   {"metricAggregationAlgorithm", "weightedExponential"}});
  CHECK(s.min_scale == 2);
  CHECK(s.max_scale == 6);
  CHECK(s.initial_scale == 3);
  CHECK(s.utilization == Approx(0.8));
  CHECK(s.panic_window == 12s);
  CHECK(s.panic_threshold == Approx(1.5));
  CHECK(s.scale_down_delay == 15s);
  CHECK(s.scale_to_zero_retention == 60s);
  CHECK(s.target_burst_capacity == -1);
  CHECK(s.aggregation == Aggregation::kWeightedExponential);

  // Both spelled: the canonical key's value counts and the alias is not even validated.
  auto both =
      parsed({{"min-scale", "1"}, {"minScale", "5"}, {"max-scale", "3"}, {"maxScale", "x"}});
  CHECK(both.min_scale == 1);
  CHECK(both.max_scale == 3);
  // A refusal names the key as written.
  CHECK(refusal({{"minScale", "-2"}}).find("annotations[autoscaling.knative.dev/minScale]") !=
        std::string::npos);
  CHECK(refusal({{"minScale", "4"}, {"maxScale", "2"}}).find("minScale 4 is above maxScale 2") !=
        std::string::npos);
  // Only Knative's aliases: metric and window have none.
  CHECK(refusal({{"targetValue", "3"}}).find("unknown autoscaling annotation") !=
        std::string::npos);

  std::map<std::string, std::string> ann{{"autoscaling.knative.dev/minScale", "4"}};
  CHECK(autoscaling_annotation(ann, "min-scale") == std::optional<std::string>("4"));
  ann["autoscaling.knative.dev/min-scale"] = "2";
  CHECK(autoscaling_annotation(ann, "min-scale") == std::optional<std::string>("2"));
  CHECK_FALSE(autoscaling_annotation(ann, "max-scale").has_value());
}

TEST_CASE(
    "activation-scale, target-burst-capacity and metric-aggregation-algorithm are validated as "
    "Knative does") {
  CHECK(parsed({{"activation-scale", "3"}}).activation_scale == 3);
  CHECK(parsed({}).activation_scale == 1);
  CHECK(refusal({{"activation-scale", "1"}}).find("2 or more") != std::string::npos);
  CHECK(refusal({{"activation-scale", "two"}}).find("2 or more") != std::string::npos);
  CHECK(refusal({{"activation-scale", "2"}, {"min-scale", "3"}}).find("2 is below min-scale 3") !=
        std::string::npos);
  CHECK(refusal({{"activation-scale", "5"}, {"maxScale", "4"}}).find("5 is above maxScale 4") !=
        std::string::npos);
  CHECK(refusal({{"activation-scale", "4"}, {"min-scale", "2"}, {"max-scale", "4"}}) == "accepted");

  CHECK(parsed({{"target-burst-capacity", "0"}}).target_burst_capacity == 0);
  CHECK(parsed({{"target-burst-capacity", "250.5"}}).target_burst_capacity == 250.5);
  CHECK(parsed({}).target_burst_capacity == 211);  // Knative's default
  CHECK(refusal({{"target-burst-capacity", "-2"}}).find("or -1") != std::string::npos);
  CHECK(refusal({{"targetBurstCapacity", "lots"}}).find("or -1") != std::string::npos);

  CHECK(parsed({{"metric-aggregation-algorithm", "linear"}}).aggregation == Aggregation::kLinear);
  CHECK(parsed({{"metric-aggregation-algorithm", "weighted-exponential"}}).aggregation ==
        Aggregation::kWeightedExponential);
  CHECK(refusal({{"metric-aggregation-algorithm", "ewma"}}).find("\"linear\" or") !=
        std::string::npos);
  CHECK(refusal({{"scale-to-zero-pod-retention-period", "2h"}}).find("between 0s and 1h") !=
        std::string::npos);
}

TEST_CASE("activation-scale: a start from zero and every non-zero decision is at least it") {
  AutoscalingSpec s = spec_with(10);
  s.activation_scale = 3;
  Driver d(s);
  CHECK(d.kpa.burst_scale(1) == 3);   // the activator's poke at zero
  CHECK(d.kpa.burst_scale(45) == 5);  // above it, the load decides
  d.feed(60, 2);                      // one instance's worth of load
  CHECK(d.decide(3).desired == 3);
  d.feed(60, 40);
  CHECK(d.decide(3).desired == 4);
  // Idle: the decision falls to 0, held at 1 (not 3) until the window and grace have passed.
  d.feed(61, 0);
  CHECK(d.decide(3).desired == 1);
  d.feed(30, 0);
  CHECK(d.decide(1).desired == 0);
}

TEST_CASE("scale-to-zero-pod-retention-period keeps the last instance past the grace period") {
  AutoscalingSpec s = spec_with(10);
  s.scale_to_zero_retention = 90s;  // longer than the 30 s grace: it decides
  Driver d(s);
  d.feed(10, 5);
  d.feed(60 + 89, 0);
  CHECK(d.decide(1).desired == 1);
  d.feed(1, 0);
  CHECK(d.decide(1).desired == 0);
  s.scale_to_zero_retention = 10s;  // shorter: the grace decides
  Driver e(s);
  e.feed(10, 5);
  e.feed(60 + 29, 0);
  CHECK(e.decide(1).desired == 1);
  e.feed(1, 0);
  CHECK(e.decide(1).desired == 0);
}

TEST_CASE("weighted-exponential aggregation weighs the newest seconds most, as Knative does") {
  // 50 idle seconds, then 10 at concurrency 10, in a 60 s window.
  AutoscalingSpec s = spec_with(1);
  Driver linear(s);
  s.aggregation = Aggregation::kWeightedExponential;
  Driver weighted(s);
  for (Driver* d : {&linear, &weighted}) {
    d->feed(50, 0);
    d->feed(10, 10);
  }
  auto l = linear.decide(1), w = weighted.decide(1);
  CHECK(l.stable == Approx(100.0 / 60));
  // 60 buckets: the coefficient is max(1 − 0.0001^(1/60), 0.2) = 0.2; the newest 10 buckets
  // carry 1 − 0.8^10 of the weight.
  CHECK(w.stable == Approx(10 * (1 - std::pow(0.8, 10))));
  // The 6 s panic window: coefficient 1 − 0.0001^(1/6), six full buckets weigh 0.9999.
  CHECK(w.panic_value == Approx(10 * 0.9999).epsilon(1e-3));
  // And the other way round: the old burst has faded.
  Driver faded(s);
  faded.feed(10, 10);
  faded.feed(50, 0);
  CHECK(faded.decide(1).stable == Approx(10 * (std::pow(0.8, 50) - std::pow(0.8, 60))));
}

TEST_CASE("a revision a restart finds at zero stays at zero until a request comes") {
  Driver fresh(spec_with());
  CHECK(fresh.decide(0).desired == 1);  // a new autoscaler holds one for a window
  Driver found(spec_with());
  found.kpa.at_zero(found.t);
  CHECK(found.decide(0).desired == 0);
  found.feed(1, 0);
  CHECK(found.decide(0).desired == 0);
  found.kpa.poke(found.t);  // the activator has a request
  found.feed(1, 1);
  CHECK(found.decide(0).desired == 1);
}

TEST_CASE("the burst capacity rule: below it, a burst sets the desired scale at once") {
  // Knative's excess burst capacity: ready × capacity − in flight, against the burst capacity.
  CHECK(below_burst_capacity(1, 100, 0, 211));    // 100 spare < 211: the default keeps it on
  CHECK(!below_burst_capacity(3, 100, 50, 211));  // 250 spare
  CHECK(below_burst_capacity(3, 100, 90, 211));   // 210 spare
  CHECK(!below_burst_capacity(1, 100, 50, 0));    // 0: only when overloaded
  CHECK(below_burst_capacity(1, 100, 101, 0));
  CHECK(below_burst_capacity(9, 100, 0, -1));    // -1: always
  CHECK(!below_burst_capacity(1, 0, 500, 211));  // the rps metric: no in-flight capacity

  // One instance serves; 50 clients arrive at t. The proxy's poke at t sets the desired scale
  // (what Reconciler::demand takes) before any tick has measured the burst.
  AutoscalingSpec spec = spec_with(10);
  Driver d(spec);
  d.feed(60, 1);
  REQUIRE(d.decide(1).desired == 1);
  CHECK(d.kpa.burst(d.t, 50) == 5);  // at t, in the same tick
  // The next tick, 2 s later, has 2 s of the burst in its 6 s panic window (an average of 2
  // instances' worth): the poke's scale holds, for a panic window.
  d.feed(2, 50);
  CHECK(d.decide(1).desired == 5);
  // The burst ends: the hold lasts its panic window, then panic mode's own stable window (in
  // which the scale only grows); then the windows bring it down.
  d.feed(70, 0);
  CHECK(d.decide(5).desired < 5);
}
