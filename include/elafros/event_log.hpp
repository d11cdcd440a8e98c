#pragma once
// The brokers' durable queue (docs/architecture.md, "Events"): every accepted event, and one
// delivery per Trigger it matched, committed together before the ingress answers 202. The
// dispatcher takes the deliveries that are due and records each attempt. Calls block: run them
// on the store thread.

#include <atomic>
#include <cstdint>
#include <map>
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

// Pending: due for its subscriber; DeadLettering: its retries are exhausted (or its error is not
// retried), due for the dead-letter sink; then Delivered, DeadLettered or Failed (dropped).
enum class DeliveryState { kPending, kDeadLettering, kDelivered, kDeadLettered, kFailed };
const char* to_string(DeliveryState state);

struct Delivery {
  std::int64_t event_seq = 0;
  std::string trigger_uid, trigger;
  DeliveryState state = DeliveryState::kPending;
  int attempts = 0;              // to the subscriber
  int dead_letter_attempts = 0;  // to the dead-letter sink
  std::int64_t next_ms = 0;      // when the next attempt is due
  int last_code = 0;             // the subscriber's last status; 0: no answer
  std::string last_error;        // what went wrong, for people
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
  // The same for one Trigger: the dispatcher reads each Trigger's on its own, so that one slow
  // subscriber's backlog cannot hide the others' due deliveries.
  virtual Result<std::vector<std::pair<StoredEvent, Delivery>>> due_deliveries_of(
      const std::string& trigger_uid, std::int64_t now_ms, std::size_t limit) = 0;
  // Pending deliveries not due yet: when the earliest is (0: none).
  virtual Result<std::int64_t> next_due_ms() = 0;
  virtual Result<void> update_delivery(const Delivery& delivery) = 0;
  // Several in one transaction (the dispatcher's grouped outcomes).
  virtual Result<void> update_deliveries(const std::vector<Delivery>& deliveries) = 0;
  // Retention: drops the events whose every delivery is finished (delivered, dead-lettered,
  // failed) once older than `before_ms`, or beyond the newest `keep` finished ones, or, oldest
  // first, while all events' attributes and data take more than `max_bytes` (0: no bound).
  // The count dropped.
  virtual Result<std::int64_t> prune_events(std::int64_t before_ms, std::int64_t keep,
                                            std::int64_t max_bytes) = 0;
  struct Backlog {
    std::int64_t pending = 0;            // deliveries not finished
    std::int64_t oldest_pending_ms = 0;  // when the oldest of them was received; 0: none
    struct Trigger {
      std::int64_t pending = 0;
      std::int64_t oldest_pending_ms = 0;
    };
    std::map<std::string, Trigger> by_trigger;  // by trigger uid
  };
  virtual Result<Backlog> backlog() = 0;
  // A broker's latest events with their deliveries, newest first.
  virtual Result<std::vector<std::pair<StoredEvent, std::vector<Delivery>>>> recent_events(
      const std::string& ns, const std::string& broker, std::size_t limit) = 0;

  // Counts the writes that change what recent_events answers (appended events, delivery
  // outcomes): a follower on another thread reads it, without a lock, to know when to read
  // the events again.
  std::uint64_t changes() const { return changes_.load(std::memory_order_acquire); }

 protected:
  void changed() { changes_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  std::atomic<std::uint64_t> changes_{0};
};

}  // namespace elafros
