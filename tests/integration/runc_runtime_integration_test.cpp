// RuncRuntime with the real runc: start an instance of a fixture image (built here with umoci
// and busybox-static), probe it, serve a request, stop it, and leave nothing behind.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "image_store.hpp"
#include "posix_process_runner.hpp"
#include "runc_runtime.hpp"

using namespace elafros;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct Workspace {
  std::string dir;
  Workspace() {
    char tmpl[] = "/tmp/elafros-it-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    dir = tmpl;
  }
  // Builds examples/hello's image (umoci + busybox-static, offline) as <dir>/image:latest.
  bool build_fixture_image() const {
    std::string cmd = fmt::format("{}/examples/hello/build-image.sh {}/image latest >/dev/null",
                                  ELAFROS_SOURCE_DIR, dir);
    return std::system(cmd.c_str()) == 0;
  }
  // Removes every container, mount and file, also when the test failed halfway.
  ~Workspace() {
    std::string root = dir + "/data/runc";
    std::error_code ec;
    if (fs::exists(root))
      for (const auto& e : fs::directory_iterator(root, ec))
        std::system(fmt::format("runc --root {} delete --force {} >/dev/null 2>&1", root,
                                e.path().filename().string())
                        .c_str());
    std::system(
        fmt::format("grep -o '{}/[^ ]*' /proc/mounts | xargs -r -n1 umount -l 2>/dev/null", dir)
            .c_str());
    fs::remove_all(dir, ec);
  }
};

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// One HTTP/1.0 GET to 127.0.0.1:port; the whole response, or "" when nothing listens.
std::string http_get(int port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return "";
  }
  std::string req = "GET / HTTP/1.0\r\nHost: test\r\n\r\n";
  (void)::write(s, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(s, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(s);
  return out;
}

bool mounted_under(const std::string& dir) {
  std::ifstream m("/proc/mounts");
  std::string line;
  while (std::getline(m, line))
    if (line.find(dir) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("an instance runs under real runc, serves, stops and leaves nothing behind") {
  REQUIRE(::getuid() == 0);  // runc, overlay mounts and cgroups need root; CI runs as root
  // The container's init is re-parented to us when runc exits, as it is to elafrosd.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  Workspace ws;
  REQUIRE(ws.build_fixture_image());

  auto images = std::make_shared<ImageStore>(ws.dir + "/data/images");
  auto image = images->import("oci:" + ws.dir + "/image:latest", "");
  REQUIRE(image.ok());
  CHECK(image->name == "image:latest");
  CHECK(images->has_rootfs(image->digest));

  RuncRuntime runtime({"runc", ws.dir + "/data"}, std::make_shared<PosixProcessRunner>(), images);
  LaunchSpec spec;
  spec.container_id = "hello-00001-test";
  spec.namespace_ = "default";
  spec.service = "hello";
  spec.revision = "hello-00001";
  spec.image_digest = image->digest;
  spec.container.env = {{"GREETING", "Howdy"}};
  spec.port = free_port();

  auto started_at = std::chrono::steady_clock::now();
  auto pid = runtime.start(spec);
  REQUIRE(pid.ok());
  CHECK(pid.value() > 0);
  CHECK(runtime.status(spec.container_id).running);
  CHECK(mounted_under(runtime.instance_dir(spec.container_id)));

  std::string response;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (response.empty() && std::chrono::steady_clock::now() < deadline) {
    response = http_get(spec.port);
    if (response.empty()) std::this_thread::sleep_for(10ms);
  }
  auto ready_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started_at)
                      .count();
  WARN(fmt::format("runc start to first response: {} ms", ready_ms));
  CHECK(response.find("200 OK") != std::string::npos);
  CHECK(response.find("Howdy from hello (revision hello-00001)") != std::string::npos);

  // The hardened defaults hold inside the container.
  std::string status = runtime.tail_logs(spec.container_id, 10);
  CHECK(status.find("error") == std::string::npos);

  REQUIRE(runtime.kill(spec.container_id, SIGTERM).ok());
  int wstatus = 0;
  pid_t reaped = 0;
  for (int i = 0; i < 500 && reaped == 0; ++i) {
    reaped = ::waitpid(pid.value(), &wstatus, WNOHANG);
    if (reaped == 0) std::this_thread::sleep_for(10ms);
  }
  CHECK(reaped == pid.value());
  REQUIRE(runtime.remove(spec.container_id).ok());
  CHECK_FALSE(runtime.status(spec.container_id).exists);
  CHECK_FALSE(fs::exists(runtime.instance_dir(spec.container_id)));
  CHECK_FALSE(mounted_under(ws.dir));
  CHECK(runtime.list().empty());
  CHECK(::kill(pid.value(), 0) != 0);
  // The spools outlive the instance, marked for the log collector to drain.
  CHECK(fs::exists(spool_path(ws.dir + "/data", "default", "hello", spec.container_id, "stderr") +
                   ".done"));
}

TEST_CASE("a container that cannot start reports runc's reason and leaves nothing behind") {
  REQUIRE(::getuid() == 0);
  Workspace ws;
  REQUIRE(ws.build_fixture_image());
  auto images = std::make_shared<ImageStore>(ws.dir + "/data/images");
  auto image = images->import("oci:" + ws.dir + "/image:latest", "hello");
  REQUIRE(image.ok());
  RuncRuntime runtime({"runc", ws.dir + "/data"}, std::make_shared<PosixProcessRunner>(), images);
  LaunchSpec spec;
  spec.container_id = "broken-00001-test";
  spec.service = "broken";
  spec.revision = "broken-00001";
  spec.image_digest = image->digest;
  spec.container.command = {"/no/such/binary"};
  spec.port = free_port();
  auto pid = runtime.start(spec);
  REQUIRE_FALSE(pid.ok());
  CHECK(pid.error().message.find("/no/such/binary") != std::string::npos);
  CHECK_FALSE(fs::exists(runtime.instance_dir(spec.container_id)));
  CHECK_FALSE(mounted_under(ws.dir));
  CHECK(runtime.list().empty());
}

TEST_CASE("importing a missing layout says what to do") {
  Workspace ws;
  ImageStore images(ws.dir + "/images");
  auto r = images.import("oci:" + ws.dir + "/nothing:latest", "");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kNotFound);
  fs::create_directories(ws.dir + "/empty");
  r = images.import("oci:" + ws.dir + "/empty:latest", "");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("has no index.json") != std::string::npos);
  CHECK(r.error().message.find("skopeo copy") != std::string::npos);
}

