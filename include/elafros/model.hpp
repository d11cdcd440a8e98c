#pragma once
// The resource model, in Knative serving.knative.dev/v1 terms (docs/architecture.md). These are
// plain values: the API turns them into Knative-shaped JSON, the store persists them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace elafros {

inline constexpr const char* kDefaultNamespace = "default";
inline constexpr int kDefaultContainerPort = 8080;
inline constexpr int kDefaultTimeoutSeconds = 300;  // Knative's revision-timeout-seconds

// A key of a Secret or ConfigMap in the revision's namespace (env valueFrom.secretKeyRef or
// configMapKeyRef). Resolved when an instance starts, as Kubernetes does.
struct KeyRef {
  std::string kind;  // "Secret" or "ConfigMap"
  std::string name;
  std::string key;
  bool optional = false;
  bool operator==(const KeyRef&) const = default;
};

struct EnvVar {
  std::string name;
  std::string value;
  std::optional<KeyRef> value_from;  // instead of value
  bool operator==(const EnvVar&) const = default;
};

// envFrom: every key of a Secret or ConfigMap as a variable, with an optional prefix.
struct EnvFromSource {
  std::string kind;  // "Secret" or "ConfigMap"
  std::string name;
  std::string prefix;
  bool optional = false;
  bool operator==(const EnvFromSource&) const = default;
};

// spec.template.spec.volumes[]: a Secret's or ConfigMap's keys as files, an emptyDir, a host
// path the operator allows (host-path-prefixes), or a PersistentVolumeClaim (a named local
// volume that outlives revisions).
struct Volume {
  struct Item {
    std::string key, path;
    int mode = -1;  // -1: the volume's defaultMode
    bool operator==(const Item&) const = default;
  };
  std::string name;
  // "Secret", "ConfigMap", "EmptyDir", "HostPath" or "PersistentVolumeClaim"
  std::string kind;
  // the Secret's secretName, the ConfigMap's name, hostPath.path or the claimName
  std::string source;
  std::vector<Item> items;  // empty: every key, each as a file named by it
  int default_mode = 0644;
  bool optional = false;
  std::string medium;      // emptyDir: "" (disk) or "Memory" (tmpfs)
  std::string size_limit;  // emptyDir: a quantity, "" for none
  std::string path_type;   // hostPath.type: "", Directory, DirectoryOrCreate, File…
  bool read_only = false;  // persistentVolumeClaim.readOnly
  bool operator==(const Volume&) const = default;
};

struct VolumeMount {
  std::string name;
  std::string mount_path;
  bool read_only = false;
  bool operator==(const VolumeMount&) const = default;
};

// A container's probe (readinessProbe, livenessProbe, startupProbe), with Kubernetes' fields.
// One handler: tcpSocket (the default), httpGet (answered 2xx or 3xx) or exec (exit code 0).
// Without a readinessProbe, readiness is a TCP connect to PORT, polled aggressively as Knative's
// queue-proxy does. Zero values are Kubernetes' defaults (read them through the accessors).
struct Probe {
  bool http = false;       // httpGet
  std::string http_path;   // for httpGet, "/" when empty
  int period_seconds = 0;  // readiness: 0 polls every ~10 ms until ready; others: 10 s
  int initial_delay_seconds = 0;
  int timeout_seconds = 0;                // 1 s
  int failure_threshold = 0;              // 3
  int success_threshold = 0;              // 1
  std::vector<std::string> exec_command;  // exec: run in the instance, when not empty
  std::vector<std::pair<std::string, std::string>> http_headers;  // httpGet.httpHeaders
  int port = 0;  // httpGet.port or tcpSocket.port as written: the container's port, or 0
  bool operator==(const Probe&) const = default;

  bool exec() const { return !exec_command.empty(); }
  int period() const { return period_seconds > 0 ? period_seconds : 10; }
  int timeout() const { return timeout_seconds > 0 ? timeout_seconds : 1; }
  int failures() const { return failure_threshold > 0 ? failure_threshold : 3; }
  int successes() const { return success_threshold > 0 ? success_threshold : 1; }
};

