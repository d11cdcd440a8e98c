#include "cli/template_changes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "cli/common.hpp"
#include "cli/output.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// kn's --probe-readiness and --probe-liveness: http:HOST:PORT:PATH, tcp:HOST:PORT (HOST empty:
// the instance) or exec:CMD,ARG,…
json::object probe_flag(const std::string& flag, const std::string& text, std::optional<int> port) {
  auto bad = [&](const std::string& why) {
    return std::runtime_error(fmt::format(
        "{} \"{}\": {}; write http::PORT:/PATH (e.g. http::8080:/healthz), tcp::PORT (PORT may "
        "be left empty for the container's port) or exec:CMD,ARG… (e.g. exec:cat,/tmp/healthy)",
        flag, text, why));
  };
  if (lower(text.substr(0, 5)) == "exec:") {
    json::array command;
    std::stringstream items(text.substr(5));
    std::string item;
    while (std::getline(items, item, ',')) command.emplace_back(item);
    if (command.empty() || command[0].get_string().empty()) throw bad("the command is missing");
    return json::object{{"exec", json::object{{"command", std::move(command)}}}};
  }
  std::vector<std::string> parts;
  std::size_t i = 0;
  // The path may hold colons: split at most three times.
  while (parts.size() < 3) {
    auto colon = text.find(':', i);
    if (colon == std::string::npos) break;
    parts.push_back(text.substr(i, colon - i));
    i = colon + 1;
  }
  parts.push_back(text.substr(i));
  std::string type = lower(parts[0]);
  if (type == "https") throw bad("only HTTP is supported, not HTTPS");
  if (type != "http" && type != "tcp") throw bad("the probe type is http, tcp or exec");
  if ((type == "http" && parts.size() != 4) || (type == "tcp" && parts.size() != 3))
    throw bad(type == "http" ? "an HTTP probe has four parts" : "a TCP probe has three parts");
  if (!parts[1].empty()) throw bad("HOST must be empty: the probe always goes to the instance");
  json::object handler;
  if (!parts[2].empty()) {
    int n = 0;
    try {
      std::size_t used = 0;
      n = std::stoi(parts[2], &used);
      if (used != parts[2].size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw bad(fmt::format("\"{}\" is not a port number", parts[2]));
    }
    if (port && n != *port) throw bad(fmt::format("the app listens on --port {}", *port));
    handler["port"] = n;
  }
  if (type == "tcp") return json::object{{"tcpSocket", std::move(handler)}};
  std::string path = parts[3].empty() ? "/" : parts[3];
  if (path.front() != '/') path.insert(0, "/");
  handler["path"] = path;
  return json::object{{"httpGet", std::move(handler)}};
}

// kn's --probe-readiness-opts and --probe-liveness-opts: InitialDelaySeconds=5,PeriodSeconds=1
// (names in any case).
void apply_probe_options(json::object& probe, const std::string& flag, const std::string& text) {
  static const char* const kNames[] = {"initialDelaySeconds", "periodSeconds", "timeoutSeconds",
                                       "failureThreshold", "successThreshold"};
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    auto [key, value] = split_assignment(item, flag.c_str());
    const char* name = nullptr;
    for (const char* n : kNames)
      if (lower(n) == lower(key)) name = n;
    if (!name)
      throw std::runtime_error(
          fmt::format("{} {}: the options are InitialDelaySeconds, PeriodSeconds, TimeoutSeconds, "
                      "FailureThreshold and SuccessThreshold",
                      flag, item));
    std::size_t used = 0;
    int n = -1;
    try {
      n = std::stoi(value, &used);
    } catch (const std::exception&) {
    }
    if (n < 0 || used != value.size())
      throw std::runtime_error(fmt::format(
          "{} {}: \"{}\" is not a whole number of seconds or times", flag, item, value));
    probe[name] = n;
  }
}

