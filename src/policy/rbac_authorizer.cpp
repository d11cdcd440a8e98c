#include "policy/rbac_authorizer.hpp"

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

#include "controller_start.hpp"
#include "elafros/object_meta.hpp"
#include "offload.hpp"

namespace asio = boost::asio;
namespace json = boost::json;

namespace elafros {
namespace {

using asio::awaitable;

constexpr const char* kAutoupdate = "rbac.authorization.kubernetes.io/autoupdate";

struct Binding {
  std::string kind, ns, name;  // the binding itself
  RoleRef role;
  std::vector<Subject> subjects;
};

bool is_rbac_kind(const std::string& kind) {
  return kind == "Role" || kind == "ClusterRole" || kind == "RoleBinding" ||
         kind == "ClusterRoleBinding";
}

}  // namespace

class RbacAuthorizer::Impl : public std::enable_shared_from_this<RbacAuthorizer::Impl> {
 public:
  Impl(asio::io_context& control, asio::thread_pool& store_thread, ObjectStore& store,
       WatchSource& watches, ObjectWriter& writer)
      : control_(control),
        store_thread_(store_thread),
        store_(store),
        watches_(watches),
        writer_(writer) {}

  awaitable<Result<void>> load(std::int64_t from) {
    std::map<std::string, json::object> stored;
    for (const char* kind : {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}) {
      ObjectQuery q;
      q.group = kRbacGroup;
      q.kind = kind;
      auto listed =
          co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
      if (!listed) co_return listed.error();
      for (auto& o : listed->items) {
        apply(kind, o, false);
        stored[fmt::format("{}/{}", kind, meta_string(o, "name"))] = o;
      }
    }
    // The built-in roles, written (and brought up to date) before the API serves.
    auto pending = std::make_shared<int>(0);
    auto wake =
        std::make_shared<asio::steady_timer>(control_, asio::steady_timer::time_point::max());
    for (auto& o : builtin_rbac_objects()) {
      std::string kind(o.at("kind").get_string());
      std::string name = meta_string(o, "name");
      auto it = stored.find(kind + "/" + name);
      if (it != stored.end()) {
        const json::value* md = it->second.if_contains("metadata");
        const json::value* ann =
            md && md->is_object() ? md->get_object().if_contains("annotations") : nullptr;
        const json::value* au =
            ann && ann->is_object() ? ann->get_object().if_contains(kAutoupdate) : nullptr;
        if (au && *au == json::value("false")) continue;  // the operator's own version stays
      }
      apply(kind, o, false);  // in force now, before its commit comes back through the feed
      ++*pending;
      writer_.write(
          std::move(o), ObjectWriter::Mode::kApply, [kind, name, pending, wake](Result<void> r) {
            if (!r)
              spdlog::error("cannot write the built-in {} {}: {}", kind, name, r.error().message);
            --*pending;
            wake->cancel();
          });
    }
    while (*pending > 0) co_await wake->async_wait(asio::as_tuple(asio::use_awaitable));
    std::weak_ptr<Impl> weak = shared_from_this();
    auto ex = control_.get_executor();
    auto id = watches_.watch(from, [weak, ex](const ObjectEvent& e) {
      if (e.group != kRbacGroup || !is_rbac_kind(e.kind)) return;
      asio::post(ex, [weak, e] {
        if (auto self = weak.lock())
          self->apply(e.kind, e.object, e.type == WatchEventType::kDeleted);
      });
    });
    if (!id) co_return id.error();
    watch_id_ = *id;
    co_return Result<void>{};
  }

  void apply(const std::string& kind, const json::object& o, bool deleted) {
    std::string key = fmt::format("{}/{}", meta_string(o, "namespace"), meta_string(o, "name"));
    if (kind == "Role" || kind == "ClusterRole") {
      auto& roles = kind == "Role" ? roles_ : cluster_roles_;
      if (deleted)
        roles.erase(key);
      else
        roles[key] = rules_of(o);
      return;
    }
    auto& bindings = kind == "RoleBinding" ? bindings_ : cluster_bindings_;
    if (deleted) {
      bindings.erase(key);
      return;
    }
    bindings[key] = Binding{kind, meta_string(o, "namespace"), meta_string(o, "name"),
                            role_ref_of(o), subjects_of(o)};
  }

