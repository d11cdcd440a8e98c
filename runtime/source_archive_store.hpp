#pragma once
// Uploaded source archives (docs/architecture.md, "Builds"), kept by digest under
// <data-dir>/builds/sources/sha256/<hex>.tar: the same source uploaded again is stored once.

#include <cstdint>
#include <string>

#include "elafros/build_backend.hpp"

namespace elafros {

struct SourceLimits {
  std::uint64_t max_bytes = 1ULL << 30;  // uncompressed content
  std::uint64_t max_entries = 200000;
};

class SourceArchiveStore final : public SourceArchives {
 public:
  SourceArchiveStore(std::string root, SourceLimits limits = {});

  // SourceArchives
  Result<std::string> add(const std::string& tar_path) override;
  bool has(const std::string& digest) const override;
  Result<void> unpack(const std::string& digest, const std::string& dir) const override;

  std::string path_of(const std::string& digest) const;

 private:
  std::string root_;
  SourceLimits limits_;
};

// Checks a source archive's entries without unpacking it: kInvalidArgument naming the first
// entry that is absolute, holds "..", is a device, FIFO or whiteout, or is a link that is
// absolute or leaves the tree, or when the archive is over the limits.
Result<void> check_source_archive(const std::string& tar_path, const SourceLimits& limits);

}  // namespace elafros
