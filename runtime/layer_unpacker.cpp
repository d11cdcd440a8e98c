#include "layer_unpacker.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <unordered_set>
#include <vector>

#include "elafros/errno_text.hpp"

namespace fs = std::filesystem;

namespace elafros {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr int kMaxSymlinkHops = 40;

std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    if (!part.empty() && part != ".") parts.emplace_back(part);
    i = j + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out.append(out.empty() ? "" : "/").append(p);
  return out;
}

// libarchive may have no message for an error; never hand fmt a null string.
const char* archive_message(archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "malformed archive";
}

// Checks an entry's own path: relative, and no "..". Returns its components.
Result<std::vector<std::string>> entry_components(std::string_view name, std::string_view what) {
  if (!name.empty() && name.front() == '/')
    return Error::invalid(fmt::format("{} \"{}\" has an absolute path", what, name));
  auto parts = split(name);
  for (const auto& p : parts)
    if (p == "..") return Error::invalid(fmt::format("{} \"{}\" contains \"..\"", what, name));
  return parts;
}

class Unpacker {
 public:
  Unpacker(std::string root, const UnpackLimits& limits)
      : root_(std::move(root)), limits_(limits) {}

  Result<void> run(const std::string& layer_path) {
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    if (archive_read_open_filename(a.get(), layer_path.c_str(), 1 << 16) != ARCHIVE_OK)
      return Error::invalid(
          fmt::format("layer {} cannot be read: {}", layer_path, archive_message(a.get())));
    std::uint64_t total = 0;
    for (;;) {
      archive_entry* entry = nullptr;
      int rc = archive_read_next_header(a.get(), &entry);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN)
        return Error::invalid(fmt::format("layer {} is not a valid tar archive: {}", layer_path,
                                          archive_message(a.get())));
      if (auto r = apply(a.get(), entry, total); !r)
        return Error::invalid(
            fmt::format("layer {} was refused: {}", layer_path, r.error().message));
    }
    return {};
  }

 private:
  // Resolves a directory path inside the root, following symlinks as the container would see
  // them (absolute targets start again at the root), creating missing directories. Fails if
  // resolution would leave the root. Returns the resolved components.
  Result<std::vector<std::string>> resolve_dir(const std::vector<std::string>& parts,
                                               std::string_view entry_name, bool create) {
    std::vector<std::string> resolved;
    std::deque<std::string> todo(parts.begin(), parts.end());
    int hops = 0;
    while (!todo.empty()) {
      std::string c = std::move(todo.front());
      todo.pop_front();
      if (c.empty() || c == ".") continue;
      if (c == "..") {
        if (resolved.empty())
          return Error::invalid(
              fmt::format("entry \"{}\" goes through a symlink that points outside the image root",
                          entry_name));
        resolved.pop_back();
        continue;
      }
      std::string path = abs(resolved) + "/" + c;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT || !create)
          return Error::invalid(fmt::format("entry \"{}\": {} cannot be examined: {}", entry_name,
                                            c, errno_text(errno)));
        if (::mkdir(path.c_str(), 0755) != 0)
          return Error::internal(fmt::format("entry \"{}\": cannot create directory {}: {}",
                                             entry_name, path, errno_text(errno)));
        resolved.push_back(std::move(c));
        continue;
      }
      if (S_ISLNK(st.st_mode)) {
        // An entry is never written through a symlink, wherever the link points: the layer
        // must name the real path (containerd and Docker write layers that way).
        if (create) {
          auto rel = resolved;
          rel.push_back(c);
          return Error::invalid(fmt::format(
              "entry \"{}\" would be written through the symlink \"{}\"", entry_name, join(rel)));
        }
        if (++hops > kMaxSymlinkHops)
          return Error::invalid(
              fmt::format("entry \"{}\" goes through too many symlinks", entry_name));
        std::string target = fs::read_symlink(path).string();
        if (!target.empty() && target.front() == '/') resolved.clear();
        auto tparts = split(target);
        for (auto it = tparts.rbegin(); it != tparts.rend(); ++it) todo.push_front(*it);
        continue;
      }
      if (!S_ISDIR(st.st_mode))
        return Error::invalid(
            fmt::format("entry \"{}\": \"{}\" is not a directory", entry_name, c));
      resolved.push_back(std::move(c));
    }
    return resolved;
  }

  std::string abs(const std::vector<std::string>& rel) const {
    return rel.empty() ? root_ : root_ + "/" + join(rel);
  }

  void mark_written(std::vector<std::string> rel) {
    while (!rel.empty()) {
      if (!written_.insert(join(rel)).second) break;
      rel.pop_back();
    }
  }

  Result<void> apply(archive* a, archive_entry* entry, std::uint64_t& total) {
    const char* raw = archive_entry_pathname(entry);
    std::string name = raw ? raw : "";
    auto parts = entry_components(name, "entry");
    if (!parts) return parts.error();
    if (parts->empty()) return {};  // the root itself
    // Device nodes give a container access to host devices; runc creates the ones it needs.
    if (mode_t t = archive_entry_filetype(entry); t == AE_IFCHR || t == AE_IFBLK)
      return Error::invalid(
          fmt::format("entry \"{}\" is a device node; images may not carry device nodes", name));
    std::string base = parts->back();
    parts->pop_back();
    auto dir = resolve_dir(*parts, name, true);
    if (!dir) return dir.error();
    std::string dir_path = abs(*dir);

    if (base == kOpaqueMarker) return make_opaque(*dir);
    if (base.rfind(kWhiteoutPrefix, 0) == 0) {
      std::string victim = base.substr(kWhiteoutPrefix.size());
      if (victim.empty() || victim == "." || victim == "..")
        return Error::invalid(fmt::format("entry \"{}\" is a malformed whiteout", name));
      std::error_code ec;
      fs::remove_all(dir_path + "/" + victim, ec);
      return {};
    }

    std::string path = dir_path + "/" + base;
    auto rel = *dir;
    rel.push_back(base);
    mark_written(rel);
    mode_t type = archive_entry_filetype(entry);
    const char* hardlink = archive_entry_hardlink(entry);

    struct stat existing {};
    bool exists = ::lstat(path.c_str(), &existing) == 0;
    if (exists && !(type == AE_IFDIR && S_ISDIR(existing.st_mode))) {
      std::error_code ec;
      fs::remove_all(path, ec);
      if (ec)
        return Error::internal(
            fmt::format("entry \"{}\": cannot replace {}: {}", name, path, errno_text(ec)));
      exists = false;
    }

    auto uid = static_cast<uid_t>(archive_entry_uid(entry));
    auto gid = static_cast<gid_t>(archive_entry_gid(entry));
    mode_t perm = archive_entry_perm(entry);

    if (hardlink) {
      auto tparts = entry_components(hardlink, "hardlink target of entry");
      if (!tparts)
        return Error::invalid(fmt::format("entry \"{}\": {}", name, tparts.error().message));
      if (tparts->empty())
        return Error::invalid(fmt::format("entry \"{}\" is a hardlink to the root", name));
      std::string tbase = tparts->back();
      tparts->pop_back();
      auto tdir = resolve_dir(*tparts, name, false);
      if (!tdir) return tdir.error();
      std::string target = abs(*tdir) + "/" + tbase;
      struct stat tst {};
      if (::lstat(target.c_str(), &tst) != 0)
        return Error::invalid(
            fmt::format("entry \"{}\" is a hardlink to \"{}\", which does not exist in the image",
                        name, hardlink));
      if (S_ISDIR(tst.st_mode))
        return Error::invalid(fmt::format("entry \"{}\" is a hardlink to a directory", name));
      if (::linkat(AT_FDCWD, target.c_str(), AT_FDCWD, path.c_str(), 0) != 0)
        return Error::internal(
            fmt::format("entry \"{}\": link failed: {}", name, errno_text(errno)));
      return {};
    }

    switch (type) {
      case AE_IFDIR:
        if (!exists && ::mkdir(path.c_str(), 0700) != 0)
          return Error::internal(
              fmt::format("entry \"{}\": mkdir failed: {}", name, errno_text(errno)));
        if (::lchown(path.c_str(), uid, gid) != 0 || ::chmod(path.c_str(), perm) != 0)
          return Error::internal(fmt::format("entry \"{}\": setting owner and mode failed: {}",
                                             name, errno_text(errno)));
        return {};
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        if (::symlink(target ? target : "", path.c_str()) != 0)
          return Error::internal(
              fmt::format("entry \"{}\": symlink failed: {}", name, errno_text(errno)));
        if (::lchown(path.c_str(), uid, gid) != 0) {
          // Not fatal: the owner of a symlink does not matter for following it.
        }
        return {};
      }
      case AE_IFREG:
        return write_file(a, entry, path, name, uid, gid, perm, total);
      case AE_IFIFO: {
        dev_t dev = makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
        if (::mknod(path.c_str(), type | perm, dev) != 0)
          return Error::internal(
              fmt::format("entry \"{}\": mknod failed: {}", name, errno_text(errno)));
        if (::lchown(path.c_str(), uid, gid) != 0 || ::chmod(path.c_str(), perm) != 0)
          return Error::internal(fmt::format("entry \"{}\": setting owner and mode failed: {}",
                                             name, errno_text(errno)));
        return {};
      }
      default:
        return {};  // sockets and unknown types carry no data; skip them as other runtimes do
    }
  }

  Result<void> write_file(archive* a, archive_entry* entry, const std::string& path,
                          const std::string& name, uid_t uid, gid_t gid, mode_t perm,
                          std::uint64_t& total) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      return Error::internal(
          fmt::format("entry \"{}\": create failed: {}", name, errno_text(errno)));
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    const void* buf = nullptr;
    std::size_t size = 0;
    la_int64_t offset = 0;
    for (;;) {
      int rc = archive_read_data_block(a, &buf, &size, &offset);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN)
        return Error::invalid(
            fmt::format("entry \"{}\": reading its data failed: {}", name, archive_message(a)));
      total += size;
      if (total > limits_.max_layer_bytes)
        return Error::invalid(
            fmt::format("the layer unpacks to more than {} bytes (limit reached at entry \"{}\")",
                        limits_.max_layer_bytes, name));
      const char* p = static_cast<const char*>(buf);
      while (size > 0) {
        ssize_t n = ::pwrite(fd, p, size, offset);
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error::internal(
              fmt::format("entry \"{}\": write failed: {}", name, errno_text(errno)));
        }
        p += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
      }
    }
    if (::ftruncate(fd, archive_entry_size(entry)) != 0 || ::fchown(fd, uid, gid) != 0 ||
        ::fchmod(fd, perm) != 0)
      return Error::internal(fmt::format("entry \"{}\": setting size, owner and mode failed: {}",
                                         name, errno_text(errno)));
    struct timespec times[2] = {{archive_entry_mtime(entry), 0}, {archive_entry_mtime(entry), 0}};
    (void)::futimens(fd, times);
    return {};
  }

  // Hides what lower layers put in the directory, keeping what this layer wrote.
  Result<void> make_opaque(const std::vector<std::string>& dir) {
    std::string dir_path = abs(dir);
    std::error_code ec;
    for (const auto& child : fs::directory_iterator(dir_path, ec)) {
      auto rel = dir;
      rel.push_back(child.path().filename().string());
      if (written_.count(join(rel))) continue;
      fs::remove_all(child.path(), ec);
    }
    return {};
  }

  std::string root_;
  UnpackLimits limits_;
  std::unordered_set<std::string> written_;  // paths this layer wrote, relative to the root
};

}  // namespace

Result<void> unpack_layer(const std::string& layer_path, const std::string& root,
                          const UnpackLimits& limits) {
  Unpacker u(root, limits);
  return u.run(layer_path);
}

}  // namespace elafros
