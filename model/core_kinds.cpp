// The core group's kinds (v1): Namespace, in Kubernetes' shape. A namespace carries the
// finalizer elafros.dev/namespace from its creation, so that deleting it first deletes what
// it holds (the namespace controller), as Kubernetes' spec.finalizers ["kubernetes"] does.

#include <fmt/format.h>

#include <boost/json.hpp>

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

}  // namespace

void register_core_kinds(KindRegistry& registry) {
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
