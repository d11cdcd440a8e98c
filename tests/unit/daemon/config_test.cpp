#include "daemon/config.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <set>

#include "fixtures/tar_builder.hpp"

using namespace elafros;

TEST_CASE("the config file sets every daemon key") {
  test::TempDir dir;
  std::string path = dir.path() + "/config.yaml";
  std::ofstream(path)
      << "data-dir: /srv/elafros\nsocket: /tmp/e.sock\nlisten: 0.0.0.0:9000\ndomain: example.com\n"
         "runtime: /usr/local/bin/runc\nlog-level: debug\nreadiness-timeout-seconds: 5\n";
  DaemonConfig c;
  load_config_file(path, c);
  CHECK(c.data_dir == "/srv/elafros");
  CHECK(c.socket == "/tmp/e.sock");
  CHECK(c.listen == "0.0.0.0:9000");
  CHECK(c.domain == "example.com");
  CHECK(c.runtime == "/usr/local/bin/runc");
  CHECK(c.log_level == "debug");
  CHECK(c.readiness_timeout_seconds == 5);
}

TEST_CASE("bad config files are refused with the key that is wrong") {
  test::TempDir dir;
  std::string path = dir.path() + "/config.yaml";
  DaemonConfig c;
  std::ofstream(path) << "data-dirr: /x\n";
  CHECK_THROWS_WITH(load_config_file(path, c), Catch::Contains("unknown key \"data-dirr\""));
  std::ofstream(path) << "readiness-timeout-seconds: soon\n";
  CHECK_THROWS_WITH(load_config_file(path, c), Catch::Contains("must be an integer"));
  std::ofstream(path) << "listen: [1, 2]\n";
  CHECK_THROWS_WITH(load_config_file(path, c), Catch::Contains("listen must be a string"));
  CHECK_THROWS_WITH(load_config_file(dir.path() + "/missing.yaml", c),
                    Catch::Contains("cannot be read"));
}

TEST_CASE("--listen is ADDRESS:PORT") {
  CHECK(parse_listen("127.0.0.1:8080") ==
        std::pair<std::string, unsigned short>{"127.0.0.1", 8080});
  CHECK(parse_listen("[::1]:80") == std::pair<std::string, unsigned short>{"::1", 80});
  CHECK_THROWS_WITH(parse_listen("8080"), Catch::Contains("ADDRESS:PORT"));
  CHECK_THROWS_WITH(parse_listen("127.0.0.1:http"), Catch::Contains("port must be a number"));
  CHECK_THROWS_WITH(parse_listen("127.0.0.1:70000"), Catch::Contains("port must be a number"));
}

TEST_CASE("the autoscaler's defaults are config keys, checked for range") {
  test::TempDir dir;
  std::string path = dir.path() + "/config.yaml";
  std::ofstream(path) << "stable-window-seconds: 30\nscale-to-zero-grace-period-seconds: 0\n"
                         "enable-scale-to-zero: false\ninitial-scale: 0\nmax-scale-down-rate: 4\n"
                         "container-concurrency-target-default: 50\nactivator-queue-size: 7\n";
  DaemonConfig c;
  load_config_file(path, c);
  CHECK(c.autoscaling.stable_window == std::chrono::seconds(30));
  CHECK(c.autoscaling.scale_to_zero_grace == std::chrono::seconds(0));
  CHECK_FALSE(c.autoscaling.enable_scale_to_zero);
  CHECK(c.autoscaling.initial_scale == 0);
  CHECK(c.autoscaling.max_scale_down_rate == 4);
  CHECK(c.autoscaling.target == 50);
  CHECK(c.activator_queue_size == 7);
  std::ofstream(path) << "stable-window-seconds: 5\n";
  CHECK_THROWS_WITH(load_config_file(path, c),
                    Catch::Contains("stable-window-seconds must be between 6 and 3600"));
  std::ofstream(path) << "enable-scale-to-zero: sometimes\n";
  CHECK_THROWS_WITH(load_config_file(path, c), Catch::Contains("must be true or false"));
  std::ofstream(path) << "activator-queue-size: 0\n";
  CHECK_THROWS_WITH(load_config_file(path, c), Catch::Contains("must be at least 1"));
}

TEST_CASE("the packaged config shows every key, commented out at its default") {
  std::ifstream in(std::string(ELAFROS_SOURCE_DIR) + "/packaging/config.yaml");
  REQUIRE(in);
  // Uncomment "# key: value" lines: the result must load, and equal the defaults.
  std::string text, line;
  std::set<std::string> shown;
  while (std::getline(in, line)) {
    std::string body = line.rfind("# ", 0) == 0 ? line.substr(2) : line;
    static const std::regex kSetting("^[a-z][a-z-]*: .*");
    if (!std::regex_match(body, kSetting)) continue;
    auto colon = body.find(": ");
    shown.insert(body.substr(0, colon));
    text += body + "\n";
  }
  for (const auto& key : config_keys()) CHECK(shown.count(key) == 1);
  test::TempDir dir;
  std::ofstream(dir.path() + "/config.yaml") << text;
  DaemonConfig c, defaults;
  load_config_file(dir.path() + "/config.yaml", c);
  CHECK(c.socket_group == "elafros");  // the package's one setting: its group owns the socket
  CHECK(c.data_dir == defaults.data_dir);
  CHECK(c.socket == defaults.socket);
  CHECK(c.listen == defaults.listen);
  CHECK(c.max_image_bytes == defaults.max_image_bytes);
  CHECK(c.max_layer_bytes == defaults.max_layer_bytes);
  CHECK(c.log_max_file_bytes == defaults.log_max_file_bytes);
  CHECK(c.log_max_files == defaults.log_max_files);
  CHECK(c.log_sinks == defaults.log_sinks);
  CHECK(c.registry_certs_dir == defaults.registry_certs_dir);
  CHECK(c.autoscaling.target == defaults.autoscaling.target);
  CHECK(c.autoscaling.stable_window == defaults.autoscaling.stable_window);
  CHECK(c.autoscaling.scale_to_zero_grace == defaults.autoscaling.scale_to_zero_grace);
  CHECK(c.autoscaling.initial_scale == defaults.autoscaling.initial_scale);
}
