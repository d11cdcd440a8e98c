#include "log_store.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>

#include "cli/common.hpp"
#include "elafros/routing.hpp"
#include "fixtures/tar_builder.hpp"

using namespace elafros;
using elafros::test::TempDir;
namespace fs = std::filesystem;

namespace {
LogLine line(int second, const std::string& revision, const std::string& message) {
  return {std::chrono::system_clock::from_time_t(1800000000) + std::chrono::seconds(second),
          "default",
          "svc",
          revision,
          revision + "-abc123",
          "stdout",
          message};
}
}  // namespace

TEST_CASE("log lines round-trip through their JSON form, times to the microsecond") {
  LogLine l = line(3, "svc-00001", "hello \"world\"\twith\\escapes");
  l.time += std::chrono::microseconds(123456);
  auto back = log_line_from_json(boost::json::serialize(log_line_json(l)));
  REQUIRE(back);
  CHECK(back->time == l.time);
  CHECK(back->message == l.message);
  CHECK(back->instance == "svc-00001-abc123");
  CHECK(format_log_time(l.time) == "2027-01-15T08:00:03.123456Z");
  CHECK_FALSE(log_line_from_json("{\"time\": 1}"));
  CHECK_FALSE(log_line_from_json("not json"));
}

TEST_CASE("the file store merges revisions in time order, filters, tails, and rotates") {
  TempDir dir;
  FileLogStore store(dir.path() + "/logs", LogRetention{4096, 3});
  REQUIRE(store.write({line(1, "svc-00001", "a"), line(3, "svc-00001", "c")}));
  REQUIRE(store.write({line(2, "svc-00002", "b"), line(4, "svc-00002", "d")}));
  LogQuery q{"default", "svc", "", "", std::nullopt, std::nullopt};
  std::vector<std::string> got;
  for (const auto& l : store.read(q)) got.push_back(l.message);
  CHECK(got == std::vector<std::string>{"a", "b", "c", "d"});
  q.revision = "svc-00002";
  CHECK(store.read(q).size() == 2);
  q.revision.clear();
  q.tail = 1;
  REQUIRE(store.read(q).size() == 1);
  CHECK(store.read(q)[0].message == "d");
  q.tail.reset();
  q.since = std::chrono::system_clock::from_time_t(1800000000) + std::chrono::seconds(3);
  CHECK(store.read(q).size() == 2);

  // 100 KB into 4 KiB files, 3 kept: the newest lines stay, the disk use is capped.
  std::vector<LogLine> many;
  for (int i = 0; i < 1000; ++i) many.push_back(line(10 + i, "svc-00003", std::string(80, 'x')));
  for (const auto& l : many) REQUIRE(store.write({l}));
  CHECK(store.disk_bytes() < 3 * 4096 + 2048 + 1024);
  q = LogQuery{"default", "svc", "svc-00003", "", std::nullopt, std::nullopt};
  auto kept = store.read(q);
  REQUIRE_FALSE(kept.empty());
  CHECK(kept.back().time == many.back().time);
  store.remove("default", "svc", "svc-00003");
  CHECK(store.read(q).empty());
  store.remove("default", "svc", "");
  CHECK_FALSE(fs::exists(dir.path() + "/logs/default/svc"));
}

TEST_CASE("histogram quantiles interpolate within buckets, as histogram_quantile does") {
  Histogram h;
  for (int i = 0; i < 90; ++i) h.observe(0.003);  // (0.0025, 0.005]
  for (int i = 0; i < 10; ++i) h.observe(0.2);    // (0.1, 0.25]
  auto s = h.read();
  CHECK(s.count() == 100);
  CHECK(s.quantile(0.5) > 0.0025);
  CHECK(s.quantile(0.5) <= 0.005);
  CHECK(s.quantile(0.99) > 0.1);
  CHECK(s.quantile(0.99) <= 0.25);
  auto later = h.read();
  h.observe(40);  // beyond the last bound: +Inf
  CHECK(h.read().minus(later).count() == 1);
  CHECK(h.read().minus(later).quantile(0.5) == Histogram::kBounds.back());
  CHECK(Histogram::Snapshot{}.quantile(0.5) == 0);
}

TEST_CASE("logs --since durations") {
  using elafros::cli::parse_duration_seconds;
  CHECK(parse_duration_seconds("45s") == 45);
  CHECK(parse_duration_seconds("10m") == 600);
  CHECK(parse_duration_seconds("1h30m") == 5400);
  CHECK(parse_duration_seconds("2d") == 172800);
  for (const char* bad : {"", "10", "m", "10x", "1h-5m", "9999999999s"})
    CHECK_THROWS_WITH(parse_duration_seconds(bad), Catch::Contains("e.g. 30s, 10m"));
}
