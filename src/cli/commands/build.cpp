// elafros build create|list|describe|logs|cancel|delete and buildtemplate
// create|list|describe|delete (docs/architecture.md, "Builds"): Knative Build's resources, with
// tkn's "[step] line" logs, and knctl's --source/--git for where the source comes from.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <stdexcept>

#include "cli/build_support.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/source_tar.hpp"
#include "cli/yaml_json.hpp"
#include "elafros/object_meta.hpp"

namespace json = boost::json;

namespace elafros::cli {

std::string builds_path(const Globals& g) {
  return fmt::format("/apis/build.knative.dev/v1alpha1/namespaces/{}/builds", g.ns);
}

namespace {

std::string templates_path(const Globals& g, bool cluster) {
  return cluster
             ? std::string("/apis/build.knative.dev/v1alpha1/clusterbuildtemplates")
             : fmt::format("/apis/build.knative.dev/v1alpha1/namespaces/{}/buildtemplates", g.ns);
}

std::string size_text(std::uint64_t n) {
  if (n >= (1u << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1 << 20));
  return fmt::format("{:.1f} KiB", static_cast<double>(n) / 1024);
}

double seconds_between(const std::string& from, const std::string& to) {
  auto a = parse_rfc3339(from), b = parse_rfc3339(to);
  return a && b ? static_cast<double>(*b - *a) : 0;
}

std::string source_text(const json::value& o) {
  if (!field(o, "spec.source.git.url").empty()) {
    std::string rev = field(o, "spec.source.git.revision");
    return field(o, "spec.source.git.url") + (rev.empty() ? "" : "#" + rev);
  }
  if (!field(o, "spec.source.local.digest").empty())
    return "uploaded " + field(o, "spec.source.local.digest").substr(0, 19);
  if (!field(o, "spec.source.custom.image").empty())
    return "custom step " + field(o, "spec.source.custom.image");
  return "(none)";
}

}  // namespace

std::string upload_source(const ApiClient& api, const Globals& g, const std::string& dir) {
  SourceTar tar = pack_source(dir);
  std::cout << fmt::format("Uploading {} ({} files, {})\n", dir, tar.files, size_text(tar.bytes));
  auto r = api.upload(fmt::format("/apis/elafros.dev/v1/namespaces/{}/buildsources", g.ns),
                      "application/x-tar", tar.data);
  json::value body = ApiClient::body_or_throw(std::move(r));
  return field(body, "digest");
}

json::object template_ref(const ApiClient& api, const Globals& g, const std::string& name,
                          const std::vector<std::string>& args) {
  bool cluster = false;
  auto r = api.request("GET", templates_path(g, false) + "/" + name);
  if (r.status == 404) {
    auto c = api.request("GET", templates_path(g, true) + "/" + name);
    if (c.status == 404)
      throw std::runtime_error(fmt::format(
          "no BuildTemplate \"{}\" in namespace \"{}\" and no ClusterBuildTemplate \"{}\"; "
          "'elafros buildtemplate list' shows the templates",
          name, g.ns, name));
    ApiClient::body_or_throw(std::move(c));
    cluster = true;
  } else {
    ApiClient::body_or_throw(std::move(r));
  }
  json::array arguments;
  for (const auto& a : args) {
    auto [k, v] = split_assignment(a, "--arg");
    arguments.push_back(json::object{{"name", k}, {"value", v}});
  }
  json::object t{{"name", name}, {"kind", cluster ? "ClusterBuildTemplate" : "BuildTemplate"}};
  if (!arguments.empty()) t["arguments"] = std::move(arguments);
  return t;
}

int print_logs(const ApiClient& api, const Globals& g, const std::string& name, bool follow,
               const std::string& step) {
  std::string target = fmt::format("/apis/elafros.dev/v1/namespaces/{}/builds/{}/logs?follow={}",
                                   g.ns, name, follow ? "true" : "false");
  if (!step.empty()) target += "&step=" + step;
  std::string error;
  int status = api.get_stream(target, [&](const json::value& line) {
    if (line.is_object() && line.as_object().if_contains("kind") &&
        field(line, "kind") == "Status") {
      error = field(line, "message");
      return;
    }
    std::cout << fmt::format("[{}] {}\n", field(line, "step"), field(line, "message"))
              << std::flush;
  });
  if (status >= 300)
    throw std::runtime_error(error.empty() ? fmt::format("reading the logs failed ({})", status)
                                           : error);
  return 0;
}

// The outcome of a finished Build, as build create -f and service create --source print it.
int report_build(const Globals& g, const json::value& o, bool table_of_steps) {
  std::string name = field(o, "metadata.name");
  const json::object* c = condition(o, "Succeeded");
  std::string status = c ? field(*c, "status") : "";
  std::string reason = c ? field(*c, "reason") : "";
  std::string message = c ? field(*c, "message") : "";
  if (table_of_steps) {
    std::vector<std::vector<std::string>> rows{{"STEP", "EXIT", "DURATION"}};
    for (const auto& s : array_at(o, {"status", "stepStates"})) {
      std::string exit = field(s, "terminated.exitCode");
      rows.push_back({field(s, "name"), exit.empty() ? "(running)" : exit, field(s, "duration")});
    }
    if (rows.size() > 1) std::cout << table(rows);
  }
  double took = seconds_between(field(o, "status.startTime"), field(o, "status.completionTime"));
  if (status == "True") {
    std::string image = field(o, "status.image");
    std::cout << fmt::format(
        "Build '{}' succeeded in {:.0f}s{}{}\n", name, took,
        image.empty() ? "" : fmt::format(": image {}@{}", image, field(o, "status.imageDigest")),
        field(o, "status.pushed").empty() ? "" : ", pushed to " + field(o, "status.pushed"));
    if (message.find("its layer was stored already") != std::string::npos)
      std::cout << "The app layer was unchanged: the image store had it already.\n";
    return 0;
  }
  std::cerr << fmt::format("Build '{}' failed ({}): {}\n", name, reason, message);
  if (reason == "Failed" && message.find("full logs:") == std::string::npos)
    std::cerr << fmt::format("Full logs: elafros build logs {}{}\n", name,
                             g.ns == "default" ? "" : " -n " + g.ns);
  return 1;
}

json::value follow_build(const ApiClient& api, const Globals& g, const std::string& name) {
  print_logs(api, g, name, true, "");
  // The logs end once the Build is over; its final status may be a commit behind them.
  for (int i = 0; i < 100; ++i) {
    json::value o = api.call("GET", builds_path(g) + "/" + name);
    const json::object* c = condition(o, "Succeeded");
    std::string s = c ? field(*c, "status") : "";
    if (s == "True" || s == "False") return o;
    bool over = false;
    api.get_until(builds_path(g) + "?watch=true&fieldSelector=metadata.name%3D" + name +
                      "&resourceVersion=" + field(o, "metadata.resourceVersion"),
                  [&](const json::value& e) {
                    const json::value& obj = e.at("object");
                    const json::object* cc = condition(obj, "Succeeded");
                    std::string st = cc ? field(*cc, "status") : "";
                    over = st == "True" || st == "False" || field(e, "type") == "DELETED";
                    return !over;
                  });
  }
  return api.call("GET", builds_path(g) + "/" + name);
}

std::string build_for_service(const ApiClient& api, const Globals& g, const std::string& service,
                              const std::string& dir, const std::string& templ,
                              const std::string& buildpack) {
  auto started = std::chrono::steady_clock::now();
  // NAME-build-N, one more than the service's last.
  json::value list =
      api.call("GET", builds_path(g) + "?labelSelector=build.elafros.dev%2Fservice%3D" + service);
  std::string stem = service.substr(0, 40) + "-build-";
  int last = 0;
  for (const auto& b : array_at(list, {"items"})) {
    std::string n = field(b, "metadata.name");
    if (n.rfind(stem, 0) == 0) {
      try {
        last = std::max(last, std::stoi(n.substr(stem.size())));
      } catch (...) {
      }
    }
  }
  std::string name = stem + std::to_string(last + 1);
  std::string use = templ.empty() ? "buildpacks" : templ;
  std::vector<std::string> args;
  if (!buildpack.empty()) {
    if (!templ.empty()) throw std::runtime_error("give --template or --buildpack, not both");
    args.push_back("BUILDPACK=" + buildpack);
  }
  json::object spec{
      {"template", template_ref(api, g, use, args)},
      {"cache", service},
      {"output", json::object{{"image", fmt::format("{}/{}:{}", g.ns, service, name)}}}};
  json::value body = json::object{
      {"apiVersion", "build.knative.dev/v1alpha1"},
      {"kind", "Build"},
      {"metadata", json::object{{"name", name},
                                {"namespace", g.ns},
                                {"labels", json::object{{"build.elafros.dev/service", service}}}}},
      {"spec", spec}};
  ApiClient::body_or_throw(api.request("POST", builds_path(g) + "?dryRun=All", &body));
  std::string digest = upload_source(api, g, dir);
  spec["source"] = json::object{{"local", json::object{{"digest", digest}}}};
  body.as_object()["spec"] = spec;
  api.call("POST", builds_path(g), &body);
  std::cout << fmt::format("Building '{}' from {} with {} (build '{}'):\n", service, dir, use,
                           name);
  json::value done = follow_build(api, g, name);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (report_build(g, done, true) != 0)
    throw std::runtime_error(
        fmt::format("the build failed; service '{}' was not changed", service));
  std::cout << fmt::format("Source to image in {:.2f}s\n\n", took);
  return field(done, "status.image") + "@" + field(done, "status.imageDigest");
}

namespace {

struct BuildFlags {
  std::string source, git, templ, step_image, script, output_image, base, timeout, output_path;
  std::string push;
  std::string cache;
  std::vector<std::string> args, step_command, env;
  bool follow = false;
};

int build_create(const ApiClient& api, const Globals& g, const std::string& name,
                 const BuildFlags& f) {
  if (!f.source.empty() && !f.git.empty())
    throw std::runtime_error("give --source DIR or --git URL[#REVISION], not both");
  if (f.templ.empty() && f.step_image.empty())
    throw std::runtime_error(
        "build create needs --template T (a BuildTemplate or ClusterBuildTemplate) or "
        "--step-image IMAGE (one step, with --script or --step-command)");
  if (!f.templ.empty() && !f.step_image.empty())
    throw std::runtime_error("give --template or --step-image, not both");
  if (!f.timeout.empty()) (void)parse_duration_seconds(f.timeout);
  json::object spec;
  if (!f.git.empty()) {
    auto hash = f.git.find('#');
    json::object git{{"url", f.git.substr(0, hash)}};
    if (hash != std::string::npos) git["revision"] = f.git.substr(hash + 1);
    spec["source"] = json::object{{"git", std::move(git)}};
  }
  if (!f.templ.empty()) {
    spec["template"] = template_ref(api, g, f.templ, f.args);
  } else {
    if (!f.args.empty()) throw std::runtime_error("--arg needs --template");
    json::object step{{"name", "build"}, {"image", f.step_image}};
    if (!f.script.empty()) step["script"] = f.script;
    if (!f.step_command.empty()) step["command"] = json::value_from(f.step_command);
    if (!f.env.empty()) {
      json::array env;
      for (const auto& e : f.env) {
        auto [k, v] = split_assignment(e, "--env");
        env.push_back(json::object{{"name", k}, {"value", v}});
      }
      step["env"] = std::move(env);
    }
    spec["steps"] = json::array{std::move(step)};
  }
  if (!f.timeout.empty()) spec["timeout"] = f.timeout;
  if (!f.cache.empty()) spec["cache"] = f.cache;
  if (!f.output_image.empty()) {
    json::object out{{"image", f.output_image}};
    if (!f.base.empty()) out["base"] = f.base;
    if (!f.output_path.empty()) out["path"] = f.output_path;
    if (!f.push.empty()) out["push"] = f.push;
    spec["output"] = std::move(out);
  } else if (!f.base.empty() || !f.push.empty()) {
    throw std::runtime_error("--base and --push need --output-image");
  }
  json::value body = json::object{{"apiVersion", "build.knative.dev/v1alpha1"},
                                  {"kind", "Build"},
                                  {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                                  {"spec", spec}};
  if (!f.source.empty()) {
    // Checked first without its source: a Build refused for its other fields uploads nothing.
    ApiClient::body_or_throw(api.request("POST", builds_path(g) + "?dryRun=All", &body));
    std::string digest = upload_source(api, g, f.source);
    spec["source"] = json::object{{"local", json::object{{"digest", digest}}}};
    body.as_object()["spec"] = spec;
  }
  json::value out = api.call("POST", builds_path(g), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("Build '{}' created in namespace '{}'.\n", name, g.ns);
  if (!f.follow) {
    std::cout << fmt::format("Follow it with: elafros build logs {} -f{}\n", name,
                             g.ns == "default" ? "" : " -n " + g.ns);
    return 0;
  }
  json::value done = follow_build(api, g, name);
  return report_build(g, done, true);
}

int build_list(const ApiClient& api, const Globals& g) {
  json::value list = api.call("GET", builds_path(g));
  if (g.output != "table") return print(g, list), 0;
  auto items = array_at(list, {"items"});
  if (items.empty()) return std::cout << "No builds found.\n", 0;
  std::vector<std::vector<std::string>> rows{
      {"NAME", "SUCCEEDED", "REASON", "AGE", "DURATION", "IMAGE"}};
  for (const auto& o : items) {
    const json::object* c = condition(o, "Succeeded");
    std::string done = field(o, "status.completionTime");
    double took = seconds_between(field(o, "status.startTime"), done);
    rows.push_back({field(o, "metadata.name"), c ? field(*c, "status") : "Unknown",
                    c ? field(*c, "reason") : "", age(field(o, "metadata.creationTimestamp")),
                    done.empty() ? "" : fmt::format("{:.0f}s", took), field(o, "status.image")});
  }
  std::cout << table(rows);
  return 0;
}

int build_describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value o = api.call("GET", builds_path(g) + "/" + name);
  if (g.output != "table") return print(g, o), 0;
  std::cout << fmt::format(
      "Name:         {}\nNamespace:    {}\nAge:          {}\nSource:       {}\n", name, g.ns,
      age(field(o, "metadata.creationTimestamp")), source_text(o));
  if (!field(o, "spec.template.name").empty()) {
    std::string args;
    for (const auto& a : array_at(o, {"spec", "template", "arguments"}))
      args += fmt::format(" {}={}", field(a, "name"), field(a, "value"));
    std::cout << fmt::format("Template:     {} {}{}\n", field(o, "spec.template.kind"),
                             field(o, "spec.template.name"), args);
  }
  std::cout << fmt::format("Timeout:      {}\n", field(o, "spec.timeout"));
  if (!field(o, "spec.output.image").empty())
    std::cout << fmt::format(
        "Output:       {}{}\n", field(o, "spec.output.image"),
        field(o, "spec.output.base").empty() ? "" : " on " + field(o, "spec.output.base"));
  if (!field(o, "status.startTime").empty())
    std::cout << fmt::format("Started:      {}\n", field(o, "status.startTime"));
  if (!field(o, "status.completionTime").empty())
    std::cout << fmt::format(
        "Completed:    {} ({:.0f}s)\n", field(o, "status.completionTime"),
        seconds_between(field(o, "status.startTime"), field(o, "status.completionTime")));
  if (!field(o, "status.imageDigest").empty())
    std::cout << fmt::format("Image:        {}@{}\n", field(o, "status.image"),
                             field(o, "status.imageDigest"));
  auto steps = array_at(o, {"status", "resolvedSteps"});
  auto states = array_at(o, {"status", "stepStates"});
  if (!steps.empty()) {
    std::vector<std::vector<std::string>> rows{{"STEP", "IMAGE", "EXIT", "DURATION"}};
    for (std::size_t i = 0; i < steps.size(); ++i) {
      std::string exit = "(not run)", duration;
      if (i < states.size()) {
        exit = field(states[i], "terminated.exitCode");
        if (exit.empty()) exit = "(running)";
        duration = field(states[i], "duration");
      }
      std::string image = field(steps[i], "image");
      if (image.empty()) image = "git " + field(steps[i], "git.url");
      rows.push_back({field(steps[i], "name"), image, exit, duration});
    }
    std::cout << "\n" << table(rows);
  }
  const json::object* c = condition(o, "Succeeded");
  std::cout << fmt::format("\nSucceeded:    {} {}\n", c ? field(*c, "status") : "Unknown",
                           c ? field(*c, "reason") : "");
  if (c && !field(*c, "message").empty())
    std::cout << fmt::format("Message:      {}\n", field(*c, "message"));
  return 0;
}

int build_cancel(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value o = api.call("GET", builds_path(g) + "/" + name);
  const json::object* c = condition(o, "Succeeded");
  std::string s = c ? field(*c, "status") : "";
  if (s == "True" || s == "False")
    throw std::runtime_error(fmt::format("build '{}' is already over ({}); nothing to cancel", name,
                                         field(*c, "reason")));
  o.as_object()["spec"].as_object()["status"] = "BuildCancelled";
  o.as_object().erase("status");
  api.call("PUT", builds_path(g) + "/" + name, &o);
  std::cout << fmt::format("Build '{}' cancelled in namespace '{}'.\n", name, g.ns);
  return 0;
}

int build_delete(const ApiClient& api, const Globals& g, const std::string& name) {
  api.call("DELETE", builds_path(g) + "/" + name);
  std::cout << fmt::format("Build '{}' deleted in namespace '{}'.\n", name, g.ns);
  return 0;
}

// 'buildpack detect DIR': the buildpacks template's detect step alone, on the uploaded
// directory, in a Build that is deleted afterwards. Prints what each buildpack said.
int buildpack_detect(const ApiClient& api, const Globals& g, const std::string& dir,
                     const std::string& builder) {
  json::value t = api.call("GET", templates_path(g, true) + "/buildpacks");
  auto steps = array_at(t, {"spec", "steps"});
  if (steps.empty()) throw std::runtime_error("the buildpacks ClusterBuildTemplate has no steps");
  std::string image = builder;
  if (image.empty())
    for (const auto& p : array_at(t, {"spec", "parameters"}))
      if (field(p, "name") == "BUILDER_IMAGE") image = field(p, "default");
  std::string script = field(steps[0], "script");
  for (auto [k, v] : {std::pair<std::string, std::string>{"${BUILDER_IMAGE}", image},
                      std::pair<std::string, std::string>{"${BUILDPACK}", ""}})
    for (auto at = script.find(k); at != std::string::npos; at = script.find(k, at + v.size()))
      script.replace(at, k.size(), v);
  std::string name = fmt::format(
      "detect-{:x}", std::chrono::steady_clock::now().time_since_epoch().count() & 0xffffffff);
  json::value body = json::object{
      {"apiVersion", "build.knative.dev/v1alpha1"},
      {"kind", "Build"},
      {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
      {"spec",
       json::object{{"steps", json::array{json::object{
                                  {"name", "detect"}, {"image", image}, {"script", script}}}}}}};
  ApiClient::body_or_throw(api.request("POST", builds_path(g) + "?dryRun=All", &body));
  SourceTar tar = pack_source(dir);
  auto up = api.upload(fmt::format("/apis/elafros.dev/v1/namespaces/{}/buildsources", g.ns),
                       "application/x-tar", tar.data);
  body.as_object()["spec"].as_object()["source"] = json::object{
      {"local",
       json::object{{"digest", field(ApiClient::body_or_throw(std::move(up)), "digest")}}}};
  api.call("POST", builds_path(g), &body);
  json::value done;
  try {
    done = follow_build(api, g, name);
  } catch (...) {
    api.request("DELETE", builds_path(g) + "/" + name);
    throw;
  }
  api.request("DELETE", builds_path(g) + "/" + name);
  const json::object* c = condition(done, "Succeeded");
  if (c && field(*c, "status") == "True") return 0;
  std::cerr << fmt::format("No buildpack of {} builds {}.\n", image, dir);
  return 1;
}

// --- buildtemplate ----------------------------------------------------------------------------

int template_create(const ApiClient& api, const Globals& g, const std::string& file) {
  auto docs = yaml_documents(read_input(file));
  if (docs.empty()) throw std::runtime_error(fmt::format("{} holds no template", file));
  for (auto& d : docs) {
    std::string kind = field(d, "kind");
    if (kind != "BuildTemplate" && kind != "ClusterBuildTemplate")
      throw std::runtime_error(
          fmt::format("{}: kind \"{}\" is not BuildTemplate or ClusterBuildTemplate", file, kind));
    bool cluster = kind == "ClusterBuildTemplate";
    if (!cluster) d.as_object()["metadata"].as_object()["namespace"] = g.ns;
    api.call("POST", templates_path(g, cluster), &d);
    std::cout << fmt::format("{} '{}' created{}.\n", kind, field(d, "metadata.name"),
                             cluster ? "" : " in namespace '" + g.ns + "'");
  }
  return 0;
}

int template_list(const ApiClient& api, const Globals& g) {
  json::array all;
  std::vector<std::vector<std::string>> rows{{"NAME", "KIND", "PARAMETERS", "STEPS", "AGE"}};
  for (bool cluster : {false, true}) {
    json::value list = api.call("GET", templates_path(g, cluster));
    for (auto& o : array_at(list, {"items"})) {
      std::string params;
      for (const auto& p : array_at(o, {"spec", "parameters"}))
        params += (params.empty() ? "" : ",") + field(p, "name");
      rows.push_back({field(o, "metadata.name"), cluster ? "ClusterBuildTemplate" : "BuildTemplate",
                      params, std::to_string(array_at(o, {"spec", "steps"}).size()),
                      age(field(o, "metadata.creationTimestamp"))});
      all.push_back(std::move(o));
    }
  }
  if (g.output != "table")
    return print(g, json::object{{"apiVersion", "v1"}, {"kind", "List"}, {"items", all}}), 0;
  if (rows.size() == 1) return std::cout << "No build templates found.\n", 0;
  std::cout << table(rows);
  return 0;
}

int template_describe(const ApiClient& api, const Globals& g, const std::string& name,
                      bool cluster) {
  json::value o = api.call("GET", templates_path(g, cluster) + "/" + name);
  if (g.output != "table") return print(g, o), 0;
  std::cout << fmt::format("Name:         {}\nKind:         {}\n", name,
                           cluster ? "ClusterBuildTemplate" : "BuildTemplate");
  std::vector<std::vector<std::string>> params{{"PARAMETER", "DEFAULT", "DESCRIPTION"}};
  for (const auto& p : array_at(o, {"spec", "parameters"})) {
    bool has_default = p.as_object().if_contains("default") != nullptr;
    params.push_back({field(p, "name"), has_default ? field(p, "default") : "(required)",
                      field(p, "description")});
  }
  if (params.size() > 1) std::cout << "\n" << table(params);
  std::vector<std::vector<std::string>> steps{{"STEP", "IMAGE"}};
  for (const auto& s : array_at(o, {"spec", "steps"}))
    steps.push_back({field(s, "name"), field(s, "image")});
  std::cout << "\n" << table(steps);
  return 0;
}

}  // namespace

void add_build_commands(CLI::App& app, Session& s) {
  auto name = std::make_shared<std::string>();
  auto f = std::make_shared<BuildFlags>();
  auto* build =
      app.add_subcommand("build", "run builds: source to an image")->require_subcommand(1);

  auto* create = build->add_subcommand("create", "create a build and run it");
  create->add_option("name", *name, "the build's name")->required();
  create->add_option("--source", f->source,
                     "a directory to upload (honours .gitignore and .elafrosignore)");
  create->add_option("--git", f->git, "a git repository to clone, URL[#BRANCH|TAG|COMMIT]");
  create->add_option("--template", f->templ, "a BuildTemplate or ClusterBuildTemplate to run");
  create->add_option("--arg", f->args, "NAME=VALUE: a template argument (repeatable)");
  create->add_option("--step-image", f->step_image, "without a template: the one step's image");
  create->add_option("--script", f->script, "the step's script (sh -e unless it has a shebang)");
  create->add_option("--step-command", f->step_command, "the step's command and arguments");
  create->add_option("--env", f->env, "NAME=VALUE for the step (repeatable)");
  create->add_option("--output-image", f->output_image, "store /workspace as this image");
  create->add_option("--output-path", f->output_path,
                     "the directory that becomes the image's layer (default /workspace)");
  create->add_option("--base", f->base, "the image the output goes on (default: the last step's)");
  create->add_option("--push", f->push, "then push the image to HOST[:PORT]/REPO[:TAG]");
  create->add_option("--timeout", f->timeout, "how long it may run, e.g. 10m (default 10m)");
  create->add_option("--cache", f->cache,
                     "the cache steps see at /cache (default: one per build name)");
  create->add_flag("--follow,-f", f->follow, "stream its logs until it is over, then its outcome");
  create->callback([&s, name, f] {
    s.run = [&s, name, f](const ApiClient& api) { return build_create(api, s.g, *name, *f); };
  });

  auto* list = build->add_subcommand("list", "list builds");
  list->callback([&s] { s.run = [&s](const ApiClient& api) { return build_list(api, s.g); }; });

  auto* describe = build->add_subcommand("describe", "show a build, its steps and outcome");
  describe->add_option("name", *name, "the build")->required();
  describe->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return build_describe(api, s.g, *name); };
  });

