#include "elafros/cloudevent.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "elafros/base64.hpp"
#include "elafros/object_meta.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

constexpr const char* kRequired[] = {"id", "source", "specversion", "type"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

// JSON media types: application/json, text/json, */*+json (parameters ignored).
bool json_content_type(std::string_view ct) {
  std::string t = lower(ct.substr(0, ct.find(';')));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  auto slash = t.find('/');
  if (slash == std::string::npos) return false;
  std::string sub = t.substr(slash + 1);
  return sub == "json" || (sub.size() > 5 && sub.compare(sub.size() - 5, 5, "+json") == 0);
}

// CloudEvents' canonical string form of a JSON attribute value (structured mode allows the
// native JSON types for Boolean and Integer).
Result<std::string> attribute_text(const std::string& name, const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_bool()) return std::string(v.get_bool() ? "true" : "false");
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  return Error::invalid(
      fmt::format("attribute \"{}\" must be a string, a boolean or an integer, not {}", name,
                  v.is_null()     ? "null"
                  : v.is_object() ? "an object"
                  : v.is_array()  ? "an array"
                                  : "a number"));
}

}  // namespace

// Well-formed UTF-8, no overlong forms or surrogates.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80           ? 0
                    : (c >> 5) == 0x6  ? 1
                    : (c >> 4) == 0xe  ? 2
                    : (c >> 3) == 0x1e ? 3
                                       : 9;
    if (n == 9 || i + n >= s.size()) return false;  // a bad lead byte, or cut short
    std::uint32_t cp = n == 0 ? c : c & (0x3fu >> n);
    for (std::size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

const std::string* CloudEvent::attribute(std::string_view name) const {
  auto it = attributes.find(std::string(name));
  return it == attributes.end() ? nullptr : &it->second;
}

std::string CloudEvent::get(std::string_view name) const {
  const std::string* v = attribute(name);
  return v ? *v : std::string();
}

bool valid_attribute_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); });
}

Result<void> validate_cloudevent(const CloudEvent& e) {
  for (const char* name : kRequired)
    if (e.get(name).empty())
      return Error::invalid(fmt::format(
          "the event has no {}: CloudEvents 1.0 requires id, source, specversion and type", name));
  if (e.get("specversion") != "1.0")
    return Error::invalid(fmt::format(
        "specversion is \"{}\"; only CloudEvents 1.0 is accepted (send specversion 1.0)",
        e.get("specversion")));
  for (const auto& [name, value] : e.attributes) {
    if (!valid_attribute_name(name))
      return Error::invalid(fmt::format(
          "attribute name \"{}\" is invalid: CloudEvents names are lowercase letters and digits "
          "only ([a-z0-9]+)",
          name));
    if (name == "data" || name == "data_base64")
      return Error::invalid("\"data\" is not an attribute name");
    for (unsigned char c : value)
      if (c < 0x20 || c == 0x7f)
        return Error::invalid(
            fmt::format("attribute \"{}\" holds a control character; strings may not", name));
    if (!valid_utf8(value))
      return Error::invalid(fmt::format("attribute \"{}\" is not valid UTF-8", name));
  }
  if (const std::string* t = e.attribute("time"); t && !parse_rfc3339(*t))
    return Error::invalid(
        fmt::format("time \"{}\" is not an RFC 3339 timestamp (e.g. 2026-12-01T10:00:00Z)", *t));
  if (const std::string* s = e.attribute("dataschema"); s && s->find(':') == std::string::npos)
    return Error::invalid(fmt::format("dataschema \"{}\" is not an absolute URI", *s));
  return {};
}

