// The core group's kinds (v1): Namespace, Secret and ConfigMap, in Kubernetes' shapes. A namespace
// carries the finalizer elafros.dev/namespace from its creation, so that deleting it first deletes
// what it holds (the namespace controller), as Kubernetes' spec.finalizers ["kubernetes"] does.

#include <fmt/format.h>

#include <boost/json.hpp>

#include "elafros/base64.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
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

}  // namespace

void register_core_kinds(KindRegistry& registry) {
  KindInfo secret;
  secret.group = "";
  secret.version = "v1";
  secret.kind = "Secret";
  secret.plural = "secrets";
  secret.singular = "secret";
  secret.columns = {{"Type", "string", ".type", "Opaque, or a kubernetes.io/ type", 0},
                    {"Age", "date", ".metadata.creationTimestamp", "", 0}};
  secret.admit = admit_secret;
  secret.schema = loose_schema(
      "Values an instance reads as environment variables or files; encrypted at rest.");
  registry.add(std::move(secret));

  KindInfo cm;
  cm.group = "";
  cm.version = "v1";
  cm.kind = "ConfigMap";
  cm.plural = "configmaps";
  cm.singular = "configmap";
  cm.short_names = {"cm"};
  cm.columns = {{"Age", "date", ".metadata.creationTimestamp", "", 0}};
  cm.admit = admit_config_map;
  cm.schema = loose_schema("Configuration an instance reads as environment variables or files.");
  registry.add(std::move(cm));

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
