// elafros image import|pull|list|rm|prune and elafros registry login|logout|list.

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <cctype>
#include <cstring>
#include <iostream>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "elafros/registry_reference.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

// The push's progress: one line per blob (redrawn in place on a terminal), then the digest.
int image_push(const ApiClient& api, const Globals& g, const std::string& name,
               const std::string& destination) {
  json::value body = json::object{{"image", name}, {"destination", destination}};
  bool tty = ::isatty(STDOUT_FILENO) == 1 && g.output == "table";
  json::value pushed, error;
  api.stream("POST", "/apis/elafros.dev/v1/images/push", body, [&](const json::value& line) {
    const auto* o = line.if_object();
    if (!o) return;
    if (field(line, "kind") == "Status") error = line;
    if (const auto* p = o->if_contains("pushed")) pushed = *p;
    const auto* p = o->if_contains("progress");
    if (!p || g.output != "table") return;
    std::string phase = field(*p, "phase"), digest = field(*p, "digest").substr(0, 19);
    std::int64_t done = p->at("done").to_number<std::int64_t>();
    std::int64_t total = p->at("total").to_number<std::int64_t>();
    std::string what = phase == "exists"    ? "already in the registry"
                       : phase == "mounted" ? "mounted from another repository"
                       : phase == "done"    ? "pushed " + human_size(total)
                       : phase == "manifest"
                           ? "manifest pushed"
                           : fmt::format("pushing {} / {}", human_size(done), human_size(total));
    std::string text = fmt::format("  {} {:<8} {}", digest, field(*p, "kind"), what);
    if (tty)
      std::cout << "\r\x1b[2K" << text << (phase == "uploading" ? "" : "\n") << std::flush;
    else if (phase != "uploading" || done == 0)
      std::cout << text << "\n" << std::flush;
  });
  if (!error.is_null()) throw std::runtime_error(field(error, "message"));
  if (pushed.is_null()) throw std::runtime_error("elafrosd ended the push without an outcome");
  if (g.output != "table") return print(g, pushed), 0;
  std::cout << fmt::format("Image '{}' pushed to {}: {}\n", name, destination,
                           field(pushed, "digest"));
  return 0;
}

int image_import(const ApiClient& api, const Globals& g, const std::string& reference,
                 const std::string& name) {
  json::value v = pull_image(api, g, absolutize_reference(reference), name);
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format("Image '{}' {}: {} ({})\n", field(v, "name"),
                           is_transport_reference(reference) && reference.rfind("docker://", 0) != 0
                               ? "imported"
                               : "pulled",
                           field(v, "digest"), human_size(v.at("size").to_number<std::int64_t>()));
  return 0;
}

int image_list(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/images");
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
  api.call("DELETE", "/apis/elafros.dev/v1/images/" + encoded);
  std::cout << fmt::format("Image '{}' removed; 'elafros image prune' frees its space.\n", name);
  return 0;
}

int image_prune(const ApiClient& api, const Globals& g) {
  json::value body = json::object{};
  json::value v = api.call("POST", "/apis/elafros.dev/v1/images/prune", &body);
  if (g.output != "table") return print(g, v), 0;
  for (const auto& name : array_at(v, {"removedImages"}))
    std::cout << "Removed image " << name.as_string().c_str() << "\n";
  std::cout << fmt::format("Freed {}.\n", human_size(v.at("freedBytes").to_number<std::int64_t>()));
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
  json::value v = api.call("POST", "/apis/elafros.dev/v1/registries/login", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format("Login to {} as {} succeeded; elafrosd stores it for pulls.\n",
                           field(v, "registry"), field(v, "username"));
  return 0;
}

int registry_logout(const ApiClient& api, const Globals& g, const std::string& registry) {
  json::value body = json::object{{"registry", registry}};
  json::value v = api.call("POST", "/apis/elafros.dev/v1/registries/logout", &body);
  if (g.output != "table") return print(g, v), 0;
  std::cout << fmt::format("Removed the login for {}.\n", field(v, "registry"));
  return 0;
}

int registry_list(const ApiClient& api, const Globals& g) {
  json::value v = api.call("GET", "/apis/elafros.dev/v1/registries");
  if (g.output != "table") return print(g, v), 0;
  std::vector<std::vector<std::string>> rows{{"REGISTRY", "USERNAME"}};
  for (const auto& i : v.at("items").as_array())
    rows.push_back({field(i, "registry"), field(i, "username")});
  std::cout << table(rows);
  return 0;
}

}  // namespace

