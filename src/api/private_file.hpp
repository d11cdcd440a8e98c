#pragma once
// Files only their owner reads (keys, token hashes, certificates): read whole, and written
// atomically (a temporary file, fsync, rename) with mode 0600.

#include <string>

#include "elafros/result.hpp"

namespace elafros {

std::string read_whole_file(const std::string& path);  // "" when missing
Result<void> write_private_file(const std::string& path, const std::string& data);

}  // namespace elafros
