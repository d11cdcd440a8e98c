// elafros context add|use|list|delete: named servers, CAs, tokens and namespaces in
// ~/.config/elafros/config.yaml (0600), as kubectl's contexts (docs/architecture.md, "CLI").

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/contexts.hpp"
#include "cli/output.hpp"
#include "elafros/base64.hpp"

namespace elafros::cli {
namespace {

struct AddFlags {
  std::string name, server, token, token_file, ca, ns;
  bool use = false;
};

int add(const Globals& g, const AddFlags& f) {
  if (f.server.rfind("unix://", 0) != 0 && f.server.rfind("https://", 0) != 0)
    throw std::runtime_error(fmt::format(
        "--server \"{}\" must be unix:///PATH (the socket) or https://HOST:PORT", f.server));
  if (!f.token.empty() && !f.token_file.empty())
    throw std::runtime_error("give --token or --token-file, not both");
  CliConfig c = CliConfig::load(g.config_path);
  Context ctx;
  ctx.name = f.name;
  ctx.server = f.server;
  ctx.token = f.token;
  ctx.token_file = f.token_file;
  ctx.ns = f.ns;
  if (!f.ca.empty()) {
    std::ifstream in(f.ca);
    if (!in) throw std::runtime_error(fmt::format("--ca {}: cannot read it", f.ca));
    std::ostringstream s;
    s << in.rdbuf();
    if (s.str().find("BEGIN CERTIFICATE") == std::string::npos)
      throw std::runtime_error(fmt::format("--ca {}: is not a PEM certificate", f.ca));
    ctx.ca_data = base64_encode(s.str());
  }
  bool replaced = false;
  for (auto& existing : c.contexts)
    if (existing.name == f.name) existing = ctx, replaced = true;
  if (!replaced) c.contexts.push_back(ctx);
  if (f.use || c.current.empty()) c.current = f.name;
  c.save(g.config_path);
  std::cout << fmt::format("Context '{}' {}{}.\n", f.name, replaced ? "updated" : "added",
                           c.current == f.name ? " and in use" : "");
  return 0;
}

int use(const Globals& g, const std::string& name) {
  CliConfig c = CliConfig::load(g.config_path);
  if (!c.find(name))
    throw std::runtime_error(
        fmt::format("no context is named \"{}\"; 'elafros context list' lists them", name));
  c.current = name;
  c.save(g.config_path);
  std::cout << fmt::format("Switched to context '{}'.\n", name);
  return 0;
}

int list(const Globals& g) {
  CliConfig c = CliConfig::load(g.config_path);
  std::vector<std::vector<std::string>> rows{{"CURRENT", "NAME", "SERVER", "NAMESPACE", "TOKEN"}};
  for (const auto& ctx : c.contexts)
    rows.push_back({ctx.name == c.current ? "*" : "", ctx.name, ctx.server,
                    ctx.ns.empty() ? "default" : ctx.ns,
                    !ctx.token.empty()        ? "yes"
                    : !ctx.token_file.empty() ? ctx.token_file
                                              : "no"});
  std::cout << table(rows);
  return 0;
}

int remove(const Globals& g, const std::string& name) {
  CliConfig c = CliConfig::load(g.config_path);
  if (!c.find(name))
    throw std::runtime_error(
        fmt::format("no context is named \"{}\"; 'elafros context list' lists them", name));
  std::erase_if(c.contexts, [&name](const Context& ctx) { return ctx.name == name; });
  if (c.current == name) c.current.clear();
  c.save(g.config_path);
  std::cout << fmt::format("Context '{}' deleted.\n", name);
  return 0;
}

}  // namespace

void add_context_commands(CLI::App& app, Session& s) {
  auto* ctx = app.add_subcommand("context", "manage contexts: servers, CAs, tokens, namespaces")
                  ->require_subcommand(1);
  auto f = std::make_shared<AddFlags>();
  auto* a = ctx->add_subcommand("add", "add (or replace) a context");
  a->add_option("name", f->name, "its name")->required();
  a->add_option("--server", f->server, "unix:///PATH or https://HOST:PORT")->required();
  a->add_option("--token", f->token, "an elf_ token (kept in the 0600 config file)");
  a->add_option("--token-file", f->token_file, "a file holding the token, read at each use");
  a->add_option("--ca", f->ca, "the server's CA certificate (PEM), for https://");
  a->add_option("--default-namespace", f->ns, "the namespace commands use (default: default)");
  a->add_flag("--use", f->use, "use it now");
  a->callback([&s, f] { s.run = [&s, f](const ApiClient&) { return add(s.g, *f); }; });
  auto name = std::make_shared<std::string>();
  auto* u = ctx->add_subcommand("use", "use a context from now on");
  u->add_option("name", *name, "its name")->required();
  u->callback([&s, name] { s.run = [&s, name](const ApiClient&) { return use(s.g, *name); }; });
  ctx->add_subcommand("list", "list contexts (never their tokens)")->callback([&s] {
    s.run = [&s](const ApiClient&) { return list(s.g); };
  });
  auto* d = ctx->add_subcommand("delete", "delete a context");
  d->add_option("name", *name, "its name")->required();
  d->callback([&s, name] { s.run = [&s, name](const ApiClient&) { return remove(s.g, *name); }; });
}

}  // namespace elafros::cli
