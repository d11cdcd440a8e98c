#pragma once
// How the daemon's own senders prove who they are to the brokers' ingress (docs/architecture.md,
// "Event policy"): a source's events and a Trigger's deliveries to a Broker carry
// `Authorization: Bearer elfev:KIND:NAMESPACE:NAME:MAC`, where MAC is HMAC-SHA256 under a key
// made at start and kept only in memory, over the sender and the broker it is sent to. So an
// EventPolicy can name a PingSource or a Trigger (spec.from.ref), and a credential seen by one
// broker's subscriber works nowhere else. Immutable after construction: any thread.

#include <optional>
#include <string>
#include <string_view>

#include "elafros/event_policy.hpp"

namespace elafros {

class EventCredentials {
 public:
  // ingress_url: http://broker-ingress.DOMAIN:PORT, the brokers' URLs' common start.
  explicit EventCredentials(std::string ingress_url);

  // The Authorization value for a send by (kind, ns, name) to `url`, or "" when `url` is not a
  // broker's (nothing is sent to anyone else).
  std::string authorization(std::string_view url, std::string_view kind, std::string_view ns,
                            std::string_view name) const;
  // Whether an Authorization value is one of these (and not a user's token).
  static bool is_credential(std::string_view authorization);
  // The sender a credential names, when it is valid for broker ns/broker; nullopt otherwise.
  std::optional<Publisher> verify(std::string_view authorization, std::string_view ns,
                                  std::string_view broker) const;

 private:
  std::string mac(std::string_view kind, std::string_view ns, std::string_view name,
                  std::string_view broker_ns, std::string_view broker) const;
  std::string ingress_url_;
  std::string key_;
};

}  // namespace elafros
