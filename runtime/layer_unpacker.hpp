#pragma once
// Applies OCI image layers (tar, optionally gzip/zstd compressed) onto a root directory, the way
// the OCI image spec describes: in order, with .wh. whiteouts and .wh..wh..opq opaque markers.
// Nothing is ever written outside the root: entries with absolute paths or "..", entries whose
// path goes through a symlink (one from a lower layer or from earlier in the same layer), device
// nodes, and hardlinks whose target resolves outside the root are rejected by name.

#include <cstdint>
#include <string>

#include "elafros/result.hpp"

namespace elafros {

struct UnpackLimits {
  std::uint64_t max_layer_bytes = 16ULL << 30;  // uncompressed bytes of one layer (max-layer-bytes)
  std::uint64_t max_image_bytes = 32ULL << 30;  // stored bytes of one image (max-image-bytes)
};

Result<void> unpack_layer(const std::string& layer_path, const std::string& root,
                          const UnpackLimits& limits = {});

}  // namespace elafros
