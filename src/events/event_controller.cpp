#include "events/event_controller.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>

#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "events/controller_support.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {
namespace {
std::string json_string(const json::value& v) {
  return v.is_string() ? std::string(v.get_string()) : "";
}
}  // namespace

class EventController::Impl : public std::enable_shared_from_this<EventController::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
       WatchSource& watches, ObjectCommitter& committer, BrokerSnapshot& snapshot,
       EventControllerOptions options)
      : control_(control),
        store_thread_(store_thread),
        store_(store),
        watches_(watches),
        committer_(committer),
        snapshot_(snapshot),
        options_(std::move(options)),
        status_(control, committer) {
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

  static std::string key(const json::object& o) {
    return meta_string(o, "namespace") + "/" + meta_string(o, "name");
  }

  asio::awaitable<Result<void>> load(std::int64_t from) {
    for (const auto& [group, kind] :
         {std::pair{kEventingGroup, "Broker"}, std::pair{kEventingGroup, "Trigger"},
          std::pair{kServingGroup, "Service"}, std::pair{kEventingGroup, "EventType"},
          std::pair{kEventingGroup, "EventPolicy"}}) {
      ObjectQuery q;
      q.group = group;
      q.kind = kind;
      auto list =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
      if (!list) co_return list.error();
      for (auto& o : list->items) upsert(kind, std::move(o));
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    auto ex = control_.get_executor();
    auto id = watches_.watch(from, [weak, ex](const ObjectEvent& e) {
      if (e.kind != "Broker" && e.kind != "Trigger" && e.kind != "Service" &&
          e.kind != "EventType" && e.kind != "EventPolicy")
        return;
      asio::post(ex, [weak, e] {
        if (auto self = weak.lock()) self->on_event(e);
      });
    });
    if (!id) co_return id.error();
    watch_id_ = *id;
    rebuild();
    co_return Result<void>{};
  }

  std::map<std::string, json::object>& objects_of(const std::string& kind) {
    return kind == "Broker"        ? brokers_
           : kind == "Trigger"     ? triggers_
           : kind == "EventType"   ? event_types_
           : kind == "EventPolicy" ? policies_
                                   : services_;
  }

  void upsert(const std::string& kind, json::object o) {
    auto& m = objects_of(kind);
    m[key(o)] = std::move(o);
  }

  void on_event(const ObjectEvent& e) {
    if (stopped_) return;
    auto& m = objects_of(e.kind);
    std::string k = key(e.object);
    if (e.type == WatchEventType::kDeleted) {
      m.erase(k);
      status_.forget(e.kind, meta_string(e.object, "namespace"), meta_string(e.object, "name"));
    } else {
      // Our own status writes come back as MODIFIED with an unchanged spec: nothing to do.
      auto it = m.find(k);
      // A Broker's labels count too: EventPolicies select by them.
      if (it != m.end() && e.kind != "Service" &&
          meta_int(it->second, "generation") == meta_int(e.object, "generation") &&
          (e.kind != "Broker" || json_path_value(it->second, ".metadata.labels") ==
                                     json_path_value(e.object, ".metadata.labels")) &&
          e.type == WatchEventType::kModified) {
        it->second = e.object;
        return;
      }
      if (e.kind == "Service" && it != m.end()) return;  // only whether it exists matters
      m[k] = e.object;
    }
    schedule();
  }

  void schedule() {
    if (rebuild_posted_) return;
    rebuild_posted_ = true;
    asio::post(control_, [self = shared_from_this()] {
      self->rebuild_posted_ = false;
      if (!self->stopped_) self->rebuild();
    });
  }

  std::pair<std::string, std::string> resolve(const Destination& d, const std::string& ns) const {
    return resolve_destination(d, ns, where_);
  }

  Condition condition(const std::string& object, const char* type, bool ok, std::string reason,
                      std::string message) {
    return status_.condition(object, type, ok, std::move(reason), std::move(message));
  }

  void rebuild() {
    auto table = std::make_shared<BrokerTable>();
    for (const auto& [k, o] : brokers_) {
      auto b = broker_from_object(o);
      if (!b) {
        spdlog::warn("broker {} cannot be read: {}", k, b.error().message);
        continue;
      }
      BrokerRoute route{std::move(*b), {}};
      const Broker& broker = route.broker;
      auto [dls, dls_problem] = resolve(broker.delivery.dead_letter_sink, broker.namespace_);
      std::string url =
          fmt::format("{}/{}/{}", options_.ingress_url, broker.namespace_, broker.name);
      std::vector<Condition> parts{
          condition("Broker/" + k, "Addressable", true, "", ""),
          condition("Broker/" + k, "DeadLetterSinkResolved", dls_problem.empty(),
                    "DeadLetterSinkResolveFailed", dls_problem)};
      json::object status{{"address", json::object{{"url", url}}}};
      if (!dls.empty()) status["deadLetterSinkUri"] = dls;
      write_status("Broker", broker.namespace_, broker.name, parts, std::move(status));
      table->brokers.emplace(k, std::move(route));
    }
    // Each EventPolicy, on the brokers of its namespace it selects (spec.to).
    for (const auto& [k, o] : policies_) {
      auto p = event_policy_from_object(o);
      const std::string ns = meta_string(o, "namespace");
      if (!p) {
        spdlog::warn("eventpolicy {} cannot be read: {}", k, p.error().message);
        continue;
      }
      auto policy = std::make_shared<const EventPolicy>(std::move(*p));
      json::array from;
      for (const auto& subject : policy->from) from.emplace_back(subject);
      std::size_t selected = 0;
      for (auto it = table->brokers.lower_bound(ns + "/");
           it != table->brokers.end() && it->second.broker.namespace_ == ns; ++it)
        if (policy->applies_to(it->second.broker.name, it->second.broker.labels)) {
          it->second.policies.push_back(policy);
          ++selected;
        }
      std::vector<Condition> parts{condition("EventPolicy/" + k, "SubjectsResolved", true, "", "")};
      status_.write(kEventingGroup, "EventPolicy", ns, meta_string(o, "name"),
                    meta_int(o, "generation"), std::move(parts),
                    json::object{{"from", std::move(from)},
                                 {"brokers", static_cast<std::int64_t>(selected)}});
    }
    for (const auto& [k, o] : triggers_) {
      auto t = trigger_from_object(o);
      if (!t) {
        spdlog::warn("trigger {} cannot be read: {}", k, t.error().message);
        continue;
      }
      auto it = table->brokers.find(t->broker_namespace + "/" + t->broker);
      bool has_broker = it != table->brokers.end();
      auto [sub, sub_problem] = resolve(t->subscriber, t->namespace_);
      TriggerRoute route;
      route.delivery = t->delivery.any() || !has_broker ? t->delivery : it->second.broker.delivery;
      auto [dls, dls_problem] = resolve(route.delivery.dead_letter_sink, t->namespace_);
      route.subscriber_url = sub;
      route.dead_letter_url = dls;
      std::vector<Condition> parts{
          condition("Trigger/" + k, "BrokerReady", has_broker, "BrokerDoesNotExist",
                    fmt::format("broker \"{}\" does not exist in namespace \"{}\"; create it "
                                "('elafros broker create {} -n {}')",
                                t->broker, t->broker_namespace, t->broker, t->broker_namespace)),
          condition("Trigger/" + k, "SubscriberResolved", sub_problem.empty(),
                    "SubscriberResolveFailed", sub_problem),
          condition("Trigger/" + k, "DeadLetterSinkResolved", dls_problem.empty(),
                    "DeadLetterSinkResolveFailed", dls_problem)};
      json::object status{{"subscriberUri", sub}};
      if (!dls.empty()) status["deadLetterSinkUri"] = dls;
      write_status("Trigger", t->namespace_, t->name, parts, std::move(status));
      route.trigger = std::move(*t);
      if (has_broker) it->second.triggers.push_back(std::move(route));
    }
    // An EventType is Ready while what it refers to (a Broker) exists.
    for (const auto& [k, o] : event_types_) {
      const std::string kind = json_string(json_path_value(o, ".spec.reference.kind"));
      const std::string name = json_string(json_path_value(o, ".spec.reference.name"));
      const std::string ns = meta_string(o, "namespace");
      bool exists = kind.empty() || (kind == "Broker" && brokers_.count(ns + "/" + name)) ||
                    (kind == "Service" && services_.count(ns + "/" + name));
      std::vector<Condition> parts{
          condition("EventType/" + k, "ReferenceExists", exists, "ResourceDoesNotExist",
                    fmt::format("{} \"{}\" does not exist in namespace \"{}\"", kind, name, ns))};
      status_.write(kEventingGroup, "EventType", ns, meta_string(o, "name"),
                    meta_int(o, "generation"), std::move(parts), json::object{});
    }
    snapshot_.publish(std::move(table));
    if (options_.published) options_.published();
  }

  void write_status(const char* kind, const std::string& ns, const std::string& name,
                    std::vector<Condition> parts, json::object status) {
    auto& objects = std::string_view(kind) == "Broker" ? brokers_ : triggers_;
    auto it = objects.find(ns + "/" + name);
    status_.write(kEventingGroup, kind, ns, name,
                  it == objects.end() ? 0 : meta_int(it->second, "generation"), std::move(parts),
                  std::move(status));
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  ObjectStore& store_;
  WatchSource& watches_;
  ObjectCommitter& committer_;
  BrokerSnapshot& snapshot_;
  EventControllerOptions options_;
  std::map<std::string, json::object> brokers_, triggers_, services_, event_types_,
      policies_;  // "ns/name"
  StatusWriter status_;
  Addressables where_;
  bool rebuild_posted_ = false;
  std::uint64_t watch_id_ = 0;
  bool stopped_ = false;
};

EventController::EventController(asio::io_context& control, asio::thread_pool& store_thread,
                                 ObjectStore& store, WatchSource& watches,
                                 ObjectCommitter& committer, BrokerSnapshot& snapshot,
                                 EventControllerOptions options)
    : impl_(std::make_shared<Impl>(control, store_thread, store, watches, committer, snapshot,
                                   std::move(options))) {}

EventController::~EventController() {
  stop();
}

void EventController::start(std::int64_t from, std::function<void(Result<void>)> done) {
  asio::co_spawn(impl_->control_, impl_->load(from),
                 [done = std::move(done)](std::exception_ptr e, Result<void> r) {
                   if (e) return done(Error::internal("loading brokers and triggers failed"));
                   done(std::move(r));
                 });
}

void EventController::stop() {
  if (impl_->stopped_) return;
  impl_->stopped_ = true;
  if (impl_->watch_id_) impl_->watches_.unwatch(impl_->watch_id_);
}

}  // namespace elafros
