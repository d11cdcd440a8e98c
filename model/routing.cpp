#include "elafros/routing.hpp"

#include <algorithm>
#include <cctype>

namespace elafros {

RoutingTable::RoutingTable() {
  for (auto& s : shards_) s = std::make_shared<Shard>();
  owned_.fill(true);
}

RoutingTable::RoutingTable(const RoutingTable& base) : shards_(base.shards_), size_(base.size_) {}

RoutingTable::Shard& RoutingTable::writable(std::size_t i) {
  if (!owned_[i]) {
    shards_[i] = std::make_shared<Shard>(*shards_[i]);
    owned_[i] = true;
  }
  return *shards_[i];
}

void RoutingTable::add(std::string host, std::shared_ptr<const ServiceRoute> route) {
  Shard& shard = writable(shard_of(host));
  if (shard.insert_or_assign(std::move(host), std::move(route)).second) ++size_;
}

void RoutingTable::remove(const std::string& host) {
  std::size_t i = shard_of(host);
  if (!shards_[i]->count(host)) return;
  writable(i).erase(host);
  --size_;
}

const ServiceRoute* RoutingTable::find(std::string_view host_header) const {
  std::string_view host = host_header;
  if (!host.empty() && host.front() == '[') return nullptr;  // IPv6 literals never name a service
  if (auto colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  // Lowercased on the stack: no allocation per request (host names are at most 253 bytes).
  char buffer[256];
  if (host.size() > sizeof buffer) return nullptr;
  for (std::size_t i = 0; i < host.size(); ++i)
    buffer[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(host[i])));
  std::string_view key(buffer, host.size());
  const Shard& shard = *shards_[shard_of(key)];
  auto it = shard.find(key);
  return it == shard.end() ? nullptr : it->second.get();
}

std::string service_host(std::string_view name, std::string_view ns, std::string_view domain) {
  std::string host;
  host.reserve(name.size() + ns.size() + domain.size() + 2);
  host.append(name).append(".").append(ns).append(".").append(domain);
  return host;
}

}  // namespace elafros
