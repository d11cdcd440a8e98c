#pragma once
// A network namespace per instance (docs/architecture.md, "Isolation"): a bridge on a private
// subnet, one veth per instance with bridge port isolation, NAT for egress, and nftables rules
// that keep instances from each other and from the host, but for the proxy's port. Wired in
// process with rtnetlink (libmnl) and libnftables: an `ip` or CNI exec costs 5-40 ms, a cold
// start must not. A warm pool keeps namespaces wired ahead, so that a cold start only hands
// runc a path (linux.namespaces[].path).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "elafros/result.hpp"

namespace elafros {

struct BridgeOptions {
  std::string bridge = "elafros0";
  std::string subnet = "10.63.0.0/16";   // a /16 to /24; the bridge (the gateway) takes .1
  std::string run_dir = "/run/elafros";  // namespaces are bind-mounted under <run_dir>/<bridge>/
  std::size_t pool_size = 8;             // namespaces kept wired ahead
  // The proxy's port: instances may reach it on the gateway address (the brokers' ingress,
  // and services when the proxy allows it); every other host port is closed to them.
  std::uint16_t proxy_port = 0;
  // user-namespaces: namespaces are made in a user namespace mapping container ids
  // 0..userns_size-1 to host ids userns_base.., bind-mounted at <run_dir>/<bridge>/userns, so
  // that an instance joining both owns its network (sysfs mounts, runc exec). 0: none.
  std::uint32_t userns_base = 0;
  std::uint32_t userns_size = 0;
};

// One instance's network: its namespace (what runc joins) and its address on the bridge.
struct NetworkSlot {
  std::string netns_path;
  std::string address;
  std::string userns_path;  // the user namespace that owns the network one; "": the host's
};

class BridgeNetwork final {
 public:
  // Sets up the bridge, its address, ip_forward and the nftables table; idempotent, so that a
  // restart after kill -9 finds what it left and carries on.
  static Result<std::unique_ptr<BridgeNetwork>> open(BridgeOptions options);
  ~BridgeNetwork();
  BridgeNetwork(const BridgeNetwork&) = delete;
  BridgeNetwork& operator=(const BridgeNetwork&) = delete;

  // A wired namespace for the instance: from the pool, or wired now when the pool is empty.
  Result<NetworkSlot> acquire(const std::string& instance_id);
  // The namespace an instance had before a restart, found by its address; re-attached to the
  // bridge. Fails when it is gone (the instance is then not adoptable).
  Result<NetworkSlot> adopt(const std::string& instance_id, const std::string& address);
  // The instance's address, or "" when it has none.
  std::string address_of(const std::string& instance_id) const;
  // Removes the instance's namespace (its veth goes with it); its address is reused last.
  void release(const std::string& instance_id);
  // Removes every namespace under the run dir that no instance holds and the pool does not
  // (after adoption at start), and the veths that lost theirs.
  void remove_unused();
  // Wires namespaces until the pool is full (off the cold path: the caller's thread).
  bool fill_pool();  // false when wiring failed
  // From now on, a thread of its own refills the pool whenever an acquire takes from it.
  void start_refilling();
  // Removes the pool, the nftables table and the bridge (at stop); instances' namespaces stay,
  // to be adopted.
  void shut_down();

  const std::string& gateway() const { return gateway_; }
  std::uint32_t subnet_base() const { return base_; }
  std::uint32_t subnet_mask() const { return ~0u << (32 - prefix_); }
  const BridgeOptions& options() const { return options_; }

 private:
  explicit BridgeNetwork(BridgeOptions options);
  Result<void> set_up();
  Result<NetworkSlot> wire(std::uint32_t index);
  void unwire(std::uint32_t index);
  // Deletes the connection tracking entries of index's address (as source or destination).
  void forget_connections(std::uint32_t index);
  Result<void> isolate_port(int host_end, const std::string& veth);
  std::string netns_path(std::uint32_t index) const;
  std::string veth_name(std::uint32_t index) const;
  std::string address(std::uint32_t index) const;
  Result<void> nft(const std::string& commands);
  std::string table_name() const;
  std::string userns_path() const;  // "" without user namespaces
  Result<void> make_user_namespace();

  BridgeOptions options_;
  std::uint32_t base_ = 0;  // the subnet's first address, host order
  int prefix_ = 16;
  std::uint32_t slots_ = 0;  // indices 1 … slots_ (address base + 1 + index)
  std::string gateway_;
  std::string veth_prefix_;
  struct Netlink;
  std::unique_ptr<Netlink> netlink_;
  std::unique_ptr<Netlink> conntrack_;  // NETLINK_NETFILTER, in the host's namespace

  mutable std::mutex mutex_;         // the control thread and the blocking threads; never the proxy
  std::deque<std::uint32_t> free_;   // never used, or released longest ago
  std::vector<std::uint32_t> pool_;  // wired, waiting for an instance
  std::map<std::string, std::uint32_t> in_use_;  // instance id → index
  std::condition_variable refill_;
  bool stopping_ = false;
  bool shut_ = false;
  std::thread refiller_;
};

}  // namespace elafros
