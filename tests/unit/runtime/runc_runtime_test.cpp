// RuncRuntime against a recording ProcessRunner: which runc commands it runs, and how.
#include "runc_runtime.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
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
  std::filesystem::create_directories(dir.path() + "/runc/hello-00001-abc");
  std::ofstream(dir.path() + "/runc/hello-00001-abc/state.json") << "{}";
  REQUIRE(rt.remove("hello-00001-abc").ok());
  REQUIRE(runner->calls.size() == 1);
  CHECK(runner->calls[0] == std::vector<std::string>{"/usr/sbin/runc", "--root",
                                                     dir.path() + "/runc", "delete", "--force",
                                                     "hello-00001-abc"});
}

TEST_CASE("a removal fails while anything of the container remains, and clears what runc left") {
  test::TempDir dir;
  auto runner = std::make_shared<RecordingRunner>();
  RuncOptions options{"runc", dir.path()};
  options.cgroup_root = dir.path() + "/cgroup";
  RuncRuntime rt(options, runner, std::make_shared<ImageStore>(dir.path() + "/images"));
  const std::string id = "hello-00001-abc";
  std::string state = dir.path() + "/runc/" + id;

  // Nothing of it: nothing to ask runc.
  REQUIRE(rt.remove(id).ok());
  CHECK(runner->calls.empty());

  // runc delete fails on a container it has state for: the removal fails, to be retried.
  std::filesystem::create_directories(state);
  std::ofstream(state + "/state.json") << "{}";
  std::filesystem::create_directories(rt.instance_dir(id) + "/rootfs");
  runner->next_exit = 1;
  auto failed = rt.remove(id);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().message.find("runc delete " + id + " failed (exit 1)") != std::string::npos);
  CHECK(std::filesystem::exists(rt.instance_dir(id)));
  CHECK(rt.list() == std::vector<std::string>{id});

  // A runc killed while creating it leaves state without state.json, and cgroups: both go.
  std::filesystem::remove(state + "/state.json");
  for (const char* h : {"memory", "pids"})
    std::filesystem::create_directories(options.cgroup_root + "/" + h + "/elafros/" + id);
  REQUIRE(rt.remove(id).ok());
  CHECK_FALSE(std::filesystem::exists(state));
  CHECK_FALSE(std::filesystem::exists(options.cgroup_root + "/memory/elafros/" + id));
  CHECK_FALSE(std::filesystem::exists(options.cgroup_root + "/pids/elafros/" + id));
  CHECK_FALSE(std::filesystem::exists(rt.instance_dir(id)));
  CHECK(rt.list().empty());
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

TEST_CASE("an instance's sidecars are listed as it, and go with its kill and removal") {
  test::TempDir dir;
  auto runner = std::make_shared<RecordingRunner>();
  RuncOptions options{"runc", dir.path()};
  options.cgroup_root = dir.path() + "/cgroup";
  RuncRuntime rt(options, runner, std::make_shared<ImageStore>(dir.path() + "/images"));
  const std::string id = "pod-00001-abc123";
  // Their bundles (the recording runner deletes no runc state, so none is made here).
  for (const std::string& c : {id, id + "_side"})
    std::filesystem::create_directories(rt.instance_dir(c) + "/rootfs");
  // A sidecar whose instance is gone (a crash between the two starts) lists as that instance.
  std::filesystem::create_directories(rt.instance_dir("old-00002-def456_log") + "/rootfs");
  auto listed = rt.list();
  std::sort(listed.begin(), listed.end());
  CHECK(listed == std::vector<std::string>{"old-00002-def456", id});

  REQUIRE(rt.kill(id, 15).ok());
  bool side_killed = false;
  for (const auto& call : runner->calls)
    side_killed = side_killed || (call.size() > 4 && call[3] == "kill" && call[4] == id + "_side");
  CHECK(side_killed);

  REQUIRE(rt.remove(id).ok());
  CHECK_FALSE(std::filesystem::exists(rt.instance_dir(id + "_side")));
  CHECK_FALSE(std::filesystem::exists(rt.instance_dir(id)));
  REQUIRE(rt.remove("old-00002-def456").ok());
  CHECK(rt.list().empty());
}
