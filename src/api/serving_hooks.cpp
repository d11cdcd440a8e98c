#include "api/serving_hooks.hpp"

#include <fmt/format.h>

#include <boost/asio/thread_pool.hpp>
#include <boost/json.hpp>

#include "api/image_puller.hpp"
#include "elafros/base64.hpp"
#include "elafros/config_refs.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/registry_reference.hpp"
#include "elafros/resource_json.hpp"
#include "elafros/sources.hpp"
#include "elafros/traffic.hpp"
#include "offload.hpp"
#include "reconciler.hpp"

namespace json = boost::json;

namespace elafros::api {

ServingHooks::ServingHooks(boost::asio::thread_pool& store_thread, ObjectStore& store,
                           ImagePuller& images, Reconciler& reconciler,
                           std::vector<std::string> host_path_prefixes)
    : store_thread_(store_thread),
      store_(store),
      images_(images),
      reconciler_(reconciler),
      host_path_prefixes_(std::move(host_path_prefixes)) {}

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

awaitable<Result<std::optional<RegistryCredentials>>> ServingHooks::pull_login(std::string ns,
                                                                               RevisionTemplate t,
                                                                               std::string image) {
  std::optional<RegistryCredentials> login;
  auto registry = parse_registry_reference(image);
  for (std::size_t i = 0; i < t.image_pull_secrets.size(); ++i) {
    const std::string& name = t.image_pull_secrets[i];
    const std::string field = fmt::format("spec.template.spec.imagePullSecrets[{}]", i);
    ObjectKey key{"", "Secret", ns, name};
    auto secret =
        co_await offload(store_thread_.get_executor(), &ObjectStore::get_object, &store_, key);
    if (!secret && secret.error().code == ErrorCode::kNotFound)
      co_return Error::invalid(fmt::format(
          "{}: secret \"{}\" not found in namespace \"{}\"; create it ('elafros secret create "
          "docker-registry {} --docker-server HOST --docker-username USER "
          "--docker-password-stdin')",
          field, name, ns, name));
    if (!secret) co_return secret.error();
    std::string type;
    if (const json::value* t = secret->if_contains("type"); t && t->is_string())
      type = std::string(t->get_string());
    const char* data_key = type == "kubernetes.io/dockerconfigjson" ? ".dockerconfigjson"
                           : type == "kubernetes.io/dockercfg"      ? ".dockercfg"
                                                                    : nullptr;
    if (!data_key)
      co_return Error::invalid(
          fmt::format("{}: secret \"{}\" is of type {}; an image pull secret is of type "
                      "kubernetes.io/dockerconfigjson (its .dockerconfigjson a Docker config.json)",
                      field, name, type.empty() ? "Opaque" : type));
    json::value encoded = json_path_value(*secret, std::string(".data['") + data_key + "']");
    auto text = encoded.is_string() ? base64_decode(encoded.get_string()) : std::nullopt;
    if (!text)
      co_return Error::invalid(
          fmt::format("{}: secret \"{}\" has no {} key", field, name, data_key));
    auto logins = docker_config_logins(*text);
    if (!logins)
      co_return Error::invalid(fmt::format("{}: secret \"{}\": its {} cannot be read: {}", field,
                                           name, data_key, logins.error().message));
    // The first secret with a login for the registry wins, as the kubelet tries them in order.
    if (registry && !login)
      if (auto it = logins->find(registry->registry); it != logins->end()) login = it->second;
  }
  co_return login;
}

awaitable<Result<std::string>> ServingHooks::pin(std::string ns, RevisionTemplate t,
                                                 ContainerSpec c, std::string field) {
  auto login = co_await pull_login(ns, t, c.image);
  if (!login) co_return login.error();
  auto image = co_await images_.resolve(c.image, c.pull_policy, *login, field);
  if (!image) co_return image.error();
  co_return image->digest;
}

awaitable<Result<void>> ServingHooks::bind_sinks(json::object& object) {
  ObjectQuery q;
  q.group = kSourcesGroup;
  q.kind = "SinkBinding";
  q.namespace_ = meta_string(object, "namespace");
  auto bindings =
      co_await offload(store_thread_.get_executor(), &ObjectStore::list_objects, &store_, q);
  if (!bindings) co_return bindings.error();
  json::object& md = metadata_of(object);
  std::map<std::string, std::string> labels;
  if (const json::value* l = md.if_contains("labels"); l && l->is_object())
    for (const auto& kv : l->get_object())
      if (kv.value().is_string()) labels.emplace(kv.key(), kv.value().get_string());
  const std::string name = meta_string(object, "name");
  std::string binding, sink, overrides;
  for (const auto& o : bindings->items) {  // by name: the first that binds it wins
    if (!meta_string(o, "deletionTimestamp").empty()) continue;
    auto b = sink_binding_from_object(o);
    if (!b || !b->binds(name, labels)) continue;
    json::value uri = json_path_value(o, ".status.sinkUri");
    if (!uri.is_string() || uri.get_string().empty()) continue;  // not resolved yet
    binding = b->name;
    sink = uri.get_string();
    if (!b->ce_overrides.empty()) {
      json::object ext;
      for (const auto& [k, v] : b->ce_overrides) ext[k] = v;
      overrides = json::serialize(json::object{{"extensions", std::move(ext)}});
    }
    break;
  }
  json::object* annotations = nullptr;
  if (json::value* a = md.if_contains("annotations"); a && a->is_object())
    annotations = &a->get_object();
  const bool was_bound = annotations && annotations->contains(kBoundByAnnotation);
  if (binding.empty() && !was_bound) co_return Result<void>{};
  json::value* containers = nullptr;
  if (json::value* spec = object.if_contains("spec"); spec && spec->is_object())
    if (json::value* t = spec->get_object().if_contains("template"); t && t->is_object())
      if (json::value* ts = t->get_object().if_contains("spec"); ts && ts->is_object())
        containers = ts->get_object().if_contains("containers");
  if (containers && containers->is_array())
    for (auto& c : containers->get_array()) {
      if (!c.is_object()) continue;
      json::array env;
      if (const json::value* e = c.get_object().if_contains("env"); e && e->is_array())
        for (const auto& var : e->get_array())
          if (!var.is_object() || (var.get_object().if_contains("name") &&
                                   var.at("name") != kSinkEnv && var.at("name") != kCeOverridesEnv))
            env.push_back(var);
      if (!binding.empty()) {
        env.push_back(json::object{{"name", kSinkEnv}, {"value", sink}});
        if (!overrides.empty())
          env.push_back(json::object{{"name", kCeOverridesEnv}, {"value", overrides}});
      }
      if (env.empty())
        c.get_object().erase("env");
      else
        c.get_object()["env"] = std::move(env);
    }
  if (binding.empty()) {
    annotations->erase(kBoundByAnnotation);
    if (annotations->empty()) md.erase("annotations");
  } else {
    if (!annotations) annotations = &md["annotations"].emplace_object();
    (*annotations)[kBoundByAnnotation] = binding;
  }
  co_return Result<void>{};
}

awaitable<Result<void>> ServingHooks::before_write(const KindInfo& kind, const json::object* old,
                                                   json::object& object,
                                                   std::vector<ObjectWrite>& also, bool dry_run) {
  if (kind.kind == "DomainMapping") {
    const std::string name = meta_string(object, "name");
    const std::string& domain = reconciler_.domain();
    if (name == domain || (name.size() > domain.size() &&
                           name.compare(name.size() - domain.size(), domain.size(), domain) == 0 &&
                           name[name.size() - domain.size() - 1] == '.'))
      co_return Error::invalid(
          fmt::format("metadata.name: \"{}\" is under {}, the domain elafros names services by "
                      "(NAME.NAMESPACE.{}); map a domain of your own",
                      name, domain, domain));
    co_return Result<void>{};
  }
  if (kind.kind != "Service") co_return Result<void>{};
  if (auto bound = co_await bind_sinks(object); !bound) co_return bound.error();
  auto s = service_from_object(object);
  if (!s) co_return s.error();
  for (std::size_t i = 0; i < s->spec.volumes.size(); ++i)
    if (s->spec.volumes[i].kind == "HostPath")
      if (auto problem = host_path_problem(s->spec.volumes[i].source, host_path_prefixes_))
        co_return Error::invalid(
            fmt::format("spec.template.spec.volumes[{}].hostPath.path: {}", i, *problem));
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
  std::string serving_field =
      fmt::format("spec.template.spec.containers[{}].image", s->spec.serving_index);
  auto image = co_await pin(ns, s->spec, s->spec.container, serving_field);
  if (!image) co_return image.error();
  // Each sidecar's and init container's image is pinned too.
  std::vector<std::string> sidecar_digests, init_digests;
  for (std::size_t i = 0; i < s->spec.sidecars.size(); ++i) {
    std::size_t at = i < static_cast<std::size_t>(s->spec.serving_index) ? i : i + 1;
    std::string field = fmt::format("spec.template.spec.containers[{}].image", at);
    auto digest = co_await pin(ns, s->spec, s->spec.sidecars[i], field);
    if (!digest) co_return digest.error();
    sidecar_digests.push_back(*digest);
  }
  for (std::size_t i = 0; i < s->spec.init_containers.size(); ++i) {
    std::string field = fmt::format("spec.template.spec.initContainers[{}].image", i);
    auto digest = co_await pin(ns, s->spec, s->spec.init_containers[i], field);
    if (!digest) co_return digest.error();
    init_digests.push_back(*digest);
  }
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
  rev.image_digest = *image;
  rev.sidecar_digests = std::move(sidecar_digests);
  rev.init_digests = std::move(init_digests);
  also.push_back({ObjectWrite::Op::kCreate, kServingGroup, "Revision",
                  revision_object(rev, meta_string(object, "uid")), 0});
  co_return Result<void>{};
}

awaitable<Result<void>> ServingHooks::before_delete(const KindInfo& kind,
                                                    const json::object& current) {
  if (kind.kind == "PersistentVolumeClaim") {
    const std::string ns = meta_string(current, "namespace");
    const std::string name = meta_string(current, "name");
    auto users = reconciler_.claim_users(ns, name);
    if (users.empty()) co_return Result<void>{};
    std::string list;
    for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
    co_return Error::conflict(fmt::format(
        "persistentvolumeclaim \"{}\" is mounted by running instances ({}); delete the services "
        "that mount it, or update them to another volume, first (its data would go with it)",
        name, list));
  }
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
  if (kind.kind == "DomainMapping") {
    const std::string ns = meta_string(object, "namespace");
    const std::string name = meta_string(object, "name");
    json::value ref = json_path_value(object, ".spec.ref.name");
    std::string service = ref.is_string() ? std::string(ref.get_string()) : "";
    auto st = reconciler_.domain_mapping_status(ns, name);
    bool claimed = st.claimed_by == ns;
    auto condition = [](const char* type, bool ok, const std::string& reason,
                        const std::string& message) {
      json::object c{{"type", type}, {"status", ok ? "True" : "False"}};
      if (!reason.empty()) c["reason"] = reason;
      if (!message.empty()) c["message"] = message;
      return c;
    };
    std::string ready_reason, ready_message;
    if (!st.service_exists) {
      ready_reason = "ResolveFailed";
      ready_message = fmt::format("service \"{}\" not found in namespace \"{}\"", service, ns);
    } else if (!claimed) {
      ready_reason = "DomainAlreadyClaimed";
      ready_message = st.claimed_by.empty()
                          ? fmt::format("the domain \"{}\" is not mapped yet", name)
                          : fmt::format("the domain \"{}\" is already mapped in namespace \"{}\"",
                                        name, st.claimed_by);
    }
    // Its own certificate, when it names one and the proxy serves HTTPS.
    json::value secret = json_path_value(object, ".spec.tls.secretName");
    bool certified = true;
    std::string cert_reason = "TLSNotEnabled", cert_message;
    std::string url = st.url;
    if (secret.is_string() && !secret.get_string().empty()) {
      DomainTlsStatus tls;
      if (domain_tls)
        tls = domain_tls(ns, name);
      else
        tls.message =
            "elafrosd serves no HTTPS (--listen-tls), so the secret is not used; the domain is "
            "served over plain HTTP";
      certified = tls.served;
      cert_reason = tls.served ? "" : "CertificateNotReady";
      cert_message = tls.message;
      if (tls.served) url = tls.url;
      if (!tls.served && ready_reason.empty() && domain_tls) {
        ready_reason = "CertificateNotReady";
        ready_message = tls.message;
      }
    } else {
      cert_message = domain_tls ? "no spec.tls.secretName: over HTTPS the domain gets a "
                                  "certificate from elafrosd's local CA"
                                : "the proxy serves this domain over plain HTTP";
    }
    bool ready = ready_reason.empty();
    json::array conditions{
        condition("CertificateProvisioned", certified, cert_reason, cert_message),
        condition("DomainClaimed", claimed, claimed ? "" : "DomainAlreadyClaimed",
                  claimed ? "" : ready_message),
        condition("IngressReady", ready, ready ? "" : ready_reason, ready_message),
        condition("Ready", ready, ready_reason, ready_message),
        condition("ReferenceResolved", st.service_exists, st.service_exists ? "" : "ResolveFailed",
                  st.service_exists ? "" : ready_message)};
    object["status"] = json::object{{"observedGeneration", meta_int(object, "generation")},
                                    {"url", url},
                                    {"address", json::object{{"url", url}}},
                                    {"conditions", std::move(conditions)}};
    return;
  }
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
