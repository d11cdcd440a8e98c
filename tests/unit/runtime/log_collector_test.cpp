#include "log_collector.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <future>

#include "fixtures/tar_builder.hpp"

using namespace elafros;
using elafros::test::TempDir;

namespace {

// A sink that fails while `failing` is set, and records what it took.
class FlakySink : public LogSink {
 public:
  std::string name() const override { return "flaky"; }
  Result<void> write(const std::vector<LogLine>& lines) override {
    if (failing) return Error::internal("cannot write logs: No space left on device");
    for (const auto& l : lines) got.push_back(l.message);
    return {};
  }
  bool failing = false;
  std::vector<std::string> got;
};

void append(const std::string& path, int from, int to) {
  std::ofstream out(path, std::ios::app);
  for (int i = from; i <= to; ++i) out << "line " << i << "\n";
}

void flush(LogCollector& c) {
  std::promise<void> done;
  c.flush([&done] { done.set_value(); });
  done.get_future().wait();
}

std::vector<std::string> numbered(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i <= to; ++i) out.push_back("line " + std::to_string(i));
  return out;
}

LogCollectorOptions test_options() {
  LogCollectorOptions o;
  o.interval = std::chrono::hours(1);  // only flush() collects
  o.retry_initial = o.retry_max = std::chrono::milliseconds(0);
  return o;
}

}  // namespace

TEST_CASE("a failing sink keeps its offset and gets every line once it works again") {
  TempDir dir;
  auto flaky = std::make_shared<FlakySink>();
  auto store = std::make_shared<FileLogStore>(dir.path() + "/logs/store", LogRetention{});
  std::string spool = spool_path(dir.path(), "default", "svc", "svc-00001-abc123", "stdout");
  {
    LogCollector c(dir.path(), {store, flaky}, store, test_options());
    c.start();
    append(spool, 1, 3);
    flush(c);
    CHECK(flaky->got == numbered(1, 3));

    flaky->failing = true;
    append(spool, 4, 6);
    flush(c);
    flush(c);
    auto h = c.health();
    REQUIRE(h.sinks.size() == 2);
    CHECK(h.sinks[0].healthy);
    CHECK_FALSE(h.sinks[1].healthy);
    CHECK(h.sinks[1].last_error.find("No space left") != std::string::npos);
    CHECK(h.sinks[1].failed_writes >= 2);  // the first periodic collection may count too
    CHECK(h.sinks[1].pending_bytes == 3 * 7);
    CHECK(h.sinks[0].pending_bytes == 0);

    flaky->failing = false;
    append(spool, 7, 7);
    flush(c);
    CHECK(flaky->got == numbered(1, 7));  // nothing lost, nothing twice
    CHECK(c.health().sinks[1].healthy);
    c.stop();
  }
  // The healthy sink wrote each line once too; a restart resumes where each sink was.
  LogQuery q{"default", "svc", "", "", std::nullopt, std::nullopt};
  auto stored = store->read(q);
  REQUIRE(stored.size() == 7);
  for (int i = 0; i < 7; ++i) CHECK(stored[i].message == "line " + std::to_string(i + 1));
  flaky->got.clear();
  LogCollector again(dir.path(), {store, flaky}, store, test_options());
  again.start();
  append(spool, 8, 8);
  flush(again);
  CHECK(flaky->got == numbered(8, 8));
  CHECK(store->read(q).size() == 8);
}

TEST_CASE("a sink down past the spool bound loses the oldest lines, counted, and no others") {
  TempDir dir;
  auto flaky = std::make_shared<FlakySink>();
  auto options = test_options();
  options.spool_max_bytes = 100;
  LogCollector c(dir.path(), {flaky}, nullptr, options);
  c.start();
  std::string spool = spool_path(dir.path(), "default", "svc", "svc-00001-abc123", "stderr");
  flaky->failing = true;
  append(spool, 10, 59);  // 50 lines of 8 bytes
  flush(c);
  auto h = c.health();
  CHECK(h.sinks[0].pending_bytes <= 100);
  CHECK(h.sinks[0].dropped_lines > 0);
  flaky->failing = false;
  flush(c);
  // What it got is the newest lines, without a gap; the rest are counted as dropped.
  REQUIRE_FALSE(flaky->got.empty());
  CHECK(flaky->got.back() == "line 59");
  int first = std::stoi(flaky->got.front().substr(5));
  CHECK(flaky->got == numbered(first, 59));
  CHECK(c.health().sinks[0].dropped_lines == static_cast<std::uint64_t>(first - 10));
}

TEST_CASE("a spool renamed *.done between collections is drained once, never twice") {
  TempDir dir;
  auto flaky = std::make_shared<FlakySink>();
  LogCollector c(dir.path(), {flaky}, nullptr, test_options());
  c.start();
  std::string spool = spool_path(dir.path(), "default", "svc", "svc-00001-abc123", "stderr");
  append(spool, 1, 1);
  flush(c);
  append(spool, 2, 2);
  std::filesystem::rename(spool, spool + ".done");
  flush(c);
  flush(c);
  CHECK(flaky->got == numbered(1, 2));
}

TEST_CASE("a finished instance's spool is drained, its last line without a newline too") {
  TempDir dir;
  auto flaky = std::make_shared<FlakySink>();
  LogCollector c(dir.path(), {flaky}, nullptr, test_options());
  c.start();
  std::string spool = spool_path(dir.path(), "default", "svc", "svc-00001-abc123", "stdout");
  append(spool, 1, 2);
  {
    std::ofstream out(spool, std::ios::app);
    out << "partial";
  }
  flush(c);
  CHECK(flaky->got == numbered(1, 2));  // "partial" may still grow
  flaky->failing = true;
  std::filesystem::rename(spool, spool + ".done");
  flush(c);
  CHECK(std::filesystem::exists(spool + ".done"));  // kept until the sink has it
  flaky->failing = false;
  flush(c);
  CHECK(flaky->got == std::vector<std::string>{"line 1", "line 2", "partial"});
  CHECK_FALSE(std::filesystem::exists(spool + ".done"));
  CHECK_FALSE(std::filesystem::exists(spool + ".offset"));
}

TEST_CASE("an instance's stdout and stderr reach the file store once each") {
  TempDir dir;
  auto store = std::make_shared<FileLogStore>(dir.path() + "/logs/store", LogRetention{});
  LogCollector c(dir.path(), {store}, store, test_options());
  c.start();
  std::string out = spool_path(dir.path(), "default", "svc", "svc-00001-abc123", "stdout");
  std::string err = spool_path(dir.path(), "default", "svc", "svc-00001-abc123", "stderr");
  append(out, 1, 1);
  flush(c);
  append(err, 2, 2);
  flush(c);
  flush(c);
  append(err, 3, 3);
  flush(c);
  LogQuery q{"default", "svc", "", "", std::nullopt, std::nullopt};
  std::vector<std::string> got;
  for (const auto& l : store->read(q)) got.push_back(l.message);
  std::sort(got.begin(), got.end());
  CHECK(got == numbered(1, 3));
}
