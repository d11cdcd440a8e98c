#include "api/request_info.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "api/router.hpp"

namespace elafros::api {
namespace {

// elafrosd's own endpoints under /apis/elafros.dev/v1 (and the logs under the core group's
// path), with the resource each acts on. A {name} segment becomes the request's name.
struct Endpoint {
  const char* method;
  const char* pattern;
  const char* verb;
  const char* group;
  const char* resource;
  const char* subresource;
};

constexpr std::array kEndpoints{
    Endpoint{"GET", "/apis/elafros.dev/v1/images", "list", "elafros.dev", "images", ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/images", "create", "elafros.dev", "images", ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/images/pull", "create", "elafros.dev", "images", ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/images/prune", "deletecollection", "elafros.dev",
             "images", ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/images/push", "create", "elafros.dev", "images", "push"},
    Endpoint{"DELETE", "/apis/elafros.dev/v1/images/{name}", "delete", "elafros.dev", "images", ""},
    Endpoint{"GET", "/apis/elafros.dev/v1/registries", "list", "elafros.dev", "registries", ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/registries/login", "create", "elafros.dev", "registries",
             ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/registries/logout", "delete", "elafros.dev",
             "registries", ""},
    Endpoint{"GET", "/apis/elafros.dev/v1/status", "get", "elafros.dev", "system", "status"},
    Endpoint{"GET", "/apis/elafros.dev/v1/instances", "list", "elafros.dev", "instances", ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/system/stop-all", "create", "elafros.dev", "system",
             "stop-all"},
    Endpoint{"POST", "/apis/elafros.dev/v1/system/start-all", "create", "elafros.dev", "system",
             "start-all"},
    Endpoint{"POST", "/apis/elafros.dev/v1/system/rotate-key", "create", "elafros.dev", "system",
             "rotate-key"},
    Endpoint{"GET", "/apis/elafros.dev/v1/kubeconfig", "get", "elafros.dev", "kubeconfigs", ""},
    Endpoint{"GET", "/apis/elafros.dev/v1/tokens", "list", "elafros.dev", "tokens", ""},
    Endpoint{"POST", "/apis/elafros.dev/v1/tokens", "create", "elafros.dev", "tokens", ""},
    Endpoint{"DELETE", "/apis/elafros.dev/v1/tokens/{name}", "delete", "elafros.dev", "tokens", ""},
    Endpoint{"GET", "/apis/elafros.dev/v1/usage", "list", "elafros.dev", "usage", ""},
    Endpoint{"GET", "/apis/elafros.dev/v1/audit", "list", "elafros.dev", "audit", ""},
    Endpoint{"GET", "/apis/elafros.dev/v1/audit/verify", "get", "elafros.dev", "audit", "verify"},
    Endpoint{"POST", "/apis/elafros.dev/v1/namespaces/{namespace}/buildsources", "create",
             "elafros.dev", "buildsources", ""},
    Endpoint{"GET", "/apis/elafros.dev/v1/namespaces/{namespace}/services/{name}/logs", "get",
             "serving.knative.dev", "services", "logs"},
    Endpoint{"GET", "/api/v1/namespaces/{namespace}/services/{name}/logs", "get",
             "serving.knative.dev", "services", "logs"},
    Endpoint{"GET", "/apis/elafros.dev/v1/namespaces/{namespace}/builds/{name}/logs", "get",
             "build.knative.dev", "builds", "logs"},
    Endpoint{"GET", "/apis/elafros.dev/v1/namespaces/{namespace}/brokers/{name}/events", "get",
             "eventing.knative.dev", "brokers", "events"},
    Endpoint{"GET", "/apis/elafros.dev/v1/namespaces/{namespace}/servicemetrics", "get",
             "serving.knative.dev", "services", "metrics"},
};

bool match(const Endpoint& e, const std::string& method, const std::vector<std::string>& parts,
           RequestAttributes& out) {
  if (method != e.method) return false;
  auto pattern = split_path(e.pattern);
  if (pattern.size() != parts.size()) return false;
  std::string ns, name;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (pattern[i] == "{namespace}")
      ns = parts[i];
    else if (pattern[i] == "{name}")
      name = parts[i];
    else if (pattern[i] != parts[i])
      return false;
  }
  out.verb = e.verb;
  out.api_group = e.group;
  out.resource = e.resource;
  out.subresource = e.subresource;
  out.ns = ns;
  out.name = name;
  return true;
}

std::string verb_of(const std::string& method, bool named,
                    const std::map<std::string, std::string>& query) {
  auto watch = query.find("watch");
  bool watching = watch != query.end() && (watch->second == "true" || watch->second == "1");
  if (method == "GET" || method == "HEAD") return watching ? "watch" : named ? "get" : "list";
  if (method == "POST") return "create";
  if (method == "PUT") return "update";
  if (method == "PATCH") return "patch";
  if (method == "DELETE") return named ? "delete" : "deletecollection";
  std::string lower;
  for (char c : method) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return lower;
}

}  // namespace

RequestAttributes request_attributes(const std::string& method, const std::string& path,
                                     const std::map<std::string, std::string>& query) {
  RequestAttributes a;
  a.path = path;
  std::vector<std::string> parts = split_path(path);
  for (const auto& e : kEndpoints)
    if (match(e, method, parts, a)) return a;
  // The images, registries, instances, status and system paths' older /api/v1 forms.
  if (parts.size() >= 3 && parts[0] == "api" && parts[1] == "v1") {
    static const std::vector<std::string> kLegacy = {"images", "registries", "instances", "status",
                                                     "system"};
    if (std::find(kLegacy.begin(), kLegacy.end(), parts[2]) != kLegacy.end()) {
      std::vector<std::string> modern = {"apis", "elafros.dev", "v1"};
      modern.insert(modern.end(), parts.begin() + 2, parts.end());
      for (const auto& e : kEndpoints)
        if (match(e, method, modern, a)) return a;
    }
  }
  // /api/v1/… (the core group) or /apis/GROUP/VERSION/…, then [namespaces/NS/]PLURAL[/NAME[/SUB]]
  std::size_t at = 0;
  if (parts.size() >= 3 && parts[0] == "api") {
    at = 2;
  } else if (parts.size() >= 4 && parts[0] == "apis") {
    a.api_group = parts[1];
    at = 3;
  } else {
    a.resource_request = false;
    a.verb = verb_of(method, true, query);
    return a;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(at), parts.end());
  if (rest.size() >= 2 && rest[0] == "namespaces") {
    a.ns = rest[1];
    if (rest.size() == 2 || (rest.size() == 3 && rest[2] == "status")) {
      // The namespace itself (and its status).
      a.resource = "namespaces";
      a.name = rest[1];
      if (rest.size() == 3) a.subresource = rest[2];
      a.verb = verb_of(method, true, query);
      return a;
    }
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  a.resource = rest[0];
  if (rest.size() >= 2) a.name = rest[1];
  if (rest.size() >= 3) a.subresource = rest[2];
  a.verb = verb_of(method, !a.name.empty(), query);
  return a;
}

}  // namespace elafros::api
