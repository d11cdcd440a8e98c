#include "proxy/http_framing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <vector>

namespace elafros::http_framing {

namespace http = boost::beast::http;

namespace {

bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

// RFC 9110 §5.6.2: tchar.
bool is_token_char(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// RFC 9110 §5.5: a field value is visible characters, obs-text, SP and HTAB; never NUL, CR or
// LF (which some servers behind a proxy take as the end of the field).
std::optional<unsigned char> control_byte(std::string_view value) {
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return c;
  }
  return std::nullopt;
}

Refusal bad(std::string message) {
  return Refusal{400, std::move(message)};
}

}  // namespace

std::optional<Refusal> check_request_head(const http::request_header<http::fields>& head) {
  std::size_t lengths = 0;
  std::string_view length;
  std::size_t encodings = 0;  // Transfer-Encoding fields
  std::string codings;        // their values, joined
  for (const auto& f : head) {
    if (f.name() == http::field::content_length) {
      ++lengths;
      length = f.value();
    } else if (f.name() == http::field::transfer_encoding) {
      ++encodings;
      if (!codings.empty()) codings += ',';
      codings.append(f.value());
    }
  }
  if (lengths > 1) return bad("bad request: more than one Content-Length header; send exactly one");
  if (lengths == 1) {
    if (length.empty() || length.size() > 18)
      return bad(
          fmt::format("bad request: Content-Length \"{}\" is not a length; send the "
                      "body's size in bytes as decimal digits",
                      length));
    for (char c : length)
      if (c < '0' || c > '9')
        return bad(
            fmt::format("bad request: Content-Length \"{}\" is not a length; send the "
                        "body's size in bytes as decimal digits only",
                        length));
  }
  if (encodings == 0) return std::nullopt;
  // RFC 9112 §6.1-6.3: Transfer-Encoding is HTTP/1.1's; with a Content-Length it is a request
  // that two parsers may read differently; and a request's codings must end in chunked, or the
  // body has no delimiter at all.
  if (head.version() < 11)
    return bad(
        "bad request: Transfer-Encoding on an HTTP/1.0 request; HTTP/1.0 has no chunked "
        "coding, so send a Content-Length (or use HTTP/1.1)");
  if (lengths != 0)
    return bad("bad request: both Content-Length and Transfer-Encoding; send one of them");
  std::vector<std::string_view> list;
  std::string_view rest = codings;
  for (;;) {
    auto comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    if (item.empty())
      return bad(
          fmt::format("bad request: Transfer-Encoding \"{}\" has an empty coding; send "
                      "\"Transfer-Encoding: chunked\"",
                      codings));
    list.push_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (!iequals(list.back(), "chunked"))
    return bad(
        fmt::format("bad request: Transfer-Encoding \"{}\" does not end in chunked, so the "
                    "body has no end; send \"Transfer-Encoding: chunked\" or a "
                    "Content-Length",
                    codings));
  for (std::size_t i = 0; i + 1 < list.size(); ++i) {
    if (iequals(list[i], "chunked"))
      return bad(
          fmt::format("bad request: Transfer-Encoding \"{}\" applies chunked more than "
                      "once",
                      codings));
    for (char c : list[i])
      if (!is_token_char(static_cast<unsigned char>(c)))
        return bad(
            fmt::format("bad request: Transfer-Encoding \"{}\" is not a list of codings", codings));
  }
  if (list.size() > 1 || encodings > 1)
    return Refusal{501, fmt::format("Transfer-Encoding \"{}\" is not supported: only chunked is; "
                                    "send the body chunked or with a Content-Length",
                                    codings)};
  return std::nullopt;
}

std::size_t head_end(std::string_view data, std::size_t& searched) {
  std::size_t from = searched > 3 ? searched - 3 : 0;
  std::size_t at = data.find("\r\n\r\n", from);
  if (at == std::string_view::npos) {
    searched = data.size();
    return at;
  }
  return at + 4;
}

std::optional<Refusal> scan_head(std::string_view head) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    char c = head[i];
    if (c == '\0') return bad("bad request: the request head holds a NUL byte");
    if (c == '\r' && (i + 1 == head.size() || head[i + 1] != '\n'))
      return bad(
          "bad request: a CR not followed by LF; end each line of the head with CRLF "
          "(RFC 9112 §2.2)");
    if (c == '\n' && (i == 0 || head[i - 1] != '\r'))
      return bad(
          "bad request: a line of the head ends in a bare LF; end each line with CRLF "
          "(RFC 9112 §2.2)");
  }
  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  if (line.empty()) return bad("bad request: the request line is empty");
  // method SP request-target SP HTTP-version, no other whitespace (RFC 9112 §3).
  if (std::count(line.begin(), line.end(), ' ') != 2 || line.find('\t') != std::string_view::npos ||
      line.front() == ' ' || line.find("  ") != std::string_view::npos)
    return bad(
        "bad request: the request line is not \"METHOD TARGET HTTP/1.1\" with single "
        "spaces");
  for (char ch : line) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f)
      return bad(fmt::format("bad request: the request line holds the control byte 0x{:02x}", c));
  }
  std::size_t fields = 0;
  std::size_t pos = eol + 2;
  while (pos < head.size()) {
    eol = head.find("\r\n", pos);
    line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;  // the empty line that ends the head
    if (++fields > kMaxFields)
      return Refusal{
          431, fmt::format("request header fields too large: more than {} fields", kMaxFields)};
    if (line.front() == ' ' || line.front() == '\t')
      return bad(
          "bad request: a header field is folded onto a second line (obs-fold), which "
          "elafrosd refuses (RFC 9112 §5.2); send each field on one line");
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos)
      return bad(fmt::format("bad request: header line \"{}\" has no colon", line.substr(0, 64)));
    std::string_view name = line.substr(0, colon);
    if (name.empty()) return bad("bad request: a header field has an empty name");
    for (char ch : name) {
      auto c = static_cast<unsigned char>(ch);
      if (c == ' ' || c == '\t')
        return bad(
            fmt::format("bad request: whitespace between header field name \"{}\" and "
                        "its colon (RFC 9112 §5.1)",
                        trim(name)));
      if (!is_token_char(c))
        return bad(
            fmt::format("bad request: header field name \"{}\" has the byte 0x{:02x}, "
                        "which a field name may not hold (RFC 9110 §5.1)",
                        name, c));
    }
    if (auto c = control_byte(line.substr(colon + 1)))
      return bad(
          fmt::format("bad request: header field \"{}\" holds the control byte 0x{:02x}; "
                      "field values may not hold NUL, CR, LF or other control bytes "
                      "(RFC 9110 §5.5)",
                      name, *c));
  }
  return std::nullopt;
}