  auto step = std::make_shared<std::string>();
  auto* logs = build->add_subcommand("logs", "print a build's logs, [step] line");
  logs->add_option("name", *name, "the build")->required();
  logs->add_flag("--follow,-f", f->follow, "follow until the build is over");
  logs->add_option("--step", *step, "only this step's");
  logs->callback([&s, name, f, step] {
    s.run = [&s, name, f, step](const ApiClient& api) {
      return print_logs(api, s.g, *name, f->follow, *step);
    };
  });

  auto* cancel = build->add_subcommand("cancel", "cancel a build (its running step is killed)");
  cancel->add_option("name", *name, "the build")->required();
  cancel->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return build_cancel(api, s.g, *name); };
  });

  auto* del = build->add_subcommand("delete", "delete a build and its logs");
  del->add_option("name", *name, "the build")->required();
  del->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return build_delete(api, s.g, *name); };
  });

  auto builder = std::make_shared<std::string>();
  auto* bp =
      app.add_subcommand("buildpack", "buildpacks (Heroku's v2 contract)")->require_subcommand(1);
  auto* detect =
      bp->add_subcommand("detect", "say which buildpack would build a directory, and why");
  detect->add_option("dir", *name, "the source directory")->required();
  detect->add_option("--builder", *builder, "the builder image (default: the template's)");
  detect->callback([&s, name, builder] {
    s.run = [&s, name, builder](const ApiClient& api) {
      return buildpack_detect(api, s.g, *name, *builder);
    };
  });

  auto file = std::make_shared<std::string>();
  auto cluster = std::make_shared<bool>(false);
  auto* bt = app.add_subcommand("buildtemplate", "manage BuildTemplates and ClusterBuildTemplates")
                 ->require_subcommand(1);
  auto* tcreate = bt->add_subcommand("create", "create templates from a YAML file");
  tcreate->add_option("--filename,-f", *file, "the YAML file, or - for standard input")->required();
  tcreate->callback([&s, file] {
    s.run = [&s, file](const ApiClient& api) { return template_create(api, s.g, *file); };
  });
  auto* tlist = bt->add_subcommand("list", "list the templates a build here can use");
  tlist->callback([&s] { s.run = [&s](const ApiClient& api) { return template_list(api, s.g); }; });
  auto* tdescribe = bt->add_subcommand("describe", "show a template's parameters and steps");
  tdescribe->add_option("name", *name, "the template")->required();
  tdescribe->add_flag("--cluster", *cluster, "a ClusterBuildTemplate");
  tdescribe->callback([&s, name, cluster] {
    s.run = [&s, name, cluster](const ApiClient& api) {
      return template_describe(api, s.g, *name, *cluster);
    };
  });
  auto* tdelete = bt->add_subcommand("delete", "delete a template");
  tdelete->add_option("name", *name, "the template")->required();
  tdelete->add_flag("--cluster", *cluster, "a ClusterBuildTemplate");
  tdelete->callback([&s, name, cluster] {
    s.run = [&s, name, cluster](const ApiClient& api) {
      api.call("DELETE", templates_path(s.g, *cluster) + "/" + *name);
      std::cout << fmt::format("{} '{}' deleted.\n",
                               *cluster ? "ClusterBuildTemplate" : "BuildTemplate", *name);
      return 0;
    };
  });
}

}  // namespace elafros::cli
