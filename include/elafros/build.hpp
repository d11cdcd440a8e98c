#pragma once
// Knative Build (build.knative.dev/v1alpha1) as elafros reads it (docs/architecture.md,
// "Builds"): Build, BuildTemplate and ClusterBuildTemplate, parsed from stored objects their
// kinds admitted, and the resolution of a Build's steps from its template.

#include <boost/json/fwd.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

inline constexpr const char* kBuildGroup = "build.knative.dev";
inline constexpr const char* kBuildVersion = "v1alpha1";
inline constexpr const char* kBuildApiVersion = "build.knative.dev/v1alpha1";
// The condition a Build reports (Knative Build's, like Tekton's TaskRun).
inline constexpr const char* kSucceeded = "Succeeded";
// Where steps see the source, the home directory and the cache (Knative Build's contract).
inline constexpr const char* kWorkspaceDir = "/workspace";
inline constexpr const char* kBuilderHome = "/builder/home";
inline constexpr const char* kCacheDir = "/cache";
// A Build that names no timeout gets Knative Build's default.
inline constexpr std::chrono::minutes kDefaultBuildTimeout{10};

// One step: a container run to completion. A script, when given, is the program; one without a
// shebang runs under /bin/sh -e (Tekton's rule).
struct BuildStep {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  std::string working_dir;  // empty: /workspace
  std::string script;
  std::vector<VolumeMount> volume_mounts;
  bool operator==(const BuildStep&) const = default;
};

// A directory of the build shared by the steps that mount it (only emptyDir on one machine).
struct BuildVolume {
  std::string name;
  bool operator==(const BuildVolume&) const = default;
};

struct BuildSource {
  enum class Kind { kNone, kLocal, kGit, kCustom };
  Kind kind = Kind::kNone;
  std::string local_digest;  // local: the uploaded source archive, "sha256:…"
  std::string git_url;
  std::string git_revision;  // a branch, tag or commit; empty: the remote's default branch
  BuildStep custom;          // custom: a step that fills /workspace
  std::string sub_path;      // the part of the source the steps see as /workspace
};

struct TemplateParameter {
  std::string name;
  std::string description;
  std::optional<std::string> default_value;  // none: the parameter is required
};

// BuildTemplate (namespaced) or ClusterBuildTemplate.
struct BuildTemplate {
  std::string namespace_;  // empty for a ClusterBuildTemplate
  std::string name;
  std::vector<TemplateParameter> parameters;
  std::vector<BuildStep> steps;
  std::vector<BuildVolume> volumes;
};

struct TemplateInstantiation {
  std::string name;
  std::string kind = "BuildTemplate";  // or "ClusterBuildTemplate"
  std::map<std::string, std::string> arguments;
  std::vector<EnvVar> env;  // added to every step's environment
};

// spec.output, elafros's addition: what the build's result becomes.
struct BuildOutput {
  std::string image;  // the local image name to store it under; empty: no image
  std::string base;   // the image the app layer goes on; empty: the last step's image
  std::string path = kWorkspaceDir;  // the directory that becomes the app layer
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::vector<EnvVar> env;
  std::string working_dir;
  std::string user;
  std::string push;  // a registry reference to push the result to; empty: none
};

struct Build {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::int64_t generation = 0;
  BuildSource source;
  std::vector<BuildStep> steps;
  std::optional<TemplateInstantiation> template_;
  std::vector<BuildVolume> volumes;
  std::chrono::milliseconds timeout{kDefaultBuildTimeout};
  BuildOutput output;
  std::string cache;       // the cache directory steps see at /cache; empty: one per Build name
  bool cancelled = false;  // spec.status: BuildCancelled
};

Result<Build> build_from_object(const boost::json::object& object);
Result<BuildTemplate> build_template_from_object(const boost::json::object& object);

// The steps a Build runs: its own, or its template's with ${PARAM} replaced by the Build's
// argument or the parameter's default, and the template's env added. A missing required
// parameter or an argument the template does not declare is kInvalidArgument naming it.
Result<std::vector<BuildStep>> resolve_build_steps(const Build& build,
                                                   const BuildTemplate* build_template);
// The template's volumes, substituted, then the Build's.
std::vector<BuildVolume> resolve_build_volumes(const Build& build,
                                               const BuildTemplate* build_template);

boost::json::object build_step_to_json(const BuildStep& step);

// The ClusterBuildTemplate "buildpacks" that ships with elafros (docs/architecture.md,
// "Buildpacks"): detect over the builder image's /buildpacks in order, compile, then the web
// process from the Procfile or bin/release. Parameters BUILDER_IMAGE and BUILDPACK.
boost::json::object buildpacks_template();
inline constexpr const char* kDefaultBuilderImage = "elafros-builder:latest";

// Go durations as Knative Build's timeout takes them: "10m", "1h30m", "90s", "1.5h".
std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text);
std::string format_go_duration(std::chrono::milliseconds d);

// Names of the build's parts, shared by the controller, the API and the CLI.
// A step's container: <build>-<uid8>s<index>; its logs are the Build's, instance = this.
std::string build_step_container_id(const std::string& build, const std::string& uid,
                                    std::size_t index);

}  // namespace elafros
