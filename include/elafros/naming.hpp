#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace elafros {

// Kubernetes DNS-1035 label: lowercase alphanumerics and '-', starting with a letter, ending
// with an alphanumeric, at most 63 characters. Returns what is wrong, or nullopt when valid.
std::optional<std::string> dns1035_label_problem(std::string_view name);

// Splits the part of a transport reference after "oci:", "oci-archive:" or "docker-archive:"
// into the path and the tag (or NAME:TAG), as skopeo does: an archive's file name ends at the
// first ':' (the reference after it may hold '/' and ':'); a layout directory's path ends at the
// first ':' that no '/' follows (a tag holds no '/').
std::pair<std::string, std::string> split_path_and_tag(std::string_view rest, bool archive);

// Whether a symlink at `link_path` (relative to a tree's root, '/'-separated) whose target is
// `target` stays inside the tree: a relative target that never climbs above the root. What a
// source upload, a source directory and an image's app layer may hold.
bool link_stays_inside(std::string_view link_path, std::string_view target);

// Revision names are NAME-00001, NAME-00002, …
std::string revision_name(std::string_view service, int index);

// ASCII letters lowercased (header names, kinds in subjects).
std::string ascii_lower(std::string_view text);

}  // namespace elafros
