// build.knative.dev/v1alpha1 Build, BuildTemplate and ClusterBuildTemplate in the kind registry:
// Knative Build's field names (with elafros's spec.output and spec.source.local), validation by
// path, printer columns, and the resolution of a Build's steps from its template.

#include <fmt/format.h>

#include <boost/json.hpp>
#include <cmath>
#include <set>

#include "elafros/build.hpp"
#include "elafros/kind_registry.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "strict_reader.hpp"

namespace elafros {
namespace {

const std::initializer_list<std::string_view> kStepFields = {
    "name", "image", "command", "args", "env", "workingDir", "script", "volumeMounts",
    // Accepted for Knative Build manifests, not used on one machine.
    "imagePullPolicy", "resources", "securityContext"};

std::vector<EnvVar> read_env(Reader& r, const json::object& o, const std::string& path) {
  std::vector<EnvVar> out;
  const json::array* env = r.array(o, "env", path);
  if (!env) return out;
  for (std::size_t i = 0; i < env->size() && !r.failed(); ++i) {
    std::string ep = fmt::format("{}.env[{}]", path, i);
    const json::object* e = r.object((*env)[i], ep, {"name", "value"});
    if (!e) break;
    EnvVar var{r.string(*e, "name", ep).value_or(""), r.string(*e, "value", ep).value_or("")};
    if (!r.failed() && (var.name.empty() || var.name.find('=') != std::string::npos))
      r.invalid(ep + ".name", "must be a non-empty name without '='");
    out.push_back(std::move(var));
  }
  return out;
}

BuildStep read_step(Reader& r, const json::value& v, const std::string& path, bool need_image) {
  BuildStep s;
  const json::object* o = r.object(v, path, kStepFields);
  if (!o) return s;
  s.name = r.string(*o, "name", path).value_or("");
  if (!r.failed() && !s.name.empty())
    if (auto problem = dns1035_label_problem(s.name))
      r.invalid(path + ".name",
                fmt::format("\"{}\" is not a valid step name: {}", s.name, *problem));
  s.image = r.string(*o, "image", path).value_or("");
  if (!r.failed() && need_image && s.image.empty())
    r.invalid(path + ".image", "an image is required (a local image name, e.g. busybox:latest)");
  s.command = r.strings(*o, "command", path);
  s.args = r.strings(*o, "args", path);
  s.env = read_env(r, *o, path);
  s.working_dir = r.string(*o, "workingDir", path).value_or("");
  if (!r.failed() && !s.working_dir.empty() && s.working_dir[0] != '/')
    r.invalid(path + ".workingDir", "must be an absolute path");
  s.script = r.string(*o, "script", path).value_or("");
  if (!r.failed() && !s.script.empty() && !s.command.empty())
    r.invalid(path + ".script", "a step has either a script or a command, not both");
  (void)r.string(*o, "imagePullPolicy", path);
  if (const json::array* mounts = r.array(*o, "volumeMounts", path)) {
    for (std::size_t i = 0; i < mounts->size() && !r.failed(); ++i) {
      std::string mp = fmt::format("{}.volumeMounts[{}]", path, i);
      const json::object* m = r.object((*mounts)[i], mp, {"name", "mountPath", "readOnly"});
      if (!m) break;
      VolumeMount vm{r.string(*m, "name", mp).value_or(""),
                     r.string(*m, "mountPath", mp).value_or("")};
      (void)r.boolean(*m, "readOnly", mp);
      if (!r.failed() && vm.name.empty()) r.invalid(mp + ".name", "required");
      if (!r.failed() && (vm.mount_path.empty() || vm.mount_path[0] != '/'))
        r.invalid(mp + ".mountPath", "must be an absolute path");
      if (!r.failed() && (vm.mount_path == kWorkspaceDir || vm.mount_path == kCacheDir ||
                          vm.mount_path == "/builder" || vm.mount_path == kBuilderHome))
        r.invalid(mp + ".mountPath",
                  fmt::format("{} is the build's own; mount the volume elsewhere", vm.mount_path));
      s.volume_mounts.push_back(std::move(vm));
    }
  }
  return s;
}

std::vector<BuildStep> read_steps(Reader& r, const json::object& spec, const std::string& path,
                                  bool need_image) {
  std::vector<BuildStep> out;
  const json::array* steps = r.array(spec, "steps", path);
  if (!steps) return out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < steps->size() && !r.failed(); ++i) {
    std::string sp = fmt::format("{}.steps[{}]", path, i);
    BuildStep s = read_step(r, (*steps)[i], sp, need_image);
    if (s.name.empty()) s.name = fmt::format("unnamed-{}", i);
    if (!r.failed() && !names.insert(s.name).second)
      r.invalid(sp + ".name", fmt::format("another step is named \"{}\"", s.name));
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<BuildVolume> read_volumes(Reader& r, const json::object& spec,
                                      const std::string& path) {
  std::vector<BuildVolume> out;
  const json::array* vols = r.array(spec, "volumes", path);
  if (!vols) return out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < vols->size() && !r.failed(); ++i) {
    std::string vp = fmt::format("{}.volumes[{}]", path, i);
    const json::object* v = r.object((*vols)[i], vp, {"name", "emptyDir"});
    if (!v) break;
    BuildVolume bv{r.string(*v, "name", vp).value_or("")};
    if (!r.failed() && bv.name.empty()) r.invalid(vp + ".name", "required");
    if (!r.failed() && !v->if_contains("emptyDir"))
      r.invalid(vp, "only emptyDir volumes exist on one machine: {name: N, emptyDir: {}}");
    if (const json::value* e = v->if_contains("emptyDir"); e && !r.failed())
      (void)r.object(*e, vp + ".emptyDir", {"medium", "sizeLimit"});
    if (!r.failed() && !names.insert(bv.name).second)
      r.invalid(vp + ".name", fmt::format("another volume is named \"{}\"", bv.name));
    out.push_back(std::move(bv));
  }
  return out;
}

void check_mounts(Reader& r, const std::vector<BuildStep>& steps,
                  const std::vector<BuildVolume>& volumes, const std::string& path,
                  bool allow_unknown) {
  if (allow_unknown) return;
  for (std::size_t i = 0; i < steps.size() && !r.failed(); ++i)
    for (std::size_t j = 0; j < steps[i].volume_mounts.size() && !r.failed(); ++j) {
      const auto& name = steps[i].volume_mounts[j].name;
      bool found = false;
      for (const auto& v : volumes) found = found || v.name == name;
      if (!found)
        r.invalid(fmt::format("{}.steps[{}].volumeMounts[{}].name", path, i, j),
                  fmt::format("no volume is named \"{}\"; declare it in volumes", name));
    }
}

BuildSource read_source(Reader& r, const json::value& v, const std::string& path) {
  BuildSource s;
  const json::object* o = r.object(v, path, {"local", "git", "custom", "subPath"});
  if (!o) return s;
  int kinds = 0;
  if (const json::value* l = o->if_contains("local")) {
    ++kinds;
    s.kind = BuildSource::Kind::kLocal;
    if (const json::object* lo = r.object(*l, path + ".local", {"digest"})) {
      s.local_digest = r.string(*lo, "digest", path + ".local").value_or("");
      if (!r.failed() &&
          (s.local_digest.size() != 71 || s.local_digest.rfind("sha256:", 0) != 0 ||
           s.local_digest.find_first_not_of("0123456789abcdef", 7) != std::string::npos))
        r.invalid(path + ".local.digest",
                  "must be the sha256:… digest of an uploaded source archive (elafros build "
                  "create --source DIR uploads one)");
    }
  }
  if (const json::value* g = o->if_contains("git")) {
    ++kinds;
    s.kind = BuildSource::Kind::kGit;
    if (const json::object* go = r.object(*g, path + ".git", {"url", "revision"})) {
      s.git_url = r.string(*go, "url", path + ".git").value_or("");
      s.git_revision = r.string(*go, "revision", path + ".git").value_or("");
      if (!r.failed() && s.git_url.empty())
        r.invalid(path + ".git.url", "required: the repository to clone");
      if (!r.failed() &&
          (s.git_url[0] == '-' || (!s.git_revision.empty() && s.git_revision[0] == '-')))
        r.invalid(path + ".git", "a url or revision may not start with '-'");
    }
  }
  if (const json::value* c = o->if_contains("custom")) {
    ++kinds;
    s.kind = BuildSource::Kind::kCustom;
    s.custom = read_step(r, *c, path + ".custom", true);
    if (s.custom.name.empty()) s.custom.name = "source";
  }
  s.sub_path = r.string(*o, "subPath", path).value_or("");
  if (!r.failed() && !s.sub_path.empty() &&
      (s.sub_path[0] == '/' || s.sub_path == ".." || s.sub_path.rfind("../", 0) == 0 ||
       s.sub_path.find("/../") != std::string::npos))
    r.invalid(path + ".subPath", "must be a relative path inside the source");
  if (!r.failed() && kinds != 1) r.invalid(path, "give exactly one of local, git or custom");
  return s;
}

std::optional<std::vector<std::string>> optional_strings(Reader& r, const json::object& o,
                                                         std::string_view key,
                                                         const std::string& path) {
  if (!o.if_contains(key) || o.at(key).is_null()) return std::nullopt;
  return r.strings(o, key, path);
}

BuildOutput read_output(Reader& r, const json::value& v, const std::string& path) {
  BuildOutput out;
  const json::object* o = r.object(
      v, path, {"image", "base", "path", "entrypoint", "cmd", "env", "workingDir", "user", "push"});
  if (!o) return out;
  out.image = r.string(*o, "image", path).value_or("");
  out.base = r.string(*o, "base", path).value_or("");
  out.path = r.string(*o, "path", path).value_or(kWorkspaceDir);
  if (!r.failed() && (out.path.empty() || out.path[0] != '/'))
    r.invalid(path + ".path", "must be an absolute path inside the build's containers");
  out.entrypoint = optional_strings(r, *o, "entrypoint", path);
  out.cmd = optional_strings(r, *o, "cmd", path);
  out.env = read_env(r, *o, path);
  out.working_dir = r.string(*o, "workingDir", path).value_or("");
  out.user = r.string(*o, "user", path).value_or("");
  out.push = r.string(*o, "push", path).value_or("");
  if (!r.failed() && out.image.empty() && !out.push.empty())
    r.invalid(path + ".image", "needed with push: the local name of the image to push");
  return out;
}

Result<Build> read_build(const json::object& object) {
  std::optional<Error> error;
  Reader r(error);
  Build b;
  b.namespace_ = meta_string(object, "namespace");
  b.name = meta_string(object, "name");
  b.uid = meta_string(object, "uid");
  b.generation = meta_int(object, "generation");
  const json::value* specv = object.if_contains("spec");
  if (!specv) return Error::invalid("spec: required");
  const json::object* spec =
      r.object(*specv, "spec",
               {"source", "steps", "template", "timeout", "output", "volumes", "status", "cache",
                "serviceAccountName", "sources", "nodeSelector", "affinity"});
  if (!spec) return *error;
  if (spec->if_contains("sources")) r.invalid("spec.sources", "give one source in spec.source");
  if (const json::value* s = spec->if_contains("source"); s && !s->is_null())
    b.source = read_source(r, *s, "spec.source");
  b.steps = read_steps(r, *spec, "spec", true);
  if (const json::value* t = spec->if_contains("template"); t && !t->is_null()) {
    TemplateInstantiation ti;
    if (const json::object* to =
            r.object(*t, "spec.template", {"name", "kind", "arguments", "env"})) {
      ti.name = r.string(*to, "name", "spec.template").value_or("");
      ti.kind = r.string(*to, "kind", "spec.template").value_or("BuildTemplate");
      if (!r.failed() && ti.name.empty())
        r.invalid("spec.template.name", "required: the BuildTemplate or ClusterBuildTemplate");
      if (!r.failed() && ti.kind != "BuildTemplate" && ti.kind != "ClusterBuildTemplate")
        r.invalid("spec.template.kind",
                  fmt::format("\"{}\" is not a template kind; use BuildTemplate or "
                              "ClusterBuildTemplate",
                              ti.kind));
      if (const json::array* args = r.array(*to, "arguments", "spec.template")) {
        for (std::size_t i = 0; i < args->size() && !r.failed(); ++i) {
          std::string ap = fmt::format("spec.template.arguments[{}]", i);
          const json::object* a = r.object((*args)[i], ap, {"name", "value"});
          if (!a) break;
          std::string name = r.string(*a, "name", ap).value_or("");
          if (!r.failed() && name.empty()) r.invalid(ap + ".name", "required");
          if (!r.failed() && ti.arguments.count(name))
            r.invalid(ap + ".name", fmt::format("\"{}\" is given twice", name));
          ti.arguments[name] = r.string(*a, "value", ap).value_or("");
        }
      }
      ti.env = read_env(r, *to, "spec.template");
    }
    b.template_ = std::move(ti);
  }
  if (!error && b.template_ && !b.steps.empty())
    r.invalid("spec.steps", "a Build has either steps or a template, not both");
  if (!error && !b.template_ && b.steps.empty() && b.source.kind != BuildSource::Kind::kCustom)
    r.invalid("spec.steps", "a Build needs steps or a template (spec.template.name)");
  b.volumes = read_volumes(r, *spec, "spec");
  check_mounts(r, b.steps, b.volumes, "spec", false);
  if (auto t = r.string(*spec, "timeout", "spec")) {
    auto d = parse_go_duration(*t);
    if (!d || d->count() <= 0 || *d >= std::chrono::hours(24))
      r.invalid("spec.timeout",
                fmt::format("\"{}\" is not a duration between 0 and 24h, e.g. 10m or 1h30m", *t));
    else
      b.timeout = *d;
  }
  if (const json::value* o = spec->if_contains("output"); o && !o->is_null())
    b.output = read_output(r, *o, "spec.output");
  b.cache = r.string(*spec, "cache", "spec").value_or("");
  if (!error && !b.cache.empty())
    if (auto problem = dns1035_label_problem(b.cache))
      r.invalid("spec.cache", fmt::format("\"{}\" is not a cache name: {}", b.cache, *problem));
  if (auto st = r.string(*spec, "status", "spec")) {
    if (*st != "BuildCancelled")
      r.invalid("spec.status",
                fmt::format("\"{}\" is not a Build status; only BuildCancelled cancels", *st));
    b.cancelled = true;
  }
  (void)r.string(*spec, "serviceAccountName", "spec");
  if (error) return *error;
  return b;
}

Result<BuildTemplate> read_template(const json::object& object) {
  std::optional<Error> error;
  Reader r(error);
  BuildTemplate t;
  t.namespace_ = meta_string(object, "namespace");
  t.name = meta_string(object, "name");
  const json::value* specv = object.if_contains("spec");
  if (!specv) return Error::invalid("spec: required");
  const json::object* spec = r.object(*specv, "spec", {"parameters", "steps", "volumes"});
  if (!spec) return *error;
  std::set<std::string> names;
  if (const json::array* params = r.array(*spec, "parameters", "spec")) {
    for (std::size_t i = 0; i < params->size() && !r.failed(); ++i) {
      std::string pp = fmt::format("spec.parameters[{}]", i);
      const json::object* p = r.object((*params)[i], pp, {"name", "description", "default"});
      if (!p) break;
      TemplateParameter tp;
      tp.name = r.string(*p, "name", pp).value_or("");
      tp.description = r.string(*p, "description", pp).value_or("");
      tp.default_value = r.string(*p, "default", pp);
      if (!r.failed() && tp.name.empty()) r.invalid(pp + ".name", "required");
      if (!r.failed() && !names.insert(tp.name).second)
        r.invalid(pp + ".name", fmt::format("another parameter is named \"{}\"", tp.name));
      t.parameters.push_back(std::move(tp));
    }
  }
  // An image may be a ${PARAM}: it is checked once the Build substitutes it.
  t.steps = read_steps(r, *spec, "spec", true);
  if (!error && t.steps.empty()) r.invalid("spec.steps", "a template needs at least one step");
  t.volumes = read_volumes(r, *spec, "spec");
  check_mounts(r, t.steps, t.volumes, "spec", true);
  if (error) return *error;
  return t;
}

json::object admitted(const json::object& in, const char* kind) {
  json::object out = in;
  out["apiVersion"] = kBuildApiVersion;
  out["kind"] = kind;
  out.erase("status");
  return out;
}

Result<json::object> admit_build(const json::object& in) {
  auto b = read_build(in);
  if (!b) return b.error();
  if (!b->name.empty())
    if (auto problem = dns1035_label_problem(b->name); problem || b->name.size() > 50)
      return Error::invalid(fmt::format(
          "metadata.name: \"{}\" is not a Build name: {}", b->name,
          problem ? *problem : "at most 50 characters (its step containers add to it)"));
  json::object out = admitted(in, "Build");
  json::object& spec = out["spec"].as_object();
  if (!spec.if_contains("timeout")) spec["timeout"] = format_go_duration(b->timeout);
  return out;
}

Result<json::object> admit_template(const json::object& in, const char* kind) {
  auto t = read_template(in);
  if (!t) return t.error();
  return admitted(in, kind);
}

// ${NAME} replaced by its value; an unknown name is left as written (Knative Build's rule).
std::string substitute(const std::string& text, const std::map<std::string, std::string>& values) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t at = text.find("${", i);
    if (at == std::string::npos) break;
    std::size_t end = text.find('}', at + 2);
    if (end == std::string::npos) break;
    out.append(text, i, at - i);
    std::string name = text.substr(at + 2, end - at - 2);
    auto it = values.find(name);
    if (it != values.end())
      out += it->second;
    else
      out.append(text, at, end - at + 1);
    i = end + 1;
  }
  out.append(text, i, std::string::npos);
  return out;
}

