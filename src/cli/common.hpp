#pragma once
// What the CLI's commands share: the global flags, the API's paths, printing, reading
// conditions, waiting through watches, and pulls that show their progress. API errors throw
// std::runtime_error with the daemon's message, which main prints.

#include <boost/json/value.hpp>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "cli/api_client.hpp"

namespace elafros::cli {

struct Globals {
  std::string socket;
  std::string config_path;  // the contexts' file
  std::string ns = "default";
  std::string output = "table";
};

// kn's --wait, --no-wait, --wait-timeout and --wait-window.
struct WaitOptions {
  int timeout_seconds = 600;
  int window_seconds = 2;  // after Ready=False, the time it has to become True
  bool no_wait = false;
};

std::string services_path(const Globals& g);
std::string revisions_path(const Globals& g);
// "?labelSelector=serving.knative.dev/service=NAME", URL-encoded.
std::string of_service(const std::string& service);
// oci:DIR paths are relative to where the user runs the command, not to the daemon.
std::string absolutize_reference(const std::string& ref);
// JSON or YAML, as -o says.
void print(const Globals& g, const boost::json::value& v);

const boost::json::object* condition(const boost::json::value& obj, std::string_view type);
std::string condition_status(const boost::json::value& obj, std::string_view type);
std::string condition_summary(const boost::json::value& obj);  // "3 OK / 3"
// describe's "Conditions:" table: OK (++, !!, ??), type, age, reason and message.
void print_conditions(const boost::json::value& obj);
std::string label(const boost::json::value& obj, std::string_view key);
boost::json::array array_at(const boost::json::value& v,
                            std::initializer_list<std::string_view> path);
std::string traffic_summary(const boost::json::value& service);
// Which of a pod spec's containers serves: the one with ports when there are several (Knative's
// rule), else the first.
std::size_t serving_container(const boost::json::array& containers);

// KEY=VALUE; throws naming the flag.
std::pair<std::string, std::string> split_assignment(const std::string& text, const char* flag);
// A file's text, or standard input for "-".
std::string read_input(const std::string& file);
// Seconds in a duration such as "90s", "10m", "1h30m" or "2d". Throws std::runtime_error.
std::int64_t parse_duration_seconds(const std::string& text);

// Watches the service from `written` (the object a write returned) until it is Ready, or
// Ready=False holds for the wait window, or the timeout passes. Prints progress and the
// outcome; returns the exit code.
int wait_ready(const ApiClient& api, const Globals& g, const std::string& name,
               const WaitOptions& w, const boost::json::value& written,
               const std::string& done_message, const char* failure_hint);
// Watches one object until it is gone (kubectl delete --wait does the same).
void wait_deleted(const ApiClient& api, const std::string& collection, const std::string& name,
                  const boost::json::value& marked);

// Imports or pulls through the streaming endpoint, showing progress; returns the image.
boost::json::value pull_image(const ApiClient& api, const Globals& g, const std::string& reference,
                              const std::string& name);
// Before a service uses a registry image, pull it here, where the user sees the progress, as
// its pull policy says: when not stored ("" or IfNotPresent), always (Always), or never.
void pull_for_service(const ApiClient& api, const Globals& g, const std::string& image,
                      const std::string& pull_policy);

}  // namespace elafros::cli
