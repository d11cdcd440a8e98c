#include "cli/common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>

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

// The revision's own reason (ExitCode, OOMKilled, ReadinessProbeFailed, …) says more than the
// service's RevisionFailed.
std::pair<std::string, std::string> failure_of(const ApiClient& api, const Globals& g,
                                               const json::value& s) {
  const json::object* ready = condition(s, "Ready");
  std::string reason = ready ? field(*ready, "reason") : "",
              message = ready ? field(*ready, "message") : "";
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
  return {reason, message};
}

}  // namespace

std::string services_path(const Globals& g) {
  return fmt::format("/apis/serving.knative.dev/v1/namespaces/{}/services", g.ns);
}

std::string revisions_path(const Globals& g) {
  return fmt::format("/apis/serving.knative.dev/v1/namespaces/{}/revisions", g.ns);
}

std::string of_service(const std::string& service) {
  return "?labelSelector=serving.knative.dev%2Fservice%3D" + service;
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
  if (g.output == "url") {  // kn's describe -o url: the address alone
    std::string url = field(v, "status.url");
    std::cout << (url.empty() ? field(v, "status.address.url") : url) << "\n";
    return;
  }
  if (g.output == "json")
    std::cout << to_pretty_json(v);
  else
    std::cout << to_yaml(v);
}

void print_conditions(const json::value& obj) {
  std::cout << "\nConditions:\n";
  std::vector<std::vector<std::string>> rows{{"  OK", "TYPE", "AGE", "REASON"}};
  for (const auto& c : array_at(obj, {"status", "conditions"})) {
    std::string st = field(c, "status");
    rows.push_back(
        {st == "True"    ? "  ++"
         : st == "False" ? "  !!"
                         : "  ??",
         field(c, "type"), age(field(c, "lastTransitionTime")),
         field(c, "reason") + (field(c, "message").empty() ? "" : " " + field(c, "message"))});
  }
  std::cout << table(rows);
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

std::size_t serving_container(const json::array& containers) {
  if (containers.size() > 1)
    for (std::size_t i = 0; i < containers.size(); ++i)
      if (containers[i].is_object() && containers[i].get_object().contains("ports")) return i;
  return 0;
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

std::pair<std::string, std::string> split_assignment(const std::string& text, const char* flag) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw std::runtime_error(fmt::format("{} \"{}\" must be KEY=VALUE", flag, text));
  return {text.substr(0, eq), text.substr(eq + 1)};
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

int wait_ready(const ApiClient& api, const Globals& g, const std::string& name,
               const WaitOptions& w, const json::value& written, const std::string& done_message,
               const char* failure_hint) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto deadline = start + std::chrono::seconds(w.timeout_seconds);
  auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
  std::string last_message;
  std::optional<clock::time_point> false_since;
  std::pair<std::string, std::string> first_failure;  // reason, message
  int outcome = -1;                                   // -1: still waiting
  // Looks at one state of the service; sets `outcome` once it is decided.
  auto judge = [&](const json::value& s) {
    std::string status = condition_status(s, "Ready");
    if (status == "True") {
      std::cout << fmt::format("  {:.3f}s Ready to serve.\n\n", elapsed());
      std::cout << fmt::format(fmt::runtime(done_message),
                               fmt::arg("latest", field(s, "status.latestReadyRevisionName")))
                << "\n"
                << field(s, "status.url") << "\n";
      outcome = 0;
      return;
    }
    const json::object* ready = condition(s, "Ready");
    std::string message = ready ? field(*ready, "message") : "";
    if (!message.empty() && message != last_message) {
      std::cout << fmt::format("  {:.3f}s {}\n", elapsed(), message);
      last_message = message;
    }
    // Once Ready=False is seen, it must become True within the wait window (a restart may
    // still win), or it is a failure, as in kn. The first failure is the one reported: later
    // ones wrap it (CrashLoopBackOff).
    if (status == "False" && !false_since) {
      false_since = clock::now();
      first_failure = failure_of(api, g, s);
    }
    if (!false_since || clock::now() - *false_since < std::chrono::seconds(w.window_seconds))
      return;
    auto [reason, why] = first_failure;
    std::cerr << fmt::format("Error: service '{}' is not ready after {:.3f}s: {}: {}\n{}\n", name,
                             elapsed(), reason, why, failure_hint);
    outcome = 1;
  };
  // The write's answer, then what the watch brings; read again only when the watch ends.
  json::value current = written;
  for (;;) {
    judge(current);
    if (outcome >= 0) return outcome;
    auto now = clock::now();
    if (now >= deadline) {
      std::cerr << fmt::format(
          "Error: service '{}' did not become ready within {} s (--wait-timeout); "
          "'elafros service describe {}' shows its state\n",
          name, w.timeout_seconds, name);
      return 1;
    }
    // Watch from the state just judged, until a change decides it, or until the deadline or the
    // end of the wait window, whichever comes first (whole seconds, at least one).
    auto until = deadline;
    if (false_since) until = std::min(until, *false_since + std::chrono::seconds(w.window_seconds));
    auto seconds = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(until - now).count() + 1);
    std::string target = fmt::format(
        "{}?watch=true&fieldSelector=metadata.name%3D{}&resourceVersion={}&timeoutSeconds={}",
        services_path(g), name, field(current, "metadata.resourceVersion"), seconds);
    std::string error;
    bool expired = false;
    api.get_until(target, [&](const json::value& event) {
      if (field(event, "kind") == "Status" || field(event, "object.kind") == "Status") {
        const json::value& st = field(event, "kind") == "Status" ? event : event.at("object");
        expired = field(st, "code") == "410";
        error = field(st, "message");
        return false;
      }
      if (field(event, "type") == "DELETED") {
        error = fmt::format("service '{}' was deleted while waiting for it", name);
        return false;
      }
      if (field(event, "type") == "BOOKMARK") return true;
      current = event.at("object");
      bool was_failing = false_since.has_value();
      judge(current);
      // Newly not ready: end this watch, to watch again only until the window closes.
      return outcome < 0 && (was_failing || !false_since);
    });
    if (outcome >= 0) return outcome;
    // 410: too old a version to watch from; read it again and watch from there.
    if (!error.empty() && !expired) throw std::runtime_error(error);
    current = api.call("GET", services_path(g) + "/" + name);
  }
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

// Imports or pulls through the streaming endpoint, showing progress; returns the image.
json::value pull_image(const ApiClient& api, const Globals& g, const std::string& reference,
                       const std::string& name) {
  json::value body = json::object{{"reference", reference}};
  if (!name.empty()) body.as_object()["name"] = name;
  PullDisplay display(g.output == "table");
  json::value image, error;
  int status =
      api.stream("POST", "/apis/elafros.dev/v1/images/pull", body, [&](const json::value& line) {
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

void pull_for_service(const ApiClient& api, const Globals& g, const std::string& image,
                      const std::string& pull_policy) {
  // Never: the daemon uses what is stored. Always: the daemon pulls it for the new revision.
  if (is_transport_reference(image) || pull_policy == "Never" || pull_policy == "Always") return;
  auto ref = parse_registry_reference(image);
  if (!ref) return;  // the daemon says what is wrong with it
  json::value list = api.call("GET", "/apis/elafros.dev/v1/images");
  auto at = image.rfind("@sha256:");
  std::string digest = at == std::string::npos ? "" : image.substr(at + 1);
  for (const auto& i : list.at("items").as_array())
    if (field(i, "name") == image || field(i, "name") == ref->str() ||
        (!digest.empty() && field(i, "digest") == digest))
      return;
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

}  // namespace elafros::cli