BuildStep substitute_step(const BuildStep& in, const std::map<std::string, std::string>& values) {
  BuildStep s = in;
  s.image = substitute(s.image, values);
  for (auto& c : s.command) c = substitute(c, values);
  for (auto& a : s.args) a = substitute(a, values);
  for (auto& e : s.env) e.value = substitute(e.value, values);
  s.working_dir = substitute(s.working_dir, values);
  s.script = substitute(s.script, values);
  for (auto& m : s.volume_mounts) {
    m.name = substitute(m.name, values);
    m.mount_path = substitute(m.mount_path, values);
  }
  return s;
}

KindInfo build_kind(const char* kind, const char* plural, const char* singular,
                    const char* description, bool namespaced) {
  KindInfo k;
  k.group = kBuildGroup;
  k.version = kBuildVersion;
  k.kind = kind;
  k.plural = plural;
  k.singular = singular;
  k.namespaced = namespaced;
  k.categories = {"all", "knative", "build"};
  k.schema = loose_schema(description);
  return k;
}

}  // namespace

Result<Build> build_from_object(const json::object& object) {
  return read_build(object);
}

Result<BuildTemplate> build_template_from_object(const json::object& object) {
  return read_template(object);
}

Result<std::vector<BuildStep>> resolve_build_steps(const Build& build, const BuildTemplate* t) {
  std::vector<BuildStep> steps;
  if (!build.template_) {
    steps = build.steps;
  } else {
    if (!t) return Error::internal("resolve_build_steps: the template is missing");
    std::map<std::string, std::string> values;
    for (const auto& p : t->parameters) {
      auto it = build.template_->arguments.find(p.name);
      if (it != build.template_->arguments.end())
        values[p.name] = it->second;
      else if (p.default_value)
        values[p.name] = *p.default_value;
      else
        return Error::invalid(fmt::format(
            "spec.template.arguments: {} \"{}\" requires the parameter {}{}; add --arg {}=VALUE",
            build.template_->kind, t->name, p.name,
            p.description.empty() ? "" : " (" + p.description + ")", p.name));
    }
    for (const auto& [name, value] : build.template_->arguments) {
      bool declared = false;
      for (const auto& p : t->parameters) declared = declared || p.name == name;
      if (!declared) {
        std::string known;
        for (const auto& p : t->parameters) known += (known.empty() ? "" : ", ") + p.name;
        return Error::invalid(fmt::format(
            "spec.template.arguments: {} \"{}\" has no parameter {} (its parameters: {})",
            build.template_->kind, t->name, name, known.empty() ? "none" : known));
      }
    }
    for (const auto& s : t->steps) {
      BuildStep step = substitute_step(s, values);
      for (const auto& e : build.template_->env) step.env.push_back(e);
      steps.push_back(std::move(step));
    }
  }
  if (build.source.kind == BuildSource::Kind::kCustom)
    steps.insert(steps.begin(), build.source.custom);
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (steps[i].image.empty())
      return Error::invalid(
          fmt::format("step \"{}\": the template gives it no image", steps[i].name));
  return steps;
}

