#include "oci_spec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <fstream>
#include <map>

#include "seccomp_profile.hpp"

namespace json = boost::json;

namespace elafros {
namespace {

std::optional<std::uint32_t> parse_id(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Looks a name up in a passwd- or group-style file: returns field 2 (the id) and, for passwd,
// field 3 (the primary gid) and field 5 (home).
struct DbEntry {
  std::uint32_t id = 0;
  std::uint32_t gid = 0;
  std::string name;
  std::vector<std::string> members;
};

std::vector<DbEntry> read_db(const std::string& path, bool passwd) {
  std::vector<DbEntry> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::size_t i = 0;
    for (;;) {
      auto j = line.find(':', i);
      f.push_back(line.substr(i, j == std::string::npos ? std::string::npos : j - i));
      if (j == std::string::npos) break;
      i = j + 1;
    }
    if (f.size() < 4) continue;
    DbEntry e;
    e.name = f[0];
    auto id = parse_id(f[2]);
    if (!id) continue;
    e.id = *id;
    if (passwd) {
      e.gid = parse_id(f[3]).value_or(0);
    } else {
      std::size_t k = 0;
      while (k < f[3].size()) {
        auto c = f[3].find(',', k);
        if (c == std::string::npos) c = f[3].size();
        if (c > k) e.members.push_back(f[3].substr(k, c - k));
        k = c + 1;
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

json::array to_array(const std::vector<std::string>& v) {
  json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

}  // namespace

const std::vector<std::string>& default_capabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  return caps;
}

std::vector<std::string> BundleSpec::default_capabilities_list() {
  return default_capabilities();
}

Result<void> resolve_security(const std::optional<SecurityContext>& context,
                              const SecurityPolicy& policy, int port, BundleSpec& bundle) {
  const std::string field = "spec.template.spec.containers[0].securityContext";
  SecurityContext sc = context.value_or(SecurityContext{});
  if (policy.secure_pod_defaults == "AllowRootBounded" || policy.secure_pod_defaults == "Enabled") {
    if (!sc.allow_privilege_escalation) sc.allow_privilege_escalation = false;
    if (sc.seccomp_profile.empty()) sc.seccomp_profile = "RuntimeDefault";
    if (!sc.has_capabilities) {
      sc.has_capabilities = true;
      sc.capabilities_drop = {"ALL"};
      if (port > 0 && port < 1024) sc.capabilities_add = {"NET_BIND_SERVICE"};
    }
    if (policy.secure_pod_defaults == "Enabled" && !sc.run_as_non_root) sc.run_as_non_root = true;
  }
  ProcessSpec& p = bundle.process;
  if (sc.run_as_user) {
    p.uid = static_cast<std::uint32_t>(*sc.run_as_user);
    p.additional_gids.clear();
  }
  if (sc.run_as_group) p.gid = static_cast<std::uint32_t>(*sc.run_as_group);
  if (sc.run_as_non_root.value_or(false) && p.uid == 0)
    return Error::invalid(fmt::format(
        "{}.runAsNonRoot: is true, but the image runs as root (uid 0); set "
        "securityContext.runAsUser to a non-zero uid, or use an image whose USER is not root",
        field));
  auto canonical = [](std::string name) {
    return name.rfind("CAP_", 0) == 0 ? name : "CAP_" + name;
  };
  std::vector<std::string> caps = default_capabilities();
  for (const auto& d : sc.capabilities_drop) {
    if (d == "ALL") {
      caps.clear();
      break;
    }
    caps.erase(std::remove(caps.begin(), caps.end(), canonical(d)), caps.end());
  }
  bundle.ambient_capabilities.clear();
  for (const auto& a : sc.capabilities_add) {
    std::string c = canonical(a);
    if (std::find(caps.begin(), caps.end(), c) == caps.end()) caps.push_back(c);
    // Added for a non-root user: ambient too, or the kernel drops it at exec (KEP 2763).
    if (p.uid != 0) bundle.ambient_capabilities.push_back(c);
  }
  bundle.capabilities = std::move(caps);
  bundle.no_new_privileges = !sc.allow_privilege_escalation.value_or(false);
  bundle.readonly_rootfs = sc.read_only_root_filesystem.value_or(false);
  bundle.seccomp = sc.seccomp_profile != "Unconfined";
  if (!bundle.seccomp && !policy.allow_unconfined)
    return Error::invalid(fmt::format(
        "{}.seccompProfile.type: Unconfined is not allowed on this machine; use RuntimeDefault, "
        "or an operator sets seccomp-unconfined: true in the daemon's config",
        field));
  return {};
}

Result<ProcessSpec> resolve_process(const ImageConfig& image, const LaunchSpec& launch,
                                    const std::string& rootfs) {
  ProcessSpec p;
  const ContainerSpec& c = launch.container;
  if (!c.command.empty()) {
    p.args = c.command;
    p.args.insert(p.args.end(), c.args.begin(), c.args.end());
  } else {
    p.args = image.entrypoint;
    const auto& tail = c.args.empty() ? image.cmd : c.args;
    p.args.insert(p.args.end(), tail.begin(), tail.end());
  }
  if (p.args.empty())
    return Error::invalid(fmt::format(
        fmt::runtime(
            launch.build_step
                ? "the image of step \"{}\" has no Entrypoint or Cmd and the step gives no "
                  "command; "
                  "give the step a command or a script"
                : "the image of revision \"{}\" has no Entrypoint or Cmd and the service gives no "
                  "command; set one with --cmd"),
        launch.revision));

  // Environment: image, then user, then the runtime contract. A later name replaces an earlier.
  std::vector<std::pair<std::string, std::string>> env;
  auto set = [&env](std::string name, std::string value) {
    for (auto& e : env)
      if (e.first == name) return void(e.second = std::move(value));
    env.emplace_back(std::move(name), std::move(value));
  };
  for (const auto& kv : image.env) {
    auto eq = kv.find('=');
    set(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  for (const auto& e : c.env) set(e.name, e.value);
  if (!launch.build_step) {
    if (launch.port > 0) set("PORT", std::to_string(launch.port));  // not a sidecar's
    set("K_SERVICE", launch.service);
    set("K_CONFIGURATION", launch.service);
    set("K_REVISION", launch.revision);
  }
  bool has_path = false;
  for (const auto& e : env) has_path = has_path || e.first == "PATH";
  if (!has_path) set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  bool has_home = false;
  for (const auto& e : env) has_home = has_home || e.first == "HOME";
  for (auto& e : env) p.env.push_back(e.first + "=" + e.second);

  p.cwd = !c.working_dir.empty() ? c.working_dir
                                 : (!image.working_dir.empty() ? image.working_dir : "/");

  // User: "", "uid", "uid:gid", "name", "name:group".
  std::string user = image.user;
  std::string user_part = user.substr(0, user.find(':'));
  std::string group_part =
      user.find(':') == std::string::npos ? "" : user.substr(user.find(':') + 1);
  auto passwd = read_db(rootfs + "/etc/passwd", true);
  auto groups = read_db(rootfs + "/etc/group", false);
  std::string user_name;
  if (!user_part.empty()) {
    if (auto id = parse_id(user_part)) {
      p.uid = *id;
      for (const auto& e : passwd)
        if (e.id == *id) p.gid = e.gid, user_name = e.name;
    } else {
      bool found = false;
      for (const auto& e : passwd)
        if (e.name == user_part) p.uid = e.id, p.gid = e.gid, user_name = e.name, found = true;
      if (!found)
        return Error::invalid(
            fmt::format("the image's user \"{}\" is not in its /etc/passwd", user_part));
    }
  }
  if (!group_part.empty()) {
    if (auto id = parse_id(group_part)) {
      p.gid = *id;
    } else {
      bool found = false;
      for (const auto& g : groups)
        if (g.name == group_part) p.gid = g.id, found = true;
      if (!found)
        return Error::invalid(
            fmt::format("the image's group \"{}\" is not in its /etc/group", group_part));
    }
  } else if (!user_name.empty()) {
    for (const auto& g : groups)
      for (const auto& m : g.members)
        if (m == user_name && g.id != p.gid) p.additional_gids.push_back(g.id);
  }
  if (!has_home) p.env.push_back("HOME=/");
  return p;
}

json::object make_runtime_spec(const BundleSpec& b) {
  json::object process;
  process["terminal"] = false;
  json::object user{{"uid", b.process.uid}, {"gid", b.process.gid}};
  if (!b.process.additional_gids.empty()) {
    json::array g;
    for (auto id : b.process.additional_gids) g.emplace_back(id);
    user["additionalGids"] = std::move(g);
  }
  process["user"] = std::move(user);
  process["args"] = to_array(b.process.args);
  process["env"] = to_array(b.process.env);
  process["cwd"] = b.process.cwd;
  json::array caps = to_array(b.capabilities);
  json::object capabilities{{"bounding", caps}, {"effective", caps}, {"permitted", caps}};
  if (!b.ambient_capabilities.empty()) {
    capabilities["inheritable"] = to_array(b.ambient_capabilities);
    capabilities["ambient"] = to_array(b.ambient_capabilities);
  }
  process["capabilities"] = std::move(capabilities);
  process["rlimits"] = json::array{
      json::object{{"type", "RLIMIT_NOFILE"}, {"hard", b.nofile_limit}, {"soft", b.nofile_limit}}};
  process["noNewPrivileges"] = b.no_new_privileges;

  json::array mounts{
      json::object{{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      json::object{{"destination", "/dev"},
                   {"type", "tmpfs"},
                   {"source", "tmpfs"},
                   {"options", to_array({"nosuid", "strictatime", "mode=755", "size=65536k"})}},
      json::object{
          {"destination", "/dev/pts"},
          {"type", "devpts"},
          {"source", "devpts"},
          {"options", to_array({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"})}},
      json::object{
          {"destination", "/dev/shm"},
          {"type", "tmpfs"},
          {"source", "shm"},
          {"options", to_array({"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"})}},
      json::object{{"destination", "/dev/mqueue"},
                   {"type", "mqueue"},
                   {"source", "mqueue"},
                   {"options", to_array({"nosuid", "noexec", "nodev"})}},
      // In a user namespace of runc's own, sysfs cannot be mounted (the network namespace
      // belongs to the host's user namespace): the host's /sys, bound read-only, as runc's
      // rootless spec does. The bridge's namespaces belong to its user namespace instead.
      b.user_namespace && b.userns_path.empty()
          ? json::object{{"destination", "/sys"},
                         {"type", "bind"},
                         {"source", "/sys"},
                         {"options", to_array({"rbind", "nosuid", "noexec", "nodev", "ro"})}}
          : json::object{{"destination", "/sys"},
                         {"type", "sysfs"},
                         {"source", "sysfs"},
                         {"options", to_array({"nosuid", "noexec", "nodev", "ro"})}},
      json::object{{"destination", "/sys/fs/cgroup"},
                   {"type", "cgroup"},
                   {"source", "cgroup"},
                   {"options", to_array({"nosuid", "noexec", "nodev", "relatime", "ro"})}},
      json::object{{"destination", "/tmp"},
                   {"type", "tmpfs"},
                   {"source", "tmpfs"},
                   {"options", to_array({"nosuid", "nodev", "mode=1777"})}},
  };
  for (const auto& [source, destination] : b.readonly_files)
    mounts.push_back(
        json::object{{"destination", destination},
                     {"type", "bind"},
                     {"source", source},
                     {"options", to_array({"rbind", "ro", "nosuid", "nodev", "noexec"})}});
  for (const auto& bind : b.binds)
    mounts.push_back(
        json::object{{"destination", bind.destination},
                     {"type", "bind"},
                     {"source", bind.source},
                     {"options", bind.readonly ? to_array({"rbind", "ro", "nosuid", "nodev"})
                                               : to_array({"rbind", "rw", "nosuid", "nodev"})}});

  json::object linux;
  // A network namespace made and wired ahead (runtime/bridge_network), or none: the host's
  // network, where the instance listens on a loopback port (network: host).
  json::array namespaces{json::object{{"type", "pid"}}, json::object{{"type", "mount"}},
                         json::object{{"type", "ipc"}}, json::object{{"type", "uts"}}};
  if (!b.netns_path.empty())
    namespaces.push_back(json::object{{"type", "network"}, {"path", b.netns_path}});
  if (b.user_namespace) {
    json::object user{{"type", "user"}};
    if (!b.userns_path.empty()) user["path"] = b.userns_path;  // mappings still name host root
    namespaces.push_back(std::move(user));
    json::array map{json::object{{"containerID", 0},
                                 {"hostID", b.user_namespace->host_base},
                                 {"size", b.user_namespace->size}}};
    linux["uidMappings"] = map;
    linux["gidMappings"] = std::move(map);
  }
  linux["namespaces"] = std::move(namespaces);
  linux["cgroupsPath"] = b.cgroups_path;
  json::object resources{
      {"pids", json::object{{"limit", b.pids_limit}}},
      {"devices", json::array{json::object{{"allow", false}, {"access", "rwm"}}}}};
  if (b.memory_limit_bytes > 0)
    resources["memory"] =
        json::object{{"limit", b.memory_limit_bytes}, {"swap", b.memory_limit_bytes}};
  if (b.cpu_limit_millis > 0) {
    constexpr std::int64_t kPeriod = 100000;  // µs, the CFS default
    resources["cpu"] =
        json::object{{"quota", b.cpu_limit_millis * kPeriod / 1000}, {"period", kPeriod}};
  }
  linux["resources"] = std::move(resources);
  // runc's default spec (libcontainer/specconv) masks and write-protects these.
  linux["maskedPaths"] = to_array({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                   "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                   "/proc/sched_debug", "/sys/firmware", "/proc/scsi"});
  linux["readonlyPaths"] =
      to_array({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});
  if (b.seccomp) linux["seccomp"] = runtime_default_seccomp(b.capabilities);

  json::object spec;
  spec["ociVersion"] = "1.0.2";
  spec["process"] = std::move(process);
  spec["root"] = json::object{{"path", b.rootfs}, {"readonly", b.readonly_rootfs}};
  spec["hostname"] = b.hostname;
  spec["mounts"] = std::move(mounts);
  spec["linux"] = std::move(linux);
  return spec;
}

}  // namespace elafros