// "cm:NAME", "config-map:NAME", "secret:NAME" or "sc:NAME": the kind ("ConfigMap", "Secret")
// and the rest; "" when the prefix is none of them.
std::pair<std::string, std::string> config_ref(const std::string& text) {
  for (const auto& [prefix, kind] :
       std::vector<std::pair<std::string, std::string>>{{"cm:", "ConfigMap"},
                                                        {"config-map:", "ConfigMap"},
                                                        {"secret:", "Secret"},
                                                        {"sc:", "Secret"}})
    if (text.rfind(prefix, 0) == 0) return {kind, text.substr(prefix.size())};
  return {"", text};
}

json::array& array_in(json::object& o, const char* key) {
  return o[key].is_array() ? o[key].get_array() : o[key].emplace_array();
}

void drop_if_empty(json::object& o, const char* key) {
  if (const json::value* v = o.if_contains(key); v && v->is_array() && v->get_array().empty())
    o.erase(key);
}

// kn's generated volume name for a mount path: "/etc/db" → "etc-db".
std::string volume_name_for(const std::string& path) {
  std::string out;
  for (char c : path) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::isalnum(static_cast<unsigned char>(l)))
      out += l;
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.empty() || !std::isalpha(static_cast<unsigned char>(out[0]))) out = "v-" + out;
  return out.substr(0, 63);
}

// "pvc:CLAIM" (kn's form, or "persistentVolumeClaim:CLAIM"): the claim, or "" for another form.
std::string claim_ref(const std::string& text) {
  for (const char* prefix : {"pvc:", "persistentVolumeClaim:"})
    if (text.rfind(prefix, 0) == 0) return text.substr(std::string_view(prefix).size());
  return "";
}

json::object volume_source(const std::string& name, const std::string& text, const char* flag,
                           const std::string& whole) {
  if (std::string claim = claim_ref(text); !claim.empty())
    return json::object{{"name", name},
                        {"persistentVolumeClaim", json::object{{"claimName", claim}}}};
  auto [kind, ref] = config_ref(text);
  if (kind == "Secret")
    return json::object{{"name", name}, {"secret", json::object{{"secretName", ref}}}};
  if (kind == "ConfigMap")
    return json::object{{"name", name}, {"configMap", json::object{{"name", ref}}}};
  if (text == "emptyDir" || text == "ed")
    return json::object{{"name", name}, {"emptyDir", json::object{}}};
  throw std::runtime_error(fmt::format(
      "{} {}: the source must be cm:NAME, secret:NAME, pvc:NAME or emptyDir", flag, whole));
}

