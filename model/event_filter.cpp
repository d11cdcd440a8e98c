#include "elafros/event_filter.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>

namespace json = boost::json;

namespace elafros {
namespace {

// Filter keys: ^[a-z][a-z0-9]*$ (Knative's trigger validation).
bool valid_key(std::string_view k) {
  return !k.empty() && k[0] >= 'a' && k[0] <= 'z' && valid_attribute_name(k);
}

Result<std::map<std::string, std::string>> attribute_map(const json::value& v,
                                                         const std::string& path,
                                                         bool allow_empty_values) {
  if (!v.is_object()) return Error::invalid(fmt::format("{}: expected an object", path));
  std::map<std::string, std::string> out;
  for (const auto& kv : v.get_object()) {
    std::string key(kv.key());
    if (!valid_key(key))
      return Error::invalid(fmt::format(
          "{}.{}: invalid attribute name; names are a lowercase letter, then lowercase letters "
          "and digits (^[a-z][a-z0-9]*$)",
          path, key));
    if (!kv.value().is_string())
      return Error::invalid(fmt::format("{}.{}: expected a string", path, key));
    std::string value(kv.value().get_string());
    if (value.empty() && !allow_empty_values)
      return Error::invalid(fmt::format("{}.{}: the value may not be empty", path, key));
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

Result<EventFilter> dialect(const json::value& v, const std::string& path);

Result<std::vector<EventFilter>> dialect_list(const json::value& v, const std::string& path) {
  if (!v.is_array()) return Error::invalid(fmt::format("{}: expected a list of filters", path));
  std::vector<EventFilter> out;
  for (std::size_t i = 0; i < v.get_array().size(); ++i) {
    auto f = dialect(v.get_array()[i], fmt::format("{}[{}]", path, i));
    if (!f) return f.error();
    out.push_back(std::move(*f));
  }
  return out;
}

// One element of spec.filters: exactly one dialect.
Result<EventFilter> dialect(const json::value& v, const std::string& path) {
  if (!v.is_object() || v.get_object().empty())
    return Error::invalid(fmt::format(
        "{}: expected an object with one dialect (exact, prefix, suffix, all, any, not, cesql)",
        path));
  const auto& o = v.get_object();
  if (o.size() > 1) {
    std::string keys;
    for (const auto& kv : o) keys += (keys.empty() ? "" : ", ") + std::string(kv.key());
    return Error::invalid(fmt::format(
        "{}: multiple dialects found ({}); put each in its own element of the list", path, keys));
  }
  const auto& [name_sv, value] = *o.begin();
  std::string name(name_sv);
  std::string at = path + "." + name;
  EventFilter f;
  if (name == "exact" || name == "prefix" || name == "suffix") {
    f.dialect = name == "exact"    ? EventFilter::Dialect::kExact
                : name == "prefix" ? EventFilter::Dialect::kPrefix
                                   : EventFilter::Dialect::kSuffix;
    auto m = attribute_map(value, at, false);
    if (!m) return m.error();
    if (m->size() != 1)
      return Error::invalid(
          fmt::format("{}: expected exactly one attribute, not {}", at, m->size()));
    f.attributes = std::move(*m);
    return f;
  }
  if (name == "all" || name == "any") {
    f.dialect = name == "all" ? EventFilter::Dialect::kAll : EventFilter::Dialect::kAny;
    auto children = dialect_list(value, at);
    if (!children) return children.error();
    if (children->empty()) return Error::invalid(fmt::format("{}: needs at least one filter", at));
    f.children = std::move(*children);
    return f;
  }
  if (name == "not") {
    f.dialect = EventFilter::Dialect::kNot;
    auto child = dialect(value, at);
    if (!child) return child.error();
    f.children.push_back(std::move(*child));
    return f;
  }
  if (name == "cesql") {
    if (!value.is_string() || value.get_string().empty())
      return Error::invalid(fmt::format("{}: expected a CESQL expression (a string)", at));
    auto parsed = parse_cesql(value.get_string());
    if (!parsed) return Error::invalid(fmt::format("{}: {}", at, parsed.error().message));
    f.dialect = EventFilter::Dialect::kCesql;
    f.cesql = std::move(*parsed);
    f.cesql_text = std::string(value.get_string());
    return f;
  }
  return Error::invalid(fmt::format(
      "{}.{}: unknown dialect (the dialects are exact, prefix, suffix, all, any, not, cesql)", path,
      name));
}

}  // namespace

Result<EventFilter> trigger_filter(const json::object& spec) {
  if (const json::value* filters = spec.if_contains("filters");
      filters && !(filters->is_array() && filters->get_array().empty()) && !filters->is_null()) {
    auto list = dialect_list(*filters, "spec.filters");
    if (!list) return list.error();
    EventFilter all;
    all.dialect = EventFilter::Dialect::kAll;
    all.children = std::move(*list);
    return all;
  }
  EventFilter f;
  f.dialect = EventFilter::Dialect::kAttributes;
  if (const json::value* filter = spec.if_contains("filter"); filter && !filter->is_null()) {
    if (!filter->is_object())
      return Error::invalid("spec.filter: expected an object with attributes");
    for (const auto& kv : filter->get_object())
      if (kv.key() != "attributes")
        return Error::invalid(
            fmt::format("spec.filter.{}: unknown field (known fields: attributes)",
                        std::string_view(kv.key())));
    if (const json::value* attrs = filter->get_object().if_contains("attributes");
        attrs && !attrs->is_null()) {
      auto m = attribute_map(*attrs, "spec.filter.attributes", true);
      if (!m) return m.error();
      f.attributes = std::move(*m);
    }
  }
  return f;
}

bool filter_matches(const EventFilter& f, const CloudEvent& e) {
  using D = EventFilter::Dialect;
  switch (f.dialect) {
    case D::kAttributes:
      for (const auto& [k, want] : f.attributes) {
        const std::string* got = e.attribute(k);
        if (!got || (want.empty() ? got->empty() : *got != want)) return false;
      }
      return true;
    case D::kExact:
    case D::kPrefix:
    case D::kSuffix: {
      const auto& [k, want] = *f.attributes.begin();
      const std::string* got = e.attribute(k);
      if (!got) return false;
      if (f.dialect == D::kExact) return *got == want;
      if (got->size() < want.size()) return false;
      return f.dialect == D::kPrefix
                 ? got->compare(0, want.size(), want) == 0
                 : got->compare(got->size() - want.size(), want.size(), want) == 0;
    }
    case D::kAll:
      for (const auto& c : f.children)
        if (!filter_matches(c, e)) return false;
      return true;
    case D::kAny:
      for (const auto& c : f.children)
        if (filter_matches(c, e)) return true;
      return false;
    case D::kNot:
      return !filter_matches(f.children.at(0), e);
    case D::kCesql:
      return cesql_matches(*f.cesql, e);
  }
  return false;
}

}  // namespace elafros
