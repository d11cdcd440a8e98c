// elafros secret create generic|docker-registry|tls|list|describe|delete and elafros configmap
// create|list|describe|delete: v1 Secrets and ConfigMaps, as kubectl creates them
// (--from-literal KEY=VALUE, --from-file [KEY=]PATH). describe never shows a Secret's values.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "elafros/base64.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros::cli {
namespace {

struct ConfigFlags {
  std::string name, type = "Opaque";
  std::vector<std::string> literals, files;
  bool immutable = false;
  std::string docker_server, docker_username, docker_email;  // secret create docker-registry
  bool password_stdin = false;
  std::string cert_file, key_file;  // secret create tls
};

std::string collection(const Globals& g, const char* plural) {
  return fmt::format("/api/v1/namespaces/{}/{}", g.ns, plural);
}

// --from-literal KEY=VALUE and --from-file [KEY=]PATH (a directory: each regular file in it).
std::map<std::string, std::string> entries(const ConfigFlags& f) {
  std::map<std::string, std::string> out;
  auto add = [&out](const std::string& key, std::string value, const std::string& flag) {
    if (!out.emplace(key, std::move(value)).second)
      throw std::runtime_error(fmt::format("{}: the key \"{}\" is given twice", flag, key));
  };
  for (const auto& l : f.literals) {
    auto eq = l.find('=');
    if (eq == std::string::npos || eq == 0)
      throw std::runtime_error(fmt::format("--from-literal \"{}\" is not KEY=VALUE", l));
    add(l.substr(0, eq), l.substr(eq + 1), "--from-literal " + l);
  }
  for (const auto& spec : f.files) {
    auto eq = spec.find('=');
    std::string key = eq == std::string::npos ? "" : spec.substr(0, eq);
    std::string path = eq == std::string::npos ? spec : spec.substr(eq + 1);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      if (!key.empty())
        throw std::runtime_error(
            fmt::format("--from-file {}: a directory takes no KEY (each file is a key)", spec));
      for (const auto& e : fs::directory_iterator(path, ec))
        if (e.is_regular_file())
          add(e.path().filename().string(), read_input(e.path().string()), "--from-file " + spec);
      continue;
    }
    if (!fs::is_regular_file(path, ec))
      throw std::runtime_error(fmt::format("--from-file {}: no such file", path));
    add(key.empty() ? fs::path(path).filename().string() : key, read_input(path),
        "--from-file " + spec);
  }
  if (out.empty())
    throw std::runtime_error("give the values: --from-literal KEY=VALUE or --from-file [KEY=]PATH");
  return out;
}

