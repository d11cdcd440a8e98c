#include "bridge_network.hpp"

// <net/if.h> before the kernel's headers, which then leave its definitions alone.
#include <net/if.h>
// clang-format off
#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
// clang-format on
#include <nftables/libnftables.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "atomic_file.hpp"
#include "elafros/errno_text.hpp"
#include "fmt/format.h"

namespace fs = std::filesystem;

namespace elafros {

// A NETLINK_ROUTE socket in the network namespace of the thread that opened it (it stays
// there when used from another thread).
struct BridgeNetwork::Netlink {
  mnl_socket* sock = nullptr;
  unsigned portid = 0;
  unsigned seq = 1;

  static std::unique_ptr<Netlink> open(int bus = NETLINK_ROUTE) {
    auto n = std::make_unique<Netlink>();
    n->sock = mnl_socket_open(bus);
    if (!n->sock) return nullptr;
    if (mnl_socket_bind(n->sock, 0, MNL_SOCKET_AUTOPID) < 0) return nullptr;
    n->portid = mnl_socket_get_portid(n->sock);
    return n;
  }
  ~Netlink() {
    if (sock) mnl_socket_close(sock);
  }

  std::mutex mutex;  // one request at a time: the sequence numbers and replies are the socket's

  // Sends one request and waits for its acknowledgement; errno's value on failure. A reply
  // (to a get) goes to `on_reply`.
  int request(nlmsghdr* nlh, mnl_cb_t on_reply = nullptr, void* data = nullptr) {
    std::lock_guard lock(mutex);
    // A get is answered by its reply alone; anything else by an acknowledgement.
    nlh->nlmsg_flags |= NLM_F_REQUEST | (on_reply ? 0 : NLM_F_ACK);
    nlh->nlmsg_seq = seq++;
    if (mnl_socket_sendto(sock, nlh, nlh->nlmsg_len) < 0) return errno;
    char buf[8192];
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(sock, buf, sizeof buf);
      if (n < 0) return errno;
      int r = mnl_cb_run(buf, static_cast<std::size_t>(n), nlh->nlmsg_seq, portid, on_reply, data);
      if (r < 0) return errno;
      if (r == MNL_CB_STOP || on_reply) return 0;
    }
  }

  // Sends a dump request and hands every message of the answer to `on_reply`, to its end.
  int dump(nlmsghdr* nlh, mnl_cb_t on_reply, void* data) {
    std::lock_guard lock(mutex);
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = seq++;
    if (mnl_socket_sendto(sock, nlh, nlh->nlmsg_len) < 0) return errno;
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
    for (int parts = 0; parts < 100000; ++parts) {  // bounded: a dump ends with NLMSG_DONE
      ssize_t n = mnl_socket_recvfrom(sock, buf.data(), buf.size());
      if (n < 0) return errno;
      int r = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), nlh->nlmsg_seq, portid,
                         on_reply, data);
      if (r < 0) return errno;
      if (r == MNL_CB_STOP) return 0;
    }
    return EOVERFLOW;
  }

  // The index of link `name` in this socket's namespace (0: none), whatever the calling
  // thread's namespace is.
  int link_index(const std::string& name);
};

namespace {

struct Message {
  alignas(nlmsghdr) char buf[8192];
  nlmsghdr* nlh;
  Message(std::uint16_t type, std::uint16_t flags) {
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
  }
  ifinfomsg* link(int index, unsigned char family = AF_UNSPEC) {
    auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifm->ifi_family = family;
    ifm->ifi_index = index;
    return ifm;
  }
  // RTM_NEWLINK's body that brings link `index` up.
  ifinfomsg* link_up(int index) {
    ifinfomsg* ifm = link(index);
    ifm->ifi_flags = IFF_UP;
    ifm->ifi_change = IFF_UP;
    return ifm;
  }
  // RTM_NEWADDR's body: IP (host order)/PREFIX on link `index`.
  void address(int index, std::uint32_t ip, int prefix) {
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<unsigned>(index);
    mnl_attr_put_u32(nlh, IFA_LOCAL, htonl(ip));
    mnl_attr_put_u32(nlh, IFA_ADDRESS, htonl(ip));
  }
};

int on_link(const nlmsghdr* nlh, void* data) {
  const auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  *static_cast<int*>(data) = ifm->ifi_index;
  return MNL_CB_OK;
}

// Calls fn on each attribute in [from, to).
template <class Fn>
void each_attribute(const void* from, const void* to, Fn fn) {
  const char* end = static_cast<const char*>(to);
  for (auto* a = static_cast<const nlattr*>(from);
       mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a))
    fn(a);
}

