#include "api/http_listener.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <optional>
#include <unordered_map>

#include "api/request_info.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/http2_session.hpp"
#include "proxy/http_framing.hpp"
#include "proxy/proxy_tls.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using asio::local::stream_protocol;

namespace elafros::api {
namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

using UnixStream = beast::basic_stream<stream_protocol>;
using TcpStream = beast::tcp_stream;

template <class Stream>
auto& lowest(Stream& s) {
  return beast::get_lowest_layer(s);
}

std::map<std::string, std::string> parse_query(std::string_view target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    auto eq = kv.find('=');
    auto key = percent_decode(kv.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : kv.substr(eq + 1), true);
    if (key && value && !key->empty()) out.emplace(*key, *value);
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return out;
}

// Answers through one connection's stream.
template <class Stream>
class StreamResponder final : public Responder {
 public:
  StreamResponder(Stream& stream, unsigned version, bool keep,
                  std::chrono::seconds send_timeout = std::chrono::seconds(60))
      : stream_(stream), version_(version), keep_(keep), send_timeout_(send_timeout) {}

  awaitable<bool> send(int status, std::string content_type, std::string body) override {
    answered_status = status;
    http::response<http::string_body> res{static_cast<http::status>(status), version_};
    res.set(http::field::content_type, content_type);
    res.set(http::field::server, "elafrosd");
    if (status == 401) res.set(http::field::www_authenticate, "Bearer realm=\"elafrosd\"");
    if (status == 429 || status == 503) res.set(http::field::retry_after, "1");
    for (const auto& [name, value] : headers) res.set(name, value);
    headers.clear();
    res.keep_alive(keep_);
    res.body() = std::move(body);
    res.prepare_payload();
    lowest(stream_).expires_after(send_timeout_);
    auto [ec, n] = co_await http::async_write(stream_, res, kAwait);
    co_return !ec;
  }

  awaitable<bool> begin_stream(int status, std::string content_type) override {
    answered_status = status;
    header_ = std::make_unique<http::response<http::empty_body>>(static_cast<http::status>(status),
                                                                 version_);
    header_->set(http::field::content_type, content_type);
    header_->set(http::field::server, "elafrosd");
    header_->set(http::field::cache_control, "no-cache, private");
    for (const auto& [name, value] : headers) header_->set(name, value);
    headers.clear();
    header_->chunked(true);
    serializer_ = std::make_unique<http::response_serializer<http::empty_body>>(*header_);
    // A stream may stay quiet for long (a watch with no changes), so nothing bounds it as a
    // whole; each write must finish within send_timeout, or the client stopped reading and is
    // cut off (nginx's send_timeout). Beast arms the deadline only while a write is pending.
    lowest(stream_).expires_after(send_timeout_);
    auto [ec, n] = co_await http::async_write_header(stream_, *serializer_, kAwait);
    co_return !ec;
  }

  awaitable<bool> send_chunk(std::string data) override {
    if (data.empty()) co_return true;
    auto chunk = http::make_chunk(asio::buffer(data));
    lowest(stream_).expires_after(send_timeout_);
    auto [ec, n] = co_await asio::async_write(stream_, chunk, kAwait);
    co_return !ec;
  }

  awaitable<bool> end_stream() override {
    auto last = http::make_chunk_last();
    lowest(stream_).expires_after(send_timeout_);
    auto [ec, n] = co_await asio::async_write(stream_, last, kAwait);
    co_return !ec && keep_;
  }

  void notify_close(std::function<void()> on_close) override {
    // A read that ends when the client closes: a streaming client sends nothing more.
    auto probe = std::make_shared<std::array<char, 64>>();
    lowest(stream_).expires_never();  // the probe waits as long as the client stays
    stream_.async_read_some(
        asio::buffer(*probe),
        [probe, cb = std::move(on_close)](boost::system::error_code, std::size_t) { cb(); });
    probing_ = true;
  }
  bool probing() const { return probing_; }

