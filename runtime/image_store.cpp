#include "image_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "atomic_file.hpp"
#include "elafros/errno_text.hpp"
#include "elafros/naming.hpp"
#include "elafros/registry_reference.hpp"
#include "registry_client.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace elafros {
namespace {

constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::int64_t kMaxJsonBlob = 4 << 20;

bool valid_digest(std::string_view d) {
  if (d.rfind("sha256:", 0) != 0 || d.size() != 7 + 64) return false;
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string hex_of(std::string_view digest) {
  return std::string(digest.substr(7));
}

Result<std::string> read_small_file(const std::string& path, std::int64_t limit) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return Error::not_found(fmt::format("{}: {}", path, errno_text(ec)));
  if (static_cast<std::int64_t>(size) > limit)
    return Error::invalid(fmt::format(
        "{} is {} bytes, more than the {} allowed for a JSON document", path, size, limit));
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<json::value> parse_json_file(const std::string& path, std::string_view what) {
  auto text = read_small_file(path, kMaxJsonBlob);
  if (!text) return text.error();
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec)
    return Error::invalid(fmt::format("{} ({}) is not valid JSON: {}", what, path, ec.message()));
  return v;
}

std::string host_architecture() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

std::string random_suffix() {
  std::random_device rd;
  return fmt::format("{:08x}", rd());
}

std::vector<std::string> json_strings(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (const auto* v = o.if_contains(key); v && v->is_array())
    for (const auto& e : v->get_array())
      if (e.is_string()) out.emplace_back(e.get_string());
  return out;
}

std::string json_string(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  return {};
}

}  // namespace

Result<std::string> sha256_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::not_found(fmt::format("{}: {}", path, errno_text(errno)));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return Error::internal(fmt::format("reading {}: {}", path, errno_text(errno)));
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::string ImageStore::scratch_path(std::string_view what) const {
  return fmt::format("{}/tmp/{}-{}", root_, what, random_suffix());
}

Result<ImageReference> parse_image_reference(const std::string& reference) {
  // oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG].
  for (std::string_view transport : {"oci:", "oci-archive:", "docker-archive:"}) {
    if (reference.rfind(transport, 0) != 0) continue;
    auto [path, tag] = split_path_and_tag(std::string_view(reference).substr(transport.size()),
                                          transport != "oci:");
    ImageReference ref{std::string(transport.substr(0, transport.size() - 1)), path, tag};
    if (ref.path.empty())
      return Error::invalid(fmt::format("image reference \"{}\" names no {}; use {}{}", reference,
                                        transport == "oci:" ? "directory" : "archive file",
                                        transport,
                                        transport == "oci:"           ? "DIR[:TAG]"
                                        : transport == "oci-archive:" ? "FILE[:TAG]"
                                                                      : "FILE[:NAME:TAG]"));
    return ref;
  }
  if (reference.rfind("docker://", 0) == 0) {
    auto registry = parse_registry_reference(reference);
    if (!registry) return registry.error();
    return ImageReference{"docker", registry->str(), ""};
  }
  for (std::string_view other : {"containers-storage:", "dir:"}) {
    if (reference.rfind(other, 0) == 0)
      return Error::invalid(fmt::format(
          "image reference \"{}\": the {} transport is not supported yet; convert it to an OCI "
          "layout "
          "first, e.g. 'skopeo copy {} oci:./image:latest', then use oci:./image:latest",
          reference, other.substr(0, other.find(':')), reference));
  }
  return Error::invalid(fmt::format(
      "image reference \"{}\" is not understood; use oci:DIR[:TAG] (an OCI image layout as skopeo "
      "and umoci write) or the name of an image in 'elafros image list'",
      reference));
}

ImageStore::ImageStore(std::string root, UnpackLimits limits,
                       std::shared_ptr<const RegistryClient> registry)
    : root_(std::move(root)), limits_(limits), registry_(std::move(registry)) {
  fs::create_directories(root_ + "/blobs/sha256");
  fs::create_directories(root_ + "/rootfs");
  // What a crash left half-done (a pull's scratch layout, a blob being verified) is garbage:
  // only one daemon uses a data dir, and it has not started any work yet.
  std::error_code ec;
  fs::remove_all(root_ + "/tmp", ec);
  fs::create_directories(root_ + "/tmp");
}

