#pragma once
// A copy of a directory tree whose owners are shifted into a user namespace's host id range
// (docs/architecture.md, "Isolation"): runc 1.1 has no id-mapped mounts, so an instance in a
// user namespace gets an image root filesystem chowned once per image and mapping.

#include <cstdint>
#include <string>

#include "elafros/result.hpp"
#include "oci_spec.hpp"

namespace elafros {

struct ShiftStats {
  std::uint64_t entries = 0;  // files, directories, links and nodes copied
  std::uint64_t bytes = 0;    // file data copied
};

// Copies `from` to `to` (which must not exist): file data, modes, times, hard links within the
// tree, symlinks and device nodes, with every owner uid and gid u turned into map.host_id(u).
// Extended attributes are not copied (file capabilities would name the host's root).
Result<ShiftStats> copy_shifted(const std::string& from, const std::string& to,
                                const IdMapping& map);

}  // namespace elafros
