#pragma once
// The certificates of the proxy's HTTPS listener (--listen-tls), chosen per connection by the
// host name the client sends (SNI), in this order:
//   1. HOST.crt and HOST.key from the certificate directory (tls-cert-dir);
//   2. a DomainMapping's own, from the kubernetes.io/tls Secret its spec.tls.secretName names;
//   3. a wildcard from the directory: *.example.com.crt (or _.example.com.crt) and its key;
//   4. for any other host the proxy routes (NAME.NAMESPACE.DOMAIN, tags, mapped domains, the
//      brokers' ingress), one the daemon's local CA issues on first use and keeps in memory;
//   5. else the listener's default, issued for localhost.
// ALPN offers h2 and http/1.1. Used on the proxy thread, but for publish_mapped.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "api/local_ca.hpp"
#include "elafros/result.hpp"
#include "elafros/routing.hpp"

namespace boost::asio::ssl {
class context;
}
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

struct ssl_ctx_st;

namespace elafros {

// The DomainMappings' certificates, by host name (lower case).
using MappedCertificates = std::map<std::string, PemPair>;

class ProxyCertificates {
 public:
  struct Options {
    std::string cert_dir;  // empty: none
    const LocalCa* ca = nullptr;
    const RoutingSnapshot* routes = nullptr;  // which hosts get a certificate from the CA
    std::string ingress_host;                 // the brokers' ingress, which gets one too
  };
  static Result<std::unique_ptr<ProxyCertificates>> open(Options options);
  ~ProxyCertificates();
  ProxyCertificates(const ProxyCertificates&) = delete;
  ProxyCertificates& operator=(const ProxyCertificates&) = delete;

  // The listener's context: its SNI callback switches to the host's.
  boost::asio::ssl::context& context();

  // The DomainMappings' certificates changed (the control plane). Any thread.
  void publish_mapped(std::shared_ptr<const MappedCertificates> mapped);

  // Checks that `pair` is a PEM certificate chain and the private key of its first certificate:
  // what is wrong with it, or empty.
  static std::string problem(const PemPair& pair);

 private:
  explicit ProxyCertificates(Options options);
  std::shared_ptr<SSL_CTX> for_host(std::string host);
  static int on_server_name(SSL* ssl, int* alert, void* arg);

  Options options_;
  std::unique_ptr<boost::asio::ssl::context> context_;
  std::unordered_map<std::string, std::shared_ptr<SSL_CTX>> files_;      // exact host names
  std::unordered_map<std::string, std::shared_ptr<SSL_CTX>> wildcards_;  // by suffix ".example.com"
  std::atomic<std::shared_ptr<const MappedCertificates>> mapped_;
  std::shared_ptr<const MappedCertificates> mapped_seen_;  // what mapped_cache_ was made from
  std::unordered_map<std::string, std::shared_ptr<SSL_CTX>> mapped_cache_;
  std::unordered_map<std::string, std::shared_ptr<SSL_CTX>> issued_;  // by the local CA
};

// Has a TLS server context offer h2, then http/1.1, by ALPN (the API's listener as the proxy's).
void offer_h2(ssl_ctx_st* ctx);

}  // namespace elafros
