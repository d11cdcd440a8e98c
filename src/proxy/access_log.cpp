#include "proxy/access_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cerrno>

#include "atomic_file.hpp"
#include "elafros/errno_text.hpp"

namespace asio = boost::asio;

namespace elafros {

namespace {
constexpr std::size_t kFlushAt = 64 * 1024;
constexpr auto kFlushEvery = std::chrono::milliseconds(250);
}  // namespace

struct AccessLog::Impl {
  Impl(asio::io_context& io, int fd_, bool own) : timer(io), fd(fd_), owns_fd(own) {}
  asio::steady_timer timer;
  asio::thread_pool writer{1};
  int fd;
  bool owns_fd;
  std::string buffer;
  bool timer_armed = false;
  bool closed = false;

  void flush() {
    if (buffer.empty()) return;
    // A full disk drops access lines, never requests.
    asio::post(writer, [fd = fd, data = std::move(buffer)] { (void)write_all(fd, data); });
    buffer.clear();
  }
};

Result<std::unique_ptr<AccessLog>> AccessLog::open(asio::io_context& proxy_io,
                                                   const std::string& target) {
  if (target == "stdout")
    return std::unique_ptr<AccessLog>(new AccessLog(std::make_unique<Impl>(proxy_io, 1, false)));
  int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return Error::invalid(
        fmt::format("access-log {} cannot be opened: {}; give a writable file path or \"stdout\"",
                    target, errno_text(errno)));
  return std::unique_ptr<AccessLog>(new AccessLog(std::make_unique<Impl>(proxy_io, fd, true)));
}

AccessLog::AccessLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

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
  if (!i.timer_armed) {
    i.timer_armed = true;
    i.timer.expires_after(kFlushEvery);
    i.timer.async_wait([impl = impl_.get()](boost::system::error_code ec) {
      impl->timer_armed = false;
      if (!ec) impl->flush();
    });
  }
}

void AccessLog::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  impl_->flush();
  impl_->writer.join();
  if (impl_->owns_fd) ::close(impl_->fd);
}

}  // namespace elafros
