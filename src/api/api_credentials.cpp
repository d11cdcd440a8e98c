#include "api_credentials.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes a file readable by its owner only, atomically.
Result<void> write_private(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::internal(fmt::format("cannot write {}", tmp));
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0)
    return Error::internal(fmt::format("cannot write {} (is the disk full?)", path));
  return {};
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  RAND_bytes(buf.data(), static_cast<int>(buf.size()));
  std::string out;
  for (unsigned char c : buf) out += fmt::format("{:02x}", c);
  return out;
}

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

std::string pem_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

CertPtr make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                  const std::string& san, long days) {
  CertPtr cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  std::string serial = random_hex(8);
  BIGNUM* bn = nullptr;
  BN_hex2bn(&bn, serial.c_str());
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * days);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("elafros"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    add_ext(cert.get(), signer, NID_subject_alt_name, san);
  }
  add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
  X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

// A CA, and a server certificate it signs for `hosts`.
Result<void> generate_tls(const std::string& dir, const std::vector<std::string>& hosts) {
  KeyPtr ca_key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  KeyPtr server_key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!ca_key || !server_key) return Error::internal("generating TLS keys failed (OpenSSL)");
  CertPtr ca = make_cert(ca_key.get(), "elafrosd CA", nullptr, nullptr, true, "", 3650);
  std::string san;
  for (const auto& h : hosts) {
    bool ip =
        h.find_first_not_of("0123456789.") == std::string::npos || h.find(':') != std::string::npos;
    san += (san.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + h;
  }
  CertPtr server = make_cert(server_key.get(), "elafrosd", ca.get(), ca_key.get(), false, san, 825);
  for (const auto& [file, data] :
       std::vector<std::pair<std::string, std::string>>{{"ca.key", pem_of(ca_key.get())},
                                                        {"ca.crt", pem_of(ca.get())},
                                                        {"server.key", pem_of(server_key.get())},
                                                        {"server.crt", pem_of(server.get())}})
    if (auto r = write_private(dir + "/" + file, data); !r) return r;
  return {};
}

}  // namespace

Result<std::unique_ptr<ApiCredentials>> ApiCredentials::open(
    const std::string& data_dir, const std::string& cert_file, const std::string& key_file,
    const std::vector<std::string>& hosts) {
  auto c = std::make_unique<ApiCredentials>();
  std::error_code ec;
  std::string tls = data_dir + "/tls";
  c->dir_ = data_dir + "/tokens";
  fs::create_directories(tls, ec);
  fs::create_directories(c->dir_, ec);
  ::chmod(tls.c_str(), 0700);
  ::chmod(c->dir_.c_str(), 0700);
  if (cert_file.empty() != key_file.empty())
    return Error::invalid("--tls-cert and --tls-key go together: give both, or neither");
  if (!cert_file.empty()) {
    c->cert_file_ = cert_file;
    c->key_file_ = key_file;
    c->ca_file_ = cert_file;
  } else {
    c->cert_file_ = tls + "/server.crt";
    c->key_file_ = tls + "/server.key";
    c->ca_file_ = tls + "/ca.crt";
    if (!fs::exists(c->cert_file_, ec) || !fs::exists(c->key_file_, ec))
      if (auto r = generate_tls(tls, hosts); !r) return r.error();
  }
  std::string key_path = c->dir_ + "/hmac.key";
  if (!fs::exists(key_path, ec))
    if (auto r = write_private(key_path, random_hex(32)); !r) return r.error();
  c->key_ = read_file(key_path);
  if (c->key_.size() < 32)
    return Error::precondition(
        fmt::format("{} is too short to be elafrosd's token key; remove it (every token is then "
                    "invalid, and a new admin token is made)",
                    key_path));
  std::string tokens_path = c->dir_ + "/tokens.json";
  if (fs::exists(tokens_path, ec)) {
    boost::system::error_code jec;
    json::value v = json::parse(read_file(tokens_path), jec);
    if (jec || !v.is_array())
      return Error::precondition(fmt::format("{} is not a JSON array of tokens", tokens_path));
    for (const auto& t : v.get_array()) {
      const json::object* o = t.if_object();
      auto text = [o](const char* key) -> const json::string* {
        const json::value* f = o ? o->if_contains(key) : nullptr;
        return f ? f->if_string() : nullptr;
      };
      const json::value* expires = o ? o->if_contains("expires") : nullptr;
      if (!text("name") || !text("user") || !text("hmac") || !expires || !expires->is_int64())
        return Error::precondition(fmt::format(
            "{} has a token without name, user, hmac and expires; restore it from a backup, or "
            "remove it (every token but a new admin token is then invalid)",
            tokens_path));
      c->tokens_.push_back({std::string(*text("name")), std::string(*text("user")),
                            std::string(*text("hmac")), expires->get_int64()});
    }
  }
  std::string admin_path = c->dir_ + "/admin.token";
  bool have_admin = false;
  for (const auto& t : c->tokens_) have_admin = have_admin || t.name == "admin";
  if (!have_admin || !fs::exists(admin_path, ec)) {
    std::erase_if(c->tokens_, [](const Token& t) { return t.name == "admin"; });
    std::string token = random_hex(32);
    if (auto r = write_private(admin_path, token + "\n"); !r) return r.error();
    c->tokens_.push_back({"admin", "system:admin", c->hmac(token), 0});
    if (auto r = c->save(); !r) return r.error();
  }
  return c;
}

std::string ApiCredentials::hmac(std::string_view token) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(), md, &n);
  std::string out;
  for (unsigned int i = 0; i < n; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

Result<void> ApiCredentials::save() const {
  json::array a;
  for (const auto& t : tokens_)
    a.push_back(
        json::object{{"name", t.name}, {"user", t.user}, {"hmac", t.hmac}, {"expires", t.expires}});
  return write_private(dir_ + "/tokens.json", json::serialize(a) + "\n");
}

std::string ApiCredentials::ca_pem() const {
  return read_file(ca_file_);
}

std::string ApiCredentials::admin_token() const {
  std::string t = read_file(dir_ + "/admin.token");
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

Result<std::string> ApiCredentials::issue(const std::string& name, const std::string& user,
                                          std::chrono::seconds ttl) {
  std::string token = random_hex(32);
  std::int64_t expires = 0;
  if (ttl.count() > 0)
    expires = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch() + ttl)
                  .count();
  std::lock_guard lock(mu_);
  std::erase_if(tokens_, [&](const Token& t) { return t.name == name; });
  tokens_.push_back({name, user, hmac(token), expires});
  if (auto r = save(); !r) return r.error();
  return token;
}

Result<std::string> ApiCredentials::authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.substr(0, kBearer.size()) != kBearer || authorization.size() == kBearer.size())
    return Error{ErrorCode::kUnauthorized,
                 "Unauthorized: send Authorization: Bearer TOKEN ('elafros kubeconfig' prints a "
                 "kubeconfig with the admin token)"};
  std::string mac = hmac(authorization.substr(kBearer.size()));
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::lock_guard lock(mu_);
  for (const auto& t : tokens_) {
    if (t.hmac.size() != mac.size() || CRYPTO_memcmp(t.hmac.data(), mac.data(), mac.size()) != 0)
      continue;
    if (t.expires && t.expires <= now)
      return Error{
          ErrorCode::kUnauthorized,
          fmt::format("Unauthorized: the token \"{}\" has expired; ask for a new one", t.name)};
    return t.user;
  }
  return Error{ErrorCode::kUnauthorized,
               "Unauthorized: the token is not valid; 'elafros kubeconfig' prints a current one"};
}

}  // namespace elafros