std::string ImageStore::blob_path(const std::string& digest) const {
  return root_ + "/blobs/sha256/" + hex_of(digest);
}

std::string ImageStore::rootfs_path(const std::string& manifest_digest) const {
  return root_ + "/rootfs/" + hex_of(manifest_digest);
}

bool ImageStore::has_rootfs(const std::string& manifest_digest) const {
  return fs::is_directory(rootfs_path(manifest_digest));
}

Result<std::string> ImageStore::copy_blob(const std::string& layout, const std::string& digest,
                                          std::int64_t size) const {
  if (!valid_digest(digest))
    return Error::invalid(fmt::format("digest \"{}\" is not a sha256 digest", digest));
  std::string dst = blob_path(digest);
  if (fs::exists(dst)) return dst;  // verified when it was stored
  std::string src = layout + "/blobs/sha256/" + hex_of(digest);
  std::error_code ec;
  auto actual_size = fs::file_size(src, ec);
  if (ec)
    return Error::invalid(fmt::format("blob {} is missing from {} ({}); the layout is incomplete",
                                      digest, layout, errno_text(ec)));
  if (size >= 0 && static_cast<std::int64_t>(actual_size) != size)
    return Error::invalid(fmt::format("blob {} in {} is {} bytes but its descriptor says {}",
                                      digest, layout, actual_size, size));
  std::string tmp = root_ + "/tmp/blob-" + random_suffix();
  // A scratch layout of ours (a pull, an unpacked archive) is moved, not copied.
  if (layout.rfind(root_ + "/tmp/", 0) == 0)
    fs::rename(src, tmp, ec);
  else
    fs::copy_file(src, tmp, ec);
  if (ec) {
    std::error_code rm;
    fs::remove(tmp, rm);  // what a full disk let through
    return Error::internal(fmt::format("copying blob {}: {}", digest, errno_text(ec)));
  }
  auto hex = sha256_file(tmp);
  if (!hex || *hex != hex_of(digest)) {
    fs::remove(tmp, ec);
    return Error::invalid(
        fmt::format("blob {} in {} does not match its digest (its content hashes to sha256:{}); "
                    "the image is corrupt",
                    digest, layout, hex ? *hex : "?"));
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  fs::rename(tmp, dst, ec);
  if (ec) {
    std::error_code rm;
    fs::remove(tmp, rm);
    return Error::internal(fmt::format("storing blob {}: {}", digest, errno_text(ec)));
  }
  return dst;
}

namespace {

// A directory under the image store's tmp/, removed with this object.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

std::string archive_name(const std::string& file, const std::string& tag) {
  std::string base = fs::path(file).filename().string();
  for (const char* ext : {".tar.gz", ".tgz", ".tar"})
    if (base.size() > std::strlen(ext) &&
        base.compare(base.size() - std::strlen(ext), std::string::npos, ext) == 0) {
      base.resize(base.size() - std::strlen(ext));
      break;
    }
  return fmt::format("{}:{}", base, tag.empty() ? "latest" : tag);
}

}  // namespace

Result<ImageRecord> ImageStore::import(const std::string& reference, const std::string& name,
                                       const PullProgressFn& progress,
                                       const std::optional<RegistryCredentials>& login) {
  // This runs on a worker thread: a filesystem exception must become an error, not a crash.
  try {
    auto ref = parse_image_reference(reference);
    if (!ref) return ref.error();
    if (ref->transport == "docker") return pull(ref->path, name, progress, login);
    return import_locked(reference, name, "");
  } catch (const std::exception& e) {
    return Error::internal(fmt::format("importing image \"{}\" failed: {}", reference, e.what()));
  }
}

// Downloads run outside the lock (other imports go on meanwhile) into a scratch layout; the
// import of that layout is locked like any other.
Result<ImageRecord> ImageStore::pull(const std::string& reference, const std::string& name,
                                     const PullProgressFn& progress,
                                     const std::optional<RegistryCredentials>& login) {
  auto registry = parse_registry_reference(reference);
  if (!registry) return registry.error();
  if (!registry_)
    return Error::precondition(fmt::format(
        "pulling {} needs a registry client, which this image store lacks", registry->str()));
  ScratchDir scratch{root_ + "/tmp/pull-" + random_suffix()};
  PullRequest request;
  request.reference = *registry;
  request.layout_dir = scratch.path;
  request.tag = "pulled";
  std::vector<std::string> skipped;  // stored blobs the pull did not download
  request.have_blob = [this, &skipped](const std::string& digest) {
    std::error_code ec;
    bool have = fs::exists(blob_path(digest), ec);
    if (have) skipped.push_back(digest);
    return have;
  };
  request.max_bytes = static_cast<std::int64_t>(limits_.max_image_bytes);
  request.progress = progress;
  request.login = login;
  if (auto r = registry_->pull(request); !r) return r.error();
  auto rec = import_locked("oci:" + scratch.path + ":pulled", name, scratch.path);
  if (rec && name.empty()) rec->name = registry->str();
  if (rec) rec->source = "docker://" + registry->str();  // where it came from, not the scratch
  if (!rec)
    for (const auto& digest : skipped)
      if (std::error_code ec; !fs::exists(blob_path(digest), ec))
        return Error::unavailable(fmt::format(
            "pulling {}: blob {}, which it shares with a stored image, was pruned during the "
            "pull; pull again",
            registry->str(), digest));
  return rec;
}

Result<ImageRecord> ImageStore::import_locked(const std::string& reference, const std::string& name,
                                              const std::string& pulled_layout) {
  // One import (or prune) at a time: a failed import removes exactly the blobs it added.
  std::lock_guard lock(mutex_);
  std::set<std::string> before;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/blobs/sha256", ec))
    before.insert(e.path().filename().string());
  Result<ImageRecord> result = Error::internal("not imported");
  try {
    result = pulled_layout.empty() ? import_any(reference, name)
                                   : import_layout(pulled_layout, "pulled", reference, name);
  } catch (const std::exception& e) {
    result = Error::internal(fmt::format("importing image \"{}\" failed: {}", reference, e.what()));
  }
  if (!result) {
    // A failed import leaves no partial image behind.
    for (const auto& e : fs::directory_iterator(root_ + "/blobs/sha256", ec))
      if (!before.count(e.path().filename().string())) fs::remove(e.path(), ec);
  }
  return result;
}

Result<ImageRecord> ImageStore::import_any(const std::string& reference, const std::string& name) {
  auto ref = parse_image_reference(reference);
  if (!ref) return ref.error();
  if (ref->transport == "oci") return import_layout(ref->path, ref->tag, reference, name);
  // Archives are unpacked with the same safe unpacker as layers, then read as what they hold.
  if (!fs::is_regular_file(ref->path))
    return Error::not_found(
        fmt::format("image \"{}\" not found: {} is not a file", reference, ref->path));
  ScratchDir scratch{root_ + "/tmp/archive-" + random_suffix()};
  std::error_code ec;
  fs::create_directories(scratch.path, ec);
  if (ec) return Error::internal(fmt::format("creating {}: {}", scratch.path, errno_text(ec)));
  if (auto r = unpack_layer(ref->path, scratch.path, limits_); !r)
    return Error::invalid(
        fmt::format("image \"{}\": the archive cannot be read: {}", reference, r.error().message));
  if (ref->transport == "oci-archive") {
    auto rec = import_layout(scratch.path, ref->tag, reference, name);
    if (rec && name.empty()) rec->name = archive_name(ref->path, ref->tag);
    return rec;
  }
  return import_docker_archive(scratch.path, ref->tag, reference, name);
}

// `docker save` / skopeo docker-archive: manifest.json names a config and layer tars for each
// image. Their digests are computed here, and an OCI manifest is written for them.
Result<ImageRecord> ImageStore::import_docker_archive(const std::string& dir,
                                                      const std::string& wanted,
                                                      const std::string& reference,
                                                      const std::string& name) {
  auto manifest = parse_json_file(dir + "/manifest.json", "the archive's manifest.json");
  if (!manifest)
    return Error::invalid(fmt::format(
        "image \"{}\": no manifest.json in the archive (is it a 'docker save' archive?)",
        reference));
  if (!manifest->is_array() || manifest->get_array().empty())
    return Error::invalid(
        fmt::format("image \"{}\": the archive's manifest.json lists no images", reference));
  const json::object* chosen = nullptr;
  std::string chosen_tag;
  std::vector<std::string> all_tags;
  for (const auto& entry : manifest->get_array()) {
    if (!entry.is_object()) continue;
    for (const auto& t : json_strings(entry.get_object(), "RepoTags")) {
      all_tags.push_back(t);
      // "hello:latest" matches "docker.io/library/hello:latest", as Docker's short names do.
      bool match =
          t == wanted || (t.size() > wanted.size() &&
                          t.compare(t.size() - wanted.size(), wanted.size(), wanted) == 0 &&
                          t[t.size() - wanted.size() - 1] == '/');
      if (!wanted.empty() && match && !chosen) chosen = &entry.get_object(), chosen_tag = t;
    }
  }
  if (wanted.empty()) {
    if (manifest->get_array().size() != 1) {
      std::string list;
      for (const auto& t : all_tags) list += (list.empty() ? "" : ", ") + t;
      return Error::invalid(
          fmt::format("image \"{}\": the archive holds several images; name one with "
                      "docker-archive:FILE:NAME:TAG ({})",
                      reference, list));
    }
    chosen =
        manifest->get_array()[0].is_object() ? &manifest->get_array()[0].get_object() : nullptr;
    auto tags = chosen ? json_strings(*chosen, "RepoTags") : std::vector<std::string>{};
    if (!tags.empty()) chosen_tag = tags[0];
  }
  if (!chosen) {
    std::string list;
    for (const auto& t : all_tags) list += (list.empty() ? "" : ", ") + t;
    return Error::not_found(
        fmt::format("image \"{}\" not found: the archive has no \"{}\" (it has: {})", reference,
                    wanted, list.empty() ? "no tags" : list));
  }
  std::string config = json_string(*chosen, "Config");
  std::vector<std::string> layers = json_strings(*chosen, "Layers");
  if (config.empty())
    return Error::invalid(
        fmt::format("image \"{}\": the archive's manifest names no Config", reference));

  // Each file must lie inside the unpacked archive.
  auto inside = [&](const std::string& rel) -> Result<std::string> {
    fs::path p = fs::weakly_canonical(fs::path(dir) / rel);
    std::string root = fs::weakly_canonical(dir).string();
    if (p.string().rfind(root + "/", 0) != 0 || !fs::is_regular_file(p))
      return Error::invalid(fmt::format(
          "image \"{}\": the archive's manifest names \"{}\", which is not a file in the archive",
          reference, rel));
    return p.string();
  };
  std::int64_t stored_bytes = 0;
  auto store_file = [&](const std::string& rel) -> Result<std::pair<std::string, std::int64_t>> {
    auto path = inside(rel);
    if (!path) return path.error();
    stored_bytes += static_cast<std::int64_t>(fs::file_size(*path));
    if (auto r = check_size(stored_bytes, reference); !r) return r.error();
    auto hex = sha256_file(*path);
    if (!hex) return hex.error();
    std::string digest = "sha256:" + *hex;
    auto size = static_cast<std::int64_t>(fs::file_size(*path));
    std::string dst = blob_path(digest);
    if (!fs::exists(dst)) {
      std::error_code ec;
      std::string tmp = root_ + "/tmp/blob-" + random_suffix();
      fs::copy_file(*path, tmp, ec);
      if (!ec) fs::rename(tmp, dst, ec);
      if (ec) {
        std::error_code rm;
        fs::remove(tmp, rm);
        return Error::internal(fmt::format("storing blob {}: {}", digest, errno_text(ec)));
      }
    }
    return std::make_pair(digest, size);
  };
  auto cfg = store_file(config);
  if (!cfg) return cfg.error();
  json::array layer_descriptors;
  std::vector<std::string> layer_digests;
  std::int64_t total = cfg->second;
  for (const auto& l : layers) {
    auto blob = store_file(l);
    if (!blob) return blob.error();
    layer_descriptors.push_back(
        json::object{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                     {"digest", blob->first},
                     {"size", blob->second}});
    layer_digests.push_back(blob->first);
    total += blob->second;
  }
  json::object oci_manifest{
      {"schemaVersion", 2},
      {"mediaType", kOciManifest},
      {"config", json::object{{"mediaType", "application/vnd.oci.image.config.v1+json"},
                              {"digest", cfg->first},
                              {"size", cfg->second}}},
      {"layers", std::move(layer_descriptors)}};
  std::string text = json::serialize(oci_manifest);
  std::string manifest_file = dir + "/.elafros-manifest.json";
  if (auto w = write_file_atomic(manifest_file, text, 0644); !w) return w.error();
  auto stored = store_file(".elafros-manifest.json");
  if (!stored) return stored.error();
  total += stored->second;
  if (auto r = unpack(stored->first, layer_digests); !r)
    return Error::invalid(
        fmt::format("image \"{}\" cannot be unpacked: {}", reference, r.error().message));

  ImageRecord rec;
  rec.digest = stored->first;
  rec.config_digest = cfg->first;
  rec.source = reference;
  rec.size = total;
  rec.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  if (!name.empty())
    rec.name = name;
  else if (!chosen_tag.empty()) {
    // Docker's short form: docker.io/library/hello:latest is hello:latest.
    std::string n = chosen_tag;
    for (const char* prefix : {"docker.io/library/", "docker.io/"})
      if (n.rfind(prefix, 0) == 0) {
        n = n.substr(std::strlen(prefix));
        break;
      }
    rec.name = n;
  } else {
    rec.name = archive_name(reference.substr(reference.find(':') + 1), "");
  }
  return rec;
}

Result<void> ImageStore::check_size(std::int64_t bytes, const std::string& reference) const {
  if (limits_.max_image_bytes > 0 && static_cast<std::uint64_t>(bytes) > limits_.max_image_bytes)
    return Error::invalid(
        fmt::format("image \"{}\" is larger than the max-image-bytes limit ({} bytes); raise it in "
                    "the daemon config if "
                    "the image is trusted",
                    reference, limits_.max_image_bytes));
  return {};
}

Result<ImageRecord> ImageStore::import_layout(const std::string& layout, const std::string& wanted,
                                              const std::string& reference,
                                              const std::string& name) {
  if (!fs::is_directory(layout))
    return Error::not_found(
        fmt::format("image \"{}\" not found: {} is not a directory", reference, layout));
  if (!fs::exists(layout + "/index.json"))
    return Error::not_found(
        fmt::format("image \"{}\" not found: {} has no index.json (is it an OCI layout? try "
                    "'skopeo copy … oci:{}:{}')",
                    reference, layout, layout, wanted.empty() ? "latest" : wanted));
  auto index = parse_json_file(layout + "/index.json", "the layout's index.json");
  if (!index) return index.error();

  // Pick the manifest: by tag, or the only one.
  const json::array* manifests = nullptr;
  if (index->is_object())
    if (const auto* m = index->get_object().if_contains("manifests"); m && m->is_array())
      manifests = &m->get_array();
  if (!manifests || manifests->empty())
    return Error::invalid(
        fmt::format("image \"{}\": {}/index.json lists no manifests", reference, layout));
  const json::object* chosen = nullptr;
  std::vector<std::string> tags;
  for (const auto& m : *manifests) {
    if (!m.is_object()) continue;
    std::string tag;
    if (const auto* ann = m.get_object().if_contains("annotations"); ann && ann->is_object())
      tag = json_string(ann->get_object(), "org.opencontainers.image.ref.name");
    if (!tag.empty()) tags.push_back(tag);
    if ((!wanted.empty() && tag == wanted) || (wanted.empty() && manifests->size() == 1))
      chosen = &m.get_object();
  }
  if (!chosen) {
    std::string list;
    for (const auto& t : tags) list += (list.empty() ? "" : ", ") + t;
    if (wanted.empty())
      return Error::invalid(
          fmt::format("image \"{}\": {} holds several images; name one with oci:{}:TAG (tags: {})",
                      reference, layout, layout, list));
    return Error::not_found(fmt::format("image \"{}\" not found: {} has no tag \"{}\" (tags: {})",
                                        reference, layout, wanted, list.empty() ? "none" : list));
  }

  std::string digest = json_string(*chosen, "digest");
  std::string media_type = json_string(*chosen, "mediaType");
  std::int64_t total = 0;
  json::value manifest;
  // Follow image indexes down to the manifest for this platform.
  for (int depth = 0;; ++depth) {
    if (depth > 4)
      return Error::invalid(fmt::format("image \"{}\": image indexes nest too deeply", reference));
    auto path = copy_blob(layout, digest, -1);
    if (!path) return path.error();
    total += static_cast<std::int64_t>(fs::file_size(*path));
    auto doc = parse_json_file(*path, "the manifest");
    if (!doc) return doc.error();
    if (!doc->is_object())
      return Error::invalid(
          fmt::format("image \"{}\": manifest {} is not an object", reference, digest));
    std::string mt = json_string(doc->get_object(), "mediaType");
    if (mt.empty()) mt = media_type;
    if (mt == kOciIndex || mt == kDockerList) {
      std::string arch = host_architecture();
      const json::object* pick = nullptr;
      if (const auto* list = doc->get_object().if_contains("manifests"); list && list->is_array()) {
        for (const auto& m : list->get_array()) {
          if (!m.is_object()) continue;
          const auto* p = m.get_object().if_contains("platform");
          if (p && p->is_object() && json_string(p->get_object(), "os") == "linux" &&
              json_string(p->get_object(), "architecture") == arch) {
            pick = &m.get_object();
            break;
          }
        }
      }
      if (!pick)
        return Error::not_found(
            fmt::format("image \"{}\" has no manifest for linux/{}", reference, arch));
      digest = json_string(*pick, "digest");
      media_type = json_string(*pick, "mediaType");
      continue;
    }
    if (!mt.empty() && mt != kOciManifest && mt != kDockerManifest)
      return Error::invalid(
          fmt::format("image \"{}\": manifest media type \"{}\" is not supported", reference, mt));
    manifest = std::move(*doc);
    break;
  }

  const json::object& mo = manifest.get_object();
  const auto* config = mo.if_contains("config");
  const auto* layers = mo.if_contains("layers");
  if (!config || !config->is_object() || !layers || !layers->is_array())
    return Error::invalid(
        fmt::format("image \"{}\": manifest {} lacks config or layers", reference, digest));
  std::string config_digest = json_string(config->get_object(), "digest");
  auto size_of = [](const json::object& d) -> std::int64_t {
    const auto* s = d.if_contains("size");
    return s && s->is_number() ? s->to_number<std::int64_t>() : -1;
  };
  auto cpath = copy_blob(layout, config_digest, size_of(config->get_object()));
  if (!cpath) return cpath.error();
  total += size_of(config->get_object());
  std::vector<std::string> layer_digests;
  std::int64_t declared = total;
  for (const auto& l : layers->get_array())
    if (l.is_object()) declared += std::max<std::int64_t>(0, size_of(l.get_object()));
  if (auto r = check_size(declared, reference); !r) return r.error();
  for (const auto& l : layers->get_array()) {
    if (!l.is_object())
      return Error::invalid(
          fmt::format("image \"{}\": a layer descriptor is not an object", reference));
    std::string ld = json_string(l.get_object(), "digest");
    auto lpath = copy_blob(layout, ld, size_of(l.get_object()));
    if (!lpath) return lpath.error();
    total += size_of(l.get_object());
    layer_digests.push_back(ld);
  }
  if (auto r = unpack(digest, layer_digests); !r)
    return Error::invalid(
        fmt::format("image \"{}\" cannot be unpacked: {}", reference, r.error().message));

  ImageRecord rec;
  rec.digest = digest;
  rec.config_digest = config_digest;
  rec.source = reference;
  rec.size = total;
  rec.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  fs::path dir = fs::path(layout).lexically_normal();
  if (!dir.has_filename()) dir = dir.parent_path();
  rec.name = name.empty()
                 ? fmt::format("{}:{}", dir.filename().string(), wanted.empty() ? "latest" : wanted)
                 : name;
  return rec;
}

namespace {

std::uint64_t tree_size(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  std::uint64_t total = 0;
  for (auto it =
           fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  return total;
}

}  // namespace

Result<std::uint64_t> ImageStore::prune(const std::vector<std::string>& keep,
                                        std::chrono::seconds grace) {
  std::lock_guard lock(mutex_);
  std::set<std::string> keep_blobs;
  std::set<std::string> keep_rootfs;
  for (const auto& digest : keep) {
    if (!valid_digest(digest)) continue;
    keep_blobs.insert(hex_of(digest));
    keep_rootfs.insert(hex_of(digest));
    auto manifest = parse_json_file(blob_path(digest), "the manifest");
    if (!manifest || !manifest->is_object()) continue;
    const auto& m = manifest->get_object();
    if (const auto* c = m.if_contains("config"); c && c->is_object()) {
      std::string d = json_string(c->get_object(), "digest");
      if (valid_digest(d)) keep_blobs.insert(hex_of(d));
    }
    if (const auto* ls = m.if_contains("layers"); ls && ls->is_array())
      for (const auto& l : ls->get_array())
        if (l.is_object()) {
          std::string d = json_string(l.get_object(), "digest");
          if (valid_digest(d)) keep_blobs.insert(hex_of(d));
        }
  }
  auto cutoff = fs::file_time_type::clock::now() - grace;
  std::uint64_t freed = 0;
  std::error_code ec;
  auto sweep = [&](const std::string& dir, const std::set<std::string>& keep_names) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (keep_names.count(name) || fs::last_write_time(e.path(), ec) > cutoff) continue;
      std::uint64_t size = tree_size(e.path());
      if (fs::remove_all(e.path(), ec) > 0 && !ec) freed += size;
    }
  };
  sweep(root_ + "/blobs/sha256", keep_blobs);
  sweep(root_ + "/rootfs", keep_rootfs);
  return freed;
}

