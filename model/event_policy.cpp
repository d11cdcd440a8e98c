// eventing.knative.dev/v1alpha1 EventPolicy in the kind registry (Knative's field names), its
// reading for the event controller, and the ingress's decision on one event.

#include "elafros/event_policy.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>

#include "elafros/eventing.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "strict_reader.hpp"

namespace elafros {

std::optional<AuthorizationMode> authorization_mode_from(std::string_view text) {
  if (text == "allow-same-namespace") return AuthorizationMode::kAllowSameNamespace;
  if (text == "allow-all") return AuthorizationMode::kAllowAll;
  if (text == "deny-all") return AuthorizationMode::kDenyAll;
  return std::nullopt;
}

const char* authorization_mode_name(AuthorizationMode mode) {
  switch (mode) {
    case AuthorizationMode::kAllowAll:
      return "allow-all";
    case AuthorizationMode::kDenyAll:
      return "deny-all";
    case AuthorizationMode::kAllowSameNamespace:
      break;
  }
  return "allow-same-namespace";
}

std::string eventing_subject(std::string_view kind, std::string_view ns, std::string_view name) {
  return fmt::format("system:eventing:{}:{}:{}", ascii_lower(kind), ns, name);
}

std::string Publisher::describe() const {
  if (anonymous()) return fmt::format("an anonymous sender ({})", via);
  return fmt::format("\"{}\"", subject);
}

bool subject_pattern_matches(std::string_view pattern, std::string_view subject) {
  if (!pattern.empty() && pattern.back() == '*')
    return subject.substr(0, pattern.size() - 1) == pattern.substr(0, pattern.size() - 1);
  return pattern == subject;
}

bool EventPolicy::applies_to(const std::string& broker,
                             const std::map<std::string, std::string>& labels) const {
  if (to.empty()) return true;
  for (const auto& t : to)
    if (t.name.empty() ? t.selector.matches(labels) : t.name == broker) return true;
  return false;
}

namespace {

// The senders a from.ref may name: the ones the daemon sends for, with their subjects.
constexpr const char* kSenderKinds =
    "PingSource or ApiServerSource (sources.knative.dev/v1), "
    "or Trigger (eventing.knative.dev/v1)";
bool sender_kind(const std::string& api_version, const std::string& kind) {
  if (kind == "PingSource" || kind == "ApiServerSource")
    return api_version.empty() || api_version == "sources.knative.dev/v1";
  if (kind == "Trigger") return api_version.empty() || api_version == "eventing.knative.dev/v1";
  return false;
}

bool broker_kind(const std::string& api_version, const std::string& kind) {
  return (kind.empty() || kind == "Broker") &&
         (api_version.empty() || api_version == "eventing.knative.dev/v1");
}

// Reads spec (admission and the controller alike): kInvalidArgument naming the field.
Result<EventPolicy> read_spec(const json::value& spec, const std::string& ns) {
  std::optional<Error> error;
  Reader r(error);
  EventPolicy p;
  p.namespace_ = ns;
  const json::object* o = r.object(spec, "spec", {"to", "from", "filters"});
  if (!o) return *error;
  if (const json::array* to = r.array(*o, "to", "spec")) {
    for (std::size_t i = 0; i < to->size() && !error; ++i) {
      std::string path = fmt::format("spec.to[{}]", i);
      const json::object* t = r.object((*to)[i], path, {"ref", "selector"});
      if (!t) break;
      const json::value* ref = t->if_contains("ref");
      const json::value* selector = t->if_contains("selector");
      if ((ref != nullptr) == (selector != nullptr)) {
        r.invalid(path, "needs exactly one of ref and selector");
        break;
      }
      EventPolicyTarget target;
      if (ref) {
        const json::object* ro = r.object(*ref, path + ".ref", {"apiVersion", "kind", "name"});
        if (!ro) break;
        std::string api = r.string(*ro, "apiVersion", path + ".ref").value_or("");
        std::string kind = r.string(*ro, "kind", path + ".ref").value_or("");
        target.name = r.string(*ro, "name", path + ".ref").value_or("");
        if (error) break;
        if (kind.empty() || target.name.empty()) {
          r.invalid(path + ".ref",
                    "needs kind and name, e.g. {apiVersion: "
                    "eventing.knative.dev/v1, kind: Broker, name: default}");
          break;
        }
        if (!broker_kind(api, kind)) {
          r.invalid(path + ".ref",
                    fmt::format("{} {} takes no policy here: only an eventing.knative.dev/v1 "
                                "Broker's ingress checks who sends",
                                api, kind));
          break;
        }
      } else {
        const json::object* so =
            r.object(*selector, path + ".selector",
                     {"apiVersion", "kind", "matchLabels", "matchExpressions"});
        if (!so) break;
        std::string api = r.string(*so, "apiVersion", path + ".selector").value_or("");
        std::string kind = r.string(*so, "kind", path + ".selector").value_or("");
        if (error) break;
        if (!broker_kind(api, kind)) {
          r.invalid(path + ".selector",
                    fmt::format("{} {} takes no policy here: only an eventing.knative.dev/v1 "
                                "Broker's ingress checks who sends",
                                api, kind));
          break;
        }
        json::object labels;
        if (const json::value* v = so->if_contains("matchLabels")) labels["matchLabels"] = *v;
        if (const json::value* v = so->if_contains("matchExpressions"))
          labels["matchExpressions"] = *v;
        if (labels.empty()) {
          r.invalid(path + ".selector", "needs matchLabels or matchExpressions");
          break;
        }
        auto parsed = label_selector_from_json(r, error, labels, path + ".selector");
        if (!parsed) return parsed.error();
        target.selector = std::move(*parsed);
      }
      p.to.push_back(std::move(target));
    }
  }
  const json::array* from = r.array(*o, "from", "spec");
  if (!error && (!from || from->empty()))
    r.invalid("spec.from",
              "needs at least one sender (a ref to a source or a trigger, or a sub naming an "
              "identity, e.g. {sub: \"ci-*\"})");
  for (std::size_t i = 0; from && i < from->size() && !error; ++i) {
    std::string path = fmt::format("spec.from[{}]", i);
    const json::object* f = r.object((*from)[i], path, {"ref", "sub"});
    if (!f) break;
    const json::value* ref = f->if_contains("ref");
    const json::value* sub = f->if_contains("sub");
    if ((ref != nullptr) == (sub != nullptr)) {
      r.invalid(path, "needs exactly one of ref and sub");
      break;
    }
    if (sub) {
      std::string pattern = r.string(*f, "sub", path).value_or("");
      if (error) break;
      auto star = pattern.find('*');
      if (pattern.empty() || (star != std::string::npos && star + 1 != pattern.size())) {
        r.invalid(path + ".sub",
                  fmt::format("\"{}\" is not a subject: an identity (a token's user), with at "
                              "most one '*', at the end",
                              pattern));
        break;
      }
      p.from.push_back(std::move(pattern));
      continue;
    }
    const json::object* ro =
        r.object(*ref, path + ".ref", {"apiVersion", "kind", "name", "namespace"});
    if (!ro) break;
    std::string api = r.string(*ro, "apiVersion", path + ".ref").value_or("");
    std::string kind = r.string(*ro, "kind", path + ".ref").value_or("");
    std::string name = r.string(*ro, "name", path + ".ref").value_or("");
    std::string from_ns = r.string(*ro, "namespace", path + ".ref").value_or(ns);
    if (error) break;
    if (kind.empty() || name.empty()) {
      r.invalid(path + ".ref", fmt::format("needs kind and name, of a {}", kSenderKinds));
      break;
    }
    if (!sender_kind(api, kind)) {
      r.invalid(path + ".ref",
                fmt::format("{} {} does not send with an identity of its own; refer to a {}, or "
                            "give its app a token and name the token's user in sub",
                            api, kind, kSenderKinds));
      break;
    }
    p.from.push_back(eventing_subject(kind, from_ns, name));
  }
  if (error) return *error;
  if (const json::value* filters = o->if_contains("filters"); filters && !filters->is_null()) {
    json::object as_trigger{{"filters", *filters}};
    auto f = trigger_filter(as_trigger);
    if (!f) return f.error();
    p.filter = std::move(*f);
    p.has_filter = true;
  }
  return p;
}

Result<json::object> admit_event_policy(const json::object& in) {
  json::object out = in;
  out["apiVersion"] = "eventing.knative.dev/v1alpha1";
  out["kind"] = "EventPolicy";
  out.erase("status");
  const json::value* spec = in.if_contains("spec");
  if (!spec || spec->is_null())
    return Error::invalid("spec: required (from, and optionally to and filters)");
  if (auto p = read_spec(*spec, meta_string(in, "namespace")); !p) return p.error();
  return out;
}

}  // namespace

Result<EventPolicy> event_policy_from_object(const json::object& o) {
  const json::value* spec = o.if_contains("spec");
  if (!spec) return Error::invalid("spec: required");
  auto p = read_spec(*spec, meta_string(o, "namespace"));
  if (p) p->name = meta_string(o, "name");
  return p;
}

PublishVerdict evaluate_publish(const EventPolicies& policies, AuthorizationMode mode,
                                const Publisher& who, const std::string& ns,
                                const std::string& broker, const CloudEvent& event) {
  using Outcome = PublishVerdict::Outcome;
  const std::string target = fmt::format("broker \"{}\" in namespace \"{}\"", broker, ns);
  if (!policies.empty()) {
    std::string names;
    for (const auto& p : policies) names += (names.empty() ? "" : ", ") + p->name;
    if (who.anonymous())
      return {Outcome::kUnauthenticated,
              fmt::format("{} takes events only from the senders its EventPolicies ({}) name, "
                          "and this request carries no token: send one (Authorization: Bearer "
                          "elf_…) whose user a policy allows",
                          target, names)};
    const EventPolicy* sender_only = nullptr;
    for (const auto& p : policies) {
      bool from = false;
      for (const auto& pattern : p->from)
        from = from || subject_pattern_matches(pattern, who.subject);
      if (!from) continue;
      if (!p->has_filter || filter_matches(p->filter, event)) return {};
      sender_only = p.get();
    }
    if (sender_only)
      return {Outcome::kForbidden,
              fmt::format("{} may not send this event to {}: EventPolicy \"{}\" allows the "
                          "sender only events that pass its filters (type \"{}\", source \"{}\")",
                          who.describe(), target, sender_only->name, event.get("type"),
                          event.get("source"))};
    return {Outcome::kForbidden,
            fmt::format("{} may not send events to {}: no EventPolicy of it ({}) names the "
                        "sender; add it to one's spec.from",
                        who.describe(), target, names)};
  }
  switch (mode) {
    case AuthorizationMode::kAllowAll:
      return {};
    case AuthorizationMode::kDenyAll:
      return {Outcome::kForbidden,
              fmt::format("{} may not send events to {}: no EventPolicy selects it, and "
                          "default-authorization-mode is deny-all; create an EventPolicy that "
                          "allows its senders",
                          who.describe(), target)};
    case AuthorizationMode::kAllowSameNamespace:
      break;
  }
  // An anonymous sender got here by broker-anonymous-publish: it is of this machine, and so of
  // every namespace.
  if (who.anonymous() || who.ns == ns) return {};
  return {Outcome::kForbidden,
          fmt::format("{} (of namespace \"{}\") may not send events to {}: it takes events from "
                      "its own namespace only (default-authorization-mode "
                      "allow-same-namespace); create an EventPolicy there whose spec.from "
                      "names the sender",
                      who.describe(), who.ns, target)};
}

void register_event_policy_kind(KindRegistry& registry) {
  KindInfo k;
  k.group = kEventingGroup;
  k.version = "v1alpha1";
  k.kind = "EventPolicy";
  k.plural = "eventpolicies";
  k.singular = "eventpolicy";
  k.categories = {"all", "knative", "eventing"};
  k.has_status = true;
  k.columns = {{"Ready", "string", kReadyColumn, "", 0},
               {"Reason", "string", kReasonColumn, "", 0}};
  k.admit = admit_event_policy;
  k.schema = loose_schema(
      "An EventPolicy says who may send events to the Brokers it selects (spec.to; all of the "
      "namespace's when empty): the identities and senders of spec.from, with events that pass "
      "spec.filters.");
  registry.add(std::move(k));
}

}  // namespace elafros
