#include "registry_client.hpp"

#include "registry_session.hpp"

namespace elafros {

using namespace registry;  // NOLINT: this file is the session's user

RegistryClient::RegistryClient(RegistryOptions options,
                               std::shared_ptr<const CredentialStore> credentials)
    : options_(std::move(options)), credentials_(std::move(credentials)) {}

void RegistryClient::cancel() {
  cancelled_.store(true);
  std::lock_guard lock(mutex_);
  for (auto* io : active_) io->stop();
}

void RegistryClient::track(asio::io_context* io, bool add) const {
  std::lock_guard lock(mutex_);
  if (add) {
    active_.insert(io);
    if (cancelled_.load()) io->stop();
  } else {
    active_.erase(io);
  }
}

bool RegistryClient::relaxed(const std::string& host_port) const {
  if (is_loopback(host_port)) return true;
  for (const auto& r : options_.insecure_registries)
    if (r == host_port || (port_of(r).empty() && r == host_of(host_port))) return true;
  return false;
}

Result<void> RegistryClient::check_login(const std::string& registry,
                                         const RegistryCredentials& credentials) const {
  Session session(*this, registry, "", credentials);
  auto res = session.get("/v2/", nullptr, nullptr);
  if (!res) return res.error();
  if (res->status != 200)
    return Error::unavailable(fmt::format("registry {} answered {} to GET /v2/; is it a registry?",
                                          registry, res->status));
  return {};
}

Result<void> RegistryClient::pull(const PullRequest& request) const {
  const RegistryReference& ref = request.reference;
  std::optional<RegistryCredentials> login = request.login;
  if (!login && credentials_) login = credentials_->get(ref.registry);
  Session session(*this, ref.registry, ref.repository, login);
  auto with_ref = [&](const Error& e) {
    if (e.message.find(ref.str()) != std::string::npos) return e;
    return Error{e.code, fmt::format("pulling {}: {}", ref.str(), e.message)};
  };
  std::error_code fec;
  fs::create_directories(request.layout_dir + "/blobs/sha256", fec);
  if (fec)
    return Error::internal(fmt::format("creating {}: {}", request.layout_dir, errno_text(fec)));
  const std::string base = "/v2/" + ref.repository;
  auto report = [&](PullProgress p) {
    if (request.progress) request.progress(p);
  };

  // The manifest, through an index when the reference names one. Content fetched by digest must
  // hash to that digest; a tag's manifest is stored under the digest of its content.
  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
  std::string body, media_type;
  for (int depth = 0;; ++depth) {
    auto got = session.get(base + "/manifests/" + reference, kManifestAccept, nullptr);
    if (!got) return with_ref(got.error());
    if (got->status != 200) return status_error(ref, *got, "manifest " + reference);
    body = std::move(got->body);
    if (reference.rfind("sha256:", 0) == 0 && "sha256:" + sha256_hex(body) != reference)
      return Error::invalid(fmt::format(
          "registry {} sent a manifest for {} whose content does not hash to {}; refusing it",
          ref.registry, ref.str(), reference));
    boost::system::error_code ec;
    json::value doc = json::parse(body, ec);
    if (ec || !doc.is_object())
      return Error::invalid(fmt::format("registry {} sent a manifest for {} that is not JSON",
                                        ref.registry, ref.str()));
    media_type = std::string(got->header[http::field::content_type]);
    if (auto semi = media_type.find(';'); semi != std::string::npos) media_type.resize(semi);
    if (const auto* mt = doc.get_object().if_contains("mediaType"); mt && mt->is_string())
      media_type = std::string(mt->get_string());
    bool index = media_type.find("index") != std::string::npos ||
                 media_type.find("manifest.list") != std::string::npos ||
                 (doc.get_object().contains("manifests") && !doc.get_object().contains("layers"));
    if (!index) break;
    if (depth > 2)
      return Error::invalid(fmt::format("the image indexes of {} nest too deeply", ref.str()));
    std::string pick;
    if (const auto* ms = doc.get_object().if_contains("manifests"); ms && ms->is_array())
      for (const auto& m : ms->get_array()) {
        const auto* p = m.is_object() ? m.get_object().if_contains("platform") : nullptr;
        const auto* d = m.is_object() ? m.get_object().if_contains("digest") : nullptr;
        if (!p || !p->is_object() || !d || !d->is_string()) continue;
        const auto* os = p->get_object().if_contains("os");
        const auto* arch = p->get_object().if_contains("architecture");
        if (os && *os == "linux" && arch && *arch == json::string(host_architecture())) {
          pick = std::string(d->get_string());
          break;
        }
      }
    if (pick.empty())
      return Error::not_found(
          fmt::format("{} has no image for linux/{}", ref.str(), host_architecture()));
    if (!valid_sha256(pick))
      return Error::invalid(fmt::format(
          "the index of {} names manifest \"{}\", not a sha256 digest", ref.str(), pick));
    reference = pick;
  }
  std::string manifest_hex = sha256_hex(body);
  report({PullProgress::Phase::kResolved, "sha256:" + manifest_hex, "manifest", 0,
          static_cast<std::int64_t>(body.size())});
  if (auto r = write_small(request.layout_dir + "/blobs/sha256/" + manifest_hex, body); !r)
    return r;
  json::object index{
      {"schemaVersion", 2},
      {"manifests",
       json::array{json::object{
           {"mediaType", media_type},
           {"digest", "sha256:" + manifest_hex},
           {"size", static_cast<std::int64_t>(body.size())},
           {"annotations", json::object{{"org.opencontainers.image.ref.name", request.tag}}}}}}};
  if (auto r = write_small(request.layout_dir + "/index.json", json::serialize(index)); !r)
    return r;
  if (auto r = write_small(request.layout_dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
      !r)
    return r;

  // The blobs the manifest names: checked, counted against the limit, then downloaded.
  json::value manifest = json::parse(body);
  const auto& mo = manifest.as_object();
  struct Blob {
    std::string digest;
    std::int64_t size;
    const char* kind;
  };
  std::vector<Blob> blobs;
  auto descriptor = [&](const json::value& d, const char* kind) -> Result<void> {
    const auto* o = d.if_object();
    const auto* digest = o ? o->if_contains("digest") : nullptr;
    const auto* size = o ? o->if_contains("size") : nullptr;
    if (!digest || !digest->is_string() || !valid_sha256(digest->get_string()) || !size ||
        !size->is_int64() || size->get_int64() < 0)
      return Error::invalid(
          fmt::format("the manifest of {} has a {} descriptor without a sha256 digest and a size",
                      ref.str(), kind));
    blobs.push_back({std::string(digest->get_string()), size->get_int64(), kind});
    return {};
  };
  const auto* config = mo.if_contains("config");
  const auto* layers = mo.if_contains("layers");
  if (!config || !layers || !layers->is_array())
    return Error::invalid(fmt::format(
        "the manifest of {} lacks config or layers (schema 1 manifests are not supported)",
        ref.str()));
  if (auto r = descriptor(*config, "config"); !r) return r;
  for (const auto& l : layers->get_array())
    if (auto r = descriptor(l, "layer"); !r) return r;
  std::int64_t total = static_cast<std::int64_t>(body.size());
  for (const auto& b : blobs) total += b.size;
  if (request.max_bytes > 0 && total > request.max_bytes)
    return Error::invalid(fmt::format(
        "{} is {} bytes, more than the {} bytes max-image-bytes allows; raise max-image-bytes in "
        "the daemon config to use it",
        ref.str(), total, request.max_bytes));

  for (const auto& blob : blobs) {
    std::string hex = blob.digest.substr(7);
    std::string file = request.layout_dir + "/blobs/sha256/" + hex;
    if (fs::exists(file, fec)) continue;  // the same blob twice in one manifest
    if (request.have_blob && request.have_blob(blob.digest)) {
      report({PullProgress::Phase::kExists, blob.digest, blob.kind, blob.size, blob.size});
      continue;
    }
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Error::internal(fmt::format("cannot write {}: {}", file, errno_text(errno)));
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
    auto last = std::chrono::steady_clock::now();
    BlobSink sink{
        fd, sha.get(), blob.size, 0, [&](std::int64_t done) {
          auto now = std::chrono::steady_clock::now();
          if (now - last < std::chrono::milliseconds(100)) return;
          last = now;
          report({PullProgress::Phase::kDownloading, blob.digest, blob.kind, done, blob.size});
        }};
    report({PullProgress::Phase::kDownloading, blob.digest, blob.kind, 0, blob.size});
    auto got = session.get(base + "/blobs/" + blob.digest, nullptr, &sink);
    ::close(fd);
    if (!got) return with_ref(got.error());
    if (got->status != 200)
      return status_error(ref, *got, fmt::format("{} blob {}", blob.kind, blob.digest));
    if (sink.written != blob.size)
      return Error::invalid(
          fmt::format("registry {} sent {} bytes for {} blob {} of {}, but its descriptor says {}",
                      ref.registry, sink.written, blob.kind, blob.digest, ref.str(), blob.size));
    std::string actual = digest_hex(sha.get());
    if (actual != hex)
      return Error::invalid(fmt::format(
          "registry {} sent {} blob {} of {} with content that hashes to sha256:{}; refusing it",
          ref.registry, blob.kind, blob.digest, ref.str(), actual));
    report({PullProgress::Phase::kDone, blob.digest, blob.kind, blob.size, blob.size});
  }
  return {};
}

}  // namespace elafros
