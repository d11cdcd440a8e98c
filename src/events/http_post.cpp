#include "events/http_post.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::ip::tcp;

namespace elafros {
namespace {
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
}  // namespace

Result<Url> parse_url(const std::string& url) {
  if (url.rfind("http://", 0) != 0)
    return Error::invalid(fmt::format("\"{}\" is not an http:// URL", url));
  std::string rest = url.substr(7);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Url u;
  if (slash != std::string::npos) u.path = rest.substr(slash);
  auto colon = authority.rfind(':');
  u.host = authority;
  std::string name = authority;
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    u.port = authority.substr(colon + 1);
    name = authority.substr(0, colon);
  }
  if (name.empty()) return Error::invalid(fmt::format("\"{}\" names no host", url));
  bool local = name == "localhost" ||
               (name.size() > 10 && name.compare(name.size() - 10, 10, ".localhost") == 0);
  u.connect_host = local ? "127.0.0.1" : name;
  return u;
}

awaitable<Answer> post(const Url& url, const HttpHeaders& headers, const std::string& body,
                       std::chrono::milliseconds timeout) {
  Answer a;
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] = co_await resolver.async_resolve(url.connect_host, url.port, kAwait);
  if (rec) {
    a.error = fmt::format("cannot resolve {}: {}", url.connect_host, rec.message());
    co_return a;
  }
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  auto [cec, ep] = co_await stream.async_connect(endpoints, kAwait);
  if (cec) {
    a.error = fmt::format("cannot connect to {}:{}: {}", url.connect_host, url.port, cec.message());
    co_return a;
  }
  http::request<http::string_body> req{http::verb::post, url.path, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "elafros-dispatcher");
  req.set("Prefer", "reply");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(false);
  auto [wec, wn] = co_await http::async_write(stream, req, kAwait);
  if (wec) {
    a.error = fmt::format("sending to {}: {}", url.host, wec.message());
    co_return a;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  auto [rec2, rn] = co_await http::async_read(stream, buffer, parser, kAwait);
  if (rec2) {
    a.error = rec2 == beast::error::timeout
                  ? fmt::format("no answer from {} within {:g} s", url.host,
                                std::chrono::duration<double>(timeout).count())
                  : fmt::format("reading the answer of {}: {}", url.host, rec2.message());
    co_return a;
  }
  auto& res = parser.get();
  a.status = static_cast<int>(res.result_int());
  a.body = std::move(res.body());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    a.headers.emplace_back(name, std::string(f.value()));
    if (name == "retry-after") {
      try {
        a.retry_after = std::chrono::seconds(std::stol(std::string(f.value())));
      } catch (...) {
      }
    }
  }
  beast::error_code sec;
  stream.socket().shutdown(tcp::socket::shutdown_both, sec);
  co_return a;
}

bool retryable(int status) {
  if (status == 0) return true;
  if (status == 404 || status == 408 || status == 409 || status == 429) return true;
  if (status >= 500) return true;
  if (status >= 400) return false;
  return status < 200 || status >= 300;  // 1xx and 3xx: unlisted, retried
}

}  // namespace elafros
