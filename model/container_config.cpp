#include "container_config.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <set>

#include "elafros/base64.hpp"
#include "elafros/config_refs.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "elafros/resource_json.hpp"

namespace elafros {
namespace {

KeyRef read_key_ref(Reader& r, const json::value& v, const std::string& path, const char* kind) {
  KeyRef ref;
  ref.kind = kind;
  const json::object* o = r.object(v, path, {"name", "key", "optional"});
  if (!o) return ref;
  ref.name = r.string(*o, "name", path).value_or("");
  ref.key = r.string(*o, "key", path).value_or("");
  ref.optional = r.boolean(*o, "optional", path).value_or(false);
  if (!r.failed() && ref.name.empty())
    r.invalid(path + ".name", fmt::format("required: the {}'s name", kind));
  if (!r.failed() && ref.key.empty())
    r.invalid(path + ".key", fmt::format("required: the key in the {}", kind));
  return ref;
}

// A relative path inside a volume: no "..", not absolute.
bool bad_item_path(const std::string& p) {
  if (p.empty() || p[0] == '/') return true;
  std::size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0) return true;
    start = end + 1;
  }
  return false;
}

json::object key_ref_json(const KeyRef& ref) {
  json::object o{{"name", ref.name}, {"key", ref.key}};
  if (ref.optional) o["optional"] = true;
  return o;
}

bool env_name_ok(const std::string& name) {
  if (name.empty() || name.find('=') != std::string::npos) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return false;
  return true;
}

// The object's keys and values: a Secret's data (base64) or a ConfigMap's data and binaryData.
std::map<std::string, std::string> values_of(const std::string& kind, const json::object& o) {
  std::map<std::string, std::string> out;
  auto take = [&out](const json::value* m, bool encoded) {
    if (!m || !m->is_object()) return;
    for (const auto& kv : m->get_object()) {
      if (!kv.value().is_string()) continue;
      std::string v(kv.value().get_string());
      if (encoded) v = base64_decode(v).value_or("");
      out[std::string(kv.key())] = std::move(v);
    }
  };
  take(o.if_contains("data"), kind == "Secret");
  if (kind == "ConfigMap") take(o.if_contains("binaryData"), true);
  return out;
}

std::string lower_kind(const std::string& kind) {
  return kind == "Secret" ? "secret" : "configmap";
}

}  // namespace

void read_value_from(Reader& r, const json::value& v, const std::string& path, EnvVar& var) {
  const json::object* o =
      r.object(v, path, {"secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef"});
  if (!o) return;
  const json::value* s = o->if_contains("secretKeyRef");
  const json::value* c = o->if_contains("configMapKeyRef");
  if (o->contains("fieldRef") || o->contains("resourceFieldRef"))
    return r.invalid(path,
                     "only secretKeyRef and configMapKeyRef are supported (Knative "
                     "disallows fieldRef and resourceFieldRef by default)");
  if (!s == !c) return r.invalid(path, "give exactly one of secretKeyRef and configMapKeyRef");
  var.value_from = s ? read_key_ref(r, *s, path + ".secretKeyRef", "Secret")
                     : read_key_ref(r, *c, path + ".configMapKeyRef", "ConfigMap");
}

std::vector<EnvFromSource> read_env_from(Reader& r, const json::object& container,
                                         const std::string& path) {
  std::vector<EnvFromSource> out;
  const json::array* a = r.array(container, "envFrom", path);
  if (!a) return out;
  for (std::size_t i = 0; i < a->size() && !r.failed(); ++i) {
    std::string p = fmt::format("{}.envFrom[{}]", path, i);
    const json::object* o = r.object((*a)[i], p, {"secretRef", "configMapRef", "prefix"});
    if (!o) break;
    EnvFromSource src;
    src.prefix = r.string(*o, "prefix", p).value_or("");
    const json::value* s = o->if_contains("secretRef");
    const json::value* c = o->if_contains("configMapRef");
    if (!s == !c) {
      r.invalid(p, "give exactly one of secretRef and configMapRef");
      break;
    }
    src.kind = s ? "Secret" : "ConfigMap";
    std::string rp = p + (s ? ".secretRef" : ".configMapRef");
    if (const json::object* ro = r.object(s ? *s : *c, rp, {"name", "optional"})) {
      src.name = r.string(*ro, "name", rp).value_or("");
      src.optional = r.boolean(*ro, "optional", rp).value_or(false);
      if (!r.failed() && src.name.empty()) r.invalid(rp + ".name", "required");
    }
    out.push_back(std::move(src));
  }
  return out;
}

