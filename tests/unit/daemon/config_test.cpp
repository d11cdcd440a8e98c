#include "daemon/config.hpp"

#include <catch2/catch.hpp>
#include <fstream>

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
