#include "cli/commands.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "cli/output.hpp"
#include "cli/yaml_json.hpp"
#include "elafros/naming.hpp"
#include "elafros/registry_reference.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros::cli {
namespace {

// Shows a pull's progress events: per-blob lines redrawn in place on a terminal, one quiet line
// per blob otherwise (logs, CI).
class PullDisplay {
 public:
  explicit PullDisplay(bool enabled) : enabled_(enabled), tty_(::isatty(STDOUT_FILENO) == 1) {}

  void update(const json::value& p) {
    if (!enabled_) return;
    std::string phase = field(p, "phase"), digest = field(p, "digest"), kind = field(p, "kind");
    std::int64_t current = p.at("current").to_number<std::int64_t>();
    std::int64_t total = p.at("total").to_number<std::int64_t>();
    std::string short_digest = digest.substr(0, std::min<std::size_t>(digest.size(), 19));
    if (phase == "resolved") {
      std::cout << fmt::format("  Resolved to manifest {}\n", digest);
      return;
    }
    std::string status;
    if (phase == "exists") {
      status = "already stored";
    } else if (phase == "done") {
      status = fmt::format("downloaded {}", human_size(total));
    } else {
      int width = 24;
      int filled = total > 0 ? static_cast<int>(width * current / total) : 0;
      status = fmt::format("[{}{}] {} / {}", std::string(static_cast<std::size_t>(filled), '='),
                           std::string(static_cast<std::size_t>(width - filled), ' '),
                           human_size(current), human_size(total));
    }
    std::string line = fmt::format("  {} {:<6} {}", short_digest, kind, status);
    if (!tty_) {
      // Quiet: the start and the end of each blob.
      if (phase == "downloading" && current == 0)
        std::cout << fmt::format("  {} {:<6} downloading {}\n", short_digest, kind,
                                 human_size(total));
      else if (phase != "downloading")
        std::cout << line << "\n";
      std::cout.flush();
      return;
    }
    auto it = std::find_if(lines_.begin(), lines_.end(),
                           [&](const auto& l) { return l.first == digest; });
    if (it == lines_.end())
      lines_.emplace_back(digest, line);
    else
      it->second = line;
    if (drawn_ > 0) std::cout << fmt::format("\x1b[{}A", drawn_);
    for (const auto& l : lines_) std::cout << "\r\x1b[2K" << l.second << "\n";
    drawn_ = static_cast<int>(lines_.size());
    std::cout.flush();
  }

 private:
  bool enabled_;
  bool tty_;
  std::vector<std::pair<std::string, std::string>> lines_;
  int drawn_ = 0;
};

// Imports or pulls through the streaming endpoint, showing progress; returns the image.
json::value pull_image(const ApiClient& api, const Globals& g, const std::string& reference,
                       const std::string& name) {
  json::value body = json::object{{"reference", reference}};
  if (!name.empty()) body.as_object()["name"] = name;
  PullDisplay display(g.output == "table");
  json::value image, error;
  int status = api.stream("POST", "/api/v1/images/pull", body, [&](const json::value& line) {
    const auto* o = line.if_object();
    if (!o) return;
    if (const auto* p = o->if_contains("progress")) display.update(*p);
    if (const auto* i = o->if_contains("image")) image = *i;
    if (field(line, "kind") == "Status") error = line;
  });
  if (!error.is_null()) throw std::runtime_error(field(error, "message"));
  if (image.is_null())
    throw std::runtime_error(fmt::format("elafrosd answered {} without an image", status));
  return image;
}

bool is_transport(const std::string& ref) {
  for (const char* t :
       {"oci:", "oci-archive:", "docker-archive:", "docker://", "dir:", "containers-storage:"})
    if (ref.rfind(t, 0) == 0) return true;
  return false;
}

// Before a service uses a registry image that is not stored yet, pull it here, where the user
// sees the progress; the daemon then finds it by name.
void pull_if_missing(const ApiClient& api, const Globals& g, const std::string& image) {
  if (is_transport(image)) return;
  auto ref = parse_registry_reference(image);
  if (!ref) return;  // the daemon says what is wrong with it
  json::value list = api.call("GET", "/api/v1/images");
  for (const auto& i : list.at("items").as_array())
    if (field(i, "name") == image || field(i, "name") == ref->str()) return;
  if (g.output == "table") std::cout << fmt::format("Pulling {}:\n", ref->str());
  json::value pulled;
  try {
    pulled = pull_image(api, g, image, "");
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "ImagePullFailed: image \"{}\" is not in the image store, and pulling it failed: {}", image,
        e.what()));
  }
  if (g.output == "table") std::cout << fmt::format("  Pulled {}\n\n", field(pulled, "digest"));
}

const json::object* condition(const json::value& obj, std::string_view type) {
  const auto* o = obj.if_object();
  const auto* st = o ? o->if_contains("status") : nullptr;
  const auto* cs = st && st->is_object() ? st->get_object().if_contains("conditions") : nullptr;
  if (!cs || !cs->is_array()) return nullptr;
  for (const auto& c : cs->get_array())
    if (c.is_object() && field(c, "type") == type) return &c.get_object();
  return nullptr;
}