int create(const ApiClient& api, const Globals& g, const ConfigFlags& f, bool secret) {
  json::object data;
  for (auto& [k, v] : entries(f)) data[k] = secret ? json::value(base64_encode(v)) : json::value(v);
  json::object obj{{"apiVersion", "v1"},
                   {"kind", secret ? "Secret" : "ConfigMap"},
                   {"metadata", json::object{{"name", f.name}, {"namespace", g.ns}}},
                   {"data", std::move(data)}};
  if (secret) obj["type"] = f.type;
  if (f.immutable) obj["immutable"] = true;
  json::value body = std::move(obj);
  json::value out = api.call("POST", collection(g, secret ? "secrets" : "configmaps"), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("{} '{}' created in namespace '{}'.\n", secret ? "Secret" : "ConfigMap",
                           f.name, g.ns);
  return 0;
}

// kubectl's 'create secret docker-registry': a kubernetes.io/dockerconfigjson Secret holding one
// login, for imagePullSecrets. The password comes on stdin, never in argv.
int create_docker_registry(const ApiClient& api, const Globals& g, const ConfigFlags& f) {
  if (f.docker_server.empty() || f.docker_username.empty() || !f.password_stdin)
    throw std::runtime_error(
        "secret create docker-registry needs --docker-server HOST, --docker-username USER and "
        "--docker-password-stdin (the password on stdin)");
  std::string password;
  std::getline(std::cin, password);
  if (password.empty()) throw std::runtime_error("--docker-password-stdin: stdin held no password");
  json::object entry{{"username", f.docker_username},
                     {"password", password},
                     {"auth", base64_encode(f.docker_username + ":" + password)}};
  if (!f.docker_email.empty()) entry["email"] = f.docker_email;
  std::string config =
      json::serialize(json::object{{"auths", json::object{{f.docker_server, std::move(entry)}}}});
  json::value body =
      json::object{{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"metadata", json::object{{"name", f.name}, {"namespace", g.ns}}},
                   {"type", "kubernetes.io/dockerconfigjson"},
                   {"data", json::object{{".dockerconfigjson", base64_encode(config)}}}};
  json::value out = api.call("POST", collection(g, "secrets"), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format(
      "Secret '{}' created in namespace '{}'. Pull with it: imagePullSecrets: [{{name: {}}}].\n",
      f.name, g.ns, f.name);
  return 0;
}

// kubectl's 'create secret tls': a kubernetes.io/tls Secret, for a DomainMapping's
// spec.tls.secretName.
int create_tls(const ApiClient& api, const Globals& g, const ConfigFlags& f) {
  auto read = [](const std::string& path, const char* flag) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read {}", flag, path));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.find("-----BEGIN ") == std::string::npos)
      throw std::runtime_error(fmt::format("{}: {} is not PEM (no -----BEGIN line)", flag, path));
    return text;
  };
  std::string cert = read(f.cert_file, "--cert");
  std::string key = read(f.key_file, "--key");
  json::value body = json::object{
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata", json::object{{"name", f.name}, {"namespace", g.ns}}},
      {"type", "kubernetes.io/tls"},
      {"data", json::object{{"tls.crt", base64_encode(cert)}, {"tls.key", base64_encode(key)}}}};
  json::value out = api.call("POST", collection(g, "secrets"), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format(
      "Secret '{}' created in namespace '{}'. Serve a domain with it: 'elafros domain create "
      "DOMAIN --ref SERVICE --tls {}'.\n",
      f.name, g.ns, f.name);
  return 0;
}

int list(const ApiClient& api, const Globals& g, bool secret) {
  json::value l = api.call("GET", collection(g, secret ? "secrets" : "configmaps"));
  if (g.output != "table") return print(g, l), 0;
  std::vector<std::vector<std::string>> rows;
  if (secret)
    rows.push_back({"NAME", "TYPE", "DATA", "AGE"});
  else
    rows.push_back({"NAME", "DATA", "AGE"});
  for (const auto& o : array_at(l, {"items"})) {
    std::size_t n = 0;
    for (const char* key : {"data", "binaryData"})
      if (const json::value* d = o.as_object().if_contains(key); d && d->is_object())
        n += d->get_object().size();
    std::vector<std::string> row{field(o, "metadata.name")};
    if (secret) row.push_back(field(o, "type"));
    row.push_back(std::to_string(n));
    row.push_back(age(field(o, "metadata.creationTimestamp")));
    rows.push_back(std::move(row));
  }
  std::cout << table(rows);
  return 0;
}

int describe(const ApiClient& api, const Globals& g, const std::string& name, bool secret) {
  json::value o = api.call("GET", collection(g, secret ? "secrets" : "configmaps") + "/" + name);
  if (g.output != "table") return print(g, o), 0;
  std::cout << fmt::format("Name:        {}\nNamespace:   {}\n", name, g.ns);
  if (secret) std::cout << fmt::format("Type:        {}\n", field(o, "type"));
  if (field(o, "immutable") == "true") std::cout << "Immutable:   true\n";
  std::cout << fmt::format("Age:         {}\n\nData\n====\n",
                           age(field(o, "metadata.creationTimestamp")));
  for (const char* key : {"data", "binaryData"}) {
    const json::value* d = o.as_object().if_contains(key);
    if (!d || !d->is_object()) continue;
    for (const auto& kv : d->get_object()) {
      std::string v = kv.value().is_string() ? std::string(kv.value().get_string()) : "";
      if (secret || std::string_view(key) == "binaryData")
        std::cout << fmt::format("{}:  {} bytes\n", std::string_view(kv.key()),
                                 base64_decode(v).value_or("").size());
      else
        std::cout << fmt::format("{}:\n----\n{}\n\n", std::string_view(kv.key()), v);
    }
  }
  return 0;
}

void add_kind(CLI::App& app, Session& s, bool secret) {
  const char* word = secret ? "secret" : "configmap";
  auto* top = app.add_subcommand(word, secret ? "manage secrets (values encrypted at rest)"
                                              : "manage config maps")
                  ->require_subcommand(1);
  if (!secret) top->alias("cm");
  auto f = std::make_shared<ConfigFlags>();
  CLI::App* create_cmd = top->add_subcommand("create", fmt::format("create a {}", word));
  CLI::App* create_top = create_cmd;
  if (secret) {
    // kubectl's form: secret create generic NAME.
    create_cmd = create_cmd->add_subcommand("generic", "a secret from literals and files");
    create_cmd->add_option("--type", f->type, "the Secret's type (default Opaque)");
  }
  create_cmd->add_option("name", f->name, "its name")->required();
  create_cmd->add_option("--from-literal", f->literals, "KEY=VALUE (repeatable)");
  create_cmd->add_option("--from-file", f->files,
                         "[KEY=]PATH: a file's content (KEY defaults to its name), or every file "
                         "of a directory (repeatable)");
  create_cmd->add_flag("--immutable", f->immutable, "its data may never change");
  create_cmd->callback([&s, f, secret] {
    s.run = [&s, f, secret](const ApiClient& api) { return create(api, s.g, *f, secret); };
  });
  if (secret) {
    auto* docker = create_top->add_subcommand(
        "docker-registry",
        "a registry login for imagePullSecrets (kubernetes.io/dockerconfigjson)");
    docker->add_option("name", f->name, "its name")->required();
    docker->add_option("--docker-server", f->docker_server, "the registry, HOST[:PORT]")
        ->required();
    docker->add_option("--docker-username", f->docker_username, "the user")->required();
    docker->add_flag("--docker-password-stdin", f->password_stdin, "read the password from stdin")
        ->required();
    docker->add_option("--docker-email", f->docker_email, "an email, kept in the config");
    docker->callback([&s, f] {
      s.run = [&s, f](const ApiClient& api) { return create_docker_registry(api, s.g, *f); };
    });
    auto* tls = create_top->add_subcommand(
        "tls", "a certificate and its key for a DomainMapping (kubernetes.io/tls)");
    tls->add_option("name", f->name, "its name")->required();
    tls->add_option("--cert", f->cert_file, "the certificate chain, PEM")->required();
    tls->add_option("--key", f->key_file, "its private key, PEM")->required();
    tls->callback(
        [&s, f] { s.run = [&s, f](const ApiClient& api) { return create_tls(api, s.g, *f); }; });
  }
  top->add_subcommand("list", fmt::format("list {}s", word))->callback([&s, secret] {
    s.run = [&s, secret](const ApiClient& api) { return list(api, s.g, secret); };
  });
  auto name = std::make_shared<std::string>();
  auto* desc =
      top->add_subcommand("describe", secret ? "show a secret's keys and sizes (never its values)"
                                             : "show a config map");
  desc->add_option("name", *name, "its name")->required();
  desc->callback([&s, name, secret] {
    s.run = [&s, name, secret](const ApiClient& api) { return describe(api, s.g, *name, secret); };
  });
  auto* del = top->add_subcommand("delete", fmt::format("delete a {}", word));
  del->add_option("name", *name, "its name")->required();
  del->callback([&s, name, secret, word] {
    s.run = [&s, name, secret, word](const ApiClient& api) {
      api.call("DELETE", collection(s.g, secret ? "secrets" : "configmaps") + "/" + *name);
      if (s.g.output == "table")
        std::cout << fmt::format("{} '{}' deleted in namespace '{}'.\n",
                                 secret ? "Secret" : "ConfigMap", *name, s.g.ns);
      (void)word;
      return 0;
    };
  });
}

}  // namespace

void add_config_commands(CLI::App& app, Session& s) {
  add_kind(app, s, true);
  add_kind(app, s, false);
}

}  // namespace elafros::cli