template <class Fn>
void each_nested(const nlattr* nest, Fn fn) {
  const char* payload = static_cast<const char*>(mnl_attr_get_payload(nest));
  each_attribute(payload, payload + mnl_attr_get_payload_len(nest), fn);
}

// The IPv4 source and destination (network order) of a conntrack tuple attribute.
std::pair<std::uint32_t, std::uint32_t> tuple_addresses(const nlattr* tuple) {
  std::pair<std::uint32_t, std::uint32_t> out{0, 0};
  each_nested(tuple, [&out](const nlattr* ip) {
    if (mnl_attr_get_type(ip) != CTA_TUPLE_IP) return;
    each_nested(ip, [&out](const nlattr* a) {
      if (mnl_attr_get_type(a) == CTA_IP_V4_SRC) out.first = mnl_attr_get_u32(a);
      if (mnl_attr_get_type(a) == CTA_IP_V4_DST) out.second = mnl_attr_get_u32(a);
    });
  });
  return out;
}

// The original tuples, as raw attributes, of the connections an address took part in.
struct ConntrackMatch {
  std::uint32_t address;  // network order
  std::vector<std::vector<char>> tuples;
};

int on_conntrack(const nlmsghdr* nlh, void* data) {
  auto& match = *static_cast<ConntrackMatch*>(data);
  const nlattr* orig = nullptr;
  bool involved = false;
  each_attribute(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)),
                 mnl_nlmsg_get_payload_tail(nlh), [&](const nlattr* a) {
                   auto type = mnl_attr_get_type(a);
                   if (type != CTA_TUPLE_ORIG && type != CTA_TUPLE_REPLY) return;
                   if (type == CTA_TUPLE_ORIG) orig = a;
                   auto [src, dst] = tuple_addresses(a);
                   involved = involved || src == match.address || dst == match.address;
                 });
  if (involved && orig) {
    const char* raw = reinterpret_cast<const char*>(orig);
    match.tuples.emplace_back(raw, raw + orig->nla_len);
  }
  return MNL_CB_OK;
}

std::string ipv4_text(std::uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char text[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, text, sizeof text);
  return text;
}

Result<void> write_proc(const std::string& path, const char* value) {
  std::ofstream out(path);
  out << value;
  out.close();
  if (!out)
    return Error::internal(
        fmt::format("cannot write {} to {}; elafrosd needs root for per-instance "
                    "networks (or set network: host)",
                    value, path));
  return {};
}

Result<void> create_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
  if (fd < 0) return Error::internal(fmt::format("cannot create {}: {}", path, errno_text(errno)));
  ::close(fd);
  return {};
}

