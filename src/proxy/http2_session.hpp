#pragma once
// HTTP/2 from clients (RFC 9113), framed by nghttp2: prior-knowledge h2c on the plain listener
// and h2 by ALPN on the HTTPS one. Each request stream is handed to the proxy as an
// Http2Stream, which it routes like an HTTP/1.1 request. Flow control is end to end: a request
// body's window opens only as the proxy passes the bytes on, and a response body waits while
// more than a window's worth is queued for the client. Runs on the proxy thread; included by
// the proxy only.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace elafros {

class ClientStream;
class Http2Connection;

// Header fields: names in lower case, in the order they came.
using Http2Fields = std::vector<std::pair<std::string, std::string>>;

struct Http2Options {
  std::uint32_t max_concurrent_streams = 100;
  std::uint32_t header_limit = 32 * 1024;  // a request's fields, as HPACK decodes them
  std::chrono::seconds idle_timeout{75};   // with no stream open
  std::chrono::seconds send_timeout{60};   // one write to the client, at most
};

class Http2Stream {
 public:
  explicit Http2Stream(Http2Connection& connection, std::int32_t id);

  // The request.
  std::string method, scheme, authority, path;
  Http2Fields headers;         // the regular fields
  bool body_expected = false;  // the HEADERS frame did not end the stream
  Http2Fields trailers;        // the request's trailing fields, once its body ended

  struct Read {
    std::size_t n = 0;
    bool end = false;   // the body is complete (after these n bytes)
    bool gone = false;  // the stream was reset, or the connection closed
  };
  // Up to `size` bytes of the request body, waiting for the client.
  boost::asio::awaitable<Read> read_body(char* into, std::size_t size);

  // The response's head. end: nothing follows. False when the stream is gone.
  bool respond(int status, const Http2Fields& fields, bool end);
  // Response body bytes; waits while the client is a window behind. False when gone.
  boost::asio::awaitable<bool> write(std::string_view data);
  // The same without waiting, for a short answer of the proxy's own.
  bool put(std::string_view data);
  // The end of the response body, with trailing fields (gRPC's status) or none.
  bool finish(const Http2Fields& trailers = {});
  // Abandons the stream (RST_STREAM), as when the instance failed after the head went out.
  void reset();
  bool gone() const { return gone_; }
  bool responded() const { return responded_; }
  // Called once if the stream goes away while the proxy still serves it: the proxy closes its
  // connection to the instance there, so that its waits end.
  std::function<void()> on_gone;

 private:
  friend class Http2Connection;
  void wake() { signal_.cancel(); }
  boost::asio::awaitable<void> wait();

  Http2Connection& connection_;
  std::int32_t id_;
  std::size_t header_bytes_ = 0;
  std::string in_;  // request body bytes not yet read
  bool in_end_ = false;
  std::string out_;  // response body bytes not yet framed
  std::size_t out_off_ = 0;
  bool out_end_ = false;
  bool deferred_ = false;  // nghttp2 waits for out_ to fill
  Http2Fields out_trailers_;
  bool gone_ = false;
  bool responded_ = false;
  boost::asio::steady_timer signal_;
};

using Http2Handler = std::function<boost::asio::awaitable<void>(std::shared_ptr<Http2Stream>)>;

// Serves one HTTP/2 connection until it closes, and until every stream's handler has returned.
// `preread`: what was read of the connection already, the client's preface included.
boost::asio::awaitable<void> serve_http2(ClientStream& client, std::string preread,
                                         Http2Options options, Http2Handler handler);

// The HTTP/2 client preface (RFC 9113 §3.4).
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace elafros
