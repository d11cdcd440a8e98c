#include "api/resource_api.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <deque>
#include <map>
#include <unordered_map>

#include "api/kube_protobuf.hpp"
#include "api/table.hpp"
#include "elafros/json_patch.hpp"
#include "elafros/label_selector.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros::api {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

std::string unix_rfc3339_now() {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return format_rfc3339(now);
}

std::map<std::string, std::string> labels_of(const json::object& o) {
  std::map<std::string, std::string> out;
  const json::value* md = o.if_contains("metadata");
  const json::value* l = md && md->is_object() ? md->get_object().if_contains("labels") : nullptr;
  if (l && l->is_object())
    for (const auto& kv : l->get_object())
      if (kv.value().is_string()) out.emplace(kv.key(), kv.value().get_string());
  return out;
}

bool wants_table(const ApiRequest& req) {
  return req.accept.find("as=Table") != std::string::npos;
}

// Continue tokens: the last (namespace, name) of a page, hex-encoded so they are opaque.
std::string encode_continue(const std::string& ns, const std::string& name) {
  std::string raw = ns + "\n" + name, out;
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

std::optional<std::pair<std::string, std::string>> decode_continue(const std::string& token) {
  if (token.size() % 2) return std::nullopt;
  std::string raw;
  for (std::size_t i = 0; i < token.size(); i += 2) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(token.data() + i, token.data() + i + 2, v, 16);
    if (ec != std::errc() || end != token.data() + i + 2) return std::nullopt;
    raw += static_cast<char>(v);
  }
  auto nl = raw.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  return std::make_pair(raw.substr(0, nl), raw.substr(nl + 1));
}

// A watch in progress: events posted from the store's thread, drained by the handler.
struct WatchState {
  explicit WatchState(const asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  std::deque<ObjectEvent> events;
  bool closed = false;
  asio::steady_timer wake;
};

// Which objects a list or watch selects.
struct Selection {
  const KindInfo* kind = nullptr;
  std::string namespace_;  // empty: all
  std::string name;        // fieldSelector metadata.name=
  LabelSelector labels;

  bool matches(const ObjectEvent& e) const {
    if (e.group != kind->group || e.kind != kind->kind) return false;
    if (!namespace_.empty() && meta_string(e.object, "namespace") != namespace_) return false;
    if (!name.empty() && meta_string(e.object, "name") != name) return false;
    return labels.matches(labels_of(e.object));
  }
};

// Kubernetes says 'services.serving.knative.dev "x" not found'; this says it in the user's
// words, and where to look.
Error not_found(const KindInfo& k, const std::string& ns, const std::string& name) {
  if (!k.namespaced)
    return Error::not_found(fmt::format("{} \"{}\" not found; 'kubectl get {}' lists them",
                                        k.singular, name, k.plural));
  return Error::not_found(
      fmt::format("{} \"{}\" not found in namespace \"{}\"; 'elafros {} list -n {}' lists them",
                  k.singular, name, ns, k.singular, ns));
}

Error read_only(const KindInfo& k) {
  return Error{ErrorCode::kMethodNotAllowed, k.read_only_reason};
}

Error unsupported_patch(const std::string& type) {
  return Error::bad_request(
      fmt::format("the patch Content-Type \"{}\" is not supported: send "
                  "application/merge-patch+json or application/json-patch+json (kubectl patch "
                  "--type merge or --type json)",
                  type));
}

bool spec_equal(const json::object& a, const json::object& b) {
  for (const auto& kv : a)
    if (kv.key() != "metadata" && kv.key() != "status" && kv.key() != "apiVersion" &&
        kv.key() != "kind") {
      const json::value* other = b.if_contains(kv.key());
      if (!other || *other != kv.value()) return false;
    }
  for (const auto& kv : b)
    if (kv.key() != "metadata" && kv.key() != "status" && kv.key() != "apiVersion" &&
        kv.key() != "kind" && !a.contains(kv.key()))
      return false;
  return true;
}

// Everything but resourceVersion: an update that changes nothing writes nothing.
bool same_object(json::object a, json::object b) {
  metadata_of(a).erase("resourceVersion");
  metadata_of(b).erase("resourceVersion");
  return a == b;
}

}  // namespace