void apply_config_flags(json::object& spec, json::object& c, const TemplateChanges& t) {
  for (const auto& e : t.env_from) {
    bool remove = !e.empty() && e.back() == '-';
    auto [kind, name] = config_ref(remove ? e.substr(0, e.size() - 1) : e);
    if (kind.empty() || name.empty())
      throw std::runtime_error(
          fmt::format("--env-from {}: give cm:NAME or secret:NAME (NAME- removes it)", e));
    const char* key = kind == "Secret" ? "secretRef" : "configMapRef";
    json::array& from = array_in(c, "envFrom");
    for (auto it = from.begin(); it != from.end();)
      it = field(*it, std::string(key) + ".name") == name ? from.erase(it) : it + 1;
    if (!remove) from.push_back(json::object{{key, json::object{{"name", name}}}});
    drop_if_empty(c, "envFrom");
  }
  for (const auto& e : t.env_value_from) {
    json::array& env = array_in(c, "env");
    if (!e.empty() && e.back() == '-' && e.find('=') == std::string::npos) {
      std::string var = e.substr(0, e.size() - 1);
      for (auto it = env.begin(); it != env.end();)
        it = field(*it, "name") == var ? env.erase(it) : it + 1;
      drop_if_empty(c, "env");
      continue;
    }
    auto eq = e.find('=');
    auto [kind, rest] = config_ref(eq == std::string::npos ? "" : e.substr(eq + 1));
    auto colon = rest.find(':');
    if (eq == std::string::npos || eq == 0 || kind.empty() || colon == std::string::npos ||
        colon == 0 || colon + 1 == rest.size())
      throw std::runtime_error(fmt::format(
          "--env-value-from {}: give NAME=secret:SECRET:KEY or NAME=cm:CONFIGMAP:KEY (NAME- "
          "removes it)",
          e));
    std::string var = e.substr(0, eq);
    const char* key = kind == "Secret" ? "secretKeyRef" : "configMapKeyRef";
    json::object entry{
        {"name", var},
        {"valueFrom", json::object{{key, json::object{{"name", rest.substr(0, colon)},
                                                      {"key", rest.substr(colon + 1)}}}}}};
    bool replaced = false;
    for (auto& v : env)
      if (field(v, "name") == var) v = entry, replaced = true;
    if (!replaced) env.push_back(std::move(entry));
  }
  for (const auto& v : t.volumes) {
    json::array& volumes = array_in(spec, "volumes");
    bool remove = !v.empty() && v.back() == '-' && v.find('=') == std::string::npos;
    std::string name = remove ? v.substr(0, v.size() - 1) : v.substr(0, v.find('='));
    if (name.empty() || (!remove && v.find('=') == std::string::npos))
      throw std::runtime_error(
          fmt::format("--volume {}: give NAME=cm:CONFIGMAP, NAME=secret:SECRET, NAME=pvc:CLAIM or "
                      "NAME=emptyDir (NAME- removes it)",
                      v));
    for (auto it = volumes.begin(); it != volumes.end();)
      it = field(*it, "name") == name ? volumes.erase(it) : it + 1;
    if (!remove) volumes.push_back(volume_source(name, v.substr(v.find('=') + 1), "--volume", v));
    drop_if_empty(spec, "volumes");
  }
  for (const auto& m : t.mounts) {
    json::array& mounts = array_in(c, "volumeMounts");
    bool remove = !m.empty() && m.back() == '-' && m.find('=') == std::string::npos;
    std::string path = remove ? m.substr(0, m.size() - 1) : m.substr(0, m.find('='));
    if (path.empty() || path[0] != '/' || (!remove && m.find('=') == std::string::npos))
      throw std::runtime_error(fmt::format(
          "--mount {}: give /DIR=cm:CONFIGMAP, /DIR=secret:SECRET, /DIR=pvc:CLAIM, /DIR=ed:VOLUME "
          "or /DIR=VOLUME (/DIR- unmounts)",
          m));
    std::string generated = volume_name_for(path);
    for (auto it = mounts.begin(); it != mounts.end();)
      it = field(*it, "mountPath") == path ? mounts.erase(it) : it + 1;
    json::array& volumes = array_in(spec, "volumes");
    // A volume made for this path goes with its mount.
    for (auto it = volumes.begin(); it != volumes.end();)
      it = field(*it, "name") == generated ? volumes.erase(it) : it + 1;
    if (!remove) {
      std::string source = m.substr(m.find('=') + 1);
      auto [kind, ref] = config_ref(source);
      std::string volume = source;
      if (!kind.empty() || !claim_ref(source).empty()) {
        volume = generated;
        volumes.push_back(volume_source(volume, source, "--mount", m));
      } else if (source.rfind("ed:", 0) == 0 || source.rfind("emptyDir:", 0) == 0) {
        volume = source.substr(source.find(':') + 1);
        bool exists = false;
        for (const auto& vol : volumes) exists = exists || field(vol, "name") == volume;
        if (!exists) volumes.push_back(volume_source(volume, "emptyDir", "--mount", m));
      }
      json::object mount{{"name", volume}, {"mountPath", path}};
      if (!kind.empty()) mount["readOnly"] = true;
      mounts.push_back(std::move(mount));
    }
    drop_if_empty(c, "volumeMounts");
    drop_if_empty(spec, "volumes");
  }
}

}  // namespace

