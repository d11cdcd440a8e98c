#include "elafros/naming.hpp"

#include <catch2/catch.hpp>

using elafros::dns1035_label_problem;

TEST_CASE("DNS-1035 labels: valid names pass") {
  for (const char* name : {"a", "hello", "hello-world", "a1", "x-1-y",
                           "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123"})
    CHECK_FALSE(dns1035_label_problem(name).has_value());
}

TEST_CASE("DNS-1035 labels: invalid names say what is wrong") {
  CHECK(*dns1035_label_problem("") == "a name is required");
  CHECK(dns1035_label_problem("Hello")->find("lowercase letter") != std::string::npos);
  CHECK(dns1035_label_problem("1abc")->find("start with") != std::string::npos);
  CHECK(dns1035_label_problem("abc-")->find("end with") != std::string::npos);
  CHECK(dns1035_label_problem("a_b")->find("'_'") != std::string::npos);
  CHECK(dns1035_label_problem("a.b")->find("'.'") != std::string::npos);
  CHECK(dns1035_label_problem(std::string(64, 'a'))->find("at most 63") != std::string::npos);
}

TEST_CASE("revision names count up with five digits") {
  CHECK(elafros::revision_name("hello", 1) == "hello-00001");
  CHECK(elafros::revision_name("hello", 12345) == "hello-12345");
}

TEST_CASE("transport references split into path and tag") {
  using elafros::split_path_and_tag;
  using P = std::pair<std::string, std::string>;
  CHECK(split_path_and_tag("./image:latest", false) == P{"./image", "latest"});
  CHECK(split_path_and_tag("/a/b", false) == P{"/a/b", ""});
  CHECK(split_path_and_tag("/odd:dir/image:v1", false) == P{"/odd:dir/image", "v1"});
  CHECK(split_path_and_tag("save.tar", true) == P{"save.tar", ""});
  CHECK(split_path_and_tag("save.tar:hello:v1", true) == P{"save.tar", "hello:v1"});
  CHECK(split_path_and_tag("dir/save.tar:docker.io/library/hello:v1", true) ==
        P{"dir/save.tar", "docker.io/library/hello:v1"});
}
