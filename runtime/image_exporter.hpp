#pragma once
// Turns a build's output directory into an image on a base (docs/architecture.md, "Builds"),
// per the OCI image spec: the base's layers, diff_ids and history kept verbatim, one
// reproducible layer (layer_writer) appended, the config and manifest serialized the same way
// every time, and the result imported through the image store's verifying path.

#include <memory>

#include "elafros/build_backend.hpp"
#include "image_store.hpp"

namespace elafros {

class OciImageExporter final : public ImageExporter {
 public:
  explicit OciImageExporter(std::shared_ptr<ImageStore> images) : images_(std::move(images)) {}

  // ImageExporter
  Result<ExportedImage> export_image(const ImageExport& spec) override;

 private:
  std::shared_ptr<ImageStore> images_;
};

}  // namespace elafros
