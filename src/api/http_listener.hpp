#pragma once
// The HTTP side of the API: accepts connections (unix socket, plain TCP, or TLS), reads each
// request with limits and deadlines, authenticates it, and hands it to the router
// (docs/architecture.md, "API"). One coroutine per connection, on the control io_context.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "api/router.hpp"
#include "elafros/result.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros::api {

struct SessionOptions {
  std::size_t body_limit = 4 << 20;
  // The body limit of a source upload (POST …/buildsources), which a tar of a directory needs.
  std::size_t upload_limit = 4 << 20;
  std::size_t header_limit = 64 << 10;
  std::chrono::seconds idle{300};  // between requests, and for one request to arrive
  // Connections this listener serves at once (the api-max-connections key); one more is
  // answered 503 with Retry-After and closed. 0: no cap.
  std::size_t max_connections = 0;
  // TCP only: the user a request's Authorization header names, or kUnauthorized. The unix
  // socket's peers are administrators (its mode, 0660, is the access control).
  std::function<Result<std::string>(std::string_view authorization)> authenticate;
};

class HttpListener {
 public:
  HttpListener(boost::asio::io_context& io, const Router& router, SessionOptions options);
  ~HttpListener();
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // A unix socket (replacing a stale one) with this mode.
  Result<void> listen_unix(const std::string& path, unsigned mode);
  // ADDRESS:PORT over TCP; with cert and key files (PEM), TLS 1.2 or later. Returns the port.
  Result<unsigned short> listen_tcp(const std::string& address, unsigned short port,
                                    const std::string& cert_file = "",
                                    const std::string& key_file = "");
  void start();
  void stop();
  // Sessions now running (the daemon's shutdown waits for them a moment).
  std::size_t sessions() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace elafros::api