std::string upgrade_protocol(const http::fields& h) {
  bool named = false;
  for (auto it = h.find(http::field::connection);
       it != h.end() && it->name() == http::field::connection; ++it)
    for (auto token : http::token_list(it->value()))
      if (iequals(std::string_view(token.data(), token.size()), "upgrade")) named = true;
  if (!named || h.count(http::field::upgrade) != 1) return {};
  std::string value(h[http::field::upgrade]);
  for (auto token : http::token_list(value)) {
    std::string_view t(token.data(), token.size());
    if (iequals(t, "h2c")) return {};
  }
  return value;
}

void strip_hop_by_hop(http::fields& h) {
  // Fields that Connection names are hop-by-hop too, except the framing and Host: a client's
  // "Connection: Content-Length" must not make the proxy forward a body without its length,
  // which the instance would read as the next request.
  std::vector<std::string> named;
  for (auto it = h.find(http::field::connection);
       it != h.end() && it->name() == http::field::connection; ++it) {
    for (auto token : http::token_list(it->value())) {
      std::string_view t(token.data(), token.size());
      if (iequals(t, "content-length") || iequals(t, "transfer-encoding") || iequals(t, "host"))
        continue;
      named.emplace_back(t);
    }
  }
  for (const auto& n : named) h.erase(n);
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
                 http::field::te, http::field::trailer, http::field::upgrade,
                 http::field::proxy_authenticate, http::field::proxy_authorization})
    h.erase(f);
}

void ChunkGuard::Callback::operator()(std::uint64_t /*size*/, std::string_view extensions,
                                      boost::system::error_code& ec) const {
  if (extensions.size() > kMaxChunkExtension) ec = http::error::bad_chunk_extension;
}

std::string body_error_message(const boost::system::error_code& ec) {
  if (ec == http::error::bad_chunk)
    return "bad request: a chunk size is not hexadecimal digits followed by CRLF (RFC 9112 §7.1); "
           "the body cannot be read";
  if (ec == http::error::bad_chunk_extension)
    return fmt::format("bad request: a chunk extension is malformed or longer than {} bytes",
                       kMaxChunkExtension);
  if (ec == http::error::body_limit) return "request body too large";
  return fmt::format("bad request: the body cannot be read: {}", ec.message());
}

}  // namespace elafros::http_framing
