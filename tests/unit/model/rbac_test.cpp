// RBAC's rules (matching, escalation coverage), the four kinds' admission, and the built-in
// roles' meanings: view reads but not secrets, edit writes but not roles, admin grants roles.
#include "elafros/rbac.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"

using namespace elafros;
namespace json = boost::json;

namespace {

RequestAttributes req(std::string verb, std::string group, std::string resource,
                      std::string ns = "default", std::string name = "", std::string sub = "") {
  return {std::move(verb), true,          std::move(group), std::move(resource),
          std::move(sub),  std::move(ns), std::move(name),  ""};
}

std::vector<PolicyRule> builtin(const std::string& name) {
  for (const auto& o : builtin_rbac_objects())
    if (o.at("kind") == "ClusterRole" && meta_string(o, "name") == name) return rules_of(o);
  FAIL("no built-in role " << name);
  return {};
}

bool allows(const std::vector<PolicyRule>& rules, const RequestAttributes& r) {
  for (const auto& rule : rules)
    if (rule_allows(rule, r)) return true;
  return false;
}

}  // namespace

TEST_CASE("a rule matches verbs, groups, resources, subresources and names") {
  PolicyRule r{{"get", "list"}, {"serving.knative.dev"}, {"services"}, {}, {}};
  CHECK(rule_allows(r, req("get", "serving.knative.dev", "services")));
  CHECK_FALSE(rule_allows(r, req("delete", "serving.knative.dev", "services")));
  CHECK_FALSE(rule_allows(r, req("get", "", "services")));
  CHECK_FALSE(
      rule_allows(r, req("get", "serving.knative.dev", "services", "default", "a", "logs")));
  PolicyRule sub{{"get"}, {"serving.knative.dev"}, {"services/*"}, {}, {}};
  CHECK(rule_allows(sub, req("get", "serving.knative.dev", "services", "default", "a", "logs")));
  PolicyRule named{{"*"}, {"*"}, {"*"}, {"one"}, {}};
  CHECK(rule_allows(named, req("delete", "x", "y", "ns", "one")));
  CHECK_FALSE(rule_allows(named, req("delete", "x", "y", "ns", "two")));
  CHECK_FALSE(rule_allows(named, req("list", "x", "y", "ns", "")));
  PolicyRule urls{{"get"}, {}, {}, {}, {"/metrics", "/apis/*"}};
  RequestAttributes m{"get", false, "", "", "", "", "", "/metrics"};
  CHECK(rule_allows(urls, m));
  m.path = "/apis/serving.knative.dev";
  CHECK(rule_allows(urls, m));
  m.path = "/version";
  CHECK_FALSE(rule_allows(urls, m));
}

TEST_CASE("escalation: held rules must cover every grant, and wildcards only by wildcards") {
  std::vector<PolicyRule> held{{{"get", "list"}, {""}, {"secrets"}, {}, {}},
                               {{"*"}, {"serving.knative.dev"}, {"services"}, {}, {}}};
  CHECK_FALSE(uncovered(held, {{{"get"}, {""}, {"secrets"}, {}, {}}}));
  CHECK_FALSE(
      uncovered(held, {{{"delete", "create"}, {"serving.knative.dev"}, {"services"}, {}, {}}}));
  auto missing = uncovered(held, {{{"get", "delete"}, {""}, {"secrets"}, {}, {}}});
  REQUIRE(missing);
  CHECK(*missing == "delete secrets");
  missing = uncovered(held, {{{"get"}, {"*"}, {"secrets"}, {}, {}}});
  REQUIRE(missing);
  CHECK(*missing == "get secrets in every API group");
  // A name-restricted grant covers only that name.
  std::vector<PolicyRule> one{{{"get"}, {""}, {"secrets"}, {"a"}, {}}};
  CHECK_FALSE(uncovered(one, {{{"get"}, {""}, {"secrets"}, {"a"}, {}}}));
  CHECK(uncovered(one, {{{"get"}, {""}, {"secrets"}, {}, {}}}));
}

