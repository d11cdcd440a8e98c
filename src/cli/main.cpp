// elafros: the command-line client. Verbs and flags follow kn's where kn has them; each
// resource's commands live in commands/<resource>.cpp.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/completion.hpp"
#include "version.hpp"

using namespace elafros::cli;

int main(int argc, char** argv) {
  CLI::App app{"elafros: deploy and run serverless services on one machine (kn-compatible verbs)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (-o, -n, --socket) may follow the subcommand, as in kn
  Session s;
  const char* env_socket = std::getenv("ELAFROS_SOCKET");
  s.g.socket = env_socket && *env_socket ? env_socket : "/run/elafros/elafros.sock";
  app.add_option("--socket", s.g.socket,
                 "elafrosd's API socket (default $ELAFROS_SOCKET or /run/elafros/elafros.sock)");
  app.add_option("-n,--namespace", s.g.ns, "namespace (default \"default\")");
  app.add_option("-o,--output", s.g.output,
                 "output format: table, json, yaml, or url (describe: the address alone)")
      ->check(CLI::IsMember({"table", "json", "yaml", "url"}));
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
    const char* token = std::getenv("ELAFROS_TOKEN");
    return s.run(ApiClient(s.g.socket, token ? token : ""));
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
}