  const std::vector<PolicyRule>* role_rules(const RoleRef& ref, const std::string& ns) const {
    const auto& roles = ref.kind == "Role" ? roles_ : cluster_roles_;
    auto it = roles.find(fmt::format("{}/{}", ref.kind == "Role" ? ns : "", ref.name));
    return it == roles.end() ? nullptr : &it->second;
  }

  static bool bound(const Binding& b, const Identity& who) {
    for (const auto& s : b.subjects)
      if (subject_matches(s, who)) return true;
    return false;
  }

  // Calls `visit(binding, rules)` for each binding of `who` in force in `ns` (cluster bindings
  // always; role bindings of that namespace); stops when it returns true.
  template <class Visit>
  bool each(const Identity& who, const std::string& ns, Visit visit) const {
    for (const auto& [key, b] : cluster_bindings_)
      if (bound(b, who))
        if (const auto* rules = role_rules(b.role, ""); rules && visit(b, *rules)) return true;
    if (ns.empty()) return false;
    std::string prefix = ns + "/";
    for (auto it = bindings_.lower_bound(prefix);
         it != bindings_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      if (bound(it->second, who))
        if (const auto* rules = role_rules(it->second.role, ns); rules && visit(it->second, *rules))
          return true;
    return false;
  }

  Decision authorize(const Identity& who, const RequestAttributes& request) const {
    if (who.in_group(kMastersGroup))
      return {true, fmt::format("allowed: {} is in group {}", who.user, kMastersGroup)};
    Decision d;
    each(who, request.ns, [&](const Binding& b, const std::vector<PolicyRule>& rules) {
      for (const auto& r : rules)
        if (rule_allows(r, request)) {
          d = {true, fmt::format("RBAC: allowed by {} \"{}\" of {} \"{}\" to {}", b.kind,
                                 b.ns.empty() ? b.name : b.ns + "/" + b.name, b.role.kind,
                                 b.role.name, who.user)};
          return true;
        }
      return false;
    });
    // A denial carries no reason, as Kubernetes' (kubectl auth can-i then prints a bare "no").
    return d;
  }

  std::vector<PolicyRule> rules_for(const Identity& who, const std::string& ns) const {
    std::vector<PolicyRule> out;
    if (who.in_group(kMastersGroup)) {
      PolicyRule all{{"*"}, {"*"}, {"*"}, {}, {}};
      PolicyRule urls{{"*"}, {}, {}, {}, {"*"}};
      return {all, urls};
    }
    each(who, ns, [&](const Binding&, const std::vector<PolicyRule>& rules) {
      out.insert(out.end(), rules.begin(), rules.end());
      return false;
    });
    return out;
  }

  void stop() {
    if (watch_id_) watches_.unwatch(watch_id_);
    watch_id_ = 0;
  }

  asio::io_context& control_;
  asio::thread_pool& store_thread_;
  ObjectStore& store_;
  WatchSource& watches_;
  ObjectWriter& writer_;
  // "namespace/name" ("/name" for cluster-scoped) → rules or binding.
  std::map<std::string, std::vector<PolicyRule>> roles_, cluster_roles_;
  std::map<std::string, Binding> bindings_, cluster_bindings_;
  std::uint64_t watch_id_ = 0;
};

RbacAuthorizer::RbacAuthorizer(asio::io_context& control, asio::thread_pool& store_thread,
                               ObjectStore& store, WatchSource& watches, ObjectWriter& writer)
    : impl_(std::make_shared<Impl>(control, store_thread, store, watches, writer)) {}

RbacAuthorizer::~RbacAuthorizer() {
  impl_->stop();
}

void RbacAuthorizer::start(std::int64_t from, std::function<void(Result<void>)> done) {
  spawn_load(impl_->control_, impl_, from, std::move(done));
}

void RbacAuthorizer::stop() {
  impl_->stop();
}

Decision RbacAuthorizer::authorize(const Identity& who, const RequestAttributes& request) const {
  return impl_->authorize(who, request);
}

std::vector<PolicyRule> RbacAuthorizer::rules_for(const Identity& who,
                                                  const std::string& ns) const {
  return impl_->rules_for(who, ns);
}

}  // namespace elafros