TEST_CASE("the built-in roles mean what Kubernetes' do, with elafros's kinds") {
  auto view = builtin("view"), edit = builtin("edit"), admin = builtin("admin");
  auto auditor = builtin("auditor"), billing = builtin("billing");
  CHECK(allows(view, req("list", "serving.knative.dev", "services")));
  CHECK(allows(view, req("watch", "eventing.knative.dev", "triggers")));
  CHECK(allows(view, req("get", "serving.knative.dev", "services", "default", "a", "logs")));
  CHECK_FALSE(allows(view, req("create", "serving.knative.dev", "services")));
  CHECK_FALSE(allows(view, req("list", kRbacGroup, "rolebindings")));
  CHECK(allows(edit, req("delete", "build.knative.dev", "builds")));
  CHECK(allows(edit, req("create", "eventing.knative.dev", "brokers", "default", "b", "publish")));
  CHECK_FALSE(allows(edit, req("create", kRbacGroup, "rolebindings")));
  CHECK(allows(admin, req("create", kRbacGroup, "rolebindings")));
  CHECK_FALSE(allows(admin, req("escalate", kRbacGroup, "roles")));
  CHECK(allows(auditor, req("list", "serving.knative.dev", "revisions")));
  CHECK(allows(auditor, req("list", "elafros.dev", "audit", "")));
  CHECK_FALSE(allows(auditor, req("create", "serving.knative.dev", "services")));
  CHECK(allows(billing, req("list", "elafros.dev", "usage", "")));
  CHECK_FALSE(allows(billing, req("list", "serving.knative.dev", "services")));
  // Nobody below cluster-admin may grant cluster-admin.
  CHECK(uncovered(admin, builtin("cluster-admin")));
  CHECK_FALSE(uncovered(admin, edit));
  CHECK_FALSE(uncovered(edit, view));
}

TEST_CASE("RBAC kinds refuse a bad rule or binding, naming the field") {
  const KindInfo* role = builtin_kinds().find_kind(kRbacGroup, "Role");
  const KindInfo* binding = builtin_kinds().find_kind(kRbacGroup, "ClusterRoleBinding");
  REQUIRE(role);
  REQUIRE(binding);
  auto bad_verb = role->admit(json::parse(R"({"metadata":{"name":"r","namespace":"d"},
      "rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get","frob"]}]})")
                                  .as_object());
  REQUIRE_FALSE(bad_verb);
  CHECK_THAT(bad_verb.error().message,
             Catch::StartsWith("rules[0].verbs[1]: unknown verb \"frob\""));
  auto no_group = role->admit(json::parse(R"({"metadata":{"name":"r"},
      "rules":[{"resources":["secrets"],"verbs":["get"]}]})")
                                  .as_object());
  REQUIRE_FALSE(no_group);
  CHECK_THAT(no_group.error().message, Catch::StartsWith("rules[0].apiGroups:"));
  auto urls = role->admit(json::parse(R"({"metadata":{"name":"r"},
      "rules":[{"nonResourceURLs":["/metrics"],"verbs":["get"]}]})")
                              .as_object());
  REQUIRE_FALSE(urls);
  CHECK_THAT(urls.error().message, Catch::Contains("only a ClusterRole"));
  auto wrong_ref = binding->admit(json::parse(R"({"metadata":{"name":"b"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"x"}})")
                                      .as_object());
  REQUIRE_FALSE(wrong_ref);
  CHECK_THAT(wrong_ref.error().message, Catch::StartsWith("roleRef.kind:"));
  auto subject = binding->admit(json::parse(R"({"metadata":{"name":"b"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
      "subjects":[{"kind":"Robot","name":"r2"}]})")
                                    .as_object());
  REQUIRE_FALSE(subject);
  CHECK_THAT(subject.error().message, Catch::StartsWith("subjects[0].kind:"));
  auto ok = binding->admit(json::parse(R"({"metadata":{"name":"b"},
      "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
      "subjects":[{"kind":"User","name":"uid:1001"}]})")
                               .as_object());
  REQUIRE(ok);
  CHECK(ok->at("subjects").at(0).at("apiGroup") == kRbacGroup);
  Identity who{"uid:1001", {kAuthenticatedGroup}, "", ""};
  CHECK(subject_matches(subjects_of(*ok).at(0), who));
  who.user = "uid:1002";
  CHECK_FALSE(subject_matches(subjects_of(*ok).at(0), who));
}
