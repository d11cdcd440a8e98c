#include "atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "elafros/errno_text.hpp"

namespace fs = std::filesystem;

namespace elafros {

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Result<void> write_file_atomic(const std::string& path, const std::string& content, int mode) {
  std::string tmp = path + ".tmp";
  // A fresh file (O_EXCL) gets exactly `mode`; a leftover one could be open elsewhere.
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 0777);
  if (fd < 0) return Error::internal(fmt::format("cannot write {}: {}", tmp, errno_text(errno)));
  ::fchmod(fd, static_cast<mode_t>(mode));  // the umask does not narrow it either
  if (!write_all(fd, content)) {
    int err = errno;
    ::close(fd);
    return Error::internal(fmt::format("cannot write {}: {}", tmp, errno_text(err)));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0)
    return Error::internal(fmt::format("cannot flush {}: {}", tmp, errno_text(errno)));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return Error::internal(fmt::format("cannot rename {} into place: {}", tmp, errno_text(errno)));
  std::string dir = fs::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace elafros
