#include "oci_spec.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixtures/tar_builder.hpp"

using namespace elafros;
namespace json = boost::json;

namespace {

LaunchSpec launch() {
  LaunchSpec l;
  l.container_id = "hello-00001-abc";
  l.service = "hello";
  l.revision = "hello-00001";
  l.port = 41000;
  return l;
}

std::vector<std::string> strings(const json::value& v) {
  std::vector<std::string> out;
  for (const auto& e : v.as_array()) out.emplace_back(e.as_string());
  return out;
}

}  // namespace

TEST_CASE("the process comes from the image config, with Kubernetes override rules") {
  test::TempDir root;
  ImageConfig image{{"/entry"}, {"default-arg"}, {"PATH=/bin", "A=image"}, "/work", ""};
  LaunchSpec l = launch();

  auto p = resolve_process(image, l, root.path());
  REQUIRE(p.ok());
  CHECK(p->args == std::vector<std::string>{"/entry", "default-arg"});
  CHECK(p->cwd == "/work");

  l.container.args = {"x", "y"};
  CHECK(resolve_process(image, l, root.path())->args ==
        std::vector<std::string>{"/entry", "x", "y"});

  l.container.command = {"/other"};
  l.container.args = {};
  CHECK(resolve_process(image, l, root.path())->args == std::vector<std::string>{"/other"});

  l.container.working_dir = "/elsewhere";
  CHECK(resolve_process(image, l, root.path())->cwd == "/elsewhere");
}

TEST_CASE("the environment merges image, user and the runtime contract, in that order") {
  test::TempDir root;
  ImageConfig image{{"/entry"}, {}, {"PATH=/bin", "A=image", "B=image"}, "", ""};
  LaunchSpec l = launch();
  l.container.env = {{"B", "user"}, {"C", "user"}};
  auto p = resolve_process(image, l, root.path());
  REQUIRE(p.ok());
  auto has = [&](const std::string& kv) {
    return std::find(p->env.begin(), p->env.end(), kv) != p->env.end();
  };
  CHECK(has("PATH=/bin"));
  CHECK(has("A=image"));
  CHECK(has("B=user"));
  CHECK_FALSE(has("B=image"));
  CHECK(has("C=user"));
  CHECK(has("PORT=41000"));
  CHECK(has("K_SERVICE=hello"));
  CHECK(has("K_CONFIGURATION=hello"));
  CHECK(has("K_REVISION=hello-00001"));
}

TEST_CASE("an image user is resolved through the image's own passwd and group files") {
  test::TempDir root;
  std::filesystem::create_directories(root.path() + "/etc");
  std::ofstream(root.path() + "/etc/passwd")
      << "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
  std::ofstream(root.path() + "/etc/group") << "root:x:0:\napp:x:1001:\nextra:x:2000:app\n";
  ImageConfig image{{"/entry"}, {}, {}, "", "app"};
  auto p = resolve_process(image, launch(), root.path());
  REQUIRE(p.ok());
  CHECK(p->uid == 1000);
  CHECK(p->gid == 1001);
  CHECK(p->additional_gids == std::vector<std::uint32_t>{2000});

  image.user = "1234:5678";
  p = resolve_process(image, launch(), root.path());
  CHECK(p->uid == 1234);
  CHECK(p->gid == 5678);

  image.user = "nobody-here";
  auto bad = resolve_process(image, launch(), root.path());
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("nobody-here") != std::string::npos);
}

TEST_CASE("an image with nothing to run is refused with a hint") {
  test::TempDir root;
  auto p = resolve_process(ImageConfig{}, launch(), root.path());
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message.find("--cmd") != std::string::npos);
}

