#pragma once
// The two patch formats kubectl sends (docs/architecture.md, "API"): JSON merge patch
// (RFC 7386, application/merge-patch+json) and JSON patch (RFC 6902, application/json-patch+json).

#include <boost/json/value.hpp>

#include "elafros/result.hpp"

namespace elafros {

// Returns the target with the merge patch applied: objects merge key by key, null removes.
boost::json::value apply_merge_patch(const boost::json::value& target,
                                     const boost::json::value& patch);

// Applies every operation of a JSON patch document in order, or none: kBadRequest naming the
// operation and path that cannot be applied.
Result<boost::json::value> apply_json_patch(const boost::json::value& target,
                                            const boost::json::value& patch);

}  // namespace elafros
