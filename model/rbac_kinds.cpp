// rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and ClusterRoleBinding in the kind
// registry, in Kubernetes' shapes so that kubectl manages them. Admission is strict: a rule
// needs verbs elafros knows and either resources (with apiGroups) or nonResourceURLs; a
// binding needs a roleRef of the right kind and subjects of a known kind. Whether the role
// exists, and whether the writer may grant it, is checked against the store by the API.

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/rbac.hpp"
#include "strict_reader.hpp"

namespace elafros {
namespace {

// Kubernetes' rule for RBAC names: a path segment (so "system:basic-user" is fine).
std::optional<std::string> rbac_name_problem(const std::string& name) {
  if (name == "." || name == "..") return "may not be '.' or '..'";
  if (name.find_first_of("/%") != std::string::npos) return "may not contain '/' or '%'";
  if (name.size() > 253) return "must be at most 253 characters";
  return std::nullopt;
}

Result<void> check_name(const json::object& in) {
  std::string name = meta_string(in, "name");
  if (!name.empty())
    if (auto problem = rbac_name_problem(name))
      return Error::invalid(fmt::format("metadata.name: \"{}\" {}", name, *problem));
  return {};
}

void read_rules(Reader& r, const json::object& in, bool cluster) {
  const json::array* rules = r.array(in, "rules", "");
  if (!rules) return;
  for (std::size_t i = 0; i < rules->size() && !r.failed(); ++i) {
    std::string path = fmt::format("rules[{}]", i);
    const json::object* o = r.object(
        (*rules)[i], path, {"verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"});
    if (!o) return;
    auto verbs = r.strings(*o, "verbs", path);
    auto groups = r.strings(*o, "apiGroups", path);
    auto resources = r.strings(*o, "resources", path);
    (void)r.strings(*o, "resourceNames", path);
    auto urls = r.strings(*o, "nonResourceURLs", path);
    if (r.failed()) return;
    if (verbs.empty())
      return r.invalid(path + ".verbs", "needs at least one verb (get, list, watch, create, …)");
    for (std::size_t v = 0; v < verbs.size(); ++v)
      if (std::find(rbac_verbs().begin(), rbac_verbs().end(), verbs[v]) == rbac_verbs().end())
        return r.invalid(fmt::format("{}.verbs[{}]", path, v),
                         fmt::format("unknown verb \"{}\" (known: get, list, watch, create, "
                                     "update, patch, delete, deletecollection, bind, escalate, "
                                     "impersonate, use, or *)",
                                     verbs[v]));
    if (!urls.empty()) {
      if (!cluster)
        return r.invalid(path + ".nonResourceURLs",
                         "only a ClusterRole may name non-resource URLs (a Role's rules are "
                         "about one namespace's resources)");
      if (!resources.empty() || !groups.empty())
        return r.invalid(path, "a rule names either resources or nonResourceURLs, not both");
      for (std::size_t u = 0; u < urls.size(); ++u)
        if (urls[u] != "*" && (urls[u].empty() || urls[u][0] != '/'))
          return r.invalid(fmt::format("{}.nonResourceURLs[{}]", path, u),
                           fmt::format("\"{}\" must be a path starting with '/', or *", urls[u]));
      continue;
    }
    if (resources.empty())
      return r.invalid(path + ".resources",
                       "needs at least one resource (e.g. services), or nonResourceURLs");
    if (groups.empty())
      return r.invalid(path + ".apiGroups",
                       "needs at least one API group (\"\" is the core group, e.g. for secrets; "
                       "serving.knative.dev for services)");
  }
}

Result<json::object> admit_role(const json::object& in, bool cluster) {
  std::optional<Error> error;
  Reader r(error);
  const char* kind = cluster ? "ClusterRole" : "Role";
  if (in.if_contains("aggregationRule") && !in.at("aggregationRule").is_null())
    return Error::invalid(
        "aggregationRule: elafros does not aggregate ClusterRoles; list the rules instead");
  for (const auto& kv : in)
    if (kv.key() != "apiVersion" && kv.key() != "kind" && kv.key() != "metadata" &&
        kv.key() != "rules" && kv.key() != "aggregationRule")
      return Error::invalid(fmt::format("{}: unknown field (a {} has metadata and rules)",
                                        std::string_view(kv.key()), kind));
  read_rules(r, in, cluster);
  if (error) return *error;
  if (auto n = check_name(in); !n) return n.error();
  json::object out = in;
  out["apiVersion"] = "rbac.authorization.k8s.io/v1";
  out["kind"] = kind;
  out.erase("aggregationRule");
  if (!out.contains("rules")) out["rules"] = json::array{};
  if (cluster) metadata_of(out).erase("namespace");
  return out;
}

Result<json::object> admit_binding(const json::object& in, bool cluster) {
  std::optional<Error> error;
  Reader r(error);
  const char* kind = cluster ? "ClusterRoleBinding" : "RoleBinding";
  for (const auto& kv : in)
    if (kv.key() != "apiVersion" && kv.key() != "kind" && kv.key() != "metadata" &&
        kv.key() != "subjects" && kv.key() != "roleRef")
      return Error::invalid(
          fmt::format("{}: unknown field (a {} has metadata, subjects and roleRef)",
                      std::string_view(kv.key()), kind));
  const json::value* ref = in.if_contains("roleRef");
  if (!ref || ref->is_null())
    return Error::invalid(
        fmt::format("roleRef: required: the role this binding grants, e.g. {{apiGroup: {}, kind: "
                    "ClusterRole, name: view}}",
                    kRbacGroup));
  if (const json::object* o = r.object(*ref, "roleRef", {"apiGroup", "kind", "name"})) {
    std::string group = r.string(*o, "apiGroup", "roleRef").value_or("");
    std::string rkind = r.string(*o, "kind", "roleRef").value_or("");
    std::string name = r.string(*o, "name", "roleRef").value_or("");
    if (!r.failed() && group != kRbacGroup)
      r.invalid("roleRef.apiGroup", fmt::format("must be {}", kRbacGroup));
    if (!r.failed() && cluster && rkind != "ClusterRole")
      r.invalid("roleRef.kind",
                fmt::format("a ClusterRoleBinding grants a ClusterRole, not \"{}\"", rkind));
    if (!r.failed() && !cluster && rkind != "ClusterRole" && rkind != "Role")
      r.invalid("roleRef.kind", fmt::format("must be Role or ClusterRole, not \"{}\"", rkind));
    if (!r.failed() && name.empty()) r.invalid("roleRef.name", "required: the role's name");
  }
  if (const json::array* subjects = r.array(in, "subjects", ""))
    for (std::size_t i = 0; i < subjects->size() && !r.failed(); ++i) {
      std::string path = fmt::format("subjects[{}]", i);
      const json::object* s =
          r.object((*subjects)[i], path, {"apiGroup", "kind", "name", "namespace"});
      if (!s) break;
      std::string skind = r.string(*s, "kind", path).value_or("");
      std::string name = r.string(*s, "name", path).value_or("");
      std::string group = r.string(*s, "apiGroup", path).value_or("");
      std::string sns = r.string(*s, "namespace", path).value_or("");
      if (r.failed()) break;
      if (skind != "User" && skind != "Group" && skind != "ServiceAccount")
        r.invalid(path + ".kind",
                  fmt::format("\"{}\" is not a subject kind: User (e.g. uid:1001, or a token's "
                              "user), Group or ServiceAccount",
                              skind));
      else if (name.empty())
        r.invalid(path + ".name", "required");
      else if (skind != "ServiceAccount" && !group.empty() && group != kRbacGroup)
        r.invalid(path + ".apiGroup", fmt::format("must be {} for a {}", kRbacGroup, skind));
      else if (skind == "ServiceAccount" && sns.empty() && cluster)
        r.invalid(path + ".namespace", "a ServiceAccount subject needs its namespace");
    }
  if (error) return *error;
  if (auto n = check_name(in); !n) return n.error();
  json::object out = in;
  out["apiVersion"] = "rbac.authorization.k8s.io/v1";
  out["kind"] = kind;
  if (cluster) metadata_of(out).erase("namespace");
  // Kubernetes' defaults: a User or Group's apiGroup is the RBAC group.
  if (json::value* subjects = out.if_contains("subjects"); subjects && subjects->is_array())
    for (auto& s : subjects->get_array()) {
      json::object& o = s.get_object();
      if (o["kind"] != "ServiceAccount" && !o.contains("apiGroup")) o["apiGroup"] = kRbacGroup;
      if (o["kind"] == "ServiceAccount" && !o.contains("namespace") && !cluster)
        o["namespace"] = meta_string(in, "namespace");
    }
  return out;
}

KindInfo rbac_kind(const char* kind, const char* plural, const char* singular, bool cluster) {
  KindInfo k;
  k.group = kRbacGroup;
  k.version = "v1";
  k.kind = kind;
  k.plural = plural;
  k.singular = singular;
  k.namespaced = !cluster;
  k.categories = {"rbac"};
  return k;
}

}  // namespace

void register_rbac_kinds(KindRegistry& registry) {
  for (bool cluster : {false, true}) {
    KindInfo role = cluster ? rbac_kind("ClusterRole", "clusterroles", "clusterrole", true)
                            : rbac_kind("Role", "roles", "role", false);
    role.columns = {{"Created At", "date", ".metadata.creationTimestamp", "", 0}};
    role.admit = [cluster](const json::object& in) { return admit_role(in, cluster); };
    role.schema = loose_schema(cluster ? "Rules granted across the machine, or in a namespace "
                                         "by a RoleBinding."
                                       : "Rules granted in one namespace.");
    registry.add(std::move(role));

    KindInfo binding =
        cluster ? rbac_kind("ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", true)
                : rbac_kind("RoleBinding", "rolebindings", "rolebinding", false);
    binding.columns = {{"Role", "string", ".roleRef.name", "the role it grants", 0},
                       {"Age", "date", ".metadata.creationTimestamp", "", 0}};
    binding.immutable_fields = {".roleRef"};
    binding.admit = [cluster](const json::object& in) { return admit_binding(in, cluster); };
    binding.schema = loose_schema(cluster ? "Grants a ClusterRole to subjects everywhere."
                                          : "Grants a Role or ClusterRole to subjects in one "
                                            "namespace.");
    registry.add(std::move(binding));
  }
}

}  // namespace elafros