std::vector<BuildVolume> resolve_build_volumes(const Build& build, const BuildTemplate* t) {
  std::vector<BuildVolume> out;
  if (t) {
    std::map<std::string, std::string> values;
    if (build.template_) {
      for (const auto& p : t->parameters)
        if (p.default_value) values[p.name] = *p.default_value;
      for (const auto& [k, v] : build.template_->arguments) values[k] = v;
    }
    for (const auto& v : t->volumes) out.push_back({substitute(v.name, values)});
  }
  for (const auto& v : build.volumes) out.push_back(v);
  return out;
}

json::object build_step_to_json(const BuildStep& s) {
  json::object o{{"name", s.name}, {"image", s.image}};
  auto strings = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& x : v) a.emplace_back(x);
    return a;
  };
  if (!s.command.empty()) o["command"] = strings(s.command);
  if (!s.args.empty()) o["args"] = strings(s.args);
  if (!s.env.empty()) {
    json::array env;
    for (const auto& e : s.env) env.push_back(json::object{{"name", e.name}, {"value", e.value}});
    o["env"] = std::move(env);
  }
  if (!s.working_dir.empty()) o["workingDir"] = s.working_dir;
  if (!s.script.empty()) o["script"] = s.script;
  if (!s.volume_mounts.empty()) {
    json::array m;
    for (const auto& vm : s.volume_mounts)
      m.push_back(json::object{{"name", vm.name}, {"mountPath", vm.mount_path}});
    o["volumeMounts"] = std::move(m);
  }
  return o;
}

