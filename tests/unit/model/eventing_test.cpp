// CloudEvents over HTTP, Trigger filters (every dialect, CESQL included), the delivery spec and
// its retry schedule, and the Broker and Trigger kinds' admission.
#include "elafros/eventing.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "elafros/base64.hpp"
#include "elafros/cloudevent.hpp"
#include "elafros/event_filter.hpp"
#include "elafros/kind_registry.hpp"

using namespace elafros;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

HttpHeaders binary_headers(std::initializer_list<std::pair<std::string, std::string>> extra = {}) {
  HttpHeaders h{{"ce-id", "1"},
                {"ce-source", "/shop"},
                {"ce-specversion", "1.0"},
                {"ce-type", "com.example.created"},
                {"content-type", "application/json"}};
  for (const auto& e : extra) h.push_back(e);
  return h;
}

CloudEvent event(std::initializer_list<std::pair<const std::string, std::string>> attrs) {
  CloudEvent e;
  e.attributes = {{"id", "1"},
                  {"source", "/shop/orders"},
                  {"specversion", "1.0"},
                  {"type", "com.example.created"}};
  for (const auto& [k, v] : attrs) e.attributes[k] = v;
  return e;
}

bool cesql(const std::string& expr, const CloudEvent& e) {
  auto parsed = parse_cesql(expr);
  INFO(expr << ": " << (parsed ? "" : parsed.error().message));
  REQUIRE(parsed);
  return cesql_matches(**parsed, e);
}

std::string cesql_error(const std::string& expr) {
  auto parsed = parse_cesql(expr);
  return parsed ? "" : parsed.error().message;
}

bool filters(const std::string& spec_json, const CloudEvent& e) {
  auto f = trigger_filter(json::parse(spec_json).as_object());
  INFO(spec_json << ": " << (f ? "" : f.error().message));
  REQUIRE(f);
  return filter_matches(*f, e);
}

std::string filter_error(const std::string& spec_json) {
  auto f = trigger_filter(json::parse(spec_json).as_object());
  return f ? "" : f.error().message;
}

}  // namespace

TEST_CASE("binary mode: ce-* headers become attributes, percent-decoded once; the body is data") {
  auto e = cloudevent_from_http(
      binary_headers({{"ce-subject", "Euro%20%E2%82%AC"}, {"ce-myext", "v"}}), "{\"n\":1}");
  REQUIRE(e);
  CHECK(e->get("subject") == "Euro €");
  CHECK(e->get("myext") == "v");
  CHECK(e->get("datacontenttype") == "application/json");
  CHECK(e->data == "{\"n\":1}");
  // Lowercase hex is accepted; invalid UTF-8 and a stray % are refused.
  CHECK(ce_header_decode("%e2%82%ac").value() == "€");
  CHECK_FALSE(cloudevent_from_http(binary_headers({{"ce-subject", "%C0%A0"}}), ""));
  CHECK_FALSE(cloudevent_from_http(binary_headers({{"ce-subject", "50%"}}), ""));
  CHECK(ce_header_encode("Euro € 😀") == "Euro%20%E2%82%AC%20%F0%9F%98%80");
  CHECK(ce_header_decode(ce_header_encode("a \"quoted\" 100%")).value() == "a \"quoted\" 100%");
}

TEST_CASE("invalid events are refused, saying what is wrong") {
  auto missing_id = binary_headers();
  missing_id.erase(missing_id.begin());
  auto r = cloudevent_from_http(missing_id, "");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("no id") != std::string::npos);

  auto old = binary_headers();
  old[2].second = "0.3";
  r = cloudevent_from_http(old, "");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("only CloudEvents 1.0") != std::string::npos);

  r = cloudevent_from_http(binary_headers({{"ce-my_ext", "x"}}), "");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("[a-z0-9]+") != std::string::npos);

  r = cloudevent_from_http({{"content-type", "application/json"}}, "{}");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("carries no CloudEvent") != std::string::npos);

  r = cloudevent_from_http({{"content-type", "application/cloudevents-batch+json"}}, "[]");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("batched mode") != std::string::npos);

  CHECK_FALSE(cloudevent_from_http(binary_headers({{"ce-time", "yesterday"}}), ""));
  CHECK(cloudevent_from_http(binary_headers({{"ce-time", "2026-12-01T10:00:00Z"}}), ""));
  CHECK(cloudevent_from_http(binary_headers({{"ce-averyveryverylongextensionname", "ok"}}), ""));
}

