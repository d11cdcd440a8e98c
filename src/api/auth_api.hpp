#pragma once
// Authentication and authorization at the one place every request passes (docs/architecture.md,
// "Identities" and "Authorization"): who a connection's peer or Bearer token is, whether RBAC
// lets them do what the request asks (403 naming the verb, the resource and the identity
// otherwise), the escalation check on writes of roles and bindings, and the endpoints that say
// what one may do: SelfSubjectAccessReview and SelfSubjectRulesReview (kubectl auth can-i),
// SelfSubjectReview (kubectl auth whoami), and the tokens.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/http_listener.hpp"
#include "api/router.hpp"
#include "elafros/event_policy.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_store.hpp"
#include "elafros/rbac.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {
class ApiTokens;
namespace api {

struct AuthParts {
  boost::asio::io_context& control;
  boost::asio::thread_pool& store_thread;
  boost::asio::thread_pool& blocking;
  ObjectStore& store;
  ApiTokens& tokens;
  // The RBAC authorizer's answers (on the control thread). Unset: everything is allowed.
  std::function<Decision(const Identity&, const RequestAttributes&)> authorize;
  std::function<std::vector<PolicyRule>(const Identity&, const std::string& ns)> rules_for;
  std::optional<unsigned> socket_gid;  // socket-group: its members are cluster administrators
  bool metrics_anonymous = true;       // GET /metrics without a token (a Prometheus scrape)
};

class Auth {
 public:
  explicit Auth(AuthParts parts);
  ~Auth();
  Auth(const Auth&) = delete;
  Auth& operator=(const Auth&) = delete;

  // The identity of a request: its Bearer token's when it has one; else the socket peer's
  // (uid:N; root and socket-group's members are in system:masters); else, where `anonymous`,
  // system:anonymous; else kUnauthorized.
  // A dashboard session's cookie stands for its token; a change (not GET, HEAD or OPTIONS)
  // over one must carry the session's X-CSRF-Token, else kForbidden.
  Result<Identity> authenticate(const Peer& peer, std::string_view authorization,
                                const ApiRequest& request, bool anonymous) const;
  // kForbidden, in Kubernetes' words, unless RBAC allows request.attributes to request.who;
  // sets request.decision.
  Result<void> authorize(ApiRequest& request) const;
  Decision decide(const Identity& who, const RequestAttributes& request) const;
  // Whether the Bearer token `authorization` may publish to broker ns/broker (the brokers'
  // ingress asks, on the control thread).
  TokenPublisher publisher(const std::string& authorization, const std::string& ns,
                           const std::string& broker) const;
  // Before a Role, ClusterRole or binding is written: a binding's role must exist, and nobody
  // grants what they do not hold (unless RBAC lets them escalate or bind); a Trigger on another
  // namespace's broker needs triggers/bind there. `who` is null for the daemon's own writes.
  awaitable<Result<void>> check_grant(const Identity* who, const KindInfo& kind,
                                      const boost::json::object& object);

  // SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview, the tokens, and the
  // dashboard's session (GET, POST and DELETE /ui/session).
  void add_routes(Router& router);
  // Writes tokens' lastUsed now and then (and at stop).
  void start();
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace api
}  // namespace elafros