std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return std::chrono::milliseconds(0);
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (i == start) return std::nullopt;
    double value = 0;
    try {
      value = std::stod(std::string(text.substr(start, i - start)));
    } catch (...) {
      return std::nullopt;
    }
    std::size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    if (unit == "h")
      scale = 3600e3;
    else if (unit == "m")
      scale = 60e3;
    else if (unit == "s")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1;
    else
      return std::nullopt;
    total_ms += value * scale;
  }
  if (total_ms > 1e15) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::string format_go_duration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms >= 3600000) out += fmt::format("{}h", ms / 3600000), ms %= 3600000;
  if (ms >= 60000) out += fmt::format("{}m", ms / 60000), ms %= 60000;
  if (ms >= 1000 && ms % 1000 == 0) out += fmt::format("{}s", ms / 1000), ms = 0;
  if (ms > 0)
    out +=
        ms >= 1000 ? fmt::format("{:g}s", static_cast<double>(ms) / 1000) : fmt::format("{}ms", ms);
  return out;
}

std::string build_step_container_id(const std::string& build, const std::string& uid,
                                    std::size_t index) {
  return fmt::format("{}-{}s{}", build, uid.substr(0, 8), index);
}

json::object buildpacks_template() {
  // ${BUILDPACK} and ${BUILDER_IMAGE} are the template's parameters; the scripts' own shell
  // variables are written $name, without braces, so that substitution leaves them alone.
  const char* detect = R"sh(order=$(cat /buildpacks/order 2>/dev/null || ls /buildpacks)
want="${BUILDPACK}"
if [ -n "$want" ]; then
  if [ ! -x "/buildpacks/$want/bin/detect" ]; then
    echo "the builder image has no buildpack \"$want\"; it has: $(echo $order)" >&2
    exit 1
  fi
  order=$want
fi
for bp in $order; do
  if found=$("/buildpacks/$bp/bin/detect" /workspace 2>&1); then
    echo "-----> $found app detected (buildpack $bp)"
    echo "$bp" >/builder/home/buildpack
    exit 0
  fi
  echo "       $bp: not this app"
done
echo "no buildpack detects this app (tried: $(echo $order)); add a Procfile with a web: line, an index.html, a cgi-bin/ directory or an app.py" >&2
exit 1
)sh";
  const char* compile = R"sh(bp=$(cat /builder/home/buildpack)
