#include "elafros/routing.hpp"

#include <algorithm>
#include <cctype>

namespace elafros {

void RoutingTable::add(std::string host, std::shared_ptr<const ServiceRoute> route) {
  hosts_.insert_or_assign(std::move(host), std::move(route));
}

const ServiceRoute* RoutingTable::find(std::string_view host_header) const {
  std::string_view host = host_header;
  if (!host.empty() && host.front() == '[') return nullptr;  // IPv6 literals never name a service
  if (auto colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string key(host);
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = hosts_.find(key);
  return it == hosts_.end() ? nullptr : it->second.get();
}

std::string service_host(std::string_view name, std::string_view ns, std::string_view domain) {
  std::string host;
  host.reserve(name.size() + ns.size() + domain.size() + 2);
  host.append(name).append(".").append(ns).append(".").append(domain);
  return host;
}

}  // namespace elafros
