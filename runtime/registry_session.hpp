#pragma once
// The registry client's internals (runtime/ only: registry_client.cpp pulls, registry_push.cpp
// pushes): one HTTP/1.1 connection with deadlines, a session that authorizes (Basic, or a
// Bearer token from the challenge's realm) and follows redirects, and helpers. Beast-heavy:
// include it in those two files only.

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url.hpp>
#include <filesystem>
#include <map>
#include <optional>

#include "atomic_file.hpp"
#include "elafros/errno_text.hpp"
#include "registry_client.hpp"
#include "registry_credentials.hpp"

namespace elafros::registry {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace urls = boost::urls;
namespace fs = std::filesystem;

inline constexpr const char* kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::size_t kMaxDocument = 4 << 20;  // manifests, tokens, error bodies
inline constexpr int kMaxRedirects = 5;

inline std::string host_of(const std::string& host_port) {
  if (!host_port.empty() && host_port.front() == '[')
    return host_port.substr(1, host_port.find(']') - 1);
  return host_port.substr(0, host_port.rfind(':'));
}

inline std::string port_of(const std::string& host_port) {
  auto bracket = host_port.find(']');
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) return "";
  return host_port.substr(colon + 1);
}

inline bool is_loopback(const std::string& host_port) {
  std::string h = host_of(host_port);
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "::1";
}

inline std::string host_architecture() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  return m == "x86_64" ? "amd64" : m == "aarch64" ? "arm64" : m;
}

// Where a connection goes. `authority` is HOST[:PORT] as the Host header and certs.d name it.
struct Endpoint {
  std::string host;
  std::string port;
  bool tls = true;
  bool verify = true;
  std::string authority;
  std::string label;  // for messages: "registry docker.io", "the token service auth.docker.io"
  std::string key() const { return fmt::format("{}|{}|{}", tls, verify, authority); }
};

struct Response {
  int status = 0;
  http::response_header<> header;
  std::string body;  // unless it was streamed to a BlobSink
};

// Where a blob's body goes: a file, hashed on the way, never more than `limit` bytes.
struct BlobSink {
  int fd = -1;
  EVP_MD_CTX* sha = nullptr;
  std::int64_t limit = 0;
  std::int64_t written = 0;
  std::function<void(std::int64_t)> on_bytes;
};

// The registry's own words from an error body ({"errors":[{"code","message"}]}), if any.
inline std::string registry_message(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return "";
  const auto* errors = v.get_object().if_contains("errors");
  if (!errors || !errors->is_array() || errors->get_array().empty()) return "";
  const auto& first = errors->get_array()[0];
  if (!first.is_object()) return "";
  std::string out;
  if (const auto* c = first.get_object().if_contains("code"); c && c->is_string())
    out = std::string(c->get_string());
  if (const auto* m = first.get_object().if_contains("message"); m && m->is_string())
    out += (out.empty() ? "" : ": ") + std::string(m->get_string());
  return out.size() > 300 ? out.substr(0, 300) + "…" : out;
}

// One HTTP/1.1 connection, plain or TLS, used synchronously but with deadlines: every operation
// runs asynchronously on a private io_context, so a timeout can interrupt it.
class Connection {
 public:
  Connection(Endpoint endpoint, const RegistryClient& client)
      : endpoint_(std::move(endpoint)), options_(client.options()), client_(client) {
    client_.track(&io_, true);
  }
  ~Connection() {
    close();
    client_.track(&io_, false);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }

