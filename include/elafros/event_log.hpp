#pragma once
// The brokers' durable queue (docs/architecture.md, "Events"): every accepted event, and one
// delivery per Trigger it matched, committed together before the ingress answers 202. The
// dispatcher takes the deliveries that are due and records each attempt. Calls block: run them
// on the store thread.

#include <cstdint>
#include <string>
#include <vector>

#include "elafros/cloudevent.hpp"
#include "elafros/result.hpp"

namespace elafros {

struct NewEvent {
  std::string namespace_, broker;
  CloudEvent event;
  std::int64_t received_ms = 0;
  struct Target {
    std::string trigger_uid, trigger;
  };
  std::vector<Target> deliveries;  // the Triggers it matched
};

struct StoredEvent {
  std::int64_t seq = 0;
  std::string namespace_, broker;
  CloudEvent event;
  std::int64_t received_ms = 0;
};

enum class DeliveryState { kPending, kDelivered, kDeadLettered, kFailed };
const char* to_string(DeliveryState state);

struct Delivery {
  std::int64_t event_seq = 0;
  std::string trigger_uid, trigger;
  DeliveryState state = DeliveryState::kPending;
  int attempts = 0;
  std::int64_t next_ms = 0;  // when the next attempt is due
  int last_code = 0;         // the subscriber's last status; 0: no answer
  std::string last_error;    // what went wrong, for people
  std::string last_body;  // the start of the last answer's body (≤ 1024 bytes), for dead letters
  std::int64_t updated_ms = 0;
};

class EventLog {
 public:
  virtual ~EventLog() = default;
  // One transaction for all of them (grouped ingress commits). The events' sequence numbers.
  virtual Result<std::vector<std::int64_t>> append_events(const std::vector<NewEvent>& events) = 0;
  // Pending deliveries due at or before now_ms, oldest first, with their events.
  virtual Result<std::vector<std::pair<StoredEvent, Delivery>>> due_deliveries(
      std::int64_t now_ms, std::size_t limit) = 0;
  // Pending deliveries not due yet: when the earliest is (0: none).
  virtual Result<std::int64_t> next_due_ms() = 0;
  virtual Result<void> update_delivery(const Delivery& delivery) = 0;
  // Several in one transaction (the dispatcher's grouped outcomes).
  virtual Result<void> update_deliveries(const std::vector<Delivery>& deliveries) = 0;
  // A broker's latest events with their deliveries, newest first.
  virtual Result<std::vector<std::pair<StoredEvent, std::vector<Delivery>>>> recent_events(
      const std::string& ns, const std::string& broker, std::size_t limit) = 0;
};

}  // namespace elafros