TEST_CASE("structured mode: JSON data, text data, data_base64, and back") {
  auto e = cloudevent_from_http(
      {{"content-type", "application/cloudevents+json; charset=UTF-8"}},
      R"({"specversion":"1.0","id":"2","source":"/s","type":"t","datacontenttype":"application/json","data":{"a":[1,2]},"seq":7,"flag":true})");
  REQUIRE(e);
  CHECK(e->data == R"({"a":[1,2]})");
  CHECK(e->get("seq") == "7");
  CHECK(e->get("flag") == "true");
  auto back = json::parse(cloudevent_to_json(*e)).as_object();
  CHECK(back.at("data").as_object().at("a").as_array().size() == 2);

  auto text = cloudevent_from_json(
      R"({"specversion":"1.0","id":"3","source":"/s","type":"t","datacontenttype":"text/plain","data":"hello"})");
  REQUIRE(text);
  CHECK(text->data == "hello");
  CHECK(json::parse(cloudevent_to_json(*text)).as_object().at("data") == "hello");

  auto bin = cloudevent_from_json(
      R"({"specversion":"1.0","id":"4","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":")" +
      base64_encode(std::string("\x00\xff\x10", 3)) + "\"}");
  REQUIRE(bin);
  CHECK(bin->data == std::string("\x00\xff\x10", 3));
  CHECK(json::parse(cloudevent_to_json(*bin)).as_object().contains("data_base64"));

  CHECK_FALSE(cloudevent_from_json(
      R"({"specversion":"1.0","id":"4","source":"/s","type":"t","data":1,"data_base64":"AA=="})"));
  CHECK_FALSE(cloudevent_from_json("[1]"));
  CHECK_FALSE(
      cloudevent_from_json(R"({"specversion":"1.0","id":"4","source":"/s","type":"t","x":{}})"));

  // Binary headers for delivery: the content type travels as Content-Type.
  auto h =
      cloudevent_binary_headers(event({{"datacontenttype", "text/plain"}, {"subject", "a b"}}));
  CHECK(std::find(h.begin(), h.end(),
                  std::pair<std::string, std::string>{"content-type", "text/plain"}) != h.end());
  CHECK(std::find(h.begin(), h.end(), std::pair<std::string, std::string>{"ce-subject", "a%20b"}) !=
        h.end());
}

TEST_CASE("filter.attributes: exact match, \"\" is any non-empty value, nothing matches all") {
  auto e = event({{"myext", "v"}, {"empty", ""}});
  CHECK(filters(R"({"filter":{"attributes":{"type":"com.example.created"}}})", e));
  CHECK_FALSE(filters(R"({"filter":{"attributes":{"type":"com.example.Created"}}})", e));
  CHECK(filters(R"({"filter":{"attributes":{"myext":""}}})", e));
  CHECK_FALSE(filters(R"({"filter":{"attributes":{"other":""}}})", e));
  CHECK_FALSE(filters(R"({"filter":{"attributes":{"empty":""}}})", e));
  CHECK(filters(R"({"filter":{}})", e));
  CHECK(filters(R"({})", e));
}

