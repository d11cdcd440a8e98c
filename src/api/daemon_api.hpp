#pragma once
// elafrosd's own endpoints, beside the Kubernetes-style kinds: images, registries, logs,
// instances, status, system and metrics (docs/architecture.md, "API").

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/api_server.hpp"
#include "api/router.hpp"
#include "elafros/store.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class CredentialStore;
class ImageStore;
class LogCollector;
struct LogHealth;
class Reconciler;
class RegistryClient;

namespace api {

class ImagePuller;

// What status and /metrics say of the daemon: the ApiServer's own description of it.
using DaemonInfo = ApiInfo;

struct DaemonApiParts {
  boost::asio::io_context& control;
  boost::asio::thread_pool& store_thread;
  boost::asio::thread_pool& blocking;
  Store& store;
  ObjectCommitter& committer;
  ImageStore& images;
  ImagePuller& puller;
  RegistryClient& registry;
  CredentialStore& credentials;
  LogCollector& logs;
  Reconciler& reconciler;
};

// Image, registry and log routes (their old /api/v1 paths and /apis/elafros.dev/v1 ones).
void add_image_routes(Router& router, const DaemonApiParts& parts);
void add_operation_routes(Router& router, const DaemonApiParts& parts, DaemonInfo info);
// GET /apis/elafros.dev/v1/usage?since=&until=&by=&namespace=&format=json|csv.
void add_usage_routes(Router& router, const DaemonApiParts& parts);
// GET /metrics alone, for --metrics-listen; also returns how to render the same text for a push
// (on the control thread; `done` there).
using MetricsText = std::function<void(std::function<void(std::string)> done)>;
MetricsText add_metrics_route(Router& router, const DaemonApiParts& parts, DaemonInfo info);

}  // namespace api
}  // namespace elafros