 private:
  Stream& stream_;
  unsigned version_;
  bool keep_;
  std::chrono::seconds send_timeout_;
  std::unique_ptr<http::response<http::empty_body>> header_;
  std::unique_ptr<http::response_serializer<http::empty_body>> serializer_;
  bool probing_ = false;
};

// Answers one HTTP/2 stream (h2 by ALPN on the HTTPS listener): the same Responder, so every
// route, watch and log stream works over it, many at once on one connection (a browser opens
// at most 6 HTTP/1.1 connections to a host; a dashboard follows several streams per tab).
class Http2Responder final : public Responder {
 public:
  explicit Http2Responder(std::shared_ptr<Http2Stream> stream) : stream_(std::move(stream)) {}

  awaitable<bool> send(int status, std::string content_type, std::string body) override {
    answered_status = status;
    Http2Fields fields = head(status, content_type);
    fields.emplace_back("content-length", std::to_string(body.size()));
    if (!stream_->respond(status, fields, body.empty())) co_return false;
    ended_ = true;
    if (body.empty()) co_return true;
    if (!co_await stream_->write(body)) co_return false;
    co_return stream_->finish();
  }

  awaitable<bool> begin_stream(int status, std::string content_type) override {
    answered_status = status;
    Http2Fields fields = head(status, content_type);
    fields.emplace_back("cache-control", "no-cache, private");
    begun_ = stream_->respond(status, fields, false);
    co_return begun_;
  }

  awaitable<bool> send_chunk(std::string data) override {
    if (data.empty()) co_return true;
    co_return co_await stream_->write(data);
  }

  awaitable<bool> end_stream() override {
    ended_ = true;
    co_return stream_->finish();
  }

  void notify_close(std::function<void()> on_close) override {
    stream_->on_gone = std::move(on_close);
  }

  // A stream the handler left without its end (a follow whose client went): reset it.
  void done() {
    if (begun_ && !ended_ && !stream_->gone()) stream_->reset(0);
  }

 private:
  Http2Fields head(int status, const std::string& content_type) {
    Http2Fields fields{{"content-type", content_type}, {"server", "elafrosd"}};
    if (status == 401) fields.emplace_back("www-authenticate", "Bearer realm=\"elafrosd\"");
    if (status == 429 || status == 503) fields.emplace_back("retry-after", "1");
    for (auto& [name, value] : headers) {
      std::string lower = name;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == "connection" || lower == "keep-alive" || lower == "transfer-encoding") continue;
      fields.emplace_back(std::move(lower), value);
    }
    headers.clear();
    return fields;
  }

  std::shared_ptr<Http2Stream> stream_;
  bool begun_ = false, ended_ = false;
};

// A source upload, which gets upload_limit instead of body_limit.
bool is_upload(std::string_view method, std::string_view target) {
  target = target.substr(0, target.find('?'));
  constexpr std::string_view kSuffix = "/buildsources";
  return method == "POST" && target.size() > kSuffix.size() &&
         target.substr(target.size() - kSuffix.size()) == kSuffix;
}

// The Status body of a request refused before any route saw it: 400, 413 (the body), 431
// (the header) or 501, with Kubernetes' reason for each.
std::string refusal_body(int code, const std::string& message) {
  json::object status = status_object(Error::bad_request(message));
  status["code"] = code;
  if (code != 400)
    status["reason"] = code == 413   ? "RequestEntityTooLarge"
                       : code == 431 ? "RequestHeaderFieldsTooLarge"
                                     : "NotImplemented";
  return json::serialize(status) + "\n";
}

}  // namespace

class HttpListener::Impl : public std::enable_shared_from_this<HttpListener::Impl> {
 public:
  Impl(asio::io_context& io, const Router& router, SessionOptions options)
      : io_(io), router_(router), options_(std::move(options)), unix_(io), tcp_(io) {}