void apply_template_changes(json::object& tmpl, const TemplateChanges& t, bool creating) {
  json::object& spec =
      tmpl["spec"].is_object() ? tmpl["spec"].get_object() : tmpl["spec"].emplace_object();
  json::array& containers = spec["containers"].is_array() ? spec["containers"].get_array()
                                                          : spec["containers"].emplace_array();
  if (containers.empty()) containers.emplace_back(json::object{});
  // The serving container: the one with ports, when there are sidecars.
  json::object& c = containers[serving_container(containers)].as_object();
  if (t.image) c["image"] = absolutize_reference(*t.image);
  if (!t.env.empty()) {
    json::array env = c.contains("env") ? c["env"].as_array() : json::array{};
    for (const auto& e : t.env) {
      if (!e.empty() && e.back() == '-' && e.find('=') == std::string::npos) {
        std::string name = e.substr(0, e.size() - 1);
        bool found = false;
        for (auto it = env.begin(); it != env.end();) {
          if (field(*it, "name") == name)
            it = env.erase(it), found = true;
          else
            ++it;
        }
        if (!found)
          throw std::runtime_error(
              fmt::format("-e {}: the service has no environment variable {}", e, name));
        continue;
      }
      auto eq = e.find('=');
      if (eq == std::string::npos || eq == 0)
        throw std::runtime_error(
            fmt::format("-e \"{}\" must be NAME=VALUE (or NAME- to unset)", e));
      std::string name = e.substr(0, eq), value = e.substr(eq + 1);
      bool replaced = false;
      for (auto& var : env)
        if (field(var, "name") == name) var.as_object()["value"] = value, replaced = true;
      if (!replaced) env.push_back(json::object{{"name", name}, {"value", value}});
    }
    if (env.empty())
      c.erase("env");
    else
      c["env"] = std::move(env);
  }
  apply_config_flags(spec, c, t);
  if (t.port) c["ports"] = json::array{json::object{{"containerPort", *t.port}}};
  if (t.cmd) c["command"] = json::array{json::string(*t.cmd)};
  if (t.args) {
    json::array a;
    for (const auto& x : *t.args) a.emplace_back(x);
    c["args"] = std::move(a);
  }
  if (t.concurrency_limit) spec["containerConcurrency"] = *t.concurrency_limit;
  // --limit / --request, as kn takes them: cpu=500m,memory=128Mi; memory- removes one.
  auto resources = [&](const std::vector<std::string>& flags, const char* flag, const char* kind) {
    if (flags.empty()) return;
    json::object& res =
        c["resources"].is_object() ? c["resources"].get_object() : c["resources"].emplace_object();
    json::object& set = res[kind].is_object() ? res[kind].get_object() : res[kind].emplace_object();
    for (const auto& one : flags) {
      std::size_t i = 0;
      while (i <= one.size()) {
        auto comma = one.find(',', i);
        std::string item =
            one.substr(i, comma == std::string::npos ? std::string::npos : comma - i);
        i = comma == std::string::npos ? one.size() + 1 : comma + 1;
        if (item.empty()) continue;
        std::string name =
            item.back() == '-' ? item.substr(0, item.size() - 1) : item.substr(0, item.find('='));
        if (name != "cpu" && name != "memory" && name != "ephemeral-storage")
          throw std::runtime_error(
              fmt::format("{} {}: the resources are cpu, memory and ephemeral-storage, e.g. {} "
                          "cpu=500m,memory=128Mi",
                          flag, one, flag));
        if (item.back() == '-') {
          set.erase(name);
          continue;
        }
        auto eq = item.find('=');
        if (eq == std::string::npos || eq + 1 == item.size())
          throw std::runtime_error(fmt::format(
              "{} {}: write NAME=QUANTITY, e.g. {} memory=128Mi (or memory- to remove it)", flag,
              one, flag));
        set[name] = item.substr(eq + 1);
      }
    }
    if (set.empty()) res.erase(kind);
    if (res.empty()) c.erase("resources");
  };
  resources(t.limits, "--limit", "limits");
  resources(t.requests, "--request", "requests");
  if (t.pull_policy) c["imagePullPolicy"] = pull_policy_flag(*t.pull_policy);
  for (auto [kind, key, text, opts] :
       {std::tuple{"readiness", "readinessProbe", &t.probe_readiness, &t.probe_readiness_opts},
        std::tuple{"liveness", "livenessProbe", &t.probe_liveness, &t.probe_liveness_opts}}) {
    std::string flag = fmt::format("--probe-{}", kind);
    if (*text) c[key] = probe_flag(flag, **text, t.port);
    if (!*opts) continue;
    json::value* probe = c.if_contains(key);
    if (!probe || !probe->is_object())
      throw std::runtime_error(
          fmt::format("{}-opts sets options of a {} probe, and there is none: give {} too, e.g. {} "
                      "http::8080:/healthz",
                      flag, kind, flag, flag));
    apply_probe_options(probe->get_object(), flag + "-opts", **opts);
  }
  // A revision name belongs to one revision: an update without --revision-name gets a new one.
  json::object& md = tmpl["metadata"].is_object() ? tmpl["metadata"].get_object()
                                                  : tmpl["metadata"].emplace_object();
  auto map_at = [&md](const char* key) -> json::object& {
    return md[key].is_object() ? md[key].get_object() : md[key].emplace_object();
  };
  if (!t.scale_annotations.empty() || !t.annotations.empty()) {
    json::object& ann = map_at("annotations");
    for (const auto& [k, v] : t.scale_annotations) ann[k] = v;
    apply_map_changes(ann, t.annotations, "--annotation");
    if (ann.empty()) md.erase("annotations");
  }
  if (!t.labels.empty()) {
    apply_map_changes(map_at("labels"), t.labels, "--label");
    if (md["labels"].as_object().empty()) md.erase("labels");
  }
  if (t.revision_name)
    md["name"] = *t.revision_name;
  else if (!creating)
    md.erase("name");
  if (md.empty()) tmpl.erase("metadata");
}

