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

Result<std::map<std::string, RegistryCredentials>> docker_config_logins(const std::string& text) {
  std::map<std::string, RegistryCredentials> out;
  boost::system::error_code jec;
  json::value doc = json::parse(text, jec);
  if (jec || !doc.is_object()) return Error::invalid("it is not a JSON object");
  const json::value* auths = doc.get_object().if_contains("auths");
  if (!auths) auths = &doc;  // .dockercfg: the hosts at the top
  if (!auths->is_object()) return Error::invalid("\"auths\" is not an object");
  for (const auto& [host_key, entry] : auths->get_object()) {
    std::string host(host_key);
    const json::object* e = entry.if_object();
    auto text_of = [e](const char* key) -> std::optional<std::string> {
      const json::value* v = e ? e->if_contains(key) : nullptr;
      if (!v || !v->is_string()) return std::nullopt;
      return std::string(v->get_string());
    };
    RegistryCredentials c;
    if (auto auth = text_of("auth")) {
      auto decoded = base64_decode(*auth);
      auto colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos)
        return Error::invalid(fmt::format("the entry for {} has no valid \"auth\"", host));
      c = {decoded->substr(0, colon), decoded->substr(colon + 1)};
    } else if (auto user = text_of("username"), pass = text_of("password"); user && pass) {
      c = {*user, *pass};
    } else {
      return Error::invalid(fmt::format(
          "the entry for {} has neither \"auth\" nor \"username\" and \"password\"", host));
    }
    auto canonical = canonical_registry_host(host);
    out[canonical ? *canonical : host] = std::move(c);
  }
  return out;
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
  auto logins = docker_config_logins(text.str());
  if (!logins)
    return Error::invalid(fmt::format(
        "the registry logins in {} cannot be read ({}); fix or remove the file, then log in again "
        "with 'elafros registry login'",
        path_, logins.error().message));
  logins_ = std::move(logins.value());
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
