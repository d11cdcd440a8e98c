#include "api/api_request.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <chrono>

#include "elafros/object_meta.hpp"

namespace json = boost::json;

namespace elafros::api {

std::string ApiRequest::param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

std::optional<std::string> ApiRequest::query_value(const std::string& name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

Result<bool> ApiRequest::query_flag(const std::string& name) const {
  std::string v = query_value(name).value_or("");
  if (!v.empty() && v != "true" && v != "false")
    return Error::bad_request(fmt::format("{} must be true or false, not \"{}\"", name, v));
  return v == "true";
}

awaitable<bool> Responder::send_json(int status, const json::value& body) {
  co_return co_await send(status, "application/json", json::serialize(body) + "\n");
}

awaitable<bool> Responder::send_error(const Error& error) {
  json::object status = status_object(error);
  if (const json::value* reason = status.if_contains("reason"); reason && reason->is_string())
    answered_reason = reason->get_string();
  answered_message = error.message;
  co_return co_await send(http_status(error.code), "application/json",
                          json::serialize(status) + "\n");
}

namespace {

// "spec.template.spec.containers[0].image: expected a string" → the field before ": ".
std::string field_of(const std::string& message) {
  auto colon = message.find(": ");
  if (colon == std::string::npos || colon == 0) return {};
  std::string_view head(message.data(), colon);
  for (char c : head)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '[' || c == ']' ||
          c == '_' || c == '-'))
      return {};
  return std::string(head);
}

}  // namespace

json::object status_object(const Error& error) {
  json::object details;
  if (error.code == ErrorCode::kInvalidArgument) {
    std::string field = field_of(error.message);
    json::object cause{{"reason", "FieldValueInvalid"}, {"message", error.message}};
    if (!field.empty()) cause["field"] = field;
    details["causes"] = json::array{std::move(cause)};
  }
  json::object s{{"kind", "Status"},
                 {"apiVersion", "v1"},
                 {"metadata", json::object{}},
                 {"status", "Failure"},
                 {"message", error.message},
                 {"reason", to_string(error.code)},
                 {"code", http_status(error.code)}};
  if (!details.empty()) s["details"] = std::move(details);
  return s;
}

json::object success_status(const std::string& kind, const std::string& name) {
  return json::object{{"kind", "Status"},
                      {"apiVersion", "v1"},
                      {"metadata", json::object{}},
                      {"status", "Success"},
                      {"details", json::object{{"name", name}, {"kind", kind}}}};
}

std::optional<std::int64_t> time_or_ago(const std::string& text, std::int64_t fallback) {
  if (text.empty()) return fallback;
  if (auto t = parse_rfc3339(text)) return *t;
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = text.substr(used);
  std::int64_t scale = unit == "s"   ? 1
                       : unit == "m" ? 60
                       : unit == "h" ? 3600
                       : unit == "d" ? 86400
                                     : 0;
  if (scale == 0 || n < 0) return std::nullopt;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return now - n * scale;
}

Result<json::value> parse_json_body(const std::string& body) {
  if (body.empty()) return Error::bad_request("the request needs a JSON body");
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec)
    return Error::bad_request(fmt::format("the request body is not valid JSON: {}", ec.message()));
  return v;
}

}  // namespace elafros::api
