#pragma once
// Registry logins, kept by the daemon in <data-dir>/registries/auth.json (mode 0600, written
// atomically) in the layout of Docker's config.json: {"auths": {"HOST": {"auth": base64(U:P)}}}.
// Thread-safe: the API writes while pulls on worker threads read.

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "elafros/base64.hpp"
#include "elafros/result.hpp"

namespace elafros {

struct RegistryCredentials {
  std::string username;
  std::string password;
};

// The key a login is stored under: Docker Hub's aliases become "docker.io"; a scheme and a
// trailing path are dropped. Refuses what is not a host[:port].
Result<std::string> canonical_registry_host(const std::string& host);

// The logins of a Docker config.json ({"auths": {HOST: {"auth": base64(U:P)} or {"username",
// "password"}}}, or the older .dockercfg form without "auths"), by canonical host: what a
// kubernetes.io/dockerconfigjson Secret holds. The error says what is wrong, never a password.
Result<std::map<std::string, RegistryCredentials>> docker_config_logins(const std::string& text);

class CredentialStore {
 public:
  explicit CredentialStore(std::string path);

  // Reads the file; a missing file is no logins.
  Result<void> load();
  std::optional<RegistryCredentials> get(const std::string& registry) const;
  Result<void> put(const std::string& registry, const RegistryCredentials& credentials);
  // False when there was no login for `registry`.
  Result<bool> remove(const std::string& registry);
  // Registry → username, never the password.
  std::map<std::string, std::string> usernames() const;

 private:
  Result<void> save_locked() const;

  std::string path_;
  mutable std::mutex mutex_;
  std::map<std::string, RegistryCredentials> logins_;
};

}  // namespace elafros