// A child process that unshares `flags` (after joining the user namespace open as `join`, if
// any) and waits; what the parent does meanwhile with /proc/<pid>/ns/... sees its namespaces.
// A process, not a thread: a multithreaded process may not enter a user namespace. Between
// fork and exit the child makes system calls only.
class NamespaceChild {
 public:
  NamespaceChild(int flags, int join) {
    if (::pipe2(ready_, O_CLOEXEC) != 0 || ::pipe2(done_, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(done_[1]);  // or the read below never sees the parent's end close
      ::close(ready_[0]);
      char ok = (join < 0 || ::setns(join, CLONE_NEWUSER) == 0) && ::unshare(flags) == 0 ? 1 : 0;
      if (::write(ready_[1], &ok, 1) != 1) ::_exit(1);
      char c;
      (void)::read(done_[0], &c, 1);  // until the parent has what it needs, or is gone
      ::_exit(0);
    }
    ::close(ready_[1]);
    ready_[1] = -1;
    ::close(done_[0]);
    done_[0] = -1;
    char ok = 0;
    if (pid_ > 0 && ::read(ready_[0], &ok, 1) == 1 && ok == 1) ready = true;
  }
  ~NamespaceChild() {
    for (int fd : {ready_[0], ready_[1], done_[0], done_[1]})
      if (fd >= 0) ::close(fd);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  NamespaceChild(const NamespaceChild&) = delete;
  NamespaceChild& operator=(const NamespaceChild&) = delete;
  std::string ns(const char* kind) const { return fmt::format("/proc/{}/ns/{}", pid_, kind); }
  std::string proc(const char* file) const { return fmt::format("/proc/{}/{}", pid_, file); }

  bool ready = false;

 private:
  pid_t pid_ = -1;
  int ready_[2] = {-1, -1};
  int done_[2] = {-1, -1};
};

// Runs `fn` on a thread of its own, in a new network namespace bind-mounted at `path`, and
// returns its result. The namespace outlives the thread through the mount. With `userns` (a
// bind-mounted user namespace) the network namespace belongs to it.
template <class Fn>
Result<void> in_new_netns(const std::string& path, const std::string& userns, Fn fn) {
  if (auto made = create_file(path); !made) return made;
  if (!userns.empty()) {
    int join = ::open(userns.c_str(), O_RDONLY | O_CLOEXEC);
    if (join < 0)
      return Error::internal(fmt::format("cannot open {}: {}", userns, errno_text(errno)));
    NamespaceChild child(CLONE_NEWNET, join);
    ::close(join);
    if (!child.ready)
      return Error::internal(fmt::format("making a network namespace in {} failed", userns));
    if (::mount(child.ns("net").c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0)
      return Error::internal(
          fmt::format("bind-mounting the namespace at {} failed: {}", path, errno_text(errno)));
  }
  Result<void> out;
  std::thread t([&] {
    if (userns.empty()) {
      if (::unshare(CLONE_NEWNET) != 0) {
        out = Error::internal(fmt::format("unshare(CLONE_NEWNET) failed: {}", errno_text(errno)));
        return;
      }
      if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
        out = Error::internal(
            fmt::format("bind-mounting the namespace at {} failed: {}", path, errno_text(errno)));
        return;
      }
    } else {
      int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      int joined = ns < 0 ? -1 : ::setns(ns, CLONE_NEWNET);
      if (ns >= 0) ::close(ns);
      if (joined != 0) {
        out = Error::internal(fmt::format("entering {} failed: {}", path, errno_text(errno)));
        return;
      }
    }
    int ns = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    out = fn(ns);
    if (ns >= 0) ::close(ns);
  });
  t.join();
  return out;
}

bool parse_subnet(const std::string& subnet, std::uint32_t& base, int& prefix) {
  auto slash = subnet.find('/');
  if (slash == std::string::npos) return false;
  in_addr a{};
  if (::inet_pton(AF_INET, subnet.substr(0, slash).c_str(), &a) != 1) return false;
  try {
    prefix = std::stoi(subnet.substr(slash + 1));
  } catch (...) {
    return false;
  }
  if (prefix < 16 || prefix > 24) return false;
  std::uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
  base = ntohl(a.s_addr) & mask;
  return true;
}

}  // namespace

int BridgeNetwork::Netlink::link_index(const std::string& name) {
  Message m(RTM_GETLINK, 0);
  m.link(0);
  mnl_attr_put_strz(m.nlh, IFLA_IFNAME, name.c_str());
  int index = 0;
  if (request(m.nlh, on_link, &index) != 0) return 0;
  return index;
}

BridgeNetwork::BridgeNetwork(BridgeOptions options) : options_(std::move(options)) {}

BridgeNetwork::~BridgeNetwork() {
  shut_down();  // when the daemon's start failed half-way, too
}

void BridgeNetwork::start_refilling() {
  if (refiller_.joinable() || options_.pool_size == 0) return;
  refiller_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (pool_.size() < options_.pool_size && !free_.empty()) {
        lock.unlock();
        bool filled = fill_pool();
        lock.lock();
        // A failure (logged) is retried later rather than at once.
        if (!filled && !stopping_) refill_.wait_for(lock, std::chrono::seconds(5));
        continue;
      }
      refill_.wait(lock);
    }
  });
}

Result<std::unique_ptr<BridgeNetwork>> BridgeNetwork::open(BridgeOptions options) {
  std::unique_ptr<BridgeNetwork> n(new BridgeNetwork(std::move(options)));
  if (auto r = n->set_up(); !r) return r.error();
  return n;
}

std::string BridgeNetwork::netns_path(std::uint32_t index) const {
  return fmt::format("{}/{}/netns/{}", options_.run_dir, options_.bridge, index);
}
std::string BridgeNetwork::veth_name(std::uint32_t index) const {
  return fmt::format("{}{}", veth_prefix_, index);
}
std::string BridgeNetwork::address(std::uint32_t index) const {
  return ipv4_text(base_ + 1 + index);
}

