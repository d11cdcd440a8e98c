// Knative Build's kinds: admission of Builds and templates, ${PARAM} substitution with defaults
// and required parameters, Go durations, and the shipped buildpacks template.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "elafros/build.hpp"
#include "elafros/kind_registry.hpp"

using namespace elafros;
namespace json = boost::json;

namespace {

const KindInfo& kind(const char* k) {
  const KindInfo* info = builtin_kinds().find_kind(kBuildGroup, k);
  REQUIRE(info != nullptr);
  return *info;
}

json::object object(const char* text) {
  return json::parse(text).as_object();
}

std::string admit_error(const char* k, const char* text) {
  auto r = kind(k).admit(object(text));
  REQUIRE_FALSE(r);
  return r.error().message;
}

const char* kTemplate = R"({"apiVersion":"build.knative.dev/v1alpha1","kind":"BuildTemplate",
  "metadata":{"name":"greet","namespace":"default"},
  "spec":{"parameters":[{"name":"WHO","description":"who to greet"},{"name":"HOW","default":"Hello"}],
          "steps":[{"name":"say","image":"busybox","args":["${HOW}, ${WHO}!","${UNKNOWN}"],
                    "env":[{"name":"GREETING","value":"${HOW}"}]}]}})";

}  // namespace

TEST_CASE("a Build is admitted with Knative's defaults") {
  auto r = kind("Build").admit(object(R"({"metadata":{"name":"b"},
    "spec":{"steps":[{"image":"busybox","script":"echo hi"}]}})"));
  REQUIRE(r);
  CHECK(r->at("apiVersion") == "build.knative.dev/v1alpha1");
  CHECK(r->at("spec").at("timeout") == "10m");
  auto b = build_from_object(*r);
  REQUIRE(b);
  CHECK(b->steps.at(0).name == "unnamed-0");
  CHECK(b->timeout == std::chrono::minutes(10));
}

TEST_CASE("bad Builds are refused naming the field") {
  CHECK_THAT(admit_error("Build", R"({"spec":{"steps":[{"image":"busybox"}],"bogus":1}})"),
             Catch::Contains("spec.bogus: unknown field"));
  CHECK_THAT(admit_error("Build", R"({"spec":{"steps":[{"name":"a"}]}})"),
             Catch::Contains("spec.steps[0].image: an image is required"));
  CHECK_THAT(
      admit_error("Build", R"({"spec":{"steps":[{"image":"x","script":"a","command":["b"]}]}})"),
      Catch::Contains("either a script or a command"));
  CHECK_THAT(
      admit_error("Build",
                  R"({"spec":{"steps":[{"name":"a","image":"x"},{"name":"a","image":"y"}]}})"),
      Catch::Contains("another step is named \"a\""));
  CHECK_THAT(admit_error("Build", R"({"spec":{}})"), Catch::Contains("needs steps or a template"));
  CHECK_THAT(admit_error("Build", R"({"spec":{"steps":[{"image":"x"}],"timeout":"forever"}})"),
             Catch::Contains("spec.timeout: \"forever\" is not a duration"));
  CHECK_THAT(admit_error("Build", R"({"spec":{"steps":[{"image":"x"}],"timeout":"25h"}})"),
             Catch::Contains("between 0 and 24h"));
  CHECK_THAT(admit_error("Build", R"({"spec":{"steps":[{"image":"x"}],"status":"Stopped"}})"),
             Catch::Contains("only BuildCancelled cancels"));
  CHECK_THAT(admit_error("Build", R"({"spec":{"steps":[{"image":"x"}],
      "source":{"git":{"url":"file:///r"},"custom":{"image":"x"}}}})"),
             Catch::Contains("exactly one of local, git or custom"));
  CHECK_THAT(
      admit_error("Build",
                  R"({"spec":{"steps":[{"image":"x"}],"source":{"local":{"digest":"abc"}}}})"),
      Catch::Contains("spec.source.local.digest: must be the sha256"));
  CHECK_THAT(
      admit_error(
          "Build",
          R"({"spec":{"steps":[{"image":"x"}],"source":{"git":{"url":"--upload-pack=x"}}}})"),
      Catch::Contains("may not start with '-'"));
  CHECK_THAT(
      admit_error(
          "Build",
          R"({"spec":{"steps":[{"image":"x"}],"source":{"git":{"url":"u"},"subPath":"../x"}}})"),
      Catch::Contains("spec.source.subPath"));
  CHECK_THAT(
      admit_error("Build", R"({"spec":{"steps":[{"image":"x"}],"output":{"push":"r/x:1"}}})"),
      Catch::Contains("spec.output.image: needed with push"));
  CHECK_THAT(
      admit_error(
          "Build",
          R"({"spec":{"steps":[{"image":"x","volumeMounts":[{"name":"v","mountPath":"/v"}]}]}})"),
      Catch::Contains("no volume is named \"v\""));
  CHECK_THAT(
      admit_error("Build",
                  R"({"spec":{"steps":[{"image":"x"}],"volumes":[{"name":"v","hostPath":{}}]}})"),
      Catch::Contains("spec.volumes[0].hostPath: unknown field"));
  CHECK_THAT(
      admit_error("Build", R"({"metadata":{"name":"Bad_Name"},"spec":{"steps":[{"image":"x"}]}})"),
      Catch::Contains("metadata.name: \"Bad_Name\" is not a Build name"));
}

