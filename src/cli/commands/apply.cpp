// elafros apply -f FILE: YAML of any kind elafros serves (Knative Services, brokers, roles, …),
// one document or many; Services are waited for until Ready.

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
#include "elafros/kind_registry.hpp"

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
  std::vector<const KindInfo*> kinds;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    std::string kind = field(docs[i], "kind"), api_version = field(docs[i], "apiVersion");
    const KindInfo* k = nullptr;
    for (const auto& info : builtin_kinds().all())
      if (info.kind == kind && info.api_version() == api_version) k = &info;
    if (!k || !k->client_writable)
      throw std::runtime_error(fmt::format(
          "{} document {}: kind \"{}\" apiVersion \"{}\" is not one elafros applies ('kubectl "
          "api-resources' lists the kinds; revisions are made by services)",
          file, i + 1, kind, api_version));
    if (field(docs[i], "metadata.name").empty())
      throw std::runtime_error(
          fmt::format("{} document {}: metadata.name is required", file, i + 1));
    if (k->kind == "Service" && k->group == "serving.knative.dev") absolutize_images(docs[i]);
    kinds.push_back(k);
  }
  std::vector<std::string> touched;
  std::map<std::string, json::value> written;  // ns/name → the last write's answer
  for (std::size_t i = 0; i < docs.size(); ++i) {
    auto& doc = docs[i];
    const KindInfo& k = *kinds[i];
    Globals dg = g;
    if (std::string ns = field(doc, "metadata.namespace"); !ns.empty()) dg.ns = ns;
    std::string name = field(doc, "metadata.name");
    std::string base = k.group.empty() ? "/api/" + k.version : "/apis/" + k.api_version();
    std::string collection = k.namespaced
                                 ? fmt::format("{}/namespaces/{}/{}", base, dg.ns, k.plural)
                                 : fmt::format("{}/{}", base, k.plural);
    ApiResponse before = api.request("GET", collection + "/" + name);
    if (before.status != 404 && before.status != 200) ApiClient::body_or_throw(before);
    json::value after = before.status == 404 ? api.call("POST", collection, &doc)
                                             : api.call("PUT", collection + "/" + name, &doc);
    const char* what =
        before.status == 404 ? "created"
        : field(after, "metadata.resourceVersion") == field(before.body, "metadata.resourceVersion")
            ? "unchanged"
            : "updated";
    std::string where = k.namespaced ? fmt::format(" in namespace '{}'", dg.ns) : "";
    std::cout << fmt::format("{} '{}' {}{}.\n", k.kind, name, what, where);
    if (k.kind != "Service" || k.group != "serving.knative.dev") continue;
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
  auto* apply = app.add_subcommand(
      "apply", "create or update resources from YAML (multi-document; services wait until Ready)");
  apply->add_option("-f,--filename", f->file, "YAML file, or - for standard input")->required();
  add_wait_flags(apply, f->w);
  apply->callback([&s, f] {
    s.run = [&s, f](const ApiClient& api) { return apply_file(api, s.g, f->file, f->w); };
  });
}

}  // namespace elafros::cli
