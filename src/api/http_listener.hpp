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

// The other end of a connection: a unix socket's peer credentials (SO_PEERCRED), or a TCP
// peer's address.
struct Peer {
  bool local = false;  // a unix socket
  unsigned uid = 0, gid = 0;
  int pid = 0;
  std::string address;  // "127.0.0.1" for TCP; "unix uid 1001" for the socket
};

struct SessionOptions {
  std::size_t body_limit = 4 << 20;
  // The body limit of a source upload (POST …/buildsources), which a tar of a directory needs.
  std::size_t upload_limit = 4 << 20;
  std::size_t header_limit = 64 << 10;
  std::chrono::seconds idle{300};  // between requests
  // A request's header must arrive within header_timeout of its first byte; each read of its
  // body within body_timeout of the last; a streamed answer's (logs -f, watch) writes within
  // send_timeout each, so that a client that stopped reading is cut off.
  std::chrono::seconds header_timeout{15};
  std::chrono::seconds body_timeout{60};
  std::chrono::seconds send_timeout{60};
  // Connections this listener serves at once (the api-max-connections key); one more is
  // answered 503 with Retry-After and closed. 0: no cap.
  std::size_t max_connections = 0;
  // Connections from one TCP client address at once (max-connections-per-client, as on the
  // proxy); one more is answered 503 and closed. The unix socket has none. 0: no cap.
  std::size_t max_connections_per_client = 0;
  // Who sends a request: from its connection's peer and its Authorization header, an identity
  // or kUnauthorized. Unset: everyone is an administrator (tests of the session alone).
  // The request's other credentials (the dashboard's session cookie and CSRF token) are on it.
  std::function<Result<Identity>(const Peer& peer, std::string_view authorization,
                                 const ApiRequest& request)>
      authenticate;
  // Paths anyone may fetch without credentials (the dashboard's files, its sign-in): their
  // requests are system:anonymous and skip authorization.
  std::function<bool(const ApiRequest& request)> public_path;
  // Whether the identity may do what the request asks (request.attributes is set first):
  // kForbidden naming the verb, the resource and the identity. Unset: everything is allowed.
  std::function<Result<void>(ApiRequest& request)> authorize;
  // Once a request is answered (or refused): the audit log's record of it.
  std::function<void(const ApiRequest& request, const Responder& answer,
                     std::chrono::system_clock::time_point received)>
      audit;
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
