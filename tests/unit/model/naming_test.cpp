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
