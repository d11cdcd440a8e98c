#pragma once
// A logs request in progress (a service's or a Build's): the backlog, then live lines, posted
// to the control thread from the log collector's. Asio-heavy: include it in .cpp files only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "log_collector.hpp"

namespace elafros::api {

struct LogFollow {
  explicit LogFollow(const boost::asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  bool opened = false;
  bool closed = false;  // the client went away
  bool ended = false;   // the service was deleted, or the Build is over: the follow is over
  std::string error;
  std::uint64_t id = 0;
  std::vector<LogLine> lines;
  boost::asio::steady_timer wake;  // cancelled whenever one of the above changes
};

// Opens the query on the collector; the state fills in on `ex` (wait for `opened`).
inline std::shared_ptr<LogFollow> open_log_follow(LogCollector& logs, LogQuery query, bool follow,
                                                  const boost::asio::any_io_executor& ex) {
  auto state = std::make_shared<LogFollow>(ex);
  logs.open(
      std::move(query), follow,
      [state, ex](std::vector<LogLine> lines) {
        boost::asio::post(ex, [state, lines = std::move(lines)]() mutable {
          if (lines.empty()) state->ended = true;
          for (auto& l : lines) state->lines.push_back(std::move(l));
          state->wake.cancel();
        });
      },
      [state, ex](std::vector<LogLine> backlog, std::uint64_t id, std::string error) {
        boost::asio::post(ex, [state, backlog = std::move(backlog), id, error]() mutable {
          state->lines = std::move(backlog);
          state->id = id;
          state->error = std::move(error);
          state->opened = true;
          state->wake.cancel();
        });
      });
  return state;
}

}  // namespace elafros::api
