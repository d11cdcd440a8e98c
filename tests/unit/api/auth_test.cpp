// What a request asks in RBAC's terms, kubectl's protobuf reviews read as JSON, and tokens:
// their format, HMAC-only storage, expiry and revocation.
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/api_tokens.hpp"
#include "api/kube_protobuf.hpp"
#include "api/request_info.hpp"

using namespace elafros;
namespace json = boost::json;

TEST_CASE("request attributes follow Kubernetes' RequestInfo, and elafrosd's own endpoints") {
  auto a = api::request_attributes("GET", "/apis/serving.knative.dev/v1/namespaces/t/services", {});
  CHECK(a.verb == "list");
  CHECK(a.api_group == "serving.knative.dev");
  CHECK(a.resource == "services");
  CHECK(a.ns == "t");
  a = api::request_attributes("GET", "/apis/serving.knative.dev/v1/namespaces/t/services",
                              {{"watch", "true"}});
  CHECK(a.verb == "watch");
  a = api::request_attributes("PATCH",
                              "/apis/serving.knative.dev/v1/namespaces/t/services/s/status", {});
  CHECK(a.verb == "patch");
  CHECK(a.name == "s");
  CHECK(a.subresource == "status");
  a = api::request_attributes("DELETE", "/api/v1/namespaces/gone", {});
  CHECK(a.resource == "namespaces");
  CHECK(a.name == "gone");
  CHECK(a.verb == "delete");
  a = api::request_attributes("GET", "/api/v1/namespaces/t/services/s/logs", {});
  CHECK(a.api_group == "serving.knative.dev");
  CHECK(a.resource_path() == "services/logs");
  a = api::request_attributes("POST", "/apis/elafros.dev/v1/images/pull", {});
  CHECK(a.verb == "create");
  CHECK(a.resource == "images");
  CHECK(a.name.empty());
  a = api::request_attributes("POST", "/apis/elafros.dev/v1/system/stop-all", {});
  CHECK(a.resource_path() == "system/stop-all");
  a = api::request_attributes("DELETE", "/api/v1/images/busybox%3Alatest", {});
  CHECK(a.api_group == "elafros.dev");
  CHECK(a.resource == "images");
  CHECK(a.verb == "delete");
  a = api::request_attributes("GET", "/api/v1/status", {});
  CHECK(a.resource_path() == "system/status");
  a = api::request_attributes("GET", "/metrics", {});
  CHECK_FALSE(a.resource_request);
  CHECK(a.describe() == "get /metrics");
  a = api::request_attributes("GET", "/apis", {});
  CHECK_FALSE(a.resource_request);
}

namespace {

std::string varint(std::uint64_t v) {
  std::string out;
  do {
    unsigned char b = v & 0x7f;
    v >>= 7;
    out += static_cast<char>(v ? b | 0x80 : b);
  } while (v);
  return out;
}
std::string field(int number, const std::string& bytes) {
  return varint(static_cast<std::uint64_t>(number) << 3 | 2) + varint(bytes.size()) + bytes;
}

}  // namespace

TEST_CASE("a protobuf SelfSubjectAccessReview reads as its JSON") {
  std::string attrs = field(1, "team") + field(2, "list") + field(3, "serving.knative.dev") +
                      field(5, "services") + varint(8 << 3 | 0) + varint(1);  // unknown varint
  std::string review = field(1, "") + field(2, field(1, attrs));
  std::string type_meta = field(1, "authorization.k8s.io/v1") + field(2, "SelfSubjectAccessReview");
  std::string body = std::string("k8s\0", 4) + field(1, type_meta) + field(2, review);
  auto v = api::kube_protobuf_to_json(body);
  REQUIRE(v);
  const auto& ra = v->at("spec").at("resourceAttributes");
  CHECK(ra.at("namespace") == "team");
  CHECK(ra.at("verb") == "list");
  CHECK(ra.at("resource") == "services");
  CHECK(v->at("kind") == "SelfSubjectAccessReview");
  auto other = api::kube_protobuf_to_json(std::string("k8s\0", 4) +
                                          field(1, field(1, "v1") + field(2, "Pod")));
  REQUIRE_FALSE(other);
  CHECK(other.error().code == ErrorCode::kUnsupportedMediaType);
  auto cut = api::kube_protobuf_to_json(body.substr(0, body.size() - 3));
  REQUIRE_FALSE(cut);
  CHECK(cut.error().code == ErrorCode::kBadRequest);
}

TEST_CASE("tokens: elf_ format, only an HMAC stored, expiry and revocation") {
  auto dir = std::filesystem::temp_directory_path() / "elafros-tokens-test";
  std::filesystem::remove_all(dir);
  auto tokens = ApiTokens::open(dir.string());
  REQUIRE(tokens);
  auto& t = **tokens;
  auto admin = t.authenticate("Bearer " + t.admin_token());
  REQUIRE(admin);
  CHECK(admin->in_group(kMastersGroup));
  auto issued = t.issue("ci", "ci-bot", std::chrono::seconds(0));
  REQUIRE(issued);
  CHECK(issued->rfind("elf_", 0) == 0);
  CHECK(issued->size() == 4 + 16 + 1 + 32);
  auto who = t.authenticate("Bearer " + *issued);
  REQUIRE(who);
  CHECK(who->user == "ci-bot");
  CHECK(who->token == issued->substr(0, 20));
  std::ifstream in(dir / "tokens" / "tokens.json");
  std::stringstream stored;
  stored << in.rdbuf();
  CHECK(stored.str().find(issued->substr(21)) == std::string::npos);
  CHECK(std::filesystem::status(dir / "tokens" / "tokens.json").permissions() ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  std::string wrong = *issued;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  CHECK(t.authenticate("Bearer " + wrong).error().code == ErrorCode::kUnauthorized);
  CHECK_THAT(t.authenticate("Bearer nope").error().message, Catch::Contains("malformed"));
  CHECK(t.issue("ci", "x", std::chrono::seconds(0)).error().code == ErrorCode::kAlreadyExists);
  std::int64_t clock = 1'000'000;
  t.set_clock([&clock] { return clock; });
  auto brief = t.issue("brief", "b", std::chrono::seconds(60));
  REQUIRE(brief);
  CHECK(t.authenticate("Bearer " + *brief));
  clock += 61;
  CHECK_THAT(t.authenticate("Bearer " + *brief).error().message, Catch::Contains("expired"));
  REQUIRE(t.revoke("ci"));
  CHECK_THAT(t.authenticate("Bearer " + *issued).error().message, Catch::Contains("revoked"));
  // Reopened, the revocation holds and the admin token is the same.
  std::string admin_token = t.admin_token();
  auto again = ApiTokens::open(dir.string());
  REQUIRE(again);
  CHECK((*again)->admin_token() == admin_token);
  CHECK_FALSE((*again)->authenticate("Bearer " + *issued));
  std::filesystem::remove_all(dir);
}
