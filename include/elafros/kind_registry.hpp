#pragma once
// Every API kind registers here once: its names, scope, codec and printer columns. The API's
// generic verbs, discovery, OpenAPI and table output are all driven from this registry
// (docs/architecture.md, "Kinds").

#include <boost/json/object.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

// One column of `kubectl get` (Kubernetes' additionalPrinterColumns).
struct PrinterColumn {
  std::string name;
  std::string type;       // "string", "integer", "date"
  std::string json_path;  // ".status.url", ".status.conditions[?(@.type=='Ready')].status"
  std::string description;
  int priority = 0;  // 0: always shown; 1: with -o wide
};

struct KindInfo {
  std::string group;  // "" for the core group
  std::string version;
  std::string kind;
  std::string plural;
  std::string singular;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool namespaced = true;
  bool has_status = false;       // a status subresource
  bool client_writable = true;   // false: only controllers create and change it (Revision)
  std::string read_only_reason;  // what to do instead, for a client write to a read-only kind
  std::vector<PrinterColumn> columns;
  // Fields an update may not change (".spec.broker"), as Knative's webhooks refuse.
  std::vector<std::string> immutable_fields;
  // Strict decoding, defaults and validation of an object a client sent: the object as it is to
  // be stored (server-set metadata is the caller's job), or kInvalidArgument naming the field.
  std::function<Result<boost::json::object>(const boost::json::object&)> admit;
  boost::json::object schema;  // OpenAPI v3 schema of the whole object
  // An event source kind ('elafros source list-types'): what it does, the event types it emits.
  std::string source_description;
  std::vector<std::string> source_event_types;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  std::vector<std::string> verbs() const;
};

class KindRegistry {
 public:
  void add(KindInfo kind);
  const KindInfo* find(std::string_view group, std::string_view version,
                       std::string_view plural) const;
  const KindInfo* find_kind(std::string_view group, std::string_view kind) const;
  const std::vector<KindInfo>& all() const { return kinds_; }

 private:
  std::vector<KindInfo> kinds_;
};

// The kinds elafros serves.
const KindRegistry& builtin_kinds();
void register_serving_kinds(KindRegistry& registry);
void register_eventing_kinds(KindRegistry& registry);
void register_event_policy_kind(KindRegistry& registry);  // eventing.knative.dev/v1alpha1
void register_source_kinds(KindRegistry& registry);
void register_build_kinds(KindRegistry& registry);
void register_core_kinds(KindRegistry& registry);  // v1 Namespace
void register_rbac_kinds(KindRegistry& registry);  // Role, ClusterRole and their bindings

// A printer column's value: the subset of JSONPath that printer columns use (.a.b, ['k'] and
// [?(@.f=='v')]). Null when the path names nothing.
boost::json::value json_path_value(const boost::json::value& object, std::string_view path);

}  // namespace elafros
