#pragma once
// Secrets at rest (docs/architecture.md, "Secrets"): AES-256-GCM under keys kept in a file
// (<data-dir>/keys/secrets.keys, 0600) outside the database, as Kubernetes' aescbc/aesgcm
// encryption providers do. A sealed value is "k1:<key id>:<base64 nonce|ciphertext|tag>"; the
// first key seals, every key opens, so a rotation adds a key, reseals every Secret, then drops
// the others.

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

class SecretCipher {
 public:
  // Opens the key file, making it (with one new key) when missing.
  static Result<std::unique_ptr<SecretCipher>> open(const std::string& path);

  std::string seal(std::string_view plaintext) const;
  // kFailedPrecondition when the value was sealed by a key the file no longer has, or altered.
  Result<std::string> unseal(std::string_view sealed) const;
  // A new key that seals from now on (the old ones still open). Returns its id.
  Result<std::string> add_key();
  // Drops every key but the current one.
  Result<void> drop_old_keys();
  std::string current_key_id() const;

 private:
  struct Key {
    std::string id;     // 8 hex digits of SHA-256(key)
    std::string bytes;  // 32
  };
  Result<void> save_locked() const;
  std::string path_;
  mutable std::mutex mu_;
  std::vector<Key> keys_;  // keys_[0] seals
};

}  // namespace elafros
