#pragma once
// The framing checks elafrosd makes on every request it reads, on the proxy and on the API
// listeners, beyond what Debian's Boost.Beast (1.81) makes: RFC 9112 §6 says how a message's
// body is delimited, and a front end that reads it differently from the server behind it lets
// a client smuggle a second request inside the first. Beast before 1.92 takes
// `Transfer-Encoding: gzip` as "no body", forwards `identity` with a Content-Length, and
// accepts chunked on HTTP/1.0; these checks refuse them, and the caller closes the connection.
// Included only by the proxy and the API listener (Beast's headers are heavy).

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace elafros::http_framing {

// Why a request is refused: the status (400, 431 or 501) and a message for the client that says
// what to change. The connection is closed after it is sent.
struct Refusal {
  int status = 400;
  std::string message;
};

// The most header fields a request may carry (Envoy's default), and the longest chunk
// extension (nothing uses them; some parsers read them differently).
inline constexpr std::size_t kMaxFields = 100;
inline constexpr std::size_t kMaxChunkExtension = 256;

// Checks a request's head as raw bytes, from the request line to the empty line, before Beast
// parses it: no NUL, no CR without LF or LF without CR (RFC 9112 §2.2), a request line of three
// parts, no line folding (obs-fold, §5.2: refused rather than joined, which a server behind might
// do differently), field names that are tokens with the colon right after (§5.1), no control
// bytes in values (RFC 9110 §5.5), at most kMaxFields fields.
std::optional<Refusal> scan_head(std::string_view head);

// Where the head that `data` starts with ends (just past its empty line), or npos while it is
// incomplete. `searched` carries how far an earlier call looked, so that a head arriving in
// pieces is scanned once.
std::size_t head_end(std::string_view data, std::size_t& searched);

// Checks a request head that Beast parsed: exactly one framing (none, one valid Content-Length,
// or Transfer-Encoding "chunked" on HTTP/1.1), and no control bytes in a field value.
std::optional<Refusal> check_request_head(
    const boost::beast::http::request_header<boost::beast::http::fields>& head);

// Refuses over-long chunk extensions while Beast reads a chunked body. Beast stores a
// reference to the callback: keep this object alive as long as the parser.
class ChunkGuard final {
 public:
  template <class Body>
  void attach(boost::beast::http::request_parser<Body>& parser) {
    parser.on_chunk_header(callback_);
  }

 private:
  struct Callback {
    void operator()(std::uint64_t size, std::string_view extensions,
                    boost::system::error_code& ec) const;
  };
  Callback callback_;
};

// Checks a complete head (scan_head), has Beast parse it into `parser`, and checks what Beast
// made of it (check_request_head). The head is all of `head`, empty line included.
template <class Parser>
std::optional<Refusal> parse_head(std::string_view head, Parser& parser) {
  if (auto refusal = scan_head(head)) return refusal;
  boost::system::error_code ec;
  std::size_t used = parser.put(boost::asio::const_buffer(head.data(), head.size()), ec);
  if (ec || used != head.size() || !parser.is_header_done())
    return Refusal{400,
                   "bad request: " + (ec ? ec.message() : std::string("the head is malformed"))};
  return check_request_head(parser.get());
}

// How one request head was read.
struct HeadRead {
  boost::system::error_code ec;    // the connection ended or timed out: nothing to answer
  std::optional<Refusal> refusal;  // a head to refuse: answer it, then close the connection
  // The head was the first line of HTTP/2's preface (RFC 9113 §3.4): a server that speaks
  // HTTP/2 goes on with it, any other refuses it (refusal is set too).
  bool http2_preface = false;
};

// Reads one request's head into `parser` and checks it (scan_head, Beast, check_request_head).
// The connection may sit idle `idle` for the request's first byte; from there the head has
// `header_timeout` in all (slowloris). A head over `header_limit` bytes is refused with 431.
// The body, if any, is left in `buffer` for the parser to read on.
template <class Stream, class Parser>
boost::asio::awaitable<HeadRead> read_head(Stream& stream, boost::beast::flat_buffer& buffer,
                                           Parser& parser, std::size_t header_limit,
                                           std::chrono::seconds idle,
                                           std::chrono::seconds header_timeout) {
  constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);
  constexpr std::size_t kRead = 16 * 1024;
  auto& lowest = boost::beast::get_lowest_layer(stream);
  HeadRead out;
  bool started = false;
  std::size_t searched = 0;
  std::size_t end = std::string_view::npos;
  for (;;) {
    std::string_view data(static_cast<const char*>(buffer.data().data()), buffer.size());
    // RFC 9112 §2.2: empty lines before a request line are ignored (some clients send a CRLF
    // after a body).
    std::size_t blank = 0;
    while (data.substr(blank, 2) == "\r\n" && blank < 8) blank += 2;
    if (blank > 0) {
      buffer.consume(blank);
      searched = 0;
      continue;
    }
    if (!data.empty() && !started) {
      started = true;
      lowest.expires_after(header_timeout);
    }
    end = head_end(data, searched);
    if (end != std::string_view::npos) break;
    std::size_t room = std::min(kRead, buffer.max_size() - buffer.size());
    if (data.size() >= header_limit || room == 0) {
      out.refusal = Refusal{431, "request header fields too large: the head is over the limit of " +
                                     std::to_string(header_limit) + " bytes"};
      co_return out;
    }
    if (!started) lowest.expires_after(idle);
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(room), kAwait);
    if (ec) {
      out.ec = ec;
      co_return out;
    }
    buffer.commit(n);
  }
  if (end > header_limit) {
    out.refusal = Refusal{431, "request header fields too large: the head is over the limit of " +
                                   std::to_string(header_limit) + " bytes"};
    co_return out;
  }
  std::string_view head(static_cast<const char*>(buffer.data().data()), end);
  if (head == "PRI * HTTP/2.0\r\n\r\n") {
    out.http2_preface = true;
    out.refusal = Refusal{505, "HTTP/2 is not served here: use HTTP/1.1"};
  } else {
    out.refusal = parse_head(head, parser);
  }
  buffer.consume(end);
  co_return out;
}

