// elafros auth can-i|whoami, elafros token create|list|revoke and elafros audit list|verify:
// what the caller may do, who elafrosd takes them for, the API tokens, and the audit log
// (docs/architecture.md, "Identities", "Authorization" and "Audit").

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "elafros/kind_registry.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

constexpr const char* kTokens = "/apis/elafros.dev/v1/tokens";

// elafrosd's own resources (group elafros.dev), beside the kinds.
const std::vector<std::string> kDaemonResources = {"images", "registries",  "tokens",
                                                   "usage",  "audit",       "instances",
                                                   "system", "kubeconfigs", "buildsources"};

// RESOURCE[.GROUP][/SUBRESOURCE] as kubectl takes it: a plural, singular or short name.
json::object resource_attributes(const std::string& verb, const std::string& what,
                                 const std::string& name, const std::string& ns) {
  std::string resource = what, subresource, group;
  bool grouped = false;
  if (auto slash = resource.find('/'); slash != std::string::npos) {
    subresource = resource.substr(slash + 1);
    resource = resource.substr(0, slash);
  }
  if (auto dot = resource.find('.'); dot != std::string::npos) {
    group = resource.substr(dot + 1);
    resource = resource.substr(0, dot);
    grouped = true;
  }
  const KindInfo* kind = nullptr;
  for (const auto& k : builtin_kinds().all()) {
    if (grouped && k.group != group) continue;
    bool named =
        k.plural == resource || k.singular == resource ||
        std::find(k.short_names.begin(), k.short_names.end(), resource) != k.short_names.end();
    if (named) {
      kind = &k;
      break;
    }
  }
  json::object ra{{"verb", verb}};
  if (kind) {
    ra["group"] = kind->group;
    ra["resource"] = kind->plural;
    if (kind->namespaced) ra["namespace"] = ns;
  } else if (std::find(kDaemonResources.begin(), kDaemonResources.end(), resource) !=
                 kDaemonResources.end() &&
             (!grouped || group == "elafros.dev")) {
    ra["group"] = "elafros.dev";
    ra["resource"] = resource;
    if (resource == "buildsources") ra["namespace"] = ns;
  } else if (resource == "*") {
    ra["group"] = grouped ? group : "*";
    ra["resource"] = "*";
    ra["namespace"] = ns;
  } else {
    throw std::runtime_error(fmt::format(
        "the server doesn't have a resource type \"{}\"; 'kubectl api-resources' lists them "
        "(and elafros.dev's: images, registries, tokens, usage, audit, instances, system)",
        what));
  }
  if (!subresource.empty()) ra["subresource"] = subresource;
  if (!name.empty()) ra["name"] = name;
  return ra;
}

int can_i(const ApiClient& api, const Globals& g, const std::string& verb, const std::string& what,
          const std::string& name) {
  json::object spec;
  if (!what.empty() && what[0] == '/')
    spec["nonResourceAttributes"] = json::object{{"verb", verb}, {"path", what}};
  else
    spec["resourceAttributes"] = resource_attributes(verb, what, name, g.ns);
  json::value body = json::object{{"apiVersion", "authorization.k8s.io/v1"},
                                  {"kind", "SelfSubjectAccessReview"},
                                  {"spec", std::move(spec)}};
  json::value out =
      api.call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", &body);
  bool allowed = field(out, "status.allowed") == "true";
  if (g.output != "table") {
    print(g, out);
  } else {
    std::cout << (allowed ? "yes" : "no") << "\n";
  }
  return allowed ? 0 : 1;
}

int whoami(const ApiClient& api, const Globals& g) {
  json::value body =
      json::object{{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}};
  json::value out = api.call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", &body);
  if (g.output != "table") return print(g, out), 0;
  std::string groups;
  for (const auto& gr : array_at(out, {"status", "userInfo", "groups"}))
    if (gr.is_string()) groups += (groups.empty() ? "" : ", ") + std::string(gr.get_string());
  std::vector<std::vector<std::string>> rows{{"ATTRIBUTE", "VALUE"},
                                             {"Username", field(out, "status.userInfo.username")},
                                             {"Groups", "[" + groups + "]"}};
  for (const auto& t : array_at(out, {"status", "userInfo", "extra", "elafros.dev/token"}))
    if (t.is_string()) rows.push_back({"Token", std::string(t.get_string())});
  for (const auto& v : array_at(out, {"status", "userInfo", "extra", "elafros.dev/via"}))
    if (v.is_string()) rows.push_back({"Via", std::string(v.get_string())});
  std::cout << table(rows);
  return 0;
}

