#include "serving_controller.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {

class ServingController::Impl : public std::enable_shared_from_this<ServingController::Impl> {
 public:
  Impl(asio::io_context& control, WatchSource& watches, ObjectCommitter& committer,
       Reconciler& reconciler, RemoveLogs remove_logs)
      : control_(control),
        watches_(watches),
        committer_(committer),
        reconciler_(reconciler),
        remove_logs_(std::move(remove_logs)) {}

  static std::string key(const std::string& ns, const std::string& name) { return ns + "/" + name; }

  void on_event(const ObjectEvent& e) {
    if (!stopped_ && e.group.empty() && e.kind == "PersistentVolumeClaim" &&
        e.type == WatchEventType::kDeleted)
      reconciler_.claim_deleted();
    if (stopped_ || e.group != kServingGroup) return;
    if (e.kind == "Service") on_service(e);
    if (e.kind == "Revision") on_revision(e);
    if (e.kind == "DomainMapping") on_domain_mapping(e);
  }

  void on_domain_mapping(const ObjectEvent& e) {
    std::string ns = meta_string(e.object, "namespace");
    std::string name = meta_string(e.object, "name");
    if (e.type == WatchEventType::kDeleted) {
      reconciler_.domain_mapping_deleted(ns, name);
      return;
    }
    json::value ref = json_path_value(e.object, ".spec.ref.name");
    if (ref.is_string())
      reconciler_.domain_mapping_put(
          ns, name, std::string(ref.get_string()),
          parse_rfc3339(meta_string(e.object, "creationTimestamp")).value_or(0));
  }

  void on_service(const ObjectEvent& e) {
    std::string ns = meta_string(e.object, "namespace");
    std::string name = meta_string(e.object, "name");
    if (e.type == WatchEventType::kDeleted) {
      pending_.erase(key(ns, name));
      generations_.erase(key(ns, name));
      written_.erase("Service/" + key(ns, name));
      // Deleted without its finalizer (it was removed by hand): stop what it ran.
      if (reconciler_.known_generation(ns, name)) begin_delete(ns, name, e.object, false);
      return;
    }
    if (!meta_string(e.object, "deletionTimestamp").empty()) {
      begin_delete(ns, name, e.object, true);
      return;
    }
    // A status write (ours) or a metadata change: nothing to deploy.
    const std::int64_t generation = meta_int(e.object, "generation");
    auto [seen, fresh] = generations_.try_emplace(key(ns, name), generation);
    if (!fresh && seen->second == generation && e.type == WatchEventType::kModified) return;
    seen->second = generation;
    auto s = service_from_object(e.object);
    if (!s) {
      spdlog::error("service {}/{} cannot be read: {}", ns, name, s.error().message);
      return;
    }
    auto known = reconciler_.known_generation(ns, name);
    // A template change commits with its new revision, right after: wait for it.
    if (!known || s->config_generation > *known) {
      pending_[key(ns, name)] = std::move(s.value());
      return;
    }
    reconciler_.service_updated(*s, nullptr);
    status_changed(ns, name);  // its generation, at least, moved
  }

  void on_revision(const ObjectEvent& e) {
    auto r = revision_from_object(e.object);
    if (!r) return;
    const std::string& ns = r->meta.namespace_;
    if (e.type == WatchEventType::kDeleted) {
      written_.erase("Revision/" + key(ns, r->meta.name));
      reconciler_.revision_deleted(ns, r->meta.name);
      if (!deleting_.count(key(ns, r->service))) remove_logs_(ns, r->service, r->meta.name, {});
      return;
    }
    if (e.type != WatchEventType::kAdded) return;
    auto it = pending_.find(key(ns, r->service));
    if (it == pending_.end()) return;
    Service s = std::move(it->second);
    pending_.erase(it);
    if (reconciler_.known_generation(ns, s.meta.name))
      reconciler_.service_updated(s, &r.value());
    else
      reconciler_.service_created(s, r.value());
    status_changed(ns, s.meta.name);
  }

  // Stops the service's instances, drops its logs, then (with_finalizer) removes the finalizer,
  // which completes the deletion in the store (its revisions go with it).
  void begin_delete(const std::string& ns, const std::string& name, json::object object,
                    bool with_finalizer) {
    std::string k = key(ns, name);
    if (!deleting_.insert(k).second) return;
    pending_.erase(k);
    auto self = shared_from_this();
    auto ex = control_.get_executor();
    reconciler_.service_deleted(ns, name, [self, ex, ns, name, object, with_finalizer]() mutable {
      self->remove_logs_(ns, name, "", [self, ex, ns, name, object, with_finalizer]() mutable {
        asio::post(ex, [self, ns, name, object = std::move(object), with_finalizer]() mutable {
          if (with_finalizer)
            self->release(ns, name, std::move(object));
          else
            self->deleting_.erase(key(ns, name));
        });
      });
    });
  }