TEST_CASE("filters: every dialect, ANDed, overriding filter") {
  auto e = event({{"subject", "cat.png"}});
  struct Case {
    const char* spec;
    bool want;
  } cases[] = {
      {R"({"filters":[{"exact":{"type":"com.example.created"}}]})", true},
      {R"({"filters":[{"exact":{"type":"com.example"}}]})", false},
      {R"({"filters":[{"prefix":{"source":"/shop/"}}]})", true},
      {R"({"filters":[{"prefix":{"source":"/cart/"}}]})", false},
      {R"({"filters":[{"suffix":{"subject":".png"}}]})", true},
      {R"({"filters":[{"suffix":{"subject":".jpg"}}]})", false},
      {R"({"filters":[{"suffix":{"missing":".png"}}]})", false},
      {R"({"filters":[{"all":[{"prefix":{"source":"/shop"}},{"suffix":{"subject":"png"}}]}]})",
       true},
      {R"({"filters":[{"all":[{"prefix":{"source":"/shop"}},{"suffix":{"subject":"jpg"}}]}]})",
       false},
      {R"({"filters":[{"any":[{"prefix":{"source":"/cart"}},{"suffix":{"subject":"png"}}]}]})",
       true},
      {R"({"filters":[{"any":[{"prefix":{"source":"/cart"}},{"suffix":{"subject":"jpg"}}]}]})",
       false},
      {R"({"filters":[{"not":{"exact":{"type":"com.example.created"}}}]})", false},
      {R"({"filters":[{"not":{"exact":{"type":"other"}}}]})", true},
      {R"j({"filters":[{"cesql":"source LIKE '/shop/%' AND subject IN ('cat.png', 'dog.png')"}]})j",
       true},
      {R"({"filters":[{"cesql":"EXISTS nosuch"}]})", false},
      {R"({"filters":[{"exact":{"type":"com.example.created"}},{"exact":{"subject":"x"}}]})",
       false},
      // filters, when non-empty, replace filter
      {R"({"filter":{"attributes":{"type":"nope"}},"filters":[{"exact":{"subject":"cat.png"}}]})",
       true},
      {R"({"filter":{"attributes":{"type":"nope"}},"filters":[]})", false},
  };
  for (const auto& c : cases) {
    INFO(c.spec);
    CHECK(filters(c.spec, e) == c.want);
  }
}

TEST_CASE("filters that are malformed are refused with the field's path") {
  CHECK(filter_error(R"({"filters":[{"exact":{"type":"a"},"prefix":{"type":"b"}}]})")
            .find("spec.filters[0]: multiple dialects found") != std::string::npos);
  CHECK(filter_error(R"({"filters":[{"exact":{"Type":"a"}}]})")
            .find("spec.filters[0].exact.Type: invalid attribute name") != std::string::npos);
  CHECK(filter_error(R"({"filters":[{"exact":{"type":""}}]})").find("may not be empty") !=
        std::string::npos);
  CHECK(filter_error(R"({"filters":[{"all":[]}]})").find("at least one") != std::string::npos);
  CHECK(filter_error(R"({"filters":[{"regex":{"type":"a"}}]})").find("unknown dialect") !=
        std::string::npos);
  CHECK(filter_error(R"({"filters":[{"cesql":"type = 'a' AND"}]})")
            .find("spec.filters[0].cesql: at 15: the expression ends too soon") !=
        std::string::npos);
  CHECK(filter_error(R"({"filter":{"attributes":{"1x":"a"}}})").find("spec.filter.attributes.1x") !=
        std::string::npos);
}

