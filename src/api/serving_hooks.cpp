#include "api/serving_hooks.hpp"

#include <fmt/format.h>

#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include "api/image_puller.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"
#include "elafros/traffic.hpp"
#include "offload.hpp"
#include "reconciler.hpp"

namespace json = boost::json;

namespace elafros::api {

ServingHooks::ServingHooks(boost::asio::thread_pool& store_thread, ObjectStore& store,
                           ImagePuller& images, Reconciler& reconciler)
    : store_thread_(store_thread), store_(store), images_(images), reconciler_(reconciler) {}

awaitable<Result<std::vector<std::string>>> ServingHooks::revision_names(std::string ns,
                                                                         std::string service,
                                                                         std::string service_uid) {
  // The service's own revisions, found by their owner in SQL: not every revision parsed.
  ObjectQuery q{kServingGroup, "Revision", ns, "", 0, "", "", service_uid};
  auto listed =
      co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
  if (!listed) co_return listed.error();
  std::vector<std::string> names;
  for (const auto& o : listed->items) {
    auto r = revision_from_object(o);
    if (r && r->service == service) names.push_back(r->meta.name);
  }
  co_return names;
}

awaitable<Result<void>> ServingHooks::before_write(const KindInfo& kind, const json::object* old,
                                                   json::object& object,
                                                   std::vector<ObjectWrite>& also, bool dry_run) {
  if (kind.kind != "Service") co_return Result<void>{};
  auto s = service_from_object(object);
  if (!s) co_return s.error();
  const std::string ns = s->meta.namespace_;
  const std::string name = s->meta.name;
  std::vector<std::string> names;
  bool template_changed = true;
  std::int64_t generation = 1;
  if (old) {
    auto previous = service_from_object(*old);
    if (!previous) co_return previous.error();
    template_changed = !(previous->spec == s->spec);
    generation = previous->config_generation + (template_changed ? 1 : 0);
    auto existing = co_await revision_names(ns, name, meta_string(*old, "uid"));
    if (!existing) co_return existing.error();
    names = std::move(existing.value());
  }
  std::string rev_name;
  if (template_changed) {
    rev_name =
        s->spec.name.empty() ? revision_name(name, static_cast<int>(generation)) : s->spec.name;
    if (std::find(names.begin(), names.end(), rev_name) != names.end())
      co_return Error::exists(fmt::format(
          "revision \"{}\" already exists; a changed template needs a new revision name "
          "(spec.template.metadata.name or --revision-name), or leave the name out",
          rev_name));
    names.push_back(rev_name);
  }
  if (auto r = validate_traffic(s->traffic, name, names); !r) co_return r.error();
  // The controller's finalizer stays until it has stopped the service's instances.
  json::object& md = metadata_of(object);
  if (meta_string(object, "deletionTimestamp").empty()) {
    json::array finalizers;
    if (const json::value* f = md.if_contains("finalizers"); f && f->is_array())
      finalizers = f->get_array();
    if (std::find(finalizers.begin(), finalizers.end(), json::value(kServiceFinalizer)) ==
        finalizers.end())
      finalizers.emplace_back(kServiceFinalizer);
    md["finalizers"] = std::move(finalizers);
  }
  // The stored status (the controller's, kept by an update) with the configuration generation.
  json::value& status = object["status"];
  if (!old || !status.is_object()) status = json::object{};
  status.get_object()["configurationGeneration"] = generation;
  if (!template_changed || dry_run) co_return Result<void>{};
  // Resolve the image to a digest now: the revision pins it.
  auto image = co_await images_.resolve(s->spec.container.image, s->spec.container.pull_policy);
  if (!image) co_return image.error();
  Revision rev;
  rev.meta.name = rev_name;
  rev.meta.namespace_ = ns;
  rev.meta.uid = new_uid();
  rev.meta.generation = generation;
  rev.meta.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  rev.service = name;
  rev.spec = s->spec;
  rev.image_digest = image->digest;
  also.push_back({ObjectWrite::Op::kCreate, kServingGroup, "Revision",
                  revision_object(rev, meta_string(object, "uid")), 0});
  co_return Result<void>{};
}

awaitable<Result<void>> ServingHooks::before_delete(const KindInfo& kind,
                                                    const json::object& current) {
  if (kind.kind != "Revision") co_return Result<void>{};
  auto rev = revision_from_object(current);
  if (!rev) co_return rev.error();
  const std::string& name = rev->meta.name;
  const std::string& service = rev->service;
  ObjectKey key{kServingGroup, "Service", rev->meta.namespace_, service};
  auto stored =
      co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, key);
  if (!stored) co_return Result<void>{};  // its service is gone: nothing routes it
  auto svc = service_from_object(*stored);
  if (!svc) co_return svc.error();
  ServiceStatus st = reconciler_.service_status(*svc);
  std::string holder;
  for (const auto& t : svc->traffic)
    if (t.revision_name == name && (t.percent > 0 || !t.tag.empty()))
      holder = t.tag.empty()
                   ? fmt::format("{}% of its traffic", t.percent)
                   : fmt::format("{}% of its traffic and the tag \"{}\"", t.percent, t.tag);
  for (const auto& t : st.traffic)
    if (holder.empty() && t.revision_name == name && (t.percent > 0 || !t.tag.empty()))
      holder =
          fmt::format("{}% of its traffic{}", t.percent, t.latest_revision ? " as @latest" : "");
  if (!holder.empty())
    co_return Error::precondition(fmt::format(
        "revision \"{}\" is routed by service \"{}\" ({}); move that traffic first, e.g. "
        "'elafros service update {} --traffic @latest=100' (and --untag for its tag)",
        name, service, holder, service));
  if (st.latest_created_revision == name)
    co_return Error::precondition(
        fmt::format("revision \"{}\" is the latest revision of service \"{}\"; update the "
                    "service to a new revision first, or delete the service",
                    name, service));
  co_return Result<void>{};
}

void ServingHooks::present(const KindInfo& kind, json::object& object) {
  if (kind.kind == "Service") {
    auto s = service_from_object(object);
    if (!s) return;
    ServiceStatus st = reconciler_.service_status(*s);
    json::object shown = service_to_json(*s, &st);
    object["status"] = shown["status"];
  } else if (kind.kind == "Revision") {
    auto r = revision_from_object(object);
    if (!r) return;
    RevisionStatus st = reconciler_.revision_status(r->meta.namespace_, r->meta.name);
    json::object shown = revision_to_json(*r, &st);
    object["status"] = shown["status"];
  }
}

}  // namespace elafros::api
