#include "id_shift.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "elafros/errno_text.hpp"

namespace elafros {
namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

class Shifter {
 public:
  explicit Shifter(const IdMapping& map) : map_(map) {}

  Result<void> copy(const std::string& from, const std::string& to) {
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0) return fail("reading", from);
    ++stats.entries;
    uid_t uid = map_.host_id(st.st_uid);
    gid_t gid = map_.host_id(st.st_gid);
    mode_t perm = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(to.c_str(), 0700) != 0) return fail("creating", to);
      if (auto r = copy_children(from, to); !r) return r;
      if (::chown(to.c_str(), uid, gid) != 0 || ::chmod(to.c_str(), perm) != 0)
        return fail("setting the owner of", to);
      return times(to, st, 0);
    }
    if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        if (auto it = links_.find(key); it != links_.end()) {
          if (::link(it->second.c_str(), to.c_str()) != 0) return fail("linking", to);
          return {};
        }
        links_.emplace(key, to);
      }
      return copy_file(from, to, st, uid, gid, perm);
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(from.c_str(), target.data(), target.size());
      if (n < 0) return fail("reading the link", from);
      target.resize(static_cast<std::size_t>(n));
      if (::symlink(target.c_str(), to.c_str()) != 0) return fail("creating the link", to);
      if (::lchown(to.c_str(), uid, gid) != 0) return fail("setting the owner of", to);
      return times(to, st, AT_SYMLINK_NOFOLLOW);
    }
    // Device nodes, fifos and sockets.
    if (::mknod(to.c_str(), st.st_mode, st.st_rdev) != 0) return fail("creating the node", to);
    if (::lchown(to.c_str(), uid, gid) != 0 || ::chmod(to.c_str(), perm) != 0)
      return fail("setting the owner of", to);
    return times(to, st, 0);
  }

  ShiftStats stats;

 private:
  Result<void> copy_children(const std::string& from, const std::string& to) {
    DIR* dir = ::opendir(from.c_str());
    if (!dir) return fail("listing", from);
    struct Closer {
      DIR* d;
      ~Closer() { ::closedir(d); }
    } closer{dir};
    while (struct dirent* e = ::readdir(dir)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      std::string name = e->d_name;
      if (auto r = copy(from + "/" + name, to + "/" + name); !r) return r;
    }
    return {};
  }

  Result<void> copy_file(const std::string& from, const std::string& to, const struct stat& st,
                         uid_t uid, gid_t gid, mode_t perm) {
    Fd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (in.fd < 0) return fail("reading", from);
    Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (out.fd < 0) return fail("creating", to);
    off_t left = st.st_size;
    while (left > 0) {
      ssize_t n = ::copy_file_range(in.fd, nullptr, out.fd, nullptr,
                                    static_cast<std::size_t>(left), 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
        n = plain_copy(in.fd, out.fd);
        if (n < 0) return fail("copying", from);
        if (n == 0) break;
      } else if (n < 0) {
        return fail("copying", from);
      } else if (n == 0) {
        break;  // the file shrank meanwhile
      }
      left -= n;
      stats.bytes += static_cast<std::uint64_t>(n);
    }
    // The owner before the mode: chown clears set-user-ID and set-group-ID bits.
    if (::fchown(out.fd, uid, gid) != 0 || ::fchmod(out.fd, perm) != 0)
      return fail("setting the owner of", to);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::futimens(out.fd, ts) != 0) return fail("setting the times of", to);
    return {};
  }

  static ssize_t plain_copy(int in, int out) {
    char buf[65536];
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n <= 0) return n;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf + done, static_cast<std::size_t>(n - done));
      if (w < 0) return -1;
      done += w;
    }
    return n;
  }

  static Result<void> times(const std::string& path, const struct stat& st, int flags) {
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(AT_FDCWD, path.c_str(), ts, flags) != 0) return fail("setting the times of", path);
    return {};
  }

  static Result<void> fail(const char* what, const std::string& path) {
    return Error::internal(fmt::format("{} {} failed: {}", what, path, errno_text(errno)));
  }

  IdMapping map_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

Result<ShiftStats> copy_shifted(const std::string& from, const std::string& to,
                                const IdMapping& map) {
  Shifter shifter(map);
  if (auto r = shifter.copy(from, to); !r) return r.error();
  return shifter.stats;
}

}  // namespace elafros
