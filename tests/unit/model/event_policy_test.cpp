// EventPolicy admission and reading, the ingress's verdicts under each default-authorization-mode,
// cross-namespace Triggers (spec.brokerRef), and the daemon's sender credentials.
#include "elafros/event_policy.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "elafros/eventing.hpp"
#include "elafros/kind_registry.hpp"
#include "events/event_credentials.hpp"

using namespace elafros;
namespace json = boost::json;

namespace {

const KindInfo& policy_kind() {
  const KindInfo* k = builtin_kinds().find_kind("eventing.knative.dev", "EventPolicy");
  REQUIRE(k);
  return *k;
}

Result<json::object> admit(const std::string& spec) {
  json::object o{{"metadata", json::object{{"name", "p"}, {"namespace", "team-a"}}},
                 {"spec", json::parse(spec)}};
  return policy_kind().admit(o);
}

std::shared_ptr<const EventPolicy> policy(const std::string& spec) {
  auto admitted = admit(spec);
  REQUIRE(admitted);
  auto p = event_policy_from_object(*admitted);
  REQUIRE(p);
  return std::make_shared<const EventPolicy>(std::move(*p));
}

CloudEvent event(const std::string& type) {
  CloudEvent e;
  e.attributes = {{"id", "1"}, {"source", "/s"}, {"specversion", "1.0"}, {"type", type}};
  return e;
}

Publisher user(const std::string& name, const std::string& ns) {
  return Publisher{name, ns, "127.0.0.1"};
}

}  // namespace

TEST_CASE("an EventPolicy is admitted with Knative's fields, refs resolved to subjects") {
  auto p =
      policy(R"({"to":[{"ref":{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","name":"b"}},
                            {"selector":{"matchLabels":{"app":"x"}}}],
                      "from":[{"ref":{"apiVersion":"sources.knative.dev/v1","kind":"PingSource","name":"tick","namespace":"team-b"}},
                              {"ref":{"kind":"Trigger","name":"fwd"}},
                              {"sub":"ci-*"}],
                      "filters":[{"exact":{"type":"com.example.ok"}}]})");
  REQUIRE(p->from.size() == 3);
  CHECK(p->from[0] == "system:eventing:pingsource:team-b:tick");
  CHECK(p->from[1] == "system:eventing:trigger:team-a:fwd");  // the policy's namespace
  CHECK(p->from[2] == "ci-*");
  CHECK(p->has_filter);
  CHECK(p->applies_to("b", {}));
  CHECK(p->applies_to("other", {{"app", "x"}}));
  CHECK_FALSE(p->applies_to("other", {{"app", "y"}}));
  CHECK(policy(R"({"from":[{"sub":"a"}]})")->applies_to("anything", {}));  // empty to: all
}

TEST_CASE("bad EventPolicies are refused, naming the field") {
  auto refused = [](const std::string& spec, const std::string& says) {
    auto r = admit(spec);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(says));
  };
  refused(R"({"to":[{"ref":{"kind":"Broker","name":"b"}}]})", "spec.from: needs at least one");
  refused(R"({"from":[{"sub":"a*b"}]})", "spec.from[0].sub: \"a*b\" is not a subject");
  refused(R"({"from":[{"sub":"a","ref":{"kind":"PingSource","name":"p"}}]})",
          "spec.from[0]: needs exactly one of ref and sub");
  refused(R"({"from":[{"ref":{"kind":"ContainerSource","name":"c"}}]})",
          "spec.from[0].ref:  ContainerSource does not send with an identity of its own");
  refused(
      R"({"to":[{"ref":{"apiVersion":"messaging.knative.dev/v1","kind":"Channel","name":"c"}}],"from":[{"sub":"a"}]})",
      "spec.to[0].ref: messaging.knative.dev/v1 Channel takes no policy here");
  refused(R"({"to":[{"selector":{}}],"from":[{"sub":"a"}]})",
          "spec.to[0].selector: needs matchLabels or matchExpressions");
  refused(R"({"from":[{"sub":"a"}],"filters":[{"exact":{"Type":"x"}}]})", "filters");
  refused(R"({"from":[{"sub":"a"}],"froms":[]})", "spec.froms: unknown field");
}

TEST_CASE("subject patterns match exactly, or by prefix with a trailing *") {
  CHECK(subject_pattern_matches("ci", "ci"));
  CHECK_FALSE(subject_pattern_matches("ci", "ci-bot"));
  CHECK(subject_pattern_matches("ci-*", "ci-bot"));
  CHECK(subject_pattern_matches("ci-*", "ci-"));
  CHECK_FALSE(subject_pattern_matches("ci-*", "cd-bot"));
  CHECK(subject_pattern_matches("*", "anyone"));
}

