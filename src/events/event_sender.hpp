#pragma once
// How the sources send (docs/architecture.md, "Sources"): each event is POSTed in binary mode to
// its source's sink on the events thread (with the source's credential when the sink is a Broker),
// retried on Knative's retryable answers five times (50 ms doubling, as Knative's ping adapter
// does), then counted and logged as lost. Durability starts at the sink: a Broker's ingress answers
// 202 only once the event is committed.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "elafros/cloudevent.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

struct SenderStats {
  std::atomic<std::uint64_t> sent{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> lost{0};
};

// The sources' Prometheus families.
std::string render_source_metrics(const SenderStats& stats);

class EventCredentials;

// Which source sends: its kind, namespace and name.
struct EventOrigin {
  std::string kind, ns, name;    // "PingSource", "team-a", "tick"
  std::string describe() const;  // "pingsource team-a/tick", for logs
};

class EventSender {
 public:
  // With credentials, a send to a Broker says which source it is from (EventCredentials).
  explicit EventSender(boost::asio::io_context& io, const EventCredentials* credentials = nullptr);
  ~EventSender();
  EventSender(const EventSender&) = delete;
  EventSender& operator=(const EventSender&) = delete;

  // Any thread.
  void send(CloudEvent event, std::string url, EventOrigin from);
  const SenderStats& stats() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
