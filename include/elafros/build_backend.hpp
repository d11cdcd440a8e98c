#pragma once
// What the build controller needs from the runtime, behind interfaces (docs/architecture.md,
// "Builds"): uploaded source archives, and turning a directory into an image on a base.
// Implemented in runtime/ by SourceArchiveStore and OciImageExporter. Every call blocks
// (hashing, unpacking, compressing): call them off the io_context.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

// Source archives that clients upload (a tar of a directory), kept by digest.
class SourceArchives {
 public:
  virtual ~SourceArchives() = default;
  // Checks a tar file (relative paths only, no "..", no device nodes, no symlink that is
  // absolute or leaves the tree, within the limits) and stores it. Returns "sha256:…". A bad
  // archive is kInvalidArgument naming the entry, and nothing is stored.
  virtual Result<std::string> add(const std::string& tar_path) = 0;
  virtual bool has(const std::string& digest) const = 0;
  // Unpacks a stored archive into `dir` (which exists and is empty).
  virtual Result<void> unpack(const std::string& digest, const std::string& dir) const = 0;
};

// A directory made into one image layer on a base image (the OCI image spec's layer, config
// and manifest), stored through the image store's verifying import.
struct ImageExport {
  std::string base_digest;                // manifest digest of an image in the store
  std::string source_dir;                 // the host directory whose content is the layer
  std::string image_path;                 // where it appears in the image, e.g. "/workspace"
  std::string name;                       // the image name to store it under, e.g. "app:latest"
  std::int64_t created_unix = 315532801;  // SOURCE_DATE_EPOCH; 1980-01-01T00:00:01Z
  std::uint32_t uid = 0;                  // owner of every file in the layer
  std::uint32_t gid = 0;
  std::string history;  // created_by of the layer's history entry
  // Overrides of the base's config (OCI config.config); unset keeps the base's.
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::vector<EnvVar> env;  // added to (or replacing names of) the base's
  std::string working_dir;
  std::string user;
};

struct ExportedImage {
  ImageRecord record;
  std::string layer_digest;  // the new layer's blob
  std::string diff_id;
  std::int64_t layer_bytes = 0;  // compressed
  bool layer_existed = false;    // the same layer was stored before (an unchanged output)
};

class ImageExporter {
 public:
  virtual ~ImageExporter() = default;
  virtual Result<ExportedImage> export_image(const ImageExport& spec) = 0;
};

}  // namespace elafros
