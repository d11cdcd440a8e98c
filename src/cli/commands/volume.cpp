// elafros volume create|list|describe|delete: named local volumes, as v1 PersistentVolumeClaims
// (docs/architecture.md, "Volumes"). A service mounts one with a persistentVolumeClaim volume
// (or --mount /DIR=pvc:NAME); its data outlives revisions, and goes when the volume is deleted.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <map>
#include <set>

#include "cli/commands.hpp"
#include "cli/output.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

struct VolumeFlags {
  std::string name, size = "1Gi", storage_class;
  std::vector<std::string> access_modes;
};

std::string collection(const Globals& g) {
  return fmt::format("/api/v1/namespaces/{}/persistentvolumeclaims", g.ns);
}

// kubectl's short forms of the access modes.
std::string access_mode(const std::string& text) {
  static const std::map<std::string, std::string> kModes{
      {"rwo", "ReadWriteOnce"},     {"readwriteonce", "ReadWriteOnce"},
      {"rox", "ReadOnlyMany"},      {"readonlymany", "ReadOnlyMany"},
      {"rwx", "ReadWriteMany"},     {"readwritemany", "ReadWriteMany"},
      {"rwop", "ReadWriteOncePod"}, {"readwriteoncepod", "ReadWriteOncePod"}};
  std::string key;
  for (char c : text) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = kModes.find(key);
  if (it == kModes.end())
    throw std::runtime_error(
        fmt::format("--access-mode \"{}\": the modes are ReadWriteOnce (RWO), ReadOnlyMany (ROX), "
                    "ReadWriteMany (RWX) and ReadWriteOncePod (RWOP)",
                    text));
  return it->second;
}

int create(const ApiClient& api, const Globals& g, const VolumeFlags& f) {
  json::array modes;
  for (const auto& m : f.access_modes) modes.emplace_back(access_mode(m));
  if (modes.empty()) modes.emplace_back("ReadWriteOnce");
  json::object spec{{"accessModes", std::move(modes)},
                    {"resources", json::object{{"requests", json::object{{"storage", f.size}}}}}};
  if (!f.storage_class.empty()) spec["storageClassName"] = f.storage_class;
  json::value body = json::object{{"apiVersion", "v1"},
                                  {"kind", "PersistentVolumeClaim"},
                                  {"metadata", json::object{{"name", f.name}, {"namespace", g.ns}}},
                                  {"spec", std::move(spec)}};
  json::value out = api.call("POST", collection(g), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format(
      "Volume '{}' created in namespace '{}'. Mount it with --mount /DIR=pvc:{} (or a "
      "persistentVolumeClaim volume).\n",
      f.name, g.ns, f.name);
  return 0;
}

// The services of the namespace whose template mounts each claim.
std::map<std::string, std::set<std::string>> mounted_by(const ApiClient& api, const Globals& g) {
  std::map<std::string, std::set<std::string>> out;
  json::value services =
      api.call("GET", fmt::format("/apis/serving.knative.dev/v1/namespaces/{}/services", g.ns));
  for (const auto& s : array_at(services, {"items"}))
    for (const auto& v : array_at(s, {"spec", "template", "spec", "volumes"})) {
      std::string claim = field(v, "persistentVolumeClaim.claimName");
      if (!claim.empty()) out[claim].insert(field(s, "metadata.name"));
    }
  return out;
}

std::string joined(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "<none>" : out;
}

int list(const ApiClient& api, const Globals& g) {
  json::value l = api.call("GET", collection(g));
  if (g.output != "table") return print(g, l), 0;
  auto users = mounted_by(api, g);
  std::vector<std::vector<std::string>> rows{
      {"NAME", "STATUS", "CAPACITY", "ACCESS MODES", "MOUNTED BY", "AGE"}};
  for (const auto& o : array_at(l, {"items"})) {
    std::string modes;
    for (const auto& m : array_at(o, {"spec", "accessModes"}))
      modes += (modes.empty() ? "" : ",") + std::string(m.is_string() ? m.get_string() : "");
    std::string name = field(o, "metadata.name");
    rows.push_back({name, field(o, "status.phase"), field(o, "status.capacity.storage"), modes,
                    joined(users[name]), age(field(o, "metadata.creationTimestamp"))});
  }
  std::cout << table(rows);
  return 0;
}

int describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value o = api.call("GET", collection(g) + "/" + name);
  if (g.output != "table") return print(g, o), 0;
  std::string modes;
  for (const auto& m : array_at(o, {"spec", "accessModes"}))
    modes += (modes.empty() ? "" : ", ") + std::string(m.is_string() ? m.get_string() : "");
  std::cout << fmt::format(
      "Name:          {}\nNamespace:     {}\nStatus:        {}\nCapacity:      {} (recorded, not "
      "enforced)\nAccess Modes:  {}\nMounted By:    {}\nUID:           {}\nAge:           {}\n",
      name, g.ns, field(o, "status.phase"), field(o, "status.capacity.storage"), modes,
      joined(mounted_by(api, g)[name]), field(o, "metadata.uid"),
      age(field(o, "metadata.creationTimestamp")));
  return 0;
}

}  // namespace

void add_volume_commands(CLI::App& app, Session& s) {
  auto* top = app.add_subcommand("volume",
                                 "manage named local volumes (PersistentVolumeClaims) that "
                                 "outlive revisions")
                  ->require_subcommand(1);
  top->alias("pvc");
  auto f = std::make_shared<VolumeFlags>();
  auto* create_cmd = top->add_subcommand("create", "create a volume");
  create_cmd->add_option("name", f->name, "its name")->required();
  create_cmd->add_option("--size", f->size,
                         "the storage it requests, e.g. 10Gi (recorded, not enforced; default "
                         "1Gi)");
  create_cmd->add_option("--access-mode", f->access_modes,
                         "ReadWriteOnce (RWO, the default), ReadOnlyMany, ReadWriteMany or "
                         "ReadWriteOncePod (repeatable)");
  create_cmd->add_option("--storage-class", f->storage_class,
                         "a storageClassName to record, for a cluster it may move to");
  create_cmd->callback(
      [&s, f] { s.run = [&s, f](const ApiClient& api) { return create(api, s.g, *f); }; });
  top->add_subcommand("list", "list volumes and the services that mount them")->callback([&s] {
    s.run = [&s](const ApiClient& api) { return list(api, s.g); };
  });
  auto name = std::make_shared<std::string>();
  auto* desc = top->add_subcommand("describe", "show a volume");
  desc->add_option("name", *name, "its name")->required();
  desc->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return describe(api, s.g, *name); };
  });
  auto* del = top->add_subcommand(
      "delete", "delete a volume and its data (refused while a running instance mounts it)");
  del->add_option("name", *name, "its name")->required();
  del->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) {
      api.call("DELETE", collection(s.g) + "/" + *name);
      if (s.g.output == "table")
        std::cout << fmt::format("Volume '{}' and its data deleted in namespace '{}'.\n", *name,
                                 s.g.ns);
      return 0;
    };
  });
}

}  // namespace elafros::cli
