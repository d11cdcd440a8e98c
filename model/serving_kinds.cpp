// serving.knative.dev/v1 Service and Revision in the kind registry, with Knative's short names,
// printer columns and an OpenAPI schema of the fields elafros reads.

#include <boost/json.hpp>

#include "elafros/autoscaling.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "strict_reader.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

constexpr const char* kContainerSchema = R"json({
  "type": "object",
  "description": "The container every instance of the revision runs.",
  "required": ["image"],
  "properties": {
    "image": {"type": "string", "description": "The image: a name in the image store, a registry reference (HOST/REPO:TAG), or oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE. The revision pins its digest."},
    "command": {"type": "array", "items": {"type": "string"}, "description": "Replaces the image's entrypoint."},
    "args": {"type": "array", "items": {"type": "string"}, "description": "Replaces the image's cmd."},
    "workingDir": {"type": "string", "description": "The working directory of the process."},
    "imagePullPolicy": {"type": "string", "enum": ["Always", "Never", "IfNotPresent"], "description": "For a registry image: Always pulls it again for every new revision, Never only uses a stored image, IfNotPresent (the default) pulls it when it is not stored."},
    "env": {"type": "array", "description": "Environment variables. PORT, K_SERVICE, K_REVISION and K_CONFIGURATION are set by elafros.", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "description": "The variable's name."}, "value": {"type": "string", "description": "Its value."}, "valueFrom": {"type": "object", "description": "A key of a Secret (secretKeyRef) or ConfigMap (configMapKeyRef) in the namespace, read when an instance starts.", "x-kubernetes-preserve-unknown-fields": true}}}},
    "envFrom": {"type": "array", "description": "Every key of a Secret (secretRef) or ConfigMap (configMapRef) as a variable, with an optional prefix.", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
    "securityContext": {"type": "object", "description": "Knative's allowed subset: runAsUser, runAsGroup, runAsNonRoot (checked against the image's user), readOnlyRootFilesystem (a tmpfs /tmp stays writable), allowPrivilegeEscalation, capabilities (drop; add only NET_BIND_SERVICE), seccompProfile.type (RuntimeDefault, the default, or Unconfined where the seccomp-unconfined key allows it).", "properties": {"runAsUser": {"type": "integer"}, "runAsGroup": {"type": "integer"}, "runAsNonRoot": {"type": "boolean"}, "readOnlyRootFilesystem": {"type": "boolean"}, "allowPrivilegeEscalation": {"type": "boolean"}, "privileged": {"type": "boolean"}, "capabilities": {"type": "object", "properties": {"add": {"type": "array", "items": {"type": "string"}}, "drop": {"type": "array", "items": {"type": "string"}}}}, "seccompProfile": {"type": "object", "properties": {"type": {"type": "string"}, "localhostProfile": {"type": "string"}}}}},
    "volumeMounts": {"type": "array", "description": "Where spec.volumes are mounted: name, mountPath, readOnly (secrets and config maps are always read-only).", "items": {"type": "object", "required": ["name", "mountPath"], "properties": {"name": {"type": "string"}, "mountPath": {"type": "string"}, "readOnly": {"type": "boolean"}}}},
    "ports": {"type": "array", "description": "At most one port: the one the app listens on over HTTP/1.1 (PORT; 8080 by default).", "items": {"type": "object", "properties": {"containerPort": {"type": "integer", "format": "int32", "description": "The port number."}, "name": {"type": "string", "description": "http1."}}}},
    "resources": {"type": "object", "description": "cgroup limits and requests.", "properties": {"limits": {"type": "object", "description": "cpu (e.g. 500m) and memory (e.g. 128Mi) caps.", "additionalProperties": {"type": "string"}}, "requests": {"type": "object", "description": "cpu and memory the instance is expected to use.", "additionalProperties": {"type": "string"}}}},
    "readinessProbe": {"type": "object", "description": "When an instance may receive traffic; a TCP connect to PORT by default.", "properties": {"httpGet": {"type": "object", "description": "Probe with an HTTP GET.", "properties": {"path": {"type": "string", "description": "The path to GET."}}}, "tcpSocket": {"type": "object", "description": "Probe with a TCP connect to PORT."}, "initialDelaySeconds": {"type": "integer"}, "periodSeconds": {"type": "integer", "description": "0 polls every few milliseconds until ready."}, "timeoutSeconds": {"type": "integer"}, "failureThreshold": {"type": "integer"}, "successThreshold": {"type": "integer"}}}
  }
})json";

