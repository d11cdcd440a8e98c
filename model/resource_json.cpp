#include "elafros/resource_json.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <ctime>
#include <initializer_list>
#include <optional>

#include "elafros/naming.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

const char* kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

// Reads one JSON object strictly: every key must be known, every value of the right type.
// The first problem is kept, with the dotted path of the field, and later reads are no-ops.
class Reader {
 public:
  explicit Reader(std::optional<Error>& error) : error_(error) {}

  const json::object* object(const json::value& v, const std::string& path,
                             std::initializer_list<std::string_view> allowed) {
    if (error_) return nullptr;
    if (!v.is_object()) return fail(path, "an object", v), nullptr;
    for (const auto& kv : v.get_object()) {
      bool known = false;
      for (auto a : allowed) known = known || kv.key() == a;
      if (!known) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        error_ = Error::invalid(fmt::format("{}.{}: unknown field (known fields: {})", path,
                                            std::string_view(kv.key()), list));
        return nullptr;
      }
    }
    return &v.get_object();
  }

  std::optional<std::string> string(const json::object& o, std::string_view key,
                                    const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return std::nullopt;
    if (!v->is_string()) return fail(join(path, key), "a string", *v), std::nullopt;
    return std::string(v->get_string());
  }

  std::optional<std::int64_t> integer(const json::object& o, std::string_view key,
                                      const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return std::nullopt;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= INT64_MAX)
      return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double() &&
        v->get_double() == static_cast<double>(static_cast<std::int64_t>(v->get_double())))
      return static_cast<std::int64_t>(v->get_double());
    return fail(join(path, key), "an integer", *v), std::nullopt;
  }

  std::optional<bool> boolean(const json::object& o, std::string_view key,
                              const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return std::nullopt;
    if (!v->is_bool()) return fail(join(path, key), "a boolean", *v), std::nullopt;
    return v->get_bool();
  }

  const json::array* array(const json::object& o, std::string_view key, const std::string& path) {
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return nullptr;
    if (!v->is_array()) return fail(join(path, key), "an array", *v), nullptr;
    return &v->get_array();
  }

  std::vector<std::string> strings(const json::object& o, std::string_view key,
                                   const std::string& path) {
    std::vector<std::string> out;
    const json::array* a = array(o, key, path);
    if (!a) return out;
    for (std::size_t i = 0; i < a->size() && !error_; ++i) {
      if (!(*a)[i].is_string()) {
        fail(fmt::format("{}[{}]", join(path, key), i), "a string", (*a)[i]);
        break;
      }
      out.emplace_back((*a)[i].get_string());
    }
    return out;
  }

  std::map<std::string, std::string> string_map(const json::object& o, std::string_view key,
                                                const std::string& path) {
    std::map<std::string, std::string> out;
    const json::value* v = o.if_contains(key);
    if (error_ || !v || v->is_null()) return out;
    if (!v->is_object()) return fail(join(path, key), "an object", *v), out;
    for (const auto& kv : v->get_object()) {
      if (!kv.value().is_string()) {
        fail(join(join(path, key), kv.key()), "a string", kv.value());
        break;
      }
      out.emplace(kv.key(), kv.value().get_string());
    }
    return out;
  }

  void invalid(const std::string& path, const std::string& what) {
    if (!error_) error_ = Error::invalid(fmt::format("{}: {}", path, what));
  }

  bool failed() const { return error_.has_value(); }

  static std::string join(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }

 private:
  void fail(const std::string& path, const char* expected, const json::value& got) {
    if (!error_)
      error_ =
          Error::invalid(fmt::format("{}: expected {}, got {}", path, expected, kind_name(got)));
  }

  std::optional<Error>& error_;
};