std::string label(const json::value& obj, std::string_view key) {
  const auto* o = obj.if_object();
  const auto* md = o ? o->if_contains("metadata") : nullptr;
  const auto* labels = md && md->is_object() ? md->get_object().if_contains("labels") : nullptr;
  const auto* v = labels && labels->is_object() ? labels->get_object().if_contains(key) : nullptr;
  return v && v->is_string() ? std::string(v->get_string()) : "";
}

std::string condition_status(const json::value& obj, std::string_view type) {
  const json::object* c = condition(obj, type);
  return c ? field(*c, "status") : "Unknown";
}

std::string condition_summary(const json::value& obj) {
  int ok = 0, total = 0;
  for (const char* type :
       {"ConfigurationsReady", "Ready", "RoutesReady", "ContainerHealthy", "ResourcesAvailable"}) {
    if (const json::object* c = condition(obj, type)) {
      ++total;
      ok += field(*c, "status") == "True";
    }
  }
  return fmt::format("{} OK / {}", ok, total);
}

json::array array_at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (auto key : path) {
    const auto* o = cur->if_object();
    if (!o || !(cur = o->if_contains(key))) return {};
  }
  return cur->is_array() ? cur->get_array() : json::array{};
}

// Polls the service until Ready is True or False, or the timeout passes.
int wait_ready(const ApiClient& api, const Globals& g, const std::string& name,
               const WaitOptions& w, const std::string& done_message, const char* failure_hint) {
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(w.timeout_seconds);
  std::string last_message;
  for (;;) {
    json::value s = api.call("GET", services_path(g) + "/" + name);
    const json::object* ready = condition(s, "Ready");
    std::string status = ready ? field(*ready, "status") : "Unknown";
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status == "True") {
      std::cout << fmt::format("  {:.3f}s Ready to serve.\n\n", elapsed);
      std::cout << fmt::format(fmt::runtime(done_message),
                               fmt::arg("latest", field(s, "status.latestReadyRevisionName")))
                << "\n"
                << field(s, "status.url") << "\n";
      return 0;
    }
    if (status == "False") {
      // The revision's own reason (ExitCode, OOMKilled, ReadinessProbeFailed, …) says more than
      // the service's RevisionFailed.
      std::string reason = field(*ready, "reason"), message = field(*ready, "message");
      std::string revision = field(s, "status.latestCreatedRevisionName");
      if (!revision.empty()) {
        auto r = api.request("GET", revisions_path(g) + "/" + revision);
        if (r.status == 200)
          if (const json::object* rr = condition(r.body, "Ready");
              rr && field(*rr, "status") == "False") {
            reason = field(*rr, "reason");
            message = fmt::format("revision '{}': {}", revision, field(*rr, "message"));
          }
      }
      std::cerr << fmt::format("Error: service '{}' is not ready after {:.3f}s: {}: {}\n{}\n", name,
                               elapsed, reason, message, failure_hint);
      return 1;
    }
    std::string message = ready ? field(*ready, "message") : "";
    if (!message.empty() && message != last_message) {
      std::cout << fmt::format("  {:.3f}s {}\n", elapsed, message);
      last_message = message;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::cerr << fmt::format(
          "Error: service '{}' did not become ready within {} s (--wait-timeout); "
          "'elafros service describe {}' shows its state\n",
          name, w.timeout_seconds, name);
      return 1;
    }
    // Poll tightly at first (a local start takes tens of milliseconds), then back off.
    std::this_thread::sleep_for(elapsed < 2.0 ? std::chrono::milliseconds(5)
                                              : std::chrono::milliseconds(100));
  }
}

std::pair<std::string, std::string> split_assignment(const std::string& text, const char* flag) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw std::runtime_error(fmt::format("{} \"{}\" must be KEY=VALUE", flag, text));
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::string traffic_summary(const json::value& s) {
  std::string out;
  for (const auto& t : array_at(s, {"status", "traffic"})) {
    out += fmt::format("  {:>4}% {}{}{}\n", field(t, "percent"),
                       field(t, "latestRevision") == "true"
                           ? "@latest (" + field(t, "revisionName") + ")"
                           : field(t, "revisionName"),
                       field(t, "tag").empty() ? "" : " #" + field(t, "tag"),
                       field(t, "url").empty() ? "" : " " + field(t, "url"));
  }
  return out;
}

