#include "policy/quota_book.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <map>

#include "controller_start.hpp"
#include "elafros/autoscaling.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {
namespace {

using asio::awaitable;

struct Quota {
  std::string ns, name;
  std::map<std::string, std::string> hard;
};

struct LimitBounds {  // one LimitRange's Container entry
  std::map<std::string, std::string> defaults, default_requests, min, max;
};

std::map<std::string, std::string> string_map_at(const json::value* v) {
  std::map<std::string, std::string> out;
  if (v && v->is_object())
    for (const auto& kv : v->get_object())
      if (kv.value().is_string()) out[std::string(kv.key())] = std::string(kv.value().get_string());
  return out;
}

std::string format_memory(std::int64_t bytes) {
  constexpr std::int64_t kMi = 1 << 20, kGi = std::int64_t{1} << 30;
  if (bytes && bytes % kGi == 0) return fmt::format("{}Gi", bytes / kGi);
  if (bytes && bytes % kMi == 0) return fmt::format("{}Mi", bytes / kMi);
  return std::to_string(bytes);
}

std::string format_cpu(std::int64_t millis) {
  return millis % 1000 == 0 ? std::to_string(millis / 1000) : fmt::format("{}m", millis);
}

std::int64_t amount(const std::string& resource, const std::string& value) {
  if (resource.find(".cpu") != std::string::npos) return parse_cpu_millis(value).value_or(0);
  if (resource.find(".memory") != std::string::npos) return parse_memory_bytes(value).value_or(0);
  return std::stoll(value);
}

std::string show(const std::string& resource, std::int64_t v) {
  if (resource.find(".cpu") != std::string::npos) return format_cpu(v);
  if (resource.find(".memory") != std::string::npos) return format_memory(v);
  return std::to_string(v);
}

// The Service's container objects: spec.template.spec.containers, then its initContainers
// (`init` set for those).
std::vector<std::pair<json::object*, bool>> containers_of(json::object& service) {
  std::vector<std::pair<json::object*, bool>> out;
  json::value* v = service.if_contains("spec");
  for (const char* key : {"template", "spec"}) {
    if (!v || !v->is_object()) return out;
    v = v->get_object().if_contains(key);
  }
  if (!v || !v->is_object()) return out;
  for (const char* key : {"containers", "initContainers"}) {
    json::value* cs = v->get_object().if_contains(key);
    if (!cs || !cs->is_array()) continue;
    for (auto& c : cs->get_array())
      if (c.is_object()) out.emplace_back(&c.get_object(), std::string_view(key) != "containers");
  }
  return out;
}

std::map<std::string, std::string> template_annotations(const json::object& service) {
  std::map<std::string, std::string> out;
  json::value v = json_path_value(json::value(service), ".spec.template.metadata.annotations");
  if (!v.is_object()) return out;
  for (const auto& kv : v.get_object())
    if (kv.value().is_string()) out[std::string(kv.key())] = std::string(kv.value().get_string());
  return out;
}

}  // namespace

