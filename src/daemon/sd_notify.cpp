#include "daemon/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace elafros {

namespace {
std::string& notify_socket() {
  static std::string path;
  return path;
}
}  // namespace

void take_notify_socket() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path) notify_socket() = path;
  // Children must not see it: runc would hand it to the container and wait for the app's own
  // READY=1 before returning from 'runc run --detach'.
  ::unsetenv("NOTIFY_SOCKET");
}

bool notify_systemd(const char* state_text) {
  const std::string& saved = notify_socket();
  const char* path = saved.c_str();
  const char* state = state_text;
  if (saved.empty() || (path[0] != '/' && path[0] != '@')) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // an abstract socket
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  socklen_t size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  bool ok = ::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL,
                     reinterpret_cast<sockaddr*>(&addr), size) >= 0;
  ::close(fd);
  return ok;
}

}  // namespace elafros
