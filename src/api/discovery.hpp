#pragma once
// Discovery, version, health and OpenAPI, generated from the kind registry, so that kubectl
// (api-resources, explain, get by short name) and client libraries find every kind.

#include <string>

#include "api/router.hpp"
#include "elafros/kind_registry.hpp"

namespace elafros::api {

struct ServerVersion {
  std::string elafros;  // elafrosd's own version
};

void add_discovery_routes(Router& router, const KindRegistry& kinds, ServerVersion version);

}  // namespace elafros::api
