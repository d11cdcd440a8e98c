// The ingress's stamps and Trigger matching.
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "proxy/broker_ingress.hpp"

using namespace elafros;

TEST_CASE("the ingress stamps the arrival time and a TTL of 255, and refuses an exhausted TTL") {
  CloudEvent e;
  e.attributes = {{"id", "1"}, {"source", "/s"}, {"specversion", "1.0"}, {"type", "t"}};
  auto t = std::chrono::system_clock::from_time_t(1800000000) + std::chrono::microseconds(42);
  REQUIRE(stamp_arrival(e, t));
  CHECK(e.get("knativearrivaltime") == "2027-01-15T08:00:00.000042Z");
  CHECK(e.get("knativebrokerttl") == "255");
  e.attributes["knativebrokerttl"] = "3";
  REQUIRE(stamp_arrival(e, t));
  CHECK(e.get("knativebrokerttl") == "3");  // decremented on replies, not here
  e.attributes["knativebrokerttl"] = "9999";
  REQUIRE(stamp_arrival(e, t));
  CHECK(e.get("knativebrokerttl") == "255");
  e.attributes["knativebrokerttl"] = "0";
  auto r = stamp_arrival(e, t);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("exhausted") != std::string::npos);
  e.attributes["knativebrokerttl"] = "x1";
  CHECK_FALSE(stamp_arrival(e, t));
}

TEST_CASE("an event is matched once against each Trigger of its broker") {
  BrokerRoute b;
  auto add = [&b](const char* uid, const char* spec) {
    TriggerRoute t;
    t.trigger.uid = uid;
    t.trigger.name = std::string("t-") + uid;
    t.trigger.filter = trigger_filter(boost::json::parse(spec).as_object()).value();
    b.triggers.push_back(std::move(t));
  };
  add("a", R"({"filter":{"attributes":{"type":"order"}}})");
  add("b", R"({"filter":{}})");
  add("c", R"({"filters":[{"prefix":{"source":"/other"}}]})");
  add("d", R"({"filter":{"attributes":{"type":"order"}}})");  // same filter: its own delivery
  CloudEvent e;
  e.attributes = {{"id", "1"}, {"source", "/shop"}, {"specversion", "1.0"}, {"type", "order"}};
  auto m = matching_triggers(b, e);
  REQUIRE(m.size() == 3);
  CHECK(m[0].trigger_uid == "a");
  CHECK(m[1].trigger_uid == "b");
  CHECK(m[2].trigger_uid == "d");
  CHECK(m[2].trigger == "t-d");
}
