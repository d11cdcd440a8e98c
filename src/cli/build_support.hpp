#pragma once
// What 'build' and 'service create --source' share: uploading a source directory, naming a
// template, following a Build's logs to its end, and reporting its outcome.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "cli/common.hpp"

namespace elafros::cli {

std::string builds_path(const Globals& g);
// Packs and uploads the directory; returns the archive's digest.
std::string upload_source(const ApiClient& api, const Globals& g, const std::string& dir);
// spec.template for a template by name: the namespace's BuildTemplate, else the
// ClusterBuildTemplate; throws when neither exists.
boost::json::object template_ref(const ApiClient& api, const Globals& g, const std::string& name,
                                 const std::vector<std::string>& args);
// "[step] line" on stdout, live with follow until the Build is over.
int print_logs(const ApiClient& api, const Globals& g, const std::string& name, bool follow,
               const std::string& step);
// Follows the logs, then returns the Build once it is over.
boost::json::value follow_build(const ApiClient& api, const Globals& g, const std::string& name);
// 'service create|update --source': builds the directory with the template (default: the
// buildpacks ClusterBuildTemplate, with BUILDPACK when a buildpack is named), showing its steps
// live, and returns the image as NAME@sha256:… to deploy. Throws once a failure is reported.
std::string build_for_service(const ApiClient& api, const Globals& g, const std::string& service,
                              const std::string& dir, const std::string& templ,
                              const std::string& buildpack);
// Prints the outcome (and the step table); 0 when it succeeded.
int report_build(const Globals& g, const boost::json::value& build, bool table_of_steps);

}  // namespace elafros::cli
