#pragma once
// The content-addressed image store under <data-dir>/images (docs/architecture.md):
//   blobs/sha256/<hex>      every manifest, config and layer, verified on the way in
//   rootfs/<manifest-hex>/  the unpacked root filesystem, shared read-only by all instances
// Calls block (hashing, copying, unpacking): run them off the io_context.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "elafros/model.hpp"
#include "elafros/result.hpp"
#include "layer_unpacker.hpp"
#include "registry_client.hpp"

namespace elafros {

// The parts of an image config (OCI image spec, config.config) that shape the process.
struct ImageConfig {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "K=V"
  std::string working_dir;
  std::string user;
};

// A parsed transport reference (skopeo's syntax): oci:DIR[:TAG], oci-archive:FILE[:TAG],
// docker-archive:FILE[:NAME:TAG].
struct ImageReference {
  std::string transport;  // "oci", "oci-archive", "docker-archive" or "docker"
  std::string path;       // the layout directory, the archive file, or the registry reference
  std::string tag;        // the tag (or NAME:TAG); empty: the only image there
};

Result<ImageReference> parse_image_reference(const std::string& reference);

class ImageStore {
 public:
  // Without a registry client, docker:// references are refused. Clears <root>/tmp: construct
  // it only while holding the data dir's lock, before any import.
  explicit ImageStore(std::string root, UnpackLimits limits = {},
                      std::shared_ptr<const RegistryClient> registry = nullptr);

  // Imports an image from a transport reference, verifying every digest, and unpacks its root
  // filesystem. The record's name is `name`, or DIR-basename:TAG (the canonical registry
  // reference for pulls) when empty. Pulls report to `progress`.
  // `login`, for a pull: used instead of the daemon's login for that registry.
  Result<ImageRecord> import(const std::string& reference, const std::string& name,
                             const PullProgressFn& progress = {},
                             const std::optional<RegistryCredentials>& login = std::nullopt);

  // Pushes a stored image to a registry reference (HOST/REPO[:TAG]), its manifest byte for
  // byte: the registry then holds the same digest. Returns that digest.
  Result<std::string> push(const std::string& manifest_digest, const std::string& destination,
                           const PushProgressFn& progress = {}) const;

  Result<ImageConfig> config(const std::string& manifest_digest) const;
  // The unpacked root filesystem of an imported image.
  std::string rootfs_path(const std::string& manifest_digest) const;
  bool has_rootfs(const std::string& manifest_digest) const;

  // Removes every blob and unpacked root filesystem that the manifests in `keep` do not need,
  // except files younger than `grace` (an import may not have been recorded yet). Returns the
  // bytes freed.
  Result<std::uint64_t> prune(const std::vector<std::string>& keep, std::chrono::seconds grace);
  std::string blob_path(const std::string& digest) const;
  // A fresh path under the store's tmp/ (cleared at start), for a layout to import: its blobs
  // are moved into the store rather than copied.
  std::string scratch_path(std::string_view what) const;

 private:
  Result<ImageRecord> import_any(const std::string& reference, const std::string& name);
  Result<ImageRecord> pull(const std::string& reference, const std::string& name,
                           const PullProgressFn& progress,
                           const std::optional<RegistryCredentials>& login);
  Result<ImageRecord> import_locked(const std::string& reference, const std::string& name,
                                    const std::string& pulled_layout);
  Result<ImageRecord> import_layout(const std::string& layout, const std::string& tag,
                                    const std::string& reference, const std::string& name);
  Result<ImageRecord> import_docker_archive(const std::string& dir, const std::string& tag,
                                            const std::string& reference, const std::string& name);
  Result<void> check_size(std::int64_t bytes, const std::string& reference) const;
  Result<std::string> copy_blob(const std::string& layout, const std::string& digest,
                                std::int64_t size) const;
  Result<void> unpack(const std::string& manifest_digest,
                      const std::vector<std::string>& layer_digests) const;

  std::string root_;
  UnpackLimits limits_;
  std::shared_ptr<const RegistryClient> registry_;
  std::mutex mutex_;  // imports and prunes, one at a time (they run on worker threads)
};

// Hex sha256 of a file's content.
Result<std::string> sha256_file(const std::string& path);

}  // namespace elafros
