// A logs follow's pending lines: bounded for a client that reads slower than the service logs,
// and the client told how many it missed.
#include "api/log_follow.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

using namespace elafros;

namespace {
std::vector<LogLine> numbered(std::size_t from, std::size_t n) {
  std::vector<LogLine> out;
  for (std::size_t i = 0; i < n; ++i) {
    LogLine l;
    l.service = "svc";
    l.stream = "stdout";
    l.message = std::to_string(from + i);
    out.push_back(std::move(l));
  }
  return out;
}
}  // namespace

TEST_CASE("a log follow keeps what its client has not read, within a bound") {
  boost::asio::io_context io;
  api::LogFollow follow(io.get_executor());
  follow.about.namespace_ = "team";
  follow.about.service = "svc";

  follow.add(numbered(0, 3));
  auto first = follow.take();
  REQUIRE(first.size() == 3);
  CHECK(first.front().message == "0");
  CHECK(follow.take().empty());

  // A client that fell behind: the oldest go, the newest kMaxPendingLogLines stay.
  const std::size_t n = api::kMaxPendingLogLines;
  follow.add(numbered(0, n));
  follow.add(numbered(n, 250));
  CHECK(follow.lines.size() == n);
  auto behind = follow.take();
  REQUIRE(behind.size() == n + 1);
  CHECK(behind[0].instance == "elafrosd");
  CHECK(behind[0].stream == "stderr");
  CHECK(behind[0].namespace_ == "team");
  CHECK(behind[0].service == "svc");
  CHECK(behind[0].message.find("dropped 250 log line(s)") != std::string::npos);
  CHECK(behind[1].message == "250");
  CHECK(behind.back().message == std::to_string(n + 249));

  // The notice comes once per drop.
  follow.add(numbered(0, 1));
  auto after = follow.take();
  REQUIRE(after.size() == 1);
  CHECK(after[0].message == "0");
}
