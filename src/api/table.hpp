#pragma once
// Kubernetes' Table output (Accept: application/json;as=Table;v=v1;g=meta.k8s.io): the kind's
// printer columns, one row per object, as `kubectl get` prints them.

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "elafros/kind_registry.hpp"

namespace elafros::api {

boost::json::object table(const KindInfo& kind, const std::vector<boost::json::object>& objects,
                          const std::string& resource_version, const std::string& continue_token);

}  // namespace elafros::api
