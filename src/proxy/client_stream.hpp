#pragma once
// A client's connection to the proxy: plain TCP, or TLS over it (the --listen-tls listener).
// One type for both, chosen when the connection is accepted, so that the proxy's HTTP/1.1
// session, the brokers' ingress, upgraded tunnels and the HTTP/2 session are written once. It
// is a Beast AsyncStream; get_lowest_layer() gives the tcp_stream under it (its timeouts, its
// socket). Included by the proxy only: it brings OpenSSL's headers.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace elafros {

class ClientStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  explicit ClientStream(boost::beast::tcp_stream tcp) : tcp_(std::move(tcp)) {}
  ClientStream(boost::beast::tcp_stream tcp, boost::asio::ssl::context& tls)
      : tls_(std::in_place, std::move(tcp), tls) {}
  ClientStream(ClientStream&&) = default;

  executor_type get_executor() { return next_layer().get_executor(); }
  boost::beast::tcp_stream& next_layer() { return tls_ ? tls_->next_layer() : *tcp_; }
  boost::asio::ip::tcp::socket& socket() { return next_layer().socket(); }
  bool secure() const { return tls_.has_value(); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            tcp_->async_read_some(b, std::move(handler));
        },
        token, buffers);
  }

  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const Buffers& b) {
          if (tls_)
            tls_->async_write_some(b, std::move(handler));
          else
            tcp_->async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

  // The TLS handshake, within `timeout`; nothing for a plain connection.
  boost::asio::awaitable<boost::system::error_code> handshake(std::chrono::seconds timeout) {
    if (!tls_) co_return boost::system::error_code{};
    next_layer().expires_after(timeout);
    auto [ec] = co_await tls_->async_handshake(boost::asio::ssl::stream_base::server,
                                               boost::asio::as_tuple(boost::asio::use_awaitable));
    next_layer().expires_never();
    co_return ec;
  }

  // The protocol ALPN chose ("h2", "http/1.1"), or empty; the host name the client sent (SNI).
  std::string_view alpn() const;
  std::string_view server_name() const;

  // The end of the proxy's side: TLS says close_notify (waiting for the client at most a
  // moment), TCP shuts down its sending half. The socket stays open for a lingering read.
  boost::asio::awaitable<void> close_send();

 private:
  std::optional<boost::beast::tcp_stream> tcp_;
  std::optional<boost::beast::ssl_stream<boost::beast::tcp_stream>> tls_;
};

}  // namespace elafros