  // Connects (and handshakes). Sets `handshake_failed` when TCP worked but TLS did not.
  Result<void> open(bool* handshake_failed = nullptr) {
    close();
    boost::system::error_code ec;
    asio::ip::tcp::resolver resolver(io_);
    auto results = resolver.resolve(endpoint_.host, endpoint_.port, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("{} cannot be resolved: {}", endpoint_.label, ec.message()));
    auto tcp = std::make_unique<beast::tcp_stream>(io_);
    tcp->expires_after(options_.timeout);
    ec = wait([&](auto handler) { tcp->async_connect(results, std::move(handler)); });
    if (ec)
      return Error::unavailable(
          fmt::format("{} cannot be reached: {}", endpoint_.label, describe(ec)));
    if (!endpoint_.tls) {
      plain_ = std::move(tcp);
      return {};
    }
    ssl_ = std::make_unique<ssl::context>(ssl::context::tls_client);
    ssl_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (endpoint_.verify) {
      ssl_->set_default_verify_paths(ec);
      std::error_code fec;
      std::string dir = options_.certs_dir + "/" + endpoint_.authority;
      if (!options_.certs_dir.empty() && fs::is_directory(dir, fec))
        for (const auto& f : fs::directory_iterator(dir, fec))
          if (f.path().extension() == ".crt") {
            ssl_->load_verify_file(f.path().string(), ec);
            if (ec)
              return Error::invalid(fmt::format("the CA certificate {} cannot be loaded: {}",
                                                f.path().string(), ec.message()));
          }
    }
    tls_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*tcp), *ssl_);
    if (endpoint_.verify) {
      tls_->set_verify_mode(ssl::verify_peer);
      tls_->set_verify_callback(ssl::host_name_verification(endpoint_.host));
    } else {
      tls_->set_verify_mode(ssl::verify_none);
    }
    boost::system::error_code addr_ec;
    asio::ip::make_address(endpoint_.host, addr_ec);
    if (addr_ec) ::SSL_set_tlsext_host_name(tls_->native_handle(), endpoint_.host.c_str());
    beast::get_lowest_layer(*tls_).expires_after(options_.timeout);
    ec = wait(
        [&](auto handler) { tls_->async_handshake(ssl::stream_base::client, std::move(handler)); });
    if (ec) {
      tls_.reset();
      if (handshake_failed) *handshake_failed = true;
      std::string hint =
          endpoint_.verify && ec.message().find("wrong version number") != std::string::npos
              ? fmt::format(
                    "; {} seems to speak plain HTTP, which is refused off loopback; list it "
                    "under insecure-registries in the daemon config to allow that",
                    endpoint_.authority)
          : endpoint_.verify
              ? fmt::format(
                    "; if the registry uses a private CA, put its certificate in {}/{}/ca.crt, "
                    "or list {} under insecure-registries in the daemon config",
                    options_.certs_dir.empty() ? "/etc/elafros/certs.d" : options_.certs_dir,
                    endpoint_.authority, endpoint_.authority)
              : "";
      return Error::unavailable(fmt::format("the TLS handshake with {} failed: {}{}",
                                            endpoint_.label, describe(ec), hint));
    }
    return {};
  }

  void close() {
    plain_.reset();
    tls_.reset();
    buffer_.clear();
  }

  // GET `target`. A 200 body goes to `sink` when given; any other body is read into memory.
  Result<Response> get(const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& fields,
                       BlobSink* sink) {
    for (int attempt = 0;; ++attempt) {
      bool reused = plain_ || tls_;
      if (!reused)
        if (auto r = open(); !r) return r.error();
      http::request<http::empty_body> req{http::verb::get, target, 11};
      req.set(http::field::host, endpoint_.authority);
      req.set(http::field::user_agent, "elafros");
      for (const auto& [k, v] : fields) req.set(k, v);
      expire();
      auto ec = wait([&](auto handler) {
        with_stream([&](auto& s) { http::async_write(s, req, std::move(handler)); });
      });
      http::response_parser<http::empty_body> head;
      head.body_limit(boost::none);
      if (!ec) {
        expire();
        ec = wait([&](auto handler) {
          with_stream(
              [&](auto& s) { http::async_read_header(s, buffer_, head, std::move(handler)); });
        });
      }
      if (ec) {
        close();
        // A pooled connection the server closed meanwhile: once more on a fresh one.
        if (reused && attempt == 0 && ec != beast::error::timeout) continue;
        return Error::unavailable(
            fmt::format("GET {} from {} failed: {}", target, endpoint_.label, describe(ec)));
      }
      Response res;
      res.status = static_cast<int>(head.get().result_int());
      res.header = head.get().base();
      bool keep = head.get().keep_alive();
      if (sink && res.status == 200) {
        http::response_parser<http::buffer_body> p(std::move(head));
        std::vector<char> chunk(64 * 1024);
        while (!p.is_done()) {
          p.get().body().data = chunk.data();
          p.get().body().size = chunk.size();
          expire();
          ec = wait([&](auto handler) {
            with_stream([&](auto& s) { http::async_read(s, buffer_, p, std::move(handler)); });
          });
          if (ec == http::error::need_buffer) ec = {};
          if (ec) {
            close();
            return Error::unavailable(fmt::format("downloading {} from {} failed: {}", target,
                                                  endpoint_.label, describe(ec)));
          }
          auto n = static_cast<std::int64_t>(chunk.size() - p.get().body().size);
          if (sink->written + n > sink->limit) {
            close();
            return Error::invalid(
                fmt::format("{} from {} is larger than the {} bytes its descriptor gives", target,
                            endpoint_.label, sink->limit));
          }
          if (!write_all(sink->fd, std::string_view(chunk.data(), static_cast<std::size_t>(n)))) {
            int err = errno;
            close();
            return Error::internal(
                fmt::format("writing a downloaded blob failed: {}", errno_text(err)));
          }
          EVP_DigestUpdate(sink->sha, chunk.data(), static_cast<std::size_t>(n));
          sink->written += n;
          if (sink->on_bytes) sink->on_bytes(sink->written);
        }
        keep = keep && p.get().keep_alive();
      } else if (!head.is_done()) {
        http::response_parser<http::string_body> p(std::move(head));
        p.body_limit(kMaxDocument);
        expire();
        ec = wait([&](auto handler) {
          with_stream([&](auto& s) { http::async_read(s, buffer_, p, std::move(handler)); });
        });
        if (ec) {
          close();
          return Error::unavailable(fmt::format("reading the answer to GET {} from {} failed: {}",
                                                target, endpoint_.label, describe(ec)));
        }
        res.body = std::move(p.get().body());
        keep = keep && p.get().keep_alive();
      }
      if (!keep) close();
      return res;
    }
  }

  // Any other request (HEAD, POST, PUT, PATCH), its body given whole, the answer read into
  // memory (a HEAD's has none).
  Result<Response> send(http::verb verb, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& fields,
                        const std::string& body, const char* content_type) {
    for (int attempt = 0;; ++attempt) {
      bool reused = plain_ || tls_;
      if (!reused)
        if (auto r = open(); !r) return r.error();
      http::request<http::string_body> req{verb, target, 11};
      req.set(http::field::host, endpoint_.authority);
      req.set(http::field::user_agent, "elafros");
      for (const auto& [k, v] : fields) req.set(k, v);
      if (content_type) req.set(http::field::content_type, content_type);
      req.body() = body;
      req.prepare_payload();
      if (verb == http::verb::post || verb == http::verb::put || verb == http::verb::patch)
        req.content_length(body.size());
      expire();
      auto ec = wait([&](auto handler) {
        with_stream([&](auto& s) { http::async_write(s, req, std::move(handler)); });
      });
      http::response_parser<http::string_body> p;
      p.body_limit(kMaxDocument);
      if (verb == http::verb::head) p.skip(true);
      if (!ec) {
        expire();
        ec = wait([&](auto handler) {
          with_stream([&](auto& s) { http::async_read(s, buffer_, p, std::move(handler)); });
        });
      }
      if (ec) {
        close();
        // A pooled connection the server closed meanwhile: once more on a fresh one.
        if (reused && attempt == 0 && ec != beast::error::timeout) continue;
        return Error::unavailable(fmt::format("{} {} to {} failed: {}",
                                              std::string(http::to_string(verb)), target,
                                              endpoint_.label, describe(ec)));
      }
      Response res;
      res.status = static_cast<int>(p.get().result_int());
      res.header = p.get().base();
      res.body = std::move(p.get().body());
      if (!p.get().keep_alive()) close();
      return res;
    }
  }

 private:
  std::string describe(const boost::system::error_code& ec) const {
    if (ec == asio::error::operation_aborted && client_.cancelled())
      return "cancelled: the daemon is stopping";
    if (ec == beast::error::timeout)
      return fmt::format("no answer within {} s (the daemon's registry-timeout)",
                         options_.timeout.count());
    return ec.message();
  }

  void expire() {
    if (plain_) plain_->expires_after(options_.timeout);
    if (tls_) beast::get_lowest_layer(*tls_).expires_after(options_.timeout);
  }

  template <class F>
  void with_stream(F&& f) {
    if (tls_)
      f(*tls_);
    else
      f(*plain_);
  }

  // Starts an asynchronous operation and runs the private io_context until it completes.
  template <class Initiate>
  boost::system::error_code wait(Initiate&& initiate) {
    if (client_.cancelled()) return asio::error::operation_aborted;
    boost::system::error_code result = asio::error::would_block;
    initiate([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    io_.restart();
    io_.run();
    if (result == asio::error::would_block) {
      // cancel() stopped the io_context mid-operation: abandon the connection.
      plain_.reset();
      tls_.reset();
      return asio::error::operation_aborted;
    }
    return result;
  }

  Endpoint endpoint_;
  const RegistryOptions& options_;
  const RegistryClient& client_;
  asio::io_context io_;
  std::unique_ptr<ssl::context> ssl_;
  std::unique_ptr<beast::tcp_stream> plain_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_;
  beast::flat_buffer buffer_;
};

// A WWW-Authenticate challenge: `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
struct Challenge {
  std::string scheme;  // lowercase
  std::map<std::string, std::string> params;
};

inline std::optional<Challenge> parse_challenge(std::string_view text) {
  Challenge c;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == ',')) ++i;
  };
  auto token = [&] {
    std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != ',' && text[i] != '=')
      ++i;
    return std::string(text.substr(start, i - start));
  };
  skip();
  c.scheme = token();
  for (auto& ch : c.scheme) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (c.scheme.empty()) return std::nullopt;
  for (int guard = 0; guard < 32; ++guard) {
    skip();
    if (i >= text.size()) break;
    std::string key = token();
    for (auto& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (i >= text.size() || text[i] != '=') break;
    ++i;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value += text[i];
      }
      ++i;
    } else {
      value = token();
    }
    c.params[key] = value;
  }
  return c;
}

