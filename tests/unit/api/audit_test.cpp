// The audit log: the default policy (mutations and denials), the hash chain across rotation,
// and verify() naming the first altered, inserted or removed record, and a cut tail.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "api/audit_log.hpp"
#include "api/request_info.hpp"

using namespace elafros;
namespace fs = std::filesystem;

namespace {

api::ApiRequest request(const std::string& method, const std::string& path,
                        const std::string& user = "uid:1001") {
  api::ApiRequest r;
  r.method = method;
  r.target = r.path = path;
  r.attributes = api::request_attributes(method, path, {});
  r.who = {user, {kAuthenticatedGroup}, "", "unix uid 1001"};
  r.decision = {true, "RBAC: allowed"};
  return r;
}

std::vector<std::string> lines(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

void write_lines(const fs::path& file, const std::vector<std::string>& ls) {
  std::ofstream out(file, std::ios::trunc);
  for (const auto& l : ls) out << l << "\n";
}

struct Dir {
  fs::path path = fs::temp_directory_path() / "elafros-audit-test";
  Dir() { fs::remove_all(path); }
  ~Dir() { fs::remove_all(path); }
};

}  // namespace

TEST_CASE("the default policy records mutations and denials, not reads") {
  auto p = api::AuditPolicy::defaults();
  CHECK(p.level(request("POST", "/apis/serving.knative.dev/v1/namespaces/a/services"), 201) ==
        "Metadata");
  CHECK(p.level(request("GET", "/apis/serving.knative.dev/v1/namespaces/a/services"), 200) ==
        "None");
  CHECK(p.level(request("GET", "/apis/serving.knative.dev/v1/namespaces/a/services"), 403) ==
        "Metadata");
  auto custom = api::AuditPolicy::parse(boost::json::parse(R"({"rules":[
      {"level":"None","resources":[{"group":"","resources":["namespaces"]}]},
      {"level":"Request","verbs":["create"]}]})"));
  REQUIRE(custom);
  CHECK(custom->level(request("POST", "/api/v1/namespaces"), 201) == "None");
  CHECK(custom->level(request("POST", "/api/v1/namespaces"), 403) == "Metadata");
  CHECK(custom->level(request("POST", "/apis/build.knative.dev/v1alpha1/namespaces/a/builds"),
                      201) == "Request");
  auto bad = api::AuditPolicy::parse(boost::json::parse(R"({"rules":[{"level":"Loud"}]})"));
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("rules[0].level"));
}

TEST_CASE("the chain holds across rotation, and verify names what was tampered with") {
  Dir d;
  api::AuditOptions o;
  o.dir = d.path.string();
  o.max_file_bytes = 2000;  // a few records per file
  auto log = api::AuditLog::open(o);
  REQUIRE(log);
  auto now = std::chrono::system_clock::now();
  for (int i = 0; i < 12; ++i) {
    auto r = request("DELETE",
                     "/apis/serving.knative.dev/v1/namespaces/a/services/s" + std::to_string(i));
    (*log)->record(r, 404, "NotFound", "service not found", now);
  }
  (*log)->record(request("GET", "/apis/serving.knative.dev/v1/namespaces/a/services"), 200, "", "",
                 now);  // a read: not recorded
  CHECK((*log)->records() == 12);
  CHECK(fs::exists(d.path / "audit.log.1"));
  auto v = api::AuditLog::verify(o.dir, (*log)->head());
  CHECK(v.ok);
  CHECK(v.records == 12);
  CHECK(v.head == (*log)->head());
  std::string head = (*log)->head();
  log->reset();
  // Reopened, the chain goes on from the head.
  auto again = api::AuditLog::open(o);
  REQUIRE(again);
  CHECK((*again)->head() == head);
  (*again)->record(request("POST", "/api/v1/namespaces"), 201, "", "", now);
  CHECK(api::AuditLog::verify(o.dir, (*again)->head()).ok);
  head = (*again)->head();
  again->reset();

  fs::path current = d.path / "audit.log";
  fs::path rotated = d.path / "audit.log.1";
  auto original = lines(rotated);
  REQUIRE(original.size() >= 2);

  SECTION("an edited record is named") {
    auto edited = original;
    auto at = edited[1].find("\"s");
    REQUIRE(at != std::string::npos);
    edited[1].replace(at, 2, "\"x");
    write_lines(rotated, edited);
    auto r = api::AuditLog::verify(o.dir, head);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.problem, Catch::Contains("audit.log.1 line 2") && Catch::Contains("altered"));
  }
  SECTION("a removed record breaks the chain at the one after it") {
    auto removed = original;
    removed.erase(removed.begin());
    write_lines(rotated, removed);
    auto r = api::AuditLog::verify(o.dir, head);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.problem, Catch::Contains("audit.log.1 line 1") &&
                              Catch::Contains("does not follow the record before it"));
  }
  SECTION("an inserted record is caught") {
    auto inserted = original;
    inserted.insert(inserted.begin() + 1, original[0]);
    write_lines(rotated, inserted);
    auto r = api::AuditLog::verify(o.dir, head);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.problem, Catch::Contains("audit.log.1 line 2"));
  }
  SECTION("a cut tail is caught against the head") {
    auto tail = lines(current);
    tail.pop_back();
    write_lines(current, tail);
    auto r = api::AuditLog::verify(o.dir, head);
    CHECK_FALSE(r.ok);
    CHECK_THAT(r.problem, Catch::Contains("removed from the end"));
  }
}
