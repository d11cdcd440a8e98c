// sources.knative.dev/v1 PingSource, SinkBinding, ContainerSource and ApiServerSource, and
// eventing.knative.dev/v1beta2 EventType, in the kind registry: Knative's field names,
// validation by path and printer columns, and their parsing for the source controller.

#include <boost/json.hpp>

#include "elafros/base64.hpp"
#include "elafros/cloudevent.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/sources.hpp"
#include "strict_reader.hpp"

namespace elafros {

// A Kubernetes LabelSelector object ({matchLabels, matchExpressions}) as selector text.
Result<LabelSelector> label_selector_from_json(Reader& r, std::optional<Error>& error,
                                               const json::value& v, const std::string& path) {
  const json::object* o = r.object(v, path, {"matchLabels", "matchExpressions"});
  if (!o) return *error;
  std::string text;
  auto add = [&text](const std::string& req) { text += (text.empty() ? "" : ",") + req; };
  for (const auto& [k, val] : r.string_map(*o, "matchLabels", path)) add(k + "=" + val);
  if (const json::array* exprs = r.array(*o, "matchExpressions", path)) {
    for (std::size_t i = 0; i < exprs->size() && !error; ++i) {
      std::string p = fmt::format("{}.matchExpressions[{}]", path, i);
      const json::object* e = r.object((*exprs)[i], p, {"key", "operator", "values"});
      if (!e) break;
      std::string key = r.string(*e, "key", p).value_or("");
      std::string op = r.string(*e, "operator", p).value_or("");
      std::vector<std::string> values = r.strings(*e, "values", p);
      std::string list;
      for (const auto& x : values) list += (list.empty() ? "" : ",") + x;
      if (op == "In" || op == "NotIn") {
        if (values.empty()) r.invalid(p + ".values", "In and NotIn need at least one value");
        add(fmt::format("{} {} ({})", key, op == "In" ? "in" : "notin", list));
      } else if (op == "Exists") {
        add(key);
      } else if (op == "DoesNotExist") {
        add("!" + key);
      } else if (!error) {
        r.invalid(p + ".operator",
                  fmt::format("\"{}\" is not In, NotIn, Exists or DoesNotExist", op));
      }
    }
  }
  if (error) return *error;
  auto parsed = LabelSelector::parse(text);
  if (!parsed) return Error::invalid(path + ": " + parsed.error().message);
  return parsed;
}

namespace {

const json::object* spec_of(const json::object& o) {
  const json::value* s = o.if_contains("spec");
  return s && s->is_object() ? &s->get_object() : nullptr;
}

json::object admitted_base(const json::object& in, const char* api_version, const char* kind) {
  json::object out = in;
  out["apiVersion"] = api_version;
  out["kind"] = kind;
  out.erase("status");
  return out;
}

// spec.sink and spec.ceOverrides, which every source has.
Result<void> read_common(Reader& r, std::optional<Error>& error, const json::object& spec,
                         SourceCommon& out) {
  const json::value* sink = spec.if_contains("sink");
  if (!sink || sink->is_null())
    return Error::invalid(
        "spec.sink: required (a ref to a Broker or a Service, or a uri), e.g. {ref: "
        "{apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}}");
  auto d = destination_from_json(*sink, "spec.sink");
  if (!d) return d.error();
  out.sink = std::move(*d);
  if (const json::value* ce = spec.if_contains("ceOverrides"); ce && !ce->is_null()) {
    if (const json::object* o = r.object(*ce, "spec.ceOverrides", {"extensions"})) {
      out.ce_overrides = r.string_map(*o, "extensions", "spec.ceOverrides");
      for (const auto& [k, v] : out.ce_overrides)
        if (!error && !valid_attribute_name(k))
          r.invalid("spec.ceOverrides.extensions." + k,
                    "an extension name is lowercase letters and digits only ([a-z0-9]+)");
    }
  }
  if (error) return *error;
  return Result<void>{};
}

void read_meta(const json::object& o, SourceCommon& s) {
  s.namespace_ = meta_string(o, "namespace");
  s.name = meta_string(o, "name");
  s.uid = meta_string(o, "uid");
  s.generation = meta_int(o, "generation");
}

// --- PingSource ---------------------------------------------------------------------------------

Result<PingSource> read_ping(const json::value& spec_value) {
  std::optional<Error> error;
  Reader r(error);
  PingSource p;
  const json::object* o = r.object(
      spec_value, "spec",
      {"schedule", "timezone", "contentType", "data", "dataBase64", "sink", "ceOverrides"});
  if (!o) return *error;
  p.schedule_text = r.string(*o, "schedule", "spec").value_or("* * * * *");
  p.timezone = r.string(*o, "timezone", "spec").value_or("");
  p.content_type = r.string(*o, "contentType", "spec").value_or("");
  auto data = r.string(*o, "data", "spec");
  auto data64 = r.string(*o, "dataBase64", "spec");
  if (error) return *error;
  auto schedule = parse_cron(p.schedule_text);
  if (!schedule) return Error::invalid("spec.schedule: " + schedule.error().message);
  p.schedule = *schedule;
  if (p.timezone.empty()) p.timezone = "UTC";
  if (auto tz = check_time_zone(p.timezone); !tz)
    return Error::invalid("spec.timezone: " + tz.error().message);
  if (data && data64)
    return Error::invalid("spec.data, spec.dataBase64: give one of them, not both");
  if (data64) {
    auto decoded = base64_decode(*data64);
    if (!decoded)
      return Error::invalid(
          "spec.dataBase64: not base64 (RFC 4648, padded); put plain text in "
          "spec.data instead");
    p.data = std::move(*decoded);
  } else if (data) {
    p.data = *data;
    if (p.content_type.rfind("application/json", 0) == 0) {
      boost::system::error_code ec;
      (void)json::parse(p.data, ec);
      if (ec)
        return Error::invalid(fmt::format(
            "spec.data: not JSON ({}), but spec.contentType is {}; fix the data or the type",
            ec.message(), p.content_type));
    }
  }
  if (auto c = read_common(r, error, *o, p); !c) return c.error();
  return p;
}

Result<json::object> admit_ping(const json::object& in) {
  json::object out = admitted_base(in, "sources.knative.dev/v1", "PingSource");
  const json::value* spec = in.if_contains("spec");
  if (!spec || spec->is_null()) return Error::invalid("spec: required (schedule and sink)");
  if (auto p = read_ping(*spec); !p) return p.error();
  return out;
}

// --- SinkBinding --------------------------------------------------------------------------------

Result<SinkBinding> read_binding(const json::value& spec_value) {
  std::optional<Error> error;
  Reader r(error);
  SinkBinding b;
  const json::object* o = r.object(spec_value, "spec", {"subject", "sink", "ceOverrides"});
  if (!o) return *error;
  const json::value* subject = o->if_contains("subject");
  if (!subject || subject->is_null())
    return Error::invalid(
        "spec.subject: required, e.g. {apiVersion: serving.knative.dev/v1, kind: Service, "
        "name: hello}");
  const json::object* s =
      r.object(*subject, "spec.subject", {"apiVersion", "kind", "name", "namespace", "selector"});
  if (!s) return *error;
  std::string api = r.string(*s, "apiVersion", "spec.subject").value_or("");
  std::string kind = r.string(*s, "kind", "spec.subject").value_or("");
  b.subject_name = r.string(*s, "name", "spec.subject").value_or("");
  std::string ns = r.string(*s, "namespace", "spec.subject").value_or("");
  if (error) return *error;
  if (kind != "Service" || (!api.empty() && api != "serving.knative.dev/v1"))
    return Error::invalid(fmt::format(
        "spec.subject: {} {} cannot be bound here; the subject is a serving.knative.dev/v1 "
        "Service",
        api, kind));
  if (!ns.empty())
    return Error::invalid(
        "spec.subject.namespace: a SinkBinding binds Services of its own "
        "namespace; leave the namespace out");
  const json::value* sel = s->if_contains("selector");
  bool has_selector = sel && !sel->is_null();
  if (b.subject_name.empty() == !has_selector)
    return Error::invalid(b.subject_name.empty()
                              ? "spec.subject: name the Service (name) or select Services "
                                "(selector: {matchLabels: {...}})"
                              : "spec.subject: give a name or a selector, not both");
  if (has_selector) {
    auto parsed = label_selector_from_json(r, error, *sel, "spec.subject.selector");
    if (!parsed) return parsed.error();
    if (parsed->empty())
      return Error::invalid("spec.subject.selector: selects every Service; give matchLabels");
    b.subject_selector = std::move(*parsed);
  }
  if (auto c = read_common(r, error, *o, b); !c) return c.error();
  return b;
}

Result<json::object> admit_binding(const json::object& in) {
  json::object out = admitted_base(in, "sources.knative.dev/v1", "SinkBinding");
  const json::value* spec = in.if_contains("spec");
  if (!spec || spec->is_null()) return Error::invalid("spec: required (subject and sink)");
  if (auto b = read_binding(*spec); !b) return b.error();
  return out;
}

// --- ContainerSource ----------------------------------------------------------------------------

Result<json::object> admit_container(const json::object& in) {
  json::object out = admitted_base(in, "sources.knative.dev/v1", "ContainerSource");
  const json::value* spec = in.if_contains("spec");
  if (!spec || spec->is_null()) return Error::invalid("spec: required (template and sink)");
  std::optional<Error> error;
  Reader r(error);
  const json::object* o = r.object(*spec, "spec", {"template", "sink", "ceOverrides"});
  if (!o) return *error;
  SourceCommon common;
  if (auto c = read_common(r, error, *o, common); !c) return c.error();
  const json::value* tmpl = o->if_contains("template");
  if (!tmpl || !tmpl->is_object())
    return Error::invalid(
        "spec.template: required, a pod template: {spec: {containers: [{image: ...}]}}");
  // The template runs as a Service's revision: it is checked as one.
  const KindInfo* service = builtin_kinds().find_kind(kServingGroup, "Service");
  json::object probe{{"apiVersion", "serving.knative.dev/v1"},
                     {"kind", "Service"},
                     {"metadata", json::object{{"name", "source"}}},
                     {"spec", json::object{{"template", *tmpl}}}};
  // Its paths (spec.template...) are the ContainerSource's own.
  if (auto admitted = service->admit(probe); !admitted) return admitted.error();
  return out;
}

// --- ApiServerSource ----------------------------------------------------------------------------

Result<ApiServerSource> read_api_server(const json::value& spec_value) {
  std::optional<Error> error;
  Reader r(error);
  ApiServerSource a;
  const json::object* o = r.object(spec_value, "spec",
                                   {"resources", "mode", "serviceAccountName", "owner", "sink",
                                    "ceOverrides", "namespaceSelector", "filters"});
  if (!o) return *error;
  a.mode = r.string(*o, "mode", "spec").value_or("Reference");
  (void)r.string(*o, "serviceAccountName", "spec");
  if (error) return *error;
  if (a.mode != "Reference" && a.mode != "Resource")
    return Error::invalid(fmt::format("spec.mode: \"{}\" is not Reference or Resource", a.mode));
  if (const json::value* ns = o->if_contains("namespaceSelector"); ns && !ns->is_null())
    return Error::invalid(
        "spec.namespaceSelector: not supported; an ApiServerSource watches its "
        "own namespace");
  if (const json::value* f = o->if_contains("filters"); f && !f->is_null())
    return Error::invalid("spec.filters: not supported; filter the events with a Trigger");
  if (const json::value* owner = o->if_contains("owner"); owner && !owner->is_null())
    return Error::invalid("spec.owner: not supported; select the resources by kind and labels");
  const json::array* resources = r.array(*o, "resources", "spec");
  if (error) return *error;
  if (!resources || resources->empty())
    return Error::invalid(
        "spec.resources: required, e.g. [{apiVersion: serving.knative.dev/v1, kind: Service}]");
  for (std::size_t i = 0; i < resources->size(); ++i) {
    std::string p = fmt::format("spec.resources[{}]", i);
    const json::object* res = r.object((*resources)[i], p, {"apiVersion", "kind", "selector"});
    if (!res) return *error;
    std::string api = r.string(*res, "apiVersion", p).value_or("");
    std::string kind = r.string(*res, "kind", p).value_or("");
    if (error) return *error;
    ApiServerResource out;
    auto slash = api.find('/');
    out.group = slash == std::string::npos ? "" : api.substr(0, slash);
    out.version = slash == std::string::npos ? api : api.substr(slash + 1);
    out.kind = kind;
    const KindInfo* k = builtin_kinds().find_kind(out.group, kind);
    if (api.empty() || kind.empty() || !k || k->version != out.version) {
      std::string known;
      for (const auto& info : builtin_kinds().all())
        if (info.namespaced)
          known += (known.empty() ? "" : ", ") + info.api_version() + " " + info.kind;
      return Error::invalid(
          fmt::format("{}: {} {} is not a kind elafros serves (known: {})", p, api, kind, known));
    }
    if (const json::value* sel = res->if_contains("selector"); sel && !sel->is_null()) {
      auto parsed = label_selector_from_json(r, error, *sel, p + ".selector");
      if (!parsed) return parsed.error();
      out.selector = std::move(*parsed);
    }
    a.resources.push_back(std::move(out));
  }
  if (auto c = read_common(r, error, *o, a); !c) return c.error();
  return a;
}

Result<json::object> admit_api_server(const json::object& in) {
  json::object out = admitted_base(in, "sources.knative.dev/v1", "ApiServerSource");
  const json::value* spec = in.if_contains("spec");
  if (!spec || spec->is_null()) return Error::invalid("spec: required (resources and sink)");
  auto a = read_api_server(*spec);
  if (!a) return a.error();
  out["spec"].as_object()["mode"] = a->mode;
  return out;
}

// --- EventType ----------------------------------------------------------------------------------

Result<json::object> admit_event_type(const json::object& in) {
  json::object out = admitted_base(in, "eventing.knative.dev/v1beta2", "EventType");
  const json::value* spec = in.if_contains("spec");
  if (!spec || spec->is_null()) return Error::invalid("spec: required (at least type)");
  std::optional<Error> error;
  Reader r(error);
  const json::object* o =
      r.object(*spec, "spec",
               {"type", "source", "schema", "schemaData", "description", "reference", "broker"});
  if (!o) return *error;
  std::string type = r.string(*o, "type", "spec").value_or("");
  for (const char* k : {"source", "schema", "schemaData", "description", "broker"})
    (void)r.string(*o, k, "spec");
  if (error) return *error;
  if (type.empty()) return Error::invalid("spec.type: required (the CloudEvents type)");
  if (const json::value* ref = o->if_contains("reference"); ref && !ref->is_null()) {
    const json::object* ro =
        r.object(*ref, "spec.reference", {"apiVersion", "kind", "name", "namespace"});
    if (!ro) return *error;
    std::string kind = r.string(*ro, "kind", "spec.reference").value_or("");
    std::string name = r.string(*ro, "name", "spec.reference").value_or("");
    (void)r.string(*ro, "apiVersion", "spec.reference");
    (void)r.string(*ro, "namespace", "spec.reference");
    if (error) return *error;
    if (kind.empty() || name.empty())
      return Error::invalid(
          "spec.reference: needs kind and name, e.g. {apiVersion: "
          "eventing.knative.dev/v1, kind: Broker, name: default}");
  }
  return out;
}

KindInfo source_kind(const char* kind, const char* plural, const char* singular,
                     const char* description, std::vector<std::string> types) {
  KindInfo k;
  k.group = kSourcesGroup;
  k.version = "v1";
  k.kind = kind;
  k.plural = plural;
  k.singular = singular;
  k.categories = {"all", "knative", "sources"};
  k.has_status = true;
  k.schema = loose_schema(description);
  k.source_description = description;
  k.source_event_types = std::move(types);
  return k;
}

}  // namespace

bool SinkBinding::binds(const std::string& service,
                        const std::map<std::string, std::string>& labels) const {
  if (!subject_name.empty()) return service == subject_name;
  return subject_selector.matches(labels);
}

std::string ping_event_source(const std::string& ns, const std::string& name) {
  return fmt::format("/apis/v1/namespaces/{}/pingsources/{}", ns, name);
}

std::string api_server_event_type(const std::string& mode, const char* verb) {
  return fmt::format("dev.knative.apiserver.{}.{}", mode == "Resource" ? "resource" : "ref", verb);
}

Result<SourceCommon> source_common_from_object(const json::object& object) {
  SourceCommon s;
  read_meta(object, s);
  const json::object* spec = spec_of(object);
  if (!spec) return Error::invalid("spec: required");
  std::optional<Error> error;
  Reader r(error);
  if (auto c = read_common(r, error, *spec, s); !c) return c.error();
  return s;
}

Result<PingSource> ping_source_from_object(const json::object& object) {
  const json::value* spec = object.if_contains("spec");
  if (!spec) return Error::invalid("spec: required");
  auto p = read_ping(*spec);
  if (p) read_meta(object, *p);
  return p;
}

Result<SinkBinding> sink_binding_from_object(const json::object& object) {
  const json::value* spec = object.if_contains("spec");
  if (!spec) return Error::invalid("spec: required");
  auto b = read_binding(*spec);
  if (b) read_meta(object, *b);
  return b;
}

Result<ApiServerSource> api_server_source_from_object(const json::object& object) {
  const json::value* spec = object.if_contains("spec");
  if (!spec) return Error::invalid("spec: required");
  auto a = read_api_server(*spec);
  if (a) read_meta(object, *a);
  return a;
}

void register_source_kinds(KindRegistry& registry) {
  const PrinterColumn sink{"Sink", "string", ".status.sinkUri", "Where the events go", 0};
  const PrinterColumn ready{"Ready", "string", kReadyColumn, "", 0};
  const PrinterColumn reason{"Reason", "string", kReasonColumn, "", 0};

  KindInfo ping = source_kind("PingSource", "pingsources", "pingsource",
                              "Send periodically ping events to addressable", {kPingEventType});
  ping.columns = {{"Schedule", "string", ".spec.schedule", "", 0}, sink, ready, reason};
  ping.admit = admit_ping;
  registry.add(std::move(ping));

  KindInfo binding =
      source_kind("SinkBinding", "sinkbindings", "sinkbinding",
                  "Binding for connecting a PodSpecable to a sink: K_SINK and K_CE_OVERRIDES in a "
                  "Service's containers",
                  {});
  binding.columns = {{"Subject", "string", ".spec.subject.name", "", 0}, sink, ready, reason};
  binding.admit = admit_binding;
  registry.add(std::move(binding));

  KindInfo container = source_kind(
      "ContainerSource", "containersources", "containersource",
      "Generate events by Container image and send to addressable (it runs as a Service with "
      "min-scale 1 and K_SINK set)",
      {});
  container.columns = {sink, ready, reason};
  container.admit = admit_container;
  registry.add(std::move(container));

  KindInfo api = source_kind(
      "ApiServerSource", "apiserversources", "apiserversource",
      "Watch and send elafros API resource changes (add, update, delete) to addressable",
      {"dev.knative.apiserver.resource.add", "dev.knative.apiserver.resource.update",
       "dev.knative.apiserver.resource.delete", "dev.knative.apiserver.ref.add",
       "dev.knative.apiserver.ref.update", "dev.knative.apiserver.ref.delete"});
  api.columns = {{"Mode", "string", ".spec.mode", "", 0}, sink, ready, reason};
  api.admit = admit_api_server;
  registry.add(std::move(api));

  KindInfo et;
  et.group = kEventingGroup;
  et.version = "v1beta2";
  et.kind = "EventType";
  et.plural = "eventtypes";
  et.singular = "eventtype";
  et.categories = {"all", "knative", "eventing"};
  et.has_status = true;
  et.columns = {{"Type", "string", ".spec.type", "", 0},
                {"Source", "string", ".spec.source", "", 0},
                {"Reference_Name", "string", ".spec.reference.name", "", 0},
                {"Reference_Kind", "string", ".spec.reference.kind", "", 0},
                {"Description", "string", ".spec.description", "", 1},
                ready,
                reason};
  et.admit = admit_event_type;
  et.schema = loose_schema(
      "An EventType says which events (type, source, schema) a Broker or source carries; the "
      "brokers' ingress registers the types it sees.");
  registry.add(std::move(et));
}

}  // namespace elafros
