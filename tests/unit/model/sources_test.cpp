// Cron schedules in time zones on a fixed clock (DST gaps and repeats included), and the source
// kinds' admission: PingSource, SinkBinding, ContainerSource, ApiServerSource and EventType.
#include "elafros/sources.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <ctime>

#include "elafros/cron.hpp"
#include "elafros/kind_registry.hpp"

using namespace elafros;
namespace json = boost::json;
using std::chrono::system_clock;

namespace {

// "2026-03-29T01:00:00Z" as a time point (UTC).
system_clock::time_point utc(const char* text) {
  std::tm tm{};
  REQUIRE(strptime(text, "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr);
  return system_clock::from_time_t(timegm(&tm));
}

std::string iso(system_clock::time_point t) {
  std::time_t s = system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string next(const char* schedule, const char* zone, const char* after) {
  auto s = parse_cron(schedule);
  REQUIRE(s);
  auto t = next_tick(*s, zone, utc(after));
  return t ? iso(*t) : "none";
}

std::string cron_error(const char* schedule) {
  auto s = parse_cron(schedule);
  REQUIRE_FALSE(s);
  return s.error().message;
}

Result<json::object> admit(const char* group, const char* kind, const char* text) {
  const KindInfo* k = builtin_kinds().find_kind(group, kind);
  REQUIRE(k);
  return k->admit(json::parse(text).as_object());
}

std::string refused(const char* group, const char* kind, const char* text) {
  auto r = admit(group, kind, text);
  REQUIRE_FALSE(r);
  return r.error().message;
}

}  // namespace

TEST_CASE("cron schedules tick in UTC", "[cron]") {
  struct Case {
    const char* schedule;
    const char* after;
    const char* expected;
  };
  const Case cases[] = {
      {"* * * * * *", "2026-06-01T12:00:00Z", "2026-06-01T12:00:01Z"},
      {"*/15 * * * *", "2026-06-01T10:07:30Z", "2026-06-01T10:15:00Z"},
      {"* * * * *", "2026-06-01T10:07:00Z", "2026-06-01T10:08:00Z"},
      {"30 */2 * * * *", "2026-06-01T10:07:30Z", "2026-06-01T10:08:30Z"},
      {"0 9 * * MON-FRI", "2026-05-30T10:00:00Z", "2026-06-01T09:00:00Z"},  // Sat → Mon
      {"0 0 1 * MON", "2026-06-02T00:00:00Z", "2026-06-08T00:00:00Z"},      // day 1 OR Monday
      {"0 0 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z"},       // April has 30
      {"0 12 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T12:00:00Z"},      // a leap day
      {"0 0 * * 7", "2026-06-01T00:00:00Z", "2026-06-07T00:00:00Z"},        // 7 is Sunday
      {"0 0 * JAN,jul ?", "2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z"},
      {"5-10/5 0 * * *", "2026-06-01T00:05:00Z", "2026-06-01T00:10:00Z"},
      {"@hourly", "2026-06-01T10:07:00Z", "2026-06-01T11:00:00Z"},
      {"@daily", "2026-06-01T10:07:00Z", "2026-06-02T00:00:00Z"},
      {"@weekly", "2026-06-01T10:07:00Z", "2026-06-07T00:00:00Z"},
      {"@monthly", "2026-06-01T10:07:00Z", "2026-07-01T00:00:00Z"},
      {"@yearly", "2026-06-01T10:07:00Z", "2027-01-01T00:00:00Z"},
      {"0 0 30 2 *", "2026-01-01T00:00:00Z", "none"},  // February 30 never comes
  };
  for (const auto& c : cases) {
    INFO(c.schedule << " after " << c.after);
    CHECK(next(c.schedule, "UTC", c.after) == c.expected);
  }
}

TEST_CASE("cron schedules tick in their time zone, across DST changes", "[cron]") {
  // Paris: CET (UTC+1), CEST (UTC+2) from 2026-03-29 01:00Z to 2026-10-25 01:00Z.
  CHECK(next("0 9 * * *", "Europe/Paris", "2026-01-10T00:00:00Z") == "2026-01-10T08:00:00Z");
  CHECK(next("0 9 * * *", "Europe/Paris", "2026-07-10T00:00:00Z") == "2026-07-10T07:00:00Z");
  // 02:30 does not exist on 2026-03-29: it fires at the change (03:00 CEST).
  CHECK(next("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z") == "2026-03-29T01:00:00Z");
  // 02:30 comes twice on 2026-10-25: it fires once, at the first.
  CHECK(next("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z") == "2026-10-25T00:30:00Z");
  CHECK(next("30 2 * * *", "Europe/Paris", "2026-10-25T00:30:00Z") == "2026-10-26T01:30:00Z");
  // Each local time fires once: 02:00 CET (01:00Z) repeats 02:00 CEST (00:00Z), so after
  // 00:00Z the next hourly tick is 03:00 CET.
  CHECK(next("0 * * * *", "Europe/Paris", "2026-10-25T00:00:00Z") == "2026-10-25T02:00:00Z");
  CHECK(next("0 0 * * *", "America/New_York", "2026-07-01T00:00:00Z") == "2026-07-01T04:00:00Z");
  CHECK(next("0 0 * * *", "Asia/Kolkata", "2026-07-01T00:00:00Z") == "2026-07-01T18:30:00Z");
  CHECK(check_time_zone("Europe/Paris"));
  auto bad = check_time_zone("Mars/Olympus");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("not an IANA time zone") != std::string::npos);
}

TEST_CASE("bad cron schedules say where", "[cron]") {
  CHECK(cron_error("61 * * * *").find("position 1 (minute field)") != std::string::npos);
  CHECK(cron_error("* 24 * * *").find("position 3 (hour field)") != std::string::npos);
  CHECK(cron_error("* * * * FOO").find("day of week") != std::string::npos);
  CHECK(cron_error("* * * *").find("has 4 fields") != std::string::npos);
  CHECK(cron_error("* * * * * * *").find("has 7 fields") != std::string::npos);
  CHECK(cron_error("*/0 * * * *").find("step") != std::string::npos);
  CHECK(cron_error("5-2 * * * *").find("low to high") != std::string::npos);
  CHECK(cron_error("1,,2 * * * *").find("empty list item") != std::string::npos);
  CHECK(cron_error("@every 5m").find("@every is not supported") != std::string::npos);
  CHECK(cron_error("CRON_TZ=UTC * * * * *").find("spec.timezone") != std::string::npos);
  CHECK(cron_error("? * * * *").find("only for the day") != std::string::npos);
}

TEST_CASE("PingSource admission", "[sources]") {
  const char* sink =
      R"("sink":{"ref":{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","name":"default"}})";
  auto ok = admit(
      kSourcesGroup, "PingSource",
      (std::string(
           R"({"metadata":{"name":"p"},"spec":{"schedule":"*/2 * * * *","timezone":"Europe/Paris","contentType":"application/json","data":"{\"a\":1}",)") +
       sink + "}}")
          .c_str());
  REQUIRE(ok);
  auto p = ping_source_from_object(*ok);
  REQUIRE(p);
  CHECK(p->timezone == "Europe/Paris");
  CHECK(p->data == R"({"a":1})");
  auto b64 =
      admit(kSourcesGroup, "PingSource",
            (std::string(R"({"metadata":{"name":"p"},"spec":{"dataBase64":"aGk=",)") + sink + "}}")
                .c_str());
  REQUIRE(b64);
  auto pb = ping_source_from_object(*b64);
  REQUIRE(pb);
  CHECK(pb->data == "hi");
  CHECK(pb->schedule_text == "* * * * *");
  CHECK(pb->timezone == "UTC");

  CHECK(refused(kSourcesGroup, "PingSource", R"({"spec":{"schedule":"* * *"}})")
            .find("spec.schedule:") == 0);
  CHECK(refused(kSourcesGroup, "PingSource",
                (std::string(R"({"spec":{"timezone":"Nowhere/City",)") + sink + "}}").c_str())
            .find("spec.timezone:") == 0);
  CHECK(refused(kSourcesGroup, "PingSource",
                (std::string(R"({"spec":{"data":"a","dataBase64":"YQ==",)") + sink + "}}").c_str())
            .find("not both") != std::string::npos);
  CHECK(refused(kSourcesGroup, "PingSource",
                (std::string(R"({"spec":{"contentType":"application/json","data":"{nope",)") +
                 sink + "}}")
                    .c_str())
            .find("spec.data: not JSON") == 0);
  CHECK(refused(kSourcesGroup, "PingSource", R"({"spec":{"schedule":"* * * * *"}})")
            .find("spec.sink: required") == 0);
  CHECK(refused(kSourcesGroup, "PingSource",
                (std::string(R"({"spec":{"ceOverrides":{"extensions":{"Bad-Name":"x"}},)") + sink +
                 "}}")
                    .c_str())
            .find("spec.ceOverrides.extensions.Bad-Name") == 0);
  CHECK(refused(kSourcesGroup, "PingSource",
                (std::string(R"({"spec":{"scheduel":"* * * * *",)") + sink + "}}").c_str())
            .find("spec.scheduel: unknown field") == 0);
}

TEST_CASE("SinkBinding, ContainerSource, ApiServerSource and EventType admission", "[sources]") {
  const std::string sink = R"("sink":{"uri":"http://example.localhost/"})";
  auto bound = admit(
      kSourcesGroup, "SinkBinding",
      (R"({"spec":{"subject":{"apiVersion":"serving.knative.dev/v1","kind":"Service","selector":{"matchLabels":{"app":"web"}}},)" +
       sink + "}}")
          .c_str());
  REQUIRE(bound);
  auto b = sink_binding_from_object(*bound);
  REQUIRE(b);
  CHECK(b->binds("any", {{"app", "web"}}));
  CHECK_FALSE(b->binds("any", {{"app", "db"}}));
  CHECK(
      refused(
          kSourcesGroup, "SinkBinding",
          (R"({"spec":{"subject":{"kind":"Service","name":"a","selector":{"matchLabels":{"app":"web"}}},)" +
           sink + "}}")
              .c_str())
          .find("a name or a selector, not both") != std::string::npos);
  CHECK(refused(kSourcesGroup, "SinkBinding",
                (R"({"spec":{"subject":{"kind":"Service"},)" + sink + "}}").c_str())
            .find("name the Service (name) or select Services") != std::string::npos);
  CHECK(refused(kSourcesGroup, "SinkBinding",
                (R"({"spec":{"subject":{"apiVersion":"apps/v1","kind":"Deployment","name":"a"},)" +
                 sink + "}}")
                    .c_str())
            .find("the subject is a serving.knative.dev/v1 Service") != std::string::npos);

  CHECK(
      admit(kSourcesGroup, "ContainerSource",
            (R"({"spec":{"template":{"spec":{"containers":[{"image":"busybox"}]}},)" + sink + "}}")
                .c_str()));
  CHECK(refused(kSourcesGroup, "ContainerSource", ("{\"spec\":{" + sink + "}}").c_str())
            .find("spec.template: required") == 0);
  CHECK(refused(kSourcesGroup, "ContainerSource",
                (R"({"spec":{"template":{"spec":{"containers":[{"image":"busybox","bogus":1}]}},)" +
                 sink + "}}")
                    .c_str())
            .find("spec.template.spec.containers[0].bogus") == 0);

  auto api =
      admit(kSourcesGroup, "ApiServerSource",
            (R"({"spec":{"resources":[{"apiVersion":"serving.knative.dev/v1","kind":"Service"}],)" +
             sink + "}}")
                .c_str());
  REQUIRE(api);
  CHECK(api->at("spec").at("mode") == "Reference");  // Knative's default
  CHECK(
      refused(kSourcesGroup, "ApiServerSource",
              (R"({"spec":{"resources":[{"apiVersion":"v1","kind":"Pod"}],)" + sink + "}}").c_str())
          .find("spec.resources[0]: v1 Pod is not a kind elafros serves") == 0);
  CHECK(
      refused(
          kSourcesGroup, "ApiServerSource",
          (R"({"spec":{"mode":"Full","resources":[{"apiVersion":"serving.knative.dev/v1","kind":"Service"}],)" +
           sink + "}}")
              .c_str())
          .find("spec.mode") == 0);
  CHECK(api_server_event_type("Resource", "add") == "dev.knative.apiserver.resource.add");
  CHECK(api_server_event_type("Reference", "delete") == "dev.knative.apiserver.ref.delete");

  CHECK(admit(
      kEventingGroup, "EventType",
      R"({"spec":{"type":"dev.example.push","source":"/repo","reference":{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","name":"default"}}})"));
  CHECK(refused(kEventingGroup, "EventType", R"({"spec":{"source":"/repo"}})")
            .find("spec.type: required") == 0);
}