std::string ce_header_encode(std::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '%')
      out += fmt::format("%{:02X}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

Result<std::string> ce_header_decode(std::string_view value) {
  // An RFC 7230 quoted-string is unquoted first.
  std::string unquoted;
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    for (std::size_t i = 1; i + 1 < value.size(); ++i) {
      if (value[i] == '\\' && i + 2 < value.size()) ++i;
      unquoted += value[i];
    }
    value = unquoted;
  }
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out += value[i];
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = i + 2 < value.size() ? hex(value[i + 1]) : -1;
    int lo = i + 2 < value.size() ? hex(value[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return Error::invalid(fmt::format(
          "\"{}\" has a % that is not followed by two hex digits (percent-encoding)", value));
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  if (!valid_utf8(out))
    return Error::invalid(
        fmt::format("\"{}\" decodes to bytes that are not valid UTF-8", std::string(value)));
  return out;
}

Result<CloudEvent> cloudevent_from_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object())
    return Error::invalid(fmt::format(
        "a structured-mode event must be a JSON object (application/cloudevents+json): {}",
        ec ? ec.message() : "it is not an object"));
  CloudEvent e;
  const json::value* data = nullptr;
  const json::value* data_base64 = nullptr;
  for (const auto& kv : v.get_object()) {
    std::string name(kv.key());
    if (name == "data") {
      data = &kv.value();
      continue;
    }
    if (name == "data_base64") {
      data_base64 = &kv.value();
      continue;
    }
    if (kv.value().is_null()) continue;  // an absent optional attribute
    auto t = attribute_text(name, kv.value());
    if (!t) return t.error();
    e.attributes[name] = std::move(*t);
  }
  if (data && data_base64)
    return Error::invalid("the event has both data and data_base64; send one of them");
  if (data_base64) {
    if (!data_base64->is_string()) return Error::invalid("data_base64 must be a string of base64");
    auto bytes = base64_decode(data_base64->get_string());
    if (!bytes) return Error::invalid("data_base64 is not valid base64");
    e.data = std::move(*bytes);
    e.has_data = true;
  } else if (data) {
    std::string ct = e.get("datacontenttype");
    if (data->is_string() && !ct.empty() && !json_content_type(ct))
      e.data = std::string(data->get_string());
    else
      e.data = json::serialize(*data);  // JSON data (the default content type), null included
    e.has_data = true;
  }
  if (auto r = validate_cloudevent(e); !r) return r.error();
  return e;
}

std::string cloudevent_to_json(const CloudEvent& e) {
  json::object o;
  for (const auto& [name, value] : e.attributes) o[name] = value;
  if (e.has_data) {
    std::string ct = e.get("datacontenttype");
    boost::system::error_code ec;
    json::value parsed;
    if (ct.empty() || json_content_type(ct)) parsed = json::parse(e.data, ec);
    if ((ct.empty() || json_content_type(ct)) && !ec)
      o["data"] = std::move(parsed);
    else if (valid_utf8(e.data) && !(ct.empty() || json_content_type(ct)))
      o["data"] = e.data;
    else
      o["data_base64"] = base64_encode(e.data);
  }
  return json::serialize(o);
}

HttpHeaders cloudevent_binary_headers(const CloudEvent& e) {
  HttpHeaders h;
  for (const auto& [name, value] : e.attributes) {
    if (name == "datacontenttype") continue;
    h.emplace_back("ce-" + name, ce_header_encode(value));
  }
  if (const std::string* ct = e.attribute("datacontenttype")) h.emplace_back("content-type", *ct);
  return h;
}

Result<CloudEvent> cloudevent_from_http(const HttpHeaders& headers, std::string body) {
  std::string content_type;
  for (const auto& [name, value] : headers)
    if (name == "content-type") content_type = value;
  if (starts_with_ci(content_type, "application/cloudevents-batch"))
    return Error::invalid(
        "batched mode (application/cloudevents-batch+json) is not accepted: send each event on "
        "its own, in binary or structured mode");
  if (starts_with_ci(content_type, "application/cloudevents")) {
    if (!starts_with_ci(content_type, "application/cloudevents+json"))
      return Error::invalid(fmt::format(
          "structured mode in \"{}\" is not supported; use application/cloudevents+json",
          content_type));
    return cloudevent_from_json(body);
  }
  CloudEvent e;
  for (const auto& [name, value] : headers) {
    if (name.size() <= 3 || name.compare(0, 3, "ce-") != 0) continue;
    std::string attr = name.substr(3);
    if (attr == "datacontenttype")
      return Error::invalid(
          "binary mode carries the content type in Content-Type, not in a ce-datacontenttype "
          "header");
    auto decoded = ce_header_decode(value);
    if (!decoded)
      return Error::invalid(fmt::format("header {}: {}", name, decoded.error().message));
    e.attributes[attr] = std::move(*decoded);
  }
  if (e.attributes.empty())
    return Error::invalid(
        "the request carries no CloudEvent: binary mode needs ce-id, ce-source, ce-specversion "
        "and ce-type headers, structured mode Content-Type application/cloudevents+json");
  if (!content_type.empty()) e.attributes["datacontenttype"] = content_type;
  e.has_data = !body.empty();
  e.data = std::move(body);
  if (auto r = validate_cloudevent(e); !r) return r.error();
  return e;
}

}  // namespace elafros
