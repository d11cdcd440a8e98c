// Pushing an image to a registry: the OCI distribution spec's push flow ("Pushing blobs",
// "Mounting a blob from another repository", "Pushing Manifests").

#include "registry_client.hpp"
#include "registry_session.hpp"

namespace elafros {

using namespace registry;  // NOLINT: this file is the session's user

namespace {

Result<std::string> read_range(const std::string& path, std::int64_t offset, std::int64_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::not_found(fmt::format("cannot read {}: {}", path, errno_text(errno)));
  std::string out(static_cast<std::size_t>(n), '\0');
  std::int64_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, out.data() + got, static_cast<std::size_t>(n - got), offset + got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += r;
  }
  ::close(fd);
  if (got != n) return Error::internal(fmt::format("{} is shorter than its descriptor says", path));
  return out;
}

// The upload URL a 202 names, with `param` added to its query.
std::string with_param(const std::string& location, const std::string& param) {
  return location + (location.find('?') == std::string::npos ? "?" : "&") + param;
}

}  // namespace

Result<std::string> RegistryClient::push(const PushRequest& request) const {
  const RegistryReference& ref = request.reference;
  std::optional<RegistryCredentials> login;
  if (credentials_) login = credentials_->get(ref.registry);
  Session session(*this, ref.registry, ref.repository, login, "pull,push");
  const std::string base = "/v2/" + ref.repository;
  auto report = [&](PushProgress p) {
    if (request.progress) request.progress(p);
  };
  auto failed = [&](const Response& res, const std::string& what) {
    std::string said = registry_message(res.body);
    return Error::unavailable(fmt::format("registry {} answered {} to {} of {}{}", ref.registry,
                                          res.status, what, ref.str(),
                                          said.empty() ? "" : " (" + said + ")"));
  };
  for (const auto& blob : request.blobs) {
    auto head = session.send(http::verb::head, base + "/blobs/" + blob.digest, "", nullptr);
    if (!head) return head.error();
    if (head->status == 200) {
      report({PushProgress::Phase::kExists, blob.digest, blob.kind, blob.size, blob.size});
      continue;
    }
    // Mounted from another repository of the registry that holds it, when it offers that.
    std::string start = base + "/blobs/uploads/";
    std::string from;
    {
      std::lock_guard lock(mutex_);
      auto r = pushed_.find(ref.registry);
      if (r != pushed_.end())
        if (auto b = r->second.find(blob.digest);
            b != r->second.end() && b->second != ref.repository)
          from = b->second;
    }
    if (!from.empty()) start += "?mount=" + blob.digest + "&from=" + from;
    auto posted = session.send(http::verb::post, start, "", nullptr);
    if (!posted) return posted.error();
    if (posted->status == 201 && !from.empty()) {
      report({PushProgress::Phase::kMounted, blob.digest, blob.kind, blob.size, blob.size});
      continue;
    }
    if (posted->status != 202) return failed(*posted, "starting the upload of " + blob.digest);
    std::string location(posted->header[http::field::location]);
    if (location.empty())
      return Error::unavailable(
          fmt::format("registry {} started an upload without giving its Location", ref.registry));
    Result<Response> done = Error::internal("not sent");
    if (blob.size <= request.chunk_bytes) {
      auto content = read_range(blob.path, 0, blob.size);
      if (!content) return content.error();
      report({PushProgress::Phase::kUploading, blob.digest, blob.kind, 0, blob.size});
      done = session.send(http::verb::put, with_param(location, "digest=" + blob.digest), *content,
                          "application/octet-stream");
    } else {
      for (std::int64_t offset = 0; offset < blob.size; offset += request.chunk_bytes) {
        std::int64_t n = std::min(request.chunk_bytes, blob.size - offset);
        auto content = read_range(blob.path, offset, n);
        if (!content) return content.error();
        report({PushProgress::Phase::kUploading, blob.digest, blob.kind, offset, blob.size});
        // A chunk names its range, "start-end" inclusive (the distribution spec's form).
        auto patched =
            session.send(http::verb::patch, location, *content, "application/octet-stream",
                         {{"Content-Range", fmt::format("{}-{}", offset, offset + n - 1)}});
        if (!patched) return patched.error();
        if (patched->status != 202)
          return failed(*patched, fmt::format("uploading bytes {}-{} of {}", offset, offset + n - 1,
                                              blob.digest));
        std::string next(patched->header[http::field::location]);
        if (!next.empty()) location = next;
      }
      done = session.send(http::verb::put, with_param(location, "digest=" + blob.digest), "",
                          "application/octet-stream");
    }
    if (!done) return done.error();
    if (done->status != 201) return failed(*done, "finishing the upload of " + blob.digest);
    report({PushProgress::Phase::kDone, blob.digest, blob.kind, blob.size, blob.size});
    std::lock_guard lock(mutex_);
    pushed_[ref.registry][blob.digest] = ref.repository;
  }
  std::string digest = "sha256:" + sha256_hex(request.manifest);
  std::string target = ref.tag.empty() ? digest : ref.tag;
  auto put = session.send(http::verb::put, base + "/manifests/" + target, request.manifest,
                          request.media_type.c_str());
  if (!put) return put.error();
  if (put->status != 201 && put->status != 200) return failed(*put, "the manifest PUT");
  std::string said(put->header["Docker-Content-Digest"]);
  if (!said.empty() && said != digest)
    return Error::unavailable(
        fmt::format("registry {} stored the manifest of {} as {}, not {}: it rewrote it",
                    ref.registry, ref.str(), said, digest));
  report({PushProgress::Phase::kManifest, digest, "manifest",
          static_cast<std::int64_t>(request.manifest.size()),
          static_cast<std::int64_t>(request.manifest.size())});
  return digest;
}

}  // namespace elafros