json::array strings_to_json(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object map_to_json(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

Result<RevisionTemplate> read_template(Reader& r, const json::value& v, const std::string& path) {
  RevisionTemplate t;
  const json::object* tmpl = r.object(v, path, {"metadata", "spec"});
  if (!tmpl) return Error::invalid(path + ": missing");
  if (const json::value* md = tmpl->if_contains("metadata")) {
    std::string mp = path + ".metadata";
    if (const json::object* m =
            r.object(*md, mp, {"name", "annotations", "labels", "creationTimestamp"})) {
      t.name = r.string(*m, "name", mp).value_or("");
      t.annotations = r.string_map(*m, "annotations", mp);
      (void)r.string_map(*m, "labels", mp);
    }
  }
  const json::value* spec_v = tmpl->if_contains("spec");
  std::string sp = path + ".spec";
  if (!spec_v) {
    r.invalid(sp, "missing: a template needs spec.containers with one image");
  } else if (const json::object* spec = r.object(
                 *spec_v, sp,
                 {"containers", "containerConcurrency", "timeoutSeconds", "enableServiceLinks"})) {
    if (auto cc = r.integer(*spec, "containerConcurrency", sp)) {
      if (*cc < 0 || *cc > 1000)
        r.invalid(sp + ".containerConcurrency",
                  fmt::format("must be between 0 and 1000 (got {})", *cc));
      t.container_concurrency = static_cast<int>(*cc);
    }
    if (auto ts = r.integer(*spec, "timeoutSeconds", sp)) {
      if (*ts < 1 || *ts > 3600)
        r.invalid(sp + ".timeoutSeconds", fmt::format("must be between 1 and 3600 (got {})", *ts));
      t.timeout_seconds = static_cast<int>(*ts);
    }
    (void)r.boolean(*spec, "enableServiceLinks", sp);
    const json::array* containers = r.array(*spec, "containers", sp);
    if (!r.failed() && (!containers || containers->size() != 1)) {
      r.invalid(sp + ".containers", "exactly one container is required");
    } else if (!r.failed()) {
      std::string cp = sp + ".containers[0]";
      const json::object* c = r.object(
          (*containers)[0], cp,
          {"name", "image", "command", "args", "env", "ports", "workingDir", "imagePullPolicy"});
      if (c) {
        ContainerSpec& cs = t.container;
        cs.image = r.string(*c, "image", cp).value_or("");
        if (!r.failed() && cs.image.empty()) r.invalid(cp + ".image", "an image is required");
        cs.command = r.strings(*c, "command", cp);
        cs.args = r.strings(*c, "args", cp);
        cs.working_dir = r.string(*c, "workingDir", cp).value_or("");
        (void)r.string(*c, "name", cp);
        (void)r.string(*c, "imagePullPolicy", cp);
        if (const json::array* env = r.array(*c, "env", cp)) {
          for (std::size_t i = 0; i < env->size() && !r.failed(); ++i) {
            std::string ep = fmt::format("{}.env[{}]", cp, i);
            const json::object* e = r.object((*env)[i], ep, {"name", "value"});
            if (!e) break;
            EnvVar var{r.string(*e, "name", ep).value_or(""),
                       r.string(*e, "value", ep).value_or("")};
            if (!r.failed() && (var.name.empty() || var.name.find('=') != std::string::npos))
              r.invalid(ep + ".name", "must be a non-empty name without '='");
            if (!r.failed() && (var.name == "PORT" || var.name.rfind("K_", 0) == 0) &&
                (var.name == "PORT" || var.name == "K_SERVICE" || var.name == "K_REVISION" ||
                 var.name == "K_CONFIGURATION"))
              r.invalid(ep + ".name", fmt::format("{} is set by elafros (the Knative runtime "
                                                  "contract) and cannot be overridden",
                                                  var.name));
            cs.env.push_back(std::move(var));
          }
        }
        if (const json::array* ports = r.array(*c, "ports", cp)) {
          if (ports->size() > 1) r.invalid(cp + ".ports", "at most one port may be given");
          for (std::size_t i = 0; i < ports->size() && !r.failed(); ++i) {
            std::string pp = fmt::format("{}.ports[{}]", cp, i);
            const json::object* p =
                r.object((*ports)[i], pp, {"containerPort", "name", "protocol"});
            if (!p) break;
            auto port = r.integer(*p, "containerPort", pp);
            (void)r.string(*p, "name", pp);
            (void)r.string(*p, "protocol", pp);
            if (!r.failed() && (!port || *port < 1 || *port > 65535))
              r.invalid(pp + ".containerPort", "must be a port number between 1 and 65535");
            else if (port)
              cs.container_port = static_cast<int>(*port);
          }
        }
      }
    }
  }
  if (r.failed()) return Error::invalid("");
  if (!t.name.empty()) {
    if (auto problem = dns1035_label_problem(t.name))
      return Error::invalid(
          fmt::format("{}.metadata.name: revision name \"{}\" {}", path, t.name, *problem));
  }
  return t;
}

}  // namespace

std::string format_rfc3339(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<RevisionTemplate> template_from_json(const json::value& v) {
  std::optional<Error> error;
  Reader r(error);
  auto t = read_template(r, v, "spec.template");
  if (error) return *error;
  return t;
}

Result<Service> service_from_json(const json::value& v, const std::string& default_namespace) {
  std::optional<Error> error;
  Reader r(error);
  Service s;
  s.meta.namespace_ = default_namespace;
  const json::object* root =
      r.object(v, "service", {"apiVersion", "kind", "metadata", "spec", "status"});
  if (!root) return *error;
  auto api_version = r.string(*root, "apiVersion", "");
  auto kind = r.string(*root, "kind", "");
  if (api_version && *api_version != "serving.knative.dev/v1")
    r.invalid("apiVersion",
              fmt::format("\"{}\" is not supported; use serving.knative.dev/v1", *api_version));
  if (kind && *kind != "Service")
    r.invalid("kind",
              fmt::format("\"{}\" is not supported here; this endpoint takes a Service", *kind));
  const json::value* md = root->if_contains("metadata");
  if (!md && !error) r.invalid("metadata", "missing: a service needs metadata.name");
  if (md) {
    if (const json::object* m = r.object(*md, "metadata",
                                         {"name", "namespace", "labels", "annotations", "uid",
                                          "generation", "creationTimestamp", "resourceVersion"})) {
      s.meta.name = r.string(*m, "name", "metadata").value_or("");
      if (auto ns = r.string(*m, "namespace", "metadata"); ns && !ns->empty())
        s.meta.namespace_ = *ns;
      s.meta.labels = r.string_map(*m, "labels", "metadata");
      s.meta.annotations = r.string_map(*m, "annotations", "metadata");
    }
  }
  if (error) return *error;
  if (auto problem = dns1035_label_problem(s.meta.name))
    return Error::invalid(
        fmt::format("metadata.name: service name \"{}\" {}", s.meta.name, *problem));
  if (s.meta.name.size() > 57)
    return Error::invalid(
        fmt::format("metadata.name: service name \"{}\" must be at most 57 characters, so that its "
                    "revision names (NAME-00001) stay valid",
                    s.meta.name));
  if (auto problem = dns1035_label_problem(s.meta.namespace_))
    return Error::invalid(
        fmt::format("metadata.namespace: \"{}\" {}", s.meta.namespace_, *problem));
  const json::value* spec_v = root->if_contains("spec");
  if (!spec_v)
    return Error::invalid("spec: missing: a service needs spec.template with a container image");
  const json::object* spec = r.object(*spec_v, "spec", {"template", "traffic"});
  if (!spec) return *error;
  const json::value* tmpl = spec->if_contains("template");
  if (!tmpl)
    return Error::invalid(
        "spec.template: missing: a service needs a template with a container image");
  auto t = read_template(r, *tmpl, "spec.template");
  if (error) return *error;
  if (!t) return t.error();
  s.spec = std::move(t.value());
  if (const json::array* traffic = r.array(*spec, "traffic", "spec")) {
    int sum = 0;
    for (std::size_t i = 0; i < traffic->size() && !error; ++i) {
      std::string tp = fmt::format("spec.traffic[{}]", i);
      const json::object* o = r.object(
          (*traffic)[i], tp,
          {"revisionName", "latestRevision", "percent", "tag", "configurationName", "url"});
      if (!o) break;
      TrafficTarget target;
      target.revision_name = r.string(*o, "revisionName", tp).value_or("");
      target.latest_revision = r.boolean(*o, "latestRevision", tp).value_or(false);
      target.percent = static_cast<int>(r.integer(*o, "percent", tp).value_or(0));
      target.tag = r.string(*o, "tag", tp).value_or("");
      (void)r.string(*o, "configurationName", tp);
      (void)r.string(*o, "url", tp);
      if (!error && target.latest_revision == !target.revision_name.empty())
        r.invalid(tp, "give either revisionName or latestRevision: true");
      if (!error && (target.percent < 0 || target.percent > 100))
        r.invalid(tp + ".percent", "must be between 0 and 100");
      sum += target.percent;
      s.traffic.push_back(std::move(target));
    }
    if (!error && !s.traffic.empty() && sum != 100)
      r.invalid("spec.traffic", fmt::format("percents must sum to 100 (they sum to {})", sum));
  }
  if (error) return *error;
  return s;
}

json::object template_to_json(const RevisionTemplate& t) {
  json::object container;
  container["image"] = t.container.image;
  if (!t.container.command.empty()) container["command"] = strings_to_json(t.container.command);
  if (!t.container.args.empty()) container["args"] = strings_to_json(t.container.args);
  if (!t.container.env.empty()) {
    json::array env;
    for (const auto& e : t.container.env)
      env.push_back(json::object{{"name", e.name}, {"value", e.value}});
    container["env"] = std::move(env);
  }
  if (t.container.container_port > 0)
    container["ports"] = json::array{json::object{{"containerPort", t.container.container_port}}};
  if (!t.container.working_dir.empty()) container["workingDir"] = t.container.working_dir;

  json::object spec;
  spec["containerConcurrency"] = t.container_concurrency;
  spec["timeoutSeconds"] = t.timeout_seconds;
  spec["containers"] = json::array{std::move(container)};

  json::object out;
  json::object md;
  if (!t.name.empty()) md["name"] = t.name;
  if (!t.annotations.empty()) md["annotations"] = map_to_json(t.annotations);
  if (!md.empty()) out["metadata"] = std::move(md);
  out["spec"] = std::move(spec);
  return out;
}

json::object condition_to_json(const Condition& c) {
  json::object o{{"type", c.type}, {"status", c.status}};
  if (!c.reason.empty()) o["reason"] = c.reason;
  if (!c.message.empty()) o["message"] = c.message;
  if (c.last_transition_unix) o["lastTransitionTime"] = format_rfc3339(c.last_transition_unix);
  return o;
}

namespace {

json::object meta_to_json(const ObjectMeta& m) {
  json::object md{{"name", m.name}, {"namespace", m.namespace_}};
  if (!m.uid.empty()) md["uid"] = m.uid;
  if (m.generation) md["generation"] = m.generation;
  if (m.created_unix) md["creationTimestamp"] = format_rfc3339(m.created_unix);
  if (!m.labels.empty()) md["labels"] = map_to_json(m.labels);
  if (!m.annotations.empty()) md["annotations"] = map_to_json(m.annotations);
  return md;
}

json::array conditions_to_json(const std::vector<Condition>& cs) {
  json::array a;
  for (const auto& c : cs) a.push_back(condition_to_json(c));
  return a;
}

}  // namespace

json::object service_to_json(const Service& s, const ServiceStatus* status) {
  json::object spec;
  spec["template"] = template_to_json(s.spec);
  json::array traffic;
  for (const auto& t : s.traffic) {
    json::object o;
    if (t.latest_revision)
      o["latestRevision"] = true;
    else
      o["revisionName"] = t.revision_name;
    o["percent"] = t.percent;
    if (!t.tag.empty()) o["tag"] = t.tag;
    traffic.push_back(std::move(o));
  }
  if (traffic.empty()) traffic.push_back(json::object{{"latestRevision", true}, {"percent", 100}});
  spec["traffic"] = std::move(traffic);

  json::object out{{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Service"}};
  out["metadata"] = meta_to_json(s.meta);
  out["spec"] = std::move(spec);
  if (status) {
    json::object st;
    st["observedGeneration"] = status->observed_generation;
    st["conditions"] = conditions_to_json(status->conditions);
    if (!status->url.empty()) st["url"] = status->url;
    if (!status->latest_created_revision.empty())
      st["latestCreatedRevisionName"] = status->latest_created_revision;
    if (!status->latest_ready_revision.empty())
      st["latestReadyRevisionName"] = status->latest_ready_revision;
    json::array tr;
    for (const auto& t : status->traffic) {
      json::object o{{"revisionName", t.revision_name}, {"percent", t.percent}};
      if (t.latest_revision) o["latestRevision"] = true;
      if (!t.tag.empty()) o["tag"] = t.tag;
      if (!t.url.empty()) o["url"] = t.url;
      tr.push_back(std::move(o));
    }
    st["traffic"] = std::move(tr);
    out["status"] = std::move(st);
  }
  return out;
}

json::object revision_to_json(const Revision& r, const RevisionStatus* status) {
  json::object out{{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Revision"}};
  out["metadata"] = meta_to_json(r.meta);
  json::object tmpl = template_to_json(r.spec);
  out["spec"] = tmpl["spec"];
  json::object st;
  st["observedGeneration"] = 1;
  if (status) {
    st["conditions"] = conditions_to_json(status->conditions);
    st["actualReplicas"] = status->actual_replicas;
    st["desiredReplicas"] = status->desired_replicas;
  }
  st["containerStatuses"] =
      json::array{json::object{{"name", "user-container"}, {"imageDigest", r.image_digest}}};
  out["status"] = std::move(st);
  return out;
}

json::object image_to_json(const ImageRecord& i) {
  return json::object{
      {"name", i.name},     {"digest", i.digest}, {"configDigest", i.config_digest},
      {"source", i.source}, {"size", i.size},     {"created", format_rfc3339(i.created_unix)}};
}

}  // namespace elafros
