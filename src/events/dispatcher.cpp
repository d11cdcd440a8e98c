#include "events/dispatcher.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <set>

#include "elafros/base64.hpp"
#include "elafros/prometheus_text.hpp"
#include "event_queue.hpp"
#include "events/event_credentials.hpp"
#include "events/http_post.hpp"
#include "offload.hpp"
#include "proxy/ingress_events.hpp"

namespace asio = boost::asio;
using asio::awaitable;

namespace elafros {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kBatch = 256;          // the sweep for deliveries of deleted Triggers
constexpr std::size_t kPerTrigger = 128;     // a Trigger's due deliveries read ahead
constexpr std::size_t kMaxErrorData = 1024;  // knativeerrordata's bytes, before base64

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool carries_cloudevent(const Answer& a) {
  for (const auto& [k, v] : a.headers) {
    if (k == "ce-specversion") return true;
    if (k == "content-type" && v.size() >= 23 &&
        std::equal(v.begin(), v.begin() + 23, "application/cloudevents",
                   [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) == y; }))
      return true;
  }
  return false;
}

}  // namespace

class Dispatcher::Impl : public std::enable_shared_from_this<Dispatcher::Impl> {
 public:
  Impl(asio::io_context& io, asio::thread_pool& store_thread, EventLog& log, EventQueue& queue,
       const BrokerSnapshot& brokers, DispatcherOptions options)
      : io_(io),
        store_thread_(store_thread),
        log_(log),
        queue_(queue),
        brokers_(brokers),
        options_(std::move(options)),
        timer_(io) {}

  void wake() {
    asio::post(io_, [self = shared_from_this()] {
      self->woken_ = true;
      self->timer_.cancel();
    });
  }