void add_image_commands(CLI::App& app, Session& s) {
  struct Flags {
    std::string reference, name, registry, username;
    bool password_stdin = false;
  };
  auto f = std::make_shared<Flags>();
  auto set = [&s, f](CLI::App* c, int (*run)(const ApiClient&, const Globals&, const Flags&)) {
    c->callback(
        [&s, f, run] { s.run = [&s, f, run](const ApiClient& api) { return run(api, s.g, *f); }; });
  };
  auto* img = app.add_subcommand("image", "manage images")->require_subcommand(1);
  auto* imp = img->add_subcommand("import", "import an image into elafrosd's image store");
  imp->add_option("reference", f->reference,
                  "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or "
                  "docker://HOST/REPO[:TAG|@DIGEST]")
      ->required();
  imp->add_option("--name", f->name, "name to store it under (default DIR:TAG)");
  set(imp, [](const ApiClient& api, const Globals& g, const Flags& f) {
    return image_import(api, g, f.reference, f.name);
  });
  auto* pull = img->add_subcommand(
      "pull", "pull an image from a registry (again, if stored), e.g. docker.io/library/nginx");
  pull->add_option("reference", f->reference, "[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST]")
      ->required();
  pull->add_option("--name", f->name, "name to store it under (default: the full reference)");
  set(pull, [](const ApiClient& api, const Globals& g, const Flags& f) {
    return image_import(
        api, g, f.reference.rfind("docker://", 0) == 0 ? f.reference : "docker://" + f.reference,
        f.name);
  });
  auto* push = img->add_subcommand(
      "push", "push a stored image to a registry (the same digest lands there)");
  push->add_option("name", f->name, "the stored image, e.g. app:latest")->required();
  push->add_option("destination", f->reference, "HOST[:PORT]/REPO[:TAG]")->required();
  set(push, [](const ApiClient& api, const Globals& g, const Flags& f) {
    return image_push(api, g, f.name, f.reference);
  });
  set(img->add_subcommand("list", "list images"),
      [](const ApiClient& api, const Globals& g, const Flags&) { return image_list(api, g); });
  auto* rm = img->add_subcommand("rm", "remove an image no revision uses");
  rm->add_option("name", f->name, "image name")->required();
  set(rm, [](const ApiClient& api, const Globals& g, const Flags& f) {
    return image_rm(api, g, f.name);
  });
  set(img->add_subcommand("prune", "remove images no revision uses, and free their space"),
      [](const ApiClient& api, const Globals& g, const Flags&) { return image_prune(api, g); });

  auto* reg = app.add_subcommand("registry", "manage registry logins")->require_subcommand(1);
  auto* login = reg->add_subcommand(
      "login", "log in to a registry; elafrosd keeps the login (mode 0600) for its pulls");
  login->add_option("host", f->registry, "HOST[:PORT] of the registry")->required();
  login->add_option("-u,--username", f->username, "user name")->required();
  login->add_flag("--password-stdin", f->password_stdin, "read the password from standard input");
  set(login, [](const ApiClient& api, const Globals& g, const Flags& f) {
    return registry_login(api, g, f.registry, f.username, f.password_stdin);
  });
  auto* logout = reg->add_subcommand("logout", "remove a registry login");
  logout->add_option("host", f->registry, "HOST[:PORT]")->required();
  set(logout, [](const ApiClient& api, const Globals& g, const Flags& f) {
    return registry_logout(api, g, f.registry);
  });
  set(reg->add_subcommand("list", "list registry logins (never their passwords)"),
      [](const ApiClient& api, const Globals& g, const Flags&) { return registry_list(api, g); });
}

}  // namespace elafros::cli
