#pragma once
// The CLI's commands, one file per resource under commands/ (docs/architecture.md, "CLI"). Each
// add_* function registers its subcommands and flags, kn's where kn has them; the command the
// user names sets Session::run, which main calls once every flag is parsed.

#include <functional>

#include "cli/common.hpp"

namespace CLI {
class App;
}

namespace elafros::cli {

struct Session {
  Globals g;
  std::function<int(const ApiClient&)> run;  // the parsed command; returns the exit code
};

void add_service_commands(CLI::App& app, Session& s);
void add_revision_commands(CLI::App& app, Session& s);
void add_apply_command(CLI::App& app, Session& s);
void add_image_commands(CLI::App& app, Session& s);  // image and registry
void add_logs_command(CLI::App& app, Session& s);
void add_instance_commands(CLI::App& app, Session& s);
void add_system_commands(CLI::App& app, Session& s);    // status, system, kubeconfig
void add_eventing_commands(CLI::App& app, Session& s);  // broker, trigger, event
void add_source_commands(CLI::App& app, Session& s);    // source, eventtype
void add_build_commands(CLI::App& app, Session& s);     // build, buildtemplate
void add_namespace_commands(CLI::App& app, Session& s);
void add_auth_commands(CLI::App& app, Session& s);     // auth can-i|whoami, token, audit
void add_config_commands(CLI::App& app, Session& s);   // secret, configmap
void add_volume_commands(CLI::App& app, Session& s);   // volume (PersistentVolumeClaims)
void add_domain_commands(CLI::App& app, Session& s);   // domain (DomainMappings)
void add_context_commands(CLI::App& app, Session& s);  // context add|use|list|delete
void add_usage_command(CLI::App& app, Session& s);

// kn's sink syntax: ksvc:NAME[:NAMESPACE], broker:NAME, a bare NAME (a service), or a URL, as a
// Destination; and a Destination as that text again.
boost::json::object sink_destination(const std::string& sink);
std::string destination_text(const boost::json::value& destination);
// The Ready condition's reason, "" when Ready or unknown.
std::string ready_reason(const boost::json::value& object);

// --wait, --no-wait, --wait-timeout and --wait-window, for a command that waits until Ready.
void add_wait_flags(CLI::App* c, WaitOptions& w);

// Makes every spec.template image reference of a Service absolute (see absolutize_reference).
void absolutize_images(boost::json::value& service);

}  // namespace elafros::cli