TEST_CASE("an image whose blob does not match its digest is refused") {
  REQUIRE(::getuid() == 0);
  Workspace ws;
  REQUIRE(ws.build_fixture_image());
  // Corrupt the largest blob (the layer) in place.
  std::string biggest;
  std::uintmax_t size = 0;
  for (const auto& e : fs::directory_iterator(ws.dir + "/image/blobs/sha256"))
    if (e.file_size() > size) size = e.file_size(), biggest = e.path().string();
  {
    std::fstream f(biggest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    f.put('\x42');
  }
  ImageStore images(ws.dir + "/data/images");
  auto r = images.import("oci:" + ws.dir + "/image:latest", "");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("does not match its digest") != std::string::npos);
  CHECK(fs::is_empty(ws.dir + "/data/images/rootfs"));
  CHECK(fs::is_empty(ws.dir + "/data/images/blobs/sha256"));  // no partial image left behind
}

TEST_CASE("OCI and Docker archives made by skopeo import to the same root filesystem") {
  REQUIRE(::getuid() == 0);
  Workspace ws;
  REQUIRE(ws.build_fixture_image());
  std::string oci_archive = ws.dir + "/hello-oci.tar";
  std::string docker_archive = ws.dir + "/hello-docker.tar";
  REQUIRE(std::system(fmt::format("skopeo copy -q oci:{}/image:latest oci-archive:{}:latest",
                                  ws.dir, oci_archive)
                          .c_str()) == 0);
  REQUIRE(std::system(fmt::format("skopeo copy -q oci:{}/image:latest docker-archive:{}:hello:v1",
                                  ws.dir, docker_archive)
                          .c_str()) == 0);

  ImageStore images(ws.dir + "/data/images");
  auto from_oci = images.import("oci-archive:" + oci_archive + ":latest", "");
  REQUIRE(from_oci.ok());
  CHECK(from_oci->name == "hello-oci:latest");
  auto from_docker = images.import("docker-archive:" + docker_archive, "");
  REQUIRE(from_docker.ok());
  CHECK(from_docker->name == "hello:v1");  // docker.io/library/ dropped, as Docker shows it
  auto by_tag = images.import("docker-archive:" + docker_archive + ":hello:v1", "named");
  REQUIRE(by_tag.ok());
  CHECK(by_tag->name == "named");
  CHECK(by_tag->digest == from_docker->digest);  // the same content, the same manifest digest
  auto by_full_name =
      images.import("docker-archive:" + docker_archive + ":docker.io/library/hello:v1", "");
  REQUIRE(by_full_name.ok());  // a reference with '/' after the file name, as skopeo takes it
  CHECK(by_full_name->digest == from_docker->digest);

  for (const auto* rec : {&from_oci.value(), &from_docker.value()}) {
    REQUIRE(images.has_rootfs(rec->digest));
    CHECK(fs::exists(images.rootfs_path(rec->digest) + "/bin/hello"));
    auto config = images.config(rec->digest);
    REQUIRE(config.ok());
    CHECK(config->entrypoint == std::vector<std::string>{"/bin/hello"});
  }
  // Nothing of the unpacked archives is left behind.
  CHECK(fs::is_empty(ws.dir + "/data/images/tmp"));

  auto wrong = images.import("docker-archive:" + docker_archive + ":other:tag", "");
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().message.find("docker.io/library/hello:v1") != std::string::npos);
  auto missing = images.import("oci-archive:" + ws.dir + "/nope.tar", "");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("is not a file") != std::string::npos);
  std::ofstream(ws.dir + "/garbage.tar") << std::string(4096, 'x');
  auto garbage = images.import("docker-archive:" + ws.dir + "/garbage.tar", "");
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.error().message.find("cannot be read") != std::string::npos);
}

