#include "proxy/proxy_tls.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/ssl/context.hpp>
#include <filesystem>

#include "api/private_file.hpp"
#include "proxy/client_stream.hpp"

namespace fs = std::filesystem;

namespace elafros {
namespace {

// How many certificates the local CA's issue stay in memory; past it they are issued again.
constexpr std::size_t kIssuedKept = 4096;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "malformed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// h2 first: the client's list is searched for ours, in our order.
int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                const unsigned char* in, unsigned int inlen, void* /*arg*/) {
  static const unsigned char kOffered[] = "\x02h2\x08http/1.1";
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kOffered, sizeof kOffered - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // nothing in common: no ALPN, HTTP/1.1
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

void secure_defaults(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
}

// A server context for one certificate chain and key, or what is wrong with them.
Result<std::shared_ptr<SSL_CTX>> context_of(const PemPair& pair) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Error::internal("OpenSSL cannot make a TLS context: " + openssl_error());
  secure_defaults(ctx.get());
  ERR_clear_error();
  BIO* bio = BIO_new_mem_buf(pair.cert.data(), static_cast<int>(pair.cert.size()));
  X509* leaf = PEM_read_bio_X509_AUX(bio, nullptr, nullptr, nullptr);
  if (!leaf) {
    BIO_free(bio);
    return Error::invalid("the certificate is not PEM (-----BEGIN CERTIFICATE-----): " +
                          openssl_error());
  }
  int used = SSL_CTX_use_certificate(ctx.get(), leaf);
  X509_free(leaf);
  if (used != 1) {
    BIO_free(bio);
    return Error::invalid("the certificate cannot be used: " + openssl_error());
  }
  while (X509* more = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr))
    SSL_CTX_add0_chain_cert(ctx.get(), more);  // the chain owns it
  ERR_clear_error();                           // the end of the chain reads as an error
  BIO_free(bio);
  bio = BIO_new_mem_buf(pair.key.data(), static_cast<int>(pair.key.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key)
    return Error::invalid("the key is not an unencrypted PEM private key: " + openssl_error());
  used = SSL_CTX_use_PrivateKey(ctx.get(), key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(ctx.get()) != 1)
    return Error::invalid("the key is not the certificate's: " + openssl_error());
  return ctx;
}

}  // namespace

std::string ProxyCertificates::problem(const PemPair& pair) {
  auto ctx = context_of(pair);
  return ctx ? std::string() : ctx.error().message;
}

ProxyCertificates::ProxyCertificates(Options options) : options_(std::move(options)) {}
ProxyCertificates::~ProxyCertificates() = default;

