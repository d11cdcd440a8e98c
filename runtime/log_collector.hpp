#pragma once
// Log capture (docs/architecture.md). An instance's stdout and stderr are plain files opened
// O_APPEND, "spools" under <data-dir>/logs/spool/NS_SERVICE_INSTANCE.{stdout,stderr}: the app never
// blocks on them and never gets SIGPIPE, whether the daemon runs or not. The collector, on a thread
// of its own, reads what each spool gained since its saved offset, splits it into lines, stamps
// them, hands them to the sinks and to live followers, and punches the consumed bytes out of
// the spool (fallocate PUNCH_HOLE), so spools stay small without a rename or truncate racing the
// writer. The last 64 KiB stay readable for failure messages. When the runtime removes an
// instance it renames its spools to *.done; the collector drains and deletes them.
// Delivery is at least once: a crash between a sink write and the offset's save repeats lines.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "log_store.hpp"

namespace elafros {

// Spool paths, shared with the runtime that creates them.
std::string spool_dir(const std::string& data_dir);
std::string spool_path(const std::string& data_dir, const std::string& ns,
                       const std::string& service, const std::string& instance, const char* stream);
// The last `lines` lines of an instance's spools (stderr's preferred), holes skipped.
std::string spool_tail(const std::string& data_dir, const std::string& instance_glob_prefix,
                       std::size_t lines);

class LogCollector {
 public:
  using Deliver = std::function<void(std::vector<LogLine>)>;

  LogCollector(std::string data_dir, std::vector<std::shared_ptr<LogSink>> sinks,
               std::shared_ptr<FileLogStore> store,
               std::chrono::milliseconds interval = std::chrono::milliseconds(100));
  ~LogCollector();
  LogCollector(const LogCollector&) = delete;
  LogCollector& operator=(const LogCollector&) = delete;

  void start();
  void stop();

  // Runs on the collector's thread, between two collections, so that nothing is missed or
  // repeated: reads the stored lines matching `query` and, when `follow`, registers `deliver`
  // for every later matching line (called on the collector's thread; post from it; an empty
  // delivery means the service was deleted and the follow is over). `done` gets
  // the backlog and the follower's id (0 when not following, or without a file store).
  void open(LogQuery query, bool follow, Deliver deliver,
            std::function<void(std::vector<LogLine>, std::uint64_t, std::string)> done);
  void close(std::uint64_t follower);
  // Drops stored logs (a deleted revision or service), then calls `done` (on the collector's
  // thread).
  void remove(std::string ns, std::string service, std::string revision,
              std::function<void()> done = {});
  // Collects now and calls `done` afterwards (tests, shutdown).
  void flush(std::function<void()> done);

 private:
  struct Spool;
  struct Follower {
    LogQuery query;
    Deliver deliver;
  };
  void run();
  void collect();
  void post(std::function<void()> fn);

  std::string data_dir_;
  std::vector<std::shared_ptr<LogSink>> sinks_;
  std::shared_ptr<FileLogStore> store_;
  std::chrono::milliseconds interval_;
  std::map<std::string, std::unique_ptr<Spool>> spools_;  // by path
  std::map<std::uint64_t, Follower> followers_;
  std::uint64_t next_follower_ = 1;

  // A small task queue: the collector thread runs posted tasks and collects every interval.
  struct Queue;
  std::unique_ptr<Queue> queue_;
  std::thread thread_;
};

}  // namespace elafros
