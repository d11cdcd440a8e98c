// The core v1 Namespace kind: admission adds its finalizer, refuses bad names and fields.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "elafros/kind_registry.hpp"
#include "elafros/object_meta.hpp"

using namespace elafros;
namespace json = boost::json;

TEST_CASE("a Namespace is admitted with the namespace finalizer, once") {
  const KindInfo* k = builtin_kinds().find_kind("", "Namespace");
  REQUIRE(k != nullptr);
  CHECK_FALSE(k->namespaced);
  auto r = k->admit(json::parse(R"({"metadata":{"name":"team"}})").as_object());
  REQUIRE(r);
  CHECK(r->at("apiVersion") == "v1");
  CHECK(r->at("metadata").at("finalizers") == json::array{kNamespaceFinalizer});
  auto again = k->admit(*r);
  REQUIRE(again);
  CHECK(again->at("metadata").at("finalizers").as_array().size() == 1);
  auto bad = k->admit(json::parse(R"({"metadata":{"name":"Team"}})").as_object());
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("is not a namespace name"));
  auto field = k->admit(json::parse(R"({"metadata":{"name":"a"},"spec":{"x":1}})").as_object());
  REQUIRE_FALSE(field);
  CHECK_THAT(field.error().message, Catch::Contains("spec.x: unknown field"));
}
