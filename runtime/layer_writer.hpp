#pragma once
// Writes a directory as one reproducible OCI image layer (image-spec layer.md, "Distributable
// Format"): a PAX tar whose entries come in sorted byte order, parents first, every mtime the
// same fixed time, every owner the same uid/gid and no user or group names, then gzip with a
// fixed level and no name or time in its header. The same tree gives the same bytes, so the
// same digest. Symlinks that are absolute or leave the tree, and device nodes, sockets and
// FIFOs, are refused by name. Blocks: call it off the io_context.

#include <cstdint>
#include <string>

#include "elafros/result.hpp"

namespace elafros {

struct LayerWriteOptions {
  // Where the directory appears in the image, e.g. "/workspace"; its parents are written too.
  std::string image_path = "/workspace";
  std::int64_t mtime = 315532801;  // 1980-01-01T00:00:01Z, as pack and imgutil use
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t max_bytes = 16ULL << 30;  // uncompressed
};

struct WrittenLayer {
  std::string digest;   // sha256 of the gzip blob, "sha256:…"
  std::string diff_id;  // sha256 of the uncompressed tar
  std::int64_t size = 0;
};

Result<WrittenLayer> write_layer(const std::string& dir, const std::string& out_path,
                                 const LayerWriteOptions& options);

}  // namespace elafros