  void release(const std::string& ns, const std::string& name, json::object object) {
    json::object& md = metadata_of(object);
    json::array kept;
    if (const json::value* f = md.if_contains("finalizers"); f && f->is_array())
      for (const auto& v : f->get_array())
        if (v != json::value(kServiceFinalizer)) kept.push_back(v);
    md["finalizers"] = std::move(kept);
    auto self = shared_from_this();
    auto ex = control_.get_executor();
    // No version check: only the finalizer changes, and the object is being deleted.
    committer_.commit({{ObjectWrite::Op::kUpdate, kServingGroup, "Service", std::move(object), 0}},
                      [self, ex, ns, name](Result<std::vector<ObjectEvent>> r) {
                        asio::post(ex, [self, ns, name, r = std::move(r)] {
                          self->deleting_.erase(key(ns, name));
                          if (!r && r.error().code != ErrorCode::kNotFound)
                            spdlog::error("finishing the deletion of service {}/{} failed: {}", ns,
                                          name, r.error().message);
                          else
                            spdlog::info("deleted service {}/{}", ns, name);
                        });
                      });
  }

  void status_changed(const std::string& ns, const std::string& service) {
    if (stopped_) return;
    dirty_.insert({ns, service});
    if (sync_posted_) return;
    sync_posted_ = true;
    asio::post(control_, [self = shared_from_this()] { self->sync_status(); });
  }

  // Writes each status of the touched services that reads differently from the one last
  // written.
  void sync_status() {
    sync_posted_ = false;
    if (stopped_) return;
    std::set<std::pair<std::string, std::string>> dirty;
    dirty.swap(dirty_);
    for (const auto& [ns, name] : dirty) {
      if (deleting_.count(key(ns, name)) || pending_.count(key(ns, name))) continue;
      auto report = reconciler_.report(ns, name);
      if (!report) continue;
      json::object shown = service_to_json(report->service, &report->status);
      write_status("Service", ns, name, std::move(shown["status"].as_object()));
      for (const auto& [rev_name, st] : report->revisions) {
        // What a watcher of revisions follows; not the request counters, which move with
        // every request.
        json::object status{{"conditions", conditions_to_json(st.conditions)},
                            {"actualReplicas", st.actual_replicas},
                            {"desiredReplicas", st.desired_replicas}};
        write_status("Revision", ns, rev_name, std::move(status));
      }
    }
  }

  void write_status(const char* kind, const std::string& ns, const std::string& name,
                    json::object status) {
    std::string k = std::string(kind) + "/" + key(ns, name);
    std::string text = json::serialize(status);
    auto [it, fresh] = written_.try_emplace(k, text);
    if (!fresh && it->second == text) return;
    it->second = text;
    json::object object{{"metadata", json::object{{"name", name}, {"namespace", ns}}},
                        {"status", std::move(status)}};
    auto self = shared_from_this();
    auto ex = control_.get_executor();
    committer_.commit({{ObjectWrite::Op::kUpdateStatus, kServingGroup, kind, std::move(object), 0}},
                      [self, ex, k, text](Result<std::vector<ObjectEvent>> r) {
                        if (r) return;
                        asio::post(ex, [self, k, text, error = r.error()] {
                          // Written again at the next change; a deleted object is simply gone.
                          if (auto it = self->written_.find(k);
                              it != self->written_.end() && it->second == text)
                            self->written_.erase(it);
                          if (error.code != ErrorCode::kNotFound)
                            spdlog::warn("writing the status of {} failed: {}", k, error.message);
                        });
                      });
  }

  asio::io_context& control_;
  WatchSource& watches_;
  ObjectCommitter& committer_;
  Reconciler& reconciler_;
  RemoveLogs remove_logs_;
  std::map<std::string, Service> pending_;  // written, waiting for its new revision
  std::set<std::string> deleting_;
  std::map<std::string, std::int64_t> generations_;  // of the Service events seen
  std::map<std::string, std::string> written_;       // "Kind/ns/name" → the status last written
  std::set<std::pair<std::string, std::string>> dirty_;  // (namespace, service) to write
  bool sync_posted_ = false;
  std::uint64_t watch_id_ = 0;
  bool stopped_ = false;
};

ServingController::ServingController(asio::io_context& control, WatchSource& watches,
                                     ObjectCommitter& committer, Reconciler& reconciler,
                                     RemoveLogs remove_logs)
    : impl_(std::make_shared<Impl>(control, watches, committer, reconciler,
                                   std::move(remove_logs))) {}

ServingController::~ServingController() {
  stop();
}

Result<void> ServingController::start(std::int64_t from) {
  std::weak_ptr<Impl> weak = impl_;
  auto ex = impl_->control_.get_executor();
  auto id = impl_->watches_.watch(from, [weak, ex](const ObjectEvent& e) {
    asio::post(ex, [weak, e] {
      if (auto self = weak.lock()) self->on_event(e);
    });
  });
  if (!id) return id.error();
  impl_->watch_id_ = *id;
  for (const auto& [ns, name] : impl_->reconciler_.deleting()) {
    json::object object{
        {"apiVersion", "serving.knative.dev/v1"},
        {"kind", "Service"},
        {"metadata",
         json::object{{"name", name}, {"namespace", ns}, {"finalizers", json::array{}}}}};
    spdlog::info("finishing the deletion of service {}/{}", ns, name);
    impl_->begin_delete(ns, name, std::move(object), true);
  }
  return {};
}

void ServingController::status_changed(const std::string& ns, const std::string& service) {
  impl_->status_changed(ns, service);
}

void ServingController::stop() {
  if (impl_->stopped_) return;
  impl_->stopped_ = true;
  if (impl_->watch_id_) impl_->watches_.unwatch(impl_->watch_id_);
}

}  // namespace elafros