// One pull (or login check): the registry's connections, its auth and where redirects lead.
class Session {
 public:
  // `actions`: the token scope asked for when the challenge names none ("pull", "pull,push").
  Session(const RegistryClient& client, std::string registry, std::string repository,
          std::optional<RegistryCredentials> credentials, std::string actions = "pull")
      : client_(client),
        registry_(std::move(registry)),
        repository_(std::move(repository)),
        credentials_(std::move(credentials)),
        actions_(std::move(actions)) {}

  // GET a path of the registry's API, authorizing when challenged and following redirects.
  Result<Response> get(const std::string& path, const char* accept, BlobSink* sink) {
    auto base = registry_endpoint();
    if (!base) return base.error();
    bool authorized_once = false;
    for (int attempt = 0;; ++attempt) {
      std::vector<std::pair<std::string, std::string>> fields;
      if (accept) fields.emplace_back("Accept", accept);
      if (!authorization_.empty()) fields.emplace_back("Authorization", authorization_);
      auto res = connection(*base).get(path, fields, sink);
      if (!res) return res.error();
      if (res->status == 401 && !authorized_once) {
        authorized_once = true;
        if (auto r = authorize(std::string(res->header[http::field::www_authenticate])); !r)
          return r.error();
        continue;
      }
      if (res->status == 401 || res->status == 403) return refused(res->status, *res);
      return follow(std::move(*res), path, accept, sink);
    }
  }

