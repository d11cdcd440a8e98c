#include "proxy/shedding.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <limits>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace elafros {

int shed_threshold(int headroom) {
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0 || nofile.rlim_cur == RLIM_INFINITY ||
      nofile.rlim_cur >= static_cast<rlim_t>(std::numeric_limits<int>::max()))
    return std::numeric_limits<int>::max();
  int limit = static_cast<int>(nofile.rlim_cur);
  if (headroom <= 0) headroom = std::max(64, limit / 8);
  return std::max((limit - headroom) / 2, 16);
}

asio::awaitable<void> shed_connection(beast::tcp_stream client, std::uint32_t header_limit,
                                      std::string why) {
  constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
  beast::flat_buffer buffer;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(header_limit);
  client.expires_after(std::chrono::seconds(5));
  auto [ec, n] = co_await http::async_read_header(client, buffer, parser, kAwait);
  if (ec) co_return;
  http::response<http::string_body> res{http::status::service_unavailable, parser.get().version()};
  res.set(http::field::server, "elafros");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::retry_after, "1");
  res.keep_alive(false);
  res.body() = std::move(why);
  res.prepare_payload();
  auto [wec, written] = co_await http::async_write(client, res, kAwait);
  (void)wec;
  (void)written;
  boost::system::error_code sec;
  client.socket().shutdown(asio::ip::tcp::socket::shutdown_both, sec);
}

}  // namespace elafros
