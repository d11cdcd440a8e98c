// Fuzzes the proxy's request path (src/proxy/http_framing): the head read as raw bytes and
// checked, Beast's parse, the body's chunk checks, and the re-serialization that the proxy
// forwards with fresh framing. Besides memory errors (ASan, UBSan), it checks one property: a
// request the proxy accepts is forwarded as bytes that the same path accepts again, with the
// same method, target, fields (framing aside) and body. A request that could be read two ways
// would break it.
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "proxy/http_framing.hpp"

namespace http = boost::beast::http;
namespace framing = elafros::http_framing;

namespace {

struct Parsed {
  std::string method, target;
  unsigned version = 0;
  std::vector<std::pair<std::string, std::string>> fields;  // framing and hop-by-hop aside
  std::string body;
  http::request<http::string_body> message;
};

bool framing_field(std::string_view name) {
  return boost::beast::iequals(name, "content-length") ||
         boost::beast::iequals(name, "transfer-encoding") ||
         boost::beast::iequals(name, "connection");
}

// One request from the start of `data`, as the proxy reads it; nullopt when refused or
// incomplete.
std::optional<Parsed> parse(std::string_view data) {
  std::size_t searched = 0;
  std::size_t end = framing::head_end(data, searched);
  if (end == std::string_view::npos || end > 16384) return std::nullopt;
  http::request_parser<http::string_body> parser;
  parser.header_limit(16384);
  parser.body_limit(1 << 20);
  framing::ChunkGuard guard;
  guard.attach(parser);
  if (framing::parse_head(data.substr(0, end), parser)) return std::nullopt;
  http::request_header<> head = parser.get().base();
  std::size_t pos = end;
  while (!parser.is_done()) {
    if (pos >= data.size()) return std::nullopt;
    boost::system::error_code ec;
    std::size_t n = parser.put(boost::asio::const_buffer(data.data() + pos, data.size() - pos), ec);
    if (ec || n == 0) return std::nullopt;
    pos += n;
  }
  Parsed p;
  p.message = parser.release();
  // The proxy writes a chunked request's head before its body: the trailer fields Beast adds
  // to the head's are not forwarded.
  p.message.base() = head;
  p.method = std::string(p.message.method_string());
  p.target = std::string(p.message.target());
  p.version = p.message.version();
  p.body = p.message.body();
  return p;
}

void keep_fields(Parsed& p) {
  for (const auto& f : p.message)
    if (!framing_field(f.name_string()))
      p.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
}

[[noreturn]] void fail(const char* what, std::string_view in, std::string_view out) {
  std::fprintf(stderr, "http_request_fuzzer: %s\n--- in\n%.*s\n--- forwarded\n%.*s\n", what,
               static_cast<int>(in.size()), in.data(), static_cast<int>(out.size()), out.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto first = parse(in);
  if (!first) return 0;
  // What the proxy forwards: hop-by-hop fields gone, HTTP/1.1, the framing it came with.
  http::request<http::string_body> forwarded = first->message;
  framing::strip_hop_by_hop(forwarded);
  forwarded.version(11);
  forwarded.keep_alive(true);
  for (const auto& f : forwarded)
    if (!framing_field(f.name_string()))
      first->fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
  std::ostringstream wire;
  wire << forwarded;
  std::string out = wire.str();
  auto second = parse(out);
  if (!second) fail("the forwarded request is refused", in, out);
  keep_fields(*second);
  if (second->method != first->method) fail("the method changed", in, out);
  if (second->target != first->target) fail("the target changed", in, out);
  if (second->body != first->body) fail("the body changed", in, out);
  if (second->fields != first->fields) fail("the fields changed", in, out);
  return 0;
}
