#pragma once
// HTTP/2 (RFC 9113), framed by nghttp2, both ways:
//  - from clients: prior-knowledge h2c on the plain listener and h2 by ALPN on the HTTPS one.
//    Each request stream is handed to the proxy as an Http2Stream, which it routes like an
//    HTTP/1.1 request;
//  - to instances whose port is named h2c (gRPC): Http2Upstream, requests multiplexed on a
//    prior-knowledge connection, their trailers passed on.
// Flow control is end to end: a body's receive window opens only as the proxy passes the bytes
// on, and a sender waits while more than a window's worth is queued. Runs on the proxy thread;
// included by the proxy only.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
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

// One stream. From a client: the request is what came (method … headers, a body to
// read_body, trailers), the response what the proxy sends (respond, write, finish). To an
// instance, the other way: the proxy sends the request (Http2Upstream::request, write,
// finish) and reads the response (wait_head, then status and headers, read_body, trailers).
class Http2Stream {
 public:
  Http2Stream(Http2Connection& connection, std::int32_t id);

  // What came: a client's request, or an instance's response.
  std::string method, scheme, authority, path;
  int status = 0;
  Http2Fields headers;         // the regular fields
  bool body_expected = false;  // the HEADERS frame did not end the stream
  Http2Fields trailers;        // the trailing fields, once the body ended

  // From an instance: waits for the response's head (status, headers). False when gone.
  boost::asio::awaitable<bool> wait_head();
  // Bounds every wait of this stream; past it, the stream is reset and counts as gone.
  void set_deadline(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }
  bool timed_out() const { return timed_out_; }

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
  // Abandons the stream (RST_STREAM), as when the instance failed after the head went out:
  // INTERNAL_ERROR (2), or NO_ERROR (0) to stop a peer's body the answer no longer needs.
  void reset(std::uint32_t error_code = 2);
  // read_body returns gone from now on (the answer goes out without the rest of the body).
  void stop_reading() {
    stop_reading_ = true;
    wake();
  }
  // Everything that came of the body has been read.
  bool body_ended() const { return in_end_ && in_.empty(); }
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
  bool head_done_ = false;  // an instance's final response head came
  bool closed_ = false;     // nghttp2 closed the stream (ended both ways, or reset)
  bool timed_out_ = false;
  bool stop_reading_ = false;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::shared_ptr<Http2Connection> keep_;  // an upstream stream keeps its connection
  boost::asio::steady_timer signal_;
};

using Http2Handler = std::function<boost::asio::awaitable<void>(std::shared_ptr<Http2Stream>)>;

// Serves one HTTP/2 connection until it closes, and until every stream's handler has returned.
// `preread`: what was read of the connection already, the client's preface included.
boost::asio::awaitable<void> serve_http2(ClientStream& client, std::string preread,
                                         Http2Options options, Http2Handler handler);

// A prior-knowledge HTTP/2 connection to an instance (its port named h2c).
class Http2Upstream {
 public:
  // Connects within `timeout`; null and `ec` set when that fails.
  static boost::asio::awaitable<std::shared_ptr<Http2Upstream>> connect(
      boost::asio::any_io_executor ex, boost::asio::ip::tcp::endpoint to,
      std::chrono::seconds timeout, boost::system::error_code& ec);
  ~Http2Upstream();

  // Open, not told to go away, and below the instance's limit of concurrent streams.
  bool usable() const;
  bool closed() const;
  // Sends a request's head (end: no body follows; else write() and finish() send it).
  std::shared_ptr<Http2Stream> request(const std::string& method, const std::string& authority,
                                       const std::string& path, const Http2Fields& fields,
                                       bool end);
  void close();

 private:
  explicit Http2Upstream(std::shared_ptr<Http2Connection> connection);
  std::shared_ptr<Http2Connection> connection_;
};

// The HTTP/2 client preface (RFC 9113 §3.4).
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace elafros
