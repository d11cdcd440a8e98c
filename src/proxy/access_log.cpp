#include "proxy/access_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>
#include <mutex>

#include "atomic_file.hpp"
#include "elafros/errno_text.hpp"

namespace asio = boost::asio;

namespace elafros {

namespace {
constexpr std::size_t kFlushAt = 64 * 1024;
constexpr auto kFlushEvery = std::chrono::milliseconds(250);
}  // namespace

struct AccessLog::Impl {
  Impl(asio::io_context& io, int fd_, bool own, std::uint64_t max_pending)
      : timer(io), fd(fd_), owns_fd(own), max_pending_bytes(max_pending) {}
  asio::steady_timer timer;
  asio::thread_pool writer{1};
  int fd;
  bool owns_fd;
  std::uint64_t max_pending_bytes;
  std::string buffer;  // the proxy thread's
  bool timer_armed = false;
  bool closed = false;
  std::atomic<bool> failing{false};  // set by the writer: flush even with nothing new

  // The writer thread's.
  std::function<void(std::string_view)> forward;
  std::string pending;
  mutable std::mutex health_mutex;  // the writer updates, status copies
  Health health;

  // Flushes in kFlushEvery; while the writer fails, again and again, so that kept lines are
  // offered again without waiting for new requests.
  void arm() {
    if (timer_armed || closed) return;
    timer_armed = true;
    timer.expires_after(kFlushEvery);
    timer.async_wait([this](boost::system::error_code ec) {
      timer_armed = false;
      if (ec) return;
      flush();
      if (failing.load(std::memory_order_relaxed)) arm();
    });
  }

  void flush() {
    if (buffer.empty() && !failing.load(std::memory_order_relaxed)) return;
    asio::post(writer, [this, data = std::move(buffer)] { write(data); });
    buffer.clear();
  }

  // On the writer thread: everything pending, or nothing (a file is truncated back).
  void write(const std::string& data) {
    if (forward && !data.empty()) forward(data);
    if (fd < 0) return;  // forwarded only
    pending += data;
    if (pending.empty()) return;
    struct stat st {};
    bool file = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    bool ok = write_all(fd, pending);
    int err = errno;
    if (!ok && file) (void)::ftruncate(fd, st.st_size);
    std::uint64_t dropped = 0;
    if (ok) {
      pending.clear();
    } else if (pending.size() > max_pending_bytes) {
      // The oldest whole lines go, counted, until what is kept fits.
      std::size_t cut = pending.size() - max_pending_bytes;
      auto nl = pending.find('\n', cut);
      cut = nl == std::string::npos ? pending.size() : nl + 1;
      dropped = static_cast<std::uint64_t>(
          std::count(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(cut), '\n'));
      pending.erase(0, cut);
    }
    failing.store(!ok, std::memory_order_relaxed);
    std::lock_guard lock(health_mutex);
    health.healthy = ok;
    if (!ok) {
      health.last_error = fmt::format("cannot write the access log: {}", errno_text(err));
      ++health.failed_writes;
    }
    health.dropped_lines += dropped;
    health.pending_bytes = pending.size();
  }
};

Result<std::unique_ptr<AccessLog>> AccessLog::open(asio::io_context& proxy_io,
                                                   const std::string& target,
                                                   std::uint64_t max_pending_bytes) {
  if (target.empty())
    return std::unique_ptr<AccessLog>(
        new AccessLog(std::make_unique<Impl>(proxy_io, -1, false, max_pending_bytes)));
  if (target == "stdout")
    return std::unique_ptr<AccessLog>(
        new AccessLog(std::make_unique<Impl>(proxy_io, 1, false, max_pending_bytes)));
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return Error::invalid(
        fmt::format("access-log {} cannot be opened: {}; give a writable file path or \"stdout\"",
                    target, errno_text(errno)));
  return std::unique_ptr<AccessLog>(
      new AccessLog(std::make_unique<Impl>(proxy_io, fd, true, max_pending_bytes)));
}

AccessLog::AccessLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

void AccessLog::set_forward(std::function<void(std::string_view lines)> forward) {
  impl_->forward = std::move(forward);
}

AccessLog::~AccessLog() {
  close();
}

void AccessLog::append(std::string_view line) {
  Impl& i = *impl_;
  if (i.closed) return;
  i.buffer.append(line).push_back('\n');
  if (i.buffer.size() >= kFlushAt) {
    i.flush();
    return;
  }
  i.arm();
}

AccessLog::Health AccessLog::health() const {
  std::lock_guard lock(impl_->health_mutex);
  return impl_->health;
}

void AccessLog::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  impl_->flush();
  impl_->writer.join();
  if (impl_->owns_fd) ::close(impl_->fd);
}

}  // namespace elafros
