#include "policy/namespace_controller.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>

#include "controller_start.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {
namespace {

using asio::awaitable;

bool has_owner(const json::object& o) {
  const json::value* md = o.if_contains("metadata");
  const json::value* refs =
      md && md->is_object() ? md->get_object().if_contains("ownerReferences") : nullptr;
  return refs && refs->is_array() && !refs->get_array().empty();
}

// Every namespaced kind, the Namespace's content.
std::vector<const KindInfo*> namespaced_kinds() {
  std::vector<const KindInfo*> out;
  for (const auto& k : builtin_kinds().all())
    if (k.namespaced) out.push_back(&k);
  return out;
}

}  // namespace

class NamespaceController::Impl : public std::enable_shared_from_this<NamespaceController::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
       WatchSource& watches, ObjectCommitter& committer, ObjectWriter& writer)
      : control_(control),
        store_thread_(store_thread),
        store_(store),
        watches_(watches),
        committer_(committer),
        writer_(writer) {}

  awaitable<Result<void>> load(std::int64_t from) {
    ObjectQuery q;
    q.kind = "Namespace";
    auto listed =
        co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
    if (!listed) co_return listed.error();
    std::set<std::string> wanted{kDefaultNamespace};
    for (const auto& o : listed->items) {
      std::string name = meta_string(o, "name");
      known_.insert(name);
      if (!meta_string(o, "deletionTimestamp").empty())
        terminating_.insert(name);
      else if (json_path_value(o, ".status.phase") != json::value("Active"))
        write_phase(name, "Active");
    }
    // Namespaces in use from before they were objects: they become objects.
    for (const KindInfo* k : namespaced_kinds()) {
      ObjectQuery kq;
      kq.group = k->group;
      kq.kind = k->kind;
      auto objs =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, kq);
      if (!objs) co_return objs.error();
      for (const auto& o : objs->items) wanted.insert(meta_string(o, "namespace"));
    }
    // Created before the API serves: a client's first write finds `default`.
    auto pending = std::make_shared<int>(0);
    auto wake =
        std::make_shared<asio::steady_timer>(control_, asio::steady_timer::time_point::max());
    for (const auto& ns : wanted)
      if (!known_.count(ns)) {
        ++*pending;
        json::object o{
            {"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", json::object{{"name", ns}}}};
        writer_.write(std::move(o), ObjectWriter::Mode::kCreateOnly,
                      [ns, pending, wake](Result<void> r) {
                        if (!r)
                          spdlog::error("cannot create namespace {}: {}", ns, r.error().message);
                        --*pending;
                        wake->cancel();
                      });
      }
    while (*pending > 0) co_await wake->async_wait(asio::as_tuple(asio::use_awaitable));
    for (const auto& ns : wanted)
      if (!known_.count(ns)) {
        known_.insert(ns);
        write_phase(ns, "Active");
      }
    std::weak_ptr<Impl> weak = shared_from_this();
    auto ex = control_.get_executor();
    auto id = watches_.watch(from, [weak, ex](const ObjectEvent& e) {
      bool ns = e.group.empty() && e.kind == "Namespace";
      if (!ns && e.type != WatchEventType::kDeleted) return;
      asio::post(ex, [weak, e] {
        if (auto self = weak.lock()) self->on_event(e);
      });
    });
    if (!id) co_return id.error();
    watch_id_ = *id;
    for (const auto& ns : terminating_) sweep(ns);
    co_return Result<void>{};
  }

  void on_event(const ObjectEvent& e) {
    if (stopped_) return;
    if (e.group.empty() && e.kind == "Namespace") {
      std::string name = meta_string(e.object, "name");
      if (e.type == WatchEventType::kDeleted) {
        known_.erase(name);
        terminating_.erase(name);
        spdlog::info("namespace {} and everything in it are deleted", name);
        return;
      }
      known_.insert(name);
      if (!meta_string(e.object, "deletionTimestamp").empty()) {
        if (terminating_.insert(name).second) {
          spdlog::info("deleting namespace {}: deleting everything in it first", name);
          write_phase(name, "Terminating");
          sweep(name);
        }
      } else if (json_path_value(e.object, ".status.phase") != json::value("Active")) {
        write_phase(name, "Active");
      }
      return;
    }
    // Something in a namespace that is going away was deleted: look again.
    std::string ns = meta_string(e.object, "namespace");
    if (terminating_.count(ns)) sweep(ns);
  }

  void write_phase(const std::string& name, const char* phase) {
    json::object patch{{"metadata", json::object{{"name", name}}},
                       {"status", json::object{{"phase", phase}}}};
    committer_.commit({{ObjectWrite::Op::kUpdateStatus, "", "Namespace", std::move(patch), 0}},
                      [name](Result<std::vector<ObjectEvent>> r) {
                        if (!r && r.error().code != ErrorCode::kNotFound)
                          spdlog::warn("writing the phase of namespace {} failed: {}", name,
                                       r.error().message);
                      });
  }

  // One pass at a time per namespace; a pass asked for meanwhile runs after it.
  void sweep(const std::string& ns) {
    if (sweeping_.count(ns)) {
      again_.insert(ns);
      return;
    }
    sweeping_.insert(ns);
    asio::co_spawn(control_, pass(shared_from_this(), ns), asio::detached);
  }

  awaitable<void> pass(std::shared_ptr<Impl> self, std::string ns) {
    (void)self;
    std::size_t remaining = 0;
    for (const KindInfo* k : namespaced_kinds()) {
      ObjectQuery q;
      q.group = k->group;
      q.kind = k->kind;
      q.namespace_ = ns;
      auto objs =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
      if (!objs) {
        spdlog::warn("namespace {}: listing its {} failed: {}", ns, k->plural,
                     objs.error().message);
        ++remaining;
        continue;
      }
      remaining += objs->items.size();
      for (const auto& o : objs->items) {
        // Owned objects go with their owner; read-only kinds (revisions) are owned.
        if (has_owner(o) || !k->client_writable || !meta_string(o, "deletionTimestamp").empty())
          continue;
        std::string name = meta_string(o, "name");
        std::string what = fmt::format("{}/{}/{}", k->kind, ns, name);
        writer_.remove(k->group, k->kind, ns, name, [what](Result<void> r) {
          if (!r)
            spdlog::warn("deleting {} with its namespace failed: {}", what, r.error().message);
        });
      }
    }
    sweeping_.erase(ns);
    if (stopped_ || !terminating_.count(ns)) co_return;
    if (remaining == 0) {
      release(ns);
      co_return;
    }
    if (again_.erase(ns)) {
      sweep(ns);
      co_return;
    }
    // A resync, should a deletion's event be missed: look again in a while.
    auto timer = std::make_shared<asio::steady_timer>(control_, std::chrono::seconds(2));
    std::weak_ptr<Impl> weak = weak_from_this();
    timer->async_wait([weak, ns, timer](boost::system::error_code ec) {
      auto s = weak.lock();
      if (!ec && s && !s->stopped_ && s->terminating_.count(ns)) s->sweep(ns);
    });
  }

  // Nothing is left: the namespace's finalizer goes, and with it the namespace.
  void release(const std::string& ns) {
    ObjectKey key{"", "Namespace", "", ns};
    auto self = shared_from_this();
    asio::co_spawn(
        control_,
        [self, key]() -> awaitable<void> {
          auto o = co_await offload(self->store_thread_.get_executor(), &ObjectStore::get_object,
                                    &self->store_, key);
          if (!o) co_return;
          json::object obj = std::move(*o);
          json::object& md = metadata_of(obj);
          json::array kept;
          if (const json::value* f = md.if_contains("finalizers"); f && f->is_array())
            for (const auto& v : f->get_array())
              if (v != json::value(kNamespaceFinalizer)) kept.push_back(v);
          md["finalizers"] = std::move(kept);
          std::string name = key.name;
          self->committer_.commit({{ObjectWrite::Op::kUpdate, "", "Namespace", std::move(obj), 0}},
                                  [name](Result<std::vector<ObjectEvent>> r) {
                                    if (!r && r.error().code != ErrorCode::kNotFound)
                                      spdlog::error(
                                          "finishing the deletion of namespace {} failed: {}", name,
                                          r.error().message);
                                  });
        },
        asio::detached);
  }

  void stop() {
    stopped_ = true;
    if (watch_id_) watches_.unwatch(watch_id_);
    watch_id_ = 0;
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  ObjectStore& store_;
  WatchSource& watches_;
  ObjectCommitter& committer_;
  ObjectWriter& writer_;
  std::set<std::string> known_, terminating_, sweeping_, again_;
  std::uint64_t watch_id_ = 0;
  bool stopped_ = false;
};

NamespaceController::NamespaceController(asio::io_context& control, asio::thread_pool& store_thread,
                                         ObjectStore& store, WatchSource& watches,
                                         ObjectCommitter& committer, ObjectWriter& writer)
    : impl_(std::make_shared<Impl>(control, store_thread, store, watches, committer, writer)) {}

NamespaceController::~NamespaceController() {
  impl_->stop();
}

void NamespaceController::start(std::int64_t from, std::function<void(Result<void>)> done) {
  spawn_load(impl_->control_, impl_, from, std::move(done));
}

void NamespaceController::stop() {
  impl_->stop();
}

}  // namespace elafros