std::string BridgeNetwork::table_name() const {
  std::string t = "elafros_" + options_.bridge;
  for (char& c : t)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return t;
}

std::string BridgeNetwork::userns_path() const {
  if (options_.userns_size == 0) return "";
  return fmt::format("{}/{}/userns", options_.run_dir, options_.bridge);
}

// One user namespace for every namespace this start makes (the mapping is the daemon's);
// instances adopted after a restart keep theirs alive by being in it.
Result<void> BridgeNetwork::make_user_namespace() {
  std::string path = userns_path();
  ::umount2(path.c_str(), MNT_DETACH);  // the previous start's
  if (auto made = create_file(path); !made) return made;
  NamespaceChild child(CLONE_NEWUSER, -1);
  if (!child.ready)
    return Error::internal(fmt::format("unshare(CLONE_NEWUSER) failed; user-namespaces needs "
                                       "a kernel with user namespaces enabled"));
  std::string map = fmt::format("0 {} {}", options_.userns_base, options_.userns_size);
  for (const char* file : {"uid_map", "gid_map"})
    if (auto w = write_proc(child.proc(file), map.c_str()); !w) return w;
  if (::mount(child.ns("user").c_str(), path.c_str(), "none", MS_BIND, nullptr) != 0)
    return Error::internal(
        fmt::format("bind-mounting the user namespace at {} failed: {}", path, errno_text(errno)));
  return {};
}

Result<void> BridgeNetwork::nft(const std::string& commands) {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return Error::internal("libnftables: cannot create a context");
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  int rc = nft_run_cmd_from_buffer(ctx, commands.c_str());
  std::string err = nft_ctx_get_error_buffer(ctx);
  nft_ctx_free(ctx);
  if (rc != 0)
    return Error::internal(
        fmt::format("nftables refused the rules of bridge {}: {}", options_.bridge, err));
  return {};
}

