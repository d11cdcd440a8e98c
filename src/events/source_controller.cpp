#include "events/source_controller.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>

#include "elafros/autoscaling.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "elafros/sources.hpp"
#include "events/controller_support.hpp"
#include "events/event_sender.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {
namespace {

std::string key_of(const json::object& o) {
  return meta_string(o, "namespace") + "/" + meta_string(o, "name");
}

std::map<std::string, std::string> labels_of(const json::object& o) {
  std::map<std::string, std::string> labels;
  if (const json::value* md = o.if_contains("metadata"); md && md->is_object())
    if (const json::value* l = md->get_object().if_contains("labels"); l && l->is_object())
      for (const auto& kv : l->get_object())
        if (kv.value().is_string()) labels.emplace(kv.key(), kv.value().get_string());
  return labels;
}

// RFC 3339 with milliseconds, UTC.
std::string rfc3339(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::string s = format_rfc3339(ms / 1000);  // "2026-12-02T01:00:00Z"
  return fmt::format("{}.{:03d}Z", s.substr(0, s.size() - 1), static_cast<int>(ms % 1000));
}

// On a ContainerSource's Service: the source's name.
constexpr const char* kContainerSourceLabel = "sources.knative.dev/containerSource";

const char* const kSourceKinds[] = {"PingSource", "SinkBinding", "ContainerSource",
                                    "ApiServerSource"};

bool is_source_kind(const std::string& kind) {
  for (const char* k : kSourceKinds)
    if (kind == k) return true;
  return false;
}

}  // namespace

