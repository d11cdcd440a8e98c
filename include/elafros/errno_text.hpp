#pragma once
// strerror, safe to call from several threads (std::strerror may share a static buffer).

#include <string.h>

#include <string>

namespace elafros {

inline std::string errno_text(int error) {
  char buf[256];
  return ::strerror_r(error, buf, sizeof buf);  // the GNU variant: returns the message
}

}  // namespace elafros