TEST_CASE("config.json has hardened defaults") {
  BundleSpec b;
  b.process.args = {"/entry"};
  b.process.env = {"PORT=1"};
  b.rootfs = "/data/instances/x/rootfs";
  b.hostname = "hello";
  b.cgroups_path = "/elafros/x";
  b.pids_limit = 512;
  b.readonly_files = {{"/etc/resolv.conf", "/etc/resolv.conf"}};
  b.memory_limit_bytes = 64 << 20;
  b.cpu_limit_millis = 500;
  json::object spec = make_runtime_spec(b);

  const auto& process = spec.at("process").as_object();
  CHECK(process.at("noNewPrivileges") == true);
  auto caps = strings(process.at("capabilities").at("bounding"));
  CHECK(caps.size() == 14);
  CHECK(std::find(caps.begin(), caps.end(), "CAP_SYS_ADMIN") == caps.end());
  CHECK(std::find(caps.begin(), caps.end(), "CAP_NET_BIND_SERVICE") != caps.end());
  CHECK(strings(process.at("capabilities").at("effective")) == caps);
  CHECK(strings(process.at("args")) == std::vector<std::string>{"/entry"});

  CHECK(spec.at("root").at("path") == "/data/instances/x/rootfs");
  CHECK(spec.at("root").at("readonly") == false);

  const auto& linux = spec.at("linux").as_object();
  std::vector<std::string> ns;
  for (const auto& n : linux.at("namespaces").as_array()) ns.emplace_back(n.at("type").as_string());
  CHECK(ns == std::vector<std::string>{"pid", "mount", "ipc", "uts"});  // host network for now
  CHECK(linux.at("cgroupsPath") == "/elafros/x");
  CHECK(linux.at("resources").at("pids").at("limit") == 512);
  CHECK(linux.at("resources").at("memory").at("limit") == 64 << 20);
  CHECK(linux.at("resources").at("cpu").at("quota") == 50000);
  CHECK(linux.at("resources").at("cpu").at("period") == 100000);
  auto masked = strings(linux.at("maskedPaths"));
  CHECK(std::find(masked.begin(), masked.end(), "/proc/kcore") != masked.end());
  auto ro = strings(linux.at("readonlyPaths"));
  CHECK(std::find(ro.begin(), ro.end(), "/proc/sys") != ro.end());

  bool tmp = false, resolv = false;
  for (const auto& m : spec.at("mounts").as_array()) {
    if (m.at("destination") == "/tmp") tmp = m.at("type") == "tmpfs";
    if (m.at("destination") == "/etc/resolv.conf") {
      auto opts = strings(m.at("options"));
      resolv = std::find(opts.begin(), opts.end(), "ro") != opts.end();
    }
  }
  CHECK(tmp);
  CHECK(resolv);
}

TEST_CASE("RuntimeDefault seccomp is an EPERM allowlist, resolved against the capabilities") {
  BundleSpec b;
  b.process.args = {"/entry"};
  json::object spec = make_runtime_spec(b);
  const auto& seccomp = spec.at("linux").at("seccomp").as_object();
  CHECK(seccomp.at("defaultAction") == "SCMP_ACT_ERRNO");
  CHECK(seccomp.at("defaultErrnoRet") == 1);
  std::map<std::string, int> allowed;  // name → rules allowing it
  bool clone_masked = false, clone3_enosys = false, vsock = false;
  for (const auto& rule : seccomp.at("syscalls").as_array()) {
    for (const auto& n : rule.at("names").as_array()) {
      std::string name(n.as_string());
      if (rule.at("action") == "SCMP_ACT_ALLOW") ++allowed[name];
      if (name == "clone" && rule.as_object().contains("args"))
        clone_masked = rule.at("args").at(0).at("op") == "SCMP_CMP_MASKED_EQ" &&
                       rule.at("args").at(0).at("value") == 2114060288;
      if (name == "clone3") clone3_enosys = rule.at("errnoRet") == 38;
      if (name == "socket") vsock = rule.at("args").at(0).at("value") == 40;
    }
  }
  CHECK(allowed.count("read") == 1);
  CHECK(allowed.count("chroot") == 1);  // CAP_SYS_CHROOT is among Docker's 14
  for (const char* blocked : {"unshare", "mount", "keyctl", "add_key", "reboot", "setns", "bpf"})
    CHECK(allowed.count(blocked) == 0);
  CHECK(clone_masked);
  CHECK(clone3_enosys);
  CHECK(vsock);
  CHECK(allowed["personality"] == 5);
}

