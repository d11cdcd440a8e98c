#pragma once
// Resolving a revision's Secrets and ConfigMaps when an instance starts, as Kubernetes does:
// env valueFrom and envFrom become values, secret and configMap volumes become files. A
// missing object or key (unless optional) is an error naming it, the revision's reason.

#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "elafros/model.hpp"
#include "elafros/result.hpp"

namespace elafros {

struct ResolvedFile {
  std::string path;  // relative to the volume
  std::string content;
  int mode = 0644;
};

struct ResolvedVolume {
  std::string name;
  std::string destination;  // the mountPath
  bool read_only = true;
  bool empty_dir = false;
  bool memory = false;                 // emptyDir medium Memory: a tmpfs
  std::uint64_t size_limit_bytes = 0;  // 0: none
  std::vector<ResolvedFile> files;
  std::string host_path;       // a hostPath volume: the host's file or directory
  std::string host_path_type;  // its hostPath.type
  std::string claim_uid;       // a persistentVolumeClaim: the claim's uid names its directory
};

struct ResolvedConfig {
  std::vector<EnvVar> env;  // every variable, with values
  std::vector<ResolvedVolume> volumes;
  bool has_secret_files = false;
  // The same for each sidecar and init container, in the template's order.
  std::vector<ResolvedConfig> sidecars;
  std::vector<ResolvedConfig> init_containers;
};

// get(kind, name): the Secret or ConfigMap in the revision's namespace, kNotFound if missing.
using ConfigGetter =
    std::function<Result<boost::json::object>(const std::string& kind, const std::string& name)>;

// kFailedPrecondition with Kubernetes' words ('secret "db" not found', 'couldn't find key
// password in Secret default/db') and what to do.
Result<ResolvedConfig> resolve_config(const RevisionTemplate& t, const std::string& ns,
                                      const ConfigGetter& get);

// Whether the template refers to any Secret or ConfigMap (then instances resolve at start).
bool uses_config(const RevisionTemplate& t);

// Why a hostPath volume may not mount `path`, or nullopt when it may: only a path below one of
// the operator's host-path-prefixes (none by default) is allowed.
std::optional<std::string> host_path_problem(const std::string& path,
                                             const std::vector<std::string>& prefixes);

}  // namespace elafros
