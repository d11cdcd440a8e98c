#include "elafros/kind_registry.hpp"

#include <boost/json.hpp>

namespace json = boost::json;

namespace elafros {

std::vector<std::string> KindInfo::verbs() const {
  if (!client_writable) return {"delete", "get", "list", "watch"};
  return {"create", "delete", "get", "list", "patch", "update", "watch"};
}

void KindRegistry::add(KindInfo kind) {
  kinds_.push_back(std::move(kind));
}

const KindInfo* KindRegistry::find(std::string_view group, std::string_view version,
                                   std::string_view plural) const {
  for (const auto& k : kinds_)
    if (k.group == group && k.version == version && k.plural == plural) return &k;
  return nullptr;
}

const KindInfo* KindRegistry::find_kind(std::string_view group, std::string_view kind) const {
  for (const auto& k : kinds_)
    if (k.group == group && k.kind == kind) return &k;
  return nullptr;
}

const KindRegistry& builtin_kinds() {
  static const KindRegistry registry = [] {
    KindRegistry r;
    register_serving_kinds(r);
    register_eventing_kinds(r);
    register_event_policy_kind(r);
    register_source_kinds(r);
    register_build_kinds(r);
    register_core_kinds(r);
    register_rbac_kinds(r);
    return r;
  }();
  return registry;
}

json::value json_path_value(const json::value& object, std::string_view path) {
  const json::value* cur = &object;
  std::size_t i = 0;
  auto fail = []() { return json::value(nullptr); };
  while (i < path.size() && cur) {
    if (path[i] == '.') {
      std::size_t j = i + 1;
      while (j < path.size() && path[j] != '.' && path[j] != '[') ++j;
      std::string_view key = path.substr(i + 1, j - i - 1);
      cur = cur->is_object() ? cur->get_object().if_contains(key) : nullptr;
      i = j;
    } else if (path.substr(i, 3) == "[?(") {
      // [?(@.field=='value')]: the first array element whose field equals value.
      std::size_t close = path.find(")]", i);
      if (close == std::string_view::npos) return fail();
      std::string_view expr = path.substr(i + 3, close - i - 3);  // @.field=='value'
      std::size_t eq = expr.find("==");
      if (expr.substr(0, 2) != "@." || eq == std::string_view::npos) return fail();
      std::string_view field = expr.substr(2, eq - 2);
      std::string_view want = expr.substr(eq + 2);
      if (want.size() >= 2 && (want.front() == '\'' || want.front() == '"'))
        want = want.substr(1, want.size() - 2);
      const json::value* found = nullptr;
      if (cur->is_array())
        for (const auto& e : cur->get_array())
          if (const json::object* o = e.if_object())
            if (const json::value* f = o->if_contains(field);
                f && f->is_string() && f->get_string() == want) {
              found = &e;
              break;
            }
      cur = found;
      i = close + 2;
    } else if (path.substr(i, 2) == "['") {
      std::size_t close = path.find("']", i);
      if (close == std::string_view::npos) return fail();
      std::string_view key = path.substr(i + 2, close - i - 2);
      cur = cur->is_object() ? cur->get_object().if_contains(key) : nullptr;
      i = close + 2;
    } else {
      return fail();
    }
  }
  return cur ? *cur : fail();
}

}  // namespace elafros