// "30d", "12h", "90m", "45s", or a bare number of seconds.
std::int64_t parse_ttl(const std::string& ttl) {
  if (ttl.empty()) return 0;
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(ttl, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = ttl.substr(used);
  std::int64_t scale = unit.empty() || unit == "s" ? 1
                       : unit == "m"               ? 60
                       : unit == "h"               ? 3600
                       : unit == "d"               ? 86400
                                                   : 0;
  if (used == 0 || n <= 0 || scale == 0)
    throw std::runtime_error(fmt::format(
        "--ttl \"{}\" is not a duration: give a positive number with s, m, h or d, e.g. 30d", ttl));
  return static_cast<std::int64_t>(n) * scale;
}

struct TokenCreate {
  std::string name, user, role, cluster_role, ttl;
};

int token_create(const ApiClient& api, const Globals& g, const TokenCreate& t) {
  if (!t.role.empty() && !t.cluster_role.empty())
    throw std::runtime_error(
        "give --role (bound in the namespace -n names) or --cluster-role (bound everywhere), "
        "not both");
  std::int64_t ttl = parse_ttl(t.ttl);
  std::string user = t.user.empty() ? t.name : t.user;
  json::object ref{{"apiGroup", "rbac.authorization.k8s.io"}};
  json::array subjects{
      json::object{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", user}}};
  std::string binding = "token-" + t.name;
  // The binding first: a refused one (a role the caller may not grant) makes no token.
  if (!t.role.empty()) {
    auto role = api.request("GET", fmt::format("/apis/rbac.authorization.k8s.io/v1/namespaces/{}/"
                                               "roles/{}",
                                               g.ns, t.role));
    ref["kind"] = role.status == 200 ? "Role" : "ClusterRole";
    ref["name"] = t.role;
    json::value rb =
        json::object{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                     {"kind", "RoleBinding"},
                     {"metadata", json::object{{"name", binding}, {"namespace", g.ns}}},
                     {"roleRef", ref},
                     {"subjects", subjects}};
    api.call("POST",
             fmt::format("/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings", g.ns),
             &rb);
  } else if (!t.cluster_role.empty()) {
    ref["kind"] = "ClusterRole";
    ref["name"] = t.cluster_role;
    json::value crb = json::object{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                                   {"kind", "ClusterRoleBinding"},
                                   {"metadata", json::object{{"name", binding}}},
                                   {"roleRef", ref},
                                   {"subjects", subjects}};
    api.call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &crb);
  }
  json::value body = json::object{{"name", t.name}, {"user", user}, {"ttlSeconds", ttl}};
  json::value out = api.call("POST", kTokens, &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("Token '{}' created for user '{}'", t.name, user);
  if (!t.role.empty()) std::cout << fmt::format(", with role {} in namespace {}", t.role, g.ns);
  if (!t.cluster_role.empty()) std::cout << fmt::format(", with cluster role {}", t.cluster_role);
  std::cout << ".\nIt is shown only this once; keep it secret:\n\n" << field(out, "token") << "\n";
  return 0;
}

int token_list(const ApiClient& api, const Globals& g) {
  json::value list = api.call("GET", kTokens);
  if (g.output != "table") return print(g, list), 0;
  std::vector<std::vector<std::string>> rows{
      {"NAME", "ACCESSOR", "USER", "AGE", "EXPIRES", "LAST USED", "STATUS"}};
  for (const auto& t : array_at(list, {"items"})) {
    std::string status = !field(t, "revoked").empty() ? "Revoked" : "Active";
    std::string expires = field(t, "expires");
    rows.push_back({field(t, "name"), field(t, "accessor"), field(t, "user"),
                    age(field(t, "created")), expires.empty() ? "never" : expires,
                    field(t, "lastUsed").empty() ? "never" : age(field(t, "lastUsed")) + " ago",
                    status});
  }
  std::cout << table(rows);
  return 0;
}

struct AuditFilter {
  std::string user, verb, since;
};

std::string query_escape(const std::string& v) {
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string decision(const json::value& event) {
  const json::object* o = event.if_object();
  const json::value* a = o ? o->if_contains("annotations") : nullptr;
  const json::value* d =
      a && a->is_object() ? a->get_object().if_contains("authorization.k8s.io/decision") : nullptr;
  return d && d->is_string() ? std::string(d->get_string()) : "";
}

int audit_list(const ApiClient& api, const Globals& g, const AuditFilter& f) {
  std::string target = "/apis/elafros.dev/v1/audit";
  char sep = '?';
  for (const auto& [k, v] : {std::pair<const char*, const std::string&>{"user", f.user},
                             {"verb", f.verb},
                             {"since", f.since}})
    if (!v.empty()) {
      target += fmt::format("{}{}={}", sep, k, query_escape(v));
      sep = '&';
    }
  json::value list = api.call("GET", target);
  if (g.output != "table") return print(g, list), 0;
  std::vector<std::vector<std::string>> rows{
      {"TIME", "USER", "VERB", "RESOURCE", "NAMESPACE", "NAME", "CODE", "DECISION"}};
  for (const auto& e : array_at(list, {"items"})) {
    std::string resource = field(e, "objectRef.resource");
    if (!field(e, "objectRef.subresource").empty())
      resource += "/" + field(e, "objectRef.subresource");
    if (resource.empty()) resource = field(e, "requestURI");
    rows.push_back({field(e, "requestReceivedTimestamp").substr(0, 19) + "Z",
                    field(e, "user.username"), field(e, "verb"), resource,
                    field(e, "objectRef.namespace"), field(e, "objectRef.name"),
                    field(e, "responseStatus.code"), decision(e)});
  }
  std::cout << table(rows);
  return 0;
}

int audit_verify(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/audit/verify");
  bool ok = field(v, "ok") == "true";
  if (g.output != "table") {
    print(g, v);
  } else if (ok) {
    std::cout << fmt::format("The audit log is intact: {} records, chained to the head {}.\n",
                             field(v, "records"), field(v, "head"));
  } else {
    std::cout << fmt::format("The audit log was tampered with: {}\n", field(v, "problem"));
  }
  return ok ? 0 : 1;
}

}  // namespace

void add_auth_commands(CLI::App& app, Session& s) {
  auto* auth = app.add_subcommand("auth", "what you may do, and who elafrosd takes you for")
                   ->require_subcommand(1);
  auto verb = std::make_shared<std::string>();
  auto what = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* can = auth->add_subcommand("can-i", "whether you may do VERB on RESOURCE (exit 0: yes)");
  can->add_option("verb", *verb, "get, list, watch, create, update, patch, delete, …")->required();
  can->add_option("resource", *what,
                  "RESOURCE[.GROUP][/SUBRESOURCE] (services, builds/logs, images) or a path "
                  "(/metrics)")
      ->required();
  can->add_option("name", *name, "one object's name");
  can->callback([&s, verb, what, name] {
    s.run = [&s, verb, what, name](const ApiClient& api) {
      return can_i(api, s.g, *verb, *what, *name);
    };
  });
  auth->add_subcommand("whoami", "your user name and groups, as elafrosd sees them")
      ->callback([&s] { s.run = [&s](const ApiClient& api) { return whoami(api, s.g); }; });

  auto* audit =
      app.add_subcommand("audit", "read and check the audit log (auditors)")->require_subcommand(1);
  auto filter = std::make_shared<AuditFilter>();
  auto* list = audit->add_subcommand("list", "list audit records, oldest first");
  list->add_option("--user", filter->user, "only this user's (uid:1001, a token's user)");
  list->add_option("--verb", filter->verb, "only this verb's (create, delete, …)");
  list->add_option("--since", filter->since, "only since then: 24h, 30m, or an RFC 3339 time");
  list->callback([&s, filter] {
    s.run = [&s, filter](const ApiClient& api) { return audit_list(api, s.g, *filter); };
  });
  audit->add_subcommand("verify", "check the hash chain: exit 1 naming the first bad record")
      ->callback([&s] { s.run = [&s](const ApiClient& api) { return audit_verify(api, s.g); }; });

  auto* token = app.add_subcommand("token", "manage API tokens")->require_subcommand(1);
  auto t = std::make_shared<TokenCreate>();
  auto* create = token->add_subcommand("create", "create a token (shown once)");
  create->add_option("name", t->name, "the token's name")->required();
  create->add_option("--user", t->user, "the user it acts as (default: its name)");
  create->add_option("--role", t->role,
                     "bind this Role or ClusterRole to the user in the namespace -n names");
  create->add_option("--cluster-role", t->cluster_role,
                     "bind this ClusterRole to the user everywhere");
  create->add_option("--ttl", t->ttl, "expire after this long: 30d, 12h, 90m (default: never)");
  create->callback(
      [&s, t] { s.run = [&s, t](const ApiClient& api) { return token_create(api, s.g, *t); }; });
  token->add_subcommand("list", "list tokens (never their secrets)")->callback([&s] {
    s.run = [&s](const ApiClient& api) { return token_list(api, s.g); };
  });
  auto* revoke = token->add_subcommand("revoke", "revoke a token: it stops working at once");
  revoke->add_option("name", *name, "the token's name or accessor")->required();
  revoke->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) {
      json::value out = api.call("DELETE", std::string(kTokens) + "/" + *name);
      if (s.g.output != "table") return print(s.g, out), 0;
      std::cout << fmt::format("Token '{}' ({}) revoked.\n", field(out, "name"),
                               field(out, "accessor"));
      return 0;
    };
  });
}

}  // namespace elafros::cli
