#pragma once
// Role-based access control in Kubernetes' rbac.authorization.k8s.io/v1 terms
// (docs/architecture.md, "Authorization"): who asks (an Identity), what they ask (the request's
// attributes), the rules a Role grants, and whether one set of rules covers another (a user may
// grant only what they hold). Pure: the authorizer keeps the roles and bindings.

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

inline constexpr const char* kRbacGroup = "rbac.authorization.k8s.io";
// The group whose members may do everything, whatever the roles say (Kubernetes' own): root on
// the socket, members of socket-group, and the bootstrap admin token.
inline constexpr const char* kMastersGroup = "system:masters";
inline constexpr const char* kAuthenticatedGroup = "system:authenticated";
inline constexpr const char* kUnauthenticatedGroup = "system:unauthenticated";
inline constexpr const char* kAnonymousUser = "system:anonymous";

// Who is asking. user is "uid:1001" on the socket, a token's user over HTTPS.
struct Identity {
  std::string user;
  std::vector<std::string> groups;
  std::string token;  // the token's accessor ("elf_ACCESSOR_…"), never its secret; "" for peers
  std::string via;    // "unix uid 1001", "127.0.0.1", for audit and messages
  bool in_group(std::string_view group) const;
};

// What a request asks, as Kubernetes' RequestInfo resolves it.
struct RequestAttributes {
  std::string verb;  // get, list, watch, create, update, patch, delete, …
  bool resource_request = true;
  std::string api_group;    // "" for the core group
  std::string resource;     // plural: "services"
  std::string subresource;  // "logs", "status", "publish", or ""
  std::string ns;           // "" for cluster-scoped
  std::string name;         // "" for collections
  std::string path;         // for non-resource requests: "/metrics"

  // "services/logs", or "services"
  std::string resource_path() const;
  // What a denial names: "list services.serving.knative.dev in namespace \"team-a\"".
  std::string describe() const;
};

// An authorizer's answer, with what allowed it or why not (for audit and denials).
struct Decision {
  bool allowed = false;
  std::string reason;
};

struct PolicyRule {
  std::vector<std::string> verbs, api_groups, resources, resource_names, non_resource_urls;
};

// The verbs a rule may name. Anything else is refused at admission, naming it.
const std::vector<std::string>& rbac_verbs();

// Whether the rule grants the request.
bool rule_allows(const PolicyRule& rule, const RequestAttributes& request);
// Whether `held` grants everything `wanted` does (Kubernetes' escalation check): the first rule
// of `wanted` it does not cover, described ("create secrets"), or nullopt.
std::optional<std::string> uncovered(const std::vector<PolicyRule>& held,
                                     const std::vector<PolicyRule>& wanted);

// A Role's or ClusterRole's rules, as admission stored them.
std::vector<PolicyRule> rules_of(const boost::json::object& role);
boost::json::object rule_json(const PolicyRule& rule);

struct RoleRef {
  std::string kind;  // Role or ClusterRole
  std::string name;
};
struct Subject {
  std::string kind;  // User, Group or ServiceAccount
  std::string name;
  std::string ns;  // ServiceAccount only
};
RoleRef role_ref_of(const boost::json::object& binding);
std::vector<Subject> subjects_of(const boost::json::object& binding);
bool subject_matches(const Subject& subject, const Identity& who);

// The roles and bindings elafros ships (Kubernetes' user-facing ClusterRoles with elafros's
// kinds, plus auditor and billing), made from the kind registry so that a new kind is covered.
// Each carries the label kubernetes.io/bootstrapping=rbac-defaults.
std::vector<boost::json::object> builtin_rbac_objects();

}  // namespace elafros
