#pragma once
// Base64 (RFC 4648, with padding): registry auth, CloudEvents' data_base64 and error data.

#include <optional>
#include <string>
#include <string_view>

namespace elafros {

std::string base64_encode(std::string_view data);
// nullopt when the text is not padded base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace elafros
