// RuncRuntime against a recording ProcessRunner: which runc commands it runs, and how.
#include "runc_runtime.hpp"

#include <catch2/catch.hpp>
#include <memory>

#include "fixtures/tar_builder.hpp"

using namespace elafros;

namespace {

class RecordingRunner final : public ProcessRunner {
 public:
  Result<ProcessResult> run(const std::vector<std::string>& argv, const ProcessOptions&) override {
    calls.push_back(argv);
    ProcessResult r;
    r.exit_code = next_exit;
    r.out = next_out;
    return r;
  }
  std::vector<std::vector<std::string>> calls;
  int next_exit = 0;
  std::string next_out;
};

}  // namespace

TEST_CASE("runc is called with elafros's own state root") {
  test::TempDir dir;
  auto runner = std::make_shared<RecordingRunner>();
  auto images = std::make_shared<ImageStore>(dir.path() + "/images");
  RuncRuntime rt({"/usr/sbin/runc", dir.path()}, runner, images);

  REQUIRE(rt.kill("hello-00001-abc", 15).ok());
  REQUIRE(runner->calls.size() == 1);
  CHECK(runner->calls[0] == std::vector<std::string>{"/usr/sbin/runc", "--root",
                                                     dir.path() + "/runc", "kill",
                                                     "hello-00001-abc", "15"});

  runner->calls.clear();
  REQUIRE(rt.remove("hello-00001-abc").ok());
  CHECK(runner->calls[0] == std::vector<std::string>{"/usr/sbin/runc", "--root",
                                                     dir.path() + "/runc", "delete", "--force",
                                                     "hello-00001-abc"});
}

TEST_CASE("runc state is parsed into a container status") {
  test::TempDir dir;
  auto runner = std::make_shared<RecordingRunner>();
  RuncRuntime rt({"runc", dir.path()}, runner,
                 std::make_shared<ImageStore>(dir.path() + "/images"));
  runner->next_out =
      R"({"ociVersion":"1.0.2","id":"x","pid":4242,"status":"running","bundle":"/b"})";
  auto st = rt.status("x");
  CHECK(st.exists);
  CHECK(st.running);
  CHECK(st.pid == 4242);
  runner->next_exit = 1;
  runner->next_out = "";
  CHECK_FALSE(rt.status("x").exists);
}

TEST_CASE("ids that are not container ids never reach runc") {
  test::TempDir dir;
  auto runner = std::make_shared<RecordingRunner>();
  RuncRuntime rt({"runc", dir.path()}, runner,
                 std::make_shared<ImageStore>(dir.path() + "/images"));
  CHECK(rt.remove("../etc").ok());
  CHECK(rt.kill("a/b", 9).ok());
  CHECK(runner->calls.empty());
}

TEST_CASE("starting an instance of an image that is not unpacked fails before runc runs") {
  test::TempDir dir;
  auto runner = std::make_shared<RecordingRunner>();
  RuncRuntime rt({"runc", dir.path()}, runner,
                 std::make_shared<ImageStore>(dir.path() + "/images"));
  LaunchSpec l;
  l.container_id = "hello-00001-abc";
  l.revision = "hello-00001";
  l.image_digest = "sha256:" + std::string(64, 'b');
  auto r = rt.start(l);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("elafros image import") != std::string::npos);
  CHECK(runner->calls.empty());
}