void apply_metadata_changes(json::object& object, const MetadataChanges& m) {
  json::value& mdv = object["metadata"];
  if (!mdv.is_object()) mdv.emplace_object();
  json::object& md = mdv.get_object();
  for (auto [key, changes, flag] : {std::tuple{"annotations", &m.annotations, "--annotation"},
                                    std::tuple{"labels", &m.labels, "--label"}}) {
    if (changes->empty()) continue;
    json::value& map = md[key];
    if (!map.is_object()) map.emplace_object();
    apply_map_changes(map.get_object(), *changes, flag);
    if (map.get_object().empty()) md.erase(key);
  }
}

void apply_map_changes(json::object& map, const std::vector<std::string>& changes,
                       const char* flag) {
  for (const auto& c : changes) {
    if (!c.empty() && c.back() == '-' && c.find('=') == std::string::npos) {
      map.erase(c.substr(0, c.size() - 1));  // unsetting what is not set is no error, as in kn
      continue;
    }
    auto eq = c.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::runtime_error(
          fmt::format("{} \"{}\" must be KEY=VALUE (or KEY- to remove it)", flag, c));
    map[c.substr(0, eq)] = c.substr(eq + 1);
  }
}

std::vector<std::string> env_file_entries(const std::string& text, const std::string& file) {
  std::vector<std::string> out;
  std::stringstream lines(text);
  std::string line;
  for (int n = 1; std::getline(lines, line); ++n) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    std::size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    line.erase(0, start);
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::runtime_error(fmt::format(
          "--env-file {} line {}: \"{}\" is not NAME=VALUE (blank lines and # comments are "
          "skipped)",
          file, n, line));
    out.push_back(line);
  }
  return out;
}

std::string pull_policy_flag(const std::string& text) {
  for (const char* p : {"Always", "Never", "IfNotPresent"})
    if (lower(p) == lower(text)) return p;
  throw std::runtime_error(fmt::format(
      "--pull-policy \"{}\": the pull policies are Always, Never and IfNotPresent", text));
}

