#pragma once
// A small synchronous client of elafrosd's API over its unix socket.

#include <boost/json/value.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace elafros::cli {

struct ApiResponse {
  int status = 0;
  boost::json::value body;
};

// A plain HTTP POST to a URL (http:// only; *.localhost is the loopback): the data plane, e.g. a
// broker's ingress. Throws std::runtime_error when it cannot connect or read.
struct HttpAnswer {
  int status = 0;
  std::string body;
};
HttpAnswer post_url(const std::string& url,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::string& body);

// Where the API is and who speaks to it (docs/architecture.md, "CLI"): a unix socket, or an
// https:// server checked against a CA; a Bearer token, or none (the socket's peer credentials
// then say who the user is).
struct ApiEndpoint {
  std::string socket;  // used when server is empty
  std::string server;  // https://HOST:PORT, or "" for the socket
  std::string ca_pem;  // the server's CA; empty: the system's
  std::string token;
  bool debug = false;  // requests and answers on stderr, the token's secret redacted
  // "elafrosd at unix:///run/elafros/elafros.sock" or "… at https://h:p", for messages.
  std::string where() const;
};

class ApiClient {
 public:
  explicit ApiClient(ApiEndpoint endpoint) : endpoint_(std::move(endpoint)) {}
  explicit ApiClient(std::string socket_path, std::string token = "")
      : endpoint_{std::move(socket_path), "", "", std::move(token), false} {}
  // Throws std::runtime_error (with a hint) when the daemon cannot be reached.
  ApiResponse request(const std::string& method, const std::string& target,
                      const boost::json::value* body = nullptr) const;
  // POSTs raw bytes (a source archive) with this content type.
  ApiResponse upload(const std::string& target, const char* content_type,
                     const std::string& body) const;
  // Like request(), but throws std::runtime_error with the API's message on a non-2xx status.
  boost::json::value call(const std::string& method, const std::string& target,
                          const boost::json::value* body = nullptr) const;
  // The body of a 2xx answer; otherwise throws std::runtime_error with the API's message.
  static boost::json::value body_or_throw(ApiResponse r);
  // For answers that stream JSON lines (application/x-ndjson): calls `on_line` with each line as
  // it arrives. A plain JSON answer (an error before the stream began) is one line. Returns the
  // HTTP status.
  int stream(const std::string& method, const std::string& target, const boost::json::value& body,
             const std::function<void(const boost::json::value&)>& on_line) const;
  // The same for a GET without a body.
  int get_stream(const std::string& target,
                 const std::function<void(const boost::json::value&)>& on_line) const;
  // Like get_stream, but stops reading (and closes the connection) once on_line returns false:
  // for watches.
  int get_until(const std::string& target,
                const std::function<bool(const boost::json::value&)>& on_line) const;

 private:
  ApiResponse exchange(const std::string& method, const std::string& target,
                       const boost::json::value* body, const std::string* raw,
                       const char* raw_type) const;
  int stream_until(const std::string& method, const std::string& target,
                   const boost::json::value& body,
                   const std::function<bool(const boost::json::value&)>& on_line) const;
  ApiEndpoint endpoint_;
};

}  // namespace elafros::cli