// Kubernetes quantities as the user wrote them ("500m", "128Mi"); validated when parsed.
struct ResourceList {
  std::string cpu;
  std::string memory;
  // Kept and shown, not enforced: the writable layer and emptyDirs share the data dir's
  // filesystem (README, "Resources").
  std::string ephemeral_storage;
  bool empty() const { return cpu.empty() && memory.empty() && ephemeral_storage.empty(); }
  bool operator==(const ResourceList&) const = default;
};

// One user container (spec.template.spec.containers[0]).
// A container's securityContext: Knative's allowed subset (serving pkg/apis/serving
// fieldmask.go), applied by the runtime (docs/architecture.md, "Isolation").
struct SecurityContext {
  std::optional<std::int64_t> run_as_user;
  std::optional<std::int64_t> run_as_group;
  std::optional<bool> run_as_non_root;
  std::optional<bool> read_only_root_filesystem;
  std::optional<bool> allow_privilege_escalation;
  std::optional<bool> privileged;  // only false
  // capabilities: set when given (an empty drop list is not the same as none given). Names as
  // Kubernetes writes them, without CAP_; drop may hold ALL; add only NET_BIND_SERVICE.
  bool has_capabilities = false;
  std::vector<std::string> capabilities_add;
  std::vector<std::string> capabilities_drop;
  std::string seccomp_profile;  // seccompProfile.type: "", RuntimeDefault or Unconfined
  bool operator==(const SecurityContext&) const = default;
};

struct ContainerSpec {
  std::string image;  // the reference as the user gave it
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  int container_port = 0;  // 0: the default, 8080
  std::string working_dir;
  ResourceList limits;
  ResourceList requests;
  std::optional<Probe> readiness_probe;
  // imagePullPolicy of a registry image: "Always" pulls at every new revision, "Never" only
  // uses a stored image, "IfNotPresent" (and "") pulls when it is not stored.
  std::string pull_policy;
  std::vector<EnvFromSource> env_from;
  std::vector<VolumeMount> volume_mounts;
  std::optional<SecurityContext> security_context;
  // Restart the instance when it fails failureThreshold times in a row (after startup).
  std::optional<Probe> liveness_probe;
  // Until it succeeds, neither readiness nor liveness is probed; failureThreshold failures in a
  // row restart the instance.
  std::optional<Probe> startup_probe;
  std::string port_name;      // ports[0].name: "" or http1 (Knative's names)
  std::string port_protocol;  // ports[0].protocol: "" or TCP
  std::string name;           // "" for a lone container: Knative's user-container
  bool operator==(const ContainerSpec&) const = default;

  int port() const { return container_port > 0 ? container_port : kDefaultContainerPort; }
};

// spec.template: everything that, when changed, makes a new revision.
struct RevisionTemplate {
  std::string name;  // optional explicit revision name
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> labels;  // copied onto the revision, as Knative does
  ContainerSpec container;
  int container_concurrency = 0;  // 0: unlimited
  int timeout_seconds = kDefaultTimeoutSeconds;
  std::vector<Volume> volumes;
  // Knative's finer bounds within timeoutSeconds; 0: unset. The answer's head must start within
  // responseStartTimeoutSeconds, and a response (or upgraded connection) may go that many
  // idleTimeoutSeconds without a byte.
  int response_start_timeout_seconds = 0;
  int idle_timeout_seconds = 0;
  // imagePullSecrets: kubernetes.io/dockerconfigjson Secrets whose login for the image's
  // registry is used to pull it (before the daemon's own 'elafros registry login').
  std::vector<std::string> image_pull_secrets;
  // Knative's multi-container pods: `container` serves (it alone has ports); sidecars share its
  // network namespace and lifecycle; init containers run to completion, in order, before them.
  std::vector<ContainerSpec> sidecars;
  std::vector<ContainerSpec> init_containers;
  int serving_index = 0;  // where `container` stands among spec.containers
  bool operator==(const RevisionTemplate&) const = default;
};