  // A request other than GET to a path of the registry, or to a URL it gave (an upload's
  // Location), authorizing when challenged. Redirects are not followed.
  Result<Response> send(http::verb verb, const std::string& path_or_url, const std::string& body,
                        const char* content_type,
                        const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    auto base = registry_endpoint();
    if (!base) return base.error();
    Endpoint ep = *base;
    std::string target = path_or_url;
    if (path_or_url.rfind("http://", 0) == 0 || path_or_url.rfind("https://", 0) == 0 ||
        (!path_or_url.empty() && path_or_url[0] != '/')) {
      auto next = resolve_url(*base, "/v2/", path_or_url);
      if (!next) return next.error();
      ep = next->first;
      target = next->second;
    }
    bool authorized_once = false;
    for (;;) {
      std::vector<std::pair<std::string, std::string>> fields = extra;
      if (!authorization_.empty() && ep.authority == base->authority)
        fields.emplace_back("Authorization", authorization_);
      auto res = connection(ep).send(verb, target, fields, body, content_type);
      if (!res) return res.error();
      if (res->status == 401 && !authorized_once) {
        authorized_once = true;
        if (auto r = authorize(std::string(res->header[http::field::www_authenticate])); !r)
          return r.error();
        continue;
      }
      if (res->status == 401 || res->status == 403) return refused(res->status, *res, "push");
      return res;
    }
  }

  Error refused(int status, const Response& res, const char* right = "pull") const {
    std::string said = registry_message(res.body);
    std::string detail = said.empty() ? "" : fmt::format(" ({})", said);
    if (status == 403)
      return Error::precondition(fmt::format(
          "registry {} denied access (403){}; the account {} may lack {} rights", registry_, detail,
          credentials_ ? "\"" + credentials_->username + "\"" : "(anonymous)", right));
    if (credentials_)
      return Error::precondition(fmt::format(
          "registry {} refused the login of \"{}\" (401){}; check it, then run 'elafros registry "
          "login {}' again",
          registry_, credentials_->username, detail, registry_));
    return Error::precondition(fmt::format(
        "registry {} needs a login (401){}: the repository may be private or may not exist; run "
        "'elafros registry login {} --username USER --password-stdin'",
        registry_, detail, registry_));
  }

