#pragma once
// The CLI's commands. Each returns the process exit code; API errors throw std::runtime_error
// with the daemon's message, which main prints.

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/api_client.hpp"

namespace elafros::cli {

struct Globals {
  std::string socket;
  std::string ns = "default";
  std::string output = "table";
};

struct WaitOptions {
  int timeout_seconds = 600;
  bool no_wait = false;
};

// What 'service create' and 'service update' may change in a service's template.
struct TemplateChanges {
  std::optional<std::string> image;
  std::vector<std::string> env;  // NAME=VALUE sets, NAME- unsets
  std::optional<int> port;
  std::optional<std::string> cmd;
  std::optional<std::vector<std::string>> args;
  std::optional<std::string> revision_name;
  std::optional<int> concurrency_limit;  // containerConcurrency
  std::vector<std::pair<std::string, std::string>>
      annotations;                    // autoscaling.knative.dev/* from --scale-*
  std::vector<std::string> limits;    // --limit cpu=500m,memory=128Mi (or memory- to unset)
  std::vector<std::string> requests;  // --request, the same way
  bool any() const {
    return image || !env.empty() || port || cmd || args || revision_name || concurrency_limit ||
           !annotations.empty() || !limits.empty() || !requests.empty();
  }
};

struct TrafficChanges {
  std::vector<std::string> traffic;  // KEY=PERCENT, KEY a revision, @latest or a tag
  std::vector<std::string> tags;     // REVISION=TAG (REVISION may be @latest)
  std::vector<std::string> untags;   // TAG
  bool empty() const { return traffic.empty() && tags.empty() && untags.empty(); }
};

std::string services_path(const Globals& g);
std::string revisions_path(const Globals& g);
// oci:DIR paths are relative to where the user runs the command, not to the daemon.
std::string absolutize_reference(const std::string& ref);
void print(const Globals& g, const boost::json::value& v);

int service_create(const ApiClient& api, const Globals& g, const std::string& name,
                   const TemplateChanges& t, const WaitOptions& w);
int service_update(const ApiClient& api, const Globals& g, const std::string& name,
                   const TemplateChanges& t, const TrafficChanges& traffic, const WaitOptions& w);
int service_rollback(const ApiClient& api, const Globals& g, const std::string& name,
                     const std::string& to, const WaitOptions& w);
int service_list(const ApiClient& api, const Globals& g);
int service_describe(const ApiClient& api, const Globals& g, const std::string& name);
int service_export(const ApiClient& api, const Globals& g, const std::string& name,
                   bool with_revisions);
int service_delete(const ApiClient& api, const Globals& g, const std::string& name);
int revision_list(const ApiClient& api, const Globals& g, const std::string& service);
int revision_describe(const ApiClient& api, const Globals& g, const std::string& name);
int revision_delete(const ApiClient& api, const Globals& g, const std::string& name);
int apply_file(const ApiClient& api, const Globals& g, const std::string& file,
               const WaitOptions& w);
int image_import(const ApiClient& api, const Globals& g, const std::string& reference,
                 const std::string& name);
struct LogsOptions {
  std::string revision;
  std::string instance;
  bool follow = false;
  int tail = -1;      // -1: every stored line
  std::string since;  // "10m", "1h30m", "45s"
  bool timestamps = false;
};
// Seconds in a duration such as "90s", "10m", "1h30m" or "2d". Throws std::runtime_error.
std::int64_t parse_duration_seconds(const std::string& text);
int logs(const ApiClient& api, const Globals& g, const std::string& service, const LogsOptions& o);
int instance_list(const ApiClient& api, const Globals& g, const std::string& service);
int system_stop_all(const ApiClient& api, const Globals& g);
int system_start_all(const ApiClient& api, const Globals& g);
int registry_login(const ApiClient& api, const Globals& g, const std::string& registry,
                   const std::string& username, bool password_stdin);
int registry_logout(const ApiClient& api, const Globals& g, const std::string& registry);
int registry_list(const ApiClient& api, const Globals& g);
int image_list(const ApiClient& api, const Globals& g);
int image_rm(const ApiClient& api, const Globals& g, const std::string& name);
int image_prune(const ApiClient& api, const Globals& g);
int status(const ApiClient& api, const Globals& g);
int kubeconfig(const ApiClient& api, const Globals& g);

// The object `export` writes: no status and no server-set fields, so that both elafros and a
// Knative cluster accept it back.
boost::json::value exportable(const boost::json::value& service);

// Applies --traffic/--tag/--untag to a service's spec.traffic (Knative JSON). Throws
// std::runtime_error naming the flag value that cannot be applied.
// Applies --image, -e, --port, --cmd, --arg, --revision-name, --limit, --request and the
// --scale-* annotations to a Knative revision template.
void apply_template_changes(boost::json::object& tmpl, const TemplateChanges& t, bool creating);
boost::json::array apply_traffic_changes(const boost::json::array& current,
                                         const TrafficChanges& changes);

}  // namespace elafros::cli