  Result<void> listen_unix(const std::string& path, unsigned mode) {
    namespace fs = std::filesystem;
    std::error_code fec;
    fs::path p(path);
    if (p.has_parent_path()) fs::create_directories(p.parent_path(), fec);
    if (fs::is_socket(p, fec))
      fs::remove(p, fec);  // stale: the data-dir lock says no one else owns it
    else if (fs::exists(p, fec))
      return Error::precondition(fmt::format(
          "--socket {} exists and is not a socket; remove it or choose another path", path));
    boost::system::error_code ec;
    unix_.open(stream_protocol(), ec);
    if (!ec) unix_.bind(stream_protocol::endpoint(path), ec);
    if (!ec) unix_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("cannot listen on the API socket {}: {}", path, ec.message()));
    if (::chmod(path.c_str(), mode) != 0)
      return Error::internal(fmt::format("cannot set mode {:o} on {}", mode, path));
    return {};
  }

  Result<unsigned short> listen_tcp(const std::string& address, unsigned short port,
                                    const std::string& cert, const std::string& key) {
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(address, ec);
    if (ec) return Error::invalid(fmt::format("\"{}\" is not an IP address", address));
    if (!cert.empty()) {
      tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
      tls_->use_certificate_chain_file(cert, ec);
      if (ec)
        return Error::invalid(
            fmt::format("cannot read the TLS certificate {}: {}", cert, ec.message()));
      offer_h2(tls_->native_handle());
      tls_->use_private_key_file(key, asio::ssl::context::pem, ec);
      if (ec)
        return Error::invalid(
            fmt::format("cannot read the TLS key {}: {} (is it the certificate's key, in PEM?)",
                        key, ec.message()));
    }
    tcp::endpoint ep(ip, port);
    tcp_.open(ep.protocol(), ec);
    if (!ec) tcp_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) tcp_.bind(ep, ec);
    if (!ec) tcp_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("cannot listen on {}:{}: {}", address, port, ec.message()));
    return tcp_.local_endpoint().port();
  }

  void start() {
    auto self = shared_from_this();
    if (unix_.is_open()) asio::co_spawn(io_, accept_unix(self), asio::detached);
    if (tcp_.is_open()) asio::co_spawn(io_, accept_tcp(self), asio::detached);
  }

  void stop() {
    boost::system::error_code ec;
    unix_.close(ec);
    tcp_.close(ec);
  }

  // An accept that failed (out of descriptors: EMFILE, ENFILE) fails again at once until one
  // is freed: wait a little rather than spin, and say so once a second at most.
  awaitable<void> back_off(const boost::system::error_code& ec) {
    auto now = std::chrono::steady_clock::now();
    if (now - last_accept_warning_ > std::chrono::seconds(1)) {
      last_accept_warning_ = now;
      spdlog::warn("the API cannot accept connections: {}; retrying", ec.message());
    }
    asio::steady_timer t(io_, std::chrono::milliseconds(50));
    co_await t.async_wait(kAwait);
  }

  awaitable<void> accept_unix(std::shared_ptr<Impl> self) {
    for (;;) {
      auto [ec, socket] = co_await unix_.async_accept(kAwait);
      if (!unix_.is_open()) co_return;
      if (ec) {
        co_await back_off(ec);
        continue;
      }
      asio::co_spawn(io_, unix_session(self, std::move(socket)), asio::detached);
    }
  }

  awaitable<void> accept_tcp(std::shared_ptr<Impl> self) {
    for (;;) {
      auto [ec, socket] = co_await tcp_.async_accept(kAwait);
      if (!tcp_.is_open()) co_return;
      if (ec) {
        co_await back_off(ec);
        continue;
      }
      if (tls_)
        asio::co_spawn(io_, tls_session(self, std::move(socket)), asio::detached);
      else
        asio::co_spawn(io_, tcp_session(self, std::move(socket)), asio::detached);
    }
  }

  awaitable<void> unix_session(std::shared_ptr<Impl> /*keeps this alive*/,
                               stream_protocol::socket socket) {
    Peer peer;
    peer.local = true;
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer.uid = cred.uid;
      peer.gid = cred.gid;
      peer.pid = cred.pid;
    } else {
      peer.uid = peer.gid = static_cast<unsigned>(-1);  // nobody: no rights but what tokens give
    }
    peer.address = fmt::format("unix uid {}", peer.uid);
    UnixStream stream(std::move(socket));
    co_await serve(stream, peer);
    boost::system::error_code ec;
    stream.socket().shutdown(stream_protocol::socket::shutdown_send, ec);
  }

  // A TCP connection, counted toward its client address from its accept (a TLS handshake
  // included) to its close.
  struct ClientSlot {
    std::unordered_map<std::string, std::size_t>& counts;
    std::string address;
    std::size_t n;
    ClientSlot(std::unordered_map<std::string, std::size_t>& c, std::string a)
        : counts(c), address(std::move(a)), n(++counts[address]) {}
    ~ClientSlot() {
      auto it = counts.find(address);
      if (it != counts.end() && --it->second == 0) counts.erase(it);
    }
    ClientSlot(const ClientSlot&) = delete;
    ClientSlot& operator=(const ClientSlot&) = delete;
  };
  bool over_client_cap(const ClientSlot& slot) const {
    return options_.max_connections_per_client > 0 && slot.n > options_.max_connections_per_client;
  }

  awaitable<void> tcp_session(std::shared_ptr<Impl> /*keeps this alive*/, tcp::socket socket) {
    Peer peer = tcp_peer(socket);
    ClientSlot slot(per_client_, peer.address);
    TcpStream stream(std::move(socket));
    co_await serve(stream, peer, over_client_cap(slot));
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  awaitable<void> tls_session(std::shared_ptr<Impl> self, tcp::socket socket) {
    Peer peer = tcp_peer(socket);
    ClientSlot slot(per_client_, peer.address);
    ClientStream stream(beast::tcp_stream(std::move(socket)), *tls_);
    auto hec = co_await stream.handshake(std::chrono::seconds(30));
    if (hec) co_return;  // not TLS, or a client that gave up
    if (stream.alpn() == "h2") {
      co_await serve_h2(self, stream, peer, over_client_cap(slot));
      co_return;
    }
    bool probing = co_await serve(stream, peer, over_client_cap(slot));
    if (probing) co_return;  // a read is pending: close without the TLS goodbye
    co_await stream.close_send();
  }

  // An HTTP/2 connection: each stream is a request, served as an HTTP/1.1 one is.
  awaitable<void> serve_h2(std::shared_ptr<Impl> self, ClientStream& stream, Peer peer,
                           bool over_cap) {
    ++sessions_;
    std::optional<Error> refusal;
    if (over_cap || (options_.max_connections > 0 && sessions_ > options_.max_connections))
      refusal = over_cap_error(over_cap, peer);
    Http2Options o;
    o.header_limit = static_cast<std::uint32_t>(options_.header_limit);
    o.idle_timeout = options_.idle;
    o.send_timeout = options_.send_timeout;
    auto handler = [self, peer, refusal](std::shared_ptr<Http2Stream> s) {
      return self->h2_request(self, std::move(s), peer, refusal);
    };
    std::string preread;  // ALPN chose h2: the preface is still to be read
    co_await serve_http2(stream, std::move(preread), o, std::move(handler));
    --sessions_;
  }

  static std::string h2_field(const Http2Fields& fields, std::string_view name) {
    for (const auto& [k, v] : fields)
      if (k == name) return v;
    return "";
  }

  awaitable<void> h2_request(std::shared_ptr<Impl> /*keeps this alive*/,
                             std::shared_ptr<Http2Stream> s, Peer peer,
                             std::optional<Error> refusal) {
    Http2Responder responder(s);
    if (refusal) {  // over a connection cap: every stream of the connection hears why
      co_await responder.send_error(*refusal);
      co_return;
    }
    ApiRequest request;
    request.method = s->method;
    request.target = s->path;
    request.path = request.target.substr(0, request.target.find('?'));
    request.query = parse_query(request.target);
    request.content_type = h2_field(s->headers, "content-type");
    request.accept = h2_field(s->headers, "accept");
    request.user_agent = h2_field(s->headers, "user-agent");
    request.csrf_token = h2_field(s->headers, "x-csrf-token");
    // HTTP/2 may split the Cookie field in several (RFC 9113 §8.2.3): joined with "; ".
    for (const auto& [k, v] : s->headers)
      if (k == "cookie") request.cookie += (request.cookie.empty() ? "" : "; ") + v;
    std::string authorization = h2_field(s->headers, "authorization");
    std::size_t limit =
        is_upload(request.method, request.path) ? options_.upload_limit : options_.body_limit;
    std::array<char, 16384> buffer{};
    while (s->body_expected && !s->body_ended()) {
      s->set_deadline(std::chrono::steady_clock::now() + options_.body_timeout);
      Http2Stream::Read got = co_await s->read_body(buffer.data(), buffer.size());
      if (got.gone) co_return;
      request.body.append(buffer.data(), got.n);
      if (request.body.size() > limit) {
        s->stop_reading();
        std::string body =
            refusal_body(413, fmt::format("the request body is over the limit of {} bytes", limit));
        std::string type = "application/json";
        co_await responder.send(413, std::move(type), std::move(body));
        co_return;
      }
      if (got.end) break;
    }
    s->set_deadline(std::chrono::steady_clock::time_point::max());
    co_await handle(request, responder, peer, authorization);
    responder.done();
  }

  static Peer tcp_peer(const tcp::socket& socket) {
    Peer peer;
    boost::system::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (!ec) peer.address = ep.address().to_string();
    return peer;
  }

  // Why a connection over a cap is refused: the client's own (max-connections-per-client), or
  // the listener's (api-max-connections).
  Error over_cap_error(bool per_client, const Peer& peer) const {
    if (per_client)
      return Error::unavailable(
          fmt::format("the API is serving its limit of {} connections from {} "
                      "(max-connections-per-client); close some, or retry shortly",
                      options_.max_connections_per_client, peer.address));
    return Error::unavailable(fmt::format(
        "the API is serving its limit of {} connections (api-max-connections); retry shortly",
        options_.max_connections));
  }

  // One request, read: who asks (a public path, the authenticator), whether RBAC allows it,
  // the route's answer, the audit record. False when the connection cannot go on.
  awaitable<bool> handle(ApiRequest& request, Responder& responder, const Peer& peer,
                         const std::string& authorization) {
    bool ok = true;
    auto received = std::chrono::system_clock::now();
    request.attributes = request_attributes(request.method, request.path, request.query);
    Result<void> allowed;
    request.who.via = peer.address;
    bool open = options_.public_path && options_.public_path(request);
    if (open) {
      request.who = {kAnonymousUser, {kUnauthenticatedGroup}, "", peer.address};
    } else if (options_.authenticate) {
      auto who = options_.authenticate(peer, authorization, request);
      if (who) {
        request.who = std::move(who.value());
      } else {
        allowed = who.error();
        request.who.user = kAnonymousUser;  // as the audit log names who failed to sign in
        request.who.groups = {kUnauthenticatedGroup};
      }
    } else {
      request.who = {"system:admin", {kMastersGroup, kAuthenticatedGroup}, "", peer.address};
    }
    if (allowed && options_.authorize && !open) allowed = options_.authorize(request);
    if (!allowed) {
      ok = co_await responder.send_error(allowed.error());
      if (options_.audit) options_.audit(request, responder, received);
      co_return ok;
    }
    try {
      ok = co_await router_.dispatch(request, responder);
    } catch (const std::exception& e) {
      spdlog::error("{} {} failed: {}", request.method, request.path, e.what());
      ok = false;
    }
    if (options_.audit) options_.audit(request, responder, received);
    co_return ok;
  }

  // True when it ended with a read still pending on the stream (a stream the client left).
  template <class Stream>
  awaitable<bool> serve(Stream& stream, const Peer& peer, bool over_client_cap = false) {
    bool probing = false;
    ++sessions_;
    beast::flat_buffer buffer;
    if (over_client_cap || (options_.max_connections > 0 && sessions_ > options_.max_connections)) {
      // Over the cap: read the request (so that the client sees the answer, not a reset),
      // answer 503 with Retry-After, and close.
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
      lowest(stream).expires_after(std::chrono::seconds(5));
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kAwait);
      if (!ec) {
        StreamResponder<Stream> r(stream, parser.get().version(), false);
        co_await r.send_error(over_cap_error(over_client_cap, peer));
      }
      --sessions_;
      co_return false;
    }
    http_framing::ChunkGuard chunk_guard;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options_.body_limit);
      parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
      chunk_guard.attach(parser);
      auto read = co_await http_framing::read_head(stream, buffer, parser, options_.header_limit,
                                                   options_.idle, options_.header_timeout);
      boost::system::error_code ec = read.ec;
      std::size_t limit = options_.body_limit;
      std::optional<http_framing::Refusal> refusal = std::move(read.refusal);
      if (!ec && !refusal && is_upload(parser.get().method_string(), parser.get().target())) {
        limit = options_.upload_limit;
        parser.body_limit(limit);
      }
      // The body, with body_timeout between reads (a slow upload goes on; a stalled one ends).
      std::size_t head_fields = 0;
      if (!ec && !refusal)
        head_fields =
            static_cast<std::size_t>(std::distance(parser.get().begin(), parser.get().end()));
      while (!ec && !refusal && !parser.is_done()) {
        lowest(stream).expires_after(options_.body_timeout);
        std::tie(ec, std::ignore) = co_await http::async_read_some(stream, buffer, parser, kAwait);
      }
      // Beast adds a chunked body's trailer fields to the head's, where they would pass for
      // headers (an Authorization, say): refused.
      if (!ec && !refusal &&
          static_cast<std::size_t>(std::distance(parser.get().begin(), parser.get().end())) !=
              head_fields)
        refusal = http_framing::Refusal{
            400,
            "bad request: the API does not take trailer fields after a chunked body; send "
            "them as headers"};
      if (ec == http::error::end_of_stream || ec == asio::error::eof ||
          ec == beast::error::timeout || ec == asio::ssl::error::stream_truncated)
        break;
      if (ec || refusal) {
        // Unreadable or ambiguous framing: answer and close (RFC 9112 §6.3).
        StreamResponder<Stream> r(stream, 11, false);
        if (!refusal) {
          refusal.emplace();
          refusal->message = fmt::format("malformed HTTP request: {}", ec.message());
          if (ec == http::error::body_limit) {
            refusal->status = 413;
            refusal->message = fmt::format("the request body is over the limit of {} bytes", limit);
          } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
            refusal->status = 431;
            refusal->message = fmt::format("the request header is over the limit of {} bytes",
                                           options_.header_limit);
          } else if (ec == http::error::bad_chunk || ec == http::error::bad_chunk_extension) {
            refusal->message = http_framing::body_error_message(ec);
          }
        }
        std::string type = "application/json";
        std::string body = refusal_body(refusal->status, refusal->message);
        co_await r.send(refusal->status, std::move(type), std::move(body));
        break;
      }
      auto& req = parser.get();
      ApiRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.path = request.target.substr(0, request.target.find('?'));
      request.query = parse_query(request.target);
      request.content_type = std::string(req[http::field::content_type]);
      request.accept = std::string(req[http::field::accept]);
      request.body = std::move(req.body());
      bool keep = req.keep_alive();
      StreamResponder<Stream> responder(stream, req.version(), keep, options_.send_timeout);
      request.user_agent = std::string(req[http::field::user_agent]);
      request.cookie = std::string(req[http::field::cookie]);
      request.csrf_token = std::string(req["X-CSRF-Token"]);
      std::string authorization(req[http::field::authorization]);
      bool ok = co_await handle(request, responder, peer, authorization);
      if (responder.probing()) {  // a read is pending on the stream: the connection is done
        probing = true;
        break;
      }
      if (!ok || !keep) break;
    }
    --sessions_;
    co_return probing;
  }

  asio::io_context& io_;
  const Router& router_;
  SessionOptions options_;
  stream_protocol::acceptor unix_;
  tcp::acceptor tcp_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::size_t sessions_ = 0;
  std::unordered_map<std::string, std::size_t> per_client_;  // TCP sessions per client address
  std::chrono::steady_clock::time_point last_accept_warning_{};
};

HttpListener::HttpListener(asio::io_context& io, const Router& router, SessionOptions options)
    : impl_(std::make_shared<Impl>(io, router, std::move(options))) {}
HttpListener::~HttpListener() = default;
Result<void> HttpListener::listen_unix(const std::string& path, unsigned mode) {
  return impl_->listen_unix(path, mode);
}
Result<unsigned short> HttpListener::listen_tcp(const std::string& address, unsigned short port,
                                                const std::string& cert_file,
                                                const std::string& key_file) {
  return impl_->listen_tcp(address, port, cert_file, key_file);
}
void HttpListener::start() {
  impl_->start();
}
void HttpListener::stop() {
  impl_->stop();
}
std::size_t HttpListener::sessions() const {
  return impl_->sessions_;
}

}  // namespace elafros::api
