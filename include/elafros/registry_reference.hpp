#pragma once
// Registry image references as Docker reads them (distribution/reference):
//   docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX], or the bare form without "docker://".
// Docker's defaults apply: "nginx" is docker.io/library/nginx:latest.

#include <string>

#include "elafros/result.hpp"

namespace elafros {

struct RegistryReference {
  std::string registry;    // "docker.io", "localhost:5000", "ghcr.io"
  std::string repository;  // "library/nginx", "team/app"
  std::string tag;         // empty when pinned by digest
  std::string digest;      // "sha256:…", or empty

  // The canonical form, e.g. docker.io/library/nginx:latest.
  std::string str() const;
};

Result<RegistryReference> parse_registry_reference(const std::string& reference);

// A reference in skopeo's transport syntax (oci:, oci-archive:, docker-archive:, docker://,
// dir:, containers-storage:), not an image's name or a bare registry reference.
bool is_transport_reference(const std::string& reference);

}  // namespace elafros