Result<void> ImageStore::unpack(const std::string& manifest_digest,
                                const std::vector<std::string>& layer_digests) const {
  std::string final_path = rootfs_path(manifest_digest);
  if (fs::is_directory(final_path)) return {};
  std::string tmp =
      root_ + "/tmp/rootfs-" + hex_of(manifest_digest).substr(0, 12) + "-" + random_suffix();
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) return Error::internal(fmt::format("creating {}: {}", tmp, errno_text(ec)));
  ::chmod(tmp.c_str(), 0755);
  for (const auto& d : layer_digests) {
    if (auto r = unpack_layer(blob_path(d), tmp, limits_); !r) {
      fs::remove_all(tmp, ec);
      return r;
    }
  }
  fs::rename(tmp, final_path, ec);
  if (ec) {
    fs::remove_all(tmp, ec);  // another import of the same image won the race
    if (!fs::is_directory(final_path))
      return Error::internal(fmt::format("storing the root filesystem failed: {}", errno_text(ec)));
  }
  return {};
}

Result<ImageConfig> ImageStore::config(const std::string& manifest_digest) const {
  auto manifest = parse_json_file(blob_path(manifest_digest), "the manifest");
  if (!manifest) return manifest.error();
  const auto* cfg = manifest->is_object() ? manifest->get_object().if_contains("config") : nullptr;
  if (!cfg || !cfg->is_object())
    return Error::internal(fmt::format("manifest {} has no config", manifest_digest));
  auto doc =
      parse_json_file(blob_path(json_string(cfg->get_object(), "digest")), "the image config");
  if (!doc) return doc.error();
  ImageConfig out;
  if (!doc->is_object()) return out;
  const auto* c = doc->get_object().if_contains("config");
  if (!c || !c->is_object()) return out;
  const json::object& co = c->get_object();
  out.entrypoint = json_strings(co, "Entrypoint");
  out.cmd = json_strings(co, "Cmd");
  out.env = json_strings(co, "Env");
  out.working_dir = json_string(co, "WorkingDir");
  out.user = json_string(co, "User");
  return out;
}

}  // namespace elafros
