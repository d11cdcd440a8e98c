// RBAC's rule matching, escalation coverage and the built-in roles, in Kubernetes' semantics
// (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac and pkg/registry/rbac/validation): rules
// only grant, a "*" matches anything, a resource "x/*" or "*/sub" matches subresources, an empty
// resourceNames matches every name, a non-resource URL ending in "*" matches a prefix.

#include "elafros/rbac.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <map>

#include "elafros/kind_registry.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

bool has(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool matches_any(const std::vector<std::string>& list, std::string_view value) {
  return has(list, "*") || has(list, value);
}

bool resource_matches(const PolicyRule& rule, const std::string& resource,
                      const std::string& subresource) {
  std::string combined = subresource.empty() ? resource : resource + "/" + subresource;
  for (const auto& r : rule.resources) {
    if (r == "*" || r == combined) return true;
    if (subresource.empty()) continue;
    if (r == resource + "/*" || r == "*/" + subresource) return true;
  }
  return false;
}

bool url_matches(const PolicyRule& rule, const std::string& path) {
  for (const auto& u : rule.non_resource_urls) {
    if (u == "*" || u == path) return true;
    if (!u.empty() && u.back() == '*' && path.compare(0, u.size() - 1, u, 0, u.size() - 1) == 0)
      return true;
  }
  return false;
}

std::vector<std::string> strings_at(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (const json::value* v = o.if_contains(key); v && v->is_array())
    for (const auto& s : v->get_array())
      if (s.is_string()) out.emplace_back(s.get_string());
  return out;
}

std::string string_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

// The resources of every kind elafros serves, by category.
struct KindSets {
  std::map<std::string, std::vector<std::string>> namespaced;  // group → plurals
  std::map<std::string, std::vector<std::string>> all;
};

KindSets kind_sets() {
  KindSets k;
  for (const auto& kind : builtin_kinds().all()) {
    k.all[kind.group].push_back(kind.plural);
    if (kind.namespaced) k.namespaced[kind.group].push_back(kind.plural);
  }
  return k;
}

// Kinds that hold secrets or grant rights: view does not read them, edit does not write RBAC.
bool is_secret(const std::string& group, const std::string& plural) {
  return group.empty() && plural == "secrets";
}
bool is_rbac(const std::string& group) {
  return group == kRbacGroup;
}
// Quotas and limits are set by the namespace's administrator, read by everyone in it.
bool is_policy(const std::string& group, const std::string& plural) {
  return group.empty() && (plural == "resourcequotas" || plural == "limitranges");
}

const std::vector<std::string> kRead = {"get", "list", "watch"};
const std::vector<std::string> kWrite = {"create", "update", "patch", "delete", "deletecollection"};

PolicyRule rule(std::vector<std::string> verbs, std::vector<std::string> groups,
                std::vector<std::string> resources) {
  PolicyRule r;
  r.verbs = std::move(verbs);
  r.api_groups = std::move(groups);
  r.resources = std::move(resources);
  return r;
}

PolicyRule url_rule(std::vector<std::string> verbs, std::vector<std::string> urls) {
  PolicyRule r;
  r.verbs = std::move(verbs);
  r.non_resource_urls = std::move(urls);
  return r;
}

// The rules of view (writes = false) or edit (writes = true) over the namespaced kinds.
std::vector<PolicyRule> namespace_rules(const KindSets& k, bool writes, bool rbac) {
  std::vector<PolicyRule> out;
  for (const auto& [group, plurals] : k.namespaced) {
    std::vector<std::string> readable, writable;
    for (const auto& p : plurals) {
      bool secret = is_secret(group, p);
      bool grants = is_rbac(group);
      if (grants && !rbac) continue;
      if (!secret || writes) readable.push_back(p);
      if (writes && !is_policy(group, p)) writable.push_back(p);
    }
    if (!readable.empty()) out.push_back(rule(kRead, {group}, readable));
    if (!writable.empty()) out.push_back(rule(kWrite, {group}, writable));
  }
  out.push_back(rule({"get"}, {"serving.knative.dev"}, {"services/logs", "services/metrics"}));
  out.push_back(rule({"get"}, {"build.knative.dev"}, {"builds/logs"}));
  out.push_back(rule({"get"}, {"eventing.knative.dev"}, {"brokers/events"}));
  out.push_back(rule(kRead, {""}, {"namespaces"}));
  if (writes) {
    out.push_back(rule({"create"}, {"eventing.knative.dev"}, {"brokers/publish"}));
    out.push_back(rule({"create"}, {"eventing.knative.dev"}, {"triggers/bind"}));
    out.push_back(rule({"create"}, {"elafros.dev"}, {"buildsources"}));
  }
  return out;
}

json::object role_object(const std::string& name, const std::string& description,
                         const std::vector<PolicyRule>& rules) {
  json::array rs;
  for (const auto& r : rules) rs.push_back(rule_json(r));
  return json::object{
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", "ClusterRole"},
      {"metadata",
       json::object{
           {"name", name},
           {"labels", json::object{{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
           {"annotations", json::object{{"rbac.authorization.kubernetes.io/autoupdate", "true"},
                                        {"elafros.dev/description", description}}}}},
      {"rules", std::move(rs)}};
}

json::object binding_object(const std::string& name, const std::string& role,
                            const std::string& group) {
  return json::object{
      {"apiVersion", "rbac.authorization.k8s.io/v1"},
      {"kind", "ClusterRoleBinding"},
      {"metadata",
       json::object{
           {"name", name},
           {"labels", json::object{{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
           {"annotations", json::object{{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}}},
      {"roleRef", json::object{{"apiGroup", kRbacGroup}, {"kind", "ClusterRole"}, {"name", role}}},
      {"subjects",
       json::array{json::object{{"apiGroup", kRbacGroup}, {"kind", "Group"}, {"name", group}}}}};
}

}  // namespace

bool Identity::in_group(std::string_view group) const {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

std::string RequestAttributes::resource_path() const {
  return subresource.empty() ? resource : resource + "/" + subresource;
}

std::string RequestAttributes::describe() const {
  if (!resource_request) return fmt::format("{} {}", verb, path);
  std::string what = resource_path();
  if (!api_group.empty()) {
    auto slash = what.find('/');
    what = slash == std::string::npos
               ? what + "." + api_group
               : what.substr(0, slash) + "." + api_group + what.substr(slash);
  }
  std::string out = fmt::format("{} {}", verb, what);
  if (!name.empty()) out += fmt::format(" \"{}\"", name);
  if (!ns.empty()) out += fmt::format(" in namespace \"{}\"", ns);
  return out;
}

const std::vector<std::string>& rbac_verbs() {
  static const std::vector<std::string> verbs = {"*",     "get",      "list",
                                                 "watch", "create",   "update",
                                                 "patch", "delete",   "deletecollection",
                                                 "bind",  "escalate", "impersonate",
                                                 "use"};
  return verbs;
}

bool rule_allows(const PolicyRule& rule, const RequestAttributes& request) {
  if (!matches_any(rule.verbs, request.verb)) return false;
  if (!request.resource_request) return url_matches(rule, request.path);
  if (!matches_any(rule.api_groups, request.api_group)) return false;
  if (!resource_matches(rule, request.resource, request.subresource)) return false;
  return rule.resource_names.empty() || has(rule.resource_names, request.name);
}

std::optional<std::string> uncovered(const std::vector<PolicyRule>& held,
                                     const std::vector<PolicyRule>& wanted) {
  // Each wanted rule breaks into single grants; a wildcard is covered only by a wildcard,
  // because it would also grant what does not exist yet.
  auto holds = [&](const std::string& verb, const std::string& group, const std::string& resource,
                   const std::string& name, const std::string& url) {
    for (const auto& h : held) {
      if (!has(h.verbs, "*") && !has(h.verbs, verb)) continue;
      if (!url.empty()) {
        if (url_matches(h, url)) return true;
        continue;
      }
      if (!has(h.api_groups, "*") && !has(h.api_groups, group)) continue;
      bool res = has(h.resources, "*") || has(h.resources, resource);
      if (!res) {
        auto slash = resource.find('/');
        if (slash != std::string::npos && resource != "*")
          res = has(h.resources, resource.substr(0, slash) + "/*") ||
                has(h.resources, "*/" + resource.substr(slash + 1));
      }
      if (!res) continue;
      if (h.resource_names.empty() || (!name.empty() && has(h.resource_names, name))) return true;
    }
    return false;
  };
  for (const auto& w : wanted) {
    for (const auto& verb : w.verbs) {
      for (const auto& url : w.non_resource_urls)
        if (!holds(verb, "", "", "", url))
          return fmt::format("{} {}", verb == "*" ? "every verb on" : verb, url);
      for (const auto& group : w.api_groups)
        for (const auto& resource : w.resources) {
          std::vector<std::string> names = w.resource_names;
          if (names.empty()) names.push_back("");
          for (const auto& name : names)
            if (!holds(verb, group, resource, name, "")) {
              std::string what = resource == "*" ? "every resource" : resource;
              if (group == "*")
                what += " in every API group";
              else if (!group.empty())
                what += "." + group;
              std::string v = verb == "*" ? "every verb on" : verb;
              return name.empty() ? fmt::format("{} {}", v, what)
                                  : fmt::format("{} {} \"{}\"", v, what, name);
            }
        }
    }
  }
  return std::nullopt;
}

std::vector<PolicyRule> rules_of(const json::object& role) {
  std::vector<PolicyRule> out;
  const json::value* rules = role.if_contains("rules");
  if (!rules || !rules->is_array()) return out;
  for (const auto& r : rules->get_array()) {
    if (!r.is_object()) continue;
    const json::object& o = r.get_object();
    out.push_back({strings_at(o, "verbs"), strings_at(o, "apiGroups"), strings_at(o, "resources"),
                   strings_at(o, "resourceNames"), strings_at(o, "nonResourceURLs")});
  }
  return out;
}

json::object rule_json(const PolicyRule& r) {
  json::object o;
  o["verbs"] = to_array(r.verbs);
  if (!r.api_groups.empty()) o["apiGroups"] = to_array(r.api_groups);
  if (!r.resources.empty()) o["resources"] = to_array(r.resources);
  if (!r.resource_names.empty()) o["resourceNames"] = to_array(r.resource_names);
  if (!r.non_resource_urls.empty()) o["nonResourceURLs"] = to_array(r.non_resource_urls);
  return o;
}

RoleRef role_ref_of(const json::object& binding) {
  const json::value* ref = binding.if_contains("roleRef");
  if (!ref || !ref->is_object()) return {};
  return {string_at(ref->get_object(), "kind"), string_at(ref->get_object(), "name")};
}

std::vector<Subject> subjects_of(const json::object& binding) {
  std::vector<Subject> out;
  const json::value* subjects = binding.if_contains("subjects");
  if (!subjects || !subjects->is_array()) return out;
  for (const auto& s : subjects->get_array())
    if (s.is_object())
      out.push_back({string_at(s.get_object(), "kind"), string_at(s.get_object(), "name"),
                     string_at(s.get_object(), "namespace")});
  return out;
}

bool subject_matches(const Subject& subject, const Identity& who) {
  if (subject.kind == "User") return subject.name == who.user;
  if (subject.kind == "Group") return who.in_group(subject.name);
  if (subject.kind == "ServiceAccount")
    return who.user == fmt::format("system:serviceaccount:{}:{}", subject.ns, subject.name);
  return false;
}

std::vector<json::object> builtin_rbac_objects() {
  KindSets k = kind_sets();
  std::vector<PolicyRule> view = namespace_rules(k, false, false);
  std::vector<PolicyRule> edit = namespace_rules(k, true, false);
  std::vector<PolicyRule> admin = namespace_rules(k, true, true);

  std::vector<PolicyRule> auditor;
  for (const auto& [group, plurals] : k.all) {
    std::vector<std::string> readable;
    for (const auto& p : plurals)
      if (!is_secret(group, p)) readable.push_back(p);
    auditor.push_back(rule(kRead, {group}, readable));
  }
  auditor.push_back(rule({"get"}, {"serving.knative.dev"}, {"services/logs", "services/metrics"}));
  auditor.push_back(rule({"get"}, {"build.knative.dev"}, {"builds/logs"}));
  auditor.push_back(rule({"get"}, {"eventing.knative.dev"}, {"brokers/events"}));
  auditor.push_back(rule({"get", "list"}, {"elafros.dev"},
                         {"audit", "audit/verify", "images", "registries", "instances", "tokens",
                          "usage", "system/status"}));
  auditor.push_back(url_rule({"get"}, {"/metrics"}));

  std::vector<PolicyRule> billing = {rule({"get", "list"}, {"elafros.dev"}, {"usage"}),
                                     rule(kRead, {""}, {"namespaces"}),
                                     url_rule({"get"}, {"/metrics"})};

  PolicyRule all = rule({"*"}, {"*"}, {"*"});
  std::vector<PolicyRule> cluster_admin = {all, url_rule({"*"}, {"*"})};

  std::vector<PolicyRule> basic = {
      rule({"create"}, {"authorization.k8s.io"},
           {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
      rule({"create"}, {"authentication.k8s.io"}, {"selfsubjectreviews"})};
  std::vector<PolicyRule> discovery = {
      url_rule({"get"}, {"/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version",
                         "/version/", "/healthz", "/livez", "/readyz"})};

  std::vector<json::object> out = {
      role_object("cluster-admin", "Everything, everywhere: every verb on every resource.",
                  cluster_admin),
      role_object("admin",
                  "Everything in a namespace, including its roles and bindings, but not its "
                  "quotas or the namespace itself.",
                  admin),
      role_object("edit",
                  "Reads and writes a namespace's services, events, builds and secrets; not its "
                  "roles, bindings or quotas.",
                  edit),
      role_object("view", "Reads a namespace's resources and logs, but not its secrets or roles.",
                  view),
      role_object("auditor",
                  "Reads every resource in every namespace (not secrets' values), the audit log "
                  "and the metrics.",
                  auditor),
      role_object("billing", "Reads usage accounting and the metrics.", billing),
      role_object("system:basic-user", "Asks what it may do (kubectl auth can-i, whoami).", basic),
      role_object("system:discovery", "Reads the API's discovery documents and health.", discovery),
      binding_object("cluster-admin", "cluster-admin", kMastersGroup),
      binding_object("system:basic-user", "system:basic-user", kAuthenticatedGroup),
      binding_object("system:discovery", "system:discovery", kAuthenticatedGroup),
  };
  return out;
}

}  // namespace elafros
