#pragma once
// What 'service create' and 'service update' change in a Knative Service object, flag by flag,
// as kn's flags do. Pure functions of JSON, so that the unit tests drive them; each throws
// std::runtime_error naming the flag value it cannot apply.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace elafros::cli {

// Changes to spec.template: any of them makes a new revision.
struct TemplateChanges {
  std::optional<std::string> image;
  std::vector<std::string> env;  // NAME=VALUE sets, NAME- unsets (--env-file lines first)
  std::optional<int> port;
  std::optional<std::string> cmd;
  std::optional<std::vector<std::string>> args;
  std::optional<std::string> revision_name;
  std::optional<int> concurrency_limit;  // containerConcurrency
  std::vector<std::pair<std::string, std::string>>
      scale_annotations;                 // autoscaling.knative.dev/* from --scale-*
  std::vector<std::string> annotations;  // -a / --annotation-revision: KEY=VALUE, KEY- unsets
  std::vector<std::string> labels;       // -l / --label-revision
  std::vector<std::string> limits;       // --limit cpu=500m,memory=128Mi (or memory- to unset)
  std::vector<std::string> requests;     // --request, the same way
  // kn's probe flags: http:HOST:PORT:PATH, tcp:HOST:PORT or exec:CMD,ARG,…; and their options,
  // InitialDelaySeconds=5,PeriodSeconds=1.
  std::optional<std::string> probe_readiness, probe_readiness_opts;
  std::optional<std::string> probe_liveness, probe_liveness_opts;
  std::optional<std::string> pull_policy;           // Always, Never, IfNotPresent (any case)
  // kn's Secret and ConfigMap flags: --env-from cm:NAME|secret:NAME (NAME- removes),
  // --env-value-from VAR=secret:NAME:KEY|cm:NAME:KEY (VAR- removes), --volume
  // VOL=cm:NAME|secret:NAME|emptyDir (VOL- removes), --mount /DIR=cm:NAME|secret:NAME|ed:VOL|VOL
  // (/DIR- unmounts).
  std::vector<std::string> env_from, env_value_from, volumes, mounts;
  bool any() const {
    return image || !env.empty() || port || cmd || args || revision_name || concurrency_limit ||
           !scale_annotations.empty() || !annotations.empty() || !labels.empty() ||
           !limits.empty() || !requests.empty() || probe_readiness || probe_readiness_opts ||
           probe_liveness || probe_liveness_opts || pull_policy || !env_from.empty() ||
           !env_value_from.empty() || !volumes.empty() || !mounts.empty();
  }
};

// Changes to the Service's own metadata (-a / -l and their -service forms): no new revision.
struct MetadataChanges {
  std::vector<std::string> annotations;
  std::vector<std::string> labels;
  bool empty() const { return annotations.empty() && labels.empty(); }
};

struct TrafficChanges {
  std::vector<std::string> traffic;  // KEY=PERCENT, KEY a revision, @latest or a tag
  std::vector<std::string> tags;     // REVISION=TAG (REVISION may be @latest)
  std::vector<std::string> untags;   // TAG
  bool empty() const { return traffic.empty() && tags.empty() && untags.empty(); }
};

// Applies the template flags to a Knative revision template (spec.template).
void apply_template_changes(boost::json::object& tmpl, const TemplateChanges& t, bool creating);
// Applies -a/-l to an object's metadata.
void apply_metadata_changes(boost::json::object& object, const MetadataChanges& m);
// KEY=VALUE sets, KEY- removes, in a string map such as metadata.labels.
void apply_map_changes(boost::json::object& map, const std::vector<std::string>& changes,
                       const char* flag);
// Applies --traffic/--tag/--untag to a service's spec.traffic (Knative JSON).
boost::json::array apply_traffic_changes(const boost::json::array& current,
                                         const TrafficChanges& changes);
// The NAME=VALUE lines of an --env-file (blank lines and # comments skipped); throws naming the
// line that is not NAME=VALUE.
std::vector<std::string> env_file_entries(const std::string& text, const std::string& file);
// The pull policy as Kubernetes spells it, from any case; throws for another word.
std::string pull_policy_flag(const std::string& text);

// The object `export` writes: no status and no server-set fields, so that both elafros and a
// Knative cluster accept it back.
boost::json::value exportable(const boost::json::value& service);

}  // namespace elafros::cli
