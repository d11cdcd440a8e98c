#include "api_credentials.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "api/private_file.hpp"

namespace fs = std::filesystem;

namespace elafros {
namespace {

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
    if (auto r = write_private_file(dir + "/" + file, data); !r) return r;
  return {};
}

}  // namespace

Result<std::unique_ptr<ApiCredentials>> ApiCredentials::open(
    const std::string& data_dir, const std::string& cert_file, const std::string& key_file,
    const std::vector<std::string>& hosts) {
  auto c = std::make_unique<ApiCredentials>();
  std::error_code ec;
  std::string tls = data_dir + "/tls";
  fs::create_directories(tls, ec);
  ::chmod(tls.c_str(), 0700);
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
  return c;
}

std::string ApiCredentials::ca_pem() const {
  return read_whole_file(ca_file_);
}

}  // namespace elafros
