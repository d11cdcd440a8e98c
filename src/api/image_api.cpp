// Images and registries: list, import, pull (streamed progress), remove, prune; logins.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "api/daemon_api.hpp"
#include "api/image_puller.hpp"
#include "elafros/registry_reference.hpp"
#include "elafros/resource_json.hpp"
#include "image_store.hpp"
#include "offload.hpp"
#include "registry_client.hpp"
#include "registry_credentials.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros::api {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// {"reference": "...", "name": "..."} → (reference, name).
Result<std::pair<std::string, std::string>> parse_import_request(const std::string& body) {
  auto v = parse_json_body(body);
  if (!v) return v.error();
  const json::object* o = v->if_object();
  const json::value* ref = o ? o->if_contains("reference") : nullptr;
  if (!ref || !ref->is_string() || ref->get_string().empty())
    return Error::invalid(
        "reference: needs a string such as \"oci:/path/to/layout:tag\" or "
        "\"docker.io/library/nginx:alpine\"");
  std::string name;
  if (const json::value* n = o->if_contains("name"); n && !n->is_null()) {
    if (!n->is_string()) return Error::invalid("name: expected a string");
    name = std::string(n->get_string());
  }
  for (const auto& kv : *o)
    if (kv.key() != "reference" && kv.key() != "name")
      return Error::invalid(fmt::format("{}: unknown field (known fields: reference, name)",
                                        std::string_view(kv.key())));
  std::string reference(ref->get_string());
  // A bare registry name ("nginx", "registry.example.com/team/app:1") is a pull.
  if (!is_transport_reference(reference)) {
    auto registry = parse_registry_reference(reference);
    if (!registry) return registry.error();
    reference = "docker://" + registry->str();
  }
  return std::make_pair(reference, name);
}

