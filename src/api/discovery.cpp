#include "api/discovery.hpp"

#include <openssl/sha.h>

#include <boost/json.hpp>
#include <set>

namespace json = boost::json;

namespace elafros::api {
namespace {

std::set<std::pair<std::string, std::string>> group_versions(const KindRegistry& kinds) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& k : kinds.all())
    if (!k.group.empty()) out.emplace(k.group, k.version);
  return out;
}

json::object resource_list(const KindRegistry& kinds, const std::string& group,
                           const std::string& version) {
  json::array resources;
  for (const auto& k : kinds.all()) {
    if (k.group != group || k.version != version) continue;
    json::array verbs, shorts, cats;
    for (const auto& v : k.verbs()) verbs.emplace_back(v);
    for (const auto& s : k.short_names) shorts.emplace_back(s);
    for (const auto& c : k.categories) cats.emplace_back(c);
    json::object r{{"name", k.plural},
                   {"singularName", k.singular},
                   {"namespaced", k.namespaced},
                   {"kind", k.kind},
                   {"verbs", std::move(verbs)}};
    if (!shorts.empty()) r["shortNames"] = std::move(shorts);
    if (!cats.empty()) r["categories"] = std::move(cats);
    resources.push_back(std::move(r));
    if (k.has_status)
      resources.push_back(json::object{{"name", k.plural + "/status"},
                                       {"singularName", ""},
                                       {"namespaced", k.namespaced},
                                       {"kind", k.kind},
                                       {"verbs", json::array{"get"}}});
  }
  return json::object{{"kind", "APIResourceList"},
                      {"apiVersion", "v1"},
                      {"groupVersion", group.empty() ? version : group + "/" + version},
                      {"resources", std::move(resources)}};
}

// "serving.knative.dev" → "dev.knative.serving", as Kubernetes names definitions.
std::string reversed_group(const std::string& group) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= group.size()) {
    auto dot = group.find('.', start);
    parts.push_back(
        group.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) out += (out.empty() ? "" : ".") + *it;
  return out;
}

json::object openapi_document(const KindRegistry& kinds, const std::string& group,
                              const std::string& version) {
  json::object schemas, paths;
  for (const auto& k : kinds.all()) {
    if (k.group != group || k.version != version) continue;
    std::string id = (group.empty() ? std::string("io.k8s.api.core") : reversed_group(group)) +
                     "." + version + "." + k.kind;
    json::object schema = k.schema;
    schema["x-kubernetes-group-version-kind"] =
        json::array{json::object{{"group", group}, {"version", version}, {"kind", k.kind}}};
    schemas[id] = std::move(schema);
    std::string ref = "#/components/schemas/" + id;
    json::object ok{
        {"description", "OK"},
        {"content", json::object{{"application/json",
                                  json::object{{"schema", json::object{{"$ref", ref}}}}}}}};
    std::string base = (group.empty() ? "/api/" + version : "/apis/" + group + "/" + version) +
                       (k.namespaced ? "/namespaces/{namespace}/" : "/") + k.plural;
    json::object gvk{{"group", group}, {"version", version}, {"kind", k.kind}};
    // kubectl looks for these query parameters on the write operations to know that the
    // server validates fields itself (fieldValidation) and supports dryRun.
    json::array params;
    for (const char* q : {"dryRun", "fieldValidation", "fieldManager"})
      params.push_back(json::object{{"name", q},
                                    {"in", "query"},
                                    {"schema", json::object{{"type", "string"}}},
                                    {"uniqueItems", true}});
    auto op = [&](const char* id, const char* action, bool with_params) {
      json::object o{{"operationId", std::string(id) + k.kind},
                     {"responses", json::object{{"200", ok}}},
                     {"x-kubernetes-action", action},
                     {"x-kubernetes-group-version-kind", gvk}};
      if (with_params) o["parameters"] = params;
      return o;
    };
    paths[base + "/{name}"] = json::object{{"get", op("read", "get", false)},
                                           {"put", op("replace", "put", true)},
                                           {"patch", op("patch", "patch", true)},
                                           {"delete", op("delete", "delete", false)}};
    paths[base] =
        json::object{{"get", op("list", "list", false)}, {"post", op("create", "post", true)}};
  }
  return json::object{
      {"openapi", "3.0.0"},
      {"info", json::object{{"title", "elafrosd"}, {"version", group + "/" + version}}},
      {"paths", std::move(paths)},
      {"components", json::object{{"schemas", std::move(schemas)}}}};
}