class SourceController::Impl : public std::enable_shared_from_this<SourceController::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
       WatchSource& watches, ObjectCommitter& committer, ObjectWriter& writer, EventSender& sender,
       SourceControllerOptions options)
      : control_(control),
        store_thread_(store_thread),
        store_(store),
        watches_(watches),
        writer_(writer),
        sender_(sender),
        options_(std::move(options)),
        status_(control, committer) {
    if (!options_.clock) options_.clock = std::make_shared<RealClock>();
    where_.ingress_url = options_.ingress_url;
    where_.domain = options_.domain;
    where_.proxy_port = options_.proxy_port;
    where_.has_service = [this](const std::string& ns, const std::string& name) {
      return services_.count(ns + "/" + name) > 0;
    };
    where_.has_broker = [this](const std::string& ns, const std::string& name) {
      return brokers_.count(ns + "/" + name) > 0;
    };
  }

  std::map<std::string, json::object>& objects_of(const std::string& kind) {
    if (kind == "PingSource") return pings_;
    if (kind == "SinkBinding") return bindings_;
    if (kind == "ContainerSource") return containers_;
    return api_sources_;
  }

  asio::awaitable<Result<void>> load(std::int64_t from) {
    std::vector<std::pair<const char*, const char*>> kinds{{kServingGroup, "Service"},
                                                           {kEventingGroup, "Broker"}};
    for (const char* k : kSourceKinds) kinds.emplace_back(kSourcesGroup, k);
    for (const auto& [group, kind] : kinds) {
      ObjectQuery q;
      q.group = group;
      q.kind = kind;
      auto list =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
      if (!list) co_return list.error();
      for (auto& o : list->items) {
        std::string k = key_of(o);
        if (std::string_view(kind) == "Service") {
          services_[k] = labels_of(o);
          json::value bound = json_path_value(
              o, std::string(".metadata.annotations['") + kBoundByAnnotation + "']");
          if (bound.is_string()) bound_by_[k] = std::string(bound.get_string());
        } else if (std::string_view(kind) == "Broker")
          brokers_.insert(k);
        else
          objects_of(kind)[k] = std::move(o);
      }
    }
    // Services, Brokers and sources; and every change while an ApiServerSource may select it.
    std::weak_ptr<Impl> weak = shared_from_this();
    auto ex = control_.get_executor();
    auto id = watches_.watch(from, [weak, ex, any = any_api_source_](const ObjectEvent& e) {
      bool followed = (e.group == kServingGroup && e.kind == "Service") ||
                      (e.group == kEventingGroup && e.kind == "Broker") ||
                      (e.group == kSourcesGroup && is_source_kind(e.kind));
      if (!followed && !any->load(std::memory_order_relaxed)) return;
      asio::post(ex, [weak, e] {
        if (auto self = weak.lock()) self->on_event(e);
      });
    });
    if (!id) co_return id.error();
    watch_id_ = *id;
    // What went while the daemon was down: a binding's Services keep its K_SINK, a container
    // source's Service runs on, until they are written again or deleted here.
    for (const auto& [service, binding] : bound_by_) {
      auto slash = service.find('/');
      if (!bindings_.count(service.substr(0, slash) + "/" + binding)) rewrite_service(service);
    }
    for (const auto& [service, labels] : services_) {
      auto it = labels.find(kContainerSourceLabel);
      auto slash = service.find('/');
      std::string ns = service.substr(0, slash);
      if (it != labels.end() && !containers_.count(ns + "/" + it->second) &&
          service.substr(slash + 1) == child_name(it->second))
        writer_.remove(kServingGroup, "Service", ns, child_name(it->second), {});
    }
    bound_by_.clear();
    rebuild();
    co_return Result<void>{};
  }

  void on_event(const ObjectEvent& e) {
    if (stopped_) return;
    emit_api_events(e);
    const std::string k = key_of(e.object);
    const bool deleted = e.type == WatchEventType::kDeleted;
    if (e.kind == "Service" && e.group == kServingGroup) {
      auto labels = labels_of(e.object);
      auto it = services_.find(k);
      if (deleted) {
        if (it == services_.end()) return;
        services_.erase(it);
      } else {
        if (it != services_.end() && it->second == labels) return;
        services_[k] = std::move(labels);
      }
      schedule();
    } else if (e.kind == "Broker" && e.group == kEventingGroup) {
      if (deleted ? brokers_.erase(k) == 0 : !brokers_.insert(k).second) return;
      schedule();
    } else if (e.group == kSourcesGroup && is_source_kind(e.kind)) {
      auto& m = objects_of(e.kind);
      if (deleted) {
        m.erase(k);
        status_.forget(e.kind, meta_string(e.object, "namespace"), meta_string(e.object, "name"));
      } else {
        // Our own status writes come back with an unchanged generation: nothing to do.
        auto it = m.find(k);
        bool same =
            it != m.end() && meta_int(it->second, "generation") == meta_int(e.object, "generation");
        m[k] = e.object;
        if (same) return;
      }
      schedule();
    }
  }

  void schedule() {
    if (rebuild_posted_) return;
    rebuild_posted_ = true;
    asio::post(control_, [self = shared_from_this()] {
      self->rebuild_posted_ = false;
      if (!self->stopped_) self->rebuild();
    });
  }

  void rebuild() {
    rebuild_pings();
    rebuild_bindings();
    rebuild_containers();
    rebuild_api_sources();
  }

  // Status with SinkProvided (and more parts); the sink's URL, or "".
  std::string sink_status(const char* kind, const SourceCommon& s, std::vector<Condition> more,
                          json::object status, std::function<void(bool)> done = {}) {
    auto [url, problem] = resolve_destination(s.sink, s.namespace_, where_);
    std::string object = fmt::format("{}/{}/{}", kind, s.namespace_, s.name);
    std::vector<Condition> parts{
        status_.condition(object, "SinkProvided", problem.empty(), "NotFound", problem)};
    for (auto& c : more) parts.push_back(std::move(c));
    status["sinkUri"] = url;
    status_.write(kSourcesGroup, kind, s.namespace_, s.name, s.generation, std::move(parts),
                  std::move(status), std::move(done));
    return url;
  }

  Condition part(const SourceCommon& s, const char* kind, const char* type, bool ok,
                 std::string reason, std::string message) {
    return status_.condition(fmt::format("{}/{}/{}", kind, s.namespace_, s.name), type, ok,
                             std::move(reason), std::move(message));
  }

  // --- PingSource -------------------------------------------------------------------------------

  struct Armed {
    PingSource source;
    std::string url;
    std::string token;  // uid, generation and sink: a change re-arms
    std::shared_ptr<asio::steady_timer> timer;
  };

  void rebuild_pings() {
    for (auto it = armed_.begin(); it != armed_.end();) {
      if (!pings_.count(it->first)) {
        it->second.timer->cancel();
        it = armed_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [k, o] : pings_) {
      auto p = ping_source_from_object(o);
      if (!p) {
        spdlog::warn("pingsource {} cannot be read: {}", k, p.error().message);
        continue;
      }
      json::object status{
          {"ceAttributes",
           json::array{json::object{{"type", kPingEventType},
                                    {"source", ping_event_source(p->namespace_, p->name)}}}}};
      auto next = next_tick(p->schedule, p->timezone, options_.clock->wall());
      std::vector<Condition> more{part(*p, "PingSource", "Deployed", next.has_value(), "NoNextTick",
                                       "the schedule has no tick in the next five years")};
      std::string url = sink_status("PingSource", *p, std::move(more), std::move(status));
      std::string token = fmt::format("{}/{}/{}", p->uid, p->generation, url);
      auto it = armed_.find(k);
      if (url.empty() || !next) {
        if (it != armed_.end()) {
          it->second.timer->cancel();
          armed_.erase(it);
        }
        continue;
      }
      if (it != armed_.end() && it->second.token == token) continue;
      if (it != armed_.end()) it->second.timer->cancel();
      Armed a{std::move(*p), url, token, std::make_shared<asio::steady_timer>(control_)};
      armed_[k] = std::move(a);
      arm(k, options_.clock->wall());
    }
  }

  void arm(const std::string& k, std::chrono::system_clock::time_point after) {
    auto it = armed_.find(k);
    if (it == armed_.end()) return;
    Armed& a = it->second;
    auto next = next_tick(a.source.schedule, a.source.timezone, after);
    if (!next) return;
    auto wait = *next - options_.clock->wall();
    a.timer->expires_after(std::max<std::chrono::steady_clock::duration>(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait),
        std::chrono::steady_clock::duration::zero()));
    std::weak_ptr<Impl> weak = shared_from_this();
    a.timer->async_wait([weak, k, token = a.token, tick = *next](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped_) return;
      self->fire(k, token, tick);
    });
  }

  void fire(const std::string& k, const std::string& token,
            std::chrono::system_clock::time_point tick) {
    auto it = armed_.find(k);
    if (it == armed_.end() || it->second.token != token) return;
    const PingSource& p = it->second.source;
    CloudEvent e;
    e.attributes["specversion"] = "1.0";
    e.attributes["id"] = new_uid();
    e.attributes["type"] = kPingEventType;
    e.attributes["source"] = ping_event_source(p.namespace_, p.name);
    e.attributes["time"] = rfc3339(tick);
    if (!p.content_type.empty()) e.attributes["datacontenttype"] = p.content_type;
    for (const auto& [name, value] : p.ce_overrides) e.attributes[name] = value;
    e.data = p.data;
    EventOrigin origin{"PingSource", p.namespace_, p.name};
    sender_.send(std::move(e), it->second.url, std::move(origin));
    // The next tick after this one (not after now: a late timer does not skip or repeat one).
    arm(k, std::max(tick, options_.clock->wall() - std::chrono::seconds(1)));
  }

  // --- SinkBinding ------------------------------------------------------------------------------

  struct Bound {
    std::string state;               // sink, overrides and subject as last acted on
    std::set<std::string> services;  // "ns/name"
  };

  void rebuild_bindings() {
    std::set<std::string> rewrite;
    for (auto it = bound_.begin(); it != bound_.end();) {
      if (!bindings_.count(it->first)) {
        rewrite.insert(it->second.services.begin(), it->second.services.end());
        it = bound_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [k, o] : bindings_) {
      auto b = sink_binding_from_object(o);
      if (!b) {
        spdlog::warn("sinkbinding {} cannot be read: {}", k, b.error().message);
        continue;
      }
      std::set<std::string> services;
      for (const auto& [sk, labels] : services_) {
        auto slash = sk.find('/');
        if (sk.substr(0, slash) == b->namespace_ && b->binds(sk.substr(slash + 1), labels))
          services.insert(sk);
      }
      bool any = !services.empty();
      std::vector<Condition> more{
          part(*b, "SinkBinding", "BindingAvailable", any, "SubjectMissing",
               b->subject_name.empty()
                   ? "no Service in the namespace has the labels the selector asks for"
                   : fmt::format("service \"{}\" does not exist in namespace \"{}\"",
                                 b->subject_name, b->namespace_))};
      json::object overrides;
      for (const auto& [name, value] : b->ce_overrides) overrides[name] = value;
      auto [url, problem] = resolve_destination(b->sink, b->namespace_, where_);
      std::string state = fmt::format("{}|{}|{}", url, json::serialize(overrides),
                                      json::serialize(o.at("spec").at("subject")));
      Bound& now = bound_[k];
      std::set<std::string> touched;
      if (now.state != state || now.services != services) {
        touched = now.services;
        touched.insert(services.begin(), services.end());
      }
      now.state = state;
      now.services = services;
      // The Service hook reads the binding's sinkUri: rewrite its Services once it is stored.
      std::weak_ptr<Impl> weak = shared_from_this();
      sink_status("SinkBinding", *b, std::move(more), json::object{}, [weak, touched](bool ok) {
        auto self = weak.lock();
        if (!self || !ok) return;
        for (const auto& s : touched) self->rewrite_service(s);
      });
    }
    for (const auto& s : rewrite) rewrite_service(s);
  }

  void rewrite_service(const std::string& k) {
    auto slash = k.find('/');
    json::object o{{"apiVersion", "serving.knative.dev/v1"},
                   {"kind", "Service"},
                   {"metadata", json::object{{"namespace", k.substr(0, slash)},
                                             {"name", k.substr(slash + 1)}}}};
    writer_.write(std::move(o), ObjectWriter::Mode::kRewrite, [k](Result<void> r) {
      if (!r) spdlog::warn("binding the sink of service {} failed: {}", k, r.error().message);
    });
  }

  // --- ContainerSource --------------------------------------------------------------------------

  struct Applied {
    std::string text;   // the child Service last written
    std::string error;  // of that write; "" once it committed
  };

  static std::string child_name(const std::string& source) { return source + "-source"; }

  // The Service a ContainerSource runs: its template, min-scale and max-scale 1, K_SINK set.
  static json::object child_service(const json::object& source, const std::string& sink,
                                    const std::map<std::string, std::string>& overrides) {
    json::object tmpl = source.at("spec").at("template").as_object();
    json::object& tmd = tmpl["metadata"].is_object() ? tmpl["metadata"].as_object()
                                                     : tmpl["metadata"].emplace_object();
    json::object& ann = tmd["annotations"].is_object() ? tmd["annotations"].as_object()
                                                       : tmd["annotations"].emplace_object();
    ann["autoscaling.knative.dev/min-scale"] = "1";
    ann["autoscaling.knative.dev/max-scale"] = "1";
    std::string ce;
    if (!overrides.empty()) {
      json::object ext;
      for (const auto& [k, v] : overrides) ext[k] = v;
      ce = json::serialize(json::object{{"extensions", std::move(ext)}});
    }
    if (json::value* ts = tmpl.if_contains("spec"); ts && ts->is_object())
      if (json::value* cs = ts->get_object().if_contains("containers"); cs && cs->is_array())
        for (auto& c : cs->get_array()) {
          json::array env;
          if (const json::value* e = c.as_object().if_contains("env"); e && e->is_array())
            env = e->get_array();
          env.push_back(json::object{{"name", kSinkEnv}, {"value", sink}});
          if (!ce.empty()) env.push_back(json::object{{"name", kCeOverridesEnv}, {"value", ce}});
          c.as_object()["env"] = std::move(env);
        }
    std::string name = meta_string(source, "name");
    return json::object{
        {"apiVersion", "serving.knative.dev/v1"},
        {"kind", "Service"},
        {"metadata", json::object{{"name", child_name(name)},
                                  {"namespace", meta_string(source, "namespace")},
                                  {"labels", json::object{{kContainerSourceLabel, name}}},
                                  {"ownerReferences", json::array{json::object{
                                                          {"apiVersion", "sources.knative.dev/v1"},
                                                          {"kind", "ContainerSource"},
                                                          {"name", name},
                                                          {"uid", meta_string(source, "uid")},
                                                          {"controller", true},
                                                          {"blockOwnerDeletion", true}}}}}},
        {"spec", json::object{{"template", std::move(tmpl)}}}};
  }

  void rebuild_containers() {
    for (auto it = applied_.begin(); it != applied_.end();) {
      if (!containers_.count(it->first)) {
        auto slash = it->first.find('/');
        std::string ns = it->first.substr(0, slash), name = it->first.substr(slash + 1);
        writer_.remove(kServingGroup, "Service", ns, child_name(name), [ns, name](Result<void> r) {
          if (!r)
            spdlog::warn("deleting the service of containersource {}/{} failed: {}", ns, name,
                         r.error().message);
        });
        it = applied_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [k, o] : containers_) {
      auto s = source_common_from_object(o);
      if (!s) {
        spdlog::warn("containersource {} cannot be read: {}", k, s.error().message);
        continue;
      }
      auto [url, problem] = resolve_destination(s->sink, s->namespace_, where_);
      Applied& a = applied_[k];
      std::string child_text;
      if (!url.empty()) {
        json::object child = child_service(o, url, s->ce_overrides);
        child_text = json::serialize(child);
        if (child_text != a.text) {
          a.text = child_text;
          a.error = "being deployed";
          std::weak_ptr<Impl> weak = shared_from_this();
          writer_.write(
              std::move(child), ObjectWriter::Mode::kApply, [weak, k, child_text](Result<void> r) {
                auto self = weak.lock();
                if (!self) return;
                auto it = self->applied_.find(k);
                if (it == self->applied_.end() || it->second.text != child_text) return;
                it->second.error = r ? "" : r.error().message;
                if (!r) {
                  spdlog::warn("running containersource {} failed: {}", k, r.error().message);
                  it->second.text.clear();  // tried again at the next change
                }
                self->schedule();
              });
        }
      }
      bool deployed = !a.text.empty() && a.error.empty();
      std::vector<Condition> more{
          part(*s, "ContainerSource", "Deployed", deployed, "DeployFailed",
               a.error.empty() ? "waiting for the sink to resolve"
                               : fmt::format("service \"{}\": {}", child_name(s->name), a.error))};
      sink_status("ContainerSource", *s, std::move(more), json::object{});
    }
  }

  // --- ApiServerSource --------------------------------------------------------------------------

  struct Watching {
    ApiServerSource source;
    std::string url;
  };

  void rebuild_api_sources() {
    watching_.clear();
    for (const auto& [k, o] : api_sources_) {
      auto a = api_server_source_from_object(o);
      if (!a) {
        spdlog::warn("apiserversource {} cannot be read: {}", k, a.error().message);
        continue;
      }
      json::array attributes;
      for (const char* verb : {"add", "update", "delete"})
        attributes.push_back(json::object{{"type", api_server_event_type(a->mode, verb)},
                                          {"source", options_.api_server_url}});
      std::string url =
          sink_status("ApiServerSource", *a, {}, json::object{{"ceAttributes", attributes}});
      if (!url.empty()) watching_.push_back({std::move(*a), url});
    }
    any_api_source_->store(!api_sources_.empty(), std::memory_order_relaxed);
  }

  void emit_api_events(const ObjectEvent& e) {
    if (watching_.empty()) return;
    const std::string ns = meta_string(e.object, "namespace");
    const char* verb = e.type == WatchEventType::kAdded     ? "add"
                       : e.type == WatchEventType::kDeleted ? "delete"
                                                            : "update";
    const KindInfo* kind = nullptr;
    std::map<std::string, std::string> labels;
    for (const auto& w : watching_) {
      if (w.source.namespace_ != ns) continue;
      for (const auto& r : w.source.resources) {
        if (r.group != e.group || r.kind != e.kind) continue;
        if (!kind) {
          kind = builtin_kinds().find_kind(e.group, e.kind);
          labels = labels_of(e.object);
        }
        if (!kind || !r.selector.matches(labels)) continue;
        const std::string name = meta_string(e.object, "name");
        CloudEvent ce;
        ce.attributes["specversion"] = "1.0";
        ce.attributes["id"] = new_uid();
        ce.attributes["type"] = api_server_event_type(w.source.mode, verb);
        ce.attributes["source"] = options_.api_server_url;
        ce.attributes["subject"] =
            kind->group.empty()
                ? fmt::format("/api/{}/namespaces/{}/{}/{}", kind->version, ns, kind->plural, name)
                : fmt::format("/apis/{}/{}/namespaces/{}/{}/{}", kind->group, kind->version, ns,
                              kind->plural, name);
        ce.attributes["time"] = rfc3339(options_.clock->wall());
        ce.attributes["datacontenttype"] = "application/json";
        ce.attributes["name"] = name;
        ce.attributes["namespace"] = ns;
        for (const auto& [k, v] : w.source.ce_overrides) ce.attributes[k] = v;
        if (w.source.mode == "Resource") {
          ce.data = json::serialize(e.object);
        } else {
          ce.data = json::serialize(json::object{{"apiVersion", kind->api_version()},
                                                 {"kind", kind->kind},
                                                 {"name", name},
                                                 {"namespace", ns}});
        }
        EventOrigin origin{"ApiServerSource", w.source.namespace_, w.source.name};
        sender_.send(std::move(ce), w.url, std::move(origin));
        break;  // one event per source per change
      }
    }
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  ObjectStore& store_;
  WatchSource& watches_;
  ObjectWriter& writer_;
  EventSender& sender_;
  SourceControllerOptions options_;
  StatusWriter status_;
  Addressables where_;
  std::map<std::string, json::object> pings_, bindings_, containers_, api_sources_;  // "ns/name"
  std::map<std::string, std::map<std::string, std::string>> services_;               // their labels
  std::set<std::string> brokers_;
  std::map<std::string, std::string> bound_by_;  // at load: Service → the binding it names
  std::map<std::string, Armed> armed_;           // PingSources with a timer
  std::map<std::string, Bound> bound_;           // SinkBindings as last acted on
  std::map<std::string, Applied> applied_;       // ContainerSources' Services
  std::vector<Watching> watching_;               // ApiServerSources with a sink
  // Whether any ApiServerSource exists: the watch callback (the committing thread) reads it.
  std::shared_ptr<std::atomic<bool>> any_api_source_ = std::make_shared<std::atomic<bool>>(false);
  bool rebuild_posted_ = false;
  std::uint64_t watch_id_ = 0;
  bool stopped_ = false;
};

SourceController::SourceController(asio::io_context& control, asio::thread_pool& store_thread,
                                   ObjectStore& store, WatchSource& watches,
                                   ObjectCommitter& committer, ObjectWriter& writer,
                                   EventSender& sender, SourceControllerOptions options)
    : impl_(std::make_shared<Impl>(control, store_thread, store, watches, committer, writer, sender,
                                   std::move(options))) {}

SourceController::~SourceController() {
  stop();
}

void SourceController::start(std::int64_t from, std::function<void(Result<void>)> done) {
  asio::co_spawn(impl_->control_, impl_->load(from),
                 [done = std::move(done)](std::exception_ptr e, Result<void> r) {
                   if (e) return done(Error::internal("loading the event sources failed"));
                   done(std::move(r));
                 });
}

void SourceController::register_event_type(std::string ns, std::string broker, std::string type,
                                           std::string source) {
  asio::post(impl_->control_, [impl = impl_, ns = std::move(ns), broker = std::move(broker),
                               type = std::move(type), source = std::move(source)] {
    if (impl->stopped_) return;
    // Named by what it describes, so the same pair finds the same EventType again.
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (char c : type + "\n" + source) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    std::string name = fmt::format("et-{}-{:016x}", broker.substr(0, 40), h);
    json::object spec{{"type", type},
                      {"reference", json::object{{"apiVersion", "eventing.knative.dev/v1"},
                                                 {"kind", "Broker"},
                                                 {"name", broker}}},
                      {"description", "registered by the brokers' ingress on first sight"}};
    if (!source.empty()) spec["source"] = source;
    json::object o{{"apiVersion", "eventing.knative.dev/v1beta2"},
                   {"kind", "EventType"},
                   {"metadata", json::object{{"name", name}, {"namespace", ns}}},
                   {"spec", std::move(spec)}};
    impl->writer_.write(std::move(o), ObjectWriter::Mode::kCreateOnly, [name, ns](Result<void> r) {
      if (!r) spdlog::warn("registering event type {}/{} failed: {}", ns, name, r.error().message);
    });
  });
}

void SourceController::stop() {
  if (impl_->stopped_) return;
  impl_->stopped_ = true;
  for (auto& [k, a] : impl_->armed_) a.timer->cancel();
  if (impl_->watch_id_) impl_->watches_.unwatch(impl_->watch_id_);
}

}  // namespace elafros