Result<std::unique_ptr<ProxyCertificates>> ProxyCertificates::open(Options options) {
  if (!options.ca) return Error::internal("the proxy's certificates need the local CA");
  std::unique_ptr<ProxyCertificates> c(new ProxyCertificates(std::move(options)));
  if (!c->options_.cert_dir.empty()) {
    std::error_code ec;
    if (!fs::is_directory(c->options_.cert_dir, ec))
      return Error::invalid(fmt::format(
          "tls-cert-dir: {} is not a directory; make it, with HOST.crt and HOST.key for each "
          "host, or leave the key out for certificates from the local CA",
          c->options_.cert_dir));
    for (const auto& entry : fs::directory_iterator(c->options_.cert_dir, ec)) {
      const std::string file = entry.path().filename().string();
      if (entry.path().extension() != ".crt") continue;
      std::string host = lower(file.substr(0, file.size() - 4));
      std::string key_file =
          entry.path().parent_path() / (file.substr(0, file.size() - 4) + ".key");
      if (!fs::exists(key_file, ec))
        return Error::invalid(
            fmt::format("tls-cert-dir: {} has no key beside it; put its private key in {}",
                        entry.path().string(), key_file));
      PemPair pair{read_whole_file(entry.path().string()), read_whole_file(key_file)};
      auto ctx = context_of(pair);
      if (!ctx)
        return Error::invalid(fmt::format("tls-cert-dir: {} and {}: {}", entry.path().string(),
                                          key_file, ctx.error().message));
      if (host.rfind("*.", 0) == 0 || host.rfind("_.", 0) == 0)
        c->wildcards_[host.substr(1)] = std::move(*ctx);
      else
        c->files_[host] = std::move(*ctx);
    }
    if (ec)
      return Error::unavailable(
          fmt::format("tls-cert-dir: cannot read {}: {}", c->options_.cert_dir, ec.message()));
  }
  auto fallback = c->options_.ca->issue({"localhost", "127.0.0.1", "::1"});
  if (!fallback) return fallback.error();
  c->context_ = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* base = c->context_->native_handle();
  secure_defaults(base);
  boost::system::error_code ec;
  c->context_->use_certificate_chain(boost::asio::buffer(fallback->cert), ec);
  if (!ec)
    c->context_->use_private_key(boost::asio::buffer(fallback->key), boost::asio::ssl::context::pem,
                                 ec);
  if (ec) return Error::internal("the proxy's default certificate: " + ec.message());
  SSL_CTX_set_tlsext_servername_callback(base, &ProxyCertificates::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(base, c.get());
  return c;
}

boost::asio::ssl::context& ProxyCertificates::context() {
  return *context_;
}

void ProxyCertificates::publish_mapped(std::shared_ptr<const MappedCertificates> mapped) {
  mapped_.store(std::move(mapped), std::memory_order_release);
}

int ProxyCertificates::on_server_name(SSL* ssl, int* /*alert*/, void* arg) {
  auto* self = static_cast<ProxyCertificates*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  std::shared_ptr<SSL_CTX> ctx = self->for_host(lower(name));
  // The connection holds its own reference from here: a context dropped from a cache later
  // stays alive as long as connections use it.
  if (ctx) SSL_set_SSL_CTX(ssl, ctx.get());
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<SSL_CTX> ProxyCertificates::for_host(std::string host) {
  if (auto it = files_.find(host); it != files_.end()) return it->second;
  auto mapped = mapped_.load(std::memory_order_acquire);
  if (mapped != mapped_seen_) {
    mapped_cache_.clear();
    mapped_seen_ = mapped;
  }
  if (auto it = mapped_cache_.find(host); it != mapped_cache_.end()) return it->second;
  if (mapped) {
    if (auto it = mapped->find(host); it != mapped->end()) {
      auto ctx = context_of(it->second);  // checked when published: a failure here is rare
      if (ctx) {
        mapped_cache_[host] = *ctx;
        return *ctx;
      }
      spdlog::warn("the certificate for {} cannot be used: {}", host, ctx.error().message);
    }
  }
  if (auto dot = host.find('.'); dot != std::string::npos)
    if (auto it = wildcards_.find(host.substr(dot)); it != wildcards_.end()) return it->second;
  if (auto it = issued_.find(host); it != issued_.end()) return it->second;
  bool served = host == options_.ingress_host ||
                (options_.routes && options_.routes->load()->find(host) != nullptr);
  if (!served) return nullptr;
  auto pair = options_.ca->issue({host});
  if (!pair) return nullptr;
  auto ctx = context_of(*pair);
  if (!ctx) return nullptr;
  if (issued_.size() >= kIssuedKept) issued_.clear();
  issued_[host] = *ctx;
  return *ctx;
}

// --- ClientStream's TLS parts ----------------------------------------------------------------

std::string_view ClientStream::alpn() const {
  if (!tls_) return {};
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(const_cast<ClientStream*>(this)->tls_->native_handle(), &data, &size);
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

std::string_view ClientStream::server_name() const {
  if (!tls_) return {};
  const char* name = SSL_get_servername(const_cast<ClientStream*>(this)->tls_->native_handle(),
                                        TLSEXT_NAMETYPE_host_name);
  return name ? std::string_view(name) : std::string_view();
}

boost::asio::awaitable<void> ClientStream::close_send() {
  boost::system::error_code ec;
  if (!tls_) {
    socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    co_return;
  }
  next_layer().expires_after(std::chrono::seconds(2));
  std::tie(ec) = co_await tls_->async_shutdown(boost::asio::as_tuple(boost::asio::use_awaitable));
  next_layer().expires_never();
}

void offer_h2(SSL_CTX* ctx) {
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
}

}  // namespace elafros