Result<void> BridgeNetwork::set_up() {
  if (!parse_subnet(options_.subnet, base_, prefix_))
    return Error::invalid(fmt::format(
        "network-subnet \"{}\" is not an IPv4 subnet from /16 to /24, e.g. 10.63.0.0/16",
        options_.subnet));
  if (options_.bridge.empty() || options_.bridge.size() > 12)
    return Error::invalid(
        fmt::format("network-bridge \"{}\" must be 1 to 12 characters", options_.bridge));
  slots_ = (1u << (32 - prefix_)) - 3;  // less the network, the gateway and the broadcast
  gateway_ = ipv4_text(base_ + 1);
  // Host-side veth names: unique per bridge, within IFNAMSIZ with five digits of index.
  veth_prefix_ = fmt::format("e{:03x}", std::hash<std::string>{}(options_.bridge) & 0xfff) + "v";
  netlink_ = Netlink::open();
  if (!netlink_)
    return Error::internal(fmt::format("cannot open a netlink socket: {}", errno_text(errno)));
  conntrack_ = Netlink::open(NETLINK_NETFILTER);
  if (!conntrack_)
    spdlog::warn("cannot open a netfilter netlink socket ({}): released instances' connections "
                 "stay in the connection tracking table until they expire",
                 errno_text(errno));

  std::error_code ec;
  fs::create_directories(fmt::format("{}/{}/netns", options_.run_dir, options_.bridge), ec);
  if (ec)
    return Error::internal(fmt::format("cannot create {}/{}/netns: {}", options_.run_dir,
                                       options_.bridge, ec.message()));
  if (options_.userns_size > 0)
    if (auto made = make_user_namespace(); !made) return made;
  {
    Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.link(0);
    mnl_attr_put_strz(m.nlh, IFLA_IFNAME, options_.bridge.c_str());
    nlattr* info = mnl_attr_nest_start(m.nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(m.nlh, IFLA_INFO_KIND, "bridge");
    mnl_attr_nest_end(m.nlh, info);
    if (int e = netlink_->request(m.nlh); e != 0 && e != EEXIST)
      return Error::internal(
          fmt::format("creating the bridge {} failed: {}", options_.bridge, std::strerror(e)));
  }
  int bridge = static_cast<int>(::if_nametoindex(options_.bridge.c_str()));
  if (bridge == 0)
    return Error::internal(
        fmt::format("the bridge {} is missing after creating it", options_.bridge));
  {
    // A bridge without an address of its own takes the lowest of its ports', so it changed
    // whenever a veth came or went, and instances kept sending to the gateway's old address
    // until their ARP entry expired: their connections stalled for seconds. A fixed, locally
    // administered address, the same for the same bridge name.
    std::uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0};
    std::uint32_t h = 2166136261u;  // FNV-1a of the name
    for (unsigned char c : options_.bridge) h = (h ^ c) * 16777619u;
    for (int i = 0; i < 4; ++i) mac[2 + i] = static_cast<std::uint8_t>(h >> (8 * i));
    mac[1] = 0x65;  // 'e'
    Message m(RTM_NEWLINK, 0);
    m.link(bridge);
    mnl_attr_put(m.nlh, IFLA_ADDRESS, sizeof mac, mac);
    if (int e = netlink_->request(m.nlh); e != 0)
      return Error::internal(fmt::format("giving the bridge {} a fixed hardware address failed: {}",
                                         options_.bridge, std::strerror(e)));
  }
  {
    Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
    m.address(bridge, base_ + 1, prefix_);
    if (int e = netlink_->request(m.nlh); e != 0 && e != EEXIST)
      return Error::internal(fmt::format("giving the bridge {} the address {} failed: {}",
                                         options_.bridge, gateway_, std::strerror(e)));
  }
  {
    Message m(RTM_NEWLINK, 0);
    m.link_up(bridge);
    if (int e = netlink_->request(m.nlh); e != 0)
      return Error::internal(
          fmt::format("bringing the bridge {} up failed: {}", options_.bridge, std::strerror(e)));
  }
  if (auto r = write_proc("/proc/sys/net/ipv4/ip_forward", "1"); !r) return r;
  // The proxy listens on the loopback; instances reach it at the gateway, DNATed there.
  if (auto r = write_proc(fmt::format("/proc/sys/net/ipv4/conf/{}/route_localnet", options_.bridge),
                          "1");
      !r)
    return r;

  const std::string& br = options_.bridge;
  std::string table = table_name();
  std::string subnet = fmt::format("{}/{}", ipv4_text(base_), prefix_);
  std::string proxy_dnat, proxy_accept;
  if (options_.proxy_port != 0) {
    proxy_dnat = fmt::format("iifname \"{}\" ip daddr {} tcp dport {} dnat to 127.0.0.1:{}", br,
                             gateway_, options_.proxy_port, options_.proxy_port);
    proxy_accept = fmt::format("iifname \"{}\" ip daddr 127.0.0.1 tcp dport {} accept", br,
                               options_.proxy_port);
  }
  // Instances may not reach each other (bridge port isolation, and here for routed traffic)
  // nor any address of the host but the proxy's port; nothing outside may open a connection
  // to them; what they open to the outside is masqueraded.
  std::string rules = fmt::format(
      "add table ip {t}\n"
      "delete table ip {t}\n"
      "table ip {t} {{\n"
      "  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;\n"
      "    {dnat}\n"
      "  }}\n"
      "  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n"
      "    ip saddr {net} oifname != \"{br}\" masquerade\n"
      "  }}\n"
      "  chain input {{ type filter hook input priority filter; policy accept;\n"
      "    iifname \"{br}\" ct state established,related accept\n"
      "    {accept}\n"
      "    iifname \"{br}\" drop\n"
      "  }}\n"
      "  chain forward {{ type filter hook forward priority filter; policy accept;\n"
      "    iifname \"{br}\" oifname \"{br}\" drop\n"
      "    oifname \"{br}\" ct state established,related accept\n"
      "    oifname \"{br}\" drop\n"
      "  }}\n"
      "}}\n",
      fmt::arg("t", table), fmt::arg("br", br), fmt::arg("net", subnet),
      fmt::arg("dnat", proxy_dnat), fmt::arg("accept", proxy_accept));
  if (auto r = nft(rules); !r) return r;

  std::lock_guard lock(mutex_);
  for (std::uint32_t i = 1; i <= slots_; ++i) free_.push_back(i);
  return {};
}

