#pragma once
// What the brokers' ingress shares with the dispatcher, which re-enters replies the same way,
// and with /metrics, without Beast: the ingress's counters, its stamps, and the matching of an
// event against a broker's Triggers (src/proxy/broker_ingress.cpp).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "elafros/event_log.hpp"
#include "elafros/event_policy.hpp"
#include "elafros/eventing.hpp"

namespace elafros {

// One broker's counters: written on the proxy thread, read by /metrics.
struct BrokerCounters {
  std::string namespace_, broker;
  std::atomic<std::uint64_t> accepted{0}, rejected{0}, ttl_dropped{0}, failed{0};
};
using BrokerCountersList = std::vector<std::shared_ptr<BrokerCounters>>;

struct IngressStats {
  // Every broker that answered, replaced (never changed) when one is added.
  std::atomic<std::shared_ptr<const BrokerCountersList>> brokers{
      std::make_shared<const BrokerCountersList>()};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected{0};  // invalid events (400), unknown brokers (404), 401, 403
  enum class Reject {
    kNoBroker,
    kBadPath,
    kUnknownBroker,
    kTooLarge,
    kInvalidEvent,
    kUnauthenticated,  // 401: no token where one is needed, or a bad one
    kForbidden,        // 403: RBAC or the broker's EventPolicies
    kCount
  };
  static constexpr const char* kRejectReasons[] = {"no_broker", "bad_path",      "unknown_broker",
                                                   "too_large", "invalid_event", "unauthenticated",
                                                   "forbidden"};
  std::atomic<std::uint64_t> rejected_by[static_cast<int>(Reject::kCount)] = {};
  void reject(Reject why) {
    ++rejected;
    ++rejected_by[static_cast<int>(why)];
  }
  std::atomic<std::uint64_t> ttl_dropped{0};  // arrived with an exhausted knativebrokerttl
  std::atomic<std::uint64_t> failed{0};       // could not be committed (503)
};

// Who may publish to a broker (docs/architecture.md, "Event policy").
class EventCredentials;
// A Bearer token's sender, checked on the control thread (TokenPublisher).
class PublishTokens {
 public:
  using Check = std::function<TokenPublisher(const std::string& authorization,
                                             const std::string& ns, const std::string& broker)>;
  explicit PublishTokens(Check check) : check_(std::move(check)) {}
  TokenPublisher check(const std::string& authorization, const std::string& ns,
                       const std::string& broker) const {
    return check_(authorization, ns, broker);
  }

 private:
  Check check_;
};
// What an event without a token may do: on the loopback (the default), from anywhere, or nothing.
enum class AnonymousPublish { kLoopback, kNone, kAny };
struct IngressPolicy {
  const EventCredentials* credentials = nullptr;  // the daemon's own senders'
  const PublishTokens* tokens = nullptr;          // unset: tokens are refused (401)
  AnonymousPublish anonymous = AnonymousPublish::kLoopback;
  // The instances' subnet (host order; mask 0: none): with kLoopback, senders there are on this
  // machine too (an app in its own network namespace posting to K_SINK).
  std::uint32_t instance_subnet = 0;
  std::uint32_t instance_mask = 0;
  AuthorizationMode mode = AuthorizationMode::kAllowSameNamespace;
};

// The event with the ingress's stamps: knativearrivaltime now, knativebrokerttl 255 when absent.
// kInvalidArgument when its TTL is exhausted (a reply loop).
Result<void> stamp_arrival(CloudEvent& event, std::chrono::system_clock::time_point now);

// One delivery per Trigger of the broker whose filter passes the event.
std::vector<NewEvent::Target> matching_triggers(const BrokerRoute& broker, const CloudEvent& event);

}  // namespace elafros