class QuotaBook::Impl : public std::enable_shared_from_this<QuotaBook::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
       WatchSource& watches, ObjectCommitter& committer,
       std::function<NamespaceUsage(const std::string&)> live)
      : control_(control),
        store_thread_(store_thread),
        store_(store),
        watches_(watches),
        committer_(committer),
        live_(std::move(live)),
        tick_(control) {}

  void apply(const ObjectEvent& e) {
    std::string key = meta_string(e.object, "namespace") + "/" + meta_string(e.object, "name");
    bool gone = e.type == WatchEventType::kDeleted;
    if (e.kind == "ResourceQuota") {
      if (gone) {
        quotas_.erase(key);
        written_.erase(key);
        return;
      }
      const json::value* spec = e.object.if_contains("spec");
      quotas_[key] =
          Quota{meta_string(e.object, "namespace"), meta_string(e.object, "name"),
                string_map_at(spec && spec->is_object() ? spec->get_object().if_contains("hard")
                                                        : nullptr)};
      return;
    }
    if (gone) {
      limits_.erase(key);
      return;
    }
    std::vector<LimitBounds> bounds;
    json::value ls = json_path_value(json::value(e.object), ".spec.limits");
    if (ls.is_array())
      for (const auto& l : ls.get_array()) {
        if (!l.is_object()) continue;
        const json::object& o = l.get_object();
        bounds.push_back({string_map_at(o.if_contains("default")),
                          string_map_at(o.if_contains("defaultRequest")),
                          string_map_at(o.if_contains("min")),
                          string_map_at(o.if_contains("max"))});
      }
    limits_[key] = {meta_string(e.object, "namespace"), std::move(bounds)};
  }

  awaitable<Result<void>> load(std::int64_t from) {
    for (const char* kind : {"ResourceQuota", "LimitRange"}) {
      ObjectQuery q;
      q.kind = kind;
      auto listed =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
      if (!listed) co_return listed.error();
      for (auto& o : listed->items) apply({WatchEventType::kAdded, "", kind, o, 0});
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    auto ex = control_.get_executor();
    auto id = watches_.watch(from, [weak, ex](const ObjectEvent& e) {
      if (!e.group.empty() || (e.kind != "ResourceQuota" && e.kind != "LimitRange")) return;
      asio::post(ex, [weak, e] {
        if (auto self = weak.lock()) self->apply(e);
      });
    });
    if (!id) co_return id.error();
    watch_id_ = *id;
    schedule();
    co_return Result<void>{};
  }

  std::vector<const Quota*> quotas_in(const std::string& ns) const {
    std::vector<const Quota*> out;
    for (const auto& [k, q] : quotas_)
      if (q.ns == ns) out.push_back(&q);
    return out;
  }

  Result<std::size_t> count(const std::string& group, const std::string& kind,
                            const std::string& ns) {
    ObjectQuery q;
    q.group = group;
    q.kind = kind;
    q.namespace_ = ns;
    auto listed = store_.list_objects(q);
    if (!listed) return listed.error();
    return listed->items.size();
  }

  static Error exceeded(const Quota& q, const std::string& resource, std::int64_t requested,
                        std::int64_t used, std::int64_t limited) {
    return Error{ErrorCode::kForbidden,
                 fmt::format("exceeded quota: {}, requested: {}={}, used: {}={}, limited: {}={}",
                             q.name, resource, show(resource, requested), resource,
                             show(resource, used), resource, show(resource, limited))};
  }

  // LimitRange: defaults into each container, then its bounds.
  Result<void> limit(const std::string& ns, json::object& service) {
    for (auto [c, init] : containers_of(service))
      if (auto r = limit_container(ns, c); !r) return r;
    return {};
  }

  Result<void> limit_container(const std::string& ns, json::object* c) {
    for (const auto& [key, lr] : limits_) {
      if (lr.first != ns) continue;
      for (const auto& b : lr.second) {
        json::value empty = json::object{};
        const json::value* res = c->if_contains("resources");
        const json::object& ro = res && res->is_object() ? res->get_object() : empty.get_object();
        auto limits = string_map_at(ro.if_contains("limits"));
        auto requests = string_map_at(ro.if_contains("requests"));
        for (const auto& [r, v] : b.defaults) limits.emplace(r, v);
        for (const auto& [r, v] : b.default_requests) requests.emplace(r, v);
        // Written back whole: no reference into the object is held across an insertion.
        json::object out = ro;
        auto to_json = [](const std::map<std::string, std::string>& m) {
          json::object o;
          for (const auto& [k, v] : m) o[k] = v;
          return o;
        };
        if (!limits.empty()) out["limits"] = to_json(limits);
        if (!requests.empty()) out["requests"] = to_json(requests);
        if (!out.empty()) (*c)["resources"] = std::move(out);
        auto value = [](const std::string& r, const std::string& v) {
          return r == "cpu" ? parse_cpu_millis(v).value_or(0) : parse_memory_bytes(v).value_or(0);
        };
        for (const auto& [r, v] : b.max) {
          auto it = limits.find(r);
          if (it == limits.end())
            return Error{ErrorCode::kForbidden,
                         fmt::format("maximum {} usage per Container is {}, but no limit is "
                                     "specified; set resources.limits.{} (--limit {}=…)",
                                     r, v, r, r)};
          if (value(r, it->second) > value(r, v))
            return Error{ErrorCode::kForbidden,
                         fmt::format("maximum {} usage per Container is {}, but limit is {}", r, v,
                                     it->second)};
        }
        for (const auto& [r, v] : b.min) {
          auto it = requests.find(r);
          if (it == requests.end()) it = limits.find(r);
          if (it != limits.end() && it != requests.end() && value(r, it->second) < value(r, v))
            return Error{ErrorCode::kForbidden,
                         fmt::format("minimum {} usage per Container is {}, but request is {}", r,
                                     v, it->second)};
        }
      }
    }
    return {};
  }

  awaitable<Result<void>> admit(const KindInfo& k, const json::object* old, json::object& obj) {
    if (!k.namespaced) co_return Result<void>{};
    std::string ns = meta_string(obj, "namespace");
    bool service = k.group == "serving.knative.dev" && k.kind == "Service";
    if (service)
      if (auto l = limit(ns, obj); !l) co_return l.error();
    auto quotas = quotas_in(ns);
    if (quotas.empty()) co_return Result<void>{};
    std::string own = k.group.empty() ? "count/" + k.plural : "count/" + k.plural + "." + k.group;
    const std::string revisions = "count/revisions.serving.knative.dev";
    bool new_revision =
        service && (!old || json_path_value(json::value(*old), ".spec.template") !=
                                json_path_value(json::value(obj), ".spec.template"));
    for (const Quota* q : quotas)
      for (const auto& [resource, value] : q->hard) {
        std::int64_t limited = amount(resource, value);
        if ((resource == own && !old) || (resource == revisions && new_revision)) {
          bool rev = resource == revisions;
          std::string group = rev ? "serving.knative.dev" : k.group;
          std::string kind = rev ? "Revision" : k.kind;
          auto used =
              co_await offload(store_thread_.get_executor(), &Impl::count, this, group, kind, ns);
          if (!used) co_return used.error();
          auto n = static_cast<std::int64_t>(*used);
          if (n + 1 > limited) co_return exceeded(*q, resource, 1, n, limited);
        }
      }
    if (!service) co_return Result<void>{};
    // A Service's floor of instances counts now: min-scale × its limits.
    std::int64_t min_scale = 0;
    std::string ms = autoscaling_annotation(template_annotations(obj), "min-scale").value_or("");
    if (!ms.empty() && ms.find_first_not_of("0123456789") == std::string::npos)
      min_scale = std::stoll(ms);
    // Per instance, as Kubernetes counts a pod: its containers' sum, or an init container's own
    // limit if that is more; a resource any container leaves out is missing.
    std::map<std::string, std::int64_t> per_instance, init_most;
    std::map<std::string, bool> missing;
    for (auto [c, init] : containers_of(obj)) {
      std::map<std::string, std::string> limits;
      if (const json::value* res = c->if_contains("resources"); res && res->is_object())
        limits = string_map_at(res->get_object().if_contains("limits"));
      for (const char* r : {"cpu", "memory"}) {
        auto it = limits.find(r);
        if (it == limits.end()) {
          missing[r] = true;
          continue;
        }
        std::int64_t v = std::string_view(r) == "cpu" ? parse_cpu_millis(it->second).value_or(0)
                                                      : parse_memory_bytes(it->second).value_or(0);
        if (init)
          init_most[r] = std::max(init_most[r], v);
        else
          per_instance[r] += v;
      }
    }
    for (const auto& [r, v] : init_most) per_instance[r] = std::max(per_instance[r], v);
    NamespaceUsage used = live_ ? live_(ns) : NamespaceUsage{};
    for (const Quota* q : quotas)
      for (const auto& [resource, value] : q->hard) {
        std::int64_t limited = amount(resource, value);
        if (resource == "limits.cpu" || resource == "limits.memory") {
          std::string r = resource.substr(7);
          if (missing[r])
            co_return Error{ErrorCode::kForbidden,
                            fmt::format("failed quota: {}: must specify {}: the namespace has a "
                                        "compute quota, so every container needs resources.limits."
                                        "{} (--limit {}=…, or a LimitRange default)",
                                        q->name, resource, r, r)};
          std::int64_t per = per_instance[r];
          std::int64_t now = r == "cpu" ? used.limits_cpu_millis : used.limits_memory_bytes;
          if (min_scale > 0 && now + min_scale * per > limited)
            co_return exceeded(*q, resource, min_scale * per, now, limited);
        }
        if (resource == "instances" && min_scale > 0 && used.instances + min_scale > limited)
          co_return exceeded(*q, resource, min_scale, used.instances, limited);
      }
    co_return Result<void>{};
  }

  InstanceQuota instance_quota(const std::string& ns) const {
    InstanceQuota out;
    for (const Quota* q : quotas_in(ns))
      for (const auto& [resource, value] : q->hard) {
        std::int64_t* slot = resource == "instances"       ? &out.instances
                             : resource == "limits.cpu"    ? &out.limits_cpu_millis
                             : resource == "limits.memory" ? &out.limits_memory_bytes
                                                           : nullptr;
        if (!slot) continue;
        std::int64_t v = amount(resource, value);
        if (*slot < 0 || v < *slot) *slot = v;
        if (out.names.find(q->name) == std::string::npos)
          out.names += (out.names.empty() ? "" : ", ") + q->name;
      }
    return out;
  }

  // status.used, for every quota, when it changed.
  awaitable<void> write_status() {
    // A copy: the feed may change the quotas while this waits on the store.
    const std::map<std::string, Quota> snapshot = quotas_;
    for (const auto& [key, q] : snapshot) {
      json::object hard, used;
      NamespaceUsage live = live_ ? live_(q.ns) : NamespaceUsage{};
      for (const auto& [resource, value] : q.hard) {
        hard[resource] = value;
        std::int64_t n = 0;
        if (resource == "instances")
          n = live.instances;
        else if (resource == "limits.cpu")
          n = live.limits_cpu_millis;
        else if (resource == "limits.memory")
          n = live.limits_memory_bytes;
        else if (resource == "requests.cpu")
          n = live.requests_cpu_millis;
        else if (resource == "requests.memory")
          n = live.requests_memory_bytes;
        else {
          std::string rest = resource.substr(6);
          auto dot = rest.find('.');
          const KindInfo* k = nullptr;
          for (const auto& info : builtin_kinds().all())
            if (info.plural == rest.substr(0, dot) &&
                info.group == (dot == std::string::npos ? "" : rest.substr(dot + 1)))
              k = &info;
          if (!k) continue;
          auto c = co_await offload(store_thread_.get_executor(), &Impl::count, this, k->group,
                                    k->kind, q.ns);
          n = c ? static_cast<std::int64_t>(*c) : 0;
        }
        used[resource] = show(resource, n);
      }
      json::object status{{"hard", std::move(hard)}, {"used", std::move(used)}};
      std::string text = json::serialize(status);
      if (written_[key] == text) continue;
      written_[key] = text;
      json::object patch{{"metadata", json::object{{"name", q.name}, {"namespace", q.ns}}},
                         {"status", std::move(status)}};
      committer_.commit(
          {{ObjectWrite::Op::kUpdateStatus, "", "ResourceQuota", std::move(patch), 0}},
          [](Result<std::vector<ObjectEvent>>) {});
    }
  }

  void schedule() {
    tick_.expires_after(std::chrono::seconds(2));
    std::weak_ptr<Impl> weak = weak_from_this();
    tick_.async_wait([weak](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped_) return;
      asio::co_spawn(
          self->control_,
          [self]() -> awaitable<void> {
            co_await self->write_status();
            self->schedule();
          },
          asio::detached);
    });
  }

  void stop() {
    stopped_ = true;
    tick_.cancel();
    if (watch_id_) watches_.unwatch(watch_id_);
    watch_id_ = 0;
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  ObjectStore& store_;
  WatchSource& watches_;
  ObjectCommitter& committer_;
  std::function<NamespaceUsage(const std::string&)> live_;
  asio::steady_timer tick_;
  std::map<std::string, Quota> quotas_;  // "ns/name"
  std::map<std::string, std::pair<std::string, std::vector<LimitBounds>>> limits_;
  std::map<std::string, std::string> written_;
  std::uint64_t watch_id_ = 0;
  bool stopped_ = false;
};

QuotaBook::QuotaBook(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
                     WatchSource& watches, ObjectCommitter& committer,
                     std::function<NamespaceUsage(const std::string&)> live_usage)
    : impl_(std::make_shared<Impl>(control, store_thread, store, watches, committer,
                                   std::move(live_usage))) {}

QuotaBook::~QuotaBook() {
  impl_->stop();
}

void QuotaBook::start(std::int64_t from, std::function<void(Result<void>)> done) {
  spawn_load(impl_->control_, impl_, from, std::move(done));
}

void QuotaBook::stop() {
  impl_->stop();
}

awaitable<Result<void>> QuotaBook::admit(const KindInfo& kind, const json::object* old,
                                         json::object& object) {
  return impl_->admit(kind, old, object);
}

InstanceQuota QuotaBook::instance_quota(const std::string& ns) const {
  return impl_->instance_quota(ns);
}

}  // namespace elafros