  const std::string& registry() const { return registry_; }

 private:
  // Follows 301/302/303/307/308 (blob storage often lives elsewhere). The Authorization header
  // goes only to the registry itself.
  Result<Response> follow(Response res, const std::string& path, const char* accept,
                          BlobSink* sink) {
    Endpoint current = *endpoint_;
    std::string target = path;
    for (int hops = 0; hops < kMaxRedirects; ++hops) {
      int s = res.status;
      if (s != 301 && s != 302 && s != 303 && s != 307 && s != 308) return res;
      std::string location(res.header[http::field::location]);
      auto next = resolve_url(current, target, location);
      if (!next) return next.error();
      current = next->first;
      target = next->second;
      std::vector<std::pair<std::string, std::string>> fields;
      if (accept) fields.emplace_back("Accept", accept);
      if (current.authority == endpoint_->authority && current.tls == endpoint_->tls &&
          !authorization_.empty())
        fields.emplace_back("Authorization", authorization_);
      auto r = connection(current).get(target, fields, sink);
      if (!r) return r.error();
      res = std::move(*r);
    }
    return Error::unavailable(
        fmt::format("registry {} redirected more than {} times", registry_, kMaxRedirects));
  }

  // An absolute or relative URL → endpoint and target. HTTPS is verified unless the host is
  // relaxed; plain HTTP only to relaxed hosts.
  Result<std::pair<Endpoint, std::string>> resolve_url(const Endpoint& from,
                                                       const std::string& from_target,
                                                       const std::string& location) {
    auto ref = urls::parse_uri_reference(location);
    if (!ref)
      return Error::unavailable(fmt::format("registry {} redirected to an invalid URL", registry_));
    urls::url base(
        fmt::format("{}://{}{}", from.tls ? "https" : "http", from.authority, from_target));
    urls::url resolved;
    if (auto r = urls::resolve(base, *ref, resolved); r.has_error())
      return Error::unavailable(fmt::format("registry {} redirected to an invalid URL", registry_));
    auto ep = endpoint_for(resolved, "the redirect target");
    if (!ep) return ep.error();
    std::string target(resolved.encoded_target());
    if (target.empty()) target = "/";
    return std::make_pair(*ep, target);
  }

  Result<Endpoint> endpoint_for(const urls::url_view& u, const char* role) {
    Endpoint ep;
    std::string scheme(u.scheme());
    if (scheme != "https" && scheme != "http")
      return Error::unavailable(
          fmt::format("registry {} sent a URL with scheme \"{}\"; only http and https work",
                      registry_, scheme));
    ep.host = std::string(u.encoded_host());
    if (!ep.host.empty() && ep.host.front() == '[') ep.host = ep.host.substr(1, ep.host.size() - 2);
    ep.port = u.has_port() ? std::string(u.port()) : (scheme == "https" ? "443" : "80");
    ep.authority = std::string(u.encoded_host_and_port());
    ep.label = fmt::format("{} {}", role, ep.authority);
    ep.tls = scheme == "https";
    bool relaxed = client_.relaxed(ep.authority);
    ep.verify = !relaxed;
    if (!ep.tls && !relaxed)
      return Error::unavailable(fmt::format(
          "registry {} sent a plain-HTTP URL for {}; plain HTTP is refused for hosts that are not "
          "loopback or listed under insecure-registries",
          registry_, ep.authority));
    return ep;
  }

  // The registry's API endpoint: TLS, or for relaxed registries TLS without verification and
  // then plain HTTP, as Docker does for insecure registries.
  Result<Endpoint> registry_endpoint() {
    if (endpoint_) return *endpoint_;
    std::string authority = registry_ == "docker.io" ? "registry-1.docker.io" : registry_;
    Endpoint ep;
    ep.host = host_of(authority);
    ep.authority = authority;
    ep.label = "registry " + registry_;
    std::string port = port_of(authority);
    bool relaxed = client_.relaxed(registry_);
    ep.port = port.empty() ? "443" : port;
    ep.verify = !relaxed;
    if (relaxed) {
      auto conn = std::make_unique<Connection>(ep, client_);
      bool handshake_failed = false;
      auto opened = conn->open(&handshake_failed);
      if (!opened && (handshake_failed || port.empty())) {
        ep.tls = false;
        ep.port = port.empty() ? "80" : port;
      } else if (!opened) {
        return opened.error();
      } else {
        connections_[ep.key()] = std::move(conn);
      }
    }
    endpoint_ = ep;
    return ep;
  }

