#include "elafros/resource_json.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <ctime>
#include <initializer_list>
#include <optional>
#include <set>

#include "container_config.hpp"
#include "elafros/naming.hpp"
#include "elafros/object_meta.hpp"
#include "strict_reader.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

json::array strings_to_json(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

json::object map_to_json(const std::map<std::string, std::string>& m) {
  json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

// A Kubernetes quantity, kept as written once it parses: cpu in cores or millicores ("0.5",
// "500m"), memory in bytes with an optional suffix ("128Mi", "1G").
std::string quantity(Reader& r, const json::object& o, std::string_view key,
                     const std::string& path) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return {};
  std::string text;
  if (v->is_string())
    text = std::string(v->get_string());
  else if (v->is_int64() || v->is_uint64())
    text = json::serialize(*v);
  else if (v->is_double())
    text = fmt::format("{}", v->get_double());
  else {
    r.invalid(Reader::join(path, key), "expected a quantity such as \"500m\" or \"128Mi\"");
    return {};
  }
  bool ok =
      key == "cpu" ? parse_cpu_millis(text).has_value() : parse_memory_bytes(text).has_value();
  if (!ok)
    r.invalid(
        Reader::join(path, key),
        fmt::format("\"{}\" is not a valid {} quantity (examples: {})", text, key,
                    key == "cpu" ? "\"1\", \"0.5\", \"500m\"" : "\"128Mi\", \"1Gi\", \"500M\""));
  return text;
}

// Linux's capabilities, as Kubernetes names them (without CAP_).
bool is_capability(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "AUDIT_CONTROL",   "AUDIT_READ",   "AUDIT_WRITE",
      "BLOCK_SUSPEND",   "BPF",          "CHECKPOINT_RESTORE",
      "CHOWN",           "DAC_OVERRIDE", "DAC_READ_SEARCH",
      "FOWNER",          "FSETID",       "IPC_LOCK",
      "IPC_OWNER",       "KILL",         "LEASE",
      "LINUX_IMMUTABLE", "MAC_ADMIN",    "MAC_OVERRIDE",
      "MKNOD",           "NET_ADMIN",    "NET_BIND_SERVICE",
      "NET_BROADCAST",   "NET_RAW",      "PERFMON",
      "SETFCAP",         "SETGID",       "SETPCAP",
      "SETUID",          "SYSLOG",       "SYS_ADMIN",
      "SYS_BOOT",        "SYS_CHROOT",   "SYS_MODULE",
      "SYS_NICE",        "SYS_PACCT",    "SYS_PTRACE",
      "SYS_RAWIO",       "SYS_RESOURCE", "SYS_TIME",
      "SYS_TTY_CONFIG",  "WAKE_ALARM"};
  if (name.rfind("CAP_", 0) == 0) name.remove_prefix(4);
  for (auto n : kNames)
    if (n == name) return true;
  return false;
}

