// The core group's kinds (v1): Namespace, Secret, ConfigMap, ResourceQuota, LimitRange and
// PersistentVolumeClaim, in Kubernetes' shapes. A namespace
// carries the finalizer elafros.dev/namespace from its creation, so that deleting it first deletes
// what it holds (the namespace controller), as Kubernetes' spec.finalizers ["kubernetes"] does.

#include <fmt/format.h>

#include <boost/json.hpp>

#include "elafros/base64.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "strict_reader.hpp"

namespace elafros {
namespace {

Result<json::object> admit_namespace(const json::object& in) {
  std::optional<Error> error;
  Reader r(error);
  if (const json::value* spec = in.if_contains("spec"); spec && !spec->is_null())
    if (const json::object* s = r.object(*spec, "spec", {"finalizers"}))
      (void)r.strings(*s, "finalizers", "spec");
  if (error) return *error;
  std::string name = meta_string(in, "name");
  if (!name.empty())
    if (auto problem = dns1035_label_problem(name))
      return Error::invalid(
          fmt::format("metadata.name: \"{}\" is not a namespace name: {}", name, *problem));
  json::object out = in;
  out["apiVersion"] = "v1";
  out["kind"] = "Namespace";
  out.erase("status");
  json::object& md = metadata_of(out);
  md.erase("namespace");
  json::array finalizers;
  if (const json::value* f = md.if_contains("finalizers"); f && f->is_array())
    finalizers = f->get_array();
  bool has = false;
  for (const auto& f : finalizers) has = has || f == json::value(kNamespaceFinalizer);
  if (!has) finalizers.emplace_back(kNamespaceFinalizer);
  md["finalizers"] = std::move(finalizers);
  return out;
}

// Kubernetes' rule for a Secret's or ConfigMap's keys.
std::optional<std::string> key_problem(const std::string& key) {
  if (key.empty() || key.size() > 253) return "must be 1 to 253 characters";
  if (key == "." || key == "..") return "may not be '.' or '..'";
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return "may hold only letters, digits, '-', '_' and '.'";
  return std::nullopt;
}

constexpr std::size_t kMaxConfigBytes = 1 << 20;  // Kubernetes' limit for one Secret or ConfigMap

Result<json::object> admit_secret(const json::object& in) {
  std::optional<Error> error;
  Reader r(error);
  (void)r.object(json::value(in), "",
                 {"apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"});
  std::string type = r.string(in, "type", "").value_or("");
  if (type.empty()) type = "Opaque";  // Kubernetes' default, for "" too
  auto data = r.string_map(in, "data", "");
  auto string_data = r.string_map(in, "stringData", "");
  auto immutable = r.boolean(in, "immutable", "");
  if (error) return *error;
  json::object out_data;
  std::size_t total = 0;
  for (const auto& [k, v] : data) {
    if (auto p = key_problem(k)) return Error::invalid(fmt::format("data.{}: the key {}", k, *p));
    auto decoded = base64_decode(v);
    if (!decoded)
      return Error::invalid(
          fmt::format("data.{}: is not base64; put plain text in stringData instead, or encode it "
                      "(base64 -w0)",
                      k));
    total += decoded->size();
    out_data[k] = v;
  }
  for (const auto& [k, v] : string_data) {
    if (auto p = key_problem(k))
      return Error::invalid(fmt::format("stringData.{}: the key {}", k, *p));
    total += v.size();
    out_data[k] = base64_encode(v);  // stringData wins over data, as in Kubernetes
  }
  if (total > kMaxConfigBytes)
    return Error::invalid(fmt::format("data: {} bytes is over the limit of 1 MiB", total));
  // Kubernetes' rule for the types whose keys it knows.
  if (type == "kubernetes.io/tls")
    for (const char* key : {"tls.crt", "tls.key"})
      if (!out_data.contains(key))
        return Error::invalid(fmt::format(
            "data.{}: a kubernetes.io/tls Secret needs it, in PEM ('elafros secret create tls "
            "NAME --cert FILE --key FILE' makes one)",
            key));
  if (type.find_first_of(" \t") != std::string::npos)
    return Error::invalid(
        fmt::format("type: \"{}\" is not a Secret type (Opaque, "
                    "kubernetes.io/basic-auth, …)",
                    type));
  json::object out = in;
  out["apiVersion"] = "v1";
  out["kind"] = "Secret";
  out["type"] = type;
  out.erase("stringData");
  out["data"] = std::move(out_data);
  if (immutable) out["immutable"] = *immutable;
  return out;
}

Result<json::object> admit_config_map(const json::object& in) {
  std::optional<Error> error;
  Reader r(error);
  (void)r.object(json::value(in), "",
                 {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"});
  auto data = r.string_map(in, "data", "");
  auto binary = r.string_map(in, "binaryData", "");
  (void)r.boolean(in, "immutable", "");
  if (error) return *error;
  std::size_t total = 0;
  for (const auto& [k, v] : data) {
    if (auto p = key_problem(k)) return Error::invalid(fmt::format("data.{}: the key {}", k, *p));
    total += v.size();
  }
  for (const auto& [k, v] : binary) {
    if (auto p = key_problem(k))
      return Error::invalid(fmt::format("binaryData.{}: the key {}", k, *p));
    if (data.count(k))
      return Error::invalid(
          fmt::format("binaryData.{}: the key is also in data; a key may be in only one", k));
    auto decoded = base64_decode(v);
    if (!decoded) return Error::invalid(fmt::format("binaryData.{}: is not base64", k));
    total += decoded->size();
  }
  if (total > kMaxConfigBytes)
    return Error::invalid(fmt::format("data: {} bytes is over the limit of 1 MiB", total));
  json::object out = in;
  out["apiVersion"] = "v1";
  out["kind"] = "ConfigMap";
  return out;
}

// A PersistentVolumeClaim: a named local volume, a directory of its own under
// <data-dir>/volumes that outlives revisions (docs/architecture.md, "Volumes"). There is no
// provisioner to wait for: it is Bound as soon as it exists. The storage request is recorded,
// not enforced (the directory shares the data dir's filesystem).
Result<json::object> admit_claim(const json::object& in) {
  std::optional<Error> error;
  Reader r(error);
  (void)r.object(json::value(in), "", {"apiVersion", "kind", "metadata", "spec", "status"});
  const json::value* spec_v = in.if_contains("spec");
  if (!error && !spec_v)
    return Error::invalid(
        "spec: missing; a claim needs spec.accessModes and spec.resources.requests.storage");
  std::vector<std::string> modes;
  std::string storage, limit;
  if (spec_v) {
    static constexpr std::string_view kNoVolumes =
        "is not supported: there are no PersistentVolumes to choose from; every claim gets an "
        "empty directory of its own";
    if (spec_v->is_object())
      for (const char* field : {"selector", "volumeName", "dataSource", "dataSourceRef"})
        if (spec_v->get_object().contains(field))
          return Error::invalid(fmt::format("spec.{}: {}", field, kNoVolumes));
    if (const json::object* spec = r.object(*spec_v, "spec",
                                            {"accessModes", "resources", "storageClassName",
                                             "volumeMode", "volumeAttributesClassName"})) {
      modes = r.strings(*spec, "accessModes", "spec");
      (void)r.string(*spec, "storageClassName", "spec");
      (void)r.string(*spec, "volumeAttributesClassName", "spec");
      if (auto mode = r.string(*spec, "volumeMode", "spec"); mode && *mode != "Filesystem")
        r.invalid("spec.volumeMode",
                  fmt::format("\"{}\" is not supported: only Filesystem (a directory)", *mode));
      if (const json::value* res = spec->if_contains("resources"))
        if (const json::object* ro = r.object(*res, "spec.resources", {"requests", "limits"})) {
          storage = r.string_map(*ro, "requests", "spec.resources")["storage"];
          limit = r.string_map(*ro, "limits", "spec.resources")["storage"];
        }
    }
  }
  if (error) return *error;
  if (modes.empty())
    return Error::invalid(
        "spec.accessModes: at least one is required (ReadWriteOnce, ReadOnlyMany, ReadWriteMany "
        "or ReadWriteOncePod)");
  for (std::size_t i = 0; i < modes.size(); ++i)
    if (modes[i] != "ReadWriteOnce" && modes[i] != "ReadOnlyMany" && modes[i] != "ReadWriteMany" &&
        modes[i] != "ReadWriteOncePod")
      return Error::invalid(
          fmt::format("spec.accessModes[{}]: \"{}\" is not an access mode (ReadWriteOnce, "
                      "ReadOnlyMany, ReadWriteMany or ReadWriteOncePod)",
                      i, modes[i]));
  if (storage.empty())
    return Error::invalid(
        "spec.resources.requests.storage: required, e.g. 1Gi (recorded, not enforced)");
  for (const auto& [key, q] : {std::pair{"requests", storage}, std::pair{"limits", limit}})
    if (!q.empty() && !parse_memory_bytes(q))
      return Error::invalid(fmt::format(
          "spec.resources.{}.storage: \"{}\" is not a quantity (e.g. 1Gi, 500Mi)", key, q));
  json::object out = in;
  out["apiVersion"] = "v1";
  out["kind"] = "PersistentVolumeClaim";
  json::array access;
  for (const auto& m : modes) access.emplace_back(m);
  out["status"] = json::object{{"phase", "Bound"},
                               {"accessModes", std::move(access)},
                               {"capacity", json::object{{"storage", storage}}}};
  return out;
}

// The resources a ResourceQuota may limit: compute, live instances, and count/<plural>.<group>
// of any kind elafros serves (count/<plural> for the core group).
std::optional<std::string> quota_resource_problem(const std::string& name) {
  if (name == "limits.cpu" || name == "limits.memory" || name == "requests.cpu" ||
      name == "requests.memory" || name == "instances")
    return std::nullopt;
  if (name.rfind("count/", 0) == 0) {
    std::string rest = name.substr(6);
    auto dot = rest.find('.');
    std::string plural = rest.substr(0, dot);
    std::string group = dot == std::string::npos ? "" : rest.substr(dot + 1);
    for (const auto& k : builtin_kinds().all())
      if (k.plural == plural && k.group == group && k.namespaced) return std::nullopt;
    return fmt::format(
        "\"{}\" names no kind elafros serves in a namespace (e.g. "
        "count/services.serving.knative.dev, count/secrets)",
        name);
  }
  return fmt::format(
      "\"{}\" is not a resource a quota limits: limits.cpu, limits.memory, "
      "requests.cpu, requests.memory, instances, or count/<plural>.<group>",
      name);
}

// A quantity of that resource: cpu in cores or millicores, memory in bytes, counts whole.
bool quota_quantity_ok(const std::string& resource, const std::string& value) {
  if (resource.find(".cpu") != std::string::npos) return parse_cpu_millis(value).has_value();
  if (resource.find(".memory") != std::string::npos) return parse_memory_bytes(value).has_value();
  if (value.empty()) return false;
  for (char c : value)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

Result<json::object> admit_quota(const json::object& in) {
  std::optional<Error> error;
  Reader r(error);
  (void)r.object(json::value(in), "", {"apiVersion", "kind", "metadata", "spec", "status"});
  const json::value* spec = in.if_contains("spec");
  std::map<std::string, std::string> hard;
  if (spec && !spec->is_null())
    if (const json::object* so = r.object(*spec, "spec", {"hard", "scopes", "scopeSelector"})) {
      hard = r.string_map(*so, "hard", "spec");
      if (!r.failed() && (so->contains("scopes") || so->contains("scopeSelector")))
        r.invalid("spec.scopes", "quota scopes are not supported; one quota covers the namespace");
    }
  if (error) return *error;
  for (const auto& [k, v] : hard) {
    if (auto p = quota_resource_problem(k))
      return Error::invalid(fmt::format("spec.hard.{}: {}", k, *p));
    if (!quota_quantity_ok(k, v))
      return Error::invalid(fmt::format(
          "spec.hard.{}: \"{}\" is not a quantity of it (cpu: 2 or 500m; memory: 8Gi; counts: "
          "a whole number)",
          k, v));
  }
  json::object out = in;
  out["apiVersion"] = "v1";
  out["kind"] = "ResourceQuota";
  out.erase("status");
  return out;
}

Result<json::object> admit_limit_range(const json::object& in) {
  std::optional<Error> error;
  Reader r(error);
  (void)r.object(json::value(in), "", {"apiVersion", "kind", "metadata", "spec"});
  const json::value* spec = in.if_contains("spec");
  if (!error && (!spec || !spec->is_object()))
    return Error::invalid(
        "spec.limits: required: a list of limits, e.g. [{type: Container, "
        "default: {memory: 256Mi}}]");
  if (const json::object* so = r.object(*spec, "spec", {"limits"}))
    if (const json::array* limits = r.array(*so, "limits", "spec"))
      for (std::size_t i = 0; i < limits->size() && !r.failed(); ++i) {
        std::string p = fmt::format("spec.limits[{}]", i);
        const json::object* l =
            r.object((*limits)[i], p,
                     {"type", "default", "defaultRequest", "min", "max", "maxLimitRequestRatio"});
        if (!l) break;
        std::string type = r.string(*l, "type", p).value_or("");
        if (!r.failed() && type != "Container")
          r.invalid(p + ".type",
                    fmt::format("\"{}\" is not supported: elafros applies Container limits", type));
        for (const char* key : {"default", "defaultRequest", "min", "max"}) {
          auto m = r.string_map(*l, key, p);
          for (const auto& [res, v] : m) {
            if (r.failed()) break;
            std::string fp = fmt::format("{}.{}.{}", p, key, res);
            if (res != "cpu" && res != "memory")
              r.invalid(fp, "only cpu and memory are limited");
            else if (res == "cpu" ? !parse_cpu_millis(v) : !parse_memory_bytes(v))
              r.invalid(fp, fmt::format("\"{}\" is not a quantity (cpu: 500m; memory: 256Mi)", v));
          }
        }
        if (!r.failed() && l->contains("maxLimitRequestRatio"))
          r.invalid(p + ".maxLimitRequestRatio", "is not supported");
      }
  if (error) return *error;
  json::object out = in;
  out["apiVersion"] = "v1";
  out["kind"] = "LimitRange";
  return out;
}

// A namespaced core v1 kind with its admission and a loose schema.
KindInfo core_kind(const char* kind, const char* plural, const char* singular,
                   std::function<Result<json::object>(const json::object&)> admit,
                   const char* description) {
  KindInfo k;
  k.group = "";
  k.version = "v1";
  k.kind = kind;
  k.plural = plural;
  k.singular = singular;
  k.columns = {{"Age", "date", ".metadata.creationTimestamp", "", 0}};
  k.admit = std::move(admit);
  k.schema = loose_schema(description);
  return k;
}

}  // namespace

void register_core_kinds(KindRegistry& registry) {
  KindInfo quota = core_kind("ResourceQuota", "resourcequotas", "resourcequota", admit_quota,
                             "Limits a namespace: counts of each kind, compute (limits and "
                             "requests of live instances), and live instances. status.used is "
                             "kept current.");
  quota.short_names = {"quota"};
  quota.has_status = true;
  registry.add(std::move(quota));

  KindInfo lr = core_kind("LimitRange", "limitranges", "limitrange", admit_limit_range,
                          "Container defaults (default, defaultRequest) and bounds (min, max) "
                          "applied to the namespace's revision templates.");
  lr.short_names = {"limits"};
  lr.columns = {{"Created At", "date", ".metadata.creationTimestamp", "", 0}};
  registry.add(std::move(lr));

  KindInfo secret =
      core_kind("Secret", "secrets", "secret", admit_secret,
                "Values an instance reads as environment variables or files; encrypted at rest.");
  secret.columns.insert(secret.columns.begin(),
                        {"Type", "string", ".type", "Opaque, or a kubernetes.io/ type", 0});
  registry.add(std::move(secret));

  KindInfo cm = core_kind("ConfigMap", "configmaps", "configmap", admit_config_map,
                          "Configuration an instance reads as environment variables or files.");
  cm.short_names = {"cm"};
  registry.add(std::move(cm));

  KindInfo pvc = core_kind("PersistentVolumeClaim", "persistentvolumeclaims",
                           "persistentvolumeclaim", admit_claim,
                           "A named local volume: a directory of its own that outlives revisions, "
                           "mounted by a persistentVolumeClaim volume. Bound at once; the storage "
                           "request is recorded, not enforced.");
  pvc.short_names = {"pvc"};
  pvc.columns = {{"Status", "string", ".status.phase", "Bound: a local directory backs it", 0},
                 {"Capacity", "string", ".status.capacity.storage", "the storage requested", 0},
                 {"Access Modes", "string", ".spec.accessModes", "", 0},
                 {"StorageClass", "string", ".spec.storageClassName", "", 0},
                 {"Age", "date", ".metadata.creationTimestamp", "", 0}};
  pvc.immutable_fields = {".spec.accessModes", ".spec.storageClassName", ".spec.volumeMode"};
  registry.add(std::move(pvc));

  KindInfo ns;
  ns.group = "";
  ns.version = "v1";
  ns.kind = "Namespace";
  ns.plural = "namespaces";
  ns.singular = "namespace";
  ns.short_names = {"ns"};
  ns.namespaced = false;
  ns.has_status = true;
  ns.columns = {
      {"Status", "string", ".status.phase", "Active, or Terminating while its content goes", 0},
      {"Age", "date", ".metadata.creationTimestamp", "", 0}};
  ns.admit = admit_namespace;
  ns.schema = loose_schema(
      "A namespace groups resources: the unit of access and quota. Deleting it deletes "
      "everything in it.");
  registry.add(std::move(ns));
}

}  // namespace elafros
