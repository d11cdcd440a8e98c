// elafros service create|update|rollback|list|describe|export|delete, with kn's flags.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <map>
#include <stdexcept>

#include "cli/build_support.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/template_changes.hpp"
#include "cli/yaml_json.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

// Every flag of the service commands, as parsed; finish() turns them into changes.
struct ServiceFlags {
  std::string name;
  std::string image, cmd, revision_name, env_file, filename, pull_policy;
  std::string probe, probe_opts, liveness, liveness_opts;
  std::string source, build_template, buildpack;  // --source: build first, then deploy
  std::vector<std::string> args, annotations, labels;
  int port = 0;
  int concurrency_limit = -1;
  bool force = false;
  std::string to;  // rollback --to
  bool with_revisions = false;
  TemplateChanges t;
  MetadataChanges m;
  TrafficChanges traffic;
  WaitOptions w;

  void finish() {
    if (!image.empty()) t.image = image;
    if (port) t.port = port;
    if (!cmd.empty()) t.cmd = cmd;
    if (!args.empty()) t.args = args;
    if (!revision_name.empty()) t.revision_name = revision_name;
    if (concurrency_limit >= 0) t.concurrency_limit = concurrency_limit;
    if (!probe.empty()) t.probe_readiness = probe;
    if (!probe_opts.empty()) t.probe_readiness_opts = probe_opts;
    if (!liveness.empty()) t.probe_liveness = liveness;
    if (!liveness_opts.empty()) t.probe_liveness_opts = liveness_opts;
    if (!pull_policy.empty()) t.pull_policy = pull_policy;
    if (!env_file.empty()) {
      // The file first, so that -e overrides it.
      auto entries = env_file_entries(read_input(env_file), env_file);
      t.env.insert(t.env.begin(), entries.begin(), entries.end());
    }
    // -a and -l without -service/-revision: on both, as kn does.
    t.annotations.insert(t.annotations.begin(), annotations.begin(), annotations.end());
    m.annotations.insert(m.annotations.begin(), annotations.begin(), annotations.end());
    t.labels.insert(t.labels.begin(), labels.begin(), labels.end());
    m.labels.insert(m.labels.begin(), labels.begin(), labels.end());
  }
};

void add_source_flags(CLI::App* c, ServiceFlags& f) {
  c->add_option("--source", f.source,
                "build this directory (honouring .gitignore and .elafrosignore) and deploy the "
                "result by digest");
  c->add_option("--template", f.build_template,
                "with --source: the BuildTemplate or ClusterBuildTemplate (default: buildpacks)");
  c->add_option("--buildpack", f.buildpack,
                "with --source: the buildpack to use instead of detecting one (e.g. python)");
}

