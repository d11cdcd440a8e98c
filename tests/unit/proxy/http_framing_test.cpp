#include "proxy/http_framing.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <catch2/catch.hpp>

namespace http = boost::beast::http;
namespace framing = elafros::http_framing;

namespace {

// The refusal of a complete request head, as the proxy reads it; 0 when it is accepted.
int refusal_of(const std::string& head) {
  http::request_parser<http::empty_body> parser;
  auto refused = framing::parse_head(head, parser);
  return refused ? refused->status : 0;
}

}  // namespace

TEST_CASE("http_framing: one framing per request, as RFC 9112 §6 has it") {
  const std::string start = "POST / HTTP/1.1\r\nHost: h\r\n";
  CHECK(refusal_of(start + "Content-Length: 5\r\n\r\n") == 0);
  CHECK(refusal_of(start + "Transfer-Encoding: chunked\r\n\r\n") == 0);
  CHECK(refusal_of(start + "Transfer-Encoding: CHUNKED\r\n\r\n") == 0);
  CHECK(refusal_of(start + "Transfer-Encoding: gzip\r\n\r\n") == 400);
  CHECK(refusal_of(start + "Transfer-Encoding: gzip, chunked\r\n\r\n") == 501);
  CHECK(refusal_of(start + "Transfer-Encoding: chunked, chunked\r\n\r\n") == 400);
  CHECK(refusal_of(start + "Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n") == 400);
  CHECK(refusal_of(start + "Content-Length: 5\r\nContent-Length: 5\r\n\r\n") == 400);
  CHECK(refusal_of(start + "Content-Length: +5\r\n\r\n") == 400);
  CHECK(refusal_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400);
}

TEST_CASE("http_framing: the head's bytes are checked before Beast reads them") {
  CHECK(refusal_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n") == 400);  // obs-fold
  CHECK(refusal_of("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n") == 400);            // bare LF
  CHECK(refusal_of("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n") == 400);            // bare CR
  CHECK(refusal_of(std::string("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 28)) == 400);
  CHECK(refusal_of("GET / HTTP/1.1\r\nHost : h\r\n\r\n") == 400);
  CHECK(refusal_of("GET  / HTTP/1.1\r\nHost: h\r\n\r\n") == 400);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(refusal_of(many + "\r\n") == 431);
  CHECK(refusal_of("GET / HTTP/1.1\r\nHost: h\r\nX-Tab:\tv\tw\r\nX-Obs: caf\xe9\r\n\r\n") == 0);
}

TEST_CASE("http_framing: head_end finds the empty line across pieces") {
  std::size_t searched = 0;
  CHECK(framing::head_end("GET / HTTP/1.1\r\nHost: h\r\n\r", searched) == std::string_view::npos);
  CHECK(framing::head_end("GET / HTTP/1.1\r\nHost: h\r\n\r\nbody", searched) == 27);
}

TEST_CASE("http_framing: Connection cannot strip the framing or Host") {
  http::fields f;
  f.set(http::field::host, "h");
  f.set(http::field::content_length, "5");
  f.set(http::field::connection, "Content-Length, Host, X-Secret");
  f.set("X-Secret", "s");
  f.set(http::field::keep_alive, "timeout=5");
  framing::strip_hop_by_hop(f);
  CHECK(f[http::field::content_length] == "5");
  CHECK(f[http::field::host] == "h");
  CHECK(f.count("X-Secret") == 0);
  CHECK(f.count(http::field::connection) == 0);
  CHECK(f.count(http::field::keep_alive) == 0);
}