constexpr const char* kObjectMetaSchema = R"json({
  "type": "object",
  "description": "Standard object metadata (Kubernetes ObjectMeta).",
  "properties": {
    "name": {"type": "string", "description": "The object's name, unique in its namespace."},
    "namespace": {"type": "string", "description": "The namespace it lives in."},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels, for selection (labelSelector)."},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Annotations; autoscaling.knative.dev/* keys tune the autoscaler."},
    "uid": {"type": "string", "description": "Set by elafrosd; unique for the object's lifetime."},
    "resourceVersion": {"type": "string", "description": "Set by elafrosd; changes on every write. An update carrying a stale one is refused with 409 Conflict."},
    "generation": {"type": "integer", "description": "Counts the changes to the desired state."},
    "creationTimestamp": {"type": "string", "format": "date-time", "description": "When it was created."},
    "deletionTimestamp": {"type": "string", "format": "date-time", "description": "When its deletion was asked for."},
    "ownerReferences": {"type": "array", "items": {"type": "object"}, "description": "The objects it belongs to; deleting the owner deletes it."},
    "finalizers": {"type": "array", "items": {"type": "string"}, "description": "Work that must finish before the object is gone."}
  }
})json";

constexpr const char* kConditionsSchema = R"json({
  "type": "array",
  "description": "The latest observations of the object's state.",
  "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string", "description": "True, False or Unknown."}, "reason": {"type": "string", "description": "One CamelCase word saying why."}, "message": {"type": "string", "description": "What happened and what to do."}, "lastTransitionTime": {"type": "string", "format": "date-time"}}}
})json";

json::object parse_schema(const char* text) {
  return json::parse(text).as_object();
}

json::object revision_spec_schema() {
  json::object spec{{"type", "object"},
                    {"description", "What every instance of the revision runs, and how."}};
  spec["properties"] = json::object{
      {"containers", json::object{{"type", "array"},
                                  {"description", "Exactly one container."},
                                  {"items", parse_schema(kContainerSchema)}}},
      {"containerConcurrency",
       json::object{
           {"type", "integer"},
           {"description", "The most requests one instance serves at once; 0 is no limit."}}},
      {"timeoutSeconds",
       json::object{{"type", "integer"},
                    {"description", "How long a request may take (300 by default)."}}},
      {"responseStartTimeoutSeconds",
       json::object{{"type", "integer"},
                    {"description",
                     "How long the app may take to start its answer (timeoutSeconds by "
                     "default)."}}},
      {"idleTimeoutSeconds",
       json::object{{"type", "integer"},
                    {"description",
                     "How long a response or upgraded connection may go without a byte from "
                     "the app (0, the default: no bound but timeoutSeconds)."}}},
      {"volumes",
       json::object{{"type", "array"},
                    {"description",
                     "Volumes the container mounts: secret (secretName, items, defaultMode), "
                     "configMap (name, items, defaultMode) or emptyDir (medium, sizeLimit)."},
                    {"items", json::object{{"type", "object"},
                                           {"x-kubernetes-preserve-unknown-fields", true}}}}}};
  return spec;
}

json::object service_schema() {
  json::object tmpl{{"type", "object"},
                    {"description",
                     "The revision template: every change to it creates a new, immutable "
                     "Revision."}};
  json::object tmpl_meta = parse_schema(kObjectMetaSchema);
  tmpl_meta["description"] =
      "The revision's name (spec.template.metadata.name; SERVICE-00001 and on by default) and "
      "annotations.";
  tmpl["properties"] =
      json::object{{"metadata", std::move(tmpl_meta)}, {"spec", revision_spec_schema()}};
  json::object target{
      {"type", "object"},
      {"properties",
       json::object{
           {"revisionName",
            json::object{{"type", "string"}, {"description", "The revision to send traffic to."}}},
           {"latestRevision",
            json::object{{"type", "boolean"},
                         {"description", "Follow the latest ready revision instead."}}},
           {"percent", json::object{{"type", "integer"},
                                    {"description", "Its share; the shares sum to 100."}}},
           {"tag",
            json::object{{"type", "string"},
                         {"description", "A name that gets its own host: TAG-SERVICE.NS.DOMAIN."}}},
           {"url",
            json::object{{"type", "string"}, {"description", "Set by elafrosd for tags."}}}}}};
  json::object spec{
      {"type", "object"},
      {"description", "The desired state of the service."},
      {"properties", json::object{{"template", std::move(tmpl)},
                                  {"traffic", json::object{{"type", "array"},
                                                           {"description",
                                                            "How requests are split between "
                                                            "revisions; 100% to the latest ready "
                                                            "one by default."},
                                                           {"items", std::move(target)}}}}}};
  json::object status{
      {"type", "object"},
      {"description", "What elafrosd observes of the service."},
      {"properties",
       json::object{{"url", json::object{{"type", "string"},
                                         {"description", "Where the service is served."}}},
                    {"latestCreatedRevisionName", json::object{{"type", "string"}}},
                    {"latestReadyRevisionName", json::object{{"type", "string"}}},
                    {"observedGeneration", json::object{{"type", "integer"}}},
                    {"conditions", parse_schema(kConditionsSchema)},
                    {"traffic", json::object{{"type", "array"},
                                             {"items", json::object{{"type", "object"}}}}}}}};
  return json::object{
      {"type", "object"},
      {"description",
       "A Service runs a container image as an HTTP service that scales with its load, down to "
       "zero. Every change to spec.template makes a new Revision; spec.traffic splits requests "
       "between them."},
      {"properties", json::object{{"apiVersion", json::object{{"type", "string"}}},
                                  {"kind", json::object{{"type", "string"}}},
                                  {"metadata", parse_schema(kObjectMetaSchema)},
                                  {"spec", std::move(spec)},
                                  {"status", std::move(status)}}}};
}

