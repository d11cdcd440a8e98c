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

TEST_CASE("a ResourceQuota names known resources with quantities; a LimitRange Container bounds") {
  const KindInfo* q = builtin_kinds().find_kind("", "ResourceQuota");
  REQUIRE(q);
  auto ok = q->admit(json::parse(R"({"metadata":{"name":"q"},"spec":{"hard":{
      "count/services.serving.knative.dev":"3","count/secrets":"10","limits.cpu":"2",
      "limits.memory":"8Gi","instances":"4"}}})")
                         .as_object());
  CHECK(ok);
  auto unknown = q->admit(
      json::parse(R"({"metadata":{"name":"q"},"spec":{"hard":{"pods":"3"}}})").as_object());
  REQUIRE_FALSE(unknown);
  CHECK_THAT(unknown.error().message, Catch::StartsWith("spec.hard.pods:"));
  auto kind = q->admit(
      json::parse(R"({"metadata":{"name":"q"},"spec":{"hard":{"count/widgets.example.com":"3"}}})")
          .as_object());
  REQUIRE_FALSE(kind);
  CHECK_THAT(kind.error().message, Catch::Contains("names no kind"));
  auto quantity = q->admit(
      json::parse(R"({"metadata":{"name":"q"},"spec":{"hard":{"instances":"two"}}})").as_object());
  REQUIRE_FALSE(quantity);
  CHECK_THAT(quantity.error().message,
             Catch::StartsWith("spec.hard.instances: \"two\" is not a quantity"));
  const KindInfo* lr = builtin_kinds().find_kind("", "LimitRange");
  REQUIRE(lr);
  auto pod = lr->admit(
      json::parse(R"({"metadata":{"name":"l"},"spec":{"limits":[{"type":"Pod"}]}})").as_object());
  REQUIRE_FALSE(pod);
  CHECK_THAT(pod.error().message, Catch::StartsWith("spec.limits[0].type:"));
  auto mem = lr->admit(
      json::parse(
          R"({"metadata":{"name":"l"},"spec":{"limits":[{"type":"Container","max":{"memory":"lots"}}]}})")
          .as_object());
  REQUIRE_FALSE(mem);
  CHECK_THAT(mem.error().message, Catch::StartsWith("spec.limits[0].max.memory:"));
}

TEST_CASE("a DomainMapping is named by its host name and maps to a Service of its namespace") {
  const KindInfo* k = builtin_kinds().find_kind("serving.knative.dev", "DomainMapping");
  REQUIRE(k);
  CHECK(k->version == "v1beta1");
  auto ok = k->admit(json::parse(R"({"metadata":{"name":"app.example.com","namespace":"team"},
      "spec":{"ref":{"apiVersion":"serving.knative.dev/v1","kind":"Service","name":"web"}},
      "status":{"url":"forged"}})")
                         .as_object());
  REQUIRE(ok);
  CHECK_FALSE(ok->contains("status"));  // the controller's, never the client's
  auto error_of = [k](const char* text) {
    auto r = k->admit(json::parse(text).as_object());
    return r ? std::string() : r.error().message;
  };
  CHECK_THAT(
      error_of(
          R"({"metadata":{"name":"App.example.com"},"spec":{"ref":{"kind":"Service","name":"w"}}})"),
      Catch::StartsWith("metadata.name: \"App.example.com\" is not a host name"));
  CHECK_THAT(error_of(R"({"metadata":{"name":"a.example.com"},"spec":{}})"),
             Catch::StartsWith("spec.ref: missing"));
  CHECK_THAT(
      error_of(
          R"({"metadata":{"name":"a.example.com"},"spec":{"ref":{"apiVersion":"v1","kind":"Service","name":"w"}}})"),
      Catch::Contains("a DomainMapping maps to a Knative Service"));
  CHECK_THAT(
      error_of(R"({"metadata":{"name":"a.example.com","namespace":"team"},
      "spec":{"ref":{"kind":"Service","name":"w","namespace":"other"}}})"),
      Catch::StartsWith("spec.ref.namespace: \"other\" is not the DomainMapping's namespace"));
}
