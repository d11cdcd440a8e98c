#pragma once
// Reading and writing the metadata of an API object held as JSON (Kubernetes' ObjectMeta), and
// the Service and Revision objects of serving.knative.dev/v1 as the store keeps them.

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

inline constexpr const char* kServingGroup = "serving.knative.dev";
// Held by every Service until the serving controller has stopped its instances.
inline constexpr const char* kServiceFinalizer = "serving.elafros.dev/instances";
// Held by every Namespace until the namespace controller has deleted what it holds.
inline constexpr const char* kNamespaceFinalizer = "elafros.dev/namespace";

// metadata.<field> as a string, "" when absent.
std::string meta_string(const boost::json::object& object, std::string_view field);
std::int64_t meta_int(const boost::json::object& object, std::string_view field);
boost::json::object& metadata_of(boost::json::object& object);
// metadata.resourceVersion is a decimal string; 0 when absent or malformed.
std::int64_t resource_version_of(const boost::json::object& object);
std::string new_uid();
std::optional<std::int64_t> parse_rfc3339(std::string_view text);  // seconds since the epoch

// The stored form. status holds only what the controller records durably (a revision's image
// digest and whether it was ever Ready, a service's configuration generation); the API serves
// the live status instead.
boost::json::object service_object(const Service& service);
boost::json::object revision_object(const Revision& revision, const std::string& service_uid);
// Knative's status.containerStatuses of a revision: the serving container, then the sidecars.
boost::json::array container_statuses(const Revision& revision);
boost::json::array init_container_statuses(const Revision& revision);  // empty without any
Result<Service> service_from_object(const boost::json::object& object);
Result<Revision> revision_from_object(const boost::json::object& object);

}  // namespace elafros
