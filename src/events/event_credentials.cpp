#include "events/event_credentials.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

#include "elafros/naming.hpp"

namespace elafros {
namespace {

constexpr std::string_view kScheme = "Bearer ";
constexpr std::string_view kPrefix = "elfev:";

// "a:b:c" split on ':' (names never hold one).
std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0;;) {
    auto j = s.find(':', i);
    out.push_back(s.substr(i, j == std::string_view::npos ? j : j - i));
    if (j == std::string_view::npos) return out;
    i = j + 1;
  }
}

}  // namespace

EventCredentials::EventCredentials(std::string ingress_url) : ingress_url_(std::move(ingress_url)) {
  key_.resize(32);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key_.data()), static_cast<int>(key_.size())) != 1)
    throw std::runtime_error("the system RNG failed");
}

std::string EventCredentials::mac(std::string_view kind, std::string_view ns, std::string_view name,
                                  std::string_view broker_ns, std::string_view broker) const {
  std::string message = fmt::format("{}\n{}\n{}\n{}\n{}", kind, ns, name, broker_ns, broker);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), md, &n);
  std::string out;
  for (unsigned int i = 0; i < n; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

std::string EventCredentials::authorization(std::string_view url, std::string_view kind,
                                            std::string_view ns, std::string_view name) const {
  if (url.size() <= ingress_url_.size() + 1 || url.substr(0, ingress_url_.size()) != ingress_url_ ||
      url[ingress_url_.size()] != '/')
    return "";
  std::string_view path = url.substr(ingress_url_.size() + 1);
  auto slash = path.find('/');
  if (slash == std::string_view::npos) return "";
  std::string_view broker_ns = path.substr(0, slash), broker = path.substr(slash + 1);
  if (broker.empty() || broker.find_first_of("/?#") != std::string_view::npos) return "";
  std::string lower = ascii_lower(kind);
  return fmt::format("{}{}{}:{}:{}:{}", kScheme, kPrefix, lower, ns, name,
                     mac(lower, ns, name, broker_ns, broker));
}

bool EventCredentials::is_credential(std::string_view authorization) {
  return authorization.substr(0, kScheme.size() + kPrefix.size()) ==
         fmt::format("{}{}", kScheme, kPrefix);
}

std::optional<Publisher> EventCredentials::verify(std::string_view authorization,
                                                  std::string_view ns,
                                                  std::string_view broker) const {
  if (!is_credential(authorization)) return std::nullopt;
  auto parts = split(authorization.substr(kScheme.size() + kPrefix.size()));
  if (parts.size() != 4 || parts[0].empty() || parts[1].empty() || parts[2].empty())
    return std::nullopt;
  std::string want = mac(parts[0], parts[1], parts[2], ns, broker);
  if (parts[3].size() != want.size() ||
      CRYPTO_memcmp(parts[3].data(), want.data(), want.size()) != 0)
    return std::nullopt;
  Publisher who;
  who.subject = eventing_subject(parts[0], parts[1], parts[2]);
  who.ns = std::string(parts[1]);
  return who;
}

}  // namespace elafros
