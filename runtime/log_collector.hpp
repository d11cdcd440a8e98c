#pragma once
// Log capture (docs/architecture.md). An instance's stdout and stderr are plain files opened
// O_APPEND, "spools" under <data-dir>/logs/spool/NS_SERVICE_INSTANCE.{stdout,stderr}: the app never
// blocks on them and never gets SIGPIPE, whether the daemon runs or not. The collector, on a thread
// of its own, reads what each spool gained since each sink's saved offset, splits it into lines,
// stamps them, hands them to the sinks and to live followers, and punches the bytes every sink has
// out of the spool (fallocate PUNCH_HOLE), so spools stay small without a rename or truncate racing
// the writer. The last 64 KiB stay readable for failure messages. When the runtime removes an
// instance it renames its spools to *.done; the collector drains and deletes them.
//
// Delivery is at least once, and nothing is lost quietly (docs/architecture.md, "Faults"):
//  - a sink that fails (ENOSPC, EMFILE, a dead receiver) keeps its offset; the same lines are
//    offered to it again after a backoff, while the other sinks go on;
//  - a crash between a sink's write and the save of its offset repeats lines;
//  - a spool that a sink leaves more than `spool_max_bytes` behind loses its oldest lines for that
//    sink, counted in health() (status, /metrics), never silently.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "log_store.hpp"

namespace elafros {

// Spool paths, shared with the runtime that creates them.
std::string spool_dir(const std::string& data_dir);
// Builds run under their own runtime and collector, whose data dir is this (spools, runc state
// and bundles apart from the instances').
std::string build_data_dir(const std::string& data_dir);
std::string spool_path(const std::string& data_dir, const std::string& ns,
                       const std::string& service, const std::string& instance, const char* stream);
// The last `lines` lines of an instance's spools (stderr's preferred), holes skipped.
std::string spool_tail(const std::string& data_dir, const std::string& instance_glob_prefix,
                       std::size_t lines);

struct LogCollectorOptions {
  std::chrono::milliseconds interval{100};       // how often spools are read
  std::chrono::milliseconds retry_initial{200};  // a failed sink is retried after this,
  std::chrono::milliseconds retry_max{5000};     // doubling up to this
  std::uint64_t spool_max_bytes = 256ull << 20;  // a sink this far behind on a spool drops lines
};

// What status and /metrics say about log delivery.
struct LogHealth {
  struct Sink {
    std::string name;
    bool healthy = true;
    std::string last_error;          // of the last failed write; kept after a recovery
    std::int64_t failing_since = 0;  // Unix seconds; 0 while healthy
    std::uint64_t failed_writes = 0;
    std::uint64_t pending_bytes = 0;  // spool bytes not delivered to it yet
    std::uint64_t dropped_lines = 0;  // oldest lines it lost to the spool bound
  };
  std::vector<Sink> sinks;
};

class LogCollector {
 public:
  using Deliver = std::function<void(std::vector<LogLine>)>;

  LogCollector(std::string data_dir, std::vector<std::shared_ptr<LogSink>> sinks,
               std::shared_ptr<FileLogStore> store, LogCollectorOptions options = {});
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
  // Collects the spools of (ns, service), a Build, then ends its followers' follows (an empty
  // delivery) and calls `done`, on the collector's thread. Its stored logs stay.
  void end_follows(std::string ns, std::string service, std::function<void()> done = {});
  // Collects now and calls `done` afterwards (tests, shutdown).
  void flush(std::function<void()> done);
  // A copy of the delivery health; any thread.
  LogHealth health() const;

 private:
  struct Spool;
  struct SinkState;
  struct Follower {
    LogQuery query;
    Deliver deliver;
  };
  void run();
  void collect();
  void discover();
  void deliver_to(std::size_t sink, std::chrono::steady_clock::time_point now);
  void follow_new();
  void end_followers(const std::string& ns, const std::string& service);
  void bound_spools();
  void publish_health();
  void post(std::function<void()> fn);

  std::string data_dir_;
  std::vector<std::shared_ptr<LogSink>> sinks_;
  std::shared_ptr<FileLogStore> store_;
  LogCollectorOptions options_;
  std::map<std::string, std::unique_ptr<Spool>> spools_;  // by path
  std::vector<SinkState> sink_states_;
  std::map<std::uint64_t, Follower> followers_;
  std::uint64_t next_follower_ = 1;

  mutable std::mutex health_mutex_;  // the collector thread writes, status readers copy
  LogHealth health_;

  // A small task queue: the collector thread runs posted tasks and collects every interval.
  struct Queue;
  std::unique_ptr<Queue> queue_;
  std::thread thread_;
};

}  // namespace elafros
