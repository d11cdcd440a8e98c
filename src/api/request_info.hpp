#pragma once
// What a request asks, in RBAC's terms (Kubernetes' RequestInfoResolver): the verb from the
// method (GET on a collection is list, with watch=true watch), the API group, resource,
// subresource, namespace and name from the path, and for elafrosd's own endpoints (images,
// registries, tokens, system) the resource each stands for. Anything else is a non-resource
// request on its path (/metrics, /version, discovery).

#include <map>
#include <string>

#include "elafros/rbac.hpp"

namespace elafros::api {

RequestAttributes request_attributes(const std::string& method, const std::string& path,
                                     const std::map<std::string, std::string>& query);

}  // namespace elafros::api