  // Once a second at most: the backlog for /metrics; once a minute: retention.
  awaitable<void> housekeeping() {
    auto steady = std::chrono::steady_clock::now();
    if (steady - last_backlog_ >= std::chrono::seconds(1)) {
      last_backlog_ = steady;
      auto b = co_await offload(store_thread_.get_executor(), &EventLog::backlog, &log_);
      if (b) {
        stats_.pending = b->pending;
        stats_.oldest_pending_ms = b->oldest_pending_ms;
        for (auto& [uid, c] : counters_) {
          auto it = b->by_trigger.find(uid);
          c->pending = it == b->by_trigger.end() ? 0 : it->second.pending;
          c->oldest_pending_ms = it == b->by_trigger.end() ? 0 : it->second.oldest_pending_ms;
        }
      }
    }
    if (steady - last_prune_ >= std::chrono::seconds(60)) {
      last_prune_ = steady;
      std::int64_t before =
          now_ms() -
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.retention).count();
      auto n = co_await offload(store_thread_.get_executor(), &EventLog::prune_events, &log_,
                                before, options_.retention_count, options_.retention_bytes);
      if (n && *n > 0) stats_.pruned += static_cast<std::uint64_t>(*n);
      if (!n) spdlog::warn("dropping old events failed: {}", n.error().message);
    }
  }

  // Reads the due deliveries into per-Trigger queues, starts what the Triggers' concurrency
  // allows, and reads again when the queues run low, something new committed, or a retry is due.
  awaitable<void> loop(std::shared_ptr<Impl> self) {
    while (!stopped_) {
      woken_ = false;
      co_await housekeeping();
      // Each Trigger's own due deliveries while its queue is low; then everything due, for the
      // deliveries of Triggers that are gone (they fail at once).
      BrokerTablePtr table = brokers_.load();
      std::vector<std::string> low;
      for (const auto& [k, b] : table->brokers)
        for (const auto& t : b.triggers)
          if (ready_size(t.trigger.uid) < kPerTrigger / 2) low.push_back(t.trigger.uid);
      for (const auto& uid : low) {
        auto due = co_await offload(store_thread_.get_executor(), &EventLog::due_deliveries_of,
                                    &log_, uid, now_ms(), kPerTrigger + in_flight(uid));
        if (due) take(self, std::move(*due));
      }
      if (steady_now() - last_sweep_ >= std::chrono::seconds(5)) {
        last_sweep_ = steady_now();
        auto due = co_await offload(store_thread_.get_executor(), &EventLog::due_deliveries, &log_,
                                    now_ms(), kBatch);
        if (!due) {
          spdlog::warn("reading the due event deliveries failed: {}", due.error().message);
        } else {
          std::vector<std::pair<StoredEvent, Delivery>> orphans;
          for (auto& row : *due)
            if (!table->find_trigger(row.second.trigger_uid)) orphans.push_back(std::move(row));
          take(self, std::move(orphans));
        }
      }
      if (woken_ || stopped_) continue;
      auto next = co_await offload(store_thread_.get_executor(), &EventLog::next_due_ms, &log_);
      // Finished deliveries and commits wake us; otherwise sleep until the next retry is due.
      std::int64_t wait = 1000;
      if (next && *next > now_ms()) wait = std::min<std::int64_t>(*next - now_ms(), 1000);
      if (!woken_) co_await sleep(std::chrono::milliseconds(wait));
    }
  }

  // The Trigger's counters, made (and published to /metrics) the first time it is seen.
  TriggerCounters& counters(const Trigger& t) {
    auto& c = counters_[t.uid];
    if (!c) {
      c = std::make_shared<TriggerCounters>();
      c->namespace_ = t.namespace_;
      c->broker = t.broker;
      c->trigger = t.name;
      auto list = std::make_shared<TriggerCountersList>();
      for (const auto& [uid, counter] : counters_) list->push_back(counter);
      stats_.triggers.store(std::move(list), std::memory_order_release);
    }
    return *c;
  }

  static std::chrono::steady_clock::time_point steady_now() {
    return std::chrono::steady_clock::now();
  }

  std::size_t ready_size(const std::string& uid) const {
    auto it = ready_.find(uid);
    return it == ready_.end() ? 0 : it->second.size();
  }

  std::size_t in_flight(const std::string& uid) const {
    auto it = per_trigger_.find(uid);
    return it == per_trigger_.end() ? 0 : static_cast<std::size_t>(it->second);
  }

  // Queues what was read and is not queued or in flight already, and starts what may start.
  void take(const std::shared_ptr<Impl>& self, std::vector<std::pair<StoredEvent, Delivery>> rows) {
    std::set<std::string> touched;
    for (auto& [event, delivery] : rows) {
      std::pair<std::int64_t, std::string> k{delivery.event_seq, delivery.trigger_uid};
      if (!queued_.insert(k).second) continue;
      touched.insert(delivery.trigger_uid);
      ready_[delivery.trigger_uid].emplace_back(std::move(event), std::move(delivery));
    }
    for (const auto& uid : touched) start_ready(self, uid);
  }

  void start_ready(const std::shared_ptr<Impl>& self, const std::string& uid) {
    auto it = ready_.find(uid);
    if (it == ready_.end()) return;
    auto& q = it->second;
    while (!q.empty() && per_trigger_[uid] < options_.trigger_concurrency) {
      auto [event, delivery] = std::move(q.front());
      q.pop_front();
      ++per_trigger_[uid];
      asio::co_spawn(io_, deliver(self, std::move(event), std::move(delivery)), asio::detached);
    }
    if (q.empty()) ready_.erase(it);
  }

  awaitable<void> sleep(std::chrono::milliseconds d) {
    timer_.expires_after(d);
    co_await timer_.async_wait(kAwait);
  }

  awaitable<void> deliver(std::shared_ptr<Impl> self, StoredEvent e, Delivery d) {
    std::string uid = d.trigger_uid;
    std::pair<std::int64_t, std::string> k{d.event_seq, uid};
    co_await attempt(std::move(e), std::move(d));
    queued_.erase(k);
    if (--per_trigger_[uid] <= 0) per_trigger_.erase(uid);
    start_ready(self, uid);
    if (ready_size(uid) < kPerTrigger / 2) wake();  // read more of this Trigger's
  }

  awaitable<void> attempt(StoredEvent e, Delivery d) {
    BrokerTablePtr table = brokers_.load();
    const TriggerRoute* route = table->find_trigger(d.trigger_uid);
    if (!route) {
      d.state = DeliveryState::kFailed;
      d.last_error =
          "its trigger, or the trigger's broker, was deleted before the event could be delivered";
      ++stats_.failed;
      co_await save(d);
      co_return;
    }
    TriggerCounters& counted = counters(route->trigger);
    DeliverySpec spec = route->delivery.any() ? route->delivery : options_.defaults;
    const int retries = spec.retry.value_or(0);
    const bool dead_letter = d.state == DeliveryState::kDeadLettering;
    const std::string& target = dead_letter ? route->dead_letter_url : route->subscriber_url;
    std::string where =
        fmt::format("trigger {}/{}", route->trigger.namespace_, route->trigger.name);
    if (dead_letter && target.empty()) {
      d.state = DeliveryState::kFailed;
      ++stats_.failed;
      ++counted.failed;
      spdlog::warn(
          "event {} of broker {}/{} is dropped: {} could not deliver it ({}), and no "
          "dead-letter sink is set",
          e.event.get("id"), e.namespace_, e.broker, where, d.last_error);
      co_await save(d);
      co_return;
    }

    // The event as it goes out: its TTL stays behind (and is put back on a reply).
    CloudEvent out = e.event;
    int ttl = kMaxBrokerTtl;
    if (auto it = out.attributes.find(kTtlAttribute); it != out.attributes.end()) {
      try {
        ttl = std::stoi(it->second);
      } catch (...) {
      }
      out.attributes.erase(it);
    }
    if (dead_letter) {
      out.attributes["knativeerrordest"] = route->subscriber_url;
      out.attributes["knativeerrorcode"] = std::to_string(d.last_code);
      out.attributes["knativeerrordata"] =
          base64_encode(std::string_view(d.last_body).substr(0, kMaxErrorData));
    }
    HttpHeaders headers;
    std::string body;
    if (spec.format == "json") {
      headers.emplace_back("content-type", "application/cloudevents+json; charset=utf-8");
      body = cloudevent_to_json(out);
    } else {
      headers = cloudevent_binary_headers(out);
      body = out.data;
    }
    headers.emplace_back("kn-namespace", route->trigger.namespace_);

    Answer a;
    if (target.empty()) {
      a.error = "its subscriber does not resolve (the trigger's status says why)";
    } else if (auto url = parse_url(target); !url) {
      a.error = url.error().message;
    } else {
      auto timeout = spec.timeout.value_or(options_.default_timeout);
      if (options_.credentials)
        if (std::string auth = options_.credentials->authorization(
                target, "Trigger", route->trigger.namespace_, route->trigger.name);
            !auth.empty())
          headers.emplace_back("authorization", std::move(auth));
      a = co_await post(*url, headers, body, timeout);
    }
    ++stats_.attempts;
    ++counted.attempts;
    ++(dead_letter ? d.dead_letter_attempts : d.attempts);
    d.updated_ms = now_ms();
    if (a.status >= 200 && a.status < 300) {
      bool reply = a.status != 202 && (!a.body.empty() || carries_cloudevent(a));
      if (reply && !dead_letter) {
        auto r = co_await accept_reply(e, a, ttl);
        if (!r) {
          a.status = 502;
          a.error = r.error().message;
        }
      }
      if (a.error.empty()) {
        // A dead letter keeps the subscriber's last error: why it is one.
        if (!dead_letter) d.last_error.clear();
        d.state = dead_letter ? DeliveryState::kDeadLettered : DeliveryState::kDelivered;
        ++(dead_letter ? stats_.dead_lettered : stats_.delivered);
        ++(dead_letter ? counted.dead_lettered : counted.delivered);
        if (!dead_letter)
          counted.latency.observe(
              std::max(0.0, static_cast<double>(d.updated_ms - e.received_ms) / 1000.0));
        co_await save(d);
        co_return;
      }
    }
    // A failure: retried, or on to the dead-letter sink (or dropped).
    std::string error = !a.error.empty() ? a.error
                                         : fmt::format("{} answered {}{}{}", target, a.status,
                                                       a.body.empty() ? "" : ": ",
                                                       std::string_view(a.body).substr(0, 200));
    int attempt = dead_letter ? d.dead_letter_attempts : d.attempts;
    if (dead_letter) {
      d.last_error =
          fmt::format("{}; the dead-letter sink failed too: {}",
                      d.last_error.substr(0, d.last_error.find("; the dead-letter")), error);
    } else {
      // What the dead-letter sink is told (knativeerrorcode, knativeerrordata).
      d.last_code = a.status;
      d.last_body = a.body.substr(0, kMaxErrorData);
      d.last_error = error;
    }
    if (!dead_letter && !retryable(a.status)) {
      d.state = DeliveryState::kDeadLettering;  // not retried: on to the dead-letter sink
      d.next_ms = now_ms();
    } else if (attempt <= retries) {
      auto delay = retry_delay(spec, attempt);
      if (a.retry_after)
        delay = std::max<std::chrono::milliseconds>(
            delay, std::min<std::chrono::milliseconds>(
                       *a.retry_after, spec.retry_after_max.value_or(options_.retry_after_max)));
      d.next_ms = now_ms() + delay.count();
      ++stats_.retries;
      ++counted.retries;
    } else if (dead_letter) {
      d.state = DeliveryState::kFailed;
      ++stats_.failed;
      ++counted.failed;
    } else {
      d.state = DeliveryState::kDeadLettering;  // retries exhausted
      d.next_ms = now_ms();
    }
    spdlog::warn("delivering event {} of broker {}/{} through {} failed (attempt {}): {}; {}",
                 e.event.get("id"), e.namespace_, e.broker, where, attempt, error,
                 d.state == DeliveryState::kFailed ? "given up"
                 : d.next_ms > now_ms() ? fmt::format("retried in {} ms", d.next_ms - now_ms())
                 : d.state == DeliveryState::kDeadLettering
                     ? std::string(route->dead_letter_url.empty() ? "no dead-letter sink: dropped"
                                                                  : "to the dead-letter sink next")
                     : std::string("retried now"));
    co_await save(d);
  }

  // A CloudEvent in a subscriber's answer enters the broker again, one hop less.
  awaitable<Result<void>> accept_reply(const StoredEvent& original, const Answer& a, int ttl) {
    auto reply = cloudevent_from_http(a.headers, a.body);
    if (!reply)
      co_return Error::invalid(
          "the subscriber answered 2xx with a body that is not a "
          "CloudEvent: " +
          reply.error().message);
    if (ttl - 1 <= 0) {
      ++stats_.ttl_dropped;
      spdlog::warn(
          "a reply to event {} of broker {}/{} is dropped: its knativebrokerttl ran out "
          "(a reply loop?)",
          original.event.get("id"), original.namespace_, original.broker);
      co_return Result<void>{};
    }
    reply->attributes[kTtlAttribute] = std::to_string(ttl - 1);
    (void)stamp_arrival(*reply, std::chrono::system_clock::now());
    BrokerTablePtr table = brokers_.load();
    const BrokerRoute* broker = table->find(original.namespace_, original.broker);
    if (!broker) co_return Error::precondition("the broker of the reply was deleted");
    NewEvent ne;
    ne.namespace_ = original.namespace_;
    ne.broker = original.broker;
    ne.received_ms = now_ms();
    ne.deliveries = matching_triggers(*broker, *reply);
    ne.event = std::move(*reply);
    auto stored = co_await queue_.committed_append(std::move(ne));
    if (!stored) co_return stored.error();
    ++stats_.replies;
    co_return Result<void>{};
  }

  // Committed (grouped with others) before the delivery leaves the in-flight set: a delivery
  // read again as due before its outcome is stored would be sent twice.
  awaitable<void> save(Delivery d) {
    auto recorded = co_await queue_.committed_record(std::move(d));
    if (!recorded)
      spdlog::warn("recording a delivery failed (it is sent again): {}", recorded.error().message);
  }

  asio::io_context& io_;
  asio::thread_pool& store_thread_;
  EventLog& log_;
  EventQueue& queue_;
  const BrokerSnapshot& brokers_;
  DispatcherOptions options_;
  DispatchStats stats_;
  asio::steady_timer timer_;
  // Read from the log and not finished: waiting in ready_ (per Trigger) or in flight.
  std::set<std::pair<std::int64_t, std::string>> queued_;
  std::map<std::string, std::deque<std::pair<StoredEvent, Delivery>>> ready_;
  std::map<std::string, int> per_trigger_;                            // in flight
  std::map<std::string, std::shared_ptr<TriggerCounters>> counters_;  // by trigger uid
  bool woken_ = false;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point last_backlog_{}, last_prune_{}, last_sweep_{};
};

