#pragma once
// DomainMappings' own certificates (spec.tls.secretName, a kubernetes.io/tls Secret in the
// mapping's namespace) for the proxy's HTTPS listener. On the control strand it follows the
// mappings and the Secrets, reads them from the store, checks each certificate and key, and
// publishes the good ones to ProxyCertificates; what is wrong with the others shows in the
// mapping's CertificateProvisioned condition.

#include <map>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class ObjectStore;
class WatchSource;
class ProxyCertificates;

class DomainCertificates {
 public:
  DomainCertificates(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
                     ObjectStore& store, WatchSource& watches, ProxyCertificates& certificates);
  ~DomainCertificates();
  DomainCertificates(const DomainCertificates&) = delete;
  DomainCertificates& operator=(const DomainCertificates&) = delete;

  // Loads what exists, then follows changes.
  void start();
  void stop();

  // On the control strand: whether the mapping NS/NAME's certificate is served, and if not why.
  struct Status {
    bool served = false;
    std::string message;  // why not, when it has a secretName
  };
  Status status(const std::string& ns, const std::string& name) const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
