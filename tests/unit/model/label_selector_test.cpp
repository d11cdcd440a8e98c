#include "elafros/label_selector.hpp"

#include <catch2/catch.hpp>

using namespace elafros;

TEST_CASE("label selectors: equality, inequality, sets and existence") {
  std::map<std::string, std::string> labels{{"app", "web"}, {"tier", "front"}};
  auto match = [&](const char* text) {
    auto s = LabelSelector::parse(text);
    REQUIRE(s.ok());
    return s->matches(labels);
  };
  CHECK(match(""));
  CHECK(match("app=web"));
  CHECK(match("app==web,tier=front"));
  CHECK_FALSE(match("app=db"));
  CHECK(match("app!=db"));
  CHECK_FALSE(match("app!=web"));
  CHECK(match("tier in (back, front)"));
  CHECK_FALSE(match("tier notin (front)"));
  CHECK(match("app"));
  CHECK(match("!legacy"));
  CHECK_FALSE(match("legacy"));
  CHECK(match("serving.knative.dev/service!=x"));
}

TEST_CASE("a label selector that cannot be read says how to write one") {
  for (const char* bad : {"app=web,", "tier in front", "a b=c", "=x"}) {
    auto s = LabelSelector::parse(bad);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == ErrorCode::kBadRequest);
    CHECK(s.error().message.find("KEY=VALUE") != std::string::npos);
  }
}