std::vector<VolumeMount> read_volume_mounts(Reader& r, const json::object& container,
                                            const std::string& path) {
  std::vector<VolumeMount> out;
  const json::array* a = r.array(container, "volumeMounts", path);
  if (!a) return out;
  std::set<std::string> paths;
  for (std::size_t i = 0; i < a->size() && !r.failed(); ++i) {
    std::string p = fmt::format("{}.volumeMounts[{}]", path, i);
    const json::object* o = r.object((*a)[i], p, {"name", "mountPath", "readOnly"});
    if (!o) break;
    VolumeMount m;
    m.name = r.string(*o, "name", p).value_or("");
    m.mount_path = r.string(*o, "mountPath", p).value_or("");
    m.read_only = r.boolean(*o, "readOnly", p).value_or(false);
    if (r.failed()) break;
    if (m.name.empty())
      r.invalid(p + ".name", "required: the volume to mount");
    else if (m.mount_path.empty() || m.mount_path[0] != '/' || m.mount_path == "/" ||
             m.mount_path.find("/..") != std::string::npos)
      r.invalid(p + ".mountPath",
                fmt::format("\"{}\" must be an absolute path below /", m.mount_path));
    else if (!paths.insert(m.mount_path).second)
      r.invalid(p + ".mountPath", fmt::format("\"{}\" is mounted twice", m.mount_path));
    out.push_back(std::move(m));
  }
  return out;
}

namespace {

// Kubernetes' other volume sources, refused with why rather than as unknown fields.
void refuse_volume_source(Reader& r, const json::value& v, const std::string& path) {
  static constexpr std::pair<std::string_view, std::string_view> kSources[] = {
      {"projected", "yet; mount each secret and configMap as a volume of its own"},
      {"downwardAPI",
       "yet; the instance's names are in $K_SERVICE, $K_REVISION and $K_CONFIGURATION"},
      {"ephemeral", "use an emptyDir (per instance) or a persistentVolumeClaim (kept)"},
  };
  // clang-format off
  static constexpr std::string_view kRemote[] = {
      "nfs", "iscsi", "csi", "cephfs", "rbd", "glusterfs", "fc", "flocker", "cinder",
      "awsElasticBlockStore", "gcePersistentDisk", "azureDisk", "azureFile", "vsphereVolume",
      "quobyte", "portworxVolume", "scaleIO", "storageos", "photonPersistentDisk", "flexVolume",
      "gitRepo"};
  // clang-format on
  if (r.failed() || !v.is_object()) return;
  for (const auto& kv : v.get_object()) {
    for (const auto& [field, why] : kSources)
      if (kv.key() == field) {
        r.invalid(fmt::format("{}.{}", path, field),
                  fmt::format("is not supported{}{}", why.rfind("yet", 0) == 0 ? " " : ": ", why));
        return;
      }
    for (auto field : kRemote)
      if (kv.key() == field) {
        r.invalid(fmt::format("{}.{}", path, field),
                  "is not supported: elafros runs on one machine, with no storage drivers; use a "
                  "persistentVolumeClaim (a local volume, 'elafros volume create') or a hostPath");
        return;
      }
  }
}

}  // namespace

