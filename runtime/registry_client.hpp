#pragma once
// A client of the OCI distribution API (registry v2). So far: anonymous pulls over plain HTTP
// from loopback registries. TLS, authentication, redirects to other hosts and progress are
// still to come (issue 5).

#include <string>

#include "elafros/result.hpp"
#include "registry_reference.hpp"

namespace elafros {

// Downloads an image (resolving an index to linux/<host arch>) into `layout_dir` as an OCI image
// layout whose only tag is `tag`, for ImageStore to import and verify. Blocks; run it off the
// io_context.
Result<void> pull_to_layout(const RegistryReference& ref, const std::string& layout_dir,
                            const std::string& tag);

}  // namespace elafros
