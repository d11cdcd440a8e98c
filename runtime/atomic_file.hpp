#pragma once
// Durable file replacement, for bundles, credentials and anything else a crash must not tear.

#include <string>
#include <string_view>

#include "elafros/result.hpp"

namespace elafros {

// Writes all of `data` to `fd`, retrying short writes and EINTR. False (errno set) on failure.
bool write_all(int fd, std::string_view data);

// Writes a file atomically: a temp file with `mode`, fsync, rename over `path`, fsync of the
// directory. A reader sees the old content or the new, never a mix, even after a power cut.
Result<void> write_file_atomic(const std::string& path, const std::string& content,
                               int mode = 0644);

}  // namespace elafros