std::string read_input(const std::string& file) {
  if (file == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(file);
  if (!in)
    throw std::runtime_error(fmt::format("cannot read {}: no such file or not readable", file));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void absolutize_images(json::value& service) {
  auto* o = service.if_object();
  if (!o) return;
  if (auto* spec = o->if_contains("spec"); spec && spec->is_object())
    if (auto* tmpl = spec->get_object().if_contains("template"); tmpl && tmpl->is_object())
      if (auto* tspec = tmpl->get_object().if_contains("spec"); tspec && tspec->is_object())
        if (auto* cs = tspec->get_object().if_contains("containers"); cs && cs->is_array())
          for (auto& c : cs->get_array())
            if (auto* image = c.is_object() ? c.get_object().if_contains("image") : nullptr;
                image && image->is_string())
              *image = absolutize_reference(std::string(image->get_string()));
}

}  // namespace

// Applies --image, -e, --port, --cmd, --arg, --revision-name to spec.template.
void apply_template_changes(json::object& tmpl, const TemplateChanges& t, bool creating) {
  json::object& spec =
      tmpl["spec"].is_object() ? tmpl["spec"].get_object() : tmpl["spec"].emplace_object();
  json::array& containers = spec["containers"].is_array() ? spec["containers"].get_array()
                                                          : spec["containers"].emplace_array();
  if (containers.empty()) containers.emplace_back(json::object{});
  json::object& c = containers[0].as_object();
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
        if (name != "cpu" && name != "memory")
          throw std::runtime_error(
              fmt::format("{} {}: the resources are cpu and memory, e.g. {} cpu=500m,memory=128Mi",
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
  // A revision name belongs to one revision: an update without --revision-name gets a new one.
  json::object& md = tmpl["metadata"].is_object() ? tmpl["metadata"].get_object()
                                                  : tmpl["metadata"].emplace_object();
  if (!t.annotations.empty()) {
    json::object& ann = md["annotations"].is_object() ? md["annotations"].get_object()
                                                      : md["annotations"].emplace_object();
    for (const auto& [k, v] : t.annotations) ann[k] = v;
  }
  if (t.revision_name)
    md["name"] = *t.revision_name;
  else if (!creating)
    md.erase("name");
  if (md.empty()) tmpl.erase("metadata");
}

std::string services_path(const Globals& g) {
  return fmt::format("/apis/serving.knative.dev/v1/namespaces/{}/services", g.ns);
}

std::string revisions_path(const Globals& g) {
  return fmt::format("/apis/serving.knative.dev/v1/namespaces/{}/revisions", g.ns);
}

std::string absolutize_reference(const std::string& ref) {
  for (const std::string prefix : {"oci:", "oci-archive:", "docker-archive:"}) {
    if (ref.rfind(prefix, 0) != 0) continue;
    auto [path, tag] =
        split_path_and_tag(std::string_view(ref).substr(prefix.size()), prefix != "oci:");
    if (path.empty() || path.front() == '/') return ref;
    return prefix + fs::absolute(path).lexically_normal().string() + (tag.empty() ? "" : ":" + tag);
  }
  return ref;
}

void print(const Globals& g, const json::value& v) {
  if (g.output == "json")
    std::cout << to_pretty_json(v);
  else
    std::cout << to_yaml(v);
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

int service_create(const ApiClient& api, const Globals& g, const std::string& name,
                   const TemplateChanges& t, const WaitOptions& w) {
  json::object tmpl;
  apply_template_changes(tmpl, t, true);
  json::value body = json::object{{"apiVersion", "serving.knative.dev/v1"},
                                  {"kind", "Service"},
                                  {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                                  {"spec", json::object{{"template", std::move(tmpl)}}}};
  std::cout << fmt::format("Creating service '{}' in namespace '{}':\n\n", name, g.ns);
  if (t.image) pull_if_missing(api, g, absolutize_reference(*t.image));
  json::value created = api.call("POST", services_path(g), &body);
  if (w.no_wait) {
    std::cout << fmt::format("Service '{}' created in namespace '{}'.\n{}\n", name, g.ns,
                             field(created, "status.url"));
    return 0;
  }
  return wait_ready(
      api, g, name, w,
      fmt::format("Service '{}' created to latest revision '{{latest}}' is available at URL:",
                  name),
      "The service stays and keeps retrying until deleted; 'elafros service describe' shows why.");
}

int service_update(const ApiClient& api, const Globals& g, const std::string& name,
                   const TemplateChanges& t, const TrafficChanges& traffic, const WaitOptions& w) {
  json::value current = api.call("GET", services_path(g) + "/" + name);
  json::value body = exportable(current);
  json::object& spec = body.as_object()["spec"].as_object();
  bool template_flags = t.any();
  if (template_flags) apply_template_changes(spec["template"].as_object(), t, false);
  if (!traffic.empty())
    spec["traffic"] = apply_traffic_changes(array_at(current, {"spec", "traffic"}), traffic);
  if (!template_flags && traffic.empty())
    throw std::runtime_error(
        "nothing to update: give --image, -e, --port, --cmd, --arg, --traffic, --tag or --untag");
  std::cout << fmt::format("Updating service '{}' in namespace '{}':\n\n", name, g.ns);
  if (t.image) pull_if_missing(api, g, absolutize_reference(*t.image));
  json::value updated = api.call("PUT", services_path(g) + "/" + name, &body);
  bool unchanged = field(updated, "metadata.generation") == field(current, "metadata.generation");
  if (w.no_wait) {
    std::cout << fmt::format("Service '{}' updated in namespace '{}'.\n", name, g.ns);
    return 0;
  }
  int rc = wait_ready(
      api, g, name, w,
      fmt::format("Service '{}' {} latest revision '{{latest}}' is available at URL:", name,
                  unchanged ? "with (unchanged)" : "updated to"),
      "The previous revisions keep serving; fix the change and update again.");
  if (rc == 0 && !traffic.empty()) {
    json::value s = api.call("GET", services_path(g) + "/" + name);
    std::cout << "Traffic:\n" << traffic_summary(s);
  }
  return rc;
}

int service_rollback(const ApiClient& api, const Globals& g, const std::string& name,
                     const std::string& to, const WaitOptions& w) {
  json::value s = api.call("GET", services_path(g) + "/" + name);
  json::value revs = api.call("GET", revisions_path(g) + "?labelSelector=serving.knative.dev%2Fservice%3D" + name);
  const json::array items = array_at(revs, {"items"});
  auto ready = [](const json::value& r) { return condition_status(r, "Ready") == "True"; };
  std::string target;
  if (!to.empty()) {
    const json::value* found = nullptr;
    for (const auto& r : items)
      if (field(r, "metadata.name") == to) found = &r;
    if (!found)
      throw std::runtime_error(
          fmt::format("service '{}' has no revision '{}'; 'elafros revision list -s {}' shows them",
                      name, to, name));
    if (!ready(*found))
      throw std::runtime_error(fmt::format(
          "revision '{}' has never become Ready; roll back to a revision that served", to));
    target = to;
  } else {
    // The revision serving most of the traffic now, and the newest Ready one created before it.
    std::string serving;
    int most = -1;
    for (const auto& t : array_at(s, {"status", "traffic"})) {
      int p = static_cast<int>(t.at("percent").to_number<std::int64_t>());
      if (p > most) most = p, serving = field(t, "revisionName");
    }
    if (serving.empty()) serving = field(s, "status.latestCreatedRevisionName");
    for (const auto& r : items) {
      if (field(r, "metadata.name") == serving) break;
      if (ready(r)) target = field(r, "metadata.name");
    }
    if (target.empty())
      throw std::runtime_error(fmt::format(
          "service '{}' has no Ready revision older than '{}' to roll back to", name, serving));
  }
  json::value body = exportable(s);
  json::array traffic{json::object{{"revisionName", target}, {"percent", 100}}};
  for (const auto& t : array_at(s, {"spec", "traffic"}))
    if (!field(t, "tag").empty()) {
      json::object kept = t.as_object();
      kept["percent"] = 0;
      traffic.push_back(std::move(kept));
    }
  body.as_object()["spec"].as_object()["traffic"] = std::move(traffic);
  std::cout << fmt::format("Rolling back service '{}' to revision '{}':\n\n", name, target);
  api.call("PUT", services_path(g) + "/" + name, &body);
  if (w.no_wait) return 0;
  return wait_ready(
      api, g, name, w,
      fmt::format("Service '{}' rolled back: 100% of its traffic goes to revision '{}' at URL:",
                  name, target),
      "The previous traffic keeps serving.");
}

int service_list(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", services_path(g));
  if (g.output != "table") return print(g, v), 0;
  const auto& items = v.at("items").as_array();
  if (items.empty()) {
    std::cout << fmt::format("No services found in namespace '{}'.\n", g.ns);
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"NAME", "URL", "LATEST", "AGE", "CONDITIONS", "READY", "REASON"}};
  for (const auto& s : items) {
    const json::object* ready = condition(s, "Ready");
    rows.push_back({field(s, "metadata.name"), field(s, "status.url"),
                    field(s, "status.latestReadyRevisionName"),
                    age(field(s, "metadata.creationTimestamp")), condition_summary(s),
                    ready ? field(*ready, "status") : "Unknown",
                    ready ? field(*ready, "reason") : ""});
  }
  std::cout << table(rows);
  return 0;
}

int service_describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value s = api.call("GET", services_path(g) + "/" + name);
  if (g.output != "table") return print(g, s), 0;
  json::value revs = api.call("GET", revisions_path(g) + "?labelSelector=serving.knative.dev%2Fservice%3D" + name);
  std::cout << fmt::format("Name:       {}\nNamespace:  {}\nAge:        {}\nURL:        {}\n", name,
                           field(s, "metadata.namespace"),
                           age(field(s, "metadata.creationTimestamp")), field(s, "status.url"));
  std::map<std::string, std::vector<json::value>> traffic_of;
  for (const auto& t : array_at(s, {"status", "traffic"}))
    traffic_of[field(t, "revisionName")].push_back(t);
  std::cout << "\nRevisions:\n";
  for (const auto& r : array_at(revs, {"items"})) {
    std::string rname = field(r, "metadata.name");
    std::string head;
    int percent = 0;
    std::string tags;
    bool latest = false;
    auto routed = traffic_of.find(rname);
    for (const auto& t : routed != traffic_of.end() ? routed->second : std::vector<json::value>{}) {
      percent += static_cast<int>(t.at("percent").to_number<std::int64_t>());
      if (!field(t, "tag").empty()) tags += " #" + field(t, "tag");
      latest = latest || field(t, "latestRevision") == "true";
    }
    std::cout << fmt::format("  {:>4}  {}{}{} [{}] ({})\n",
                             routed != traffic_of.end() ? fmt::format("{}%", percent) : "",
                             latest ? "@latest (" + rname + ")" : rname, tags, "",
                             field(r, "metadata.generation"),
                             age(field(r, "metadata.creationTimestamp")));
    auto containers = array_at(r, {"spec", "containers"});
    auto statuses = array_at(r, {"status", "containerStatuses"});
    std::cout << fmt::format("        Image:     {} (pinned to {})\n",
                             containers.empty() ? "" : field(containers[0], "image"),
                             statuses.empty() ? "" : field(statuses[0], "imageDigest"));
    std::cout << fmt::format(
        "        Instances: {} ready of {} desired{}\n", field(r, "status.actualReplicas"),
        field(r, "status.desiredReplicas"),
        field(r, "status.autoscalerPanic") == "true" ? " (autoscaler in panic mode)" : "");
    if (field(r, "status.restartCount") != "" && field(r, "status.restartCount") != "0")
      std::cout << fmt::format("        Restarts:  {}\n", field(r, "status.restartCount"));
    if (routed != traffic_of.end() && !field(r, "status.activity.windowSeconds").empty()) {
      auto num = [&](const char* path) {
        std::string v = field(r, path);
        return v.empty() ? 0.0 : std::stod(v);
      };
      std::cout << fmt::format(
          "        Traffic:   {:.2f} req/s over the last {:.1f} s, p50 {:.1f} ms, p99 {:.1f} ms, "
          "{:.1f}% errors\n",
          num("status.activity.requestsPerSecond"), num("status.activity.windowSeconds"),
          num("status.activity.p50LatencyMs"), num("status.activity.p99LatencyMs"),
          100 * num("status.activity.errorRate"));
      std::cout << fmt::format(
          "        Cold starts: {:.0f} in that window{}\n", num("status.activity.coldStarts"),
          num("status.activity.coldStarts") > 0
              ? fmt::format(", p50 {:.1f} ms", num("status.activity.coldStartP50Ms"))
              : "");
    }
    // Every revision's failure, routed or not, with its reason.
    const json::object* ready = condition(r, "Ready");
    if (ready && field(*ready, "status") != "True" && !field(*ready, "reason").empty())
      std::cout << fmt::format("        Ready:     {} {}: {}\n", field(*ready, "status"),
                               field(*ready, "reason"), field(*ready, "message"));
  }
  std::cout << "\nConditions:\n";
  std::vector<std::vector<std::string>> rows{{"  OK", "TYPE", "AGE", "REASON"}};
  for (const auto& c : array_at(s, {"status", "conditions"})) {
    std::string st = field(c, "status");
    rows.push_back(
        {st == "True"    ? "  ++"
         : st == "False" ? "  !!"
                         : "  ??",
         field(c, "type"), age(field(c, "lastTransitionTime")),
         field(c, "reason") + (field(c, "message").empty() ? "" : " " + field(c, "message"))});
  }
  std::cout << table(rows);
  return 0;
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

int service_export(const ApiClient& api, const Globals& g, const std::string& name,
                   bool with_revisions) {
  json::value s = api.call("GET", services_path(g) + "/" + name);
  json::value current = exportable(s);
  if (!with_revisions) return print(g, current), 0;
  // Replay: one Service per revision, oldest first, each naming its revision, so that applying
  // them in order recreates the revisions; the last one carries the traffic.
  json::value revs = api.call("GET", revisions_path(g) + "?labelSelector=serving.knative.dev%2Fservice%3D" + name);
  json::array docs;
  for (const auto& r : array_at(revs, {"items"})) {
    json::value doc = current;
    json::object tmpl{{"metadata", json::object{{"name", r.at("metadata").at("name")}}},
                      {"spec", r.at("spec")}};
    if (const auto* ann = r.at("metadata").as_object().if_contains("annotations"))
      tmpl["metadata"].as_object()["annotations"] = *ann;
    doc.as_object()["spec"].as_object()["template"] = std::move(tmpl);
    doc.as_object()["spec"].as_object()["traffic"] =
        json::array{json::object{{"latestRevision", true}, {"percent", 100}}};
    docs.push_back(std::move(doc));
  }
  if (!docs.empty())
    docs.back().as_object()["spec"].as_object()["traffic"] = s.at("spec").at("traffic");
  if (g.output == "json")
    return std::cout << to_pretty_json(
               json::object{{"apiVersion", "v1"}, {"kind", "List"}, {"items", docs}}),
           0;
  for (std::size_t i = 0; i < docs.size(); ++i) std::cout << (i ? "---\n" : "") << to_yaml(docs[i]);
  return 0;
}

// Watches one object until it is gone (kubectl delete --wait does the same).
void wait_deleted(const ApiClient& api, const std::string& collection, const std::string& name,
                  const json::value& marked) {
  std::string target = fmt::format(
      "{}?watch=true&fieldSelector=metadata.name%3D{}&resourceVersion={}&timeoutSeconds=600",
      collection, name, field(marked, "metadata.resourceVersion"));
  bool gone = false;
  std::string error;
  api.get_until(target, [&](const json::value& event) {
    if (field(event, "kind") == "Status") error = field(event, "message");
    if (field(event, "type") == "DELETED") gone = true;
    return !gone;
  });
  if (!error.empty()) throw std::runtime_error(error);
  if (!gone)
    throw std::runtime_error(fmt::format(
        "{} is still being deleted after 10 minutes; 'elafros status' and the daemon's log say why",
        name));
}

int service_delete(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value marked = api.call("DELETE", services_path(g) + "/" + name);
  // Deletion finishes once the service's instances are gone; wait for it, as kn does.
  if (field(marked, "kind") == "Service") wait_deleted(api, services_path(g), name, marked);
  std::cout << fmt::format("Service '{}' successfully deleted in namespace '{}'.\n", name, g.ns);
  return 0;
}

int revision_list(const ApiClient& api, const Globals& g, const std::string& service) {
  json::value revs =
      api.call("GET", revisions_path(g) + (service.empty() ? "" : "?labelSelector=serving.knative.dev%2Fservice%3D" + service));
  if (g.output != "table") return print(g, revs), 0;
  json::value services = api.call("GET", services_path(g));
  std::map<std::string, std::pair<int, std::string>> routed;  // revision → percent, tags
  for (const auto& s : array_at(services, {"items"}))
    for (const auto& t : array_at(s, {"status", "traffic"})) {
      auto& [percent, tags] = routed[field(t, "revisionName")];
      percent += static_cast<int>(t.at("percent").to_number<std::int64_t>());
      if (!field(t, "tag").empty()) tags += (tags.empty() ? "" : ",") + field(t, "tag");
    }
  const auto items = array_at(revs, {"items"});
  if (items.empty()) {
    std::cout << fmt::format("No revisions found in namespace '{}'.\n", g.ns);
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"NAME", "SERVICE", "TRAFFIC", "TAGS", "GENERATION", "AGE", "CONDITIONS", "READY", "REASON"}};
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    const auto& r = *it;
    std::string rname = field(r, "metadata.name");
    auto route = routed.find(rname);
    const json::object* ready = condition(r, "Ready");
    rows.push_back({rname, label(r, "serving.knative.dev/service"),
                    route != routed.end() ? fmt::format("{}%", route->second.first) : "",
                    route != routed.end() ? route->second.second : "",
                    field(r, "metadata.generation"), age(field(r, "metadata.creationTimestamp")),
                    condition_summary(r), ready ? field(*ready, "status") : "Unknown",
                    ready ? field(*ready, "reason") : ""});
  }
  std::cout << table(rows);
  return 0;
}

int revision_describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value r = api.call("GET", revisions_path(g) + "/" + name);
  if (g.output != "table") return print(g, r), 0;
  auto containers = array_at(r, {"spec", "containers"});
  json::value c = containers.empty() ? json::value(json::object{}) : containers[0];
  std::cout << fmt::format(
      "Name:         {}\nNamespace:    {}\nService:      {}\nAge:          {}\n", name,
      field(r, "metadata.namespace"), label(r, "serving.knative.dev/service"),
      age(field(r, "metadata.creationTimestamp")));
  auto statuses = array_at(r, {"status", "containerStatuses"});
  std::cout << fmt::format("Image:        {} (pinned to {})\n", field(c, "image"),
                           statuses.empty() ? "" : field(statuses[0], "imageDigest"));
  for (const auto& e : array_at(c, {"env"}))
    std::cout << fmt::format("Env:          {}={}\n", field(e, "name"), field(e, "value"));
  std::cout << fmt::format(
      "Concurrency:  {}\nTimeout:      {}s\nInstances:    {} ready of {} desired{}\n",
      field(r, "spec.containerConcurrency"), field(r, "spec.timeoutSeconds"),
      field(r, "status.actualReplicas"), field(r, "status.desiredReplicas"),
      field(r, "status.autoscalerPanic") == "true" ? " (autoscaler in panic mode)" : "");
  std::cout << "\nConditions:\n";
  std::vector<std::vector<std::string>> rows{{"  OK", "TYPE", "AGE", "REASON"}};
  for (const auto& cond : array_at(r, {"status", "conditions"})) {
    std::string st = field(cond, "status");
    rows.push_back({st == "True"    ? "  ++"
                    : st == "False" ? "  !!"
                                    : "  ??",
                    field(cond, "type"), age(field(cond, "lastTransitionTime")),
                    field(cond, "reason") +
                        (field(cond, "message").empty() ? "" : " " + field(cond, "message"))});
  }
  std::cout << table(rows);
  return 0;
}

int revision_delete(const ApiClient& api, const Globals& g, const std::string& name) {
  api.call("DELETE", revisions_path(g) + "/" + name);
  std::cout << fmt::format("Revision '{}' deleted in namespace '{}'.\n", name, g.ns);
  return 0;
}

int apply_file(const ApiClient& api, const Globals& g, const std::string& file,
               const WaitOptions& w) {
  std::vector<json::value> docs;
  std::string text = read_input(file);
  try {
    docs = yaml_documents(text);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{} is not valid YAML: {}", file, e.what()));
  }
  if (docs.empty()) throw std::runtime_error(fmt::format("{} holds no documents", file));
  // Check every document first, so that a bad one changes nothing.
  for (std::size_t i = 0; i < docs.size(); ++i) {
    std::string kind = field(docs[i], "kind"), api_version = field(docs[i], "apiVersion");
    if (kind != "Service" || api_version != "serving.knative.dev/v1")
      throw std::runtime_error(fmt::format(
          "{} document {}: kind \"{}\" apiVersion \"{}\" is not supported; elafros applies "
          "serving.knative.dev/v1 Services",
          file, i + 1, kind, api_version));
    if (field(docs[i], "metadata.name").empty())
      throw std::runtime_error(
          fmt::format("{} document {}: metadata.name is required", file, i + 1));
    absolutize_images(docs[i]);
  }
  std::vector<std::string> touched;
  for (auto& doc : docs) {
    Globals dg = g;
    if (std::string ns = field(doc, "metadata.namespace"); !ns.empty()) dg.ns = ns;
    std::string name = field(doc, "metadata.name");
    ApiResponse before = api.request("GET", services_path(dg) + "/" + name);
    json::value after = before.status == 404
                            ? api.call("POST", services_path(dg), &doc)
                            : api.call("PUT", services_path(dg) + "/" + name, &doc);
    const char* what =
        before.status == 404 ? "created"
        : field(after, "metadata.resourceVersion") == field(before.body, "metadata.resourceVersion")
            ? "unchanged"
            : "updated";
    std::cout << fmt::format("Service '{}' {} in namespace '{}'.\n", name, what, dg.ns);
    if (std::find(touched.begin(), touched.end(), dg.ns + "/" + name) == touched.end())
      touched.push_back(dg.ns + "/" + name);
  }
  if (w.no_wait) return 0;
  int rc = 0;
  for (const auto& t : touched) {
    Globals dg = g;
    dg.ns = t.substr(0, t.find('/'));
    std::string name = t.substr(t.find('/') + 1);
    rc |= wait_ready(
        api, dg, name, w,
        fmt::format("Service '{}' with latest revision '{{latest}}' is available at URL:", name),
        "The previous revisions keep serving.");
  }
  return rc;
}

int image_import(const ApiClient& api, const Globals& g, const std::string& reference,
                 const std::string& name) {
  json::value v = pull_image(api, g, absolutize_reference(reference), name);
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format(
      "Image '{}' {}: {} ({})\n", field(v, "name"),
      is_transport(reference) && reference.rfind("docker://", 0) != 0 ? "imported" : "pulled",
      field(v, "digest"), human_size(v.at("size").to_number<std::int64_t>()));
  return 0;
}

std::int64_t parse_duration_seconds(const std::string& text) {
  std::int64_t total = 0;
  std::size_t i = 0;
  auto bad = [&] {
    return std::runtime_error(
        fmt::format("--since \"{}\" is not a duration; use e.g. 30s, 10m, 1h30m or 2d", text));
  };
  if (text.empty()) throw bad();
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start || i == text.size() || i - start > 9) throw bad();
    std::int64_t n = std::stoll(text.substr(start, i - start));
    switch (text[i++]) {
      case 's':
        total += n;
        break;
      case 'm':
        total += n * 60;
        break;
      case 'h':
        total += n * 3600;
        break;
      case 'd':
        total += n * 86400;
        break;
      default:
        throw bad();
    }
  }
  return total;
}

