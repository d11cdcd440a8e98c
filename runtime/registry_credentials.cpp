#include "registry_credentials.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "atomic_file.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace elafros {

Result<std::string> canonical_registry_host(const std::string& input) {
  std::string host = input;
  for (const char* scheme : {"https://", "http://"})
    if (host.rfind(scheme, 0) == 0) host = host.substr(std::string_view(scheme).size());
  if (auto slash = host.find('/'); slash != std::string::npos) host.resize(slash);
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::regex kHost(
      R"((\[[0-9a-f:]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)(:[0-9]{1,5})?)");
  if (host.empty() || !std::regex_match(host, kHost))
    return Error::invalid(
        fmt::format("\"{}\" is not a registry host; give HOST or HOST:PORT, e.g. docker.io or "
                    "registry.example.com:5000",
                    input));
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "docker.io")
    return std::string("docker.io");
  return host;
}

CredentialStore::CredentialStore(std::string path) : path_(std::move(path)) {}

Result<void> CredentialStore::load() {
  std::lock_guard lock(mutex_);
  logins_.clear();
  std::error_code ec;
  if (!fs::exists(path_, ec)) return {};
  std::ifstream in(path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code jec;
  json::value doc = json::parse(text.str(), jec);
  auto corrupt = [&](const std::string& why) {
    return Error::invalid(fmt::format(
        "the registry logins in {} cannot be read ({}); fix or remove the file, then log in again "
        "with 'elafros registry login'",
        path_, why));
  };
  if (jec || !doc.is_object()) return corrupt("it is not a JSON object");
  const auto* auths = doc.get_object().if_contains("auths");
  if (!auths) return {};
  if (!auths->is_object()) return corrupt("\"auths\" is not an object");
  for (const auto& [host, entry] : auths->get_object()) {
    const auto* auth = entry.is_object() ? entry.get_object().if_contains("auth") : nullptr;
    auto decoded = auth && auth->is_string() ? base64_decode(auth->get_string()) : std::nullopt;
    auto colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos)
      return corrupt(fmt::format("the entry for {} has no valid \"auth\"", std::string(host)));
    logins_[std::string(host)] = {decoded->substr(0, colon), decoded->substr(colon + 1)};
  }
  return {};
}

std::optional<RegistryCredentials> CredentialStore::get(const std::string& registry) const {
  std::lock_guard lock(mutex_);
  auto it = logins_.find(registry);
  if (it == logins_.end()) return std::nullopt;
  return it->second;
}

Result<void> CredentialStore::save_locked() const {
  json::object auths;
  for (const auto& [host, c] : logins_)
    auths[host] = json::object{{"auth", base64_encode(c.username + ":" + c.password)}};
  std::error_code ec;
  fs::create_directories(fs::path(path_).parent_path(), ec);
  fs::permissions(fs::path(path_).parent_path(), fs::perms::owner_all, ec);
  return write_file_atomic(path_, json::serialize(json::object{{"auths", std::move(auths)}}), 0600);
}

Result<void> CredentialStore::put(const std::string& registry,
                                  const RegistryCredentials& credentials) {
  std::lock_guard lock(mutex_);
  auto previous = logins_.find(registry) == logins_.end()
                      ? std::nullopt
                      : std::optional<RegistryCredentials>(logins_[registry]);
  logins_[registry] = credentials;
  auto r = save_locked();
  if (!r) {  // nothing changes when it cannot be stored
    if (previous)
      logins_[registry] = *previous;
    else
      logins_.erase(registry);
  }
  return r;
}

Result<bool> CredentialStore::remove(const std::string& registry) {
  std::lock_guard lock(mutex_);
  auto it = logins_.find(registry);
  if (it == logins_.end()) return false;
  RegistryCredentials previous = it->second;
  logins_.erase(it);
  if (auto r = save_locked(); !r) {
    logins_[registry] = previous;
    return r.error();
  }
  return true;
}

std::map<std::string, std::string> CredentialStore::usernames() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, std::string> out;
  for (const auto& [host, c] : logins_) out[host] = c.username;
  return out;
}

}  // namespace elafros
