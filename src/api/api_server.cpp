#include "api_server.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include "api/api_credentials.hpp"
#include "api/build_api.hpp"
#include "api/daemon_api.hpp"
#include "api/discovery.hpp"
#include "api/http_listener.hpp"
#include "api/image_puller.hpp"
#include "api/namespace_hooks.hpp"
#include "api/resource_api.hpp"
#include "api/serving_hooks.hpp"
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
        serving_(store_thread, store, *puller_, reconciler),
        parts_{control,  store_thread, blocking,    store, committer, images,
               *puller_, registry,     credentials, logs,  reconciler},
        info_(std::move(info)) {
    resources_.set_hooks(kServingGroup, "Service", &serving_);
    resources_.set_hooks(kServingGroup, "Revision", &serving_);
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
    add_credential_routes();
    resources_.add_routes(router_);
    api::add_metrics_route(metrics_router_, parts_, info_);
  }

  // GET …/kubeconfig: a kubeconfig for the HTTPS API (server, CA, the admin token);
  // POST …/tokens {"name", "user", "ttlSeconds"}: a new token, shown once.
  void add_credential_routes() {
    router_.add("GET", "/apis/elafros.dev/v1/kubeconfig",
                [this](api::ApiRequest& req, api::Responder& r) { return kubeconfig(req, r); });
    router_.add("POST", "/apis/elafros.dev/v1/tokens",
                [this](api::ApiRequest& req, api::Responder& r) { return issue(req, r); });
  }

  Result<void> https_on() const {
    if (!credentials_)
      return Error::precondition(
          "the HTTPS API is off; start elafrosd with --api-listen ADDRESS:PORT (or api-listen "
          "in its config file)");
    return {};
  }

  static Result<void> admin_only(const api::ApiRequest& req) {
    if (req.user != "system:admin")
      return Error{ErrorCode::kForbidden,
                   fmt::format("Forbidden: {} may not manage tokens; use the admin token or the "
                               "socket",
                               req.user)};
    return {};
  }

  api::awaitable<bool> kubeconfig(api::ApiRequest& req, api::Responder& r) {
    if (auto on = https_on(); !on) co_return co_await r.send_error(on.error());
    if (auto a = admin_only(req); !a) co_return co_await r.send_error(a.error());
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
                                  {"user", json::object{{"token", credentials_->admin_token()}}}}}},
        {"contexts",
         json::array{json::object{{"name", "elafros"},
                                  {"context", json::object{{"cluster", "elafros"},
                                                           {"user", "elafros-admin"},
                                                           {"namespace", "default"}}}}}},
        {"current-context", "elafros"}};
    co_return co_await r.send_json(200, config);
  }

  api::awaitable<bool> issue(api::ApiRequest& req, api::Responder& r) {
    if (auto on = https_on(); !on) co_return co_await r.send_error(on.error());
    if (auto a = admin_only(req); !a) co_return co_await r.send_error(a.error());
    auto body = api::parse_json_body(req.body);
    if (!body) co_return co_await r.send_error(body.error());
    const json::object* o = body->if_object();
    const json::value* name = o ? o->if_contains("name") : nullptr;
    if (!name || !name->is_string() || name->get_string().empty() || name->get_string() == "admin")
      co_return co_await r.send_error(
          Error::invalid("name: needs a token name other than \"admin\""));
    std::string user = "system:admin";
    if (const json::value* u = o->if_contains("user"); u && u->is_string()) user = u->get_string();
    std::int64_t ttl = 0;
    if (const json::value* t = o->if_contains("ttlSeconds")) {
      if (!t->is_int64() || t->get_int64() < 0)
        co_return co_await r.send_error(
            Error::invalid("ttlSeconds: must be a whole number of seconds, 0 for no expiry"));
      ttl = t->get_int64();
    }
    auto token =
        credentials_->issue(std::string(name->get_string()), user, std::chrono::seconds(ttl));
    if (!token) co_return co_await r.send_error(token.error());
    spdlog::info("issued token \"{}\" for {}", std::string(name->get_string()), user);
    json::value answer = json::object{{"name", *name}, {"user", user}, {"token", *token}};
    co_return co_await r.send_json(201, answer);
  }

  ApiCredentials* credentials_ = nullptr;
  std::string https_address_;
  asio::io_context& control_;
  std::shared_ptr<api::ImagePuller> puller_;
  api::ResourceApi resources_;
  api::ServingHooks serving_;
  std::unique_ptr<api::BuildHooks> build_hooks_;
  api::NamespaceHooks namespaces_;
  api::DaemonApiParts parts_;
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

Result<void> ApiServer::listen(const std::string& socket_path) {
  api::SessionOptions options;
  options.max_connections = impl_->info_.max_connections;
  options.upload_limit = impl_->info_.build_source_max_bytes;
  auto l = std::make_unique<api::HttpListener>(impl_->control_, impl_->router_, std::move(options));
  if (auto r = l->listen_unix(socket_path, 0660); !r) return r;
  impl_->listeners_.push_back(std::move(l));
  return {};
}

Result<unsigned short> ApiServer::listen_https(const std::string& address, unsigned short port,
                                               const std::string& cert_file,
                                               const std::string& key_file,
                                               ApiCredentials& tokens) {
  api::SessionOptions options;
  options.max_connections = impl_->info_.max_connections;
  options.upload_limit = impl_->info_.build_source_max_bytes;
  options.authenticate = [&tokens](std::string_view authorization) {
    return tokens.authenticate(authorization);
  };
  auto l = std::make_unique<api::HttpListener>(impl_->control_, impl_->router_, std::move(options));
  auto bound = l->listen_tcp(address, port, cert_file, key_file);
  if (!bound)
    return Error{bound.error().code, fmt::format("--api-listen: {}", bound.error().message)};
  impl_->listeners_.push_back(std::move(l));
  impl_->credentials_ = &tokens;
  impl_->https_address_ = fmt::format("{}:{}", address, *bound);
  spdlog::info("serving the API over HTTPS on https://{}:{}", address, *bound);
  return bound;
}

Result<void> ApiServer::listen_metrics(const std::string& address, unsigned short port) {
  api::SessionOptions options;
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
  for (auto& l : impl_->listeners_) l->start();
}

ObjectWriter& ApiServer::writer() {
  return impl_->resources_.writer();
}

void ApiServer::stop() {
  for (auto& l : impl_->listeners_) l->stop();
}

void ApiServer::join() {
  impl_->puller_->pool().join();
}

}  // namespace elafros
