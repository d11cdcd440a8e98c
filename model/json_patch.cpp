#include "elafros/json_patch.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <string>
#include <vector>

namespace json = boost::json;

namespace elafros {

json::value apply_merge_patch(const json::value& target, const json::value& patch) {
  if (!patch.is_object()) return patch;
  json::value out = target.is_object() ? target : json::value(json::object{});
  json::object& o = out.get_object();
  for (const auto& kv : patch.get_object()) {
    if (kv.value().is_null()) {
      o.erase(kv.key());
      continue;
    }
    const json::value* current = o.if_contains(kv.key());
    o[kv.key()] = apply_merge_patch(current ? *current : json::value(nullptr), kv.value());
  }
  return out;
}

namespace {

// "/a/b~1c/0" → {"a", "b/c", "0"}; nullopt when it is not a JSON pointer.
std::optional<std::vector<std::string>> parse_pointer(std::string_view p) {
  std::vector<std::string> tokens;
  if (p.empty()) return tokens;
  if (p[0] != '/') return std::nullopt;
  std::string cur;
  for (std::size_t i = 1; i <= p.size(); ++i) {
    if (i == p.size() || p[i] == '/') {
      tokens.push_back(cur);
      cur.clear();
      continue;
    }
    if (p[i] == '~') {
      if (i + 1 >= p.size() || (p[i + 1] != '0' && p[i + 1] != '1')) return std::nullopt;
      cur += p[i + 1] == '0' ? '~' : '/';
      ++i;
      continue;
    }
    cur += p[i];
  }
  return tokens;
}

std::optional<std::size_t> array_index(const std::string& token, std::size_t size, bool append) {
  if (append && token == "-") return size;
  if (token.empty() || (token.size() > 1 && token[0] == '0')) return std::nullopt;
  std::size_t i = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), i);
  if (ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  if (i > size || (!append && i == size)) return std::nullopt;
  return i;
}

// The value the pointer names, or nullptr.
json::value* resolve(json::value& root, const std::vector<std::string>& tokens, std::size_t n) {
  json::value* cur = &root;
  for (std::size_t i = 0; i < n; ++i) {
    if (cur->is_object()) {
      cur = cur->get_object().if_contains(tokens[i]);
    } else if (cur->is_array()) {
      auto idx = array_index(tokens[i], cur->get_array().size(), false);
      cur = idx ? &cur->get_array()[*idx] : nullptr;
    } else {
      cur = nullptr;
    }
    if (!cur) return nullptr;
  }
  return cur;
}

Result<void> add_at(json::value& root, const std::vector<std::string>& t, json::value v,
                    const std::string& where) {
  if (t.empty()) {
    root = std::move(v);
    return {};
  }
  json::value* parent = resolve(root, t, t.size() - 1);
  if (!parent) return Error::bad_request(fmt::format("{}: the parent does not exist", where));
  if (parent->is_object()) {
    parent->get_object()[t.back()] = std::move(v);
    return {};
  }
  if (parent->is_array()) {
    auto& a = parent->get_array();
    auto idx = array_index(t.back(), a.size(), true);
    if (!idx) return Error::bad_request(fmt::format("{}: the array index is out of range", where));
    a.insert(a.begin() + static_cast<std::ptrdiff_t>(*idx), std::move(v));
    return {};
  }
  return Error::bad_request(fmt::format("{}: the parent is neither an object nor an array", where));
}

Result<json::value> remove_at(json::value& root, const std::vector<std::string>& t,
                              const std::string& where) {
  if (t.empty())
    return Error::bad_request(fmt::format("{}: cannot remove the whole object", where));
  json::value* parent = resolve(root, t, t.size() - 1);
  if (parent && parent->is_object()) {
    auto& o = parent->get_object();
    auto it = o.find(t.back());
    if (it != o.end()) {
      json::value out = it->value();
      o.erase(it);
      return out;
    }
  } else if (parent && parent->is_array()) {
    auto& a = parent->get_array();
    if (auto idx = array_index(t.back(), a.size(), false)) {
      json::value out = a[*idx];
      a.erase(a.begin() + static_cast<std::ptrdiff_t>(*idx));
      return out;
    }
  }
  return Error::bad_request(fmt::format("{}: there is nothing at that path to remove", where));
}

}  // namespace

Result<json::value> apply_json_patch(const json::value& target, const json::value& patch) {
  if (!patch.is_array())
    return Error::bad_request(
        "a JSON patch (application/json-patch+json) must be an array of operations such as "
        "[{\"op\":\"replace\",\"path\":\"/spec/x\",\"value\":1}]");
  json::value doc = target;
  std::size_t n = 0;
  for (const auto& opv : patch.get_array()) {
    std::string where = fmt::format("patch operation {}", n++);
    const json::object* op = opv.if_object();
    if (!op) return Error::bad_request(fmt::format("{}: must be an object", where));
    auto text = [&](const char* key) -> std::optional<std::string> {
      const json::value* v = op->if_contains(key);
      if (!v || !v->is_string()) return std::nullopt;
      return std::string(v->get_string());
    };
    auto name = text("op");
    auto path_text = text("path");
    if (!name || !path_text)
      return Error::bad_request(fmt::format("{}: needs \"op\" and \"path\" strings", where));
    auto path = parse_pointer(*path_text);
    if (!path)
      return Error::bad_request(fmt::format(
          "{}: \"{}\" is not a JSON pointer (such as /spec/template)", where, *path_text));
    where += fmt::format(" ({} {})", *name, *path_text);
    const json::value* value = op->if_contains("value");
    auto need_value = [&]() -> Result<void> {
      if (!value) return Error::bad_request(fmt::format("{}: needs a \"value\"", where));
      return {};
    };
    if (*name == "add") {
      if (auto r = need_value(); !r) return r.error();
      if (auto r = add_at(doc, *path, *value, where); !r) return r.error();
    } else if (*name == "remove") {
      if (auto r = remove_at(doc, *path, where); !r) return r.error();
    } else if (*name == "replace") {
      if (auto r = need_value(); !r) return r.error();
      json::value* at = resolve(doc, *path, path->size());
      if (!at) return Error::bad_request(fmt::format("{}: there is nothing at that path", where));
      *at = *value;
    } else if (*name == "test") {
      if (auto r = need_value(); !r) return r.error();
      json::value* at = resolve(doc, *path, path->size());
      if (!at || *at != *value)
        return Error::bad_request(fmt::format("{}: the test failed", where));
    } else if (*name == "move" || *name == "copy") {
      auto from_text = text("from");
      auto from = from_text ? parse_pointer(*from_text) : std::nullopt;
      if (!from) return Error::bad_request(fmt::format("{}: needs a \"from\" JSON pointer", where));
      json::value moved;
      if (*name == "move") {
        auto r = remove_at(doc, *from, where);
        if (!r) return r.error();
        moved = std::move(r.value());
      } else {
        json::value* at = resolve(doc, *from, from->size());
        if (!at) return Error::bad_request(fmt::format("{}: nothing at \"from\"", where));
        moved = *at;
      }
      if (auto r = add_at(doc, *path, std::move(moved), where); !r) return r.error();
    } else {
      return Error::bad_request(fmt::format(
          "{}: unknown op \"{}\" (add, remove, replace, move, copy or test)", where, *name));
    }
  }
  return doc;
}

}  // namespace elafros
