#pragma once
// A logs request in progress (a service's or a Build's): the backlog, then live lines, posted
// to the control thread from the log collector's. Asio-heavy: include it in .cpp files only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "log_collector.hpp"

namespace elafros::api {

// Live lines waiting for one client at most: a client that reads slower than the service
// logs loses the oldest (they stay in the stored logs) rather than growing the daemon.
inline constexpr std::size_t kMaxPendingLogLines = 10000;

struct LogFollow {
  explicit LogFollow(const boost::asio::any_io_executor& ex)
      : wake(ex, std::chrono::steady_clock::time_point::max()) {}
  bool opened = false;
  bool closed = false;  // the client went away
  bool ended = false;   // the service was deleted, or the Build is over: the follow is over
  std::string error;
  std::uint64_t id = 0;
  std::vector<LogLine> lines;
  std::uint64_t dropped = 0;       // live lines dropped since the last take()
  boost::asio::steady_timer wake;  // cancelled whenever one of the above changes

  // Live lines from the collector: kept, the oldest dropped past kMaxPendingLogLines.
  void add(std::vector<LogLine> more) {
    for (auto& l : more) lines.push_back(std::move(l));
    if (lines.size() > kMaxPendingLogLines) {
      std::size_t excess = lines.size() - kMaxPendingLogLines;
      lines.erase(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(excess));
      dropped += excess;
    }
  }

  // The lines to send now, oldest first; after a drop, first a line of elafrosd's (on stderr,
  // named as `about`: the service or Build followed) saying how many went and where they are.
  std::vector<LogLine> take() {
    std::vector<LogLine> out;
    if (dropped > 0) {
      LogLine notice = about;
      notice.time = std::chrono::system_clock::now();
      notice.instance = "elafrosd";
      notice.stream = "stderr";
      notice.message = "elafrosd dropped " + std::to_string(dropped) +
                       " log line(s) this client had not read yet (more than " +
                       std::to_string(kMaxPendingLogLines) +
                       " waited); the stored logs keep them: read them again without following";
      out.push_back(std::move(notice));
      dropped = 0;
    }
    for (auto& l : lines) out.push_back(std::move(l));
    lines.clear();
    return out;
  }
  LogLine about;  // the namespace, service and revision followed, for take()'s notice
};

// Opens the query on the collector; the state fills in on `ex` (wait for `opened`).
inline std::shared_ptr<LogFollow> open_log_follow(LogCollector& logs, LogQuery query, bool follow,
                                                  const boost::asio::any_io_executor& ex) {
  auto state = std::make_shared<LogFollow>(ex);
  state->about.namespace_ = query.namespace_;
  state->about.service = query.service;
  state->about.revision = query.revision;
  logs.open(
      std::move(query), follow,
      [state, ex](std::vector<LogLine> lines) {
        boost::asio::post(ex, [state, lines = std::move(lines)]() mutable {
          if (lines.empty()) state->ended = true;
          state->add(std::move(lines));
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