TEST_CASE("with policies, a sender one names passes with events its filters pass") {
  EventPolicies ps{policy(R"({"from":[{"sub":"ci-*"}],"filters":[{"exact":{"type":"ok"}}]})"),
                   policy(R"({"from":[{"sub":"ops"}]})")};
  auto verdict = [&](const Publisher& who, const std::string& type) {
    return evaluate_publish(ps, AuthorizationMode::kAllowAll, who, "team-a", "b", event(type));
  };
  CHECK(verdict(user("ci-bot", "team-a"), "ok").allowed());
  CHECK(verdict(user("ops", "team-b"), "anything").allowed());  // no filter, any namespace
  auto filtered = verdict(user("ci-bot", "team-a"), "other");
  CHECK(filtered.outcome == PublishVerdict::Outcome::kForbidden);
  CHECK_THAT(filtered.message,
             Catch::Contains("only events that pass its filters (type \"other\""));
  auto unnamed = verdict(user("eve", "team-a"), "ok");
  CHECK(unnamed.outcome == PublishVerdict::Outcome::kForbidden);
  CHECK_THAT(unnamed.message, Catch::Contains("\"eve\" may not send events to broker \"b\""));
  auto anonymous = verdict(Publisher{"", "", "127.0.0.1"}, "ok");
  CHECK(anonymous.outcome == PublishVerdict::Outcome::kUnauthenticated);
  CHECK_THAT(anonymous.message, Catch::Contains("carries no token"));
}

TEST_CASE("without policies, default-authorization-mode decides") {
  const EventPolicies none;
  auto verdict = [&](AuthorizationMode mode, const Publisher& who) {
    return evaluate_publish(none, mode, who, "team-a", "b", event("t"));
  };
  Publisher same = user("x", "team-a"),
            other = user("system:eventing:pingsource:team-b:p", "team-b");
  Publisher anonymous{"", "", "127.0.0.1"};
  CHECK(verdict(AuthorizationMode::kAllowSameNamespace, same).allowed());
  CHECK(verdict(AuthorizationMode::kAllowSameNamespace, anonymous).allowed());
  auto cross = verdict(AuthorizationMode::kAllowSameNamespace, other);
  CHECK(cross.outcome == PublishVerdict::Outcome::kForbidden);
  CHECK_THAT(cross.message, Catch::Contains("of namespace \"team-b\""));
  CHECK(verdict(AuthorizationMode::kAllowAll, other).allowed());
  for (const Publisher& who : {same, other, anonymous}) {
    auto denied = verdict(AuthorizationMode::kDenyAll, who);
    CHECK(denied.outcome == PublishVerdict::Outcome::kForbidden);
    CHECK_THAT(denied.message, Catch::Contains("default-authorization-mode is deny-all"));
  }
  CHECK(authorization_mode_from("deny-all") == AuthorizationMode::kDenyAll);
  CHECK_FALSE(authorization_mode_from("deny"));
}

TEST_CASE("a Trigger may name another namespace's broker with spec.brokerRef") {
  const KindInfo* k = builtin_kinds().find_kind("eventing.knative.dev", "Trigger");
  REQUIRE(k);
  auto admitted = k->admit(json::parse(R"({"metadata":{"name":"t","namespace":"team-b"},
      "spec":{"brokerRef":{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","name":"b","namespace":"team-a"},
              "subscriber":{"uri":"http://x/"}}})")
                               .as_object());
  REQUIRE(admitted);
  auto t = trigger_from_object(*admitted);
  REQUIRE(t);
  CHECK(t->broker == "b");
  CHECK(t->broker_namespace == "team-a");
  auto own = trigger_from_object(json::parse(R"({"metadata":{"name":"t","namespace":"team-b"},
      "spec":{"broker":"b","subscriber":{"uri":"http://x/"}}})")
                                     .as_object());
  REQUIRE(own);
  CHECK(own->broker_namespace == "team-b");
  auto bad = k->admit(json::parse(R"({"spec":{"brokerRef":{"kind":"Channel","name":"c"},
      "subscriber":{"uri":"http://x/"}}})")
                          .as_object());
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("spec.brokerRef:  Channel is not a broker"));
  auto both = k->admit(json::parse(R"({"spec":{"broker":"a","brokerRef":{"name":"b"},
      "subscriber":{"uri":"http://x/"}}})")
                           .as_object());
  REQUIRE_FALSE(both);
  CHECK_THAT(both.error().message, Catch::Contains("differ; give one of them"));
}

TEST_CASE("a sender's credential is valid for the broker it was made for only") {
  EventCredentials c("http://broker-ingress.localhost:8080");
  std::string a = c.authorization("http://broker-ingress.localhost:8080/team-a/b", "PingSource",
                                  "team-b", "tick");
  REQUIRE(a.rfind("Bearer elfev:pingsource:team-b:tick:", 0) == 0);
  CHECK(EventCredentials::is_credential(a));
  CHECK_FALSE(EventCredentials::is_credential("Bearer elf_abc_def"));
  auto who = c.verify(a, "team-a", "b");
  REQUIRE(who);
  CHECK(who->subject == "system:eventing:pingsource:team-b:tick");
  CHECK(who->ns == "team-b");
  CHECK_FALSE(c.verify(a, "team-a", "other"));  // another broker
  std::string forged = a;
  forged.replace(forged.find("tick"), 4, "tock");
  CHECK_FALSE(c.verify(forged, "team-a", "b"));
  EventCredentials other("http://broker-ingress.localhost:8080");  // another run's key
  CHECK_FALSE(other.verify(a, "team-a", "b"));
  // Nothing for anything but a broker's URL.
  CHECK(c.authorization("http://hello.default.localhost:8080/", "PingSource", "a", "b").empty());
  CHECK(
      c.authorization("http://broker-ingress.localhost:8080/team-a", "Trigger", "a", "b").empty());
  CHECK(c.authorization("http://broker-ingress.localhost:80800/a/b", "Trigger", "a", "b").empty());
}
