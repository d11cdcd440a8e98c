// eventing.knative.dev/v1 Broker and Trigger in the kind registry, with Knative's field names,
// validation and printer columns, and their parsing for the event controller and dispatcher.

#include <cmath>

#include "elafros/eventing.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "strict_reader.hpp"

namespace elafros {

bool DeliverySpec::any() const {
  return retry || !backoff_policy.empty() || backoff_delay || timeout || retry_after_max ||
         !dead_letter_sink.empty() || !format.empty();
}

std::optional<std::chrono::milliseconds> parse_iso8601_duration(std::string_view s) {
  if (s.size() < 2 || s[0] != 'P') return std::nullopt;
  double total_ms = 0;
  bool in_time = false, any = false;
  std::size_t i = 1;
  while (i < s.size()) {
    if (s[i] == 'T') {
      if (in_time) return std::nullopt;
      in_time = true;
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i || j == s.size()) return std::nullopt;
    double n = 0;
    try {
      n = std::stod(std::string(s.substr(i, j - i)));
    } catch (...) {
      return std::nullopt;
    }
    char unit = s[j];
    double ms = 0;
    if (!in_time && unit == 'D')
      ms = 86400e3;
    else if (!in_time && unit == 'W')
      ms = 7 * 86400e3;
    else if (in_time && unit == 'H')
      ms = 3600e3;
    else if (in_time && unit == 'M')
      ms = 60e3;
    else if (in_time && unit == 'S')
      ms = 1e3;
    else
      return std::nullopt;
    total_ms += n * ms;
    any = true;
    i = j + 1;
  }
  if (!any) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::string format_iso8601_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return fmt::format("PT{}S", ms / 1000);
  return fmt::format("PT{}.{:03d}S", ms / 1000, static_cast<int>(ms % 1000));
}

std::chrono::milliseconds retry_delay(const DeliverySpec& d, int n) {
  if (!d.backoff_delay || n < 1) return std::chrono::milliseconds(0);
  if (d.backoff_policy == "linear") return *d.backoff_delay * n;
  return *d.backoff_delay * (std::int64_t{1} << std::min(n - 1, 30));
}

Result<Destination> destination_from_json(const json::value& v, const std::string& path) {
  std::optional<Error> error;
  Reader r(error);
  Destination d;
  if (const json::object* o = r.object(v, path, {"ref", "uri", "CACerts", "audience"})) {
    d.uri = r.string(*o, "uri", path).value_or("");
    if (const json::value* ref = o->if_contains("ref"); ref && !ref->is_null()) {
      std::string rp = path + ".ref";
      if (const json::object* ro =
              r.object(*ref, rp, {"apiVersion", "kind", "name", "namespace"})) {
        d.ref_api_version = r.string(*ro, "apiVersion", rp).value_or("");
        d.ref_kind = r.string(*ro, "kind", rp).value_or("");
        d.ref_name = r.string(*ro, "name", rp).value_or("");
        d.ref_namespace = r.string(*ro, "namespace", rp).value_or("");
        if (!error && (d.ref_kind.empty() || d.ref_name.empty()))
          r.invalid(rp,
                    "a ref needs kind and name (and apiVersion), e.g. {apiVersion: "
                    "serving.knative.dev/v1, kind: Service, name: hello}");
        if (!error &&
            !((d.ref_kind == "Service" &&
               (d.ref_api_version.empty() || d.ref_api_version == "serving.knative.dev/v1")) ||
              (d.ref_kind == "Broker" &&
               (d.ref_api_version.empty() || d.ref_api_version == "eventing.knative.dev/v1"))))
          r.invalid(rp, fmt::format("{} {} cannot receive events here; refer to a "
                                    "serving.knative.dev/v1 Service or an eventing.knative.dev/v1 "
                                    "Broker, or give a uri",
                                    d.ref_api_version, d.ref_kind));
      }
    }
    if (!error && d.empty()) r.invalid(path, "needs a ref or a uri");
    if (!error && !d.uri.empty() && d.ref_kind.empty() && d.uri.rfind("http://", 0) != 0 &&
        d.uri.rfind("https://", 0) != 0)
      r.invalid(path + ".uri", fmt::format("\"{}\" is not an absolute http:// or https:// URL "
                                           "(a relative one needs a ref)",
                                           d.uri));
  }
  if (error) return *error;
  return d;
}

Result<DeliverySpec> delivery_from_json(const json::value& v, const std::string& path) {
  std::optional<Error> error;
  Reader r(error);
  DeliverySpec d;
  const json::object* o = r.object(v, path,
                                   {"deadLetterSink", "retry", "backoffPolicy", "backoffDelay",
                                    "timeout", "retryAfterMax", "format"});
  if (!o) return *error;
  if (auto retry = r.integer(*o, "retry", path)) {
    if (*retry < 0 || *retry > 1000) r.invalid(path + ".retry", "must be between 0 and 1000");
    d.retry = static_cast<int>(*retry);
  }
  d.backoff_policy = r.string(*o, "backoffPolicy", path).value_or("");
  if (!error && !d.backoff_policy.empty() && d.backoff_policy != "linear" &&
      d.backoff_policy != "exponential")
    r.invalid(path + ".backoffPolicy",
              fmt::format("\"{}\" is not linear or exponential", d.backoff_policy));
  auto duration = [&](const char* key, std::optional<std::chrono::milliseconds>& out) {
    auto text = r.string(*o, key, path);
    if (!text || error) return;
    out = parse_iso8601_duration(*text);
    if (!out || out->count() < 0)
      r.invalid(path + "." + key,
                fmt::format("\"{}\" is not an ISO-8601 duration, e.g. PT0.2S or PT1M", *text));
  };
  duration("backoffDelay", d.backoff_delay);
  duration("timeout", d.timeout);
  duration("retryAfterMax", d.retry_after_max);
  if (!error && d.timeout && d.timeout->count() == 0)
    r.invalid(path + ".timeout", "must be longer than zero");
  d.format = r.string(*o, "format", path).value_or("");
  if (!error && !d.format.empty() && d.format != "json" && d.format != "binary")
    r.invalid(path + ".format", fmt::format("\"{}\" is not json or binary", d.format));
  if (error) return *error;
  if (const json::value* dls = o->if_contains("deadLetterSink"); dls && !dls->is_null()) {
    auto dest = destination_from_json(*dls, path + ".deadLetterSink");
    if (!dest) return dest.error();
    d.dead_letter_sink = std::move(*dest);
  }
  return d;
}

namespace {

const json::object* spec_of(const json::object& o) {
  const json::value* s = o.if_contains("spec");
  return s && s->is_object() ? &s->get_object() : nullptr;
}

Result<json::object> admit_broker(const json::object& in) {
  json::object out = in;
  out["apiVersion"] = "eventing.knative.dev/v1";
  out["kind"] = "Broker";
  out.erase("status");
  const json::value* spec = in.if_contains("spec");
  if (!spec || spec->is_null()) {
    out["spec"] = json::object{};
    return out;
  }
  std::optional<Error> error;
  Reader r(error);
  const json::object* o = r.object(*spec, "spec", {"config", "delivery"});
  if (!o) return *error;
  if (const json::value* d = o->if_contains("delivery"); d && !d->is_null())
    if (auto parsed = delivery_from_json(*d, "spec.delivery"); !parsed) return parsed.error();
  return out;
}

Result<json::object> admit_trigger(const json::object& in) {
  json::object out = in;
  out["apiVersion"] = "eventing.knative.dev/v1";
  out["kind"] = "Trigger";
  out.erase("status");
  const json::value* spec = in.if_contains("spec");
  if (!spec) return Error::invalid("spec: required (broker and subscriber)");
  std::optional<Error> error;
  Reader r(error);
  const json::object* o = r.object(
      *spec, "spec", {"broker", "brokerRef", "filter", "filters", "subscriber", "delivery"});
  if (!o) return *error;
  std::string broker = r.string(*o, "broker", "spec").value_or("");
  if (error) return *error;
  const json::value* ref = o->if_contains("brokerRef");
  if (ref && !ref->is_null()) {
    // Knative's cross-namespace-event-links: a broker of another namespace, which the writer
    // must be allowed to bind to there (checked by the API: triggers/bind).
    const json::object* ro =
        r.object(*ref, "spec.brokerRef", {"apiVersion", "kind", "name", "namespace"});
    if (!ro) return *error;
    std::string api = r.string(*ro, "apiVersion", "spec.brokerRef").value_or("");
    std::string kind = r.string(*ro, "kind", "spec.brokerRef").value_or("Broker");
    std::string name = r.string(*ro, "name", "spec.brokerRef").value_or("");
    (void)r.string(*ro, "namespace", "spec.brokerRef");
    if (error) return *error;
    if (kind != "Broker" || (!api.empty() && api != "eventing.knative.dev/v1"))
      return Error::invalid(fmt::format(
          "spec.brokerRef: {} {} is not a broker; refer to an eventing.knative.dev/v1 Broker", api,
          kind));
    if (name.empty()) return Error::invalid("spec.brokerRef.name: required (the broker's name)");
    if (!broker.empty() && broker != name)
      return Error::invalid(
          fmt::format("spec.broker \"{}\" and spec.brokerRef.name \"{}\" differ; give one of them",
                      broker, name));
  } else if (broker.empty()) {
    return Error::invalid(
        "spec.broker: required (the broker's name; or spec.brokerRef for one in another "
        "namespace)");
  }
  const json::value* sub = o->if_contains("subscriber");
  if (!sub || sub->is_null())
    return Error::invalid("spec.subscriber: required (a ref to a Service, and/or a uri)");
  if (auto d = destination_from_json(*sub, "spec.subscriber"); !d) return d.error();
  if (auto f = trigger_filter(*o); !f) return f.error();
  if (const json::value* d = o->if_contains("delivery"); d && !d->is_null())
    if (auto parsed = delivery_from_json(*d, "spec.delivery"); !parsed) return parsed.error();
  // Knative's defaulting: no filter matches everything.
  if (!o->if_contains("filter") && !o->if_contains("filters"))
    out["spec"].as_object()["filter"] = json::object{};
  return out;
}

}  // namespace

Result<Broker> broker_from_object(const json::object& o) {
  Broker b;
  b.namespace_ = meta_string(o, "namespace");
  b.name = meta_string(o, "name");
  b.uid = meta_string(o, "uid");
  const json::value labels = json_path_value(o, ".metadata.labels");
  if (labels.is_object())
    for (const auto& [k, v] : labels.get_object())
      if (v.is_string()) b.labels.emplace(std::string(k), std::string(v.get_string()));
  if (const json::object* spec = spec_of(o))
    if (const json::value* d = spec->if_contains("delivery"); d && !d->is_null()) {
      auto parsed = delivery_from_json(*d, "spec.delivery");
      if (!parsed) return parsed.error();
      b.delivery = std::move(*parsed);
    }
  return b;
}

Result<Trigger> trigger_from_object(const json::object& o) {
  Trigger t;
  t.namespace_ = meta_string(o, "namespace");
  t.name = meta_string(o, "name");
  t.uid = meta_string(o, "uid");
  t.generation = meta_int(o, "generation");
  const json::object* spec = spec_of(o);
  if (!spec) return Error::invalid("spec: required");
  t.broker_namespace = t.namespace_;
  if (const json::value* b = spec->if_contains("broker"); b && b->is_string())
    t.broker = std::string(b->get_string());
  if (const json::value* ref = spec->if_contains("brokerRef"); ref && ref->is_object()) {
    const json::object& ro = ref->get_object();
    if (const json::value* n = ro.if_contains("name"); n && n->is_string())
      t.broker = std::string(n->get_string());
    if (const json::value* n = ro.if_contains("namespace");
        n && n->is_string() && !n->get_string().empty())
      t.broker_namespace = std::string(n->get_string());
  }
  auto filter = trigger_filter(*spec);
  if (!filter) return filter.error();
  t.filter = std::move(*filter);
  if (const json::value* s = spec->if_contains("subscriber")) {
    auto d = destination_from_json(*s, "spec.subscriber");
    if (!d) return d.error();
    t.subscriber = std::move(*d);
  }
  if (const json::value* d = spec->if_contains("delivery"); d && !d->is_null()) {
    auto parsed = delivery_from_json(*d, "spec.delivery");
    if (!parsed) return parsed.error();
    t.delivery = std::move(*parsed);
  }
  return t;
}

const BrokerRoute* BrokerTable::find(const std::string& ns, const std::string& name) const {
  auto it = brokers.find(ns + "/" + name);
  return it == brokers.end() ? nullptr : &it->second;
}

const TriggerRoute* BrokerTable::find_trigger(const std::string& uid) const {
  for (const auto& [k, b] : brokers)
    for (const auto& t : b.triggers)
      if (t.trigger.uid == uid) return &t;
  return nullptr;
}

void register_eventing_kinds(KindRegistry& registry) {
  KindInfo broker;
  broker.group = kEventingGroup;
  broker.version = "v1";
  broker.kind = "Broker";
  broker.plural = "brokers";
  broker.singular = "broker";
  broker.categories = {"all", "knative", "eventing"};
  broker.has_status = true;
  broker.columns = {{"URL", "string", ".status.address.url", "Where events are sent", 0},
                    {"Ready", "string", kReadyColumn, "", 0},
                    {"Reason", "string", kReasonColumn, "", 0}};
  broker.admit = admit_broker;
  broker.schema = loose_schema(
      "A Broker receives CloudEvents at its address and keeps each durably until every Trigger "
      "that matches it has delivered it.");
  registry.add(std::move(broker));

  KindInfo trigger;
  trigger.group = kEventingGroup;
  trigger.version = "v1";
  trigger.kind = "Trigger";
  trigger.plural = "triggers";
  trigger.singular = "trigger";
  trigger.categories = {"all", "knative", "eventing"};
  trigger.has_status = true;
  trigger.immutable_fields = {".spec.broker", ".spec.brokerRef"};
  trigger.columns = {{"Broker", "string", ".spec.broker", "", 0},
                     {"Subscriber_URI", "string", ".status.subscriberUri", "", 0},
                     {"Ready", "string", kReadyColumn, "", 0},
                     {"Reason", "string", kReasonColumn, "", 0}};
  trigger.admit = admit_trigger;
  trigger.schema = loose_schema(
      "A Trigger delivers the events of its broker that pass its filter to its subscriber, "
      "retrying as its delivery says.");
  registry.add(std::move(trigger));
}

}  // namespace elafros
