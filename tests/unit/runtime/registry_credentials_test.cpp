#include "registry_credentials.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "fixtures/tar_builder.hpp"

using namespace elafros;
using elafros::test::TempDir;

TEST_CASE("base64 round-trips, and malformed text is refused") {
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                        std::string("alice:pw-1"), std::string("\0\xff:x", 4)})
    CHECK(base64_decode(base64_encode(s)) == s);
  CHECK(base64_encode("alice:secret") == "YWxpY2U6c2VjcmV0");
  CHECK_FALSE(base64_decode("abc").has_value());
  CHECK_FALSE(base64_decode("a!c=").has_value());
}

TEST_CASE("registry hosts are canonical: Docker Hub's aliases are docker.io") {
  CHECK(canonical_registry_host("docker.io").value() == "docker.io");
  CHECK(canonical_registry_host("index.docker.io").value() == "docker.io");
  CHECK(canonical_registry_host("https://index.docker.io/v1/").value() == "docker.io");
  CHECK(canonical_registry_host("Registry.Example.com:5000").value() ==
        "registry.example.com:5000");
  CHECK(canonical_registry_host("127.0.0.1:5000").value() == "127.0.0.1:5000");
  CHECK(canonical_registry_host("[::1]:5000").value() == "[::1]:5000");
  for (const char* bad : {"", "a b", "host:port", "-bad.com", "x:123456"}) {
    auto r = canonical_registry_host(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("HOST:PORT") != std::string::npos);
  }
}

TEST_CASE("credentials persist with mode 0600 and survive a reload; logout removes them") {
  TempDir dir;
  std::string path = dir.path() + "/registries/auth.json";
  {
    CredentialStore store(path);
    REQUIRE(store.load());
    CHECK_FALSE(store.get("docker.io"));
    REQUIRE(store.put("docker.io", {"alice", "pa:ss"}));
    REQUIRE(store.put("registry.example.com", {"bob", "tok"}));
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CredentialStore store(path);
  REQUIRE(store.load());
  auto c = store.get("docker.io");
  REQUIRE(c);
  CHECK(c->username == "alice");
  CHECK(c->password == "pa:ss");  // only the first ':' separates
  CHECK(store.usernames() == std::map<std::string, std::string>{{"docker.io", "alice"},
                                                                {"registry.example.com", "bob"}});
  CHECK(store.remove("registry.example.com").value());
  CHECK_FALSE(store.remove("registry.example.com").value());
  CredentialStore again(path);
  REQUIRE(again.load());
  CHECK_FALSE(again.get("registry.example.com"));
}

TEST_CASE("a corrupt credentials file is refused with a message saying what to do") {
  TempDir dir;
  std::string path = dir.path() + "/auth.json";
  std::ofstream(path) << R"({"auths": {"docker.io": {"auth": "not base64!"}}})";
  CredentialStore store(path);
  auto r = store.load();
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("docker.io") != std::string::npos);
  CHECK(r.error().message.find("elafros registry login") != std::string::npos);
}

TEST_CASE("a Docker config.json's logins: auth or username and password, hosts canonical") {
  auto logins = docker_config_logins(
      R"({"auths": {"https://index.docker.io/v1/": {"auth": ")" + base64_encode("hub:pw1") +
      R"("}, "Registry.Example.com:5000": {"username": "u", "password": "p:2"}}})");
  REQUIRE(logins);
  CHECK(logins->at("docker.io").username == "hub");
  CHECK(logins->at("docker.io").password == "pw1");
  CHECK(logins->at("registry.example.com:5000").password == "p:2");
  auto legacy = docker_config_logins(R"({"host:1": {"auth": ")" + base64_encode("a:b") + R"("}})");
  REQUIRE(legacy);
  CHECK(legacy->at("host:1").username == "a");
  auto bad = docker_config_logins(R"({"auths": {"h": {"auth": "not base64!"}}})");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("the entry for h has no valid \"auth\""));
  CHECK_FALSE(docker_config_logins("[1]"));
}