Result<NetworkSlot> BridgeNetwork::wire(std::uint32_t index) {
  std::string path = netns_path(index);
  std::string veth = veth_name(index);
  std::uint32_t ip = base_ + 1 + index;
  int bridge = static_cast<int>(::if_nametoindex(options_.bridge.c_str()));
  if (bridge == 0) return Error::internal(fmt::format("the bridge {} is gone", options_.bridge));
  auto wired = in_new_netns(path, userns_path(), [&](int ns) -> Result<void> {
    auto inner = Netlink::open();
    if (!inner || ns < 0)
      return Error::internal(fmt::format("cannot open a netlink socket: {}", errno_text(errno)));
    {  // the host end on the bridge, the other end in the namespace as eth0
      Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
      m.link_up(0);
      mnl_attr_put_strz(m.nlh, IFLA_IFNAME, veth.c_str());
      mnl_attr_put_u32(m.nlh, IFLA_MASTER, static_cast<std::uint32_t>(bridge));
      nlattr* info = mnl_attr_nest_start(m.nlh, IFLA_LINKINFO);
      mnl_attr_put_strz(m.nlh, IFLA_INFO_KIND, "veth");
      nlattr* data = mnl_attr_nest_start(m.nlh, IFLA_INFO_DATA);
      nlattr* peer = mnl_attr_nest_start(m.nlh, VETH_INFO_PEER);
      mnl_nlmsg_put_extra_header(m.nlh, sizeof(ifinfomsg));
      mnl_attr_put_strz(m.nlh, IFLA_IFNAME, "eth0");
      mnl_attr_put_u32(m.nlh, IFLA_NET_NS_FD, static_cast<std::uint32_t>(ns));
      mnl_attr_nest_end(m.nlh, peer);
      mnl_attr_nest_end(m.nlh, data);
      mnl_attr_nest_end(m.nlh, info);
      if (int e = netlink_->request(m.nlh); e != 0)
        return Error::internal(
            fmt::format("creating the veth {} failed: {}", veth, std::strerror(e)));
    }
    int host_end = netlink_->link_index(veth);  // in the host's namespace, not this thread's
    if (auto isolated = isolate_port(host_end, veth); !isolated) return isolated;
    // Inside: lo and eth0 up, the address, the default route through the gateway. This thread
    // is in the namespace, so if_nametoindex looks there.
    for (const char* name : {"lo", "eth0"}) {
      Message m(RTM_NEWLINK, 0);
      m.link_up(static_cast<int>(::if_nametoindex(name)));
      if (int e = inner->request(m.nlh); e != 0)
        return Error::internal(fmt::format("bringing {} up failed: {}", name, std::strerror(e)));
    }
    int eth0 = static_cast<int>(::if_nametoindex("eth0"));
    {
      Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
      m.address(eth0, ip, prefix_);
      if (int e = inner->request(m.nlh); e != 0)
        return Error::internal(
            fmt::format("giving eth0 the address {} failed: {}", ipv4_text(ip), std::strerror(e)));
    }
    {
      Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
      auto* rt = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(rtmsg)));
      rt->rtm_family = AF_INET;
      rt->rtm_table = RT_TABLE_MAIN;
      rt->rtm_protocol = RTPROT_BOOT;
      rt->rtm_scope = RT_SCOPE_UNIVERSE;
      rt->rtm_type = RTN_UNICAST;
      mnl_attr_put_u32(m.nlh, RTA_GATEWAY, htonl(base_ + 1));
      mnl_attr_put_u32(m.nlh, RTA_OIF, static_cast<std::uint32_t>(eth0));
      if (int e = inner->request(m.nlh); e != 0)
        return Error::internal(fmt::format("the default route failed: {}", std::strerror(e)));
    }
    return {};
  });
  if (!wired) {
    unwire(index);
    return wired.error();
  }
  return NetworkSlot{path, ipv4_text(ip), userns_path()};
}

Result<void> BridgeNetwork::isolate_port(int host_end, const std::string& veth) {
  // Bridge port isolation: no frame from one instance's port to another's.
  Message m(RTM_SETLINK, 0);
  m.link(host_end, AF_BRIDGE);
  nlattr* protinfo = mnl_attr_nest_start(m.nlh, IFLA_PROTINFO);
  mnl_attr_put_u8(m.nlh, IFLA_BRPORT_ISOLATED, 1);
  mnl_attr_nest_end(m.nlh, protinfo);
  if (int e = netlink_->request(m.nlh); e != 0)
    return Error::internal(
        fmt::format("isolating the bridge port {} failed: {}", veth, std::strerror(e)));
  return {};
}

