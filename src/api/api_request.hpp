#pragma once
// What every API handler sees: the request, already read and authenticated, and a Responder to
// answer through, plain or streamed. Kept free of Beast so that handler files compile quickly
// (docs/architecture.md, "API").

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "elafros/rbac.hpp"
#include "elafros/result.hpp"

namespace elafros::api {

template <class T>
using awaitable = boost::asio::awaitable<T>;

struct ApiRequest {
  std::string method;                         // "GET", "POST", …
  std::string target;                         // as sent, with the query
  std::string path;                           // without the query
  std::map<std::string, std::string> query;   // percent-decoded
  std::map<std::string, std::string> params;  // the route's {placeholders}
  std::string content_type;
  std::string accept;
  std::string body;
  Identity who;  // who is asking: the socket's peer (uid:N) or a Bearer token's user
  RequestAttributes attributes;  // what it asks, in RBAC's terms (set before the handler runs)
  Decision decision;             // the authorizer's answer, for the audit log
  std::string user_agent;
  std::string cookie;      // the Cookie field: the dashboard's session
  std::string csrf_token;  // X-CSRF-Token: what the dashboard's changes carry

  std::string param(const std::string& name) const;
  std::optional<std::string> query_value(const std::string& name) const;
  // A true/false query parameter (follow=, watch=): false when absent, an error naming what it
  // takes when it is neither.
  Result<bool> query_flag(const std::string& name) const;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // A whole answer. Every awaitable<bool> here is false once the connection is unusable.
  virtual awaitable<bool> send(int status, std::string content_type, std::string body) = 0;
  // A streamed answer (chunked): begin, then chunks, then end.
  virtual awaitable<bool> begin_stream(int status, std::string content_type) = 0;
  virtual awaitable<bool> send_chunk(std::string data) = 0;
  virtual awaitable<bool> end_stream() = 0;
  // While streaming: `on_close` runs (on the session's executor) once the client goes away.
  virtual void notify_close(std::function<void()> on_close) = 0;

  awaitable<bool> send_json(int status, const boost::json::value& body);
  // Extra fields of the next answer (Set-Cookie, Cache-Control…), taken by send or begin_stream.
  std::vector<std::pair<std::string, std::string>> headers;
  // What was answered, for the audit log: the status, and an error's reason and message.
  int answered_status = 0;
  std::string answered_reason, answered_message;
  // A Kubernetes Status object for the error, with its HTTP code.
  awaitable<bool> send_error(const Error& error);
};

using Handler = std::function<awaitable<bool>(ApiRequest&, Responder&)>;

// The Kubernetes Status for an error: reason, code, message, and for Invalid the field it names
// (the message's "field.path: " prefix) in details.causes.
boost::json::object status_object(const Error& error);
boost::json::object success_status(const std::string& kind, const std::string& name);
// A query's time: RFC 3339, or a duration back from now (90s, 30m, 24h, 7d), in unix seconds;
// `fallback` when empty, nullopt when it is neither.
std::optional<std::int64_t> time_or_ago(const std::string& text, std::int64_t fallback);
// The body as JSON, or kBadRequest saying why it is not.
Result<boost::json::value> parse_json_body(const std::string& body);

}  // namespace elafros::api
