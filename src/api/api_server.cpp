#include "api_server.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include "api/api_credentials.hpp"
#include "api/api_tokens.hpp"
#include "api/audit_log.hpp"
#include "api/auth_api.hpp"
#include "api/build_api.hpp"
#include "api/daemon_api.hpp"
#include "api/discovery.hpp"
#include "api/http_listener.hpp"
#include "api/image_puller.hpp"
#include "api/namespace_hooks.hpp"
#include "api/resource_api.hpp"
#include "api/serving_hooks.hpp"
#include "api/ui_api.hpp"
#include "elafros/build.hpp"
#include "elafros/object_meta.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {

class ApiServer::Impl {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, asio::thread_pool& blocking,
       Store& store, ObjectCommitter& committer, WatchSource& watches, ImageStore& images,
       RegistryClient& registry, CredentialStore& credentials, LogCollector& logs,
       Reconciler& reconciler, ApiInfo info)
      : control_(control),
        puller_(std::make_shared<api::ImagePuller>(control, store_thread, store, images)),
        resources_(control, store_thread, store, committer, watches, builtin_kinds()),
        serving_(store_thread, store, *puller_, reconciler, info.host_path_prefixes),
        parts_{control,  store_thread, blocking,    store, committer, images,
               *puller_, registry,     credentials, logs,  reconciler},
        info_(std::move(info)) {
    resources_.set_hooks(kServingGroup, "Service", &serving_);
    resources_.set_hooks(kServingGroup, "Revision", &serving_);
    resources_.set_hooks("", "PersistentVolumeClaim", &serving_);
    resources_.set_hooks(kServingGroup, "DomainMapping", &serving_);
    serving_.domain_tls = info_.domain_tls;
    resources_.set_hooks("", "Namespace", &namespaces_);
    // Fixed paths first: the generic resource patterns would match some of them.
    if (info_.build_sources) {
      api::BuildApiParts bp{info_.build_sources, info_.build_logs, info_.runner,
                            info_.data_dir + "/builds/tmp"};
      build_hooks_ = std::make_unique<api::BuildHooks>(store_thread, blocking, store, bp);
      resources_.set_hooks(kBuildGroup, "Build", build_hooks_.get());
      api::add_build_routes(router_, control, store_thread, blocking, store, watches, bp);
    }
    api::add_discovery_routes(router_, builtin_kinds(), {info_.version});
    api::add_image_routes(router_, parts_);
    api::add_operation_routes(router_, parts_, info_);
    api::add_usage_routes(router_, parts_);
    add_credential_routes();
    if (info_.tokens) {
      auth_ = std::make_unique<api::Auth>(
          api::AuthParts{control, store_thread, blocking, store, *info_.tokens, info_.authorize,
                         info_.rules_for, info_.socket_gid, info_.metrics_anonymous});
      auth_->add_routes(router_);
      api::add_ui_routes(router_);
      if (info_.audit) api::add_audit_routes(router_, *info_.audit, blocking);
      resources_.set_write_check([this](const Identity* who, const KindInfo& k,
                                        const json::object* old,
                                        json::object& o) { return admit(who, k, old, o); });
    }
    resources_.add_routes(router_);
    metrics_text_ = api::add_metrics_route(metrics_router_, parts_, info_);
  }

  // GET …/kubeconfig: a kubeconfig for the HTTPS API (server, CA, the admin token).
  void add_credential_routes() {
    router_.add("GET", "/apis/elafros.dev/v1/kubeconfig",
                [this](api::ApiRequest& req, api::Responder& r) { return kubeconfig(req, r); });
  }

  api::awaitable<bool> kubeconfig(api::ApiRequest&, api::Responder& r) {
    if (!credentials_)
      co_return co_await r.send_error(Error::precondition(
          "the HTTPS API is off; start elafrosd with --api-listen ADDRESS:PORT (or api-listen "
          "in its config file)"));
    std::string ca = credentials_->ca_pem();
    std::string b64(4 * ((ca.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                            reinterpret_cast<const unsigned char*>(ca.data()),
                            static_cast<int>(ca.size()));
    b64.resize(static_cast<std::size_t>(n));
    std::string server = "https://" + https_address_;
    json::value config = json::object{
        {"apiVersion", "v1"},
        {"kind", "Config"},
        {"clusters",
         json::array{json::object{
             {"name", "elafros"},
             {"cluster", json::object{{"server", server}, {"certificate-authority-data", b64}}}}}},
        {"users",
         json::array{json::object{{"name", "elafros-admin"},
                                  {"user", json::object{{"token", info_.tokens->admin_token()}}}}}},
        {"contexts",
         json::array{json::object{{"name", "elafros"},
                                  {"context", json::object{{"cluster", "elafros"},
                                                           {"user", "elafros-admin"},
                                                           {"namespace", "default"}}}}}},
        {"current-context", "elafros"}};
    co_return co_await r.send_json(200, config);
  }

  // RBAC's check of what a write grants, then quotas and limits.
  api::awaitable<Result<void>> admit(const Identity* who, const KindInfo& k,
                                     const json::object* old, json::object& o) {
    auto granted = co_await auth_->check_grant(who, k, o);
    if (!granted) co_return granted.error();
    if (info_.admission) co_return co_await info_.admission(k, old, o);
    co_return Result<void>{};
  }

  api::SessionOptions session_options(bool anonymous) {
    api::SessionOptions options;
    options.max_connections = info_.max_connections;
    options.header_timeout = info_.header_timeout;
    options.body_timeout = info_.body_timeout;
    options.send_timeout = info_.send_timeout;
    options.max_connections_per_client = info_.max_connections_per_client;
    options.upload_limit = info_.build_source_max_bytes;
    if (!auth_) return options;
    options.authenticate = [this, anonymous](const api::Peer& peer, std::string_view header,
                                             const api::ApiRequest& request) {
      return auth_->authenticate(peer, header, request, anonymous);
    };
    options.public_path = &api::ui_public_path;
    options.authorize = [this](api::ApiRequest& req) { return auth_->authorize(req); };
    if (info_.audit)
      options.audit = [audit = info_.audit](const api::ApiRequest& req,
                                            const api::Responder& answer,
                                            std::chrono::system_clock::time_point received) {
        audit->record(req, answer.answered_status, answer.answered_reason, answer.answered_message,
                      received);
      };
    return options;
  }

  ApiCredentials* credentials_ = nullptr;
  std::string https_address_;
  asio::io_context& control_;
  std::shared_ptr<api::ImagePuller> puller_;
  api::ResourceApi resources_;
  api::ServingHooks serving_;
  std::unique_ptr<api::BuildHooks> build_hooks_;
  api::NamespaceHooks namespaces_;
  std::unique_ptr<api::Auth> auth_;
  api::DaemonApiParts parts_;
  api::MetricsText metrics_text_;
  ApiInfo info_;
  api::Router router_;
  api::Router metrics_router_;
  std::vector<std::unique_ptr<api::HttpListener>> listeners_;
};

ApiServer::ApiServer(asio::io_context& control, asio::thread_pool& store_thread,
                     asio::thread_pool& blocking, Store& store, ObjectCommitter& committer,
                     WatchSource& watches, ImageStore& images, RegistryClient& registry,
                     CredentialStore& credentials, LogCollector& logs, Reconciler& reconciler,
                     ApiInfo info)
    : impl_(std::make_unique<Impl>(control, store_thread, blocking, store, committer, watches,
                                   images, registry, credentials, logs, reconciler,
                                   std::move(info))) {}

ApiServer::~ApiServer() = default;

Result<void> ApiServer::listen(const std::string& socket_path, unsigned mode) {
  auto l = std::make_unique<api::HttpListener>(impl_->control_, impl_->router_,
                                               impl_->session_options(false));
  if (auto r = l->listen_unix(socket_path, mode); !r) return r;
  impl_->listeners_.push_back(std::move(l));
  return {};
}

Result<unsigned short> ApiServer::listen_https(const std::string& address, unsigned short port,
                                               ApiCredentials& tls) {
  auto l = std::make_unique<api::HttpListener>(impl_->control_, impl_->router_,
                                               impl_->session_options(false));
  auto bound = l->listen_tcp(address, port, tls.cert_file(), tls.key_file());
  if (!bound)
    return Error{bound.error().code, fmt::format("--api-listen: {}", bound.error().message)};
  impl_->listeners_.push_back(std::move(l));
  impl_->credentials_ = &tls;
  impl_->https_address_ = fmt::format("{}:{}", address, *bound);
  spdlog::info("serving the API over HTTPS on https://{}:{}", address, *bound);
  return bound;
}

Result<void> ApiServer::listen_metrics(const std::string& address, unsigned short port) {
  api::SessionOptions options = impl_->session_options(true);
  options.body_limit = 0;
  options.header_limit = 16 << 10;
  options.idle = std::chrono::seconds(60);
  auto l = std::make_unique<api::HttpListener>(impl_->control_, impl_->metrics_router_,
                                               std::move(options));
  auto bound = l->listen_tcp(address, port);
  if (!bound)
    return Error{bound.error().code, fmt::format("--metrics-listen: {}", bound.error().message)};
  spdlog::info("serving GET /metrics on http://{}:{}/metrics", address, *bound);
  impl_->listeners_.push_back(std::move(l));
  return {};
}

void ApiServer::start() {
  if (impl_->auth_) impl_->auth_->start();
  for (auto& l : impl_->listeners_) l->start();
}

ObjectWriter& ApiServer::writer() {
  return impl_->resources_.writer();
}

void ApiServer::metrics_text(std::function<void(std::string)> done) {
  impl_->metrics_text_(std::move(done));
}

TokenPublisher ApiServer::token_publisher(const std::string& authorization, const std::string& ns,
                                          const std::string& broker) const {
  if (!impl_->auth_)
    return {{PublishVerdict::Outcome::kUnauthenticated, "this daemon checks no tokens"}, {}};
  return impl_->auth_->publisher(authorization, ns, broker);
}

void ApiServer::stop() {
  for (auto& l : impl_->listeners_) l->stop();
  if (impl_->auth_) impl_->auth_->stop();
}

void ApiServer::join() {
  impl_->puller_->pool().join();
}

}  // namespace elafros
