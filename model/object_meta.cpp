#include "elafros/object_meta.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <ctime>
#include <random>

#include "elafros/resource_json.hpp"

namespace json = boost::json;

namespace elafros {

std::string meta_string(const json::object& object, std::string_view field) {
  const json::value* md = object.if_contains("metadata");
  if (!md || !md->is_object()) return {};
  const json::value* v = md->get_object().if_contains(field);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

std::int64_t meta_int(const json::object& object, std::string_view field) {
  const json::value* md = object.if_contains("metadata");
  if (!md || !md->is_object()) return 0;
  const json::value* v = md->get_object().if_contains(field);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return 0;
}

json::object& metadata_of(json::object& object) {
  json::value& md = object["metadata"];
  if (!md.is_object()) md = json::object{};
  return md.get_object();
}

std::int64_t resource_version_of(const json::object& object) {
  std::string text = meta_string(object, "resourceVersion");
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return 0;
  return v;
}

std::string new_uid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (char& c : s) {
    if (c == 'x')
      c = "0123456789abcdef"[rng() % 16];
    else if (c == 'y')
      c = "89ab"[rng() % 4];
  }
  return s;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm));
}

namespace {

json::object string_map(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

std::map<std::string, std::string> read_string_map(const json::object& object,
                                                   std::string_view field) {
  std::map<std::string, std::string> out;
  const json::value* md = object.if_contains("metadata");
  const json::value* v = md && md->is_object() ? md->get_object().if_contains(field) : nullptr;
  if (v && v->is_object())
    for (const auto& kv : v->get_object())
      if (kv.value().is_string()) out.emplace(kv.key(), kv.value().get_string());
  return out;
}

void read_meta(const json::object& object, ObjectMeta& meta) {
  meta.uid = meta_string(object, "uid");
  meta.generation = meta_int(object, "generation");
  meta.created_unix = parse_rfc3339(meta_string(object, "creationTimestamp")).value_or(0);
}

json::object meta_json(const ObjectMeta& m) {
  json::object md{{"name", m.name}, {"namespace", m.namespace_}};
  if (!m.uid.empty()) md["uid"] = m.uid;
  if (m.generation) md["generation"] = m.generation;
  if (m.created_unix) md["creationTimestamp"] = format_rfc3339(m.created_unix);
  if (!m.labels.empty()) md["labels"] = string_map(m.labels);
  if (!m.annotations.empty()) md["annotations"] = string_map(m.annotations);
  return md;
}

const json::object* status_of(const json::object& object) {
  const json::value* st = object.if_contains("status");
  return st && st->is_object() ? &st->get_object() : nullptr;
}

}  // namespace

json::object service_object(const Service& s) {
  json::object o = service_to_json(s, nullptr);
  metadata_of(o)["finalizers"] = json::array{kServiceFinalizer};
  o["status"] = json::object{{"configurationGeneration", s.config_generation}};
  return o;
}

// A revision's pinned images, as Knative's containerStatuses: the serving container first,
// then the sidecars in order.
json::array container_statuses(const Revision& r) {
  json::array out{json::object{
      {"name", r.spec.container.name.empty() ? "user-container" : r.spec.container.name},
      {"imageDigest", r.image_digest}}};
  for (std::size_t i = 0; i < r.spec.sidecars.size(); ++i)
    out.push_back(json::object{
        {"name", r.spec.sidecars[i].name},
        {"imageDigest", i < r.sidecar_digests.size() ? r.sidecar_digests[i] : std::string()}});
  return out;
}

json::array init_container_statuses(const Revision& r) {
  json::array out;
  for (std::size_t i = 0; i < r.spec.init_containers.size(); ++i)
    out.push_back(json::object{
        {"name", r.spec.init_containers[i].name},
        {"imageDigest", i < r.init_digests.size() ? r.init_digests[i] : std::string()}});
  return out;
}

json::object revision_object(const Revision& r, const std::string& service_uid) {
  json::object tmpl = template_to_json(r.spec);
  json::object o{{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Revision"}};
  ObjectMeta meta = r.meta;
  meta.labels.insert(r.spec.labels.begin(), r.spec.labels.end());
  meta.labels["serving.knative.dev/service"] = r.service;
  meta.labels["serving.knative.dev/configuration"] = r.service;
  meta.labels["serving.knative.dev/configurationGeneration"] = std::to_string(r.meta.generation);
  meta.annotations.insert(r.spec.annotations.begin(), r.spec.annotations.end());
  json::object md = meta_json(meta);
  md["ownerReferences"] = json::array{json::object{{"apiVersion", "serving.knative.dev/v1"},
                                                   {"kind", "Service"},
                                                   {"name", r.service},
                                                   {"uid", service_uid},
                                                   {"controller", true},
                                                   {"blockOwnerDeletion", true}}};
  o["metadata"] = std::move(md);
  o["spec"] = tmpl["spec"];
  o["status"] =
      json::object{{"containerStatuses", container_statuses(r)}, {"everReady", r.ever_ready}};
  if (!r.spec.init_containers.empty())
    o["status"].as_object()["initContainerStatuses"] = init_container_statuses(r);
  return o;
}

Result<Service> service_from_object(const json::object& object) {
  auto s = service_from_json(object, meta_string(object, "namespace"));
  if (!s) return s.error();
  read_meta(object, s->meta);
  s->config_generation = 1;
  if (const json::object* st = status_of(object))
    if (const json::value* g = st->if_contains("configurationGeneration"); g && g->is_int64())
      s->config_generation = g->get_int64();
  return s;
}

Result<Revision> revision_from_object(const json::object& object) {
  Revision r;
  r.meta.name = meta_string(object, "name");
  r.meta.namespace_ = meta_string(object, "namespace");
  read_meta(object, r.meta);
  r.meta.labels = read_string_map(object, "labels");
  r.service = r.meta.labels["serving.knative.dev/service"];
  json::object tmpl_md{{"name", r.meta.name}};
  auto annotations = read_string_map(object, "annotations");
  if (!annotations.empty()) tmpl_md["annotations"] = string_map(annotations);
  std::map<std::string, std::string> template_labels;
  for (const auto& [k, v] : r.meta.labels)
    if (k.rfind("serving.knative.dev/", 0) != 0) template_labels[k] = v;
  if (!template_labels.empty()) tmpl_md["labels"] = string_map(template_labels);
  const json::value* spec = object.if_contains("spec");
  auto t = template_from_json(
      json::object{{"metadata", std::move(tmpl_md)}, {"spec", spec ? *spec : json::object{}}});
  if (!t)
    return Error::internal(
        fmt::format("stored revision \"{}\" is not valid: {}", r.meta.name, t.error().message));
  r.spec = std::move(t.value());
  r.meta.labels = {{"serving.knative.dev/service", r.service},
                   {"serving.knative.dev/configuration", r.service}};
  if (const json::object* st = status_of(object)) {
    auto digests = [st](const char* key) {
      std::vector<std::string> out;
      if (const json::value* cs = st->if_contains(key); cs && cs->is_array())
        for (const auto& c : cs->get_array()) {
          const json::value* d =
              c.is_object() ? c.get_object().if_contains("imageDigest") : nullptr;
          out.push_back(d && d->is_string() ? std::string(d->get_string()) : std::string());
        }
      return out;
    };
    auto containers = digests("containerStatuses");
    if (!containers.empty()) r.image_digest = containers[0];
    if (containers.size() > 1) r.sidecar_digests.assign(containers.begin() + 1, containers.end());
    r.init_digests = digests("initContainerStatuses");
    if (const json::value* e = st->if_contains("everReady"); e && e->is_bool())
      r.ever_ready = e->get_bool();
  }
  return r;
}

}  // namespace elafros
