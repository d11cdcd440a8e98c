#pragma once
// The API: Kubernetes-style resources and elafrosd's own endpoints, over the unix socket
// (0660), over HTTPS with Bearer tokens (--api-listen), and GET /metrics alone over plain TCP
// (--metrics-listen). Runs on the control io_context; store and image work runs on their own
// threads (docs/architecture.md, "API").

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "elafros/event_policy.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_store.hpp"
#include "elafros/object_writer.hpp"
#include "elafros/rbac.hpp"
#include "elafros/result.hpp"
#include "elafros/store.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {
namespace api {
class AuditLog;
}

class ApiCredentials;
class ApiTokens;
class CredentialStore;
class ProcessRunner;
class SourceArchives;
class ImageStore;
class LogCollector;
struct LogHealth;
class Reconciler;
class RegistryClient;

// The daemon as the API describes it (status, /metrics), and the API listeners' limits.
// A DomainMapping's own certificate (spec.tls.secretName) on the HTTPS proxy.
struct DomainTlsStatus {
  bool served = false;
  std::string message;  // why not
  std::string url;      // https://HOST[:PORT], when served
};
using DomainTlsLookup =
    std::function<DomainTlsStatus(const std::string& ns, const std::string& name)>;

struct ApiInfo {
  std::string version;
  std::string data_dir;
  std::string socket;
  std::string listen;
  std::string domain;
  std::string runtime;
  std::uint64_t disk_free_warning_bytes = 0;  // status warns below this much free space
  std::size_t max_connections = 0;            // per API listener (api-max-connections); 0: none
  // Adds the daemon's other log writers (the access log) to what status and /metrics report.
  std::function<void(LogHealth&)> more_log_health;
  std::function<std::string()> more_metrics;  // Prometheus text appended to /metrics (events)
  // Builds (docs/architecture.md, "Builds"): uploaded sources, the builds' log collector, the
  // runner of git ls-remote, and the largest source upload taken.
  SourceArchives* build_sources = nullptr;
  LogCollector* build_logs = nullptr;
  ProcessRunner* runner = nullptr;
  std::size_t build_source_max_bytes = 512u << 20;
  // Identities and authorization (docs/architecture.md, "Authorization"): the tokens, the RBAC
  // authorizer's answers (unset: everything is allowed), the socket-group whose members are
  // administrators, and whether /metrics may be read without a token.
  ApiTokens* tokens = nullptr;
  std::function<Decision(const Identity&, const RequestAttributes&)> authorize;
  std::function<std::vector<PolicyRule>(const Identity&, const std::string&)> rules_for;
  std::optional<unsigned> socket_gid;
  bool metrics_anonymous = true;
  api::AuditLog* audit = nullptr;  // every request's record (docs/architecture.md, "Audit")
  std::vector<std::string> host_path_prefixes;  // hostPath volumes are refused outside them
  // More admission after RBAC's (quotas and limits): may change the object, or refuse it.
  std::function<boost::asio::awaitable<Result<void>>(const KindInfo&, const boost::json::object*,
                                                     boost::json::object&)>
      admission;
  // The API listeners' deadlines (api::SessionOptions): a request's header from its first byte,
  // each read of its body, each write of an answer or a stream (logs -f, watch).
  std::chrono::seconds header_timeout{15};
  std::chrono::seconds body_timeout{60};
  std::chrono::seconds send_timeout{60};
  std::size_t max_connections_per_client = 0;  // per TCP client address (max-connections-per-client)
  // The proxy's HTTPS listener (ADDRESS:PORT, empty: none), and the local CA's certificate
  // (PEM) that its certificates and the HTTPS API's chain to: 'elafros system trust'.
  std::string listen_tls;
  std::string ca_pem;
  DomainTlsLookup domain_tls;  // DomainMappings' certificates there
};

class ApiServer {
 public:
  ApiServer(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
            boost::asio::thread_pool& blocking, Store& store, ObjectCommitter& committer,
            WatchSource& watches, ImageStore& images, RegistryClient& registry,
            CredentialStore& credentials, LogCollector& logs, Reconciler& reconciler, ApiInfo info);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Creates the socket (replacing a stale one) with this mode. Its peers are identified by
  // SO_PEERCRED, so the mode need not be the access control.
  Result<void> listen(const std::string& socket_path, unsigned mode);
  // HTTPS on ADDRESS:PORT with these credentials; every request needs a Bearer token.
  Result<unsigned short> listen_https(const std::string& address, unsigned short port,
                                      ApiCredentials& tls);
  // Also serves GET /metrics on ADDRESS:PORT (TCP), to a token or, with metrics-anonymous, to
  // anyone.
  Result<void> listen_metrics(const std::string& address, unsigned short port);
  void start();
  void stop();
  // Controllers' writes through the same admission and hooks as clients' (the source
  // controller's Services, the ingress's EventTypes).
  ObjectWriter& writer();
  // The text GET /metrics answers, rendered for a push (OTLP metrics): `done` on the control
  // thread.
  void metrics_text(std::function<void(std::string)> done);
  // Whether a Bearer token may publish to broker ns/broker, for the brokers' ingress. On the
  // control thread.
  TokenPublisher token_publisher(const std::string& authorization, const std::string& ns,
                                 const std::string& broker) const;
  // After the control io_context has stopped: waits for image work in progress (pulls are
  // cancelled first by RegistryClient::cancel) so that it cleans up before the process exits.
  void join();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace elafros