TEST_CASE("CESQL: operators, casts, functions, and errors that make it false") {
  auto e = event({{"subject", "Hello World"},
                  {"sequence", "10"},
                  {"flag", "TRUE"},
                  {"hop", "3"},
                  {"ttl", "5"}});
  struct Case {
    const char* expr;
    bool want;
  } cases[] = {
      {"type = 'com.example.created'", true},
      {"type = \"com.example.created\"", true},
      {"type != 'x' AND type <> 'y'", true},
      {"sequence = 10", true},  // cast to the right operand's type
      {"sequence > 9 AND sequence <= 10", true},
      {"sequence + 5 = 15", true},
      {"sequence * 2 - 1 = 19", true},
      {"sequence / 3 = 3 AND sequence % 3 = 1", true},
      {"-7 / 2 = -3 AND -7 % 2 = -1", true},  // truncated division
      {"hop < ttl", true},
      {"flag", true},
      {"flag = TRUE", true},
      {"NOT flag", false},
      {"TRUE XOR FALSE", true},
      {"TRUE XOR TRUE", false},
      {"FALSE OR subject = 'Hello World'", true},
      {"(type = 'x' OR type = 'com.example.created') AND EXISTS subject", true},
      {"EXISTS id AND NOT EXISTS nosuch", true},
      {"subject LIKE 'Hello%'", true},
      {"subject LIKE '_ello W_rld'", true},
      {"subject LIKE 'hello%'", false},
      {"subject NOT LIKE '%x%'", true},
      {"source LIKE '/shop/\\%'", false},
      {"type IN ('a', 'com.example.created')", true},
      {"type NOT IN ('a', 'b')", true},
      {"sequence IN (1, 10)", true},
      {"LENGTH(subject) = 11", true},
      {"LOWER(subject) = 'hello world' AND UPPER(subject) = 'HELLO WORLD'", true},
      {"CONCAT(type, '-', id) = 'com.example.created-1'", true},
      {"CONCAT_WS('/', 'a', 'b', 'c') = 'a/b/c'", true},
      {"TRIM('  x ') = 'x'", true},
      {"LEFT(subject, 5) = 'Hello' AND RIGHT(subject, 5) = 'World'", true},
      {"SUBSTRING(subject, 7) = 'World' AND SUBSTRING(subject, -5, 3) = 'Wor'", true},
      {"ABS(-3) = 3", true},
      {"INT('42') = 42 AND BOOL('false') = FALSE AND STRING(7) = '7'", true},
      {"IS_INT(sequence) AND NOT IS_INT(subject) AND IS_BOOL(flag)", true},
      // errors: false, whatever surrounds them
      {"nosuch = 'x'", false},
      {"TRUE AND (nosuch = '')", false},
      {"subject = 10", false},  // 'Hello World' is not an integer
      {"sequence / 0 = 1", false},
      {"LEFT(subject, -1) = 'x'", false},
      {"SUBSTRING(subject, 40) = ''", false},
  };
  for (const auto& c : cases) {
    INFO(c.expr);
    CHECK(cesql(c.expr, e) == c.want);
  }
}

TEST_CASE("CESQL that does not parse says where") {
  CHECK(cesql_error("type = ") == "at 8: the expression ends too soon");
  CHECK(cesql_error("type == 'a'") == "at 7: unexpected '='");
  CHECK(cesql_error("(type = 'a'") == "at 12: expected ')'");
  CHECK(cesql_error("type = 'a") == "at 8: the string that starts here is not closed");
  CHECK(cesql_error("type ~ 'a'") == "at 6: unexpected character '~'");
  CHECK(cesql_error("NOPE(type)").find("at 1: there is no function NOPE") == 0);
  CHECK(cesql_error("LENGTH(type, id)") == "at 1: LENGTH takes 1 argument(s), not 2");
  CHECK(cesql_error("type LIKE 1") == "at 11: LIKE takes a string pattern");
  CHECK(cesql_error("sequence = 2147483648") == "at 12: the integer is outside the 32-bit range");
  CHECK(cesql_error("Type = 'a'").find("not an attribute name") != std::string::npos);
  CHECK(cesql_error("type = 'a' b").find("at 12: expected an operator") == 0);
}

