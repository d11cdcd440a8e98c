#include "api/ui_api.hpp"

#include <fmt/format.h>

#include <string_view>

#include "api/ui_assets.hpp"

namespace elafros::api {
namespace {

const UiAsset* find_asset(std::string_view path) {
  if (path == "/ui/") path = "/ui/index.html";
  for (const auto& a : ui_assets())
    if (path == a.path) return &a;
  return nullptr;
}

// The page runs only its own files: no inline script, no other origin, never in a frame.
constexpr const char* kPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

awaitable<bool> serve(ApiRequest& request, Responder& r) {
  if (request.path == "/ui") {
    r.headers.emplace_back("Location", "/ui/");
    co_return co_await r.send(301, "text/plain; charset=utf-8", "the dashboard is at /ui/\n");
  }
  const UiAsset* asset = find_asset(request.path);
  if (!asset) {
    std::string body = fmt::format(
        "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"the "
        "dashboard has no file {}; it starts at /ui/\",\"reason\":\"NotFound\",\"code\":404}}\n",
        request.path);
    co_return co_await r.send(404, "application/json", std::move(body));
  }
  // Revalidated on every load (ETag), so a new elafrosd's files show at once.
  // (No braced lists in coroutines: GCC 12 miscompiles them, scheduler/offload.hpp.)
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", asset->etag);
  r.headers.emplace_back("Content-Security-Policy", kPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  std::string body(reinterpret_cast<const char*>(asset->data), asset->size);
  std::string type = std::string(asset->content_type) + "; charset=utf-8";
  co_return co_await r.send(200, std::move(type), std::move(body));
}

}  // namespace

bool ui_public_path(const ApiRequest& request) {
  std::string_view path = request.path;
  bool files = path == "/ui" || path.rfind("/ui/", 0) == 0;
  if (path == "/ui/session") return request.method == "POST";
  return files && (request.method == "GET" || request.method == "HEAD");
}

void add_ui_routes(Router& router) {
  router.add("GET", "/ui", &serve);
  router.add("GET", "/ui/", &serve);
  router.add("GET", "/ui/{file}", &serve);
}

}  // namespace elafros::api
