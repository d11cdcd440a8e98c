#pragma once
// API tokens (docs/architecture.md, "Identities"): `elf_<accessor>_<secret>`, a prefix secret
// scanners match, a 16-character public accessor and a 32-character base62 secret (190 bits).
// Only HMAC-SHA256(key, secret) is kept, in <data-dir>/tokens/tokens.json (0600), under the key
// <data-dir>/tokens/hmac.key (0600): neither is in the database, so its backups and exports
// carry no credential. Compared in constant time; optional expiry; revocable; lastUsed kept
// (written at most once a minute). The full token is returned once, at creation; logs and
// audit name only the accessor. The bootstrap admin token (user system:admin, group
// system:masters) is also written to <data-dir>/tokens/admin.token (0600) for the operator.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "elafros/rbac.hpp"
#include "elafros/result.hpp"

namespace elafros {

struct TokenInfo {
  std::string name, accessor, user;
  std::vector<std::string> groups;
  std::int64_t created = 0, expires = 0, last_used = 0, revoked = 0;  // unix seconds; 0: none
};

class ApiTokens {
 public:
  // Creates the key and the admin token when missing.
  static Result<std::unique_ptr<ApiTokens>> open(const std::string& data_dir);

  std::string admin_token() const;
  // A new token for `user`, valid for ttl (0: no expiry): the full token, returned once.
  // kAlreadyExists when a live token has that name.
  Result<std::string> issue(const std::string& name, const std::string& user,
                            std::chrono::seconds ttl);
  // By name or accessor. kNotFound when there is none.
  Result<TokenInfo> revoke(const std::string& name_or_accessor);
  std::vector<TokenInfo> list() const;
  // The identity an `Authorization: Bearer elf_…` header names, or kUnauthorized saying why.
  Result<Identity> authenticate(std::string_view authorization);
  // Writes lastUsed when it changed (blocking: call it off the io threads).
  Result<void> flush();
  // The wall clock, in unix seconds (tests set their own).
  void set_clock(std::function<std::int64_t()> now) { now_ = std::move(now); }

 private:
  struct Token {
    TokenInfo info;
    std::string hmac;
  };
  std::string hmac(std::string_view secret) const;
  std::int64_t now() const;
  std::string snapshot_locked() const;                // the file's text; mu_ held
  Result<void> write(const std::string& text) const;  // blocking; write_mu_ held

  std::string dir_;
  std::string key_;
  mutable std::mutex mu_;
  std::mutex write_mu_;
  std::vector<Token> tokens_;
  bool dirty_ = false;
  std::function<std::int64_t()> now_;
};

// "elf_" + accessor, what logs and audit name.
std::string token_accessor_label(const std::string& accessor);

}  // namespace elafros