void add_template_flags(CLI::App* c, ServiceFlags& f) {
  auto& t = f.t;
  c->add_option("-e,--env", t.env,
                "environment variable NAME=VALUE, or NAME- to unset (repeatable)");
  c->add_option("--env-file", f.env_file,
                "file of NAME=VALUE lines (# comments allowed); -e overrides them");
  c->add_option("--env-from", t.env_from,
                "every key of a ConfigMap (cm:NAME) or Secret (secret:NAME) as a variable; "
                "NAME- removes it (repeatable)");
  c->add_option("--env-value-from", t.env_value_from,
                "variable from one key: NAME=secret:SECRET:KEY or NAME=cm:CONFIGMAP:KEY; NAME- "
                "removes it (repeatable)");
  c->add_option("--volume", t.volumes,
                "volume NAME=cm:CONFIGMAP, NAME=secret:SECRET or NAME=emptyDir; NAME- removes it "
                "(repeatable)");
  c->add_option("--mount", t.mounts,
                "mount /DIR=cm:CONFIGMAP or /DIR=secret:SECRET (read-only, a volume is made), "
                "/DIR=ed:VOLUME (an emptyDir) or /DIR=VOLUME; /DIR- unmounts (repeatable)");
  c->add_option("--port", f.port, "port the app listens on, passed as $PORT (default 8080)")
      ->check(CLI::Range(1, 65535));
  c->add_option("--cmd", f.cmd, "command to run instead of the image's entrypoint");
  c->add_option("--arg", f.args, "argument for the command (repeatable)");
  c->add_option("--revision-name", f.revision_name,
                "name of the new revision (default NAME-0000N)");
  c->add_option("-a,--annotation", f.annotations,
                "annotation KEY=VALUE on the service and its revisions, KEY- removes it "
                "(repeatable)");
  c->add_option("--annotation-service", f.m.annotations, "annotation on the service only");
  c->add_option("--annotation-revision", t.annotations, "annotation on the revision only");
  c->add_option("-l,--label", f.labels,
                "label KEY=VALUE on the service and its revisions, KEY- removes it (repeatable)");
  c->add_option("--label-service", f.m.labels, "label on the service only");
  c->add_option("--label-revision", t.labels, "label on the revision only");
  c->add_option("--limit", t.limits,
                "resource limits, e.g. cpu=500m,memory=128Mi; memory- removes one (repeatable)");
  c->add_option("--request", t.requests,
                "resource requests, e.g. cpu=100m,memory=64Mi; cpu- removes one (repeatable)");
  c->add_option("--concurrency-limit", f.concurrency_limit,
                "hard limit of requests in flight per instance (0: none)")
      ->check(CLI::Range(0, 1000));
  c->add_option("--probe-readiness", f.probe,
                "readiness probe: http::PORT:/PATH (e.g. http::8080:/healthz), tcp::PORT (PORT "
                "may be left empty) or exec:CMD,ARG,…");
  c->add_option("--probe-readiness-opts", f.probe_opts,
                "readiness probe options, e.g. InitialDelaySeconds=2,PeriodSeconds=1,"
                "TimeoutSeconds=1,FailureThreshold=3,SuccessThreshold=1");
  c->add_option("--probe-liveness", f.liveness,
                "liveness probe, as --probe-readiness; an instance failing it FailureThreshold "
                "times in a row is restarted");
  c->add_option("--probe-liveness-opts", f.liveness_opts,
                "liveness probe options, e.g. InitialDelaySeconds=5,PeriodSeconds=10,"
                "FailureThreshold=3");
  c->add_option("--pull-policy", f.pull_policy,
                "for a registry image: Always (pull for every new revision), Never (only a "
                "stored image) or IfNotPresent (the default)");
  auto scale = [&](const char* flag, const char* annotation, const char* help) {
    c->add_option_function<std::string>(
        flag,
        [&t, annotation](const std::string& v) {
          t.scale_annotations.emplace_back(std::string("autoscaling.knative.dev/") + annotation, v);
        },
        help);
  };
  scale("--scale-min", "min-scale",
        "minimum number of instances (autoscaling.knative.dev/min-scale)");
  scale("--scale-max", "max-scale", "maximum number of instances (max-scale)");
  scale("--scale-init", "initial-scale", "instances a new revision starts with (initial-scale)");
  scale("--scale-target", "target", "in-flight requests (or rps) per instance to aim for (target)");
  scale("--scale-utilization", "target-utilization-percentage",
        "percent of the target to aim at (default 70)");
  scale("--scale-window", "window", "stable window, e.g. 60s (6s to 1h)");
  scale("--scale-metric", "metric", "concurrency or rps");
  scale("--scale-down-delay", "scale-down-delay",
        "how long a lower scale must hold before scaling down, e.g. 30s");
  c->add_option_function<int>(
      "--scale",
      [&t](int n) {
        t.scale_annotations.emplace_back("autoscaling.knative.dev/min-scale", std::to_string(n));
        t.scale_annotations.emplace_back("autoscaling.knative.dev/max-scale", std::to_string(n));
      },
      "exactly this many instances (min-scale = max-scale)");
}

void add_tag_flag(CLI::App* c, ServiceFlags& f) {
  c->add_option("--tag", f.traffic.tags,
                "tag a revision: REVISION=TAG (REVISION may be @latest); the tag gets its own URL "
                "(repeatable)");
}

// The Service that -f FILE holds, for 'service create NAME -f FILE'.
json::value service_from_file(const std::string& file, const std::string& name, const Globals& g) {
  std::vector<json::value> docs;
  try {
    docs = yaml_documents(read_input(file));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{} is not valid YAML: {}", file, e.what()));
  }
  if (docs.size() != 1)
    throw std::runtime_error(
        fmt::format("{} holds {} documents; -f takes one Service ('elafros apply -f' takes many)",
                    file, docs.size()));
  json::value doc = std::move(docs[0]);
  if (field(doc, "kind") != "Service" || field(doc, "apiVersion") != "serving.knative.dev/v1")
    throw std::runtime_error(
        fmt::format("{}: kind \"{}\" apiVersion \"{}\" is not a serving.knative.dev/v1 Service",
                    file, field(doc, "kind"), field(doc, "apiVersion")));
  std::string in_file = field(doc, "metadata.name");
  if (!in_file.empty() && in_file != name)
    throw std::runtime_error(fmt::format(
        "{} names the service \"{}\", not \"{}\"; give the same name, or leave metadata.name out",
        file, in_file, name));
  json::object& md = doc.as_object()["metadata"].is_object()
                         ? doc.as_object()["metadata"].get_object()
                         : doc.as_object()["metadata"].emplace_object();
  md["name"] = name;
  md["namespace"] = g.ns;
  if (!doc.as_object()["spec"].is_object()) doc.as_object()["spec"].emplace_object();
  absolutize_images(doc);
  return doc;
}