struct TrafficTarget {
  std::string revision_name;  // empty when latest_revision
  bool latest_revision = false;
  int percent = 0;
  std::string tag;
  bool operator==(const TrafficTarget&) const = default;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_ = kDefaultNamespace;
  std::string uid;
  std::int64_t generation = 0;
  std::int64_t created_unix = 0;  // seconds since the epoch
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct Service {
  ObjectMeta meta;
  RevisionTemplate spec;
  std::vector<TrafficTarget> traffic;  // empty: 100% to the latest ready revision
  // Counts template changes; default revision names are NAME-<config_generation>. Never reused,
  // even when revisions are deleted (Knative's Configuration generation).
  std::int64_t config_generation = 1;
};

struct Revision {
  ObjectMeta meta;
  std::string service;
  RevisionTemplate spec;
  std::string image_digest;  // manifest digest pinned at creation, "sha256:…"
  bool ever_ready = false;   // became Ready once; it may serve again without proving itself
  std::vector<std::string> sidecar_digests;  // pinned like image_digest, one per sidecar
  std::vector<std::string> init_digests;     // and per init container
};

// kStandby: made and waiting to be started (docs/architecture.md, "Standby instances").
enum class InstanceState { kStarting, kRunning, kStopping, kStandby };

// A running (or starting, or standby) container of a revision. The container id names it to runc.
struct InstanceRecord {
  std::string id;  // also the runc container id
  std::string namespace_;
  std::string service;
  std::string revision;
  int port = 0;
  int pid = 0;
  InstanceState state = InstanceState::kStarting;
  std::int64_t created_unix = 0;
  // Where the proxy reaches it: its own network namespace's address, or "" for the host's
  // loopback (network: host).
  std::string address;
};

struct ImageRecord {
  std::string name;           // e.g. "hello:latest"
  std::string digest;         // manifest digest, "sha256:…"
  std::string config_digest;  // image config digest
  std::string source;         // the reference it was imported from
  std::int64_t size = 0;      // bytes of manifest, config and layers
  std::int64_t created_unix = 0;
};

// The condition types of docs/architecture.md, with Knative's tri-state status.
struct Condition {
  Condition() = default;
  explicit Condition(std::string t) : type(std::move(t)) {}

  std::string type;
  std::string status = "Unknown";  // "True", "False" or "Unknown"
  std::string reason;
  std::string message;
  std::int64_t last_transition_unix = 0;
};

}  // namespace elafros

namespace elafros {

struct ResolvedTrafficTarget {
  std::string revision_name;
  bool latest_revision = false;
  int percent = 0;
  std::string tag;
  std::string url;  // set for tagged targets
};

// What the control plane reports about a service (Knative Service status).
struct ServiceStatus {
  std::vector<Condition> conditions;  // Ready, ConfigurationsReady, RoutesReady
  std::string url;
  std::string latest_created_revision;
  std::string latest_ready_revision;
  std::vector<ResolvedTrafficTarget> traffic;
  std::int64_t observed_generation = 0;
};

// A revision's traffic over the last minute (or since it started, if less), from the proxy's
// counters: what 'service describe' shows live.
struct RevisionActivity {
  double window_seconds = 0;
  double requests_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double error_rate = 0;          // 5xx answers / all answers
  std::uint64_t cold_starts = 0;  // requests that found no instance and waited for one
  double cold_start_p50_ms = 0;
  double cold_start_max_ms = 0;      // the upper bound of the slowest one's bucket
  std::uint64_t requests_total = 0;  // since the daemon started
};

struct RevisionStatus {
  std::vector<Condition> conditions;  // Ready, ContainerHealthy, ResourcesAvailable
  int actual_replicas = 0;
  int desired_replicas = 0;
  bool panic = false;  // the autoscaler is in panic mode
  int restarts = 0;    // instances replaced after they failed
  RevisionActivity activity;
  // The last of those failures (Kubernetes' lastState.terminated): LivenessProbeFailed,
  // ExitCode, OOMKilled… with its message and when; empty before any.
  struct Restart {
    std::string reason;
    std::string message;
    std::int64_t at_unix = 0;
  };
  Restart last_restart;
};

}  // namespace elafros
