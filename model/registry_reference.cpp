#include "elafros/registry_reference.hpp"

#include <fmt/format.h>

#include <regex>

namespace elafros {

std::string RegistryReference::str() const {
  std::string out = registry + "/" + repository;
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

bool is_transport_reference(const std::string& reference) {
  for (const char* t :
       {"oci:", "oci-archive:", "docker-archive:", "docker://", "dir:", "containers-storage:"})
    if (reference.rfind(t, 0) == 0) return true;
  return false;
}

Result<RegistryReference> parse_registry_reference(const std::string& input) {
  std::string ref = input;
  if (ref.rfind("docker://", 0) == 0) ref = ref.substr(9);
  auto bad = [&](const std::string& why) {
    return Error::invalid(fmt::format("image reference \"{}\" is not valid: {}", input, why));
  };
  if (ref.empty()) return bad("it is empty");

  RegistryReference r;
  if (auto at = ref.find('@'); at != std::string::npos) {
    r.digest = ref.substr(at + 1);
    ref = ref.substr(0, at);
    static const std::regex kDigest("sha256:[0-9a-f]{64}");
    if (!std::regex_match(r.digest, kDigest))
      return bad("the digest must be sha256: and 64 lowercase hex digits");
  }
  // A tag follows the last ':' after the last '/'.
  auto slash = ref.rfind('/');
  auto colon = ref.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    r.tag = ref.substr(colon + 1);
    ref = ref.substr(0, colon);
    static const std::regex kTag("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    if (!std::regex_match(r.tag, kTag))
      return bad("a tag is up to 128 letters, digits, '_', '.' and '-'");
  }
  // The first component is a registry when it looks like a host: a '.', a ':' or "localhost".
  auto first_slash = ref.find('/');
  std::string first = ref.substr(0, first_slash);
  if (first_slash != std::string::npos &&
      (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
       first == "localhost")) {
    r.registry = first;
    r.repository = ref.substr(first_slash + 1);
  } else {
    r.registry = "docker.io";
    r.repository = ref;
  }
  if (r.registry == "index.docker.io") r.registry = "docker.io";
  if (r.registry == "docker.io" && r.repository.find('/') == std::string::npos)
    r.repository = "library/" + r.repository;
  static const std::regex kRepository(
      "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
  if (!std::regex_match(r.repository, kRepository))
    return bad(fmt::format(
        "repository \"{}\" may hold only lowercase letters, digits and separators (. _ - /)",
        r.repository));
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

}  // namespace elafros
