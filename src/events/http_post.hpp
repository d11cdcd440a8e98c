#pragma once
// One CloudEvent POST over HTTP/1.1, as the dispatcher and the sources send them: *.localhost
// hosts are the loopback (RFC 6761), so a Service or a Broker of this daemon is reached through
// the proxy's own listener (an event wakes a service at zero).

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "elafros/cloudevent.hpp"
#include "elafros/result.hpp"

namespace elafros {

struct Url {
  std::string host;  // as in the Host header
  std::string port = "80";
  std::string path = "/";
  std::string connect_host;  // where to connect
};

// kInvalidArgument unless it is an http:// URL with a host.
Result<Url> parse_url(const std::string& url);

struct Answer {
  int status = 0;  // 0: no answer (connection error, timeout)
  std::string error;
  std::string body;
  HttpHeaders headers;  // lowercased names
  std::optional<std::chrono::seconds> retry_after;
};

// Knative's data-plane table: 404, 408, 409, 429, 5xx, unlisted codes and no answer (0) are
// retried; other 4xx are not.
bool retryable(int status);

// POSTs with `Prefer: reply`; the answer's body up to 1 MiB. Runs on the caller's executor.
boost::asio::awaitable<Answer> post(const Url& url, const HttpHeaders& headers,
                                    const std::string& body, std::chrono::milliseconds timeout);

}  // namespace elafros
