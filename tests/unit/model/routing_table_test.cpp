#include <catch2/catch.hpp>

#include "elafros/routing.hpp"

using namespace elafros;

namespace {
std::shared_ptr<const ServiceRoute> route(const std::string& name) {
  auto r = std::make_shared<ServiceRoute>();
  r->namespace_ = "default";
  r->service = name;
  return r;
}
}  // namespace

TEST_CASE("service hosts are NAME.NAMESPACE.DOMAIN") {
  CHECK(service_host("hello", "default", "localhost") == "hello.default.localhost");
  CHECK(service_host("api", "team-a", "example.com") == "api.team-a.example.com");
}

TEST_CASE("the routing table matches Host headers case-insensitively, ignoring the port") {
  RoutingTable t;
  t.add("hello.default.localhost", route("hello"));
  t.add("other.default.localhost", route("other"));
  REQUIRE(t.find("hello.default.localhost") != nullptr);
  CHECK(t.find("hello.default.localhost")->service == "hello");
  CHECK(t.find("hello.default.localhost:8080")->service == "hello");
  CHECK(t.find("HELLO.Default.LOCALHOST:8080")->service == "hello");
  CHECK(t.find("hello.default.localhost.")->service == "hello");
  CHECK(t.find("other.default.localhost")->service == "other");
}

TEST_CASE("unknown hosts are not routed") {
  RoutingTable t;
  t.add("hello.default.localhost", route("hello"));
  CHECK(t.find("") == nullptr);
  CHECK(t.find("hello") == nullptr);
  CHECK(t.find("hello.default") == nullptr);
  CHECK(t.find("xhello.default.localhost") == nullptr);
  CHECK(t.find("[::1]:8080") == nullptr);
  CHECK(t.find("127.0.0.1:8080") == nullptr);
}

TEST_CASE("a published snapshot replaces the previous one for new readers") {
  RoutingSnapshot snap;
  RoutingTablePtr before = snap.load();
  CHECK(before->size() == 0);
  auto next = std::make_shared<RoutingTable>();
  next->add("hello.default.localhost", route("hello"));
  snap.publish(next);
  CHECK(snap.load()->size() == 1);
  CHECK(before->size() == 0);  // readers holding the old table keep a consistent view
}

TEST_CASE("a revision's stats integrate concurrency and the time a request was in flight") {
  RevisionStats s;
  constexpr std::int64_t kSecond = 1'000'000'000;
  s.begin(1 * kSecond);  // the clock starts at 1 s: 0 means "never"
  s.begin(2 * kSecond);
  s.end(3 * kSecond);
  s.end(4 * kSecond);
  s.begin(6 * kSecond);  // idle from 4 s to 6 s
  auto sample = s.read(7 * kSecond);
  CHECK(sample.busy_seconds == Approx(5));    // 1 + 2 + 1 + 1
  CHECK(sample.active_seconds == Approx(4));  // 1 + 1 + 1 + 1, the idle gap left out
  CHECK(sample.requests == 3);
  CHECK(sample.in_flight == 1);
}

TEST_CASE("a table made from another shares its shards; changes copy only what they touch") {
  auto base = std::make_shared<RoutingTable>();
  for (int i = 0; i < 1000; ++i) {
    auto r = std::make_shared<ServiceRoute>();
    r->service = "s" + std::to_string(i);
    base->add(service_host(r->service, "default", "localhost"), r);
  }
  REQUIRE(base->size() == 1000);
  RoutingTable next(*base);
  auto changed = std::make_shared<ServiceRoute>();
  changed->service = "s7-new";
  next.add("s7.default.localhost", changed);
  next.remove("s8.default.localhost");
  next.remove("nosuch.default.localhost");  // nothing to remove: nothing changes
  auto added = std::make_shared<ServiceRoute>();
  added->service = "extra";
  next.add("extra.default.localhost", added);
  // The new table sees the changes...
  CHECK(next.size() == 1000);
  CHECK(next.find("s7.default.localhost")->service == "s7-new");
  CHECK(next.find("s8.default.localhost") == nullptr);
  CHECK(next.find("EXTRA.default.localhost:8080")->service == "extra");
  CHECK(next.find("s9.default.localhost")->service == "s9");
  // ...and the one readers may still hold does not.
  CHECK(base->size() == 1000);
  CHECK(base->find("s7.default.localhost")->service == "s7");
  CHECK(base->find("s8.default.localhost")->service == "s8");
  CHECK(base->find("extra.default.localhost") == nullptr);
  std::size_t n = 0;
  next.for_each([&n](const ServiceRoute&) { ++n; });
  CHECK(n == 1000);
  CHECK(next.find(std::string(300, 'a')) == nullptr);  // longer than any host name
}