// A request head, as the proxy writes it to an instance: fresh framing (the caller has set
// Content-Length or chunked), HTTP/1.1 unless the message is 1.0, one field per line.
template <bool isRequest>
void serialize_head(const boost::beast::http::header<isRequest, boost::beast::http::fields>& h,
                    std::string& out) {
  out.clear();
  if constexpr (isRequest) {
    out.append(h.method_string())
        .append(" ")
        .append(h.target())
        .append(h.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  } else {
    out.append(h.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ")
        .append(std::to_string(h.result_int()))
        .append(" ");
    out.append(h.reason()).append("\r\n");
  }
  for (const auto& f : h) out.append(f.name_string()).append(": ").append(f.value()).append("\r\n");
  out.append("\r\n");
}

// The protocol a request asks to switch to: its Upgrade field when Connection names
// "upgrade" (RFC 9110 §7.8), else empty. h2c is not passed on: an upgrade to HTTP/2 is
// between the client and the proxy, which declines it (answers in HTTP/1.1), as nginx does.
std::string upgrade_protocol(const boost::beast::http::fields& h);

// Removes the hop-by-hop fields (RFC 9110 §7.6.1), which are for one connection, not for the
// next hop: those Connection names, and Connection, Keep-Alive, TE, Trailer, Upgrade and the
// Proxy-* ones.
void strip_hop_by_hop(boost::beast::http::fields& h);

// A message for a body that failed to parse (a bad chunk size, a truncated chunk, an
// over-long extension): what the client sees in its 400.
std::string body_error_message(const boost::system::error_code& ec);

}  // namespace elafros::http_framing