TEST_CASE("securityContext resolves into the bundle, and secure-pod-defaults fills it in") {
  BundleSpec b;
  b.process.uid = 65534;
  SecurityContext sc;
  sc.run_as_user = 1000;
  sc.run_as_group = 2000;
  sc.read_only_root_filesystem = true;
  sc.has_capabilities = true;
  sc.capabilities_drop = {"ALL"};
  sc.capabilities_add = {"NET_BIND_SERVICE"};
  REQUIRE(resolve_security(sc, SecurityPolicy{}, 8080, b));
  CHECK(b.process.uid == 1000);
  CHECK(b.process.gid == 2000);
  CHECK(b.readonly_rootfs);
  CHECK(b.capabilities == std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  CHECK(b.ambient_capabilities == std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  CHECK(b.no_new_privileges);
  CHECK(b.seccomp);

  BundleSpec root;  // uid 0 from the image
  SecurityPolicy enabled{"Enabled", false};
  auto refused = resolve_security(std::nullopt, enabled, 8080, root);
  REQUIRE(!refused);
  CHECK(refused.error().message.find("runAsNonRoot: is true, but the image runs as root") !=
        std::string::npos);

  BundleSpec bounded;
  REQUIRE(resolve_security(std::nullopt, SecurityPolicy{"AllowRootBounded", false}, 80, bounded));
  CHECK(bounded.capabilities == std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  BundleSpec high;
  REQUIRE(resolve_security(std::nullopt, SecurityPolicy{"AllowRootBounded", false}, 8080, high));
  CHECK(high.capabilities.empty());

  SecurityContext unconfined;
  unconfined.seccomp_profile = "Unconfined";
  BundleSpec u;
  CHECK(!resolve_security(unconfined, SecurityPolicy{}, 8080, u));
  REQUIRE(resolve_security(unconfined, SecurityPolicy{"disabled", true}, 8080, u));
  CHECK(!u.seccomp);
  CHECK(!make_runtime_spec(u).at("linux").as_object().contains("seccomp"));
}

TEST_CASE("a user namespace maps ids and binds the host's /sys read-only instead of sysfs") {
  BundleSpec b;
  b.process.args = {"/entry"};
  auto sys_of = [](const json::object& spec) {
    for (const auto& m : spec.at("mounts").as_array())
      if (m.at("destination") == "/sys") return m.as_object();
    return json::object{};
  };
  json::object plain = make_runtime_spec(b);
  CHECK(!plain.at("linux").as_object().contains("uidMappings"));
  CHECK(sys_of(plain).at("type") == "sysfs");

  b.user_namespace = IdMapping{100000, 65536};
  json::object spec = make_runtime_spec(b);
  const auto& linux = spec.at("linux").as_object();
  bool user = false;
  for (const auto& n : linux.at("namespaces").as_array()) user = user || n.at("type") == "user";
  CHECK(user);
  for (const char* key : {"uidMappings", "gidMappings"}) {
    const auto& m = linux.at(key).at(0).as_object();
    CHECK(m.at("containerID") == 0);
    CHECK(m.at("hostID") == 100000);
    CHECK(m.at("size") == 65536);
  }
  json::object sys = sys_of(spec);
  CHECK(sys.at("type") == "bind");
  CHECK(sys.at("source") == "/sys");
  auto opts = strings(sys.at("options"));
  CHECK(std::find(opts.begin(), opts.end(), "ro") != opts.end());
  CHECK(IdMapping{100000, 65536}.host_id(65534) == 165534);
  CHECK(IdMapping{100000, 65536}.host_id(70000) == 165535);  // past the range: its last id
}

TEST_CASE("with the bridge's user namespace, runc joins it and mounts a sysfs of its own") {
  BundleSpec b;
  b.process.args = {"/entry"};
  b.user_namespace = IdMapping{100000, 65536};
  b.netns_path = "/run/elafros/elafros0/netns/3";
  b.userns_path = "/run/elafros/elafros0/userns";
  json::object spec = make_runtime_spec(b);
  const auto& linux = spec.at("linux").as_object();
  std::string user_path;
  for (const auto& n : linux.at("namespaces").as_array())
    if (n.at("type") == "user") user_path = n.at("path").as_string().c_str();
  CHECK(user_path == "/run/elafros/elafros0/userns");
  CHECK(linux.contains("uidMappings"));  // runc finds the host's root in them
  for (const auto& m : spec.at("mounts").as_array())
    if (m.at("destination") == "/sys") CHECK(m.at("type") == "sysfs");
}
