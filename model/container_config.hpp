#pragma once
// A container's configuration from Secrets and ConfigMaps, in Kubernetes' field names: env
// valueFrom (secretKeyRef, configMapKeyRef), envFrom, volumes (secret, configMap, emptyDir) and
// volumeMounts. Read strictly (the serving codec's Reader) and written back. Internal to model/.

#include <string>
#include <vector>

#include "elafros/model.hpp"
#include "strict_reader.hpp"

namespace elafros {

// env[i].valueFrom, into var.value_from.
void read_value_from(Reader& r, const json::value& v, const std::string& path, EnvVar& var);
std::vector<EnvFromSource> read_env_from(Reader& r, const json::object& container,
                                         const std::string& path);
std::vector<VolumeMount> read_volume_mounts(Reader& r, const json::object& container,
                                            const std::string& path);
std::vector<Volume> read_volumes(Reader& r, const json::object& spec, const std::string& path);
// Every mount names a volume; secret and configMap mounts are read-only.
void check_mounts(Reader& r, const std::vector<Volume>& volumes, ContainerSpec& container,
                  const std::string& container_path);

json::object env_var_json(const EnvVar& var);
json::array env_from_json(const std::vector<EnvFromSource>& sources);
json::array volume_mounts_json(const std::vector<VolumeMount>& mounts);
json::array volumes_json(const std::vector<Volume>& volumes);

}  // namespace elafros