json::array apply_traffic_changes(const json::array& current_in, const TrafficChanges& changes) {
  json::array current = current_in;
  if (current.empty()) current.push_back(json::object{{"latestRevision", true}, {"percent", 100}});
  auto key_of = [](const json::value& t) {
    return field(t, "latestRevision") == "true" ? std::string("@latest") : field(t, "revisionName");
  };
  auto target_for = [](const std::string& key) {
    return key == "@latest" ? json::object{{"latestRevision", true}}
                            : json::object{{"revisionName", key}};
  };
  for (const auto& tag : changes.untags) {
    bool found = false;
    for (auto it = current.begin(); it != current.end();) {
      if (field(*it, "tag") == tag) {
        found = true;
        it->as_object().erase("tag");
        if (field(*it, "percent") == "0" || field(*it, "percent").empty()) {
          it = current.erase(it);
          continue;
        }
      }
      ++it;
    }
    if (!found)
      throw std::runtime_error(fmt::format("--untag {}: the service has no such tag", tag));
  }
  if (!changes.traffic.empty()) {
    // The new split replaces every percent; tags stay, on targets of their own if need be.
    json::array next;
    std::vector<std::string> seen;
    int sum = 0;
    for (const auto& item : changes.traffic) {
      std::stringstream parts(item);
      std::string one;
      while (std::getline(parts, one, ',')) {
        auto [key, pct] = split_assignment(one, "--traffic");
        int percent = 0;
        try {
          std::size_t used = 0;
          percent = std::stoi(pct, &used);
          if (used != pct.size()) throw std::invalid_argument("");
        } catch (const std::exception&) {
          throw std::runtime_error(
              fmt::format("--traffic {}: \"{}\" is not a whole percent", one, pct));
        }
        if (percent < 0 || percent > 100)
          throw std::runtime_error(
              fmt::format("--traffic {}: percents are between 0 and 100", one));
        json::object target;
        bool by_tag = false;
        for (const auto& t : current)
          if (!field(t, "tag").empty() && field(t, "tag") == key) {
            target = t.as_object();
            by_tag = true;
          }
        if (!by_tag) target = target_for(key);
        if (std::find(seen.begin(), seen.end(), key) != seen.end())
          throw std::runtime_error(fmt::format("--traffic names {} twice", key));
        seen.push_back(key);
        target["percent"] = percent;
        sum += percent;
        next.push_back(std::move(target));
      }
    }
    if (sum != 100)
      throw std::runtime_error(
          fmt::format("--traffic percents must sum to 100 (they sum to {})", sum));
    for (const auto& t : current) {
      std::string tag = field(t, "tag");
      if (tag.empty() || std::find(seen.begin(), seen.end(), tag) != seen.end()) continue;
      // An untouched tag keeps its revision but not its percent; drop an untagged twin with 0%.
      json::object kept = t.as_object();
      kept["percent"] = 0;
      next.push_back(std::move(kept));
    }
    current = std::move(next);
  }
  for (const auto& item : changes.tags) {
    auto [key, tag] = split_assignment(item, "--tag");
    for (const auto& t : current)
      if (field(t, "tag") == tag)
        throw std::runtime_error(
            fmt::format("--tag {}: tag \"{}\" is already used; --untag {} first", item, tag, tag));
    bool placed = false;
    for (auto& t : current)
      if (!placed && key_of(t) == key && field(t, "tag").empty()) {
        t.as_object()["tag"] = tag;
        placed = true;
      }
    if (!placed) {
      json::object target = target_for(key);
      target["percent"] = 0;
      target["tag"] = tag;
      current.push_back(std::move(target));
    }
  }
  return current;
}

json::value exportable(const json::value& service) {
  json::object out{{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Service"}};
  json::object md{{"name", service.at("metadata").at("name")},
                  {"namespace", service.at("metadata").at("namespace")}};
  for (const char* k : {"labels", "annotations"})
    if (const auto* v = service.at("metadata").as_object().if_contains(k)) md[k] = *v;
  out["metadata"] = std::move(md);
  out["spec"] = service.at("spec");
  return out;
}

}  // namespace elafros::cli
