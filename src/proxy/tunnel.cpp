#include "tunnel.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>

#include "proxy/client_stream.hpp"

namespace elafros {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunk = 16 * 1024;

struct Shared {
  explicit Shared(const asio::any_io_executor& ex) : watchdog(ex) {}
  Clock::time_point last = Clock::now();  // the last byte that moved, either way
  int running = 2;                        // directions still relaying
  asio::steady_timer watchdog;
};

tcp::socket& socket_of(tcp::socket& s) {
  return s;
}
tcp::socket& socket_of(ClientStream& s) {
  return s.socket();
}

template <class A, class B>
void close_both(A& a, B& b) {
  error_code ignored;
  socket_of(a).close(ignored);
  socket_of(b).close(ignored);
}

// One direction: what was read past the head, then everything `from` sends. Its end of stream
// becomes a shutdown of `to`'s sending side (a half-close, passed on); a failure ends both
// directions.
template <class From, class To>
asio::awaitable<void> pump(From& from, To& to, boost::beast::flat_buffer& early,
                           std::uint64_t& moved, Shared& shared) {
  if (early.size() > 0) {
    auto [ec, n] = co_await asio::async_write(to, early.data(), kAwait);
    early.consume(n);
    if (ec) {
      close_both(from, to);
      co_return;
    }
    moved += n;
    shared.last = Clock::now();
  }
  std::array<char, kChunk> buffer;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), kAwait);
    if (ec == asio::error::eof) {
      error_code ignored;
      // A TLS client hears the end as a TCP half-close (no close_notify while it still sends).
      socket_of(to).shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    if (ec) {
      close_both(from, to);
      co_return;
    }
    shared.last = Clock::now();
    auto [wec, m] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), kAwait);
    if (wec) {
      close_both(from, to);
      co_return;
    }
    moved += m;
    shared.last = Clock::now();
  }
}

}  // namespace

asio::awaitable<TunnelResult> relay_upgraded(ClientStream& client,
                                             boost::beast::flat_buffer& from_client,
                                             tcp::socket& instance,
                                             boost::beast::flat_buffer& from_instance,
                                             Clock::time_point until, Clock::duration idle) {
  TunnelResult result;
  Shared shared(client.get_executor());
  auto finished = [&shared](const std::exception_ptr&) {
    if (--shared.running == 0) shared.watchdog.cancel();
  };
  asio::co_spawn(client.get_executor(),
                 pump(client, instance, from_client, result.to_instance, shared), finished);
  asio::co_spawn(client.get_executor(),
                 pump(instance, client, from_instance, result.to_client, shared), finished);
  // The watchdog: wakes at the deadline, at the idle bound after the last byte, and when both
  // directions ended. It is also what keeps this frame (and the references the pumps hold)
  // alive until then.
  bool cut = false;
  while (shared.running > 0) {
    auto wake = until;
    if (idle > Clock::duration::zero()) wake = std::min(wake, shared.last + idle);
    shared.watchdog.expires_at(cut ? Clock::time_point::max() : wake);
    co_await shared.watchdog.async_wait(kAwait);
    if (shared.running == 0 || cut) continue;
    auto now = Clock::now();
    bool idle_out = idle > Clock::duration::zero() && now >= shared.last + idle;
    if (now >= until || idle_out) {
      cut = true;
      close_both(client, instance);  // the pumps end with errors and cancel the timer
    }
  }
  co_return result;
}

}  // namespace elafros
