#include "elafros/traffic.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <random>

using namespace elafros;

namespace {
const std::vector<std::string> kRevisions = {"hello-00001", "hello-00002", "hello-00003"};

std::string problem(const std::vector<TrafficTarget>& traffic) {
  auto r = validate_traffic(traffic, "hello", kRevisions);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalidArgument);
  return r.error().message;
}
}  // namespace

TEST_CASE("valid traffic: pinned, latest, tags, tag-only targets") {
  CHECK(validate_traffic({}, "hello", kRevisions).ok());
  CHECK(validate_traffic({{"", true, 100, ""}}, "hello", kRevisions).ok());
  CHECK(validate_traffic({{"hello-00001", false, 90, ""}, {"", true, 10, "latest"}}, "hello",
                         kRevisions)
            .ok());
  CHECK(validate_traffic({{"hello-00001", false, 100, ""}, {"hello-00003", false, 0, "candidate"}},
                         "hello", kRevisions)
            .ok());
}

TEST_CASE("invalid traffic says what to fix") {
  CHECK(problem({{"hello-00001", false, 50, ""}}).find("sum to 100 (they sum to 50)") !=
        std::string::npos);
  CHECK(
      problem({{"hello-00009", false, 100, ""}}).find("revision \"hello-00009\" does not exist") !=
      std::string::npos);
  CHECK(problem({{"hello-00001", false, 50, "a"}, {"hello-00002", false, 50, "a"}})
            .find("tag \"a\" is used twice") != std::string::npos);
  CHECK(problem({{"hello-00001", false, 100, "Not_A_Label"}}).find("Not_A_Label") !=
        std::string::npos);
  CHECK(problem({{"hello-00001", false, 100, std::string(60, 'a')}}).find("longer than 63") !=
        std::string::npos);
  CHECK(problem({{"hello-00001", true, 100, ""}}).find("either revisionName or latestRevision") !=
        std::string::npos);
  CHECK(problem({{"hello-00001", false, 120, ""}}).find("between 0 and 100") != std::string::npos);
}

TEST_CASE("@latest resolves to the latest ready revision") {
  auto r = resolve_traffic({{"hello-00001", false, 90, ""}, {"", true, 10, "cur"}}, "hello-00003");
  REQUIRE(r.size() == 2);
  CHECK(r[0].revision_name == "hello-00001");
  CHECK(r[1].revision_name == "hello-00003");
  CHECK(r[1].latest_revision);
  CHECK(r[1].tag == "cur");
  auto d = resolve_traffic({}, "hello-00002");
  REQUIRE(d.size() == 1);
  CHECK(d[0].revision_name == "hello-00002");
  CHECK(d[0].percent == 100);
  CHECK(resolve_traffic({}, "").empty());
}

TEST_CASE("tag hosts are TAG-NAME.NAMESPACE.DOMAIN") {
  CHECK(tag_host("candidate", "hello", "default", "localhost") ==
        "candidate-hello.default.localhost");
}

TEST_CASE("weighted choice follows the percents") {
  CHECK(pick_by_percent({100}, 99) == 0);
  CHECK(pick_by_percent({0, 100}, 0) == 1);
  CHECK(pick_by_percent({90, 10}, 89) == 0);
  CHECK(pick_by_percent({90, 10}, 90) == 1);
  CHECK(pick_by_percent({50, 0, 50}, 50) == 2);
  // Every roll lands somewhere, and each target gets exactly its share of the 100 rolls.
  std::map<std::size_t, int> exact;
  for (unsigned roll = 0; roll < 100; ++roll) ++exact[pick_by_percent({20, 30, 50}, roll)];
  CHECK(exact[0] == 20);
  CHECK(exact[1] == 30);
  CHECK(exact[2] == 50);
  // With random rolls, 10 000 draws at 70/30 stay within a few percent.
  std::mt19937 rng(42);
  int first = 0;
  for (int i = 0; i < 10000; ++i) first += pick_by_percent({70, 30}, rng() % 100) == 0;
  CHECK(first > 6700);
  CHECK(first < 7300);
}
