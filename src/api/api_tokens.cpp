#include "api/api_tokens.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>

#include "api/private_file.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros {
namespace {

constexpr std::size_t kAccessorLength = 16;
constexpr std::size_t kSecretLength = 32;  // 32 × log2(62) ≈ 190.5 bits
constexpr std::string_view kPrefix = "elf_";

// Uniform base62 characters, by rejection sampling of random bytes.
std::string random_base62(std::size_t n) {
  static constexpr char kAlphabet[] =
      "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::string out;
  while (out.size() < n) {
    unsigned char buf[64];
    if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("the system RNG failed");
    for (unsigned char c : buf)
      if (c < 248 && out.size() < n) out += kAlphabet[c % 62];
  }
  return out;
}

bool base62(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  return true;
}

std::int64_t system_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::int64_t ApiTokens::now() const {
  return now_ ? now_() : system_seconds();
}

std::string token_accessor_label(const std::string& accessor) {
  return std::string(kPrefix) + accessor;
}

Result<std::unique_ptr<ApiTokens>> ApiTokens::open(const std::string& data_dir) {
  auto t = std::make_unique<ApiTokens>();
  std::error_code ec;
  t->dir_ = data_dir + "/tokens";
  fs::create_directories(t->dir_, ec);
  ::chmod(t->dir_.c_str(), 0700);
  std::string key_path = t->dir_ + "/hmac.key";
  if (!fs::exists(key_path, ec))
    if (auto r = write_private_file(key_path, random_base62(64)); !r) return r.error();
  t->key_ = read_whole_file(key_path);
  if (t->key_.size() < 32)
    return Error::precondition(
        fmt::format("{} is too short to be elafrosd's token key; remove it (every token is then "
                    "invalid, and a new admin token is made)",
                    key_path));
  std::string tokens_path = t->dir_ + "/tokens.json";
  if (fs::exists(tokens_path, ec)) {
    boost::system::error_code jec;
    json::value v = json::parse(read_whole_file(tokens_path), jec);
    if (jec || !v.is_array())
      return Error::precondition(fmt::format("{} is not a JSON array of tokens", tokens_path));
    for (const auto& e : v.get_array()) {
      const json::object* o = e.if_object();
      auto text = [o](const char* key) -> std::string {
        const json::value* f = o ? o->if_contains(key) : nullptr;
        return f && f->is_string() ? std::string(f->get_string()) : std::string();
      };
      auto number = [o](const char* key) -> std::int64_t {
        const json::value* f = o ? o->if_contains(key) : nullptr;
        return f && f->is_int64() ? f->get_int64() : 0;
      };
      Token tok;
      tok.info.name = text("name");
      tok.info.accessor = text("accessor");
      tok.info.user = text("user");
      tok.hmac = text("hmac");
      if (tok.info.accessor.empty()) continue;  // a token of the old format: no longer valid
      if (tok.info.name.empty() || tok.info.user.empty() || tok.hmac.empty())
        return Error::precondition(fmt::format(
            "{} has a token without name, user or hmac; restore it from a backup, or remove it "
            "(every token but a new admin token is then invalid)",
            tokens_path));
      if (const json::value* g = o->if_contains("groups"); g && g->is_array())
        for (const auto& s : g->get_array())
          if (s.is_string()) tok.info.groups.emplace_back(s.get_string());
      tok.info.created = number("created");
      tok.info.expires = number("expires");
      tok.info.last_used = number("lastUsed");
      tok.info.revoked = number("revoked");
      t->tokens_.push_back(std::move(tok));
    }
  }
  std::string admin_path = t->dir_ + "/admin.token";
  bool have_admin = false;
  for (const auto& tok : t->tokens_)
    have_admin = have_admin || (tok.info.name == "admin" && !tok.info.revoked);
  std::string stored = read_whole_file(admin_path);
  if (!have_admin || stored.substr(0, kPrefix.size()) != kPrefix) {
    std::erase_if(t->tokens_, [](const Token& tok) { return tok.info.name == "admin"; });
    std::string accessor = random_base62(kAccessorLength);
    std::string secret = random_base62(kSecretLength);
    std::string token = fmt::format("{}{}_{}", kPrefix, accessor, secret);
    if (auto r = write_private_file(admin_path, token + "\n"); !r) return r.error();
    Token tok;
    tok.info = {"admin", accessor, "system:admin", {kMastersGroup}, system_seconds(), 0, 0, 0};
    tok.hmac = t->hmac(secret);
    t->tokens_.push_back(std::move(tok));
    if (auto r = t->write(t->snapshot_locked()); !r) return r.error();
  }
  return t;
}

std::string ApiTokens::hmac(std::string_view secret) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), md, &n);
  std::string out;
  for (unsigned int i = 0; i < n; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

std::string ApiTokens::snapshot_locked() const {
  json::array a;
  for (const auto& t : tokens_) {
    json::array groups;
    for (const auto& g : t.info.groups) groups.emplace_back(g);
    a.push_back(json::object{{"name", t.info.name},
                             {"accessor", t.info.accessor},
                             {"user", t.info.user},
                             {"groups", std::move(groups)},
                             {"hmac", t.hmac},
                             {"created", t.info.created},
                             {"expires", t.info.expires},
                             {"lastUsed", t.info.last_used},
                             {"revoked", t.info.revoked}});
  }
  return json::serialize(a) + "\n";
}

Result<void> ApiTokens::write(const std::string& text) const {
  return write_private_file(dir_ + "/tokens.json", text);
}

std::string ApiTokens::admin_token() const {
  std::string t = read_whole_file(dir_ + "/admin.token");
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

Result<std::string> ApiTokens::issue(const std::string& name, const std::string& user,
                                     std::chrono::seconds ttl) {
  std::string accessor = random_base62(kAccessorLength);
  std::string secret = random_base62(kSecretLength);
  std::int64_t now = this->now();
  // The file is written outside mu_, so that authenticating (on the control thread) never waits
  // for its fsync; write_mu_ keeps the writes in the order of their snapshots.
  std::lock_guard writing(write_mu_);
  std::string text;
  {
    std::lock_guard lock(mu_);
    for (const auto& t : tokens_)
      if (t.info.name == name && !t.info.revoked)
        return Error::exists(fmt::format(
            "a token named \"{}\" exists; revoke it first ('elafros token revoke {}') or choose "
            "another name",
            name, name));
    Token tok;
    tok.info = {name, accessor, user, {}, now, ttl.count() > 0 ? now + ttl.count() : 0, 0, 0};
    tok.hmac = hmac(secret);
    tokens_.push_back(std::move(tok));
    text = snapshot_locked();
  }
  if (auto r = write(text); !r) {
    std::lock_guard lock(mu_);
    std::erase_if(tokens_, [&accessor](const Token& t) { return t.info.accessor == accessor; });
    return r.error();
  }
  return fmt::format("{}{}_{}", kPrefix, accessor, secret);
}

Result<TokenInfo> ApiTokens::revoke(const std::string& name_or_accessor) {
  std::string key = name_or_accessor;
  if (key.substr(0, kPrefix.size()) == kPrefix) key = key.substr(kPrefix.size());
  std::lock_guard writing(write_mu_);
  std::string text;
  TokenInfo revoked;
  {
    std::lock_guard lock(mu_);
    for (auto& t : tokens_)
      if ((t.info.name == key || t.info.accessor == key) && !t.info.revoked) {
        t.info.revoked = now();
        revoked = t.info;
        break;
      }
    if (revoked.revoked) text = snapshot_locked();
  }
  if (revoked.revoked) {
    if (auto r = write(text); !r) {
      std::lock_guard lock(mu_);
      for (auto& t : tokens_)
        if (t.info.accessor == revoked.accessor) t.info.revoked = 0;
      return r.error();
    }
    return revoked;
  }
  return Error::not_found(fmt::format(
      "no live token is named \"{}\" or has that accessor; 'elafros token list' lists them",
      name_or_accessor));
}

std::vector<TokenInfo> ApiTokens::list() const {
  std::lock_guard lock(mu_);
  std::vector<TokenInfo> out;
  for (const auto& t : tokens_) out.push_back(t.info);
  return out;
}

Result<Identity> ApiTokens::authenticate(std::string_view authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  auto unauthorized = [](std::string m) { return Error{ErrorCode::kUnauthorized, std::move(m)}; };
  if (authorization.substr(0, kBearer.size()) != kBearer || authorization.size() == kBearer.size())
    return unauthorized(
        "Unauthorized: send Authorization: Bearer TOKEN (an elf_… token from 'elafros token "
        "create', or the admin token in <data-dir>/tokens/admin.token)");
  std::string_view token = authorization.substr(kBearer.size());
  // elf_ + accessor + _ + secret
  if (token.size() != kPrefix.size() + kAccessorLength + 1 + kSecretLength ||
      token.substr(0, kPrefix.size()) != kPrefix ||
      token[kPrefix.size() + kAccessorLength] != '_' ||
      !base62(token.substr(kPrefix.size(), kAccessorLength)) ||
      !base62(token.substr(kPrefix.size() + kAccessorLength + 1)))
    return unauthorized(
        "Unauthorized: the token is malformed: elafros tokens look like elf_ACCESSOR_SECRET; "
        "check that it was copied whole");
  std::string accessor(token.substr(kPrefix.size(), kAccessorLength));
  std::string mac = hmac(token.substr(kPrefix.size() + kAccessorLength + 1));
  std::int64_t now = this->now();
  std::lock_guard lock(mu_);
  for (auto& t : tokens_) {
    if (t.info.accessor != accessor) continue;
    if (t.hmac.size() != mac.size() || CRYPTO_memcmp(t.hmac.data(), mac.data(), mac.size()) != 0)
      break;
    if (t.info.revoked)
      return unauthorized(
          fmt::format("Unauthorized: the token {} (\"{}\") was revoked; ask for a new one",
                      token_accessor_label(accessor), t.info.name));
    if (t.info.expires && t.info.expires <= now)
      return unauthorized(
          fmt::format("Unauthorized: the token {} (\"{}\") has expired; ask for a new one",
                      token_accessor_label(accessor), t.info.name));
    if (t.info.last_used / 60 != now / 60) dirty_ = true;
    t.info.last_used = now;
    Identity who;
    who.user = t.info.user;
    who.groups = t.info.groups;
    who.groups.emplace_back(kAuthenticatedGroup);
    who.token = token_accessor_label(accessor);
    return who;
  }
  return unauthorized(
      "Unauthorized: the token is not valid (wrong secret, or unknown); 'elafros token list' "
      "shows the live tokens");
}

Result<void> ApiTokens::flush() {
  std::lock_guard writing(write_mu_);
  std::string text;
  {
    std::lock_guard lock(mu_);
    if (!dirty_) return {};
    dirty_ = false;
    text = snapshot_locked();
  }
  auto r = write(text);
  if (!r) {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  return r;
}

}  // namespace elafros