  Connection& connection(const Endpoint& ep) {
    auto& slot = connections_[ep.key()];
    if (!slot) slot = std::make_unique<Connection>(ep, client_);
    return *slot;
  }

  // Answers a 401's challenge: Basic with the stored login, or a token from the Bearer realm.
  Result<void> authorize(const std::string& header) {
    auto challenge = parse_challenge(header);
    std::string basic =
        credentials_
            ? "Basic " + base64_encode(credentials_->username + ":" + credentials_->password)
            : "";
    if (!challenge || (challenge->scheme != "basic" && challenge->scheme != "bearer"))
      return Error::precondition(fmt::format(
          "registry {} asks for an authentication scheme elafros does not speak ({})", registry_,
          header.empty() ? "no WWW-Authenticate header" : header.substr(0, header.find(' '))));
    if (challenge->scheme == "basic") {
      if (!credentials_) {
        Response none;
        return refused(401, none);
      }
      authorization_ = basic;
      return {};
    }
    auto realm_it = challenge->params.find("realm");
    if (realm_it == challenge->params.end())
      return Error::precondition(
          fmt::format("registry {} asks for a token but names no realm", registry_));
    auto parsed = urls::parse_absolute_uri(realm_it->second);
    if (!parsed)
      return Error::precondition(fmt::format(
          "registry {} names a token realm that is not a URL: {}", registry_, realm_it->second));
    urls::url realm(*parsed);
    if (auto s = challenge->params.find("service"); s != challenge->params.end())
      realm.params().append({"service", s->second});
    if (!repository_.empty()) {
      auto scope = challenge->params.find("scope");
      realm.params().append({"scope", scope != challenge->params.end()
                                          ? scope->second
                                          : "repository:" + repository_ + ":" + actions_});
    }
    auto ep = endpoint_for(realm, "the token service");
    if (!ep) return ep.error();
    std::string target(realm.encoded_target());
    std::vector<std::pair<std::string, std::string>> fields;
    if (!basic.empty()) fields.emplace_back("Authorization", basic);
    auto res = connection(*ep).get(target, fields, nullptr);
    if (!res) return res.error();
    if (res->status == 401 || res->status == 403) return refused(res->status, *res);
    if (res->status != 200)
      return Error::unavailable(fmt::format("the token service {} of registry {} answered {}",
                                            ep->authority, registry_, res->status));
    boost::system::error_code ec;
    json::value doc = json::parse(res->body, ec);
    const json::value* token = nullptr;
    if (!ec && doc.is_object()) {
      token = doc.get_object().if_contains("token");
      if (!token || !token->is_string() || token->get_string().empty())
        token = doc.get_object().if_contains("access_token");
    }
    if (!token || !token->is_string() || token->get_string().empty())
      return Error::unavailable(
          fmt::format("the token service {} of registry {} answered without a token", ep->authority,
                      registry_));
    authorization_ = "Bearer " + std::string(token->get_string());
    return {};
  }

  const RegistryClient& client_;
  std::string registry_;
  std::string repository_;
  std::optional<RegistryCredentials> credentials_;
  std::string actions_;
  std::optional<Endpoint> endpoint_;
  std::string authorization_;  // never logged
  std::map<std::string, std::unique_ptr<Connection>> connections_;
};

inline Error status_error(const RegistryReference& ref, const Response& res,
                          const std::string& what) {
  std::string said = registry_message(res.body);
  std::string detail = said.empty() ? "" : fmt::format(" ({})", said);
  if (res.status == 404)
    return Error::not_found(fmt::format("{} not found: registry {} has no {}{}", ref.str(),
                                        ref.registry, what, detail));
  return Error::unavailable(fmt::format("registry {} answered {} for {} of {}{}", ref.registry,
                                        res.status, what, ref.str(), detail));
}

inline std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

inline std::string digest_hex(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

inline Result<void> write_small(const std::string& path, std::string_view content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Error::internal(fmt::format("cannot write {}: {}", path, errno_text(errno)));
  bool ok = write_all(fd, content);
  int err = errno;
  ::close(fd);
  if (!ok) return Error::internal(fmt::format("cannot write {}: {}", path, errno_text(err)));
  return {};
}

inline bool valid_sha256(std::string_view d) {
  if (d.size() != 71 || d.rfind("sha256:", 0) != 0) return false;
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace elafros::registry
