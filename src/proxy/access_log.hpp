#pragma once
// Per-request access logs as JSON lines (method, host, path, status, bytes, duration, revision,
// instance, whether the request waited in the activator), to a file or the daemon's stdout.
// The proxy thread only appends to a buffer; full buffers, and every 250 ms the rest, go to a
// writer thread, so the data plane never waits on the disk. A failed write (a full disk) keeps the
// lines, truncating a file back to where it was, and the writer offers them again at the next
// flush; past `max_pending_bytes` the oldest are dropped and counted (health()), never quietly.
// The writer may also forward each chunk to the telemetry sinks.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "elafros/result.hpp"

namespace boost::asio {
class io_context;
}

namespace elafros {

class AccessLog {
 public:
  // `target`: a file path (appended to, created 0640), "stdout", or "" (lines only forwarded).
  static Result<std::unique_ptr<AccessLog>> open(boost::asio::io_context& proxy_io,
                                                 const std::string& target,
                                                 std::uint64_t max_pending_bytes = 64 << 20);
  // Set before the first append: each flushed chunk of new lines (newline-terminated) is also
  // handed to `forward`, on the writer thread (the telemetry sinks).
  void set_forward(std::function<void(std::string_view lines)> forward);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // On the proxy thread: one line, without its newline.
  void append(std::string_view line);
  // Writes what is buffered and waits for the writer (shutdown).
  void close();

  struct Health {
    bool healthy = true;
    std::string last_error;
    std::uint64_t failed_writes = 0;
    std::uint64_t pending_bytes = 0;
    std::uint64_t dropped_lines = 0;
  };
  // Any thread.
  Health health() const;

 private:
  struct Impl;
  explicit AccessLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace elafros