mkdir -p "/cache/$bp" /builder/home/env
echo "-----> Compiling with $bp"
"/buildpacks/$bp/bin/compile" /workspace "/cache/$bp" /builder/home/env
)sh";
  const char* release = R"sh(bp=$(cat /builder/home/buildpack)
if grep -qs '^web:' /workspace/Procfile; then
  echo "-----> Process from the Procfile: $(grep '^web:' /workspace/Procfile | head -1)"
  exit 0
fi
web=""
if [ -x "/buildpacks/$bp/bin/release" ]; then
  web=$("/buildpacks/$bp/bin/release" /workspace | sed -n 's/^ *web: *//p' | head -1)
fi
if [ -z "$web" ]; then
  echo "no web process: add a Procfile with a web: line (e.g. web: python3 app.py)" >&2
  exit 1
fi
echo "web: $web" >>/workspace/Procfile
echo "-----> Default process from $bp: web: $web"
)sh";
  auto step = [](const char* name, const char* script) {
    return json::object{{"name", name}, {"image", "${BUILDER_IMAGE}"}, {"script", script}};
  };
  return json::object{
      {"apiVersion", kBuildApiVersion},
      {"kind", "ClusterBuildTemplate"},
      {"metadata",
       json::object{{"name", "buildpacks"},
                    {"labels", json::object{{"app.kubernetes.io/managed-by", "elafros"}}}}},
      {"spec",
       json::object{
           {"parameters",
            json::array{
                json::object{{"name", "BUILDER_IMAGE"},
                             {"description",
                              "the image holding /buildpacks/<name> (Heroku v2: bin/detect, "
                              "bin/compile, bin/release) and the tools they use"},
                             {"default", kDefaultBuilderImage}},
                json::object{{"name", "BUILDPACK"},
                             {"description",
                              "the buildpack to use; empty: the first in /buildpacks/order "
                              "whose detect passes"},
                             {"default", ""}}}},
           {"steps", json::array{step("detect", detect), step("compile", compile),
                                 step("release", release)}}}}};
}

