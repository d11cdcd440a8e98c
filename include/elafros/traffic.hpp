#pragma once
// Knative traffic semantics (serving.knative.dev/v1 Route): targets name a revision or
// `latestRevision: true`, carry a percent and an optional tag; percents sum to 100.

#include <string>
#include <string_view>
#include <vector>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

// Checks a service's spec.traffic against the names of its revisions (including one about to be
// created). Empty traffic is valid: it means 100% to the latest ready revision.
Result<void> validate_traffic(const std::vector<TrafficTarget>& traffic, std::string_view service,
                              const std::vector<std::string>& revisions);

// Resolves @latest to `latest_ready` (dropping such targets when nothing is ready yet).
std::vector<ResolvedTrafficTarget> resolve_traffic(const std::vector<TrafficTarget>& traffic,
                                                   const std::string& latest_ready);

// The host of a tag: TAG-NAME.NAMESPACE.DOMAIN.
std::string tag_host(std::string_view tag, std::string_view name, std::string_view ns,
                     std::string_view domain);

// Index of the target a request goes to, for roll uniformly drawn from [0, 100).
std::size_t pick_by_percent(const std::vector<int>& percents, unsigned roll);

}  // namespace elafros