std::vector<Volume> read_volumes(Reader& r, const json::object& spec, const std::string& path) {
  std::vector<Volume> out;
  const json::array* a = r.array(spec, "volumes", path);
  if (!a) return out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < a->size() && !r.failed(); ++i) {
    std::string p = fmt::format("{}.volumes[{}]", path, i);
    refuse_volume_source(r, (*a)[i], p);
    const json::object* o =
        r.object((*a)[i], p,
                 {"name", "secret", "configMap", "emptyDir", "hostPath", "persistentVolumeClaim"});
    if (!o) break;
    Volume v;
    v.name = r.string(*o, "name", p).value_or("");
    if (!r.failed() && (v.name.empty() || dns1035_label_problem(v.name)))
      r.invalid(p + ".name", fmt::format("\"{}\" must be a DNS label (lowercase letters, digits, "
                                         "'-')",
                                         v.name));
    if (!r.failed() && !names.insert(v.name).second)
      r.invalid(p + ".name", fmt::format("\"{}\" names two volumes", v.name));
    int sources = o->contains("secret") + o->contains("configMap") + o->contains("emptyDir") +
                  o->contains("hostPath") + o->contains("persistentVolumeClaim");
    if (!r.failed() && sources != 1)
      r.invalid(p,
                "give exactly one of secret, configMap, emptyDir, hostPath and "
                "persistentVolumeClaim");
    if (r.failed()) break;
    if (const json::value* h = o->if_contains("hostPath")) {
      v.kind = "HostPath";
      std::string hp = p + ".hostPath";
      if (const json::object* ho = r.object(*h, hp, {"path", "type"})) {
        v.source = r.string(*ho, "path", hp).value_or("");
        v.path_type = r.string(*ho, "type", hp).value_or("");
        const std::string& path = v.source;
        if (!r.failed() && (path.empty() || path[0] != '/' || path == "/" ||
                            path.find("/../") != std::string::npos ||
                            path.size() >= 3 && path.compare(path.size() - 3, 3, "/..") == 0))
          r.invalid(hp + ".path",
                    fmt::format("\"{}\" must be an absolute path below / without '..'", path));
        if (!r.failed() && (v.path_type == "CharDevice" || v.path_type == "BlockDevice"))
          r.invalid(hp + ".type", "devices are not passed to instances");
        else if (!r.failed() && v.path_type != "" && v.path_type != "Directory" &&
                 v.path_type != "DirectoryOrCreate" && v.path_type != "File" &&
                 v.path_type != "FileOrCreate" && v.path_type != "Socket")
          r.invalid(hp + ".type", fmt::format("\"{}\" is not a hostPath type: \"\", Directory, "
                                              "DirectoryOrCreate, File, FileOrCreate or Socket",
                                              v.path_type));
      }
      out.push_back(std::move(v));
      continue;
    }
    if (const json::value* c = o->if_contains("persistentVolumeClaim")) {
      v.kind = "PersistentVolumeClaim";
      std::string cp = p + ".persistentVolumeClaim";
      if (const json::object* co = r.object(*c, cp, {"claimName", "readOnly"})) {
        v.source = r.string(*co, "claimName", cp).value_or("");
        v.read_only = r.boolean(*co, "readOnly", cp).value_or(false);
        if (!r.failed() && v.source.empty())
          r.invalid(cp + ".claimName",
                    "required: the claim to mount (make one with 'elafros volume create NAME')");
      }
      out.push_back(std::move(v));
      continue;
    }
    if (const json::value* e = o->if_contains("emptyDir")) {
      v.kind = "EmptyDir";
      std::string ep = p + ".emptyDir";
      if (const json::object* eo = r.object(*e, ep, {"medium", "sizeLimit"})) {
        v.medium = r.string(*eo, "medium", ep).value_or("");
        v.size_limit = r.string(*eo, "sizeLimit", ep).value_or("");
        if (!r.failed() && !v.medium.empty() && v.medium != "Memory")
          r.invalid(ep + ".medium",
                    fmt::format("\"{}\" is not a medium: \"\" (disk) or Memory", v.medium));
        if (!r.failed() && !v.size_limit.empty() && !parse_memory_bytes(v.size_limit))
          r.invalid(ep + ".sizeLimit",
                    fmt::format("\"{}\" is not a quantity (e.g. 64Mi)", v.size_limit));
      }
      out.push_back(std::move(v));
      continue;
    }
    bool secret = o->contains("secret");
    v.kind = secret ? "Secret" : "ConfigMap";
    std::string sp = p + (secret ? ".secret" : ".configMap");
    const char* name_key = secret ? "secretName" : "name";
    const json::object* so = r.object(secret ? o->at("secret") : o->at("configMap"), sp,
                                      {name_key, "items", "defaultMode", "optional"});
    if (!so) break;
    v.source = r.string(*so, name_key, sp).value_or("");
    v.optional = r.boolean(*so, "optional", sp).value_or(false);
    if (auto mode = r.integer(*so, "defaultMode", sp)) {
      if (*mode < 0 || *mode > 0777)
        r.invalid(sp + ".defaultMode", "must be a file mode from 0 to 0777 (511)");
      v.default_mode = static_cast<int>(*mode);
    }
    if (!r.failed() && v.source.empty())
      r.invalid(sp + "." + name_key, fmt::format("required: the {} to mount", v.kind));
    if (const json::array* items = r.array(*so, "items", sp)) {
      std::set<std::string> item_paths;
      for (std::size_t j = 0; j < items->size() && !r.failed(); ++j) {
        std::string ip = fmt::format("{}.items[{}]", sp, j);
        const json::object* io = r.object((*items)[j], ip, {"key", "path", "mode"});
        if (!io) break;
        Volume::Item item;
        item.key = r.string(*io, "key", ip).value_or("");
        item.path = r.string(*io, "path", ip).value_or("");
        if (auto mode = r.integer(*io, "mode", ip)) {
          if (*mode < 0 || *mode > 0777)
            r.invalid(ip + ".mode", "must be a file mode from 0 to 0777");
          item.mode = static_cast<int>(*mode);
        }
        if (!r.failed() && item.key.empty()) r.invalid(ip + ".key", "required");
        if (!r.failed() && bad_item_path(item.path))
          r.invalid(ip + ".path",
                    fmt::format("\"{}\" must be a relative path without '..'", item.path));
        if (!r.failed() && !item_paths.insert(item.path).second)
          r.invalid(ip + ".path", fmt::format("\"{}\" is given twice", item.path));
        v.items.push_back(std::move(item));
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

void check_mounts(Reader& r, const std::vector<Volume>& volumes, ContainerSpec& container,
                  const std::string& container_path) {
  for (std::size_t i = 0; i < container.volume_mounts.size() && !r.failed(); ++i) {
    auto& m = container.volume_mounts[i];
    std::string p = fmt::format("{}.volumeMounts[{}]", container_path, i);
    const Volume* v = nullptr;
    for (const auto& vol : volumes)
      if (vol.name == m.name) v = &vol;
    if (!v) {
      r.invalid(p + ".name", fmt::format("no volume is named \"{}\" in spec.volumes", m.name));
      return;
    }
    // Knative mounts secrets and config maps read-only; a read-only claim is read-only.
    if (v->kind == "Secret" || v->kind == "ConfigMap" || v->read_only) m.read_only = true;
  }
}

json::object env_var_json(const EnvVar& var) {
  json::object o{{"name", var.name}};
  if (!var.value_from) {
    o["value"] = var.value;
    return o;
  }
  const char* key = var.value_from->kind == "Secret" ? "secretKeyRef" : "configMapKeyRef";
  o["valueFrom"] = json::object{{key, key_ref_json(*var.value_from)}};
  return o;
}

json::array env_from_json(const std::vector<EnvFromSource>& sources) {
  json::array a;
  for (const auto& s : sources) {
    json::object ref{{"name", s.name}};
    if (s.optional) ref["optional"] = true;
    json::object o{{s.kind == "Secret" ? "secretRef" : "configMapRef", std::move(ref)}};
    if (!s.prefix.empty()) o["prefix"] = s.prefix;
    a.push_back(std::move(o));
  }
  return a;
}

json::array volume_mounts_json(const std::vector<VolumeMount>& mounts) {
  json::array a;
  for (const auto& m : mounts) {
    json::object o{{"name", m.name}, {"mountPath", m.mount_path}};
    if (m.read_only) o["readOnly"] = true;
    a.push_back(std::move(o));
  }
  return a;
}

json::array volumes_json(const std::vector<Volume>& volumes) {
  json::array a;
  for (const auto& v : volumes) {
    json::object o{{"name", v.name}};
    if (v.kind == "EmptyDir") {
      json::object e;
      if (!v.medium.empty()) e["medium"] = v.medium;
      if (!v.size_limit.empty()) e["sizeLimit"] = v.size_limit;
      o["emptyDir"] = std::move(e);
    } else if (v.kind == "HostPath") {
      json::object h{{"path", v.source}};
      if (!v.path_type.empty()) h["type"] = v.path_type;
      o["hostPath"] = std::move(h);
    } else if (v.kind == "PersistentVolumeClaim") {
      json::object c{{"claimName", v.source}};
      if (v.read_only) c["readOnly"] = true;
      o["persistentVolumeClaim"] = std::move(c);
    } else {
      bool secret = v.kind == "Secret";
      json::object s{{secret ? "secretName" : "name", v.source}};
      if (!v.items.empty()) {
        json::array items;
        for (const auto& i : v.items) {
          json::object io{{"key", i.key}, {"path", i.path}};
          if (i.mode >= 0) io["mode"] = i.mode;
          items.push_back(std::move(io));
        }
        s["items"] = std::move(items);
      }
      if (v.default_mode != 0644) s["defaultMode"] = v.default_mode;
      if (v.optional) s["optional"] = true;
      o[secret ? "secret" : "configMap"] = std::move(s);
    }
    a.push_back(std::move(o));
  }
  return a;
}

bool uses_config(const RevisionTemplate& t) {
  if (!t.volumes.empty()) return true;
  auto uses = [](const ContainerSpec& c) {
    if (!c.env_from.empty()) return true;
    for (const auto& e : c.env)
      if (e.value_from) return true;
    return false;
  };
  if (uses(t.container)) return true;
  for (const auto& c : t.sidecars)
    if (uses(c)) return true;
  for (const auto& c : t.init_containers)
    if (uses(c)) return true;
  return false;
}

Result<ResolvedConfig> resolve_config(const RevisionTemplate& t, const std::string& ns,
                                      const ConfigGetter& get) {
  if (!t.sidecars.empty() || !t.init_containers.empty()) {
    // Each container resolves on its own, against the template's volumes.
    RevisionTemplate lone = t;
    lone.sidecars.clear();
    lone.init_containers.clear();
    auto out = resolve_config(lone, ns, get);
    if (!out) return out;
    for (auto [list, into] : {std::pair{&t.sidecars, &out->sidecars},
                              std::pair{&t.init_containers, &out->init_containers}})
      for (const auto& c : *list) {
        lone.container = c;
        auto one = resolve_config(lone, ns, get);
        if (!one)
          return Error{one.error().code,
                       fmt::format("container \"{}\": {}", c.name, one.error().message)};
        out->has_secret_files = out->has_secret_files || one->has_secret_files;
        into->push_back(std::move(one.value()));
      }
    return out;
  }
  ResolvedConfig out;
  std::map<std::string, std::optional<std::map<std::string, std::string>>> cache;
  // The object's values, nullopt when it does not exist; an error for anything else.
  auto values =
      [&](const std::string& kind,
          const std::string& name) -> Result<std::optional<std::map<std::string, std::string>>> {
    std::string k = kind + "/" + name;
    if (auto it = cache.find(k); it != cache.end()) return it->second;
    auto o = get(kind, name);
    if (!o && o.error().code != ErrorCode::kNotFound) return o.error();
    std::optional<std::map<std::string, std::string>> v;
    if (o) v = values_of(kind, *o);
    cache[k] = v;
    return v;
  };
  auto missing = [&ns](const std::string& kind, const std::string& name) {
    return Error::precondition(fmt::format(
        "{} \"{}\" not found in namespace \"{}\"; create it ('elafros {} create {}{} -n {}') or "
        "mark the reference optional",
        lower_kind(kind), name, ns, lower_kind(kind), kind == "Secret" ? "generic " : "", name,
        ns));
  };
  for (const auto& src : t.container.env_from) {
    auto v = values(src.kind, src.name);
    if (!v) return v.error();
    if (!*v) {
      if (src.optional) continue;
      return missing(src.kind, src.name);
    }
    for (const auto& [key, value] : **v)
      if (env_name_ok(src.prefix + key)) out.env.push_back({src.prefix + key, value, std::nullopt});
  }
  for (const auto& e : t.container.env) {
    if (!e.value_from) {
      out.env.push_back({e.name, e.value, std::nullopt});
      continue;
    }
    const KeyRef& ref = *e.value_from;
    auto v = values(ref.kind, ref.name);
    if (!v) return v.error();
    if (!*v) {
      if (ref.optional) continue;
      return missing(ref.kind, ref.name);
    }
    auto it = (*v)->find(ref.key);
    if (it == (*v)->end()) {
      if (ref.optional) continue;
      return Error::precondition(fmt::format(
          "couldn't find key {} in {} {}/{} (for env {}); add it, or mark the reference "
          "optional",
          ref.key, ref.kind, ns, ref.name, e.name));
    }
    out.env.push_back({e.name, it->second, std::nullopt});
  }
  for (const auto& m : t.container.volume_mounts) {
    const Volume* vol = nullptr;
    for (const auto& v : t.volumes)
      if (v.name == m.name) vol = &v;
    if (!vol) continue;  // admission refuses it
    ResolvedVolume rv;
    rv.name = vol->name;
    rv.destination = m.mount_path;
    rv.read_only = m.read_only;
    if (vol->kind == "EmptyDir") {
      rv.empty_dir = true;
      rv.read_only = false;
      rv.memory = vol->medium == "Memory";
      rv.size_limit_bytes =
          vol->size_limit.empty()
              ? 0
              : static_cast<std::uint64_t>(parse_memory_bytes(vol->size_limit).value_or(0));
      out.volumes.push_back(std::move(rv));
      continue;
    }
    if (vol->kind == "HostPath") {
      rv.host_path = vol->source;
      rv.host_path_type = vol->path_type;
      out.volumes.push_back(std::move(rv));
      continue;
    }
    if (vol->kind == "PersistentVolumeClaim") {
      auto claim = get("PersistentVolumeClaim", vol->source);
      if (!claim && claim.error().code == ErrorCode::kNotFound)
        return Error::precondition(fmt::format(
            "persistentvolumeclaim \"{}\" not found in namespace \"{}\" (for volume {}); create "
            "it ('elafros volume create {} -n {}')",
            vol->source, ns, vol->name, vol->source, ns));
      if (!claim) return claim.error();
      rv.claim_uid = meta_string(*claim, "uid");
      rv.read_only = m.read_only || vol->read_only;
      out.volumes.push_back(std::move(rv));
      continue;
    }
    auto v = values(vol->kind, vol->source);
    if (!v) return v.error();
    if (!*v) {
      if (!vol->optional) return missing(vol->kind, vol->source);
    } else if (vol->items.empty()) {
      for (const auto& [key, value] : **v) rv.files.push_back({key, value, vol->default_mode});
    } else {
      for (const auto& item : vol->items) {
        auto it = (*v)->find(item.key);
        if (it == (*v)->end()) {
          if (vol->optional) continue;
          return Error::precondition(fmt::format(
              "couldn't find key {} in {} {}/{} (for volume {}); add it, or remove the item",
              item.key, vol->kind, ns, vol->source, vol->name));
        }
        rv.files.push_back({item.path, it->second, item.mode >= 0 ? item.mode : vol->default_mode});
      }
    }
    out.has_secret_files = out.has_secret_files || vol->kind == "Secret";
    out.volumes.push_back(std::move(rv));
  }
  return out;
}

std::optional<std::string> host_path_problem(const std::string& path,
                                             const std::vector<std::string>& prefixes) {
  for (std::string prefix : prefixes) {
    while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
    if (path == prefix || path.rfind(prefix == "/" ? prefix : prefix + "/", 0) == 0)
      return std::nullopt;
  }
  if (prefixes.empty())
    return fmt::format(
        "hostPath volumes are off: the operator allows them below the prefixes in the daemon's "
        "host-path-prefixes config key (none are set), since an instance would reach the host's "
        "files; use a persistentVolumeClaim ('elafros volume create') instead");
  std::string list;
  for (const auto& p : prefixes) list += (list.empty() ? "" : ", ") + p;
  return fmt::format(
      "\"{}\" is not below the daemon's host-path-prefixes ({}); use a path below "
      "one of them, or ask the operator to add one",
      path, list);
}

}  // namespace elafros
