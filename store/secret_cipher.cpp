#include "secret_cipher.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "elafros/base64.hpp"

namespace fs = std::filesystem;

namespace elafros {
namespace {

constexpr std::size_t kKeyBytes = 32, kNonceBytes = 12, kTagBytes = 16;

std::string key_id(const std::string& key) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), md);
  return fmt::format("{:02x}{:02x}{:02x}{:02x}", md[0], md[1], md[2], md[3]);
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("the system RNG failed");
  return out;
}

}  // namespace

Result<std::unique_ptr<SecretCipher>> SecretCipher::open(const std::string& path) {
  auto c = std::make_unique<SecretCipher>();
  c->path_ = path;
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  ::chmod(fs::path(path).parent_path().c_str(), 0700);
  if (!fs::exists(path, ec)) {
    std::string k = random_bytes(kKeyBytes);
    c->keys_.push_back({key_id(k), k});
    std::lock_guard lock(c->mu_);
    if (auto r = c->save_locked(); !r) return r.error();
    return c;
  }
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.find(' ');
    auto bytes = base64_decode(space == std::string::npos ? "" : line.substr(space + 1));
    if (!bytes || bytes->size() != kKeyBytes || key_id(*bytes) != line.substr(0, space))
      return Error::precondition(fmt::format(
          "{} has a line that is not \"ID BASE64KEY\" for a 32-byte key; restore the file from "
          "a backup (without it, no Secret can be read)",
          path));
    c->keys_.push_back({line.substr(0, space), *bytes});
  }
  if (c->keys_.empty())
    return Error::precondition(fmt::format("{} holds no key; restore it from a backup", path));
  return c;
}

Result<void> SecretCipher::save_locked() const {
  std::string text =
      "# elafrosd's keys for Secrets at rest: the first seals, all open. Back this file up.\n";
  for (const auto& k : keys_) text += k.id + " " + base64_encode(k.bytes) + "\n";
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::internal(fmt::format("cannot write {}", tmp));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0)
    return Error::internal(fmt::format("cannot write {} (is the disk full?)", path_));
  return {};
}

std::string SecretCipher::seal(std::string_view plaintext) const {
  std::lock_guard lock(mu_);
  const Key& key = keys_.front();
  std::string nonce = random_bytes(kNonceBytes);
  std::string out = nonce;
  out.resize(kNonceBytes + plaintext.size() + kTagBytes);
  auto* ctx = EVP_CIPHER_CTX_new();
  int n = 0, m = 0;
  auto* dst = reinterpret_cast<unsigned char*>(out.data()) + kNonceBytes;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key.bytes.data()),
                     reinterpret_cast<const unsigned char*>(nonce.data()));
  EVP_EncryptUpdate(ctx, dst, &n, reinterpret_cast<const unsigned char*>(plaintext.data()),
                    static_cast<int>(plaintext.size()));
  EVP_EncryptFinal_ex(ctx, dst + n, &m);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes, dst + plaintext.size());
  EVP_CIPHER_CTX_free(ctx);
  return fmt::format("k1:{}:{}", key.id, base64_encode(out));
}

Result<std::string> SecretCipher::unseal(std::string_view sealed) const {
  auto bad = [](std::string what) {
    return Error::precondition(fmt::format(
        "a stored Secret cannot be read: {}; restore the key file from a backup", what));
  };
  if (sealed.substr(0, 3) != "k1:" || sealed.size() < 13 || sealed[11] != ':')
    return bad("it is not sealed in elafrosd's format");
  std::string id(sealed.substr(3, 8));
  auto raw = base64_decode(sealed.substr(12));
  if (!raw || raw->size() < kNonceBytes + kTagBytes) return bad("its ciphertext is damaged");
  std::lock_guard lock(mu_);
  const Key* key = nullptr;
  for (const auto& k : keys_)
    if (k.id == id) key = &k;
  if (!key) return bad(fmt::format("it was sealed with key {}, which the key file lacks", id));
  std::size_t len = raw->size() - kNonceBytes - kTagBytes;
  std::string out(len, '\0');
  auto* ctx = EVP_CIPHER_CTX_new();
  int n = 0, m = 0;
  const auto* src = reinterpret_cast<const unsigned char*>(raw->data());
  EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key->bytes.data()), src);
  EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n, src + kNonceBytes,
                    static_cast<int>(len));
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes,
                      const_cast<unsigned char*>(src + kNonceBytes + len));
  int ok = EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + n, &m);
  EVP_CIPHER_CTX_free(ctx);
  if (ok != 1) return bad("its authentication tag does not match (it was altered)");
  return out;
}

Result<std::string> SecretCipher::add_key() {
  std::string k = random_bytes(kKeyBytes);
  std::lock_guard lock(mu_);
  keys_.insert(keys_.begin(), Key{key_id(k), k});
  if (auto r = save_locked(); !r) {
    keys_.erase(keys_.begin());
    return r.error();
  }
  return keys_.front().id;
}

Result<void> SecretCipher::drop_old_keys() {
  std::lock_guard lock(mu_);
  keys_.resize(1);
  return save_locked();
}

std::string SecretCipher::current_key_id() const {
  std::lock_guard lock(mu_);
  return keys_.front().id;
}

}  // namespace elafros
