#pragma once
// What the HTTPS API needs to be trusted (docs/architecture.md, "Transport"): a CA and a
// server certificate made at first start under <data-dir>/tls, or the operator's
// --tls-cert/--tls-key. Tokens are ApiTokens'.

#include <memory>
#include <string>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

class ApiCredentials {
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

 private:
  std::string cert_file_, key_file_, ca_file_;
};

}  // namespace elafros