int logs(const ApiClient& api, const Globals& g, const std::string& service, const LogsOptions& o) {
  std::string target = fmt::format("/api/v1/namespaces/{}/services/{}/logs?follow={}", g.ns,
                                   service, o.follow ? "true" : "false");
  if (!o.revision.empty()) target += "&revision=" + o.revision;
  if (!o.instance.empty()) target += "&instance=" + o.instance;
  if (o.tail >= 0) target += fmt::format("&tailLines={}", o.tail);
  if (!o.since.empty()) target += fmt::format("&sinceSeconds={}", parse_duration_seconds(o.since));
  std::string error;
  int status = api.get_stream(target, [&](const json::value& line) {
    const auto* obj = line.if_object();
    if (!obj) return;
    if (field(line, "kind") == "Status") {
      error = field(line, "message");
      return;
    }
    if (g.output != "table") {
      std::cout << json::serialize(line) << "\n" << std::flush;
      return;
    }
    // stdout lines to stdout, stderr lines to stderr, as 'docker logs' does.
    std::ostream& out = field(line, "stream") == "stderr" ? std::cerr : std::cout;
    if (o.timestamps) out << field(line, "time") << " ";
    out << "[" << field(line, "instance") << "] " << field(line, "message") << "\n";
    out.flush();
  });
  if (!error.empty()) throw std::runtime_error(error);
  if (status >= 300) throw std::runtime_error(fmt::format("elafrosd answered {}", status));
  return 0;
}