json::object revision_schema() {
  json::object status{
      {"type", "object"},
      {"properties",
       json::object{{"conditions", parse_schema(kConditionsSchema)},
                    {"actualReplicas", json::object{{"type", "integer"}}},
                    {"desiredReplicas", json::object{{"type", "integer"}}},
                    {"containerStatuses",
                     json::object{{"type", "array"},
                                  {"description", "The image digest the revision pins."},
                                  {"items", json::object{{"type", "object"}}}}}}}};
  return json::object{
      {"type", "object"},
      {"description",
       "A Revision is an immutable snapshot of a service's template, with the image digest it "
       "pinned. Its service creates it."},
      {"properties", json::object{{"apiVersion", json::object{{"type", "string"}}},
                                  {"kind", json::object{{"type", "string"}}},
                                  {"metadata", parse_schema(kObjectMetaSchema)},
                                  {"spec", revision_spec_schema()},
                                  {"status", std::move(status)}}}};
}

Result<json::object> admit_service(const json::object& in) {
  std::string ns = meta_string(in, "namespace");
  auto s = service_from_json(in, ns.empty() ? kDefaultNamespace : ns);
  if (!s) return s.error();
  if (auto scaling = autoscaling_spec(s->spec, AutoscalingDefaults{}); !scaling)
    return scaling.error();
  json::object canonical = service_to_json(*s, nullptr);
  json::object out = in;
  out["apiVersion"] = "serving.knative.dev/v1";
  out["kind"] = "Service";
  out["spec"] = canonical["spec"];
  json::object& md = metadata_of(out);
  const json::object& cmd = canonical["metadata"].as_object();
  for (const char* key : {"labels", "annotations"}) {
    if (const json::value* v = cmd.if_contains(key))
      md[key] = *v;
    else
      md.erase(key);
  }
  out.erase("status");
  return out;
}