void BridgeNetwork::unwire(std::uint32_t index) {
  std::string path = netns_path(index);
  ::umount2(path.c_str(), MNT_DETACH);
  ::unlink(path.c_str());
  // The host's connection tracking still holds the instance's connections (the proxy's, NAT
  // to the outside): established ones for days, since a namespace that goes sends no reset.
  // Forgotten now, before the address serves another instance.
  forget_connections(index);
  // The namespace goes once nothing holds it; the veth with it. Deleting the host end now
  // frees its name even while a process still holds the namespace.
  std::string veth = veth_name(index);
  Message m(RTM_DELLINK, 0);
  m.link(0);
  mnl_attr_put_strz(m.nlh, IFLA_IFNAME, veth.c_str());
  if (int e = netlink_->request(m.nlh); e != 0 && e != ENODEV)
    spdlog::warn("deleting the veth {} failed: {}", veth, std::strerror(e));
}

void BridgeNetwork::forget_connections(std::uint32_t index) {
  if (!conntrack_) return;
  ConntrackMatch match{htonl(base_ + 1 + index), {}};
  {
    Message m((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, 0);
    auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(nfgenmsg)));
    nfg->nfgen_family = AF_INET;
    nfg->version = NFNETLINK_V0;
    if (int e = conntrack_->dump(m.nlh, on_conntrack, &match); e != 0) {
      spdlog::warn("listing the connection tracking table failed: {}", std::strerror(e));
      return;
    }
  }
  for (const auto& tuple : match.tuples) {
    Message m((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, 0);
    auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(m.nlh, sizeof(nfgenmsg)));
    nfg->nfgen_family = AF_INET;
    nfg->version = NFNETLINK_V0;
    std::memcpy(mnl_nlmsg_get_payload_tail(m.nlh), tuple.data(), tuple.size());
    m.nlh->nlmsg_len += MNL_ALIGN(static_cast<std::uint32_t>(tuple.size()));
    // Gone already (it expired, or a reply tuple of one deleted before): fine.
    if (int e = conntrack_->request(m.nlh); e != 0 && e != ENOENT)
      spdlog::warn("forgetting a connection of {} failed: {}", address(index), std::strerror(e));
  }
}

Result<NetworkSlot> BridgeNetwork::acquire(const std::string& instance_id) {
  std::uint32_t index = 0;
  {
    std::lock_guard lock(mutex_);
    if (!pool_.empty()) {
      index = pool_.back();
      pool_.pop_back();
      in_use_[instance_id] = index;
      refill_.notify_one();
      return NetworkSlot{netns_path(index), address(index), userns_path()};
    }
    if (free_.empty())
      return Error::unavailable(
          fmt::format("every address of {} is in use; retry once instances "
                      "stop, or an operator sets a larger network-subnet",
                      options_.subnet));
    index = free_.front();
    free_.pop_front();
  }
  auto slot = wire(index);
  std::lock_guard lock(mutex_);
  if (!slot) {
    free_.push_back(index);
    return slot.error();
  }
  in_use_[instance_id] = index;
  return slot;
}

Result<NetworkSlot> BridgeNetwork::adopt(const std::string& instance_id,
                                         const std::string& address_text) {
  in_addr a{};
  if (::inet_pton(AF_INET, address_text.c_str(), &a) != 1)
    return Error::not_found(fmt::format("\"{}\" is not an address", address_text));
  std::uint32_t ip = ntohl(a.s_addr);
  if (ip <= base_ + 1 || ip - base_ - 1 > slots_)
    return Error::not_found(fmt::format("{} is not in {}", address_text, options_.subnet));
  std::uint32_t index = ip - base_ - 1;
  std::string path = netns_path(index);
  if (!fs::exists(path))
    return Error::not_found(fmt::format("the network namespace {} is gone", path));
  // After a stop, the bridge was made anew: attach the instance's veth again.
  int bridge = static_cast<int>(::if_nametoindex(options_.bridge.c_str()));
  int host_end = static_cast<int>(::if_nametoindex(veth_name(index).c_str()));
  if (host_end == 0) return Error::not_found(fmt::format("the veth {} is gone", veth_name(index)));
  {
    Message m(RTM_NEWLINK, 0);
    m.link_up(host_end);
    mnl_attr_put_u32(m.nlh, IFLA_MASTER, static_cast<std::uint32_t>(bridge));
    if (int e = netlink_->request(m.nlh); e != 0)
      return Error::internal(fmt::format("attaching {} to {} failed: {}", veth_name(index),
                                         options_.bridge, std::strerror(e)));
  }
  if (auto isolated = isolate_port(host_end, veth_name(index)); !isolated) return isolated.error();
  std::lock_guard lock(mutex_);
  free_.erase(std::remove(free_.begin(), free_.end(), index), free_.end());
  in_use_[instance_id] = index;
  return NetworkSlot{path, address_text};
}

