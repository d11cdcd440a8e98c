#include "elafros/registry_reference.hpp"

#include <catch2/catch.hpp>

using namespace elafros;

namespace {
std::string canonical(const std::string& ref) {
  auto r = parse_registry_reference(ref);
  REQUIRE(r.ok());
  return r->str();
}
std::string problem(const std::string& ref) {
  auto r = parse_registry_reference(ref);
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}
}  // namespace

TEST_CASE("registry references take Docker's defaults") {
  CHECK(canonical("nginx") == "docker.io/library/nginx:latest");
  CHECK(canonical("docker://nginx:alpine") == "docker.io/library/nginx:alpine");
  CHECK(canonical("bitnami/redis:7") == "docker.io/bitnami/redis:7");
  CHECK(canonical("index.docker.io/library/busybox") == "docker.io/library/busybox:latest");
  CHECK(canonical("localhost:5000/team/app:v1") == "localhost:5000/team/app:v1");
  CHECK(canonical("localhost/app") == "localhost/app:latest");
  CHECK(canonical("registry.example:443/a/b/c:1.2.3") == "registry.example:443/a/b/c:1.2.3");
  std::string digest = "sha256:" + std::string(64, 'a');
  CHECK(canonical("registry.example.com/org/app@" + digest) ==
        "registry.example.com/org/app@" + digest);
  CHECK(canonical("registry.example.com/org/app:v2@" + digest) ==
        "registry.example.com/org/app:v2@" + digest);
}

TEST_CASE("malformed registry references say what is wrong") {
  CHECK(problem("").find("empty") != std::string::npos);
  CHECK(problem("Nginx").find("lowercase") != std::string::npos);
  CHECK(problem("nginx:bad tag").find("a tag is") != std::string::npos);
  CHECK(problem("nginx@sha256:abc").find("64 lowercase hex") != std::string::npos);
  CHECK(problem("a//b").find("repository") != std::string::npos);
}

TEST_CASE("transport references are told apart from image names and registry references") {
  for (const char* t : {"oci:/img:latest", "oci-archive:a.tar", "docker-archive:b.tar:x:1",
                        "docker://docker.io/library/nginx", "dir:/x", "containers-storage:x"})
    CHECK(is_transport_reference(t));
  for (const char* n : {"hello-img", "nginx:alpine", "localhost:5000/team/app:v1", "docker.io/x"})
    CHECK_FALSE(is_transport_reference(n));
}
