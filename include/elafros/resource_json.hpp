#pragma once
// Knative-shaped JSON for the resource model (serving.knative.dev/v1). Parsing is strict, as
// Knative's webhook is: unknown fields and wrong types are rejected with the field's path.

#include <boost/json/fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

// Parses a Service object as a client sends it. metadata.namespace, when absent, is
// default_namespace. Only client-settable fields are read; status is ignored.
Result<Service> service_from_json(const boost::json::value& json,
                                  const std::string& default_namespace);
boost::json::object service_to_json(const Service& service, const ServiceStatus* status);

Result<RevisionTemplate> template_from_json(const boost::json::value& json);
boost::json::object template_to_json(const RevisionTemplate& tmpl);

boost::json::object revision_to_json(const Revision& revision, const RevisionStatus* status);
boost::json::object image_to_json(const ImageRecord& image);
boost::json::object condition_to_json(const Condition& condition);
boost::json::array conditions_to_json(const std::vector<Condition>& conditions);

std::string format_rfc3339(std::int64_t unix_seconds);

// Kubernetes quantities: cpu in millicores ("0.5" → 500, "250m" → 250), memory in bytes
// ("128Mi", "1G", "1000"). nullopt when malformed or not positive.
std::optional<std::int64_t> parse_cpu_millis(std::string_view text);

// What one instance of a template is allotted, as Kubernetes counts a pod: the sum over its
// containers (sidecars included), or an init container's own if that is more.
struct PodResources {
  std::int64_t limits_cpu_millis = 0;
  std::int64_t limits_memory_bytes = 0;
  std::int64_t requests_cpu_millis = 0;
  std::int64_t requests_memory_bytes = 0;
};
PodResources pod_resources(const RevisionTemplate& t);
std::optional<std::int64_t> parse_memory_bytes(std::string_view text);

}  // namespace elafros
