#include "cli/api_client.hpp"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <optional>
#include <stdexcept>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;

namespace elafros::cli {
namespace {

std::string answer_error(const boost::system::error_code& ec) {
  if (ec == http::error::partial_message || ec == http::error::end_of_stream ||
      ec == asio::error::eof || ec == asio::error::connection_reset)
    return "elafrosd closed the connection before it finished answering (is it stopping or "
           "restarting? 'elafros status' tells)";
  return fmt::format("reading elafrosd's answer failed: {}", ec.message());
}

// "Bearer elf_ACCESSOR_…": what --debug shows of a token.
std::string redacted(const std::string& token) {
  auto cut = token.rfind('_');
  return "Bearer " + (cut == std::string::npos ? std::string("…") : token.substr(0, cut + 1) + "…");
}

// One connection to the API, over the unix socket or TLS; throws with a hint on failure.
class Connection {
 public:
  explicit Connection(const ApiEndpoint& e) : e_(e) {
    boost::system::error_code ec;
    if (e.server.empty()) {
      unix_.emplace(io_);
      unix_->connect(asio::local::stream_protocol::endpoint(e.socket), ec);
      if (ec)
        throw std::runtime_error(
            fmt::format("cannot reach elafrosd at {}: {} (is elafrosd running? point --socket, "
                        "--server, $ELAFROS_SERVER or a context at it)",
                        e.socket, ec.message()));
      return;
    }
    if (e.server.rfind("https://", 0) != 0)
      throw std::runtime_error(
          fmt::format("the server \"{}\" must be https://HOST:PORT or unix:///PATH", e.server));
    std::string authority = e.server.substr(8);
    authority = authority.substr(0, authority.find('/'));
    auto colon = authority.rfind(':');
    host_ = colon == std::string::npos ? authority : authority.substr(0, colon);
    std::string port = colon == std::string::npos ? "443" : authority.substr(colon + 1);
    ssl_.emplace(asio::ssl::context::tls_client);
    ssl_->set_options(asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    ssl_->set_verify_mode(asio::ssl::verify_peer);
    if (e.ca_pem.empty())
      ssl_->set_default_verify_paths(ec);
    else
      ssl_->add_certificate_authority(asio::buffer(e.ca_pem), ec);
    if (ec)
      throw std::runtime_error(
          fmt::format("the CA for {} is not a PEM certificate: {}", e.server, ec.message()));
    tls_.emplace(io_, *ssl_);
    tls_->set_verify_callback(asio::ssl::host_name_verification(host_));
    SSL_set_tlsext_host_name(tls_->native_handle(), host_.c_str());
    asio::ip::tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host_, port, ec);
    if (!ec) asio::connect(tls_->lowest_layer(), endpoints, ec);
    if (ec)
      throw std::runtime_error(fmt::format(
          "cannot reach elafrosd at {}: {} (is it listening there? 'elafros context list')",
          e.server, ec.message()));
    tls_->handshake(asio::ssl::stream_base::client, ec);
    if (ec)
      throw std::runtime_error(fmt::format(
          "the TLS handshake with {} failed: {} (is the context's CA elafrosd's? 'elafros "
          "kubeconfig' on the server prints it)",
          e.server, ec.message()));
  }

  template <class Message>
  void write(Message& m, boost::system::error_code& ec) {
    if (unix_)
      http::write(*unix_, m, ec);
    else
      http::write(*tls_, m, ec);
  }
  template <class Parser>
  void read(beast::flat_buffer& b, Parser& p, boost::system::error_code& ec) {
    if (unix_)
      http::read(*unix_, b, p, ec);
    else
      http::read(*tls_, b, p, ec);
  }
  template <class Parser>
  void read_some(beast::flat_buffer& b, Parser& p, boost::system::error_code& ec) {
    if (unix_)
      http::read_some(*unix_, b, p, ec);
    else
      http::read_some(*tls_, b, p, ec);
  }
  const std::string& host() const { return host_; }

 private:
  const ApiEndpoint& e_;
  asio::io_context io_;
  std::optional<asio::local::stream_protocol::socket> unix_;
  std::optional<asio::ssl::context> ssl_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
  std::string host_;
};

// Writes the request; throws with a hint on failure.
void send(Connection& c, const ApiEndpoint& e, const std::string& method, const std::string& target,
          const json::value* body, const std::string* raw = nullptr,
          const char* raw_type = nullptr) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, e.server.empty() ? std::string("elafrosd") : c.host());
  req.set(http::field::user_agent, "elafros");
  if (!e.token.empty()) req.set(http::field::authorization, "Bearer " + e.token);
  if (body) {
    req.set(http::field::content_type, "application/json");
    req.body() = json::serialize(*body);
  } else if (raw) {
    req.set(http::field::content_type, raw_type);
    req.body() = *raw;
  }
  req.prepare_payload();
  if (e.debug) {
    std::cerr << fmt::format("> {} {}{}\n", method,
                             e.server.empty() ? "unix://" + e.socket : e.server, target);
    if (!e.token.empty()) std::cerr << "> Authorization: " << redacted(e.token) << "\n";
    if (!req.body().empty() && !raw) std::cerr << "> " << req.body() << "\n";
  }
  boost::system::error_code ec;
  c.write(req, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("sending the request to elafrosd failed: {}", ec.message()));
}

}  // namespace