std::string hash_of(const std::string& text) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  std::string out;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int i = 0; i < 16; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Handler json_handler(json::value body) {
  auto shared = std::make_shared<json::value>(std::move(body));
  return [shared](ApiRequest&, Responder& r) { return r.send_json(200, *shared); };
}

Handler text_handler(std::string body) {
  return [body](ApiRequest&, Responder& r) { return r.send(200, "text/plain", body); };
}

}  // namespace

void add_discovery_routes(Router& router, const KindRegistry& kinds, ServerVersion version) {
  // The core group is listed once it has kinds: clients treat an empty v1 as an error.
  json::array core;
  for (const auto& k : kinds.all())
    if (k.group.empty()) core = json::array{"v1"};
  router.add("GET", "/api",
             json_handler(json::object{{"kind", "APIVersions"},
                                       {"versions", core},
                                       {"serverAddressByClientCIDRs", json::array{}}}));
  router.add("GET", "/api/v1", json_handler(resource_list(kinds, "", "v1")));
  // The event source kinds, what they do and the event types they emit ('elafros source
  // list-types'; kn reads the same from CRDs labelled duck.knative.dev/source).
  json::array source_types;
  for (const auto& k : kinds.all())
    if (!k.source_description.empty())
      source_types.push_back(json::object{{"kind", k.kind},
                                          {"apiVersion", k.api_version()},
                                          {"name", k.plural + "." + k.group},
                                          {"description", k.source_description},
                                          {"eventTypes", json::value_from(k.source_event_types)}});
  router.add("GET", "/apis/elafros.dev/v1/sourcetypes",
             json_handler(json::object{{"apiVersion", "elafros.dev/v1"},
                                       {"kind", "SourceTypeList"},
                                       {"items", std::move(source_types)}}));
  json::array groups;
  std::map<std::string, std::vector<std::string>> by_group;
  for (const auto& [g, v] : group_versions(kinds)) by_group[g].push_back(v);
  for (const auto& [g, versions] : by_group) {
    json::array vs;
    for (const auto& v : versions)
      vs.push_back(json::object{{"groupVersion", g + "/" + v}, {"version", v}});
    json::object group{{"name", g}, {"versions", vs}, {"preferredVersion", vs.front()}};
    router.add("GET", "/apis/" + g,
               json_handler(json::object{{"kind", "APIGroup"},
                                         {"apiVersion", "v1"},
                                         {"name", g},
                                         {"versions", vs},
                                         {"preferredVersion", vs.front()}}));
    groups.push_back(std::move(group));
    for (const auto& v : versions)
      router.add("GET", "/apis/" + g + "/" + v, json_handler(resource_list(kinds, g, v)));
  }
  router.add("GET", "/apis",
             json_handler(json::object{
                 {"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", std::move(groups)}}));
  router.add("GET", "/version",
             json_handler(json::object{{"major", "1"},
                                       {"minor", "32"},
                                       {"gitVersion", "v1.32.0+elafros-" + version.elafros},
                                       {"gitCommit", ""},
                                       {"gitTreeState", "clean"},
                                       {"buildDate", ""},
                                       {"goVersion", ""},
                                       {"compiler", "elafrosd"},
                                       {"platform", "linux/amd64"}}));
  for (const char* p : {"/healthz", "/readyz", "/livez"}) router.add("GET", p, text_handler("ok"));
  // OpenAPI v3: an index of group-versions, then one document each (kubectl explain).
  json::object index;
  std::vector<std::pair<std::string, std::string>> docs;
  for (const auto& [g, versions] : by_group)
    for (const auto& v : versions) docs.emplace_back(g, v);
  docs.emplace_back("", "v1");
  for (const auto& [g, v] : docs) {
    json::object doc = openapi_document(kinds, g, v);
    std::string text = json::serialize(doc);
    std::string path = g.empty() ? "api/v1" : "apis/" + g + "/" + v;
    index[path] =
        json::object{{"serverRelativeURL", "/openapi/v3/" + path + "?hash=" + hash_of(text)}};
    router.add("GET", "/openapi/v3/" + path, json_handler(std::move(doc)));
  }
  router.add("GET", "/openapi/v3", json_handler(json::object{{"paths", std::move(index)}}));
}

}  // namespace elafros::api
