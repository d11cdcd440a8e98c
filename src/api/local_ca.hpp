#pragma once
// The daemon's own certificate authority (docs/architecture.md, "Transport"): made at first
// start as <data-dir>/tls/ca.crt and ca.key. It signs the HTTPS API's server certificate and
// the proxy's certificates for the hosts it serves (NAME.NAMESPACE.DOMAIN, mapped domains),
// so that a client that trusts ca.crt ('elafros system trust') verifies both.

#include <memory>
#include <string>
#include <vector>

#include "elafros/result.hpp"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace elafros {

// A certificate and its private key, in PEM.
struct PemPair {
  std::string cert;
  std::string key;
};

class LocalCa {
 public:
  // Reads <dir>/ca.crt and <dir>/ca.key, making both (mode 0600) when either is missing.
  static Result<LocalCa> open(const std::string& dir);

  const std::string& cert_file() const { return cert_file_; }
  std::string cert_pem() const;
  // A server certificate for `hosts` (DNS names, or IP addresses), with a new P-256 key, valid
  // for `days`. The first host is also its common name.
  Result<PemPair> issue(const std::vector<std::string>& hosts, long days = 825) const;

 private:
  std::string cert_file_;
  std::shared_ptr<EVP_PKEY> key_;
  std::shared_ptr<X509> cert_;
};

}  // namespace elafros
