#include "api/local_ca.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

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

std::string subject_alt_names(const std::vector<std::string>& hosts) {
  std::string san;
  for (const auto& h : hosts) {
    bool ip =
        h.find_first_not_of("0123456789.") == std::string::npos || h.find(':') != std::string::npos;
    san += (san.empty() ? "" : ",") + std::string(ip ? "IP:" : "DNS:") + h;
  }
  return san;
}

template <class T, class Free>
std::shared_ptr<T> read_pem(const std::string& text, T* (*read)(BIO*, T**, pem_password_cb*, void*),
                            Free free) {
  BIO* bio = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
  T* out = read(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!out) return nullptr;
  return std::shared_ptr<T>(out, free);
}

}  // namespace

Result<LocalCa> LocalCa::open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  ::chmod(dir.c_str(), 0700);
  LocalCa ca;
  ca.cert_file_ = dir + "/ca.crt";
  const std::string key_file = dir + "/ca.key";
  if (!fs::exists(ca.cert_file_, ec) || !fs::exists(key_file, ec)) {
    KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    if (!key) return Error::internal("generating the CA's key failed (OpenSSL)");
    CertPtr cert = make_cert(key.get(), "elafrosd CA", nullptr, nullptr, true, "", 3650);
    if (auto r = write_private_file(key_file, pem_of(key.get())); !r) return r.error();
    if (auto r = write_private_file(ca.cert_file_, pem_of(cert.get())); !r) return r.error();
  }
  ca.cert_ = read_pem<X509>(read_whole_file(ca.cert_file_), PEM_read_bio_X509, X509_free);
  ca.key_ = read_pem<EVP_PKEY>(read_whole_file(key_file), PEM_read_bio_PrivateKey, EVP_PKEY_free);
  if (!ca.cert_ || !ca.key_)
    return Error::invalid(fmt::format(
        "{} or {} is not a PEM certificate and key; move both away and restart elafrosd to make "
        "a new CA (clients must then trust the new {})",
        ca.cert_file_, key_file, ca.cert_file_));
  return ca;
}

std::string LocalCa::cert_pem() const {
  return pem_of(cert_.get());
}

Result<PemPair> LocalCa::issue(const std::vector<std::string>& hosts, long days) const {
  if (hosts.empty()) return Error::invalid("a certificate needs at least one host name");
  KeyPtr key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  if (!key) return Error::internal("generating a TLS key failed (OpenSSL)");
  CertPtr cert = make_cert(key.get(), hosts.front(), cert_.get(), key_.get(), false,
                           subject_alt_names(hosts), days);
  return PemPair{pem_of(cert.get()), pem_of(key.get())};
}

}  // namespace elafros