// A host name as DomainMapping's name is: lowercase DNS labels joined by dots.
std::optional<std::string> domain_problem(const std::string& name) {
  if (name.empty() || name.size() > 253) return "must be 1 to 253 characters";
  std::size_t start = 0;
  for (;;) {
    auto dot = name.find('.', start);
    std::string label =
        name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (label.empty() || label.size() > 63)
      return "each dot-separated label must be 1 to 63 characters";
    for (char c : label)
      if (!(std::islower(static_cast<unsigned char>(c)) ||
            std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
        return "may hold only lowercase letters, digits, '-' and '.'";
    if (label.front() == '-' || label.back() == '-') return "a label may not begin or end with '-'";
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

// Knative's DomainMapping (serving.knative.dev/v1beta1): its name is the host name, mapped to a
// Service of its namespace. The status is the controller's, shown live.
Result<json::object> admit_domain_mapping(const json::object& in) {
  std::optional<Error> error;
  Reader r(error);
  (void)r.object(json::value(in), "", {"apiVersion", "kind", "metadata", "spec", "status"});
  const std::string name = meta_string(in, "name");
  const std::string ns = meta_string(in, "namespace");
  if (!error && !name.empty())
    if (auto problem = domain_problem(name))
      return Error::invalid(fmt::format(
          "metadata.name: \"{}\" is not a host name: {} (a DomainMapping is named by the domain "
          "it maps, e.g. app.example.com)",
          name, *problem));
  const json::value* spec_v = in.if_contains("spec");
  if (!error && !spec_v)
    return Error::invalid("spec.ref: missing; name the Service to map the domain to");
  if (spec_v)
    if (const json::object* spec = r.object(*spec_v, "spec", {"ref", "tls"})) {
      const json::value* ref_v = spec->if_contains("ref");
      if (!error && !ref_v)
        return Error::invalid("spec.ref: missing; name the Service to map the domain to");
      if (const json::object* ref =
              ref_v ? r.object(*ref_v, "spec.ref", {"apiVersion", "kind", "name", "namespace"})
                    : nullptr) {
        std::string kind = r.string(*ref, "kind", "spec.ref").value_or("");
        std::string api =
            r.string(*ref, "apiVersion", "spec.ref").value_or("serving.knative.dev/v1");
        std::string target = r.string(*ref, "name", "spec.ref").value_or("");
        std::string target_ns = r.string(*ref, "namespace", "spec.ref").value_or("");
        if (!error && (kind != "Service" || api != "serving.knative.dev/v1"))
          return Error::invalid(fmt::format(
              "spec.ref: {} {} cannot be mapped; a DomainMapping maps to a Knative Service "
              "(apiVersion serving.knative.dev/v1, kind Service)",
              api, kind.empty() ? "(no kind)" : kind));
        if (!error && target.empty()) return Error::invalid("spec.ref.name: required: the Service");
        if (!error && !target_ns.empty() && !ns.empty() && target_ns != ns)
          return Error::invalid(fmt::format(
              "spec.ref.namespace: \"{}\" is not the DomainMapping's namespace \"{}\"; a domain "
              "maps to a Service of its own namespace",
              target_ns, ns));
      }
      if (const json::value* tls = spec->if_contains("tls"); tls && !error)
        if (const json::object* t = r.object(*tls, "spec.tls", {"secretName"}))
          if (r.string(*t, "secretName", "spec.tls").value_or("").empty() && !error)
            return Error::invalid(
                "spec.tls.secretName: required: the Secret with tls.crt and tls.key");
    }
  if (error) return *error;
  json::object out = in;
  out["apiVersion"] = "serving.knative.dev/v1beta1";
  out["kind"] = "DomainMapping";
  out.erase("status");
  return out;
}

const char* kReady = ".status.conditions[?(@.type=='Ready')].status";
const char* kReason = ".status.conditions[?(@.type=='Ready')].reason";

}  // namespace

void register_serving_kinds(KindRegistry& registry) {
  KindInfo service;
  service.group = kServingGroup;
  service.version = "v1";
  service.kind = "Service";
  service.plural = "services";
  service.singular = "service";
  service.short_names = {"kservice", "ksvc"};
  service.categories = {"all", "knative", "serving"};
  service.has_status = true;
  service.columns = {{"URL", "string", ".status.url", "The service's address", 0},
                     {"LatestCreated", "string", ".status.latestCreatedRevisionName", "", 0},
                     {"LatestReady", "string", ".status.latestReadyRevisionName", "", 0},
                     {"Ready", "string", kReady, "", 0},
                     {"Reason", "string", kReason, "", 0}};
  service.admit = admit_service;
  service.schema = service_schema();
  registry.add(std::move(service));

  KindInfo revision;
  revision.group = kServingGroup;
  revision.version = "v1";
  revision.kind = "Revision";
  revision.plural = "revisions";
  revision.singular = "revision";
  revision.short_names = {"rev"};
  revision.categories = {"all", "knative", "serving"};
  revision.has_status = true;
  revision.client_writable = false;
  revision.read_only_reason =
      "revisions are made by their service: change the service's spec.template (e.g. 'elafros "
      "service update' or 'kubectl patch ksvc'), and a new revision is created";
  revision.columns = {
      {"Config Name", "string", ".metadata.labels['serving.knative.dev/configuration']", "", 0},
      {"Generation", "string", ".metadata.labels['serving.knative.dev/configurationGeneration']",
       "", 0},
      {"Ready", "string", kReady, "", 0},
      {"Reason", "string", kReason, "", 0},
      {"Actual Replicas", "integer", ".status.actualReplicas", "", 0},
      {"Desired Replicas", "integer", ".status.desiredReplicas", "", 0}};
  revision.admit = [](const json::object&) -> Result<json::object> {
    return Error{ErrorCode::kMethodNotAllowed, "revisions are read-only"};
  };
  revision.schema = revision_schema();
  registry.add(std::move(revision));

  KindInfo dm;
  dm.group = kServingGroup;
  dm.version = "v1beta1";
  dm.kind = "DomainMapping";
  dm.plural = "domainmappings";
  dm.singular = "domainmapping";
  dm.categories = {"all", "knative", "serving"};
  dm.has_status = true;
  dm.columns = {{"URL", "string", ".status.url", "The mapped domain's address", 0},
                {"Ready", "string", kReady, "", 0},
                {"Reason", "string", kReason, "", 0}};
  dm.admit = admit_domain_mapping;
  dm.schema = loose_schema(
      "Maps a host name (the object's name) to a Knative Service of its namespace: requests for "
      "that host reach the service.");
  registry.add(std::move(dm));
}

}  // namespace elafros