Dispatcher::Dispatcher(asio::io_context& io, asio::thread_pool& store_thread, EventLog& log,
                       EventQueue& queue, const BrokerSnapshot& brokers, DispatcherOptions options)
    : impl_(std::make_shared<Impl>(io, store_thread, log, queue, brokers, std::move(options))) {}

Dispatcher::~Dispatcher() {
  stop();
}

void Dispatcher::start() {
  asio::co_spawn(impl_->io_, impl_->loop(impl_), asio::detached);
}

void Dispatcher::wake() {
  impl_->wake();
}

void Dispatcher::stop() {
  asio::post(impl_->io_, [impl = impl_] {
    impl->stopped_ = true;
    impl->timer_.cancel();
  });
}

const DispatchStats& Dispatcher::stats() const {
  return impl_->stats_;
}

std::string render_event_metrics(const DispatchStats& d, const IngressStats& i) {
  PrometheusText w;
  auto total = [&w](const char* name, const char* type, const char* help, double v) {
    w.family(name, type, help);
    w.sample(name, "", v);
  };
  auto outcomes = [&w](const char* name, const std::string& labels,
                       std::initializer_list<std::pair<const char*, std::uint64_t>> counts) {
    for (const auto& [outcome, n] : counts)
      w.sample(name, labels + (labels.empty() ? "" : ",") + fmt::format(R"(outcome="{}")", outcome),
               static_cast<double>(n));
  };
  auto age = [](std::int64_t since_ms) {
    return since_ms == 0 ? 0.0 : static_cast<double>(now_ms() - since_ms) / 1000.0;
  };

  w.family("elafros_broker_events_total", "counter",
           "Events the brokers' ingress answered, by outcome: accepted (202, committed), rejected "
           "(400, 401, 403, 404, 413), ttl_dropped (knativebrokerttl exhausted), failed (503: not "
           "stored).");
  outcomes("elafros_broker_events_total", "",
           {{"accepted", i.accepted.load()},
            {"rejected", i.rejected.load()},
            {"ttl_dropped", i.ttl_dropped.load()},
            {"failed", i.failed.load()}});
  w.family("elafros_broker_events_rejected_total", "counter",
           "Events the brokers' ingress refused, by reason: no_broker (POST to /), bad_path (not "
           "/NAMESPACE/BROKER), unknown_broker (404), too_large (413), invalid_event (400), "
           "unauthenticated (401: no token where one is needed, or a bad one), forbidden (403: "
           "RBAC's brokers/publish, or the broker's EventPolicies).");
  for (int r = 0; r < static_cast<int>(IngressStats::Reject::kCount); ++r)
    w.sample("elafros_broker_events_rejected_total",
             fmt::format(R"(reason="{}")", IngressStats::kRejectReasons[r]),
             static_cast<double>(i.rejected_by[r].load()));
  total("elafros_event_delivery_attempts_total", "counter",
        "Attempts to deliver an event to a Trigger's subscriber or dead-letter sink.",
        static_cast<double>(d.attempts.load()));
  w.family("elafros_event_deliveries_total", "counter",
           "Deliveries finished, by outcome: delivered, dead_lettered, failed (dropped: retries "
           "exhausted and no dead-letter sink, or the trigger was deleted).");
  outcomes("elafros_event_deliveries_total", "",
           {{"delivered", d.delivered.load()},
            {"dead_lettered", d.dead_lettered.load()},
            {"failed", d.failed.load()}});
  total("elafros_event_delivery_retries_total", "counter", "Attempts that failed and are retried.",
        static_cast<double>(d.retries.load()));
  total("elafros_event_replies_total", "counter",
        "CloudEvents subscribers answered with, which re-entered their broker.",
        static_cast<double>(d.replies.load()));
  total("elafros_event_replies_ttl_dropped_total", "counter",
        "Replies dropped because their knativebrokerttl ran out (a reply loop).",
        static_cast<double>(d.ttl_dropped.load()));
  total("elafros_event_deliveries_pending", "gauge", "Deliveries not finished yet (the queue).",
        static_cast<double>(d.pending.load()));
  total("elafros_event_oldest_pending_age_seconds", "gauge",
        "How long the oldest unfinished delivery's event has waited; 0 with none.",
        age(d.oldest_pending_ms.load()));

  // Per broker and per Trigger.
  w.family("elafros_broker_ingress_events_total", "counter",
           "Events a broker's ingress answered, by outcome (as elafros_broker_events_total).");
  for (const auto& b : *i.brokers.load(std::memory_order_acquire))
    outcomes("elafros_broker_ingress_events_total",
             fmt::format(R"(namespace="{}",broker="{}")", prometheus_escape(b->namespace_),
                         prometheus_escape(b->broker)),
             {{"accepted", b->accepted.load()},
              {"rejected", b->rejected.load()},
              {"ttl_dropped", b->ttl_dropped.load()},
              {"failed", b->failed.load()}});
  auto triggers = d.triggers.load(std::memory_order_acquire);
  auto labels = [](const TriggerCounters& t) {
    return fmt::format(R"(namespace="{}",broker="{}",trigger="{}")",
                       prometheus_escape(t.namespace_), prometheus_escape(t.broker),
                       prometheus_escape(t.trigger));
  };
  // One family, a sample per Trigger.
  auto each = [&](const char* name, const char* type, const char* help,
                  double (*value)(const TriggerCounters&)) {
    w.family(name, type, help);
    for (const auto& t : *triggers) w.sample(name, labels(*t), value(*t));
  };
  each("elafros_trigger_delivery_attempts_total", "counter",
       "Attempts to deliver a Trigger's events (to its subscriber or dead-letter sink).",
       [](const TriggerCounters& t) { return static_cast<double>(t.attempts.load()); });
  w.family("elafros_trigger_deliveries_total", "counter",
           "A Trigger's finished deliveries, by outcome: delivered, dead_lettered, failed.");
  for (const auto& t : *triggers)
    outcomes("elafros_trigger_deliveries_total", labels(*t),
             {{"delivered", t->delivered.load()},
              {"dead_lettered", t->dead_lettered.load()},
              {"failed", t->failed.load()}});
  each("elafros_trigger_delivery_retries_total", "counter",
       "A Trigger's attempts that failed and are retried.",
       [](const TriggerCounters& t) { return static_cast<double>(t.retries.load()); });
  each("elafros_trigger_deliveries_pending", "gauge",
       "A Trigger's deliveries not finished yet (refreshed each second).",
       [](const TriggerCounters& t) { return static_cast<double>(t.pending.load()); });
  w.family("elafros_trigger_oldest_pending_age_seconds", "gauge",
           "How long the oldest unfinished delivery of a Trigger has waited; 0 with none.");
  for (const auto& t : *triggers)
    w.sample("elafros_trigger_oldest_pending_age_seconds", labels(*t),
             age(t->oldest_pending_ms.load()));
  w.family("elafros_trigger_delivery_latency_seconds", "histogram",
           "From an event's arrival at its broker to the Trigger's subscriber answering 2xx "
           "(retries and cold starts included).");
  for (const auto& t : *triggers)
    w.histogram("elafros_trigger_delivery_latency_seconds", labels(*t), t->latency.read());
  return w.take();
}

}  // namespace elafros