int instance_list(const ApiClient& api, const Globals& g, const std::string& service) {
  json::value v = api.call("GET", "/api/v1/instances");
  json::array items;
  for (const auto& i : v.at("items").as_array())
    if (field(i, "namespace") == g.ns && (service.empty() || field(i, "service") == service))
      items.push_back(i);
  if (g.output != "table") return print(g, json::object{{"items", std::move(items)}}), 0;
  std::vector<std::vector<std::string>> rows{{"ID", "SERVICE", "REVISION", "PID", "PORT", "PHASE"}};
  for (const auto& i : items)
    rows.push_back({field(i, "id"), field(i, "service"), field(i, "revision"), field(i, "pid"),
                    field(i, "port"), field(i, "phase")});
  std::cout << table(rows);
  return 0;
}

int system_stop_all(const ApiClient& api, const Globals& g) {
  json::value body = json::object{};
  json::value v = api.call("POST", "/api/v1/system/stop-all", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << "Every instance is stopped, and none starts until 'elafros system start-all' or a "
               "daemon restart.\n'systemctl stop elafrosd' now takes everything down.\n";
  return 0;
}

int system_start_all(const ApiClient& api, const Globals& g) {
  json::value body = json::object{};
  json::value v = api.call("POST", "/api/v1/system/start-all", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << "Instances start again as their services need them.\n";
  return 0;
}

int registry_login(const ApiClient& api, const Globals& g, const std::string& registry,
                   const std::string& username, bool password_stdin) {
  if (!password_stdin)
    throw std::runtime_error(
        "give the password on standard input with --password-stdin, e.g. "
        "'cat token.txt | elafros registry login HOST --username USER --password-stdin' (a "
        "password in a flag would show in ps and the shell history)");
  if (username.empty()) throw std::runtime_error("--username is required");
  std::string password;
  std::getline(std::cin, password);
  while (!password.empty() && (password.back() == '\r' || password.back() == '\n'))
    password.pop_back();
  if (password.empty()) throw std::runtime_error("standard input held no password");
  json::value body =
      json::object{{"registry", registry}, {"username", username}, {"password", password}};
  json::value v = api.call("POST", "/api/v1/registries/login", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format("Login to {} as {} succeeded; elafrosd stores it for pulls.\n",
                           field(v, "registry"), field(v, "username"));
  return 0;
}

int registry_logout(const ApiClient& api, const Globals& g, const std::string& registry) {
  json::value body = json::object{{"registry", registry}};
  json::value v = api.call("POST", "/api/v1/registries/logout", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format("Removed the login for {}.\n", field(v, "registry"));
  return 0;
}

int registry_list(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/api/v1/registries");
  if (g.output != "table") return print(g, v), 0;
  std::vector<std::vector<std::string>> rows{{"REGISTRY", "USERNAME"}};
  for (const auto& i : v.at("items").as_array())
    rows.push_back({field(i, "registry"), field(i, "username")});
  std::cout << table(rows);
  return 0;
}

int image_list(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/api/v1/images");
  if (g.output != "table") return print(g, v), 0;
  std::vector<std::vector<std::string>> rows{
      {"NAME", "DIGEST", "SIZE", "AGE", "REVISIONS", "SOURCE"}};
  for (const auto& i : v.at("items").as_array()) {
    std::string users;
    for (const auto& u : array_at(i, {"usedBy"}))
      users += (users.empty() ? "" : ",") + std::string(u.as_string());
    rows.push_back({field(i, "name"), field(i, "digest").substr(0, 19),
                    human_size(i.at("size").to_number<std::int64_t>()), age(field(i, "created")),
                    users.empty() ? "-" : users, field(i, "source")});
  }
  std::cout << table(rows);
  return 0;
}

int image_rm(const ApiClient& api, const Globals& g, const std::string& name) {
  (void)g;
  std::string encoded;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-._~:@", c))
      encoded += c;
    else
      encoded += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  api.call("DELETE", "/api/v1/images/" + encoded);
  std::cout << fmt::format("Image '{}' removed; 'elafros image prune' frees its space.\n", name);
  return 0;
}

int image_prune(const ApiClient& api, const Globals& g) {
  json::value body = json::object{};
  json::value v = api.call("POST", "/api/v1/images/prune", &body);
  if (g.output != "table") return print(g, v), 0;
  for (const auto& name : array_at(v, {"removedImages"}))
    std::cout << "Removed image " << name.as_string().c_str() << "\n";
  std::cout << fmt::format("Freed {}.\n", human_size(v.at("freedBytes").to_number<std::int64_t>()));
  return 0;
}

int kubeconfig(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/kubeconfig");
  if (g.output == "json")
    std::cout << json::serialize(v) << "\n";
  else
    std::cout << to_yaml(v);
  return 0;
}

int status(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/api/v1/status");
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format(
      "elafrosd {}: running for {}s\n  API socket:  {}\n  Proxy:       http://{}\n  Domain:      "
      "{}\n  Data dir:    {}\n"
      "  Runtime:     {}\n  Services:    {}\n  Instances:   {} ({} ready)\n  Images:      {}\n",
      field(v, "version"), field(v, "uptimeSeconds"), field(v, "socket"), field(v, "listen"),
      field(v, "domain"), field(v, "dataDir"), field(v, "runtime"), field(v, "services"),
      field(v, "instances"), field(v, "readyInstances"), field(v, "images"));
  if (field(v, "halted") == "true")
    std::cout << "  Halted:      every instance stopped by 'elafros system stop-all'; "
                 "'elafros system start-all' resumes\n";
  return 0;
}

}  // namespace elafros::cli