class ResourceApi::Impl : public std::enable_shared_from_this<ResourceApi::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
       ObjectCommitter& committer, WatchSource& watches, const KindRegistry& kinds)
      : control_(control),
        store_thread_(store_thread),
        store_(store),
        committer_(committer),
        watches_(watches),
        kinds_(kinds) {}

  // --- helpers ---------------------------------------------------------------------------------

  KindHooks* hooks_for(const KindInfo& k) {
    auto it = hooks_.find(k.group + "/" + k.kind);
    return it == hooks_.end() ? nullptr : it->second;
  }

  void present(const KindInfo& k, json::object& o) {
    if (auto* h = hooks_for(k)) h->present(k, o);
  }

  // The kind and namespace a resource path names, or an error to answer.
  Result<const KindInfo*> resolve(const ApiRequest& req) {
    std::string group = req.param("group");
    std::string version = req.param("version");
    if (req.path.rfind("/api/", 0) == 0) group.clear(), version = "v1";
    const KindInfo* k = kinds_.find(group, version, req.param("plural"));
    if (!k)
      return Error::not_found(fmt::format(
          "the server could not find the requested resource: no kind \"{}\" in {} ('kubectl "
          "api-resources' lists them)",
          req.param("plural"), group.empty() ? version : group + "/" + version));
    bool has_ns = req.params.count("namespace") > 0;
    if (k->namespaced != has_ns && !(k->namespaced && !has_ns && !req.params.count("name")))
      return Error::not_found(fmt::format(
          "{} are {}; use the path {}", k->plural, k->namespaced ? "namespaced" : "cluster-scoped",
          k->namespaced ? "…/namespaces/{namespace}/…" : "without /namespaces/{namespace}"));
    if (has_ns)
      if (auto problem = dns1035_label_problem(req.param("namespace")))
        return Error::invalid(
            fmt::format("metadata.namespace: \"{}\" {}", req.param("namespace"), *problem));
    return k;
  }

  static Result<bool> dry_run(const ApiRequest& req) {
    auto v = req.query_value("dryRun");
    if (!v) return false;
    if (*v == "All") return true;
    return Error::bad_request(fmt::format("dryRun must be All, not \"{}\"", *v));
  }

  static Result<void> field_validation(const ApiRequest& req) {
    auto v = req.query_value("fieldValidation");
    if (!v || *v == "Strict" || v->empty()) return {};
    if (*v == "Warn" || *v == "Ignore")
      return Error::bad_request(
          fmt::format("fieldValidation={} is not supported: elafrosd always refuses unknown fields "
                      "(Strict); leave the parameter out",
                      *v));
    return Error::bad_request(
        fmt::format("fieldValidation must be Strict, Warn or Ignore, not \"{}\"", *v));
  }

  awaitable<Result<std::vector<ObjectEvent>>> commit(std::vector<ObjectWrite> writes) {
    struct Wait {
      explicit Wait(const asio::any_io_executor& ex)
          : wake(ex, std::chrono::steady_clock::time_point::max()) {}
      std::optional<Result<std::vector<ObjectEvent>>> result;
      asio::steady_timer wake;
    };
    auto wait = std::make_shared<Wait>(control_.get_executor());
    auto ex = control_.get_executor();
    committer_.commit(std::move(writes), [wait, ex](Result<std::vector<ObjectEvent>> r) {
      asio::post(ex, [wait, r = std::move(r)]() mutable {
        wait->result = std::move(r);
        wait->wake.cancel();
      });
    });
    while (!wait->result) co_await wait->wake.async_wait(kAwait);
    co_return std::move(*wait->result);
  }

  Result<Selection> selection(const ApiRequest& req, const KindInfo& k) {
    Selection s;
    s.kind = &k;
    s.namespace_ = req.param("namespace");
    if (auto fs = req.query_value("fieldSelector"); fs && !fs->empty()) {
      std::string_view text = *fs;
      std::size_t start = 0;
      while (start <= text.size()) {
        auto comma = text.find(',', start);
        std::string_view req_text = text.substr(
            start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        auto eq = req_text.find('=');
        std::string_view key = req_text.substr(0, eq);
        std::string_view value =
            eq == std::string_view::npos
                ? ""
                : req_text.substr(eq + (req_text.substr(eq, 2) == "==" ? 2 : 1));
        if (eq == std::string_view::npos || (key != "metadata.name" && key != "metadata.namespace"))
          return Error::bad_request(
              fmt::format("fieldSelector \"{}\" is not supported: use metadata.name=NAME or "
                          "metadata.namespace=NAMESPACE",
                          req_text));
        if (key == "metadata.name")
          s.name = std::string(value);
        else if (s.namespace_.empty())
          s.namespace_ = std::string(value);
        else if (s.namespace_ != value)
          s.name = "\n";  // selects nothing
        if (comma == std::string_view::npos) break;
        start = comma + 1;
      }
    }
    if (auto ls = req.query_value("labelSelector")) {
      auto parsed = LabelSelector::parse(*ls);
      if (!parsed) return parsed.error();
      s.labels = std::move(parsed.value());
    }
    return s;
  }

  // --- verbs -----------------------------------------------------------------------------------

  awaitable<bool> get(ApiRequest& req, Responder& r) {
    auto k = resolve(req);
    if (!k) co_return co_await r.send_error(k.error());
    ObjectKey key{(*k)->group, (*k)->kind, req.param("namespace"), req.param("name")};
    auto o = co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, key);
    if (!o && o.error().code == ErrorCode::kNotFound)
      co_return co_await r.send_error(not_found(**k, key.namespace_, key.name));
    if (!o) co_return co_await r.send_error(o.error());
    present(**k, *o);
    if (wants_table(req)) {
      std::vector<json::object> one{*o};
      json::value t = table(**k, one, meta_string(*o, "resourceVersion"), "");
      co_return co_await r.send_json(200, t);
    }
    co_return co_await r.send_json(200, *o);
  }

  awaitable<bool> list(ApiRequest& req, Responder& r) {
    auto k = resolve(req);
    if (!k) co_return co_await r.send_error(k.error());
    auto sel = selection(req, **k);
    if (!sel) co_return co_await r.send_error(sel.error());
    if (req.query_value("watch").value_or("") == "true" ||
        req.query_value("watch").value_or("") == "1")
      co_return co_await watch(req, r, std::move(sel.value()));
    ObjectQuery q{(*k)->group, (*k)->kind, sel->namespace_, sel->name, 0, "", ""};
    if (auto limit = req.query_value("limit"); limit && !limit->empty()) {
      std::size_t n = 0;
      auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
      if (ec != std::errc() || end != limit->data() + limit->size())
        co_return co_await r.send_error(
            Error::bad_request(fmt::format("limit must be a whole number, not \"{}\"", *limit)));
      q.limit = n;
    }
    if (auto cont = req.query_value("continue"); cont && !cont->empty()) {
      auto after = decode_continue(*cont);
      if (!after)
        co_return co_await r.send_error(Error::bad_request(
            "the continue token is not one this server gave; list again without it"));
      q.after_namespace = after->first;
      q.after_name = after->second;
    }
    auto listed =
        co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
    if (!listed) co_return co_await r.send_error(listed.error());
    std::vector<json::object> items;
    std::string cont;
    if (listed->more && !listed->items.empty())
      cont = encode_continue(meta_string(listed->items.back(), "namespace"),
                             meta_string(listed->items.back(), "name"));
    for (auto& o : listed->items) {
      if (!sel->labels.matches(labels_of(o))) continue;
      present(**k, o);
      items.push_back(std::move(o));
    }
    std::string rv = std::to_string(listed->resource_version);
    json::value answer;
    if (wants_table(req)) {
      answer = table(**k, items, rv, cont);
    } else {
      json::array arr;
      for (auto& o : items) arr.push_back(std::move(o));
      json::object md{{"resourceVersion", rv}};
      if (!cont.empty()) md["continue"] = cont;
      answer = json::object{{"apiVersion", (*k)->api_version()},
                            {"kind", (*k)->kind + "List"},
                            {"metadata", std::move(md)},
                            {"items", std::move(arr)}};
    }
    co_return co_await r.send_json(200, answer);
  }

  std::string event_line(const ApiRequest& req, const KindInfo& k, const char* type,
                         json::object object) {
    present(k, object);
    json::value payload;
    if (wants_table(req)) {
      json::object t = table(k, {object}, meta_string(object, "resourceVersion"), "");
      if (req.query_value("includeObject").value_or("") == "Object")
        t["rows"].as_array()[0].as_object()["object"] = object;
      payload = std::move(t);
    } else {
      payload = std::move(object);
    }
    return json::serialize(json::object{{"type", type}, {"object", std::move(payload)}}) + "\n";
  }

  // One committed change as a watch line, rendered once for every watcher that wants it in the
  // same form (a change is presented, with its live status, once, not once per watcher).
  std::string shared_event_line(const ApiRequest& req, const KindInfo& k, const ObjectEvent& e) {
    std::string form = wants_table(req) ? req.query_value("includeObject").value_or("") : "-";
    std::string key = fmt::format("{}/{}/{}/{}", e.resource_version, k.group, k.kind, form);
    if (auto it = lines_.find(key); it != lines_.end()) return it->second;
    if (lines_.size() >= 256) lines_.clear();  // a few changes' worth is all a burst needs
    return lines_[key] = event_line(req, k, to_string(e.type), e.object);
  }

  awaitable<bool> watch(ApiRequest& req, Responder& r, Selection sel) {
    const KindInfo& k = *sel.kind;
    std::string rv_text = req.query_value("resourceVersion").value_or("");
    std::int64_t from = 0;
    if (!rv_text.empty()) {
      auto [end, ec] = std::from_chars(rv_text.data(), rv_text.data() + rv_text.size(), from);
      if (ec != std::errc() || end != rv_text.data() + rv_text.size() || from < 0)
        co_return co_await r.send_error(Error::bad_request(
            fmt::format("resourceVersion must be a number, not \"{}\"", rv_text)));
    }
    std::chrono::seconds timeout{1800};
    if (auto t = req.query_value("timeoutSeconds"); t && !t->empty()) {
      int n = 0;
      auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), n);
      if (ec != std::errc() || n < 0)
        co_return co_await r.send_error(Error::bad_request("timeoutSeconds must be a number"));
      if (n > 0) timeout = std::chrono::seconds(n);
    }
    bool bookmarks = req.query_value("allowWatchBookmarks").value_or("") == "true";
    auto ex = control_.get_executor();
    auto state = std::make_shared<WatchState>(ex);
    std::vector<json::object> initial;
    if (from == 0) {
      // No version: the current objects first, as ADDED events (Kubernetes' semantics).
      ObjectQuery q{k.group, k.kind, sel.namespace_, sel.name, 0, "", ""};
      auto listed =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
      if (!listed) co_return co_await r.send_error(listed.error());
      for (auto& o : listed->items)
        if (sel.labels.matches(labels_of(o))) initial.push_back(std::move(o));
      from = listed->resource_version;
    }
    auto id = watches_.watch(from, [state, ex](const ObjectEvent& e) {
      asio::post(ex, [state, e] {
        state->events.push_back(e);
        state->wake.cancel();
      });
    });
    if (!id) co_return co_await r.send_error(id.error());
    bool ok = co_await r.begin_stream(200, "application/json");
    if (ok)
      r.notify_close([state] {
        state->closed = true;
        state->wake.cancel();
      });
    std::string text;
    for (auto& o : initial) text += event_line(req, k, "ADDED", std::move(o));
    if (ok && !text.empty()) ok = co_await r.send_chunk(std::move(text));
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto next_bookmark = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    std::int64_t last_rv = from;
    while (ok && !state->closed) {
      std::string out;
      while (!state->events.empty()) {
        ObjectEvent e = std::move(state->events.front());
        state->events.pop_front();
        last_rv = e.resource_version;
        if (sel.matches(e)) out += shared_event_line(req, k, e);
      }
      auto now = std::chrono::steady_clock::now();
      if (bookmarks && now >= next_bookmark) {
        json::object marker{
            {"apiVersion", k.api_version()},
            {"kind", k.kind},
            {"metadata", json::object{{"resourceVersion", std::to_string(last_rv)}}}};
        out += json::serialize(json::object{{"type", "BOOKMARK"}, {"object", std::move(marker)}}) +
               "\n";
        next_bookmark = now + std::chrono::seconds(30);
      }
      if (!out.empty()) ok = co_await r.send_chunk(std::move(out));
      if (!ok || now >= deadline) break;
      if (!state->events.empty()) continue;
      state->wake.expires_at(bookmarks ? std::min(deadline, next_bookmark) : deadline);
      co_await state->wake.async_wait(kAwait);
    }
    watches_.unwatch(*id);
    if (!ok || state->closed) co_return false;
    co_await r.end_stream();
    co_return false;  // a read is pending on the connection: it ends with the watch
  }

  // What every write (create, update, patch) checks first: the kind, that clients may write it,
  // and the dryRun and fieldValidation parameters.
  struct WriteRequest {
    const KindInfo* kind = nullptr;
    bool dry = false;
  };
  Result<WriteRequest> writable(const ApiRequest& req) {
    auto k = resolve(req);
    if (!k) return k.error();
    if (!(*k)->client_writable) return read_only(**k);
    auto dry = dry_run(req);
    if (!dry) return dry.error();
    if (auto fv = field_validation(req); !fv) return fv.error();
    return WriteRequest{*k, *dry};
  }

  // The object a create or update body carries, checked against the path.
  Result<json::object> body_object(const ApiRequest& req, const KindInfo& k) {
    // Kubernetes' clients send built-in kinds as protobuf unless told otherwise; a 415 makes
    // them send JSON again.
    std::string type = req.content_type.substr(0, req.content_type.find(';'));
    bool protobuf = type == kProtobufType;
    if (!protobuf &&
        (type.find("protobuf") != std::string::npos || type.find("cbor") != std::string::npos))
      return Error{ErrorCode::kUnsupportedMediaType,
                   fmt::format("the Content-Type \"{}\" is not supported: elafrosd reads "
                               "application/json (and some kinds as protobuf); write the object "
                               "as YAML and 'kubectl apply -f' it",
                               type)};
    auto v = protobuf ? kube_protobuf_to_json(req.body) : parse_json_body(req.body);
    if (!v) return v.error();
    if (!v->is_object()) return Error::bad_request("the request body must be a JSON object");
    json::object o = std::move(v->get_object());
    if (const json::value* av = o.if_contains("apiVersion");
        av && (!av->is_string() || av->get_string() != k.api_version()))
      return Error::bad_request(fmt::format("apiVersion must be {} on this path, not {}",
                                            k.api_version(), json::serialize(*av)));
    if (const json::value* kv = o.if_contains("kind");
        kv && (!kv->is_string() || kv->get_string() != k.kind))
      return Error::bad_request(
          fmt::format("kind must be {} on this path, not {}", k.kind, json::serialize(*kv)));
    const json::value* md = o.if_contains("metadata");
    if (md && !md->is_object()) return Error::invalid("metadata: expected an object");
    std::string ns = meta_string(o, "namespace");
    std::string path_ns = req.param("namespace");
    if (k.namespaced) {
      if (!ns.empty() && ns != path_ns)
        return Error::bad_request(fmt::format(
            "the namespace of the object ({}) does not match the namespace of the request path "
            "({})",
            ns, path_ns));
      metadata_of(o)["namespace"] = path_ns;
    }
    if (!req.param("name").empty()) {
      std::string name = meta_string(o, "name");
      if (name.empty())
        metadata_of(o)["name"] = req.param("name");
      else if (name != req.param("name"))
        return Error::bad_request(fmt::format(
            "the name of the object ({}) does not match the name of the request path ({})", name,
            req.param("name")));
    }
    if (meta_string(o, "name").empty())
      return Error::invalid("metadata.name: Required value: name is required");
    o["apiVersion"] = k.api_version();
    o["kind"] = k.kind;
    return o;
  }

  awaitable<bool> create(ApiRequest& req, Responder& r) {
    auto w = writable(req);
    if (!w) co_return co_await r.send_error(w.error());
    const KindInfo& kind = *w->kind;
    const bool dry = w->dry;
    auto o = body_object(req, kind);
    if (!o) co_return co_await r.send_error(o.error());
    auto obj = admit_new(kind, *o);
    if (!obj) co_return co_await r.send_error(obj.error());
    auto result = co_await write(kind, nullptr, std::move(*obj), 0, dry, &req.who);
    if (!result) co_return co_await r.send_error(result.error());
    co_return co_await r.send_json(201, *result);
  }

  // A new object as admitted, with the metadata the server sets on a create.
  static Result<json::object> admit_new(const KindInfo& k, const json::object& in) {
    auto admitted = k.admit(in);
    if (!admitted) return admitted.error();
    json::object obj = std::move(admitted.value());
    json::object& md = metadata_of(obj);
    md["uid"] = new_uid();
    md["creationTimestamp"] = unix_rfc3339_now();
    md["generation"] = 1;
    md.erase("resourceVersion");
    md.erase("deletionTimestamp");
    md.erase("managedFields");
    return obj;
  }

  // Admission, hooks and the commit of a create (old null) or an update. The object as
  // presented to the client.
  // who: the client, or null for the daemon's own writes.
  awaitable<Result<json::object>> write(const KindInfo& k, const json::object* old,
                                        json::object obj, std::int64_t expected, bool dry,
                                        const Identity* who) {
    // A namespaced object is created only in a namespace that exists and is not going away.
    if (!old && k.namespaced) {
      std::string ns = meta_string(obj, "namespace");
      ObjectKey nk{"", "Namespace", "", ns};
      auto found =
          co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, nk);
      if (!found && found.error().code == ErrorCode::kNotFound)
        co_return Error::not_found(fmt::format(
            "namespaces \"{}\" not found: create it first ('elafros namespace create {}' or "
            "'kubectl create namespace {}')",
            ns, ns, ns));
      if (!found) co_return found.error();
      if (!meta_string(*found, "deletionTimestamp").empty())
        co_return Error{ErrorCode::kForbidden,
                        fmt::format("unable to create new content in namespace {} because it is "
                                    "being terminated",
                                    ns)};
    }
    if (write_check_) {
      auto allowed = co_await write_check_(who, k, old, obj);
      if (!allowed) co_return allowed.error();
    }
    std::vector<ObjectWrite> also;
    if (auto* h = hooks_for(k)) {
      auto r = co_await h->before_write(k, old, obj, also, dry);
      if (!r) co_return r.error();
    }
    // The generation counts spec changes, the hooks' included (a SinkBinding's K_SINK).
    if (old) {
      std::int64_t generation = meta_int(*old, "generation");
      metadata_of(obj)["generation"] = spec_equal(obj, *old) ? generation : generation + 1;
    }
    if (old && same_object(obj, *old)) {
      json::object unchanged = *old;
      present(k, unchanged);
      co_return unchanged;
    }
    if (dry) {
      present(k, obj);
      co_return obj;
    }
    std::vector<ObjectWrite> writes;
    writes.push_back({old ? ObjectWrite::Op::kUpdate : ObjectWrite::Op::kCreate, k.group, k.kind,
                      obj, expected});
    for (auto& w : also) writes.push_back(std::move(w));
    auto events = co_await commit(std::move(writes));
    if (!events) co_return events.error();
    json::object stored = events->front().object;
    spdlog::info("{} {} {}/{} (resourceVersion {})", old ? "updated" : "created", k.kind,
                 meta_string(stored, "namespace"), meta_string(stored, "name"),
                 events->front().resource_version);
    present(k, stored);
    co_return stored;
  }

  // The stored object an update replaces.
  awaitable<Result<json::object>> current(const KindInfo& k, const ApiRequest& req) {
    ObjectKey key{k.group, k.kind, req.param("namespace"), req.param("name")};
    auto o = co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, key);
    if (!o && o.error().code == ErrorCode::kNotFound)
      co_return not_found(k, key.namespace_, key.name);
    co_return o;
  }

  // An update's object: the client's, admitted, with server-set fields from the stored one.
  static Result<json::object> merge_update(const KindInfo& k, const json::object& stored,
                                           const json::object& in) {
    auto admitted = k.admit(in);
    if (!admitted) return admitted.error();
    json::object obj = std::move(admitted.value());
    for (const auto& field : k.immutable_fields)
      if (json_path_value(obj, field) != json_path_value(stored, field))
        return Error::invalid(
            fmt::format("{}: field is immutable; delete the {} and create it again to change it",
                        field.substr(1), k.singular));
    json::object& md = metadata_of(obj);
    for (const char* key : {"uid", "creationTimestamp", "deletionTimestamp"}) {
      std::string v = meta_string(stored, key);
      if (v.empty())
        md.erase(key);
      else
        md[key] = v;
    }
    md.erase("managedFields");
    std::int64_t generation = meta_int(stored, "generation");
    md["generation"] = spec_equal(obj, stored) ? generation : generation + 1;
    md["resourceVersion"] = meta_string(stored, "resourceVersion");
    if (const json::value* st = stored.if_contains("status"))
      obj["status"] = *st;
    else
      obj.erase("status");
    return obj;
  }

  awaitable<bool> update(ApiRequest& req, Responder& r) {
    auto w = writable(req);
    if (!w) co_return co_await r.send_error(w.error());
    const KindInfo& kind = *w->kind;
    const bool dry = w->dry;
    auto o = body_object(req, kind);
    if (!o) co_return co_await r.send_error(o.error());
    std::int64_t expected = resource_version_of(*o);
    if (meta_string(*o, "resourceVersion").size() && expected == 0)
      co_return co_await r.send_error(Error::invalid(
          "metadata.resourceVersion: must be the resourceVersion the object was read with"));
    for (int attempt = 0;; ++attempt) {
      auto stored = co_await current(kind, req);
      if (!stored) co_return co_await r.send_error(stored.error());
      if (expected && expected != resource_version_of(*stored))
        co_return co_await r.send_error(Error::conflict(fmt::format(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please "
            "apply your changes to the latest version and try again (it is at resourceVersion "
            "{}, the request was based on {})",
            kind.plural, req.param("name"), meta_string(*stored, "resourceVersion"), expected)));
      auto obj = merge_update(kind, *stored, *o);
      if (!obj) co_return co_await r.send_error(obj.error());
      auto result = co_await write(kind, &*stored, std::move(*obj), resource_version_of(*stored),
                                   dry, &req.who);
      // Without a resourceVersion the client asked for no check: a write that landed since
      // (a controller's status write) is no reason to refuse it. Apply it to the latest, as
      // the Kubernetes API server's unconditional update does.
      if (!result && result.error().code == ErrorCode::kConflict && !expected && attempt < 5)
        continue;
      if (!result) co_return co_await r.send_error(result.error());
      co_return co_await r.send_json(200, *result);
    }
  }

  awaitable<bool> patch(ApiRequest& req, Responder& r) {
    auto w = writable(req);
    if (!w) co_return co_await r.send_error(w.error());
    const KindInfo& kind = *w->kind;
    const bool dry = w->dry;
    std::string type = req.content_type.substr(0, req.content_type.find(';'));
    bool merge = type == "application/merge-patch+json";
    if (!merge && type != "application/json-patch+json")
      co_return co_await r.send_error(unsupported_patch(type));
    auto patch_doc = parse_json_body(req.body);
    if (!patch_doc) co_return co_await r.send_error(patch_doc.error());
    // Applied to the latest version; retried when another write lands in between, as the
    // Kubernetes API server does.
    for (int attempt = 0;; ++attempt) {
      auto stored = co_await current(kind, req);
      if (!stored) co_return co_await r.send_error(stored.error());
      json::value base = *stored;
      json::value patched;
      if (merge) {
        if (!patch_doc->is_object())
          co_return co_await r.send_error(
              Error::bad_request("a merge patch must be a JSON object"));
        patched = apply_merge_patch(base, *patch_doc);
      } else {
        auto p = apply_json_patch(base, *patch_doc);
        if (!p) co_return co_await r.send_error(p.error());
        patched = std::move(p.value());
      }
      if (!patched.is_object())
        co_return co_await r.send_error(Error::bad_request("the patch must leave an object"));
      json::object& po = patched.get_object();
      if (meta_string(po, "name") != req.param("name") ||
          meta_string(po, "namespace") != meta_string(*stored, "namespace"))
        co_return co_await r.send_error(
            Error::bad_request("a patch may not change metadata.name or metadata.namespace"));
      std::int64_t expected = resource_version_of(po);
      if (expected && expected != resource_version_of(*stored))
        co_return co_await r.send_error(Error::conflict(fmt::format(
            "Operation cannot be fulfilled on {} \"{}\": the patch names resourceVersion {}, "
            "but the object is at {}; read it again and retry",
            kind.plural, req.param("name"), expected, meta_string(*stored, "resourceVersion"))));
      po.erase("status");
      auto obj = merge_update(kind, *stored, po);
      if (!obj) co_return co_await r.send_error(obj.error());
      auto result = co_await write(kind, &*stored, std::move(*obj), resource_version_of(*stored),
                                   dry, &req.who);
      if (!result && result.error().code == ErrorCode::kConflict && attempt < 5) continue;
      if (!result) co_return co_await r.send_error(result.error());
      co_return co_await r.send_json(200, *result);
    }
  }

  awaitable<bool> remove(ApiRequest& req, Responder& r) {
    auto k = resolve(req);
    if (!k) co_return co_await r.send_error(k.error());
    auto dry = dry_run(req);
    if (!dry) co_return co_await r.send_error(dry.error());
    std::int64_t expected = 0;
    if (!req.body.empty()) {
      auto opts = parse_json_body(req.body);
      if (!opts) co_return co_await r.send_error(opts.error());
      if (const json::object* o = opts->if_object()) {
        if (const json::value* pc = o->if_contains("preconditions"); pc && pc->is_object())
          if (const json::value* rv = pc->get_object().if_contains("resourceVersion");
              rv && rv->is_string()) {
            json::object probe{{"metadata", json::object{{"resourceVersion", *rv}}}};
            expected = resource_version_of(probe);
          }
        if (const json::value* dr = o->if_contains("dryRun"); dr && dr->is_array())
          for (const auto& d : dr->get_array()) *dry = *dry || d == "All";
      }
    }
    const std::string ns = req.param("namespace"), name = req.param("name");
    auto deleted = co_await delete_object(**k, ns, name, expected, *dry);
    if (!deleted) co_return co_await r.send_error(deleted.error());
    if (!deleted->gone) co_return co_await r.send_json(200, deleted->object);
    json::object status = success_status((*k)->plural, name);
    status["details"].as_object()["group"] = (*k)->group;
    status["details"].as_object()["uid"] = meta_string(deleted->object, "uid");
    co_return co_await r.send_json(200, status);
  }

  struct Deleted {
    json::object object;  // as presented: marked for deletion, or as it was before it went
    bool gone = false;    // deleted now (no finalizers)
  };

  // A delete: refused by a hook or a failed precondition, marked when finalizers hold it, or
  // done. Without a precondition, a write that lands in between (a controller's status write) is
  // no reason to refuse it: read it again and retry.
  awaitable<Result<Deleted>> delete_object(const KindInfo& k, const std::string& ns,
                                           const std::string& name, std::int64_t expected,
                                           bool dry) {
    auto retry = [&](const Result<std::vector<ObjectEvent>>& events, int attempt) {
      return !events && events.error().code == ErrorCode::kConflict && !expected && attempt < 5;
    };
    for (int attempt = 0;; ++attempt) {
      ObjectKey key{k.group, k.kind, ns, name};
      auto stored =
          co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, key);
      if (!stored && stored.error().code == ErrorCode::kNotFound) co_return not_found(k, ns, name);
      if (!stored) co_return stored.error();
      if (expected && expected != resource_version_of(*stored))
        co_return Error::conflict(fmt::format(
            "Precondition failed on {} \"{}\": resourceVersion {} was asked for, it is at {}",
            k.plural, name, expected, meta_string(*stored, "resourceVersion")));
      if (auto* h = hooks_for(k)) {
        auto ok = co_await h->before_delete(k, *stored);
        if (!ok) co_return ok.error();
      }
      const json::value* md = stored->if_contains("metadata");
      const json::value* fin = md ? md->get_object().if_contains("finalizers") : nullptr;
      bool finalizers = fin && fin->is_array() && !fin->get_array().empty();
      if (dry) {
        json::object shown = *stored;
        present(k, shown);
        co_return Deleted{std::move(shown), false};
      }
      if (finalizers) {
        // Graceful: marked for deletion; its controller finishes the work and removes it.
        json::object marked = *stored;
        if (meta_string(marked, "deletionTimestamp").empty())
          metadata_of(marked)["deletionTimestamp"] = unix_rfc3339_now();
        metadata_of(marked)["deletionGracePeriodSeconds"] = 0;
        std::vector<ObjectWrite> writes;
        writes.push_back({ObjectWrite::Op::kUpdate, k.group, k.kind, std::move(marked),
                          resource_version_of(*stored)});
        auto events = co_await commit(std::move(writes));
        if (retry(events, attempt)) continue;
        if (!events) co_return events.error();
        json::object shown = events->front().object;
        present(k, shown);
        spdlog::info("deleting {} {}/{}", k.kind, ns, name);
        co_return Deleted{std::move(shown), false};
      }
      std::vector<ObjectWrite> writes;
      writes.push_back(
          {ObjectWrite::Op::kDelete, k.group, k.kind, *stored, resource_version_of(*stored)});
      auto events = co_await commit(std::move(writes));
      if (retry(events, attempt)) continue;
      if (!events) co_return events.error();
      spdlog::info("deleted {} {}/{}", k.kind, ns, name);
      co_return Deleted{std::move(*stored), true};
    }
  }

  // A controller's write (ObjectWriter), through admission and the hooks as a client's.
  awaitable<Result<void>> write_internal(json::object in, ObjectWriter::Mode mode) {
    std::string api = in.contains("apiVersion") && in.at("apiVersion").is_string()
                          ? std::string(in.at("apiVersion").get_string())
                          : "";
    std::string kind_name = in.contains("kind") && in.at("kind").is_string()
                                ? std::string(in.at("kind").get_string())
                                : "";
    auto slash = api.find('/');
    const KindInfo* k =
        kinds_.find_kind(slash == std::string::npos ? "" : api.substr(0, slash), kind_name);
    if (!k) co_return Error::invalid(fmt::format("no kind {} {}", api, kind_name));
    ObjectKey key{k->group, k->kind, meta_string(in, "namespace"), meta_string(in, "name")};
    for (int attempt = 0;; ++attempt) {
      auto stored =
          co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, key);
      Result<json::object> written = json::object{};
      if (!stored && stored.error().code != ErrorCode::kNotFound) co_return stored.error();
      if (!stored) {
        if (mode == ObjectWriter::Mode::kRewrite) co_return Result<void>{};  // gone: nothing
        auto obj = admit_new(*k, in);
        if (!obj) co_return obj.error();
        written = co_await write(*k, nullptr, std::move(*obj), 0, false, nullptr);
      } else {
        if (mode == ObjectWriter::Mode::kCreateOnly) co_return Result<void>{};
        json::object input = *stored;
        if (mode == ObjectWriter::Mode::kApply) {
          if (const json::value* spec = in.if_contains("spec")) input["spec"] = *spec;
          for (const char* field : {"labels", "annotations", "ownerReferences"})
            if (const json::value* v = in.at("metadata").as_object().if_contains(field))
              metadata_of(input)[field] = *v;
        }
        auto obj = merge_update(*k, *stored, input);
        if (!obj) co_return obj.error();
        written = co_await write(*k, &*stored, std::move(*obj), resource_version_of(*stored), false,
                                 nullptr);
      }
      if (!written &&
          (written.error().code == ErrorCode::kConflict ||
           written.error().code == ErrorCode::kAlreadyExists) &&
          attempt < 5)
        continue;
      if (!written) co_return written.error();
      co_return Result<void>{};
    }
  }

  class Writer final : public ObjectWriter {
   public:
    explicit Writer(Impl& impl) : impl_(impl) {}
    void write(json::object object, Mode mode, std::function<void(Result<void>)> done) override {
      asio::co_spawn(impl_.control_, impl_.write_internal(std::move(object), mode),
                     [done = std::move(done)](std::exception_ptr e, Result<void> r) {
                       if (done) done(e ? Error::internal("the write failed") : std::move(r));
                     });
    }
    void remove(std::string group, std::string kind, std::string ns, std::string name,
                std::function<void(Result<void>)> done) override {
      const KindInfo* k = impl_.kinds_.find_kind(group, kind);
      if (!k) {
        if (done) done(Error::invalid(fmt::format("no kind {} {}", group, kind)));
        return;
      }
      auto run = [](Impl& impl, const KindInfo* k, std::string ns,
                    std::string name) -> awaitable<Result<void>> {
        auto deleted = co_await impl.delete_object(*k, ns, name, 0, false);
        if (!deleted && deleted.error().code != ErrorCode::kNotFound) co_return deleted.error();
        co_return Result<void>{};
      };
      asio::co_spawn(impl_.control_, run(impl_, k, std::move(ns), std::move(name)),
                     [done = std::move(done)](std::exception_ptr e, Result<void> r) {
                       if (done) done(e ? Error::internal("the delete failed") : std::move(r));
                     });
    }

   private:
    Impl& impl_;
  };
  Writer writer_{*this};

  void add_routes(Router& router) {
    auto self = shared_from_this();
    auto bind = [self](awaitable<bool> (Impl::*fn)(ApiRequest&, Responder&)) -> Handler {
      return [self, fn](ApiRequest& req, Responder& r) { return ((*self).*fn)(req, r); };
    };
    for (const char* prefix : {"/apis/{group}/{version}", "/api/{version}"}) {
      std::string p(prefix);
      router.add("GET", p + "/{plural}", bind(&Impl::list));
      router.add("POST", p + "/{plural}", bind(&Impl::create));
      router.add("GET", p + "/{plural}/{name}", bind(&Impl::get));
      router.add("PUT", p + "/{plural}/{name}", bind(&Impl::update));
      router.add("PATCH", p + "/{plural}/{name}", bind(&Impl::patch));
      router.add("DELETE", p + "/{plural}/{name}", bind(&Impl::remove));
      router.add("GET", p + "/namespaces/{namespace}/{plural}", bind(&Impl::list));
      router.add("POST", p + "/namespaces/{namespace}/{plural}", bind(&Impl::create));
      router.add("GET", p + "/namespaces/{namespace}/{plural}/{name}", bind(&Impl::get));
      router.add("PUT", p + "/namespaces/{namespace}/{plural}/{name}", bind(&Impl::update));
      router.add("PATCH", p + "/namespaces/{namespace}/{plural}/{name}", bind(&Impl::patch));
      router.add("DELETE", p + "/namespaces/{namespace}/{plural}/{name}", bind(&Impl::remove));
      router.add("GET", p + "/namespaces/{namespace}/{plural}/{name}/status", bind(&Impl::get));
    }
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  ObjectStore& store_;
  ObjectCommitter& committer_;
  WatchSource& watches_;
  const KindRegistry& kinds_;
  std::map<std::string, KindHooks*> hooks_;
  WriteCheck write_check_;
  std::unordered_map<std::string, std::string> lines_;  // shared_event_line's renderings
};

ResourceApi::ResourceApi(asio::io_context& control, asio::thread_pool& store_thread,
                         ObjectStore& store, ObjectCommitter& committer, WatchSource& watches,
                         const KindRegistry& kinds)
    : impl_(std::make_shared<Impl>(control, store_thread, store, committer, watches, kinds)) {}
ResourceApi::~ResourceApi() = default;

void ResourceApi::set_hooks(const std::string& group, const std::string& kind, KindHooks* hooks) {
  impl_->hooks_[group + "/" + kind] = hooks;
}

void ResourceApi::set_write_check(WriteCheck check) {
  impl_->write_check_ = std::move(check);
}

void ResourceApi::add_routes(Router& router) {
  impl_->add_routes(router);
}

awaitable<Result<std::vector<ObjectEvent>>> ResourceApi::commit(std::vector<ObjectWrite> writes) {
  return impl_->commit(std::move(writes));
}

ObjectWriter& ResourceApi::writer() {
  return impl_->writer_;
}

}  // namespace elafros::api
