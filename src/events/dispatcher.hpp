#pragma once
// The dispatcher (docs/architecture.md, "Events"): on a thread of its own, it takes the due
// deliveries from the event log, POSTs each event to its Trigger's subscriber (a Service through
// the proxy's own listener, so an event wakes a service at zero; or a URI), and records every
// attempt. Knative's data-plane table decides: 2xx is done (a CloudEvent in a 200 re-enters the
// broker as a new event), 404, 408, 409, 429, 5xx and connection errors are retried with the
// delivery's backoff, other 4xx are not; once retries are exhausted the original event goes to
// the dead-letter sink with knativeerrordest, knativeerrorcode and knativeerrordata.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "elafros/event_log.hpp"
#include "elafros/eventing.hpp"
#include "elafros/histogram.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class EventQueue;

class EventCredentials;

struct DispatcherOptions {
  int trigger_concurrency = 16;  // deliveries in flight per Trigger
  std::chrono::milliseconds default_timeout{30000};
  std::chrono::milliseconds retry_after_max{300000};  // a Retry-After above this is capped
  int proxy_port = 8080;  // where *.localhost subscribers (services) are reached
  // Without a delivery spec: Knative's broker defaults (retry 10, exponential, PT0.2S).
  DeliverySpec defaults;
  // Finished events are kept this long, and at most this many events in all, for 'elafros
  // broker events' and describe.
  std::chrono::seconds retention{3600};
  std::int64_t retention_count = 10000;
  std::int64_t retention_bytes = 256 << 20;  // all kept events' attributes and data
  // A delivery to a Broker carries its Trigger's credential (EventCredentials), when set.
  const EventCredentials* credentials = nullptr;
};

// One Trigger's counters: written on the events thread, read by /metrics.
struct TriggerCounters {
  std::string namespace_, broker, trigger;
  std::atomic<std::uint64_t> attempts{0}, delivered{0}, dead_lettered{0}, failed{0}, retries{0};
  std::atomic<std::int64_t> pending{0}, oldest_pending_ms{0};
  Histogram latency;  // from the event's arrival at the broker to the subscriber's 2xx
};
using TriggerCountersList = std::vector<std::shared_ptr<TriggerCounters>>;

struct DispatchStats {
  std::atomic<std::uint64_t> attempts{0};
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> dead_lettered{0};
  std::atomic<std::uint64_t> failed{0};       // nothing more can be done (no dead-letter sink)
  std::atomic<std::uint64_t> replies{0};      // events from subscribers' answers
  std::atomic<std::uint64_t> ttl_dropped{0};  // replies whose knativebrokerttl ran out
  std::atomic<std::int64_t> pending{0};       // deliveries not finished (refreshed each second)
  std::atomic<std::int64_t> oldest_pending_ms{0};  // when the oldest of them arrived; 0: none
  std::atomic<std::uint64_t> pruned{0};            // finished events dropped by retention
  // Every Trigger seen, replaced (never changed) when one is added.
  std::atomic<std::shared_ptr<const TriggerCountersList>> triggers{
      std::make_shared<const TriggerCountersList>()};
};

struct IngressStats;
// The events' Prometheus families (the ingress's and the dispatcher's counters).
std::string render_event_metrics(const DispatchStats& dispatch, const IngressStats& ingress);

class Dispatcher {
 public:
  Dispatcher(boost::asio::io_context& io, boost::asio::thread_pool& store_thread, EventLog& log,
             EventQueue& queue, const BrokerSnapshot& brokers, DispatcherOptions options);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void start();
  // Any thread: there may be new due deliveries (a commit, a new table).
  void wake();
  void stop();
  const DispatchStats& stats() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
