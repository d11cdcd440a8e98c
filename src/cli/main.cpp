// elafros: the command-line client. Verbs and flags follow kn's where kn has them; each
// resource's commands live in commands/<resource>.cpp.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/completion.hpp"
#include "cli/contexts.hpp"
#include "version.hpp"

using namespace elafros::cli;

int main(int argc, char** argv) {
  CLI::App app{"elafros: deploy and run serverless services on one machine (kn-compatible verbs)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (-o, -n, --socket) may follow the subcommand, as in kn
  Session s;
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v && *v ? v : "");
  };
  Overrides o;
  o.socket = env("ELAFROS_SOCKET");
  o.server = env("ELAFROS_SERVER");
  o.token = env("ELAFROS_TOKEN");
  o.ca_file = env("ELAFROS_CACERT");
  s.g.config_path = default_config_path();
  bool debug = false;
  app.add_option("--socket", o.socket,
                 "elafrosd's API socket (default $ELAFROS_SOCKET, the context's, or "
                 "/run/elafros/elafros.sock)");
  app.add_option("--server", o.server,
                 "the API: unix:///PATH or https://HOST:PORT (default $ELAFROS_SERVER or the "
                 "context's); the token comes from $ELAFROS_TOKEN or the context");
  app.add_option("--context", o.context, "the context to use (default: current-context)");
  app.add_option("--config", s.g.config_path,
                 "the contexts' file (default ~/.config/elafros/config.yaml)");
  app.add_flag("--debug", debug, "show each request and answer on stderr (tokens redacted)");
  app.add_option("-n,--namespace", o.ns, "namespace (default: the context's, or \"default\")");
  app.add_option("-o,--output", s.g.output,
                 "output format: table, json, yaml, url (describe: the address alone), or csv "
                 "(usage)")
      ->check(CLI::IsMember({"table", "json", "yaml", "url", "csv"}));
  app.set_version_flag("--version", std::string(elafros::kVersion));

  add_service_commands(app, s);
  add_revision_commands(app, s);
  add_apply_command(app, s);
  add_image_commands(app, s);
  add_logs_command(app, s);
  add_instance_commands(app, s);
  add_system_commands(app, s);
  add_eventing_commands(app, s);
  add_source_commands(app, s);
  add_build_commands(app, s);
  add_namespace_commands(app, s);
  add_auth_commands(app, s);
  add_config_commands(app, s);
  add_volume_commands(app, s);
  add_domain_commands(app, s);
  add_context_commands(app, s);
  add_usage_command(app, s);
  std::string shell;
  auto* completion = app.add_subcommand("completion", "print a shell completion script");
  completion->add_option("shell", shell, "bash")->required()->check(CLI::IsMember({"bash"}));
  completion->callback([&] {
    s.run = [&](const ApiClient&) {
      std::cout << bash_completion(app);
      return 0;
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {  // a flag value a command could not take
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
  if (!s.run) return 0;
  try {
    ApiEndpoint endpoint =
        resolve_endpoint(CliConfig::load(s.g.config_path), o, "/run/elafros/elafros.sock", s.g.ns);
    endpoint.debug = debug;
    s.g.socket = endpoint.socket;
    return s.run(ApiClient(endpoint));
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
}