void register_build_kinds(KindRegistry& registry) {
  KindInfo build = build_kind(
      "Build", "builds", "build",
      "A Build runs steps (containers) in order over a shared /workspace holding its source, "
      "and stores the result as an image (spec.output)",
      true);
  build.has_status = true;
  build.columns = {
      {"Succeeded", "string", ".status.conditions[?(@.type=='Succeeded')].status", "", 0},
      {"Reason", "string", ".status.conditions[?(@.type=='Succeeded')].reason", "", 0},
      {"StartTime", "date", ".status.startTime", "", 0},
      {"CompletionTime", "date", ".status.completionTime", "", 0},
      {"Image", "string", ".status.imageDigest", "", 1}};
  build.immutable_fields = {".spec.source", ".spec.steps",   ".spec.template", ".spec.timeout",
                            ".spec.output", ".spec.volumes", ".spec.cache"};
  build.admit = admit_build;
  registry.add(std::move(build));

  KindInfo bt =
      build_kind("BuildTemplate", "buildtemplates", "buildtemplate",
                 "Steps with ${PARAMETERS} that Builds in its namespace instantiate", true);
  bt.columns = {{"Age", "date", ".metadata.creationTimestamp", "", 0}};
  bt.admit = [](const json::object& in) { return admit_template(in, "BuildTemplate"); };
  registry.add(std::move(bt));

  KindInfo cbt =
      build_kind("ClusterBuildTemplate", "clusterbuildtemplates", "clusterbuildtemplate",
                 "Steps with ${PARAMETERS} that Builds in every namespace instantiate", false);
  cbt.columns = bt.columns;
  cbt.admit = [](const json::object& in) { return admit_template(in, "ClusterBuildTemplate"); };
  registry.add(std::move(cbt));
}

}  // namespace elafros
