#include "proxy/proxy_tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <catch2/catch.hpp>
#include <fstream>

#include "api/local_ca.hpp"
#include "fixtures/tar_builder.hpp"

using namespace elafros;

namespace {

std::shared_ptr<X509> parse_cert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return std::shared_ptr<X509>(x, X509_free);
}

// Whether `cert` chains to `ca` and is valid for `host`.
bool verifies(const std::string& cert, const std::string& ca, const std::string& host) {
  auto leaf = parse_cert(cert);
  auto root = parse_cert(ca);
  if (!leaf || !root) return false;
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf.get(), nullptr);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host.c_str(), 0);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

// A TLS handshake in memory against the listener's context, as a client sending `sni`: the
// subject CN of the certificate the server presented, and the protocol ALPN chose.
struct Handshake {
  std::string common_name;
  std::string alpn;
};
Handshake handshake(ProxyCertificates& certs, const std::string& sni) {
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(client_ctx);
  SSL* server = SSL_new(certs.context().native_handle());
  BIO *client_bio = nullptr, *server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(server, server_bio, server_bio);
  if (!sni.empty()) SSL_set_tlsext_host_name(client, sni.c_str());
  static const unsigned char kProtos[] = "\x08http/1.1\x02h2";
  SSL_set_alpn_protos(client, kProtos, sizeof kProtos - 1);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  for (int i = 0; i < 20; ++i) {
    int c = SSL_do_handshake(client);
    int s = SSL_do_handshake(server);
    if (c == 1 && s == 1) break;
  }
  Handshake out;
  if (X509* peer = SSL_get1_peer_certificate(client)) {
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    out.common_name = cn;
    X509_free(peer);
  }
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(client, &proto, &len);
  out.alpn.assign(reinterpret_cast<const char*>(proto), len);
  SSL_free(client);
  SSL_free(server);
  SSL_CTX_free(client_ctx);
  ERR_clear_error();
  return out;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("the local CA is made once, kept private, and issues certificates that verify") {
  test::TempDir dir;
  auto ca = LocalCa::open(dir.path() + "/tls");
  REQUIRE(ca.ok());
  struct stat st {};
  REQUIRE(::stat((dir.path() + "/tls/ca.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = LocalCa::open(dir.path() + "/tls");
  REQUIRE(again.ok());
  CHECK(again->cert_pem() == ca->cert_pem());  // the same CA across restarts
  auto issued = ca->issue({"hello.default.localhost"});
  REQUIRE(issued.ok());
  CHECK(verifies(issued->cert, ca->cert_pem(), "hello.default.localhost"));
  CHECK_FALSE(verifies(issued->cert, ca->cert_pem(), "other.default.localhost"));
  auto stranger = LocalCa::open(dir.path() + "/other");
  REQUIRE(stranger.ok());
  CHECK_FALSE(verifies(issued->cert, stranger->cert_pem(), "hello.default.localhost"));

  write(dir.path() + "/tls/ca.crt", "not a certificate");
  auto broken = LocalCa::open(dir.path() + "/tls");
  REQUIRE_FALSE(broken.ok());
  CHECK_THAT(broken.error().message, Catch::Contains("is not a PEM certificate and key"));
}

TEST_CASE("a certificate and key pair is checked before it is served") {
  test::TempDir dir;
  auto ca = LocalCa::open(dir.path());
  REQUIRE(ca.ok());
  auto a = ca->issue({"a.example.test"});
  auto b = ca->issue({"b.example.test"});
  REQUIRE((a.ok() && b.ok()));
  CHECK(ProxyCertificates::problem(*a).empty());
  CHECK_THAT(ProxyCertificates::problem({a->cert, b->key}),
             Catch::Contains("the key is not the certificate's"));
  CHECK_THAT(ProxyCertificates::problem({"garbage", a->key}), Catch::Contains("is not PEM"));
  CHECK_THAT(ProxyCertificates::problem({a->cert, "garbage"}),
             Catch::Contains("not an unencrypted PEM private key"));
}

TEST_CASE("the HTTPS listener picks each host's certificate by SNI, in its order, and offers h2") {
  test::TempDir dir;
  auto ca = LocalCa::open(dir.path() + "/tls");
  REQUIRE(ca.ok());
  std::string certs = dir.path() + "/certs";
  ::mkdir(certs.c_str(), 0700);
  auto exact = ca->issue({"files.example.test"});
  auto wild = ca->issue({"*.wild.example.test"});
  REQUIRE((exact.ok() && wild.ok()));
  write(certs + "/files.example.test.crt", exact->cert);
  write(certs + "/files.example.test.key", exact->key);
  write(certs + "/_.wild.example.test.crt", wild->cert);
  write(certs + "/_.wild.example.test.key", wild->key);

  RoutingSnapshot routes;
  auto table = std::make_shared<RoutingTable>();
  table->add("hello.default.localhost", std::make_shared<ServiceRoute>());
  routes.publish(table);
  auto opened = ProxyCertificates::open({certs, &*ca, &routes, "broker-ingress.localhost"});
  REQUIRE(opened.ok());
  ProxyCertificates& c = **opened;

  CHECK(handshake(c, "files.example.test").common_name == "files.example.test");
  CHECK(handshake(c, "a.wild.example.test").common_name == "*.wild.example.test");
  // One label only: a.b.wild.example.test is not under the wildcard.
  CHECK(handshake(c, "a.b.wild.example.test").common_name == "localhost");
  CHECK(handshake(c, "hello.default.localhost").common_name == "hello.default.localhost");
  CHECK(handshake(c, "broker-ingress.localhost").common_name == "broker-ingress.localhost");
  // A host nothing routes gets the default, not a certificate of its own.
  CHECK(handshake(c, "nobody.default.localhost").common_name == "localhost");
  CHECK(handshake(c, "").common_name == "localhost");
  CHECK(handshake(c, "hello.default.localhost").alpn == "h2");

  // A DomainMapping's certificate wins over the wildcard, not over the directory's exact one.
  auto mapped = std::make_shared<MappedCertificates>();
  auto own = ca->issue({"mapped-own", "a.wild.example.test"});
  auto shadow = ca->issue({"shadow", "files.example.test"});
  REQUIRE((own.ok() && shadow.ok()));
  (*mapped)["a.wild.example.test"] = *own;
  (*mapped)["files.example.test"] = *shadow;
  c.publish_mapped(mapped);
  CHECK(handshake(c, "a.wild.example.test").common_name == "mapped-own");
  CHECK(handshake(c, "files.example.test").common_name == "files.example.test");
  c.publish_mapped(std::make_shared<MappedCertificates>());
  CHECK(handshake(c, "a.wild.example.test").common_name == "*.wild.example.test");
}

TEST_CASE("a certificate directory with a certificate but no key is refused, naming the key") {
  test::TempDir dir;
  auto ca = LocalCa::open(dir.path() + "/tls");
  REQUIRE(ca.ok());
  auto one = ca->issue({"lonely.example.test"});
  REQUIRE(one.ok());
  write(dir.path() + "/lonely.example.test.crt", one->cert);
  auto opened = ProxyCertificates::open({dir.path(), &*ca, nullptr, ""});
  REQUIRE_FALSE(opened.ok());
  CHECK_THAT(opened.error().message, Catch::Contains("lonely.example.test.key"));
  auto missing = ProxyCertificates::open({dir.path() + "/none", &*ca, nullptr, ""});
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("is not a directory"));
}
