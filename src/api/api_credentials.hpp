#pragma once
// What the HTTPS API needs to be trusted and to trust (docs/architecture.md, "Transport"):
// a CA and a server certificate made at first start under <data-dir>/tls (or the operator's
// --tls-cert/--tls-key), and Bearer tokens. A token is kept only as an HMAC-SHA256 under a
// secret key file (<data-dir>/tokens/hmac.key); the bootstrap admin token is also written, once,
// to <data-dir>/tokens/admin.token (0600) for the administrator to read. Never logged.

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "api_server.hpp"
#include "elafros/result.hpp"

namespace elafros {

class ApiCredentials final : public TokenAuthenticator {
 public:
  // Creates what is missing. cert/key: the operator's files, or empty for generated ones; hosts:
  // the names and addresses the generated server certificate is valid for.
  static Result<std::unique_ptr<ApiCredentials>> open(const std::string& data_dir,
                                                      const std::string& cert_file,
                                                      const std::string& key_file,
                                                      const std::vector<std::string>& hosts);

  const std::string& cert_file() const { return cert_file_; }
  const std::string& key_file() const { return key_file_; }
  // The CA a client should trust: the generated CA, or the operator's certificate chain.
  std::string ca_pem() const;
  std::string admin_token() const;
  // A new token for `user`, valid for ttl (0: no expiry). Returned once; only its HMAC is kept.
  Result<std::string> issue(const std::string& name, const std::string& user,
                            std::chrono::seconds ttl);

  // TokenAuthenticator
  Result<std::string> authenticate(std::string_view authorization) const override;

 private:
  struct Token {
    std::string name, user, hmac;
    std::int64_t expires = 0;  // unix seconds; 0: never
  };
  std::string hmac(std::string_view token) const;
  Result<void> save() const;

  std::string dir_;
  std::string cert_file_, key_file_, ca_file_;
  std::string key_;  // the HMAC secret
  mutable std::mutex mu_;
  std::vector<Token> tokens_;
};

}  // namespace elafros
