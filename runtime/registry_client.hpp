#pragma once
// A client of the OCI distribution API (registry v2), as docs/architecture.md describes:
//  - manifests (OCI and Docker schema2), image indexes resolved to linux/<host arch>, blobs
//    streamed to disk with their sha256 checked against the content, redirects followed;
//  - anonymous, Basic and Bearer-token (WWW-Authenticate challenge → token endpoint) auth;
//  - TLS with the system CA store plus Docker's certs.d layout; plain HTTP only for loopback
//    registries and those configured as insecure (which also skip TLS verification, as Docker's
//    insecure-registries do);
//  - a timeout on connecting and on every silence while reading.
// Calls block; run them off the io_context. Passwords and tokens are never logged or put in
// an error message.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "elafros/registry_reference.hpp"
#include "elafros/result.hpp"
#include "registry_credentials.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

struct RegistryOptions {
  std::vector<std::string> insecure_registries;  // HOST[:PORT], as Docker's insecure-registries
  std::string certs_dir;  // <certs_dir>/<HOST[:PORT]>/*.crt are CAs trusted for that registry
  std::chrono::seconds timeout{60};
};

// What a pull is doing, for progress displays. Blobs report kDownloading repeatedly (at most
// every ~100 ms) and kDone once; blobs the store already has report kExists.
struct PullProgress {
  enum class Phase { kResolved, kExists, kDownloading, kDone };
  Phase phase = Phase::kResolved;
  std::string digest;  // the blob, or the manifest for kResolved
  std::string kind;    // "manifest", "config" or "layer"
  std::int64_t done = 0;
  std::int64_t total = 0;
};
using PullProgressFn = std::function<void(const PullProgress&)>;

struct PullRequest {
  RegistryReference reference;
  std::string layout_dir;  // written as an OCI image layout whose only tag is `tag`
  std::string tag;
  std::function<bool(const std::string& digest)> have_blob;  // stored blobs are not downloaded
  std::int64_t max_bytes = 0;                                // 0: no limit
  PullProgressFn progress;
  // A login for this pull only (a revision's imagePullSecrets), before the daemon's own.
  std::optional<RegistryCredentials> login;
};

// What a push is doing: each blob exists already, is mounted from another repository of the
// registry, or is uploaded (kUploading repeatedly, then kDone); then the manifest.
struct PushProgress {
  enum class Phase { kExists, kMounted, kUploading, kDone, kManifest };
  Phase phase = Phase::kExists;
  std::string digest;
  std::string kind;  // "config", "layer" or "manifest"
  std::int64_t done = 0;
  std::int64_t total = 0;
};
using PushProgressFn = std::function<void(const PushProgress&)>;

struct PushBlob {
  std::string digest;
  std::int64_t size = 0;
  std::string path;  // its content
  std::string kind;  // "config" or "layer"
};

struct PushRequest {
  RegistryReference reference;  // the repository, and the tag to set (none: by digest only)
  std::string manifest;         // pushed byte for byte, so its digest stays
  std::string media_type;
  std::vector<PushBlob> blobs;
  PushProgressFn progress;
  std::int64_t chunk_bytes = 16 << 20;  // bigger blobs go up in PATCHes of this size
};

class RegistryClient {
 public:
  RegistryClient(RegistryOptions options, std::shared_ptr<const CredentialStore> credentials);

  Result<void> pull(const PullRequest& request) const;
  // The OCI distribution push flow: HEAD each blob (one the registry has is skipped), mount it
  // from another repository of the registry this client pushed it to, or upload it (POST then
  // one PUT, or PATCHes of chunk_bytes then the PUT), then PUT the manifest. Returns the
  // manifest digest the registry reports.
  Result<std::string> push(const PushRequest& request) const;

  // Checks credentials the way `docker login` does: GET /v2/ with them, through the token
  // endpoint when the registry asks for one.
  Result<void> check_login(const std::string& registry,
                           const RegistryCredentials& credentials) const;

  // Loopback registries and the configured insecure ones may use plain HTTP.
  bool relaxed(const std::string& host_port) const;

  // Ends every pull and login check in progress at once (they fail, leaving nothing behind),
  // and refuses new ones: the daemon is stopping. Any thread.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  // Connections register their private io_context so that cancel() can stop it.
  void track(boost::asio::io_context* io, bool add) const;

  const RegistryOptions& options() const { return options_; }

 private:
  RegistryOptions options_;
  std::shared_ptr<const CredentialStore> credentials_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  mutable std::set<boost::asio::io_context*> active_;
  // Blobs pushed so far: registry → digest → a repository holding it (for mounts).
  mutable std::map<std::string, std::map<std::string, std::string>> pushed_;
};

}  // namespace elafros
