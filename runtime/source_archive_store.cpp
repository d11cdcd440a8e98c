#include "source_archive_store.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <random>
#include <vector>

#include "elafros/errno_text.hpp"
#include "elafros/naming.hpp"
#include "image_store.hpp"
#include "layer_unpacker.hpp"

namespace fs = std::filesystem;

namespace elafros {
namespace {

std::vector<std::string> components(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (!part.empty() && part != ".") out.emplace_back(part);
    i = j + 1;
  }
  return out;
}

bool valid_digest(const std::string& d) {
  return d.size() == 71 && d.rfind("sha256:", 0) == 0 &&
         d.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
}

}  // namespace

Result<void> check_source_archive(const std::string& tar_path, const SourceLimits& limits) {
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  auto message = [&a] {
    const char* m = archive_error_string(a.get());
    return std::string(m ? m : "malformed archive");
  };
  if (archive_read_open_filename(a.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK)
    return Error::invalid(fmt::format("the source is not a tar archive: {}", message()));
  std::uint64_t bytes = 0, entries = 0;
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN)
      return Error::invalid(fmt::format("the source is not a valid tar archive: {}", message()));
    const char* raw = archive_entry_pathname(e);
    std::string name = raw ? raw : "";
    auto bad = [&name](std::string_view why) {
      return Error::invalid(fmt::format(
          "the source archive's entry \"{}\" {}; archives of a directory hold only relative "
          "paths inside it",
          name, why));
    };
    if (name.empty()) return bad("has no name");
    if (name.front() == '/') return bad("has an absolute path");
    auto parts = components(name);
    for (const auto& p : parts) {
      if (p == "..") return bad("contains \"..\"");
      if (p.rfind(".wh.", 0) == 0) return bad("is named like a layer whiteout (.wh.)");
    }
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO || type == AE_IFSOCK)
      return bad("is a device, FIFO or socket");
    if (type == AE_IFLNK) {
      const char* t = archive_entry_symlink(e);
      std::string target = t ? t : "";
      if (!link_stays_inside(name, target))
        return bad(
            fmt::format("is a symlink to \"{}\", which is absolute or leaves the tree", target));
    }
    if (const char* h = archive_entry_hardlink(e)) {
      std::string target = h;
      if (!link_stays_inside("", target))
        return bad(fmt::format("is a hard link to \"{}\", outside the tree", target));
    }
    if (++entries > limits.max_entries)
      return Error::invalid(
          fmt::format("the source archive has more than {} entries", limits.max_entries));
    if (archive_entry_size_is_set(e)) bytes += static_cast<std::uint64_t>(archive_entry_size(e));
    if (bytes > limits.max_bytes)
      return Error::invalid(
          fmt::format("the source is over {} bytes; leave build outputs and dependencies out with "
                      ".elafrosignore or .gitignore",
                      limits.max_bytes));
    archive_read_data_skip(a.get());
  }
  return {};
}

SourceArchiveStore::SourceArchiveStore(std::string root, SourceLimits limits)
    : root_(std::move(root)), limits_(limits) {
  std::error_code ec;
  fs::create_directories(root_ + "/sha256", ec);
}

std::string SourceArchiveStore::path_of(const std::string& digest) const {
  return root_ + "/sha256/" + digest.substr(7) + ".tar";
}

Result<std::string> SourceArchiveStore::add(const std::string& tar_path) {
  if (auto r = check_source_archive(tar_path, limits_); !r) return r.error();
  auto hex = sha256_file(tar_path);
  if (!hex) return hex.error();
  std::string digest = "sha256:" + *hex;
  std::string dst = path_of(digest);
  std::error_code ec;
  if (fs::exists(dst, ec)) return digest;
  std::random_device rd;
  std::string tmp = fmt::format("{}.{:08x}.tmp", dst, rd());
  fs::copy_file(tar_path, tmp, ec);
  if (!ec) fs::rename(tmp, dst, ec);
  if (ec) {
    std::error_code rm;
    fs::remove(tmp, rm);
    return Error::internal(fmt::format("cannot store the source archive: {}", errno_text(ec)));
  }
  return digest;
}

bool SourceArchiveStore::has(const std::string& digest) const {
  std::error_code ec;
  return valid_digest(digest) && fs::exists(path_of(digest), ec);
}

Result<void> SourceArchiveStore::unpack(const std::string& digest, const std::string& dir) const {
  if (!has(digest))
    return Error::not_found(fmt::format(
        "the source archive {} is not stored; upload the source again (elafros build create "
        "--source DIR)",
        digest));
  UnpackLimits limits;
  limits.max_layer_bytes = limits_.max_bytes;
  return unpack_layer(path_of(digest), dir, limits);
}

}  // namespace elafros