TEST_CASE("an image larger than max-image-bytes is refused and not unpacked") {
  REQUIRE(::getuid() == 0);
  Workspace ws;
  REQUIRE(ws.build_fixture_image());
  UnpackLimits limits;
  limits.max_image_bytes = 100 * 1024;  // the fixture's busybox layer is about 1 MiB
  ImageStore images(ws.dir + "/data/images", limits);
  auto r = images.import("oci:" + ws.dir + "/image:latest", "");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("max-image-bytes") != std::string::npos);
  CHECK(fs::is_empty(ws.dir + "/data/images/rootfs"));
}

TEST_CASE("a layout with several tags imports the one named") {
  REQUIRE(::getuid() == 0);
  Workspace ws;
  REQUIRE(std::system(fmt::format("{}/examples/hello/build-image.sh {}/image v1 >/dev/null",
                                  ELAFROS_SOURCE_DIR, ws.dir)
                          .c_str()) == 0);
  REQUIRE(std::system(fmt::format("{}/examples/hello/build-image.sh {}/image v2 Bonjour >/dev/null",
                                  ELAFROS_SOURCE_DIR, ws.dir)
                          .c_str()) == 0);
  ImageStore images(ws.dir + "/data/images");
  auto v1 = images.import("oci:" + ws.dir + "/image:v1", "");
  auto v2 = images.import("oci:" + ws.dir + "/image:v2", "");
  REQUIRE(v1.ok());
  REQUIRE(v2.ok());
  CHECK(v1->name == "image:v1");
  CHECK(v2->name == "image:v2");
  CHECK(v1->digest != v2->digest);
  auto env = images.config(v1->digest)->env;
  CHECK(std::find(env.begin(), env.end(), "GREETING=Hello") != env.end());
  auto untagged = images.import("oci:" + ws.dir + "/image", "");
  REQUIRE_FALSE(untagged.ok());
  CHECK(untagged.error().message.find("holds several images") != std::string::npos);
}
