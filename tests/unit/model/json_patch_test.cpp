#include "elafros/json_patch.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "elafros/kind_registry.hpp"

using namespace elafros;
namespace json = boost::json;

TEST_CASE("a merge patch merges objects, replaces arrays and removes keys set to null") {
  json::value target = json::parse(R"({"a":{"b":1,"c":2},"list":[1,2],"gone":true})");
  json::value patch = json::parse(R"({"a":{"b":9,"d":3},"list":[3],"gone":null})");
  CHECK(apply_merge_patch(target, patch) == json::parse(R"({"a":{"b":9,"c":2,"d":3},"list":[3]})"));
  CHECK(apply_merge_patch(target, json::parse("[1]")) == json::parse("[1]"));
}

TEST_CASE("a JSON patch applies every operation in order, or none") {
  json::value target = json::parse(R"({"spec":{"items":["a","b"],"x/y":1,"t~":2}})");
  auto r = apply_json_patch(target, json::parse(R"([
    {"op":"add","path":"/spec/items/1","value":"new"},
    {"op":"add","path":"/spec/items/-","value":"end"},
    {"op":"replace","path":"/spec/x~1y","value":5},
    {"op":"remove","path":"/spec/t~0"},
    {"op":"copy","from":"/spec/x~1y","path":"/spec/copied"},
    {"op":"move","from":"/spec/copied","path":"/moved"},
    {"op":"test","path":"/moved","value":5}])"));
  REQUIRE(r.ok());
  CHECK(*r == json::parse(R"({"spec":{"items":["a","new","b","end"],"x/y":5},"moved":5})"));

  for (const char* bad :
       {R"({"op":"add"})", R"([{"op":"replace","path":"/spec/nothere","value":1}])",
        R"([{"op":"remove","path":"/spec/items/7"}])",
        R"([{"op":"test","path":"/spec/x~1y","value":2}])",
        R"([{"op":"frobnicate","path":"/spec"}])", R"([{"op":"add","path":"spec","value":1}])"}) {
    auto refused = apply_json_patch(target, json::parse(bad));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::kBadRequest);
  }
}

TEST_CASE("printer columns read the JSONPath subset Knative's columns use") {
  json::value o = json::parse(R"({"metadata":{"labels":{"serving.knative.dev/service":"s"}},
    "status":{"url":"http://x","conditions":[{"type":"Other","status":"False"},
                                            {"type":"Ready","status":"True","reason":"Ok"}]}})");
  CHECK(json_path_value(o, ".status.url") == "http://x");
  CHECK(json_path_value(o, ".status.conditions[?(@.type=='Ready')].status") == "True");
  CHECK(json_path_value(o, ".status.conditions[?(@.type=='Ready')].reason") == "Ok");
  CHECK(json_path_value(o, ".metadata.labels['serving.knative.dev/service']") == "s");
  CHECK(json_path_value(o, ".status.conditions[?(@.type=='Missing')].status").is_null());
  CHECK(json_path_value(o, ".status.nothere").is_null());
}
