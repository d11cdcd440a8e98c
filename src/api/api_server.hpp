#pragma once
// The REST API: Knative-shaped JSON over a unix socket (DESIGN.md §9). Runs on the control
// io_context; store and image work is handed to their own threads.

#include <chrono>
#include <memory>
#include <string>

#include "elafros/result.hpp"
#include "elafros/store.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace elafros {

class CredentialStore;
class ImageStore;
class LogCollector;
class Reconciler;
class RegistryClient;

struct ApiInfo {
  std::string version;
  std::string data_dir;
  std::string socket;
  std::string listen;
  std::string domain;
  std::string runtime;
};

class ApiServer {
 public:
  ApiServer(boost::asio::io_context& control, boost::asio::thread_pool& store_thread,
            boost::asio::thread_pool& blocking, Store& store, ImageStore& images,
            RegistryClient& registry, CredentialStore& credentials, LogCollector& logs,
            Reconciler& reconciler, ApiInfo info);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Creates the socket (replacing a stale one) with mode 0660.
  Result<void> listen(const std::string& socket_path);
  // Also serves GET /metrics on ADDRESS:PORT (TCP).
  Result<void> listen_metrics(const std::string& address, unsigned short port);
  void start();
  void stop();
  // After the control io_context has stopped: waits for image work in progress (pulls are
  // cancelled first by RegistryClient::cancel) so that it cleans up before the process exits.
  void join();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros
