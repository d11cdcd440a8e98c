#include "registry_client.hpp"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "image_store.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace fs = std::filesystem;

namespace elafros {
namespace {

constexpr const char* kAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

bool loopback(const std::string& host) {
  std::string h =
      host.substr(0, host.rfind(':') == std::string::npos || host.front() == '[' ? host.size()
                                                                                 : host.rfind(':'));
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "[::1]";
}

class Connection {
 public:
  explicit Connection(const std::string& registry) : registry_(registry), stream_(io_) {}

  Result<void> connect() {
    std::string host = registry_, port = "80";
    if (auto colon = host.rfind(':');
        colon != std::string::npos && host.find(']') == std::string::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    boost::system::error_code ec;
    asio::ip::tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host, port, ec);
    if (!ec) stream_.expires_after(std::chrono::seconds(30));
    if (!ec) stream_.connect(endpoints, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("registry {} cannot be reached: {}", registry_, ec.message()));
    return {};
  }

  // GET into memory (manifests) or into a file (blobs). Returns the status and Content-Type.
  Result<std::pair<int, std::string>> get(const std::string& target, const std::string* file,
                                          std::string* body) {
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, registry_);
    req.set(http::field::user_agent, "elafros");
    req.set(http::field::accept, kAccept);
    boost::system::error_code ec;
    stream_.expires_after(std::chrono::minutes(10));
    http::write(stream_, req, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("registry {}: sending GET {} failed: {}", registry_, target, ec.message()));
    if (file) {
      http::response_parser<http::file_body> parser;
      parser.body_limit(boost::none);
      parser.get().body().open(file->c_str(), beast::file_mode::write, ec);
      if (!ec) http::read(stream_, buffer_, parser, ec);
      if (ec)
        return Error::unavailable(
            fmt::format("registry {}: GET {} failed: {}", registry_, target, ec.message()));
      return std::make_pair(static_cast<int>(parser.get().result_int()),
                            std::string(parser.get()[http::field::content_type]));
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(4 << 20);
    http::read(stream_, buffer_, parser, ec);
    if (ec)
      return Error::unavailable(
          fmt::format("registry {}: GET {} failed: {}", registry_, target, ec.message()));
    *body = parser.get().body();
    return std::make_pair(static_cast<int>(parser.get().result_int()),
                          std::string(parser.get()[http::field::content_type]));
  }

 private:
  std::string registry_;
  asio::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

std::string arch() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  return m == "x86_64" ? "amd64" : m == "aarch64" ? "arm64" : m;
}

Error status_error(const RegistryReference& ref, int status, const std::string& what) {
  if (status == 401 || status == 403)
    return Error::precondition(
        fmt::format("registry {} refused {} ({}): authenticated pulls are not built yet",
                    ref.registry, ref.str(), status));
  if (status == 404)
    return Error::not_found(
        fmt::format("{} not found: registry {} has no {}", ref.str(), ref.registry, what));
  return Error::unavailable(
      fmt::format("registry {} answered {} for {} of {}", ref.registry, status, what, ref.str()));
}

}  // namespace

Result<void> pull_to_layout(const RegistryReference& ref, const std::string& layout,
                            const std::string& tag) {
  if (!loopback(ref.registry))
    return Error::precondition(
        fmt::format("pulling {} needs TLS to {}, which is not built yet; only loopback registries "
                    "over plain HTTP work so far",
                    ref.str(), ref.registry));
  Connection conn(ref.registry);
  if (auto r = conn.connect(); !r) return r;
  std::error_code fec;
  fs::create_directories(layout + "/blobs/sha256", fec);
  std::string base = "/v2/" + ref.repository;

  // The manifest, through an index when the reference names one.
  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
  std::string body, media_type, manifest_digest;
  for (int depth = 0;; ++depth) {
    auto got = conn.get(base + "/manifests/" + reference, nullptr, &body);
    if (!got) return got.error();
    if (got->first != 200) return status_error(ref, got->first, "manifest " + reference);
    boost::system::error_code ec;
    json::value doc = json::parse(body, ec);
    if (ec || !doc.is_object())
      return Error::invalid(
          fmt::format("registry {} sent a manifest that is not JSON", ref.registry));
    media_type = got->second;
    if (const auto* mt = doc.get_object().if_contains("mediaType"); mt && mt->is_string())
      media_type = mt->get_string();
    if (media_type.find("index") == std::string::npos &&
        media_type.find("manifest.list") == std::string::npos)
      break;
    if (depth > 2) return Error::invalid("image indexes nest too deeply");
    std::string pick;
    if (const auto* ms = doc.get_object().if_contains("manifests"); ms && ms->is_array())
      for (const auto& m : ms->get_array()) {
        const auto* p = m.is_object() ? m.get_object().if_contains("platform") : nullptr;
        if (p && p->is_object() && p->get_object().if_contains("os") &&
            p->get_object().at("os") == "linux" && p->get_object().if_contains("architecture") &&
            p->get_object().at("architecture") == json::string(arch())) {
          pick = std::string(m.get_object().at("digest").as_string());
          break;
        }
      }
    if (pick.empty())
      return Error::not_found(fmt::format("{} has no image for linux/{}", ref.str(), arch()));
    reference = pick;
  }
  // Store the manifest under its content digest, and tag it; ImageStore verifies every blob again.
  std::string tmp = layout + "/manifest.json";
  std::ofstream(tmp, std::ios::binary) << body;
  auto hex = sha256_file(tmp);
  if (!hex) return hex.error();
  if (!ref.digest.empty() && ref.digest.find("sha256:" + *hex) == std::string::npos &&
      media_type.find("index") == std::string::npos && reference == ref.digest)
    return Error::invalid(
        fmt::format("registry {} sent a manifest for {} whose content does not match that digest",
                    ref.registry, ref.str()));
  fs::rename(tmp, layout + "/blobs/sha256/" + *hex, fec);
  json::object index{
      {"schemaVersion", 2},
      {"manifests",
       json::array{json::object{
           {"mediaType", media_type},
           {"digest", "sha256:" + *hex},
           {"size", static_cast<std::int64_t>(body.size())},
           {"annotations", json::object{{"org.opencontainers.image.ref.name", tag}}}}}}};
  std::ofstream(layout + "/index.json") << json::serialize(index);
  std::ofstream(layout + "/oci-layout") << R"({"imageLayoutVersion":"1.0.0"})";
  json::value manifest = json::parse(body);
  std::vector<std::pair<std::string, std::int64_t>> blobs;
  const auto& mo = manifest.as_object();
  if (!mo.if_contains("config") || !mo.if_contains("layers"))
    return Error::invalid(fmt::format("the manifest of {} lacks config or layers", ref.str()));
  blobs.emplace_back(std::string(mo.at("config").at("digest").as_string()),
                     mo.at("config").at("size").to_number<std::int64_t>());
  for (const auto& l : mo.at("layers").as_array())
    blobs.emplace_back(std::string(l.at("digest").as_string()),
                       l.at("size").to_number<std::int64_t>());
  for (const auto& [digest, size] : blobs) {
    if (digest.rfind("sha256:", 0) != 0 || digest.size() != 71)
      return Error::invalid(fmt::format("blob digest \"{}\" is not sha256", digest));
    std::string file = layout + "/blobs/sha256/" + digest.substr(7);
    auto got = conn.get(base + "/blobs/" + digest, &file, nullptr);
    if (!got) return got.error();
    if (got->first != 200) return status_error(ref, got->first, "blob " + digest);
  }
  return {};
}

}  // namespace elafros