// Knative's allowed subset of a container's securityContext; anything else is refused naming
// the field.
SecurityContext read_security_context(Reader& r, const json::value& v, const std::string& path) {
  SecurityContext sc;
  const json::object* o =
      r.object(v, path,
               {"runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                "allowPrivilegeEscalation", "privileged", "capabilities", "seccompProfile"});
  if (!o) return sc;
  for (auto [key, field] :
       {std::pair{"runAsUser", &sc.run_as_user}, std::pair{"runAsGroup", &sc.run_as_group}}) {
    *field = r.integer(*o, key, path);
    if (*field && (**field < 0 || **field > 2147483647))
      r.invalid(path + "." + key,
                fmt::format("must be between 0 and 2147483647 (got {})", **field));
  }
  sc.run_as_non_root = r.boolean(*o, "runAsNonRoot", path);
  sc.read_only_root_filesystem = r.boolean(*o, "readOnlyRootFilesystem", path);
  sc.allow_privilege_escalation = r.boolean(*o, "allowPrivilegeEscalation", path);
  sc.privileged = r.boolean(*o, "privileged", path);
  if (sc.privileged.value_or(false))
    r.invalid(path + ".privileged",
              "privileged containers are not allowed (only false is, as in Knative)");
  if (sc.run_as_non_root.value_or(false) && sc.run_as_user.value_or(1) == 0)
    r.invalid(path + ".runAsNonRoot",
              "runAsNonRoot is true but runAsUser is 0 (root); set a non-zero runAsUser");
  if (const json::value* caps = o->if_contains("capabilities"); caps && !caps->is_null()) {
    std::string cp = path + ".capabilities";
    if (const json::object* c = r.object(*caps, cp, {"add", "drop"})) {
      sc.has_capabilities = true;
      sc.capabilities_add = r.strings(*c, "add", cp);
      sc.capabilities_drop = r.strings(*c, "drop", cp);
      for (std::size_t i = 0; i < sc.capabilities_add.size() && !r.failed(); ++i) {
        const auto& name = sc.capabilities_add[i];
        if (name != "NET_BIND_SERVICE" && name != "CAP_NET_BIND_SERVICE")
          r.invalid(fmt::format("{}.add[{}]", cp, i),
                    fmt::format("\"{}\" cannot be added: only NET_BIND_SERVICE may be (Knative's "
                                "allowed subset)",
                                name));
      }
      for (std::size_t i = 0; i < sc.capabilities_drop.size() && !r.failed(); ++i) {
        const auto& name = sc.capabilities_drop[i];
        if (name != "ALL" && !is_capability(name))
          r.invalid(
              fmt::format("{}.drop[{}]", cp, i),
              fmt::format("\"{}\" is not a capability; use ALL or a name such as NET_RAW", name));
      }
    }
  }
  if (const json::value* sp = o->if_contains("seccompProfile"); sp && !sp->is_null()) {
    std::string pp = path + ".seccompProfile";
    if (const json::object* p = r.object(*sp, pp, {"type", "localhostProfile"})) {
      sc.seccomp_profile = r.string(*p, "type", pp).value_or("");
      if (!r.failed() && sc.seccomp_profile != "RuntimeDefault" &&
          sc.seccomp_profile != "Unconfined")
        r.invalid(pp + ".type",
                  fmt::format("\"{}\" is not supported; use RuntimeDefault (Docker's default "
                              "profile) or Unconfined",
                              sc.seccomp_profile));
    }
  }
  return sc;
}

json::object security_context_json(const SecurityContext& sc) {
  json::object o;
  if (sc.run_as_user) o["runAsUser"] = *sc.run_as_user;
  if (sc.run_as_group) o["runAsGroup"] = *sc.run_as_group;
  if (sc.run_as_non_root) o["runAsNonRoot"] = *sc.run_as_non_root;
  if (sc.read_only_root_filesystem) o["readOnlyRootFilesystem"] = *sc.read_only_root_filesystem;
  if (sc.allow_privilege_escalation) o["allowPrivilegeEscalation"] = *sc.allow_privilege_escalation;
  if (sc.privileged) o["privileged"] = *sc.privileged;
  if (sc.has_capabilities) {
    json::object caps;
    if (!sc.capabilities_add.empty()) caps["add"] = strings_to_json(sc.capabilities_add);
    if (!sc.capabilities_drop.empty()) caps["drop"] = strings_to_json(sc.capabilities_drop);
    o["capabilities"] = std::move(caps);
  }
  if (!sc.seccomp_profile.empty()) o["seccompProfile"] = json::object{{"type", sc.seccomp_profile}};
  return o;
}

// readinessProbe, livenessProbe or startupProbe: one handler, and Kubernetes' timing fields.
Probe read_probe(Reader& r, const json::value& v, const std::string& path, int container_port) {
  Probe p;
  const json::object* o =
      r.object(v, path,
               {"httpGet", "tcpSocket", "exec", "grpc", "initialDelaySeconds", "periodSeconds",
                "timeoutSeconds", "failureThreshold", "successThreshold"});
  if (!o) return p;
  auto check_port = [&](const json::object& handler, const std::string& hp) {
    const json::value* pv = handler.if_contains("port");
    if (pv && pv->is_string()) {
      r.invalid(hp + ".port",
                fmt::format("a named port (\"{}\") is not supported; give the container's port "
                            "number, or leave it out",
                            std::string(pv->get_string())));
      return;
    }
    auto port = r.integer(handler, "port", hp);
    if (port && *port != 0 &&
        *port != (container_port > 0 ? container_port : kDefaultContainerPort))
      r.invalid(hp + ".port", "may only name the container's port (or be left out), as in Knative");
    else if (port)
      p.port = static_cast<int>(*port);
  };
  int handlers = 0;
  for (const char* key : {"httpGet", "tcpSocket", "exec", "grpc"}) handlers += o->contains(key);
  if (handlers > 1) r.invalid(path, "give one of httpGet, tcpSocket and exec, not several");
  if (o->contains("grpc"))
    r.invalid(path + ".grpc", "is not supported yet; probe with tcpSocket, httpGet or exec");
  if (const json::value* http = o->if_contains("httpGet"); http && !r.failed()) {
    std::string hp = path + ".httpGet";
    if (const json::object* h = r.object(*http, hp, {"path", "port", "scheme", "httpHeaders"})) {
      p.http = true;
      p.http_path = r.string(*h, "path", hp).value_or("/");
      if (p.http_path.empty() || p.http_path.front() != '/')
        r.invalid(hp + ".path", "must start with '/'");
      if (auto scheme = r.string(*h, "scheme", hp); scheme && *scheme != "HTTP")
        r.invalid(hp + ".scheme", "only HTTP is supported");
      if (const json::array* headers = r.array(*h, "httpHeaders", hp)) {
        for (std::size_t i = 0; i < headers->size() && !r.failed(); ++i) {
          std::string ip = fmt::format("{}.httpHeaders[{}]", hp, i);
          const json::object* hv = r.object((*headers)[i], ip, {"name", "value"});
          if (!hv) break;
          std::string name = r.string(*hv, "name", ip).value_or("");
          std::string value = r.string(*hv, "value", ip).value_or("");
          if (!r.failed() && (name.empty() || name.find_first_of(" \t\r\n:") != std::string::npos))
            r.invalid(ip + ".name", "must be a header name (letters, digits and '-')");
          if (!r.failed() && value.find_first_of("\r\n") != std::string::npos)
            r.invalid(ip + ".value", "must not hold a line break");
          p.http_headers.emplace_back(std::move(name), std::move(value));
        }
      }
      check_port(*h, hp);
    }
  } else if (const json::value* tcp = o->if_contains("tcpSocket"); tcp && !r.failed()) {
    std::string tp = path + ".tcpSocket";
    if (const json::object* t = r.object(*tcp, tp, {"port", "host"})) {
      if (t->contains("host"))
        r.invalid(tp + ".host", "is not supported: a probe always goes to the instance");
      else
        check_port(*t, tp);
    }
  } else if (const json::value* ex = o->if_contains("exec"); ex && !r.failed()) {
    std::string ep = path + ".exec";
    if (const json::object* e = r.object(*ex, ep, {"command"})) {
      p.exec_command = r.strings(*e, "command", ep);
      if (!r.failed() && (p.exec_command.empty() || p.exec_command[0].empty()))
        r.invalid(ep + ".command",
                  "needs the program to run in the instance, e.g. [\"cat\", \"/tmp/healthy\"]");
    }
  }
  auto seconds = [&](std::string_view key, int& out, int min) {
    if (auto n = r.integer(*o, key, path)) {
      if (*n < min || *n > 3600)
        r.invalid(Reader::join(path, key), fmt::format("must be between {} and 3600", min));
      out = static_cast<int>(*n);
    }
  };
  seconds("initialDelaySeconds", p.initial_delay_seconds, 0);
  seconds("periodSeconds", p.period_seconds, 0);
  seconds("timeoutSeconds", p.timeout_seconds, 1);
  seconds("failureThreshold", p.failure_threshold, 1);
  seconds("successThreshold", p.success_threshold, 1);
  return p;
}

json::object probe_json(const Probe& p) {
  json::object probe;
  json::object handler;
  if (p.port) handler["port"] = p.port;
  if (p.exec()) {
    probe["exec"] = json::object{{"command", strings_to_json(p.exec_command)}};
  } else if (p.http) {
    handler["path"] = p.http_path;
    if (!p.http_headers.empty()) {
      json::array headers;
      for (const auto& [name, value] : p.http_headers)
        headers.push_back(json::object{{"name", name}, {"value", value}});
      handler["httpHeaders"] = std::move(headers);
    }
    probe["httpGet"] = std::move(handler);
  } else {
    probe["tcpSocket"] = std::move(handler);
  }
  if (p.initial_delay_seconds) probe["initialDelaySeconds"] = p.initial_delay_seconds;
  if (p.period_seconds) probe["periodSeconds"] = p.period_seconds;
  if (p.timeout_seconds) probe["timeoutSeconds"] = p.timeout_seconds;
  if (p.failure_threshold) probe["failureThreshold"] = p.failure_threshold;
  if (p.success_threshold) probe["successThreshold"] = p.success_threshold;
  return probe;
}

// Kubernetes fields a Knative manifest may carry that elafros does not take, each with why, so
// that a refusal says more than "unknown field". Nothing is dropped silently.
struct Unsupported {
  std::string_view field, why;
};
constexpr Unsupported kPodFields[] = {
    {"nodeSelector", "elafros runs on one machine: there is no node to select"},
    {"nodeName", "elafros runs on one machine: there is no node to name"},
    {"affinity", "elafros runs on one machine: there are no nodes or zones to prefer"},
    {"tolerations", "elafros runs on one machine: there are no taints to tolerate"},
    {"topologySpreadConstraints", "elafros runs on one machine: there is nothing to spread over"},
    {"schedulerName", "elafros places every instance itself, on this machine"},
    {"priorityClassName", "there is no scheduler to preempt for; limit others with quotas"},
    {"priority", "there is no scheduler to preempt for; limit others with quotas"},
    {"runtimeClassName", "every instance runs with runc"},
    {"hostNetwork",
     "an instance has a network namespace of its own (bridge) or the daemon's "
     "network mode decides (network: host)"},
    {"hostPID", "an instance never shares the host's process namespace"},
    {"hostIPC", "an instance never shares the host's IPC namespace"},
    {"shareProcessNamespace", "an instance's containers each have their own process namespace"},
    {"dnsPolicy", "an instance resolves through the host's resolver and *.localhost names"},
    {"dnsConfig", "an instance resolves through the host's resolver and *.localhost names"},
    {"hostAliases", "an instance's /etc/hosts is made by elafros"},
    {"serviceAccountName",
     "there are no service accounts for instances; elafros tokens are "
     "for API clients"},
    {"automountServiceAccountToken", "there are no service accounts for instances"},
    {"activeDeadlineSeconds", "a revision's instances run until the autoscaler removes them"},
    {"terminationGracePeriodSeconds",
     "the grace period is the daemon's stop-grace-seconds, for every instance"},
};
constexpr Unsupported kContainerFields[] = {
    {"lifecycle", "postStart and preStop hooks are not run; handle SIGTERM in the app"},
    {"stdin", "an instance has no terminal or stdin"},
    {"stdinOnce", "an instance has no terminal or stdin"},
    {"tty", "an instance has no terminal or stdin"},
    {"volumeDevices", "raw block devices are not passed to instances"},
    {"terminationMessagePath", "elafros shows the last log lines of a failed instance instead"},
    {"terminationMessagePolicy", "elafros shows the last log lines of a failed instance instead"},
};

// Refuses the first field of `o` that the table names, with its reason.
template <std::size_t N>
void refuse_unsupported(Reader& r, const json::value& v, const std::string& path,
                        const Unsupported (&table)[N]) {
  if (r.failed() || !v.is_object()) return;
  for (const auto& kv : v.get_object())
    for (const auto& u : table)
      if (kv.key() == u.field) {
        r.invalid(
            path + "." + std::string(u.field),
            fmt::format("is not supported{}{}", u.why.rfind("yet", 0) == 0 ? " " : ": ", u.why));
        return;
      }
}

// Where a container stands in the pod: the serving one (routed, the only one with ports and
// probes), a sidecar beside it, or an init container that runs to completion before them.
enum class ContainerRole { kServing, kSidecar, kInit };

void read_container(Reader& r, const json::value& v, const std::string& cp, ContainerSpec& cs,
                    const std::vector<Volume>& volumes, ContainerRole role) {
  refuse_unsupported(r, v, cp, kContainerFields);
  if (!r.failed() && role != ContainerRole::kServing && v.is_object()) {
    bool init = role == ContainerRole::kInit;
    for (const char* key : {"ports", "readinessProbe", "livenessProbe", "startupProbe"})
      if (v.get_object().contains(key)) {
        r.invalid(cp + "." + key,
                  init ? "an init container runs to completion before the others: it has no "
                         "ports or probes"
                  : std::string_view(key) == "ports"
                      ? "only one container has ports: the one requests go to"
                      : "probes on a sidecar are not supported yet; probe the serving "
                        "container (the one with ports)");
        return;
      }
  }
  const json::object* c =
      r.object(v, cp,
               {"name", "image", "command", "args", "env", "envFrom", "ports", "workingDir",
                "imagePullPolicy", "resources", "readinessProbe", "livenessProbe", "startupProbe",
                "volumeMounts", "securityContext"});
  if (c) {
    cs.image = r.string(*c, "image", cp).value_or("");
    if (!r.failed() && cs.image.empty()) r.invalid(cp + ".image", "an image is required");
    cs.command = r.strings(*c, "command", cp);
    cs.args = r.strings(*c, "args", cp);
    cs.working_dir = r.string(*c, "workingDir", cp).value_or("");
    cs.name = r.string(*c, "name", cp).value_or("");
    cs.pull_policy = r.string(*c, "imagePullPolicy", cp).value_or("");
    if (!cs.pull_policy.empty() && cs.pull_policy != "Always" && cs.pull_policy != "Never" &&
        cs.pull_policy != "IfNotPresent")
      r.invalid(cp + ".imagePullPolicy",
                fmt::format("\"{}\" is not a pull policy; use Always, Never or IfNotPresent",
                            cs.pull_policy));
    if (const json::array* env = r.array(*c, "env", cp)) {
      for (std::size_t i = 0; i < env->size() && !r.failed(); ++i) {
        std::string ep = fmt::format("{}.env[{}]", cp, i);
        const json::object* e = r.object((*env)[i], ep, {"name", "value", "valueFrom"});
        if (!e) break;
        EnvVar var{r.string(*e, "name", ep).value_or(""), r.string(*e, "value", ep).value_or(""),
                   std::nullopt};
        if (const json::value* from = e->if_contains("valueFrom")) {
          if (e->contains("value"))
            r.invalid(ep, "give value or valueFrom, not both");
          else
            read_value_from(r, *from, ep + ".valueFrom", var);
        }
        if (!r.failed() && (var.name.empty() || var.name.find('=') != std::string::npos))
          r.invalid(ep + ".name", "must be a non-empty name without '='");
        if (!r.failed() && (var.name == "PORT" || var.name.rfind("K_", 0) == 0) &&
            (var.name == "PORT" || var.name == "K_SERVICE" || var.name == "K_REVISION" ||
             var.name == "K_CONFIGURATION"))
          r.invalid(ep + ".name", fmt::format("{} is set by elafros (the Knative runtime "
                                              "contract) and cannot be overridden",
                                              var.name));
        cs.env.push_back(std::move(var));
      }
    }
    cs.env_from = read_env_from(r, *c, cp);
    cs.volume_mounts = read_volume_mounts(r, *c, cp);
    if (!r.failed()) check_mounts(r, volumes, cs, cp);
    if (const json::value* res = c->if_contains("resources")) {
      std::string rp = cp + ".resources";
      if (const json::object* ro = r.object(*res, rp, {"limits", "requests"})) {
        for (const char* which : {"limits", "requests"}) {
          const json::value* l = ro->if_contains(which);
          if (!l) continue;
          std::string lp = rp + "." + which;
          const json::object* lo = r.object(*l, lp, {"cpu", "memory", "ephemeral-storage"});
          if (!lo) break;
          ResourceList& list = std::string_view(which) == "limits" ? cs.limits : cs.requests;
          list.cpu = quantity(r, *lo, "cpu", lp);
          list.memory = quantity(r, *lo, "memory", lp);
          list.ephemeral_storage = quantity(r, *lo, "ephemeral-storage", lp);
        }
      }
    }
    if (const json::value* sc = c->if_contains("securityContext"); sc && !sc->is_null())
      cs.security_context = read_security_context(r, *sc, cp + ".securityContext");
    if (const json::array* ports = r.array(*c, "ports", cp)) {
      if (ports->size() > 1) r.invalid(cp + ".ports", "at most one port may be given");
      for (std::size_t i = 0; i < ports->size() && !r.failed(); ++i) {
        std::string pp = fmt::format("{}.ports[{}]", cp, i);
        const json::object* p = r.object((*ports)[i], pp, {"containerPort", "name", "protocol"});
        if (!p) break;
        auto port = r.integer(*p, "containerPort", pp);
        cs.port_name = r.string(*p, "name", pp).value_or("");
        cs.port_protocol = r.string(*p, "protocol", pp).value_or("");
        if (!r.failed() && !cs.port_name.empty() && cs.port_name != "http1" &&
            cs.port_name != "h2c")
          r.invalid(pp + ".name",
                    fmt::format("\"{}\" is not a port name Knative takes: http1 (HTTP/1.1, the "
                                "default) or h2c",
                                cs.port_name));
        if (!r.failed() && !cs.port_protocol.empty() && cs.port_protocol != "TCP")
          r.invalid(pp + ".protocol",
                    fmt::format("\"{}\" is not supported: requests reach an instance over TCP",
                                cs.port_protocol));
        if (!r.failed() && (!port || *port < 1 || *port > 65535))
          r.invalid(pp + ".containerPort", "must be a port number between 1 and 65535");
        else if (port)
          cs.container_port = static_cast<int>(*port);
      }
    }
    // After ports: a probe's port must be the container's.
    for (auto [key, field] : {std::pair{"readinessProbe", &cs.readiness_probe},
                              std::pair{"livenessProbe", &cs.liveness_probe},
                              std::pair{"startupProbe", &cs.startup_probe}})
      if (const json::value* probe = c->if_contains(key); probe && !probe->is_null())
        *field = read_probe(r, *probe, cp + "." + key, cs.container_port);
    if (cs.liveness_probe && cs.liveness_probe->successes() != 1)
      r.invalid(cp + ".livenessProbe.successThreshold", "must be 1 (as in Kubernetes)");
    if (cs.startup_probe && cs.startup_probe->successes() != 1)
      r.invalid(cp + ".startupProbe.successThreshold", "must be 1 (as in Kubernetes)");
  }
}

Result<RevisionTemplate> read_template(Reader& r, const json::value& v, const std::string& path) {
  RevisionTemplate t;
  const json::object* tmpl = r.object(v, path, {"metadata", "spec"});
  if (!tmpl) return Error::invalid(path + ": missing");
  if (const json::value* md = tmpl->if_contains("metadata")) {
    std::string mp = path + ".metadata";
    if (const json::object* m =
            r.object(*md, mp, {"name", "annotations", "labels", "creationTimestamp"})) {
      t.name = r.string(*m, "name", mp).value_or("");
      t.annotations = r.string_map(*m, "annotations", mp);
      t.labels = r.string_map(*m, "labels", mp);
    }
  }
  const json::value* spec_v = tmpl->if_contains("spec");
  std::string sp = path + ".spec";
  if (spec_v) refuse_unsupported(r, *spec_v, sp, kPodFields);  // the first problem is kept
  if (!spec_v) {
    r.invalid(sp, "missing: a template needs spec.containers with one image");
  } else if (spec_v->is_object() && spec_v->get_object().contains("securityContext")) {
    r.invalid(sp + ".securityContext",
              "a pod-level securityContext is not supported (as in Knative, where "
              "kubernetes.podspec-securitycontext is off by default); set it on the container, "
              "in containers[0].securityContext");
  } else if (const json::object* spec = r.object(
                 *spec_v, sp,
                 {"containers", "containerConcurrency", "timeoutSeconds",
                  "responseStartTimeoutSeconds", "idleTimeoutSeconds", "enableServiceLinks",
                  "volumes", "imagePullSecrets", "initContainers"})) {
    t.volumes = read_volumes(r, *spec, sp);
    if (const json::array* secrets = r.array(*spec, "imagePullSecrets", sp))
      for (std::size_t i = 0; i < secrets->size() && !r.failed(); ++i) {
        std::string ip = fmt::format("{}.imagePullSecrets[{}]", sp, i);
        if (const json::object* o = r.object((*secrets)[i], ip, {"name"})) {
          std::string name = r.string(*o, "name", ip).value_or("");
          if (!r.failed() && name.empty())
            r.invalid(ip + ".name", "required: a kubernetes.io/dockerconfigjson Secret");
          t.image_pull_secrets.push_back(std::move(name));
        }
      }
    if (auto cc = r.integer(*spec, "containerConcurrency", sp)) {
      if (*cc < 0 || *cc > 1000)
        r.invalid(sp + ".containerConcurrency",
                  fmt::format("must be between 0 and 1000 (got {})", *cc));
      t.container_concurrency = static_cast<int>(*cc);
    }
    if (auto ts = r.integer(*spec, "timeoutSeconds", sp)) {
      if (*ts < 1 || *ts > 3600)
        r.invalid(sp + ".timeoutSeconds", fmt::format("must be between 1 and 3600 (got {})", *ts));
      t.timeout_seconds = static_cast<int>(*ts);
    }
    auto within_timeout = [&](const char* key, int low, int& field) {
      if (auto v = r.integer(*spec, key, sp)) {
        if (*v < low || *v > t.timeout_seconds)
          r.invalid(sp + "." + key,
                    fmt::format("must be between {} and timeoutSeconds ({}) (got {})", low,
                                t.timeout_seconds, *v));
        field = static_cast<int>(*v);
      }
    };
    within_timeout("responseStartTimeoutSeconds", 1, t.response_start_timeout_seconds);
    within_timeout("idleTimeoutSeconds", 0, t.idle_timeout_seconds);
    (void)r.boolean(*spec, "enableServiceLinks", sp);
    const json::array* containers = r.array(*spec, "containers", sp);
    const json::array* inits = r.array(*spec, "initContainers", sp);
    if (!r.failed() && (!containers || containers->empty())) {
      r.invalid(sp + ".containers", "at least one container is required, with its image");
    } else if (!r.failed()) {
      // Knative's rule: with several containers, the one with ports serves.
      std::size_t serving = 0, with_ports = 0;
      for (std::size_t i = 0; i < containers->size(); ++i)
        if ((*containers)[i].is_object() && (*containers)[i].get_object().contains("ports")) {
          serving = i;
          ++with_ports;
        }
      if (containers->size() > 1 && with_ports != 1)
        r.invalid(sp + ".containers",
                  fmt::format("with several containers, exactly one has ports: the one requests "
                              "go to ({} of {} have)",
                              with_ports, containers->size()));
      t.serving_index = static_cast<int>(serving);
      std::set<std::string> names;
      auto named = [&](const ContainerSpec& c, const std::string& cp, bool required) {
        if (r.failed()) return;
        if (c.name.empty()) {
          if (required)
            r.invalid(cp + ".name",
                      "required: a sidecar or init container has a name (its logs and container "
                      "carry it)");
          return;
        }
        if (auto problem = dns1035_label_problem(c.name))
          r.invalid(cp + ".name", fmt::format("\"{}\" {}", c.name, *problem));
        else if (!names.insert(c.name).second)
          r.invalid(cp + ".name", fmt::format("\"{}\" names two containers", c.name));
      };
      for (std::size_t i = 0; i < containers->size() && !r.failed(); ++i) {
        std::string cp = fmt::format("{}.containers[{}]", sp, i);
        if (i == serving) {
          // Its name is optional: Knative's user-container when left out.
          read_container(r, (*containers)[i], cp, t.container, t.volumes, ContainerRole::kServing);
          named(t.container, cp, false);
        } else {
          t.sidecars.emplace_back();
          read_container(r, (*containers)[i], cp, t.sidecars.back(), t.volumes,
                         ContainerRole::kSidecar);
          named(t.sidecars.back(), cp, true);
        }
      }
      for (std::size_t i = 0; inits && i < inits->size() && !r.failed(); ++i) {
        std::string cp = fmt::format("{}.initContainers[{}]", sp, i);
        t.init_containers.emplace_back();
        read_container(r, (*inits)[i], cp, t.init_containers.back(), t.volumes,
                       ContainerRole::kInit);
        named(t.init_containers.back(), cp, true);
      }
    }
  }
  if (r.failed()) return Error::invalid("");
  if (!t.name.empty()) {
    if (auto problem = dns1035_label_problem(t.name))
      return Error::invalid(
          fmt::format("{}.metadata.name: revision name \"{}\" {}", path, t.name, *problem));
  }
  return t;
}

}  // namespace

std::string format_rfc3339(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<RevisionTemplate> template_from_json(const json::value& v) {
  std::optional<Error> error;
  Reader r(error);
  auto t = read_template(r, v, "spec.template");
  if (error) return *error;
  return t;
}

Result<Service> service_from_json(const json::value& v, const std::string& default_namespace) {
  std::optional<Error> error;
  Reader r(error);
  Service s;
  s.meta.namespace_ = default_namespace;
  const json::object* root =
      r.object(v, "service", {"apiVersion", "kind", "metadata", "spec", "status"});
  if (!root) return *error;
  auto api_version = r.string(*root, "apiVersion", "");
  auto kind = r.string(*root, "kind", "");
  if (api_version && *api_version != "serving.knative.dev/v1")
    r.invalid("apiVersion",
              fmt::format("\"{}\" is not supported; use serving.knative.dev/v1", *api_version));
  if (kind && *kind != "Service")
    r.invalid("kind",
              fmt::format("\"{}\" is not supported here; this endpoint takes a Service", *kind));
  const json::value* md = root->if_contains("metadata");
  if (!md && !error) r.invalid("metadata", "missing: a service needs metadata.name");
  if (md) {
    if (const json::object* m = r.object(
            *md, "metadata",
            {"name", "namespace", "labels", "annotations", "uid", "generation", "creationTimestamp",
             "resourceVersion", "ownerReferences", "finalizers", "deletionTimestamp",
             "deletionGracePeriodSeconds", "managedFields", "generateName", "selfLink"})) {
      s.meta.name = r.string(*m, "name", "metadata").value_or("");
      if (auto ns = r.string(*m, "namespace", "metadata"); ns && !ns->empty())
        s.meta.namespace_ = *ns;
      s.meta.labels = r.string_map(*m, "labels", "metadata");
      s.meta.annotations = r.string_map(*m, "annotations", "metadata");
    }
  }
  if (error) return *error;
  if (auto problem = dns1035_label_problem(s.meta.name))
    return Error::invalid(
        fmt::format("metadata.name: service name \"{}\" {}", s.meta.name, *problem));
  if (s.meta.name.size() > 57)
    return Error::invalid(
        fmt::format("metadata.name: service name \"{}\" must be at most 57 characters, so that its "
                    "revision names (NAME-00001) stay valid",
                    s.meta.name));
  if (auto problem = dns1035_label_problem(s.meta.namespace_))
    return Error::invalid(
        fmt::format("metadata.namespace: \"{}\" {}", s.meta.namespace_, *problem));
  const json::value* spec_v = root->if_contains("spec");
  if (!spec_v)
    return Error::invalid("spec: missing: a service needs spec.template with a container image");
  const json::object* spec = r.object(*spec_v, "spec", {"template", "traffic"});
  if (!spec) return *error;
  const json::value* tmpl = spec->if_contains("template");
  if (!tmpl)
    return Error::invalid(
        "spec.template: missing: a service needs a template with a container image");
  auto t = read_template(r, *tmpl, "spec.template");
  if (error) return *error;
  if (!t) return t.error();
  s.spec = std::move(t.value());
  // Values are checked against the service's revisions by validate_traffic (traffic.hpp).
  if (const json::array* traffic = r.array(*spec, "traffic", "spec")) {
    for (std::size_t i = 0; i < traffic->size() && !error; ++i) {
      std::string tp = fmt::format("spec.traffic[{}]", i);
      const json::object* o = r.object(
          (*traffic)[i], tp,
          {"revisionName", "latestRevision", "percent", "tag", "configurationName", "url"});
      if (!o) break;
      TrafficTarget target;
      target.revision_name = r.string(*o, "revisionName", tp).value_or("");
      target.latest_revision = r.boolean(*o, "latestRevision", tp).value_or(false);
      target.percent = static_cast<int>(r.integer(*o, "percent", tp).value_or(0));
      target.tag = r.string(*o, "tag", tp).value_or("");
      if (r.string(*o, "configurationName", tp))
        r.invalid(tp + ".configurationName", "is not supported; use latestRevision: true");
      (void)r.string(*o, "url", tp);
      s.traffic.push_back(std::move(target));
    }
    // 100% to @latest, untagged, is the default: store it as no traffic block at all, so that
    // exporting and applying back is no change.
    if (s.traffic.size() == 1 && s.traffic[0].latest_revision && s.traffic[0].percent == 100 &&
        s.traffic[0].tag.empty())
      s.traffic.clear();
  }
  if (error) return *error;
  return s;
}

namespace {

json::object container_json(const ContainerSpec& c) {
  json::object container;
  if (!c.name.empty()) container["name"] = c.name;
  container["image"] = c.image;
  if (!c.command.empty()) container["command"] = strings_to_json(c.command);
  if (!c.args.empty()) container["args"] = strings_to_json(c.args);
  if (!c.env.empty()) {
    json::array env;
    for (const auto& e : c.env) env.push_back(env_var_json(e));
    container["env"] = std::move(env);
  }
  if (!c.env_from.empty()) container["envFrom"] = env_from_json(c.env_from);
  if (!c.volume_mounts.empty()) container["volumeMounts"] = volume_mounts_json(c.volume_mounts);
  if (c.container_port > 0 || !c.port_name.empty() || !c.port_protocol.empty()) {
    json::object port;
    if (c.container_port > 0) port["containerPort"] = c.container_port;
    if (!c.port_name.empty()) port["name"] = c.port_name;
    if (!c.port_protocol.empty()) port["protocol"] = c.port_protocol;
    container["ports"] = json::array{std::move(port)};
  }
  if (!c.working_dir.empty()) container["workingDir"] = c.working_dir;
  if (!c.pull_policy.empty()) container["imagePullPolicy"] = c.pull_policy;
  auto list_json = [](const ResourceList& l) {
    json::object o;
    if (!l.cpu.empty()) o["cpu"] = l.cpu;
    if (!l.memory.empty()) o["memory"] = l.memory;
    if (!l.ephemeral_storage.empty()) o["ephemeral-storage"] = l.ephemeral_storage;
    return o;
  };
  if (!c.limits.empty() || !c.requests.empty()) {
    json::object res;
    if (!c.limits.empty()) res["limits"] = list_json(c.limits);
    if (!c.requests.empty()) res["requests"] = list_json(c.requests);
    container["resources"] = std::move(res);
  }
  if (const auto& sc = c.security_context)
    container["securityContext"] = security_context_json(*sc);
  if (const auto& p = c.readiness_probe) container["readinessProbe"] = probe_json(*p);
  if (const auto& p = c.liveness_probe) container["livenessProbe"] = probe_json(*p);
  if (const auto& p = c.startup_probe) container["startupProbe"] = probe_json(*p);
  return container;
}

}  // namespace

json::object template_to_json(const RevisionTemplate& t) {
  json::object spec;
  spec["containerConcurrency"] = t.container_concurrency;
  spec["timeoutSeconds"] = t.timeout_seconds;
  if (t.response_start_timeout_seconds)
    spec["responseStartTimeoutSeconds"] = t.response_start_timeout_seconds;
  if (t.idle_timeout_seconds) spec["idleTimeoutSeconds"] = t.idle_timeout_seconds;
  json::array containers;
  for (const auto& sc : t.sidecars) containers.push_back(container_json(sc));
  auto at =
      static_cast<std::size_t>(std::clamp(t.serving_index, 0, static_cast<int>(containers.size())));
  containers.insert(containers.begin() + static_cast<std::ptrdiff_t>(at),
                    container_json(t.container));
  spec["containers"] = std::move(containers);
  if (!t.init_containers.empty()) {
    json::array inits;
    for (const auto& ic : t.init_containers) inits.push_back(container_json(ic));
    spec["initContainers"] = std::move(inits);
  }
  if (!t.volumes.empty()) spec["volumes"] = volumes_json(t.volumes);
  if (!t.image_pull_secrets.empty()) {
    json::array secrets;
    for (const auto& name : t.image_pull_secrets) secrets.push_back(json::object{{"name", name}});
    spec["imagePullSecrets"] = std::move(secrets);
  }

  json::object out;
  json::object md;
  if (!t.name.empty()) md["name"] = t.name;
  if (!t.annotations.empty()) md["annotations"] = map_to_json(t.annotations);
  if (!t.labels.empty()) md["labels"] = map_to_json(t.labels);
  if (!md.empty()) out["metadata"] = std::move(md);
  out["spec"] = std::move(spec);
  return out;
}

json::object condition_to_json(const Condition& c) {
  json::object o{{"type", c.type}, {"status", c.status}};
  if (!c.reason.empty()) o["reason"] = c.reason;
  if (!c.message.empty()) o["message"] = c.message;
  if (c.last_transition_unix) o["lastTransitionTime"] = format_rfc3339(c.last_transition_unix);
  return o;
}

namespace {

json::object meta_to_json(const ObjectMeta& m) {
  json::object md{{"name", m.name}, {"namespace", m.namespace_}};
  if (!m.uid.empty()) md["uid"] = m.uid;
  if (m.generation) md["generation"] = m.generation;
  if (m.created_unix) md["creationTimestamp"] = format_rfc3339(m.created_unix);
  if (!m.labels.empty()) md["labels"] = map_to_json(m.labels);
  if (!m.annotations.empty()) md["annotations"] = map_to_json(m.annotations);
  return md;
}

}  // namespace

json::array conditions_to_json(const std::vector<Condition>& cs) {
  json::array a;
  for (const auto& c : cs) a.push_back(condition_to_json(c));
  return a;
}

json::object service_to_json(const Service& s, const ServiceStatus* status) {
  json::object spec;
  spec["template"] = template_to_json(s.spec);
  json::array traffic;
  for (const auto& t : s.traffic) {
    json::object o;
    if (t.latest_revision)
      o["latestRevision"] = true;
    else
      o["revisionName"] = t.revision_name;
    o["percent"] = t.percent;
    if (!t.tag.empty()) o["tag"] = t.tag;
    traffic.push_back(std::move(o));
  }
  if (traffic.empty()) traffic.push_back(json::object{{"latestRevision", true}, {"percent", 100}});
  spec["traffic"] = std::move(traffic);

  json::object out{{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Service"}};
  out["metadata"] = meta_to_json(s.meta);
  out["spec"] = std::move(spec);
  if (status) {
    json::object st;
    st["observedGeneration"] = status->observed_generation;
    st["conditions"] = conditions_to_json(status->conditions);
    if (!status->url.empty()) st["url"] = status->url;
    if (!status->latest_created_revision.empty())
      st["latestCreatedRevisionName"] = status->latest_created_revision;
    if (!status->latest_ready_revision.empty())
      st["latestReadyRevisionName"] = status->latest_ready_revision;
    json::array tr;
    for (const auto& t : status->traffic) {
      json::object o{{"revisionName", t.revision_name}, {"percent", t.percent}};
      if (t.latest_revision) o["latestRevision"] = true;
      if (!t.tag.empty()) o["tag"] = t.tag;
      if (!t.url.empty()) o["url"] = t.url;
      tr.push_back(std::move(o));
    }
    st["traffic"] = std::move(tr);
    out["status"] = std::move(st);
  }
  return out;
}

json::object revision_to_json(const Revision& r, const RevisionStatus* status) {
  json::object out{{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Revision"}};
  out["metadata"] = meta_to_json(r.meta);
  json::object tmpl = template_to_json(r.spec);
  out["spec"] = tmpl["spec"];
  json::object st;
  st["observedGeneration"] = 1;
  if (status) {
    st["conditions"] = conditions_to_json(status->conditions);
    st["actualReplicas"] = status->actual_replicas;
    st["desiredReplicas"] = status->desired_replicas;
    st["autoscalerPanic"] = status->panic;
    st["restartCount"] = status->restarts;
    const RevisionActivity& a = status->activity;
    auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
    st["activity"] = json::object{{"windowSeconds", round3(a.window_seconds)},
                                  {"requestsPerSecond", round3(a.requests_per_second)},
                                  {"p50LatencyMs", round3(a.p50_ms)},
                                  {"p99LatencyMs", round3(a.p99_ms)},
                                  {"errorRate", round3(a.error_rate)},
                                  {"coldStarts", a.cold_starts},
                                  {"coldStartP50Ms", round3(a.cold_start_p50_ms)},
                                  {"coldStartMaxMs", round3(a.cold_start_max_ms)},
                                  {"requestsTotal", a.requests_total}};
  }
  json::array statuses = container_statuses(r);
  json::object& container = statuses[0].as_object();
  if (status) {
    container["restartCount"] = status->restarts;
    if (const auto& last = status->last_restart; !last.reason.empty())
      container["lastState"] =
          json::object{{"terminated", json::object{{"reason", last.reason},
                                                   {"message", last.message},
                                                   {"finishedAt", format_rfc3339(last.at_unix)}}}};
  }
  st["containerStatuses"] = std::move(statuses);
  if (!r.spec.init_containers.empty()) st["initContainerStatuses"] = init_container_statuses(r);
  out["status"] = std::move(st);
  return out;
}

PodResources pod_resources(const RevisionTemplate& t) {
  auto of = [](const ContainerSpec& c) {
    return PodResources{parse_cpu_millis(c.limits.cpu).value_or(0),
                        parse_memory_bytes(c.limits.memory).value_or(0),
                        parse_cpu_millis(c.requests.cpu).value_or(0),
                        parse_memory_bytes(c.requests.memory).value_or(0)};
  };
  PodResources sum = of(t.container);
  for (const auto& c : t.sidecars) {
    PodResources one = of(c);
    sum.limits_cpu_millis += one.limits_cpu_millis;
    sum.limits_memory_bytes += one.limits_memory_bytes;
    sum.requests_cpu_millis += one.requests_cpu_millis;
    sum.requests_memory_bytes += one.requests_memory_bytes;
  }
  for (const auto& c : t.init_containers) {
    PodResources one = of(c);
    sum.limits_cpu_millis = std::max(sum.limits_cpu_millis, one.limits_cpu_millis);
    sum.limits_memory_bytes = std::max(sum.limits_memory_bytes, one.limits_memory_bytes);
    sum.requests_cpu_millis = std::max(sum.requests_cpu_millis, one.requests_cpu_millis);
    sum.requests_memory_bytes = std::max(sum.requests_memory_bytes, one.requests_memory_bytes);
  }
  return sum;
}

std::optional<std::int64_t> parse_cpu_millis(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool milli = text.back() == 'm';
  std::string num(milli ? text.substr(0, text.size() - 1) : text);
  if (num.empty() || num.find_first_not_of("0123456789.") != std::string::npos ||
      std::count(num.begin(), num.end(), '.') > 1 || num == ".")
    return std::nullopt;
  double v = std::stod(num);
  std::int64_t millis =
      milli ? static_cast<std::int64_t>(v) : static_cast<std::int64_t>(v * 1000 + 0.5);
  if (millis <= 0) return std::nullopt;
  return millis;
}

std::optional<std::int64_t> parse_memory_bytes(std::string_view text) {
  static const std::pair<std::string_view, std::int64_t> kSuffixes[] = {
      {"Ki", 1LL << 10}, {"Mi", 1LL << 20},   {"Gi", 1LL << 30},
      {"Ti", 1LL << 40}, {"k", 1000LL},       {"K", 1000LL},
      {"M", 1000000LL},  {"G", 1000000000LL}, {"T", 1000000000000LL}};
  std::int64_t mult = 1;
  for (const auto& [suffix, m] : kSuffixes)
    if (text.size() > suffix.size() && text.substr(text.size() - suffix.size()) == suffix) {
      text.remove_suffix(suffix.size());
      mult = m;
      break;
    }
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos ||
      text.size() > 15)
    return std::nullopt;
  std::int64_t v = std::stoll(std::string(text)) * mult;
  if (v <= 0) return std::nullopt;
  return v;
}

json::object image_to_json(const ImageRecord& i) {
  return json::object{
      {"name", i.name},     {"digest", i.digest}, {"configDigest", i.config_digest},
      {"source", i.source}, {"size", i.size},     {"created", format_rfc3339(i.created_unix)}};
}

}  // namespace elafros
