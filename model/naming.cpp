#include "elafros/naming.hpp"

#include <fmt/format.h>

namespace elafros {

std::optional<std::string> dns1035_label_problem(std::string_view name) {
  constexpr std::size_t kMax = 63;
  if (name.empty()) return "a name is required";
  if (name.size() > kMax)
    return fmt::format("must be at most {} characters (it has {})", kMax, name.size());
  if (name.front() < 'a' || name.front() > 'z') return "must start with a lowercase letter";
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok)
      return fmt::format("may contain only lowercase letters, digits and '-' (found '{}')", c);
  }
  if (name.back() == '-') return "must end with a letter or digit";
  return std::nullopt;
}

std::pair<std::string, std::string> split_path_and_tag(std::string_view rest, bool archive) {
  for (std::size_t i = 0; i < rest.size(); ++i)
    if (rest[i] == ':' && (archive || rest.find('/', i) == std::string_view::npos))
      return {std::string(rest.substr(0, i)), std::string(rest.substr(i + 1))};
  return {std::string(rest), ""};
}

std::string revision_name(std::string_view service, int index) {
  return fmt::format("{}-{:05d}", service, index);
}

bool link_stays_inside(std::string_view link_path, std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  long depth = -1;  // the link's directory: its path's components but the last
  for (std::string_view rest = link_path; !rest.empty();) {
    auto slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (!part.empty() && part != ".") ++depth;
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  if (depth < 0) depth = 0;
  for (std::string_view rest = target; !rest.empty();) {
    auto slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part == "..") {
      if (--depth < 0) return false;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  return true;
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace elafros
