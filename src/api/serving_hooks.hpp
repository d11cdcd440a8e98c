#pragma once
// Service and Revision behaviour in the generic verbs: a Service whose template changes mints a
// new Revision in the same transaction, pinning its image digest; a Revision that serves
// traffic cannot be deleted; reads carry the serving controller's live status. A hostPath
// volume outside the operator's prefixes is refused, and so is deleting a PersistentVolumeClaim
// that a live instance mounts.

#include <functional>
#include <optional>

#include "api/api_server.hpp"
#include "api/resource_api.hpp"
#include "elafros/model.hpp"
#include "registry_credentials.hpp"

namespace boost::asio {
class thread_pool;
}

namespace elafros {
class Reconciler;
namespace api {

class ImagePuller;

class ServingHooks final : public KindHooks {
 public:
  ServingHooks(boost::asio::thread_pool& store_thread, ObjectStore& store, ImagePuller& images,
               Reconciler& reconciler, std::vector<std::string> host_path_prefixes);

  // KindHooks
  awaitable<Result<void>> before_write(const KindInfo& kind, const boost::json::object* old,
                                       boost::json::object& object, std::vector<ObjectWrite>& also,
                                       bool dry_run) override;
  awaitable<Result<void>> before_delete(const KindInfo& kind,
                                        const boost::json::object& current) override;
  void present(const KindInfo& kind, boost::json::object& object) override;

  // Set when the proxy serves HTTPS (--listen-tls); called on the control strand.
  DomainTlsLookup domain_tls;

 private:
  // Knative's SinkBinding: the binding that selects the Service puts K_SINK (and
  // K_CE_OVERRIDES) in its containers in this same write; one that no longer does takes them out.
  awaitable<Result<void>> bind_sinks(boost::json::object& object);
  // The login the template's imagePullSecrets hold for `image`'s registry, if any.
  awaitable<Result<std::optional<RegistryCredentials>>> pull_login(std::string ns,
                                                                   RevisionTemplate t,
                                                                   std::string image);
  // Resolves one of the template's images to a stored one (pulling it if need be): its digest.
  awaitable<Result<std::string>> pin(std::string ns, RevisionTemplate t, ContainerSpec c,
                                     std::string field);
  awaitable<Result<std::vector<std::string>>> revision_names(std::string ns, std::string service,
                                                             std::string service_uid);

  boost::asio::thread_pool& store_thread_;
  ObjectStore& store_;
  ImagePuller& images_;
  Reconciler& reconciler_;
  std::vector<std::string> host_path_prefixes_;
};

}  // namespace api
}  // namespace elafros
