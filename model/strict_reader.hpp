#pragma once
// Strict reading of client JSON, shared by the kinds' codecs in model/: every key must be known,
// every value of the right type, and the first problem is kept with the field's dotted path
// ("spec.delivery.retry: expected an integer, got a string"). Internal to model/.

#include <fmt/format.h>

#include <boost/json.hpp>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/label_selector.hpp"
#include "elafros/result.hpp"

namespace elafros {

namespace json = boost::json;

inline const char* kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

// Reads one JSON object strictly: every key must be known, every value of the right type.
// The first problem is kept, with the dotted path of the field, and later reads are no-ops.
class Reader {
 public:
  explicit Reader(std::optional<Error>& error) : error_(error) {}

  const json::object* object(const json::value& v, const std::string& path,
                             std::initializer_list<std::string_view> allowed) {
    if (error_) return nullptr;
    if (!v.is_object()) return fail(path, "an object", v), nullptr;
    for (const auto& kv : v.get_object()) {
      bool known = false;
      for (auto a : allowed) known = known || kv.key() == a;
      if (!known) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        error_ = Error::invalid(fmt::format("{}.{}: unknown field (known fields: {})", path,
                                            std::string_view(kv.key()), list));
        return nullptr;
      }
    }
    return &v.get_object();
  }

  std::optional<std::string> string(const json::object& o, std::string_view key,
                                    const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return std::nullopt;
    if (!v->is_string()) return fail(join(path, key), "a string", *v), std::nullopt;
    return std::string(v->get_string());
  }

  std::optional<std::int64_t> integer(const json::object& o, std::string_view key,
                                      const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return std::nullopt;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= INT64_MAX)
      return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double() &&
        v->get_double() == static_cast<double>(static_cast<std::int64_t>(v->get_double())))
      return static_cast<std::int64_t>(v->get_double());
    return fail(join(path, key), "an integer", *v), std::nullopt;
  }

  std::optional<bool> boolean(const json::object& o, std::string_view key,
                              const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return std::nullopt;
    if (!v->is_bool()) return fail(join(path, key), "a boolean", *v), std::nullopt;
    return v->get_bool();
  }

  const json::array* array(const json::object& o, std::string_view key, const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return nullptr;
    if (!v->is_array()) return fail(join(path, key), "an array", *v), nullptr;
    return &v->get_array();
  }

  std::vector<std::string> strings(const json::object& o, std::string_view key,
                                   const std::string& path) {
    std::vector<std::string> out;
    const json::array* a = array(o, key, path);
    if (!a) return out;
    for (std::size_t i = 0; i < a->size() && !error_; ++i) {
      if (!(*a)[i].is_string()) {
        fail(fmt::format("{}[{}]", join(path, key), i), "a string", (*a)[i]);
        break;
      }
      out.emplace_back((*a)[i].get_string());
    }
    return out;
  }

  std::map<std::string, std::string> string_map(const json::object& o, std::string_view key,
                                                const std::string& path) {
    std::map<std::string, std::string> out;
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return out;
    if (!v->is_object()) return fail(join(path, key), "an object", *v), out;
    for (const auto& kv : v->get_object()) {
      if (!kv.value().is_string()) {
        fail(join(join(path, key), kv.key()), "a string", kv.value());
        break;
      }
      out.emplace(kv.key(), kv.value().get_string());
    }
    return out;
  }

  void invalid(const std::string& path, const std::string& what) {
    if (!error_) error_ = Error::invalid(fmt::format("{}: {}", path, what));
  }

  bool failed() const { return error_.has_value(); }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }

 private:
  void fail(const std::string& path, const char* expected, const json::value& got) {
    if (!error_)
      error_ =
          Error::invalid(fmt::format("{}: expected {}, got {}", path, expected, kind_name(got)));
  }

  std::optional<Error>& error_;
};

// The schema of a kind whose spec and status are checked by its admission, not by OpenAPI.
inline json::object loose_schema(const char* description) {
  return json::object{
      {"type", "object"},
      {"description", description},
      {"properties",
       json::object{{"apiVersion", json::object{{"type", "string"}}},
                    {"kind", json::object{{"type", "string"}}},
                    {"metadata", json::object{{"type", "object"}}},
                    {"spec", json::object{{"type", "object"},
                                          {"x-kubernetes-preserve-unknown-fields", true}}},
                    {"status", json::object{{"type", "object"},
                                            {"x-kubernetes-preserve-unknown-fields", true}}}}}};
}

// A Kubernetes LabelSelector object ({matchLabels, matchExpressions}), as a selector
// (model/source_kinds.cpp).
Result<LabelSelector> label_selector_from_json(Reader& r, std::optional<Error>& error,
                                               const json::value& v, const std::string& path);

inline constexpr const char* kReadyColumn = ".status.conditions[?(@.type=='Ready')].status";
inline constexpr const char* kReasonColumn = ".status.conditions[?(@.type=='Ready')].reason";

}  // namespace elafros
