#pragma once
// strerror, safe to call from several threads (std::strerror may share a static buffer), with
// what to do about the errors a full disk or a descriptor shortage gives (docs/architecture.md,
// "Faults"): every writer's error then says it.

#include <string.h>

#include <string>
#include <system_error>

namespace elafros {

inline std::string errno_text(int error) {
  char buf[256];
  std::string text = ::strerror_r(error, buf, sizeof buf);  // the GNU variant: the message
  if (error == ENOSPC || error == EDQUOT)
    text += " (free space on that file system, and retry)";
  else if (error == EMFILE || error == ENFILE)
    text += " (the daemon is out of file descriptors: raise LimitNOFILE or ulimit -n, and retry)";
  return text;
}

// The same for a std::filesystem error.
inline std::string errno_text(const std::error_code& ec) {
  return ec.category() == std::generic_category() || ec.category() == std::system_category()
             ? errno_text(ec.value())
             : ec.message();
}

}  // namespace elafros
