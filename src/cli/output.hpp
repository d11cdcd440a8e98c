#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace elafros::cli {

std::string to_pretty_json(const boost::json::value& v);
// Left-aligned columns separated by three spaces, as kn prints them.
std::string table(const std::vector<std::vector<std::string>>& rows);
// "5s", "3m", "2h", "4d" since an RFC 3339 timestamp.
std::string age(const std::string& rfc3339);
// "1.0 MiB"
std::string human_size(std::int64_t bytes);
// The value at a dotted path ("status.url"), or "" when absent.
std::string field(const boost::json::value& v, const std::string& path);

}  // namespace elafros::cli