HttpAnswer post_url(const std::string& url,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::string& body) {
  if (url.rfind("http://", 0) != 0)
    throw std::runtime_error(fmt::format("\"{}\" is not an http:// URL", url));
  std::string rest = url.substr(7);
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string target = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string host = authority, port = "80";
  if (auto colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  bool local = host == "localhost" ||
               (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0);
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(local ? "127.0.0.1" : host, port, ec);
  asio::ip::tcp::socket socket(io);
  if (!ec) asio::connect(socket, endpoints, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot reach {}: {}", url, ec.message()));
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, authority);
  req.set(http::field::user_agent, "elafros");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::write(socket, req, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::read(socket, buffer, res, ec);
  if (ec) throw std::runtime_error(fmt::format("sending to {} failed: {}", url, ec.message()));
  return {static_cast<int>(res.result_int()), res.body()};
}

std::string ApiEndpoint::where() const {
  return server.empty() ? "unix://" + socket : server;
}

ApiResponse ApiClient::upload(const std::string& target, const char* content_type,
                              const std::string& body) const {
  return exchange("POST", target, nullptr, &body, content_type);
}

ApiResponse ApiClient::request(const std::string& method, const std::string& target,
                               const json::value* body) const {
  return exchange(method, target, body, nullptr, nullptr);
}

ApiResponse ApiClient::exchange(const std::string& method, const std::string& target,
                                const json::value* body, const std::string* raw,
                                const char* raw_type) const {
  Connection c(endpoint_);
  send(c, endpoint_, method, target, body, raw, raw_type);
  boost::system::error_code ec;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 << 20);
  c.read(buffer, parser, ec);
  if (ec) throw std::runtime_error(answer_error(ec));
  ApiResponse out;
  out.status = parser.get().result_int();
  if (endpoint_.debug) std::cerr << "< " << out.status << "\n";
  json::value v = json::parse(parser.get().body(), ec);
  out.body = ec ? json::value(json::string(parser.get().body())) : std::move(v);
  return out;
}

int ApiClient::get_stream(const std::string& target,
                          const std::function<void(const json::value&)>& on_line) const {
  return stream("GET", target, json::value(), on_line);
}

int ApiClient::stream(const std::string& method, const std::string& target, const json::value& body,
                      const std::function<void(const json::value&)>& on_line) const {
  return stream_until(method, target, body, [&on_line](const json::value& v) {
    on_line(v);
    return true;
  });
}

int ApiClient::get_until(const std::string& target,
                         const std::function<bool(const json::value&)>& on_line) const {
  return stream_until("GET", target, json::value(), on_line);
}

int ApiClient::stream_until(const std::string& method, const std::string& target,
                            const json::value& body,
                            const std::function<bool(const json::value&)>& on_line) const {
  Connection c(endpoint_);
  send(c, endpoint_, method, target, body.is_null() ? nullptr : &body);
  boost::system::error_code ec;
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  std::string pending;
  bool more = true;
  auto emit = [&](std::string_view line) {
    if (line.empty() || !more) return;
    boost::system::error_code pec;
    json::value v = json::parse(line, pec);
    more = on_line(pec ? json::value(json::string(line)) : v);
  };
  char chunk[16 * 1024];
  while (!parser.is_done() && more) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    c.read_some(buffer, parser, ec);  // what has arrived: lines show as they come
    if (ec == http::error::need_buffer) ec = {};
    if (ec) throw std::runtime_error(answer_error(ec));
    pending.append(chunk, sizeof(chunk) - parser.get().body().size);
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      emit(std::string_view(pending).substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (more) emit(pending);
  return static_cast<int>(parser.get().result_int());
}

json::value ApiClient::call(const std::string& method, const std::string& target,
                            const json::value* body) const {
  return body_or_throw(request(method, target, body));
}

json::value ApiClient::body_or_throw(ApiResponse r) {
  if (r.status >= 200 && r.status < 300) return std::move(r.body);
  std::string message = fmt::format("elafrosd answered {}", r.status);
  if (const auto* o = r.body.if_object())  // a Kubernetes Status
    if (const auto* m = o->if_contains("message"); m && m->is_string())
      message = std::string(m->get_string());
  throw std::runtime_error(message);
}

}  // namespace elafros::cli
