#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace elafros {

// Kubernetes DNS-1035 label: lowercase alphanumerics and '-', starting with a letter, ending
// with an alphanumeric, at most 63 characters. Returns what is wrong, or nullopt when valid.
std::optional<std::string> dns1035_label_problem(std::string_view name);

// Revision names are NAME-00001, NAME-00002, …
std::string revision_name(std::string_view service, int index);

}  // namespace elafros