TEST_CASE("a template's parameters are substituted, with defaults, as Knative Build does") {
  auto t = build_template_from_object(object(kTemplate));
  REQUIRE(t);
  auto b = build_from_object(object(R"({"metadata":{"name":"b","namespace":"default"},
    "spec":{"template":{"name":"greet","arguments":[{"name":"WHO","value":"world"}],
            "env":[{"name":"EXTRA","value":"1"}]}}})"));
  REQUIRE(b);
  auto steps = resolve_build_steps(*b, &*t);
  REQUIRE(steps);
  REQUIRE(steps->size() == 1);
  CHECK(steps->at(0).args == std::vector<std::string>{"Hello, world!", "${UNKNOWN}"});
  CHECK(steps->at(0).env == std::vector<EnvVar>{{"GREETING", "Hello"}, {"EXTRA", "1"}});
}

TEST_CASE("a missing required parameter or an undeclared argument is refused, naming it") {
  auto t = build_template_from_object(object(kTemplate));
  REQUIRE(t);
  auto none = build_from_object(object(R"({"spec":{"template":{"name":"greet"}}})"));
  REQUIRE(none);
  auto r = resolve_build_steps(*none, &*t);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message,
             Catch::Contains("requires the parameter WHO (who to greet); add --arg WHO=VALUE"));
  auto extra = build_from_object(object(R"({"spec":{"template":{"name":"greet","arguments":[
    {"name":"WHO","value":"x"},{"name":"WHERE","value":"y"}]}}})"));
  REQUIRE(extra);
  auto e = resolve_build_steps(*extra, &*t);
  REQUIRE_FALSE(e);
  CHECK_THAT(e.error().message,
             Catch::Contains("has no parameter WHERE (its parameters: WHO, HOW)"));
}

TEST_CASE("a custom source runs first, as a step") {
  auto b =
      build_from_object(object(R"({"spec":{"source":{"custom":{"image":"fetcher","args":["x"]}},
    "steps":[{"name":"build","image":"busybox"}]}})"));
  REQUIRE(b);
  auto steps = resolve_build_steps(*b, nullptr);
  REQUIRE(steps);
  REQUIRE(steps->size() == 2);
  CHECK(steps->at(0).name == "source");
  CHECK(steps->at(0).image == "fetcher");
}

TEST_CASE("Go durations parse and print as Knative Build writes them") {
  CHECK(parse_go_duration("10m") == std::chrono::minutes(10));
  CHECK(parse_go_duration("1h30m") == std::chrono::minutes(90));
  CHECK(parse_go_duration("1.5s") == std::chrono::milliseconds(1500));
  CHECK(parse_go_duration("250ms") == std::chrono::milliseconds(250));
  CHECK_FALSE(parse_go_duration("10"));
  CHECK_FALSE(parse_go_duration("m"));
  CHECK_FALSE(parse_go_duration("10x"));
  CHECK(format_go_duration(std::chrono::minutes(90)) == "1h30m");
  CHECK(format_go_duration(std::chrono::milliseconds(1500)) == "1.5s");
}

TEST_CASE("the shipped buildpacks template is a valid ClusterBuildTemplate") {
  auto r = kind("ClusterBuildTemplate").admit(buildpacks_template());
  REQUIRE(r);
  auto t = build_template_from_object(*r);
  REQUIRE(t);
  CHECK(t->steps.size() == 3);
  auto b = build_from_object(object(R"({"spec":{"template":{"name":"buildpacks",
    "kind":"ClusterBuildTemplate","arguments":[{"name":"BUILDPACK","value":"python"}]}}})"));
  REQUIRE(b);
  auto steps = resolve_build_steps(*b, &*t);
  REQUIRE(steps);
  CHECK(steps->at(0).image == kDefaultBuilderImage);
  CHECK_THAT(steps->at(0).script, Catch::Contains("want=\"python\""));
  // The scripts' own shell variables are left alone.
  CHECK_THAT(steps->at(1).script, Catch::Contains("\"/buildpacks/$bp/bin/compile\""));
}

TEST_CASE("a step's container id names the build, its uid and the step") {
  CHECK(build_step_container_id("app", "0123456789abcdef", 2) == "app-01234567s2");
}