// --source: the directory built (buildpacks unless --template), its image deployed by digest.
ServiceFlags with_built_image(const ApiClient& api, const Globals& g, const ServiceFlags& in) {
  ServiceFlags f = in;
  if (f.source.empty()) {
    if (!f.build_template.empty() || !f.buildpack.empty())
      throw std::runtime_error("--template and --buildpack need --source DIR");
    return f;
  }
  if (f.t.image) throw std::runtime_error("give --image or --source, not both");
  f.t.image = build_for_service(api, g, f.name, f.source, f.build_template, f.buildpack);
  return f;
}

int service_create(const ApiClient& api, const Globals& g, const ServiceFlags& given) {
  ServiceFlags f = with_built_image(api, g, given);
  const std::string& name = f.name;
  json::value body =
      f.filename.empty() ? json::value(json::object{
                               {"apiVersion", "serving.knative.dev/v1"},
                               {"kind", "Service"},
                               {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                               {"spec", json::object{}}})
                         : service_from_file(f.filename, name, g);
  if (f.filename.empty() && !f.t.image)
    throw std::runtime_error(
        "--image or --source is required (or -f FILE with the service's image)");
  json::object& spec = body.as_object()["spec"].as_object();
  json::value& tmpl = spec["template"];
  if (!tmpl.is_object()) tmpl.emplace_object();
  apply_template_changes(tmpl.get_object(), f.t, true);
  apply_metadata_changes(body.as_object(), f.m);
  if (!f.traffic.empty())
    spec["traffic"] = apply_traffic_changes(array_at(body, {"spec", "traffic"}), f.traffic);
  std::cout << fmt::format("Creating service '{}' in namespace '{}':\n\n", name, g.ns);
  auto containers = array_at(body, {"spec", "template", "spec", "containers"});
  if (!containers.empty()) {
    const json::value& serving = containers[serving_container(containers)];
    pull_for_service(api, g, field(serving, "image"), field(serving, "imagePullPolicy"));
  }
  const std::string path = services_path(g) + "/" + name;
  bool replaced = false;
  json::value created;
  if (f.force && api.request("GET", path).status == 200) {
    // --force: the service becomes what this command describes, as kn's --force does.
    replaced = true;
    created = api.call("PUT", path, &body);
  } else {
    ApiResponse r = api.request("POST", services_path(g), &body);
    if (r.status == 409 && field(r.body, "reason") == "AlreadyExists")
      throw std::runtime_error(fmt::format(
          "service '{}' already exists in namespace '{}'; change it with 'elafros service update "
          "{}', or replace it with --force",
          name, g.ns, name));
    created = ApiClient::body_or_throw(std::move(r));
  }
  const char* what = replaced ? "replaced" : "created";
  if (f.w.no_wait) {
    std::cout << fmt::format("Service '{}' {} in namespace '{}'.\n{}\n", name, what, g.ns,
                             field(created, "status.url"));
    return 0;
  }
  return wait_ready(
      api, g, name, f.w, created,
      fmt::format("Service '{}' {} to latest revision '{{latest}}' is available at URL:", name,
                  what),
      "The service stays and keeps retrying until deleted; 'elafros service describe' shows why.");
}

int service_update(const ApiClient& api, const Globals& g, const ServiceFlags& given) {
  if (!given.source.empty()) api.call("GET", services_path(g) + "/" + given.name);  // it exists
  ServiceFlags f = with_built_image(api, g, given);
  const std::string& name = f.name;
  const TemplateChanges& t = f.t;
  json::value current = api.call("GET", services_path(g) + "/" + name);
  json::value body = exportable(current);
  json::object& spec = body.as_object()["spec"].as_object();
  bool template_flags = t.any();
  if (template_flags) apply_template_changes(spec["template"].as_object(), t, false);
  apply_metadata_changes(body.as_object(), f.m);
  if (!f.traffic.empty())
    spec["traffic"] = apply_traffic_changes(array_at(current, {"spec", "traffic"}), f.traffic);
  if (!template_flags && f.traffic.empty() && f.m.empty())
    throw std::runtime_error(
        "nothing to update: give --image, -e, --port, --cmd, --arg, -a, -l, --traffic, --tag or "
        "--untag (elafros service update --help lists them all)");
  std::cout << fmt::format("Updating service '{}' in namespace '{}':\n\n", name, g.ns);
  auto containers = array_at(body, {"spec", "template", "spec", "containers"});
  if (t.image && !containers.empty()) {
    const json::value& serving = containers[serving_container(containers)];
    pull_for_service(api, g, field(serving, "image"), field(serving, "imagePullPolicy"));
  }
  json::value updated = api.call("PUT", services_path(g) + "/" + name, &body);
  bool unchanged = field(updated, "metadata.generation") == field(current, "metadata.generation");
  if (f.w.no_wait) {
    std::cout << fmt::format("Service '{}' updated in namespace '{}'.\n", name, g.ns);
    return 0;
  }
  int rc = wait_ready(
      api, g, name, f.w, updated,
      fmt::format("Service '{}' {} latest revision '{{latest}}' is available at URL:", name,
                  unchanged ? "with (unchanged)" : "updated to"),
      "The previous revisions keep serving; fix the change and update again.");
  if (rc == 0 && !f.traffic.empty()) {
    json::value s = api.call("GET", services_path(g) + "/" + name);
    std::cout << "Traffic:\n" << traffic_summary(s);
  }
  return rc;
}

int service_rollback(const ApiClient& api, const Globals& g, const ServiceFlags& f) {
  const std::string& name = f.name;
  const std::string& to = f.to;
  const WaitOptions& w = f.w;
  json::value s = api.call("GET", services_path(g) + "/" + name);
  json::value revs = api.call("GET", revisions_path(g) + of_service(name));
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
  json::value updated = api.call("PUT", services_path(g) + "/" + name, &body);
  if (w.no_wait) return 0;
  return wait_ready(
      api, g, name, w, updated,
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
  json::value revs = api.call("GET", revisions_path(g) + of_service(name));
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
    std::cout << fmt::format(
        "        Image:     {} (pinned to {})\n",
        containers.empty() ? "" : field(containers[serving_container(containers)], "image"),
        statuses.empty() ? "" : field(statuses[0], "imageDigest"));
    // Sidecars and init containers, with their pinned images.
    for (std::size_t i = 1; i < statuses.size(); ++i)
      std::cout << fmt::format("        Sidecar:   {} ({})\n", field(statuses[i], "name"),
                               field(statuses[i], "imageDigest"));
    for (const auto& st : array_at(r, {"status", "initContainerStatuses"}))
      std::cout << fmt::format("        Init:      {} ({})\n", field(st, "name"),
                               field(st, "imageDigest"));
    std::cout << fmt::format(
        "        Instances: {} ready of {} desired{}\n", field(r, "status.actualReplicas"),
        field(r, "status.desiredReplicas"),
        field(r, "status.autoscalerPanic") == "true" ? " (autoscaler in panic mode)" : "");
    if (field(r, "status.restartCount") != "" && field(r, "status.restartCount") != "0") {
      std::string last;
      if (!statuses.empty()) {
        const std::string reason = field(statuses[0], "lastState.terminated.reason");
        std::string message = field(statuses[0], "lastState.terminated.message");
        message = message.substr(0, message.find('\n'));
        if (!reason.empty())
          last = fmt::format(", the last {} ago: {}: {}",
                             age(field(statuses[0], "lastState.terminated.finishedAt")), reason,
                             message);
      }
      std::cout << fmt::format("        Restarts:  {}{}\n", field(r, "status.restartCount"), last);
    }
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
  print_conditions(s);
  return 0;
}

int service_export(const ApiClient& api, const Globals& g, const std::string& name,
                   bool with_revisions) {
  json::value s = api.call("GET", services_path(g) + "/" + name);
  json::value current = exportable(s);
  if (!with_revisions) return print(g, current), 0;
  // Replay: one Service per revision, oldest first, each naming its revision, so that applying
  // them in order recreates the revisions; the last one carries the traffic.
  json::value revs = api.call("GET", revisions_path(g) + of_service(name));
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

int service_delete(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value marked = api.call("DELETE", services_path(g) + "/" + name);
  // Deletion finishes once the service's instances are gone; wait for it, as kn does.
  if (field(marked, "kind") == "Service") wait_deleted(api, services_path(g), name, marked);
  std::cout << fmt::format("Service '{}' successfully deleted in namespace '{}'.\n", name, g.ns);
  return 0;
}

}  // namespace

void add_wait_flags(CLI::App* c, WaitOptions& w) {
  c->add_flag("--no-wait,!--wait", w.no_wait,
              "wait until the service is ready (the default), or return at once with --no-wait")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  c->add_option("--wait-timeout", w.timeout_seconds,
                "seconds to wait for the service to become ready (default 600)")
      ->check(CLI::PositiveNumber);
  c->add_option("--wait-window", w.window_seconds,
                "seconds a service that reported not ready has to become ready (default 2)")
      ->check(CLI::NonNegativeNumber);
}

void add_service_commands(CLI::App& app, Session& s) {
  auto* service = app.add_subcommand("service", "manage services")->require_subcommand(1);
  auto on = [&s](CLI::App* c, std::shared_ptr<ServiceFlags> f,
                 int (*run)(const ApiClient&, const Globals&, const ServiceFlags&)) {
    c->callback([&s, f, run] {
      f->finish();
      s.run = [&s, f, run](const ApiClient& api) { return run(api, s.g, *f); };
    });
  };

  auto create_flags = std::make_shared<ServiceFlags>();
  auto* create = service->add_subcommand("create", "create a service and wait until it is ready");
  create->add_option("name", create_flags->name, "service name (a DNS-1035 label)")->required();
  create->add_option("--image", create_flags->image,
                     "image: oci:DIR[:TAG], HOST/REPO[:TAG] or the name of an imported image");
  create->add_option("-f,--filename", create_flags->filename,
                     "a Knative Service YAML file (or - for standard input) to start from; the "
                     "other flags change it");
  create->add_flag("--force", create_flags->force, "replace the service if it exists");
  add_template_flags(create, *create_flags);
  add_source_flags(create, *create_flags);
  add_tag_flag(create, *create_flags);
  add_wait_flags(create, create_flags->w);
  on(create, create_flags, &service_create);

  auto update_flags = std::make_shared<ServiceFlags>();
  auto* update = service->add_subcommand(
      "update", "change a service: a changed template makes a new revision");
  update->add_option("name", update_flags->name, "service name")->required();
  update->add_option("--image", update_flags->image,
                     "new image: oci:DIR[:TAG], HOST/REPO[:TAG] or an imported image's name");
  add_template_flags(update, *update_flags);
  add_source_flags(update, *update_flags);
  update->add_option(
      "--traffic", update_flags->traffic.traffic,
      "traffic split KEY=PERCENT[,KEY=PERCENT…]; KEY is a revision, @latest or a tag (repeatable)");
  add_tag_flag(update, *update_flags);
  update->add_option("--untag", update_flags->traffic.untags, "remove a tag (repeatable)");
  add_wait_flags(update, update_flags->w);
  on(update, update_flags, &service_update);

  auto rollback_flags = std::make_shared<ServiceFlags>();
  auto* rollback = service->add_subcommand(
      "rollback", "send 100% of the traffic to the previous ready revision");
  rollback->add_option("name", rollback_flags->name, "service name")->required();
  rollback->add_option("--to", rollback_flags->to,
                       "the revision to roll back to (default: the previous ready one)");
  add_wait_flags(rollback, rollback_flags->w);
  on(rollback, rollback_flags, &service_rollback);

  auto* list = service->add_subcommand("list", "list services");
  list->callback([&s] { s.run = [&s](const ApiClient& api) { return service_list(api, s.g); }; });

  auto named = [&](const char* verb, const char* help,
                   int (*run)(const ApiClient&, const Globals&, const ServiceFlags&)) {
    auto f = std::make_shared<ServiceFlags>();
    auto* c = service->add_subcommand(verb, help);
    c->add_option("name", f->name, "service name")->required();
    on(c, f, run);
    return std::pair{c, f};
  };
  named("describe", "show a service, its revisions, traffic and conditions",
        [](const ApiClient& api, const Globals& g, const ServiceFlags& f) {
          return service_describe(api, g, f.name);
        });
  auto [exp, exp_flags] = named("export", "print a service as Knative YAML that 'apply' takes back",
                                [](const ApiClient& api, const Globals& g, const ServiceFlags& f) {
                                  return service_export(api, g, f.name, f.with_revisions);
                                });
  exp->add_flag("--with-revisions", exp_flags->with_revisions,
                "also export every revision, as documents replayed in order");
  named("delete", "delete a service and stop its instances",
        [](const ApiClient& api, const Globals& g, const ServiceFlags& f) {
          return service_delete(api, g, f.name);
        });
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

}  // namespace elafros::cli
