#pragma once
// Knative's event sources as elafros reads them (docs/architecture.md, "Sources"):
// sources.knative.dev/v1 PingSource, SinkBinding, ContainerSource and ApiServerSource, and
// eventing.knative.dev/v1beta2 EventType. Parsed from stored objects their kinds admitted.

#include <boost/json/fwd.hpp>
#include <map>
#include <string>
#include <vector>

#include "elafros/cron.hpp"
#include "elafros/eventing.hpp"
#include "elafros/label_selector.hpp"
#include "elafros/result.hpp"

namespace elafros {

inline constexpr const char* kSourcesGroup = "sources.knative.dev";

// What every source has: where it sends, and attributes it sets on every event it sends.
struct SourceCommon {
  std::string namespace_, name, uid;
  std::int64_t generation = 0;
  Destination sink;
  std::map<std::string, std::string> ce_overrides;  // spec.ceOverrides.extensions
};

struct PingSource : SourceCommon {
  std::string schedule_text;  // as written ("*/2 * * * *")
  CronSchedule schedule;
  std::string timezone = "UTC";
  std::string content_type;
  std::string data;  // dataBase64 decoded
};

struct SinkBinding : SourceCommon {
  std::string subject_name;        // a Service by name, or
  LabelSelector subject_selector;  // the Services of the namespace its labels select
  bool binds(const std::string& service, const std::map<std::string, std::string>& labels) const;
};

struct ApiServerResource {
  std::string group, version, kind;  // a registered kind
  LabelSelector selector;
};

struct ApiServerSource : SourceCommon {
  std::vector<ApiServerResource> resources;
  std::string mode = "Reference";  // or "Resource"
};

Result<PingSource> ping_source_from_object(const boost::json::object& object);
Result<SinkBinding> sink_binding_from_object(const boost::json::object& object);
Result<ApiServerSource> api_server_source_from_object(const boost::json::object& object);
Result<SourceCommon> source_common_from_object(const boost::json::object& object);

// The PingSource event's fixed attributes: type and source.
inline constexpr const char* kPingEventType = "dev.knative.sources.ping";
std::string ping_event_source(const std::string& ns, const std::string& name);

// The ApiServerSource event types: dev.knative.apiserver.{resource|ref}.{add|update|delete}.
std::string api_server_event_type(const std::string& mode, const char* verb);

// The environment a SinkBinding puts in its subjects' containers.
inline constexpr const char* kSinkEnv = "K_SINK";
inline constexpr const char* kCeOverridesEnv = "K_CE_OVERRIDES";
// A Service's annotation naming the SinkBinding whose K_SINK its template carries.
inline constexpr const char* kBoundByAnnotation = "sources.knative.dev/sinkbinding";

}  // namespace elafros
