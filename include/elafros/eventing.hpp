#pragma once
// Knative Eventing's resources as elafros reads them (docs/architecture.md, "Events"):
// eventing.knative.dev/v1 Broker and Trigger, their DeliverySpec and Destination, and the
// retry schedule. Parsed from the stored objects, which their kinds' admission validated.

#include <atomic>
#include <boost/json/fwd.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/event_filter.hpp"
#include "elafros/event_policy.hpp"
#include "elafros/result.hpp"

namespace elafros {

inline constexpr const char* kEventingGroup = "eventing.knative.dev";

// Where events go: a ref (a Service, or a Broker) and/or a URI (relative to the ref's URL when
// both are set).
struct Destination {
  std::string ref_api_version, ref_kind, ref_name, ref_namespace;
  std::string uri;
  bool empty() const { return ref_kind.empty() && uri.empty(); }
};

struct DeliverySpec {
  std::optional<int> retry;    // retries after the first attempt
  std::string backoff_policy;  // "linear" or "exponential"; empty: exponential
  std::optional<std::chrono::milliseconds> backoff_delay;
  std::optional<std::chrono::milliseconds> timeout;  // per attempt
  std::optional<std::chrono::milliseconds> retry_after_max;
  Destination dead_letter_sink;
  std::string format;  // "json" (structured) or "binary"; empty: binary
  // True when any field is set: a Trigger's delivery then replaces its Broker's entirely.
  bool any() const;
};

// ISO-8601 durations as Knative writes them: PT0.2S, PT1M30S, P1DT2H.
std::optional<std::chrono::milliseconds> parse_iso8601_duration(std::string_view text);
std::string format_iso8601_duration(std::chrono::milliseconds d);

// The wait before retry number `n` (1 for the first retry). Linear waits d, 2d, 3d…;
// exponential d, 2d, 4d… (Knative's linear policy retries at once first; elafros does not).
// Without a delay: 0.
std::chrono::milliseconds retry_delay(const DeliverySpec& delivery, int n);

Result<DeliverySpec> delivery_from_json(const boost::json::value& v, const std::string& path);
Result<Destination> destination_from_json(const boost::json::value& v, const std::string& path);

struct Broker {
  std::string namespace_, name, uid;
  std::map<std::string, std::string> labels;  // for EventPolicies' selectors
  DeliverySpec delivery;
};

struct Trigger {
  std::string namespace_, name, uid, broker;
  std::string broker_namespace;  // its own, unless spec.brokerRef names another
  EventFilter filter;
  Destination subscriber;
  DeliverySpec delivery;
  std::int64_t generation = 0;
};

Result<Broker> broker_from_object(const boost::json::object& object);
Result<Trigger> trigger_from_object(const boost::json::object& object);

// What the ingress and the dispatcher read: every broker with its triggers, each trigger with
// the delivery it uses (its own when it sets any field, else its broker's) and the URL its
// subscriber resolved to (empty: not resolved; the trigger is not Ready). Immutable once
// published; the event controller swaps it.
struct TriggerRoute {
  Trigger trigger;
  DeliverySpec delivery;
  std::string subscriber_url;   // http://HOST[:PORT]/PATH
  std::string dead_letter_url;  // of the delivery's deadLetterSink; empty: none
};

struct BrokerRoute {
  Broker broker;
  std::vector<TriggerRoute> triggers;
  EventPolicies policies;  // the EventPolicies that select it
};

struct BrokerTable {
  std::map<std::string, BrokerRoute> brokers;  // by "namespace/name"
  const BrokerRoute* find(const std::string& ns, const std::string& name) const;
  const TriggerRoute* find_trigger(const std::string& uid) const;
};
using BrokerTablePtr = std::shared_ptr<const BrokerTable>;

class BrokerSnapshot {
 public:
  BrokerSnapshot() : table_(std::make_shared<const BrokerTable>()) {}
  BrokerTablePtr load() const { return table_.load(std::memory_order_acquire); }
  void publish(BrokerTablePtr t) { table_.store(std::move(t), std::memory_order_release); }

 private:
  std::atomic<BrokerTablePtr> table_;
};

// Knative's loop guard: the hops an event may still take (255 when it arrives without one).
inline constexpr int kMaxBrokerTtl = 255;
inline constexpr const char* kTtlAttribute = "knativebrokerttl";

}  // namespace elafros
