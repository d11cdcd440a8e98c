// elafros apply -f FILE: Knative Service YAML, one document or many.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/json.hpp>
#include <iostream>
#include <map>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/yaml_json.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

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
  std::map<std::string, json::value> written;  // ns/name → the last write's answer
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
    written[dg.ns + "/" + name] = after;
  }
  if (w.no_wait) return 0;
  int rc = 0;
  for (const auto& t : touched) {
    Globals dg = g;
    dg.ns = t.substr(0, t.find('/'));
    std::string name = t.substr(t.find('/') + 1);
    rc |= wait_ready(
        api, dg, name, w, written[t],
        fmt::format("Service '{}' with latest revision '{{latest}}' is available at URL:", name),
        "The previous revisions keep serving.");
  }
  return rc;
}

}  // namespace

void add_apply_command(CLI::App& app, Session& s) {
  struct Flags {
    std::string file;
    WaitOptions w;
  };
  auto f = std::make_shared<Flags>();
  auto* apply =
      app.add_subcommand("apply", "create or update services from Knative YAML (multi-document)");
  apply->add_option("-f,--filename", f->file, "YAML file, or - for standard input")->required();
  add_wait_flags(apply, f->w);
  apply->callback([&s, f] {
    s.run = [&s, f](const ApiClient& api) { return apply_file(api, s.g, f->file, f->w); };
  });
}

}  // namespace elafros::cli
