#pragma once
// Where collected log lines go (docs/architecture.md, logs): sinks behind one interface, chosen in
// the daemon config. The file store keeps them per revision under <data-dir>/logs/<ns>/<service>/
// <revision>/, as JSON lines in size-rotated files, so they outlive instances and the daemon
// until retention drops them; the stdout sink forwards them as JSON lines to the daemon's
// stdout, which systemd sends to the journal.
// Not thread-safe: the log collector's thread is the only caller.

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

struct LogLine {
  std::chrono::system_clock::time_point time;
  std::string namespace_;
  std::string service;
  std::string revision;
  std::string instance;
  std::string stream;  // "stdout" or "stderr"
  std::string message;
  std::string container;  // a sidecar's or init container's name; "" for the serving one
};

// {"time": RFC 3339 with microseconds, "namespace", "service", "revision", "instance", "stream",
// "message"}: the stored form, the stdout sink's, and what the logs API streams.
boost::json::object log_line_json(const LogLine& line);
std::optional<LogLine> log_line_from_json(std::string_view text);
std::string format_log_time(std::chrono::system_clock::time_point t);

// A destination of collected lines. write() takes all of them or fails having kept none (as far
// as it can undo its own partial work): the collector offers the same lines again later.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual std::string name() const = 0;  // as in the log-sinks config key
  virtual Result<void> write(const std::vector<LogLine>& lines) = 0;
};

struct LogRetention {
  std::uint64_t max_file_bytes = 10 << 20;  // a revision's current file rotates at this size
  int max_files = 5;                        // files kept per revision, the current one included
};

// What a reader wants from the store.
struct LogQuery {
  std::string namespace_;
  std::string service;
  std::string revision;  // empty: every revision of the service
  std::string instance;  // empty: every instance
  std::optional<std::chrono::system_clock::time_point> since;
  std::optional<std::size_t> tail;  // the last N lines (after the other filters)
  bool matches(const LogLine& line) const;
};

class FileLogStore : public LogSink {
 public:
  FileLogStore(std::string root, LogRetention retention);

  std::string name() const override { return "file"; }
  // ENOSPC or EMFILE midway truncates what this call appended, so that no torn line stays.
  Result<void> write(const std::vector<LogLine>& lines) override;
  // The stored lines that match, oldest first, merged across revisions in time order.
  std::vector<LogLine> read(const LogQuery& query) const;
  // Drops the logs of a deleted revision, or (revision empty) of a deleted service.
  void remove(const std::string& ns, const std::string& service, const std::string& revision);
  // Bytes on disk, for tests and status.
  std::uint64_t disk_bytes() const;

 private:
  std::string dir_of(const LogLine& line) const;
  struct Appended {
    std::string file;
    std::uint64_t size_before = 0;
  };
  Result<void> append(const std::string& dir, const std::string& text, std::vector<Appended>& undo);

  std::string root_;
  LogRetention retention_;
};

class StdoutLogSink : public LogSink {
 public:
  std::string name() const override { return "stdout"; }
  Result<void> write(const std::vector<LogLine>& lines) override;
};

}  // namespace elafros
