#pragma once
// Who may send events to a Broker (docs/architecture.md, "Event policy"): Knative's
// eventing.knative.dev/v1alpha1 EventPolicy, with elafros identities where Knative has OIDC
// subjects, and Knative's default-authorization-mode for the brokers no policy selects. Pure:
// the event controller compiles the policies into the BrokerTable, the ingress evaluates them.

#include <boost/json/fwd.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/cloudevent.hpp"
#include "elafros/event_filter.hpp"
#include "elafros/label_selector.hpp"
#include "elafros/result.hpp"

namespace elafros {

// What decides for a broker that no EventPolicy selects (Knative's feature flag of that name).
enum class AuthorizationMode { kAllowSameNamespace, kAllowAll, kDenyAll };
std::optional<AuthorizationMode> authorization_mode_from(std::string_view text);
const char* authorization_mode_name(AuthorizationMode mode);

// The subject of the daemon's own senders, which an EventPolicy's from.ref names:
// "system:eventing:pingsource:team-a:tick" (kind lowercased).
std::string eventing_subject(std::string_view kind, std::string_view ns, std::string_view name);

// Who sent an event, as the ingress learned it.
struct Publisher {
  std::string subject;  // a token's user, an eventing subject; "" for an anonymous one
  std::string ns;       // the namespace it belongs to; "" when none
  std::string via;      // the peer's address, for messages
  bool anonymous() const { return subject.empty(); }
  std::string describe() const;  // "user \"ci\"", "anonymous (127.0.0.1)"
};

// A subject pattern of spec.from: exact, or a prefix when it ends in '*'.
bool subject_pattern_matches(std::string_view pattern, std::string_view subject);

struct EventPolicyTarget {
  std::string name;        // a ref's broker; "" for a selector
  LabelSelector selector;  // a selector's; empty with an empty name: every broker
};

struct EventPolicy {
  std::string namespace_, name;
  std::vector<EventPolicyTarget> to;  // empty: every broker of the namespace
  std::vector<std::string> from;      // subject patterns, refs resolved
  EventFilter filter;                 // spec.filters, ANDed with from
  bool has_filter = false;
  bool applies_to(const std::string& broker,
                  const std::map<std::string, std::string>& labels) const;
};

Result<EventPolicy> event_policy_from_object(const boost::json::object& object);

// The ingress's verdict on one event.
struct PublishVerdict {
  enum class Outcome { kAllowed, kUnauthenticated, kForbidden } outcome = Outcome::kAllowed;
  std::string message;  // what happened and what to do, for the 401 or 403 body
  bool allowed() const { return outcome == Outcome::kAllowed; }
};

// A Bearer token's sender, as the API's authenticator and RBAC answer for the ingress: the
// token's user, allowed when it may create brokers/publish in the broker's namespace.
struct TokenPublisher {
  PublishVerdict verdict;
  Publisher who;
};

// Whether `who` may send `event` to broker ns/broker, given the policies that select it: any one
// whose from and filters both match allows it; with none, `mode` decides. A publisher with
// no identity is refused (401) wherever one is needed.
using EventPolicies = std::vector<std::shared_ptr<const EventPolicy>>;
PublishVerdict evaluate_publish(const EventPolicies& policies, AuthorizationMode mode,
                                const Publisher& who, const std::string& ns,
                                const std::string& broker, const CloudEvent& event);

}  // namespace elafros