std::string BridgeNetwork::address_of(const std::string& instance_id) const {
  std::lock_guard lock(mutex_);
  auto it = in_use_.find(instance_id);
  return it == in_use_.end() ? std::string() : address(it->second);
}

void BridgeNetwork::release(const std::string& instance_id) {
  std::uint32_t index = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = in_use_.find(instance_id);
    if (it == in_use_.end()) return;
    index = it->second;
    in_use_.erase(it);
  }
  unwire(index);
  std::lock_guard lock(mutex_);
  free_.push_back(index);  // reused last, its connections forgotten
}

void BridgeNetwork::remove_unused() {
  std::set<std::uint32_t> held;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, index] : in_use_) held.insert(index);
    held.insert(pool_.begin(), pool_.end());
  }
  std::error_code ec;
  std::vector<std::uint32_t> stale;
  for (const auto& entry :
       fs::directory_iterator(fmt::format("{}/{}/netns", options_.run_dir, options_.bridge), ec)) {
    std::uint32_t index = 0;
    try {
      index = static_cast<std::uint32_t>(std::stoul(entry.path().filename().string()));
    } catch (...) {
      continue;
    }
    if (!held.count(index)) stale.push_back(index);
  }
  for (auto index : stale) {
    spdlog::info("removing the unused network namespace {}", netns_path(index));
    unwire(index);
  }
  // Host ends whose namespace file is gone (a crash between the two).
  for (const auto& entry : fs::directory_iterator("/sys/class/net", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(veth_prefix_, 0) != 0) continue;
    std::uint32_t index = 0;
    try {
      index = static_cast<std::uint32_t>(std::stoul(name.substr(veth_prefix_.size())));
    } catch (...) {
      continue;
    }
    if (held.count(index)) continue;
    Message m(RTM_DELLINK, 0);
    m.link(0);
    mnl_attr_put_strz(m.nlh, IFLA_IFNAME, name.c_str());
    (void)netlink_->request(m.nlh);
  }
}

bool BridgeNetwork::fill_pool() {
  for (;;) {
    std::uint32_t index = 0;
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || pool_.size() >= options_.pool_size || free_.empty()) return true;
      index = free_.front();
      free_.pop_front();
    }
    auto slot = wire(index);
    std::lock_guard lock(mutex_);
    if (!slot) {
      spdlog::warn("wiring a network namespace ahead failed: {}", slot.error().message);
      free_.push_back(index);
      return false;
    }
    pool_.push_back(index);
  }
}

void BridgeNetwork::shut_down() {
  {
    std::lock_guard lock(mutex_);
    if (shut_) return;
    shut_ = true;
    stopping_ = true;
  }
  refill_.notify_all();
  if (refiller_.joinable()) refiller_.join();
  if (!netlink_) return;  // set_up failed before there was anything to remove
  std::vector<std::uint32_t> pool;
  {
    std::lock_guard lock(mutex_);
    pool.swap(pool_);
  }
  for (auto index : pool) unwire(index);
  (void)nft(fmt::format("add table ip {0}\ndelete table ip {0}\n", table_name()));
  Message m(RTM_DELLINK, 0);
  m.link(0);
  mnl_attr_put_strz(m.nlh, IFLA_IFNAME, options_.bridge.c_str());
  (void)netlink_->request(m.nlh);
  if (options_.userns_size > 0) {
    std::string userns = userns_path();
    ::umount2(userns.c_str(), MNT_DETACH);
    ::unlink(userns.c_str());
  }
  // The run dir goes too when no instance's namespace is left in it.
  std::error_code ec;
  fs::remove(fmt::format("{}/{}/netns", options_.run_dir, options_.bridge), ec);
  fs::remove(fmt::format("{}/{}", options_.run_dir, options_.bridge), ec);
}

}  // namespace elafros