TEST_CASE("delivery: ISO-8601 durations, and the retry schedule pinned") {
  CHECK(parse_iso8601_duration("PT0.2S") == 200ms);
  CHECK(parse_iso8601_duration("PT1M30S") == 90s);
  CHECK(parse_iso8601_duration("P1DT2H") == std::chrono::hours(26));
  CHECK_FALSE(parse_iso8601_duration("1s"));
  CHECK_FALSE(parse_iso8601_duration("PT"));
  CHECK_FALSE(parse_iso8601_duration("P1H"));  // hours need the T
  CHECK(format_iso8601_duration(1500ms) == "PT1.500S");

  DeliverySpec d;
  d.backoff_delay = 100ms;
  d.backoff_policy = "linear";
  CHECK(retry_delay(d, 1) == 100ms);  // not immediate, unlike Knative's first linear retry
  CHECK(retry_delay(d, 2) == 200ms);
  CHECK(retry_delay(d, 3) == 300ms);
  d.backoff_policy = "exponential";
  CHECK(retry_delay(d, 1) == 100ms);
  CHECK(retry_delay(d, 2) == 200ms);
  CHECK(retry_delay(d, 3) == 400ms);
  d.backoff_policy.clear();  // exponential by default
  CHECK(retry_delay(d, 4) == 800ms);
  d.backoff_delay.reset();
  CHECK(retry_delay(d, 3) == 0ms);

  auto bad = delivery_from_json(json::parse(R"({"retry":-1})"), "spec.delivery");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "spec.delivery.retry: must be between 0 and 1000");
  bad = delivery_from_json(json::parse(R"({"backoffDelay":"1s"})"), "spec.delivery");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("spec.delivery.backoffDelay: \"1s\" is not an ISO-8601") == 0);
  bad = delivery_from_json(json::parse(R"({"deadLetterSink":{"uri":"dls"}})"), "spec.delivery");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("spec.delivery.deadLetterSink.uri") == 0);
  auto good = delivery_from_json(
      json::parse(
          R"({"retry":2,"backoffPolicy":"linear","backoffDelay":"PT0.5S","deadLetterSink":{"ref":{"apiVersion":"serving.knative.dev/v1","kind":"Service","name":"dls"}}})"),
      "spec.delivery");
  REQUIRE(good);
  CHECK(*good->retry == 2);
  CHECK(good->dead_letter_sink.ref_name == "dls");
  CHECK(good->any());
  CHECK_FALSE(DeliverySpec{}.any());
}

TEST_CASE("Broker and Trigger admission: Knative's defaults and refusals by path") {
  const auto* trigger = builtin_kinds().find_kind("eventing.knative.dev", "Trigger");
  const auto* broker = builtin_kinds().find_kind("eventing.knative.dev", "Broker");
  REQUIRE(trigger);
  REQUIRE(broker);
  CHECK(trigger->immutable_fields == std::vector<std::string>{".spec.broker", ".spec.brokerRef"});
  auto t = trigger->admit(
      json::parse(
          R"({"metadata":{"name":"t"},"spec":{"broker":"default","subscriber":{"ref":{"apiVersion":"serving.knative.dev/v1","kind":"Service","name":"hello"}}}})")
          .as_object());
  REQUIRE(t);
  CHECK(t->at("spec").as_object().at("filter").as_object().empty());  // defaulted

  auto no_broker =
      trigger->admit(json::parse(R"({"spec":{"subscriber":{"uri":"http://x/"}}})").as_object());
  REQUIRE_FALSE(no_broker);
  CHECK(no_broker.error().message.find("spec.broker: required") == 0);
  auto no_sub = trigger->admit(json::parse(R"({"spec":{"broker":"b"}})").as_object());
  REQUIRE_FALSE(no_sub);
  CHECK(no_sub.error().message.find("spec.subscriber: required") == 0);
  auto unknown = trigger->admit(
      json::parse(R"({"spec":{"broker":"b","subscriber":{"uri":"http://x/"},"filtr":{}}})")
          .as_object());
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().message.find("spec.filtr: unknown field") == 0);
  auto bad_ref = trigger->admit(
      json::parse(
          R"({"spec":{"broker":"b","subscriber":{"ref":{"apiVersion":"v1","kind":"Pod","name":"p"}}}})")
          .as_object());
  REQUIRE_FALSE(bad_ref);
  CHECK(bad_ref.error().message.find("spec.subscriber.ref: v1 Pod cannot receive events") == 0);

  CHECK(broker->admit(json::parse(R"({"metadata":{"name":"default"}})").as_object()));
  auto bad_broker =
      broker->admit(json::parse(R"({"spec":{"delivery":{"backoffPolicy":"random"}}})").as_object());
  REQUIRE_FALSE(bad_broker);
  CHECK(bad_broker.error().message.find("spec.delivery.backoffPolicy") == 0);
}