Result<std::pair<std::string, RegistryCredentials>> parse_login(const std::string& body) {
  auto v = parse_json_body(body);
  if (!v) return v.error();
  const json::object* o = v->if_object();
  if (!o) return Error::bad_request("the body must be a JSON object");
  for (const auto& kv : *o)
    if (kv.key() != "registry" && kv.key() != "username" && kv.key() != "password")
      return Error::invalid(
          fmt::format("{}: unknown field (known fields: registry, username, password)",
                      std::string_view(kv.key())));
  auto text = [&](const char* key) -> std::string {
    const json::value* f = o->if_contains(key);
    return f && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  auto host = canonical_registry_host(text("registry"));
  if (!host) return host.error();
  RegistryCredentials c{text("username"), text("password")};
  if (c.username.empty() || c.username.find(':') != std::string::npos)
    return Error::invalid("username: must be a non-empty string without ':'");
  if (c.password.empty()) return Error::invalid("password: must be a non-empty string");
  return std::make_pair(*host, c);
}

class ImageApi : public std::enable_shared_from_this<ImageApi> {
 public:
  explicit ImageApi(const DaemonApiParts& p) : p_(p) {}

  awaitable<bool> list(ApiRequest&, Responder& r) {
    auto images = co_await offload(p_.store_thread.get_executor(), &Store::list_images, &p_.store);
    if (!images) co_return co_await r.send_error(images.error());
    auto users =
        co_await offload(p_.store_thread.get_executor(), &Store::revision_image_digests, &p_.store);
    if (!users) co_return co_await r.send_error(users.error());
    json::array items;
    for (const auto& i : *images) {
      json::object o = image_to_json(i);
      json::array used_by;
      for (const auto& [revision, digest] : *users)
        if (digest == i.digest) used_by.emplace_back(revision);
      o["usedBy"] = std::move(used_by);
      items.push_back(std::move(o));
    }
    json::value answer = json::object{{"items", std::move(items)}};
    co_return co_await r.send_json(200, answer);
  }

  awaitable<bool> import(ApiRequest& req, Responder& r) {
    auto request = parse_import_request(req.body);
    if (!request) co_return co_await r.send_error(request.error());
    auto rec = co_await p_.puller.import(request->first, request->second);
    if (!rec) co_return co_await r.send_error(rec.error());
    co_return co_await r.send_json(201, image_to_json(*rec));
  }

  // The import's progress as chunked JSON lines (application/x-ndjson), {"progress": {...}}
  // while it runs, then {"image": {...}} or a Status.
  awaitable<bool> pull(ApiRequest& req, Responder& r) {
    auto request = parse_import_request(req.body);
    if (!request) co_return co_await r.send_error(request.error());
    auto job = p_.puller.start_import(request->first, request->second);
    if (!co_await r.begin_stream(200, "application/x-ndjson")) co_return false;
    std::size_t sent = 0;
    for (;;) {
      std::string lines;
      for (; sent < job->events.size(); ++sent)
        lines += "{\"progress\":" + job->events[sent] + "}\n";
      bool done = job->result.has_value();
      if (done) {
        json::object last;
        if (*job->result)
          last["image"] = image_to_json(**job->result);
        else
          last = status_object(job->result->error());
        lines += json::serialize(last) + "\n";
      }
      if (!co_await r.send_chunk(std::move(lines))) co_return false;  // the pull goes on
      if (done) break;
      // What arrived while the chunk was sent woke no one: look again before waiting.
      if (sent < job->events.size() || job->result) continue;
      co_await job->wake.async_wait(kAwait);
    }
    co_return co_await r.end_stream();
  }

  // POST …/images/push {"image": NAME, "destination": HOST/REPO[:TAG]}: the push's progress as
  // JSON lines, {"progress": {...}} per blob, then {"pushed": {"destination", "digest"}} or a
  // Status. It runs on the image pool, off the control thread.
  awaitable<bool> push(ApiRequest& req, Responder& r) {
    auto body = parse_json_body(req.body);
    if (!body) co_return co_await r.send_error(body.error());
    const json::object* o = body->if_object();
    auto str = [o](const char* k) {
      const json::value* v = o ? o->if_contains(k) : nullptr;
      return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    std::string name = str("image"), destination = str("destination");
    if (name.empty() || destination.empty())
      co_return co_await r.send_error(Error::invalid(
          "give {\"image\": a stored image's name, \"destination\": HOST/REPO[:TAG]}"));
    auto image =
        co_await offload(p_.store_thread.get_executor(), &Store::get_image, &p_.store, name);
    if (!image)
      co_return co_await r.send_error(Error::not_found(fmt::format(
          "image \"{}\" is not in the image store; 'elafros image list' shows the stored images",
          name)));
    struct Job {
      explicit Job(const asio::any_io_executor& ex)
          : wake(ex, std::chrono::steady_clock::time_point::max()) {}
      std::vector<std::string> events;
      std::optional<Result<std::string>> result;
      asio::steady_timer wake;
    };
    auto ex = p_.control.get_executor();
    auto job = std::make_shared<Job>(ex);
    asio::post(p_.puller.pool(), [job, ex, images = &p_.images, digest = image->digest,
                                  destination] {
      const char* phases[] = {"exists", "mounted", "uploading", "done", "manifest"};
      auto result = images->push(digest, destination, [job, ex, &phases](const PushProgress& p) {
        json::object e{{"phase", phases[static_cast<int>(p.phase)]},
                       {"digest", p.digest},
                       {"kind", p.kind},
                       {"done", p.done},
                       {"total", p.total}};
        asio::post(ex, [job, line = json::serialize(e)] {
          job->events.push_back(line);
          job->wake.cancel();
        });
      });
      asio::post(ex, [job, result = std::move(result)]() mutable {
        job->result = std::move(result);
        job->wake.cancel();
      });
    });
    if (!co_await r.begin_stream(200, "application/x-ndjson")) co_return false;
    std::size_t sent = 0;
    for (;;) {
      std::string lines;
      for (; sent < job->events.size(); ++sent)
        lines += "{\"progress\":" + job->events[sent] + "}\n";
      bool done = job->result.has_value();
      if (done) {
        json::object last;
        if (*job->result) {
          last["pushed"] = json::object{{"destination", destination}, {"digest", **job->result}};
          spdlog::info("pushed image {} to {} ({})", name, destination, **job->result);
        } else {
          last = status_object(job->result->error());
        }
        lines += json::serialize(last) + "\n";
      }
      if (!co_await r.send_chunk(std::move(lines))) co_return false;  // the push goes on
      if (done) break;
      // What arrived while the chunk was sent woke no one: look again before waiting.
      if (sent < job->events.size() || job->result) continue;
      co_await job->wake.async_wait(kAwait);
    }
    co_return co_await r.end_stream();
  }

  // Refuses to remove an image a revision uses; its blobs go with the next prune.
  awaitable<bool> remove(ApiRequest& req, Responder& r) {
    std::string name = req.param("name");
    auto image =
        co_await offload(p_.store_thread.get_executor(), &Store::get_image, &p_.store, name);
    if (!image) co_return co_await r.send_error(image.error());
    auto users =
        co_await offload(p_.store_thread.get_executor(), &Store::revision_image_digests, &p_.store);
    if (!users) co_return co_await r.send_error(users.error());
    std::string list;
    for (const auto& [revision, digest] : *users)
      if (digest == image->digest) list += (list.empty() ? "" : ", ") + revision;
    if (!list.empty())
      co_return co_await r.send_error(Error::precondition(fmt::format(
          "image \"{}\" is used by revision(s) {}; delete those revisions or their services first",
          name, list)));
    auto d =
        co_await offload(p_.store_thread.get_executor(), &Store::delete_image, &p_.store, name);
    if (!d) co_return co_await r.send_error(d.error());
    spdlog::info("removed image {}", name);
    co_return co_await r.send_json(200, success_status("images", name));
  }

  // Removes the images no revision uses, then every blob and root filesystem nothing needs.
  awaitable<bool> prune(ApiRequest&, Responder& r) {
    auto images = co_await offload(p_.store_thread.get_executor(), &Store::list_images, &p_.store);
    if (!images) co_return co_await r.send_error(images.error());
    auto users =
        co_await offload(p_.store_thread.get_executor(), &Store::revision_image_digests, &p_.store);
    if (!users) co_return co_await r.send_error(users.error());
    std::vector<std::string> keep;
    for (const auto& [revision, digest] : *users) keep.push_back(digest);
    json::array removed;
    for (const auto& i : *images) {
      if (std::find(keep.begin(), keep.end(), i.digest) != keep.end()) continue;
      auto d =
          co_await offload(p_.store_thread.get_executor(), &Store::delete_image, &p_.store, i.name);
      if (d) removed.emplace_back(i.name);
    }
    // Files younger than a minute may belong to an import not recorded yet.
    auto freed = co_await offload(p_.puller.pool().get_executor(), &ImageStore::prune, &p_.images,
                                  keep, std::chrono::seconds(60));
    if (!freed) co_return co_await r.send_error(freed.error());
    spdlog::info("pruned images: removed {} image(s), freed {} bytes", removed.size(), *freed);
    json::value answer =
        json::object{{"removedImages", std::move(removed)}, {"freedBytes", *freed}};
    co_return co_await r.send_json(200, answer);
  }

  // Registry logins: checked against the registry (as `docker login` does), then stored.
  awaitable<bool> login(ApiRequest& req, Responder& r) {
    auto parsed = parse_login(req.body);
    if (!parsed) co_return co_await r.send_error(parsed.error());
    auto checked = co_await offload(p_.puller.pool().get_executor(), &RegistryClient::check_login,
                                    &p_.registry, parsed->first, parsed->second);
    if (!checked) co_return co_await r.send_error(checked.error());
    auto stored = co_await offload(p_.blocking.get_executor(), &CredentialStore::put,
                                   &p_.credentials, parsed->first, parsed->second);
    if (!stored) co_return co_await r.send_error(stored.error());
    spdlog::info("logged in to registry {} as {}", parsed->first, parsed->second.username);
    json::value answer =
        json::object{{"registry", parsed->first}, {"username", parsed->second.username}};
    co_return co_await r.send_json(200, answer);
  }

  awaitable<bool> logout(ApiRequest& req, Responder& r) {
    auto v = parse_json_body(req.body);
    if (!v) co_return co_await r.send_error(v.error());
    const json::value* reg = v->is_object() ? v->get_object().if_contains("registry") : nullptr;
    auto host =
        canonical_registry_host(reg && reg->is_string() ? std::string(reg->get_string()) : "");
    if (!host) co_return co_await r.send_error(host.error());
    auto removed = co_await offload(p_.blocking.get_executor(), &CredentialStore::remove,
                                    &p_.credentials, *host);
    if (!removed) co_return co_await r.send_error(removed.error());
    if (!*removed)
      co_return co_await r.send_error(
          Error::not_found(fmt::format("not logged in to registry {}", *host)));
    spdlog::info("logged out of registry {}", *host);
    json::value answer = json::object{{"registry", *host}};
    co_return co_await r.send_json(200, answer);
  }

  awaitable<bool> logins(ApiRequest&, Responder& r) {
    json::array items;
    for (const auto& [host, user] : p_.credentials.usernames())
      items.push_back(json::object{{"registry", host}, {"username", user}});
    json::value answer = json::object{{"items", std::move(items)}};
    co_return co_await r.send_json(200, answer);
  }

  DaemonApiParts p_;
};

}  // namespace

void add_image_routes(Router& router, const DaemonApiParts& parts) {
  auto api = std::make_shared<ImageApi>(parts);
  auto bind = [api](awaitable<bool> (ImageApi::*fn)(ApiRequest&, Responder&)) -> Handler {
    return [api, fn](ApiRequest& req, Responder& r) { return ((*api).*fn)(req, r); };
  };
  for (std::string base : {"/api/v1", "/apis/elafros.dev/v1"}) {
    router.add("GET", base + "/images", bind(&ImageApi::list));
    router.add("POST", base + "/images", bind(&ImageApi::import));
    router.add("POST", base + "/images/pull", bind(&ImageApi::pull));
    router.add("POST", base + "/images/prune", bind(&ImageApi::prune));
    router.add("POST", base + "/images/push", bind(&ImageApi::push));
    // The name is one percent-encoded segment: registry names hold '/'.
    router.add("DELETE", base + "/images/{name}", bind(&ImageApi::remove));
    router.add("GET", base + "/registries", bind(&ImageApi::logins));
    router.add("POST", base + "/registries/login", bind(&ImageApi::login));
    router.add("POST", base + "/registries/logout", bind(&ImageApi::logout));
  }
}

}  // namespace elafros::api
