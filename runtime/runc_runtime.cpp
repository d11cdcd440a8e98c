#include "runc_runtime.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "elafros/errno_text.hpp"
#include "elafros/resource_json.hpp"
#include "id_shift.hpp"
#include "oci_spec.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace elafros {
namespace {

bool is_container_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return id != "." && id != "..";
}

std::string last_lines(const std::string& path, std::size_t lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = size > 16384 ? size - 16384 : 0;
  in.seekg(start);
  std::string tail((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::deque<std::string> kept;
  std::size_t i = 0;
  while (i < tail.size()) {
    auto j = tail.find('\n', i);
    if (j == std::string::npos) j = tail.size();
    kept.push_back(tail.substr(i, j - i));
    if (kept.size() > lines) kept.pop_front();
    i = j + 1;
  }
  std::string out;
  for (const auto& l : kept) out += l + "\n";
  return out;
}

// runc writes JSON lines to --log; keep the messages of the last ones.
std::string runc_log_message(const std::string& path) {
  std::string text = last_lines(path, 5);
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    auto j = text.find('\n', i);
    std::string line = text.substr(i, j - i);
    i = j == std::string::npos ? text.size() : j + 1;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (!ec && v.is_object()) {
      if (const auto* m = v.get_object().if_contains("msg"); m && m->is_string()) {
        out = std::string(m->get_string());
        continue;
      }
    }
    if (!line.empty()) out = line;
  }
  return out;
}

}  // namespace

RuncRuntime::RuncRuntime(RuncOptions options, ProcessRunnerPtr runner,
                         std::shared_ptr<ImageStore> images)
    : options_(std::move(options)),
      runner_(std::move(runner)),
      images_(std::move(images)),
      state_root_(options_.data_dir + "/runc") {
  fs::create_directories(options_.data_dir + "/instances");
  fs::create_directories(spool_dir(options_.data_dir));
  fs::create_directories(state_root_);
}

std::string RuncRuntime::instance_dir(const std::string& id) const {
  return options_.data_dir + "/instances/" + id;
}

// Marks an instance's spools finished, for the log collector to drain and delete.
void RuncRuntime::finish_spools(const std::string& id) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spool_dir(options_.data_dir), ec)) {
    std::string name = e.path().filename().string();
    if (name.find("_" + id + ".") == std::string::npos) continue;
    if (name.size() > 7 && (name.compare(name.size() - 7, 7, ".stdout") == 0 ||
                            name.compare(name.size() - 7, 7, ".stderr") == 0))
      fs::rename(e.path(), e.path().string() + ".done", ec);
  }
}

Result<void> RuncRuntime::set_parent_cpu_shares(int shares) {
  std::error_code ec;
  bool done = false;
  std::string errors;
  auto write = [&](const std::string& dir, const std::string& file, const std::string& value) {
    fs::create_directories(dir, ec);
    std::ofstream out(dir + "/" + file);
    out << value;
    out.close();
    if (out)
      done = true;
    else
      errors += fmt::format(" {}/{}", dir, file);
  };
  for (const char* v1 : {"/cpu,cpuacct", "/cpu"}) {
    std::string hierarchy = options_.cgroup_root + v1;
    if (fs::is_directory(hierarchy, ec) && fs::exists(hierarchy + "/cpu.shares", ec)) {
      write(hierarchy + "/" + options_.cgroup_parent, "cpu.shares", std::to_string(shares));
      break;
    }
  }
  if (!done && fs::exists(options_.cgroup_root + "/cgroup.controllers", ec)) {
    int weight = std::clamp(shares * 100 / 1024, 1, 10000);
    write(options_.cgroup_root + "/" + options_.cgroup_parent, "cpu.weight",
          std::to_string(weight));
  }
  if (!done)
    return Error::unavailable(
        fmt::format("cannot set the CPU weight of /{} (no cgroup cpu controller found{}{})",
                    options_.cgroup_parent, errors.empty() ? "" : "; failed to write", errors));
  return {};
}

std::vector<std::string> RuncRuntime::runc_argv(std::initializer_list<std::string> args) const {
  std::vector<std::string> argv{options_.runc, "--root", state_root_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

Result<ProcessResult> RuncRuntime::run_runc(const std::string& what, std::vector<std::string> argv,
                                            ProcessOptions po) {
  po.timeout = options_.timeout;
  auto r = runner_->run(argv, po);
  if (!r && r.error().code == ErrorCode::kUnavailable)
    return Error::unavailable(
        fmt::format("runc {} hung: {}; it is retried, and if runc is only slow here, raise "
                    "runtime-timeout-seconds",
                    what, r.error().message));
  if (!r) return Error::internal(fmt::format("runc {} failed: {}", what, r.error().message));
  return r;
}

Result<int> RuncRuntime::start(const LaunchSpec& spec) {
  // This runs on a worker thread: a filesystem exception must become an error, not a crash.
  try {
    if (spec.init_containers.empty() && spec.sidecars.empty()) return start_container(spec);
    return start_pod(spec);
  } catch (const std::exception& e) {
    (void)remove(spec.container_id);  // its sidecars and init containers too
    return Error::internal(
        fmt::format("starting instance {} failed: {}", spec.container_id, e.what()));
  }
}

namespace {

// Whether the process exists and is not a zombie.
bool process_alive(int pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

}  // namespace

Result<int> RuncRuntime::create(const LaunchSpec& spec) {
  if (!spec.init_containers.empty() || !spec.sidecars.empty())
    return Error::invalid(fmt::format(
        "instance {} has init containers or sidecars, which a standby cannot hold ready",
        spec.container_id));
  try {
    return start_container(spec, nullptr, Run::kCreated);
  } catch (const std::exception& e) {
    (void)remove(spec.container_id);
    return Error::internal(
        fmt::format("creating standby {} failed: {}", spec.container_id, e.what()));
  }
}

Result<void> RuncRuntime::start_created(const std::string& id) {
  if (!is_container_id(id)) return Error::invalid(fmt::format("\"{}\" is not a container id", id));
  // runc init waits in open(2) for a reader of exec.fifo, writes one byte and execs the app.
  // Opened without blocking, so that a process that died cannot hold this thread.
  std::string fifo = state_root_ + "/" + id + "/exec.fifo";
  int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return Error::not_found(
        fmt::format("standby {} cannot be started: {}: {}", id, fifo, errno_text(errno)));
  int pid = 0;
  std::ifstream(instance_dir(id) + "/pid") >> pid;
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  char byte = 0;
  ssize_t n = -1;
  for (;;) {
    n = ::read(fd, &byte, 1);
    if (n == 1 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    // 0: no writer yet (it is about to open its end); EAGAIN: it has opened it.
    struct pollfd p {
      fd, POLLIN, 0
    };
    int ready = ::poll(&p, 1, 100);
    if (ready > 0 && (p.revents & POLLHUP) && !(p.revents & POLLIN)) {
      n = 0;  // it opened its end and closed it without a word
      break;
    }
    if (ready == 0 && (!process_alive(pid) || std::chrono::steady_clock::now() > deadline)) {
      n = 0;
      break;
    }
  }
  int err = errno;
  ::close(fd);
  if (n != 1)
    return Error::internal(fmt::format("standby {} did not take the start: {}", id,
                                       n < 0 ? errno_text(err) : "its process is gone or stuck"));
  // runc tells created from running by the fifo's presence.
  if (::unlink(fifo.c_str()) != 0 && errno != ENOENT)
    return Error::internal(
        fmt::format("removing {} after the start failed: {}", fifo, errno_text(errno)));
  return {};
}

namespace {

// The host's /etc/hosts with a loopback line for every *.localhost host an env value's URL names.
Result<void> write_hosts_file(const std::string& path, const std::vector<EnvVar>& env,
                              const std::string& proxy_address) {
  std::string text;
  if (std::ifstream in("/etc/hosts"); in) {
    std::ostringstream all;
    all << in.rdbuf();
    text = all.str();
    if (!text.empty() && text.back() != '\n') text += '\n';
  } else {
    text = "127.0.0.1\tlocalhost\n::1\tlocalhost\n";
  }
  std::set<std::string> names;
  for (const auto& e : env) {
    const std::string& v = e.value;
    for (std::size_t at = v.find("://"); at != std::string::npos; at = v.find("://", at + 3)) {
      std::size_t start = at + 3;
      std::size_t end = v.find_first_of(":/?# ,\"", start);
      std::string host = v.substr(start, end == std::string::npos ? end : end - start);
      if (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0)
        names.insert(host);
    }
  }
  if (!names.empty()) {
    text += "# names the instance's environment points at (elafros)\n" + proxy_address;
    for (const auto& n : names) text += "\t" + n;
    text += "\n";
  }
  return write_file_atomic(path, text);
}

// A revision's volumes for one instance (docs/architecture.md, "Secrets"): the files of its
// secret and configMap volumes on a tmpfs at DIR/volumes (a secret never touches the disk),
// a tmpfs per Memory emptyDir, a directory per disk emptyDir; each bind-mounted into place.
// A hostPath volume's source, checked against the operator's prefixes once its symbolic links
// are resolved (the path the bind mount will use), and made or checked by its type.
Result<std::string> host_path_source(const ResolvedVolume& v,
                                     const std::vector<std::string>& prefixes) {
  auto problem = [&v](const std::string& why) {
    return Error::precondition(
        fmt::format("hostPath volume {} ({}): {}", v.name, v.host_path, why));
  };
  if (auto p = host_path_problem(v.host_path, prefixes)) return problem(*p);
  std::error_code ec;
  const std::string& type = v.host_path_type;
  if (type == "DirectoryOrCreate" && !fs::exists(v.host_path, ec)) {
    fs::create_directories(v.host_path, ec);
    if (ec) return problem(fmt::format("cannot create the directory: {}", errno_text(ec)));
    ::chmod(v.host_path.c_str(), 0755);
  } else if (type == "FileOrCreate" && !fs::exists(v.host_path, ec)) {
    int fd =
        ::open(v.host_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 && errno != EEXIST)
      return problem(fmt::format("cannot create the file: {}", errno_text(errno)));
    if (fd >= 0) ::close(fd);
  }
  fs::path real = fs::canonical(v.host_path, ec);
  if (ec)
    return problem(ec == std::errc::no_such_file_or_directory
                       ? std::string("it does not exist (type DirectoryOrCreate or FileOrCreate "
                                     "makes it)")
                       : errno_text(ec));
  if (auto p = host_path_problem(real.string(), prefixes))
    return problem(fmt::format("it resolves to {}: {}", real.string(), *p));
  auto st = fs::status(real, ec);
  if ((type == "Directory" || type == "DirectoryOrCreate") && !fs::is_directory(st))
    return problem("it is not a directory");
  if ((type == "File" || type == "FileOrCreate") && !fs::is_regular_file(st))
    return problem("it is not a file");
  if (type == "Socket" && !fs::is_socket(st)) return problem("it is not a socket");
  if (fs::is_block_file(st) || fs::is_character_file(st))
    return problem("devices are not passed to instances");
  return real.string();
}

Result<void> prepare_volumes(const std::string& dir, const std::string& volume_dir,
                             const std::vector<ResolvedVolume>& volumes,
                             std::vector<LaunchSpec::Bind>& binds, const RuncOptions& options) {
  std::error_code ec;
  std::string files_root = dir + "/volumes";
  std::uint64_t bytes = 0;
  bool files = false;
  for (const auto& v : volumes)
    if (!v.empty_dir) {
      files = true;
      for (const auto& f : v.files) bytes += f.content.size() + 4096;
    }
  if (files) {
    fs::create_directories(files_root, ec);
    std::string opts = fmt::format("mode=0755,size={}", bytes + (1u << 20));
    if (::mount("tmpfs", files_root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                opts.c_str()) != 0)
      return Error::internal(
          fmt::format("mounting a tmpfs for the instance's volumes at {} failed: {}", files_root,
                      errno_text(errno)));
  }
  for (const auto& v : volumes) {
    std::string source;
    if (!v.host_path.empty()) {
      auto host = host_path_source(v, options.host_path_prefixes);
      if (!host) return host.error();
      source = *host;
    } else if (!v.claim_uid.empty()) {
      // Made at its first mount, open to the instance's user as an emptyDir is.
      source = options.data_dir + "/volumes/" + v.claim_uid;
      if (!fs::exists(source, ec)) {
        fs::create_directories(source, ec);
        ::chmod(source.c_str(), 0777);
      }
    } else if (!v.empty_dir) {
      source = files_root + "/" + v.name;
      fs::create_directories(source, ec);
      for (const auto& f : v.files) {
        fs::path p = fs::path(source) / f.path;
        fs::create_directories(p.parent_path(), ec);
        if (auto w = write_file_atomic(p.string(), f.content); !w) return w.error();
        ::chmod(p.c_str(), static_cast<mode_t>(f.mode));
      }
    } else {
      source = volume_dir + "/emptydir/" + v.name;
      bool made = !fs::exists(source, ec);
      fs::create_directories(source, ec);
      if (v.memory && made) {
        std::string opts = v.size_limit_bytes ? fmt::format("mode=0777,size={}", v.size_limit_bytes)
                                              : std::string("mode=0777");
        if (::mount("tmpfs", source.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
          return Error::internal(
              fmt::format("mounting the Memory emptyDir {} failed: {}", v.name, errno_text(errno)));
      } else {
        ::chmod(source.c_str(), 0777);
      }
    }
    if (ec)
      return Error::internal(fmt::format("preparing volume {} failed: {}", v.name, errno_text(ec)));
    binds.push_back({source, v.destination, v.read_only});
  }
  return {};
}

}  // namespace

Result<std::string> RuncRuntime::shifted_rootfs(const std::string& digest,
                                                const std::string& rootfs) {
  const IdMapping& map = *options_.user_namespace;
  std::string hex = digest.substr(digest.find(':') + 1);
  std::string parent =
      fmt::format("{}/userns/{}-{}", options_.data_dir, map.host_base, map.size);
  std::string path = parent + "/" + hex;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return path;
  fs::create_directories(parent, ec);
  if (ec) return Error::internal(fmt::format("cannot create {}: {}", parent, errno_text(ec)));
  // Made aside and renamed into place: a crash mid-copy leaves only a .tmp the next try replaces.
  std::string tmp = fmt::format("{}.tmp-{}", path, ::gettid());
  fs::remove_all(tmp, ec);
  auto t0 = std::chrono::steady_clock::now();
  auto copied = copy_shifted(rootfs, tmp, map);
  if (!copied) {
    fs::remove_all(tmp, ec);
    return Error::internal(fmt::format(
        "copying image {}'s root filesystem into the user namespace's ids failed: {} (free disk "
        "space under {}, or turn user-namespaces off)",
        digest, copied.error().message, options_.data_dir));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    fs::remove_all(tmp, ec);  // another start made it first
    if (!fs::is_directory(path, ec))
      return Error::internal(fmt::format("cannot rename {} to {}: {}", tmp, path, errno_text(errno)));
    return path;
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  spdlog::info("made image {}'s root filesystem for user namespace ids {}-{}: {} entries, {} bytes in {} ms",
               hex.substr(0, 12), map.host_base, map.host_base + map.size - 1, copied->entries,
               copied->bytes, ms.count());
  return path;
}

namespace {

// From /proc/PID/stat: "pid (comm) state ppid ...", comm may hold spaces and parentheses.
std::string proc_stat_tail(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  auto close = stat.rfind(')');
  return close == std::string::npos ? std::string() : stat.substr(close + 2);
}

char state_of(pid_t pid) {
  std::string tail = proc_stat_tail(pid);
  return tail.empty() ? 'X' : tail[0];
}

pid_t parent_of(pid_t pid) {
  std::string tail = proc_stat_tail(pid);
  if (tail.size() < 3) return 0;
  return static_cast<pid_t>(std::strtol(tail.c_str() + 2, nullptr, 10));
}

bool is_elafrosd(pid_t pid) {
  std::error_code ec;
  auto exe = fs::read_symlink(fmt::format("/proc/{}/exe", pid), ec);
  return !ec && exe.filename() == "elafrosd";
}

}  // namespace

int RuncRuntime::end_predecessor_calls() {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::vector<std::string> args;
    for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
    // runc_argv's shape: RUNC --root STATE_ROOT ...
    bool ours = false;
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == "--root" && args[i + 1] == state_root_) ours = true;
    if (!ours) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    // Only orphans (a killed daemon's children go to init) or an elafrosd's: a `runc list` an
    // operator runs on the same root is left alone.
    pid_t parent = parent_of(pid);
    if (pid == ::getpid() || (parent != 1 && !is_elafrosd(parent))) continue;
    spdlog::warn("ending runc (pid {}) that a previous elafrosd left running: {}", pid,
                 args.size() > 3 ? args[3] : std::string("?"));
    // Its process group, as run_runc's timeout does: what it forked (runc init, before the
    // container's exec) goes with it.
    ::kill(::getpgid(pid) == pid ? -pid : pid, SIGKILL);
    pids.push_back(pid);
  }
  // Bounded: gone within 5 s (a process in D state may take a moment).
  for (int i = 0; i < 50; ++i) {
    bool alive = false;
    for (pid_t pid : pids) alive = alive || (::kill(pid, 0) == 0 && state_of(pid) != 'Z');
    if (!alive) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return static_cast<int>(pids.size());
}

void RuncRuntime::sweep_shifted_rootfs() {
  std::error_code ec;
  std::string root = options_.data_dir + "/userns";
  if (!fs::is_directory(root, ec)) return;
  std::string current;
  if (options_.user_namespace)
    current = fmt::format("{}-{}", options_.user_namespace->host_base,
                          options_.user_namespace->size);
  // A copy an adopted instance's overlay still stands on stays, whatever the config says now.
  std::ifstream mounts_file("/proc/mounts");
  std::string mounts((std::istreambuf_iterator<char>(mounts_file)), {});
  auto in_use = [&mounts](const fs::path& p) {
    return mounts.find("lowerdir=" + p.string()) != std::string::npos;
  };
  for (const auto& mapping : fs::directory_iterator(root, ec)) {
    for (const auto& copy : fs::directory_iterator(mapping.path(), ec)) {
      std::string name = copy.path().filename();
      bool stale = mapping.path().filename() != current || name.find(".tmp-") != std::string::npos ||
                   !images_->has_rootfs("sha256:" + name);
      if (stale && !in_use(copy.path())) {
        spdlog::info("removing {}: its image or mapping is gone", copy.path().string());
        fs::remove_all(copy.path(), ec);
      }
    }
    if (mapping.path().filename() != current) fs::remove(mapping.path(), ec);  // once empty
  }
}

std::vector<std::string> RuncRuntime::children(const std::string& id) const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const std::string& root : {state_root_, options_.data_dir + "/instances"})
    for (const auto& e : fs::directory_iterator(root, ec)) {
      std::string name = e.path().filename().string();
      if (name.size() > id.size() + 1 && name.compare(0, id.size() + 1, id + "_") == 0 &&
          std::find(out.begin(), out.end(), name) == out.end())
        out.push_back(name);
    }
  return out;
}

Result<int> RuncRuntime::start_pod(const LaunchSpec& spec) {
  Pod pod;
  pod.dir = instance_dir(spec.container_id);
  std::error_code ec;
  fs::create_directories(pod.dir, ec);
  auto fail = [&](Error e) -> Result<int> {
    (void)remove(spec.container_id);  // the children too, and the network namespace
    return e;
  };
  if (network_) {
    auto slot = network_->acquire(spec.container_id);
    if (!slot) return fail(slot.error());
    pod.slot = *slot;
  }
  for (const auto& init : spec.init_containers) {
    auto code = start_container(init, &pod, Run::kToEnd);
    if (!code) return fail(code.error());
    if (*code != 0) {
      std::string tail = spool_tail(options_.data_dir, init.container_id, 10);
      return fail(Error::precondition(fmt::format("init container \"{}\" exited with code {}{}{}",
                                                  init.container_name, *code,
                                                  tail.empty() ? "" : "; last output:\n", tail)));
    }
    (void)remove(init.container_id);
  }
  for (const auto& sidecar : spec.sidecars) {
    auto pid = start_container(sidecar, &pod);
    if (!pid)
      return fail(Error{pid.error().code, fmt::format("sidecar \"{}\": {}", sidecar.container_name,
                                                      pid.error().message)});
  }
  auto pid = start_container(spec, &pod);
  if (!pid) return fail(pid.error());
  return pid;
}

Result<int> RuncRuntime::start_container(const LaunchSpec& spec, const Pod* pod, Run how) {
  if (!is_container_id(spec.container_id))
    return Error::internal(fmt::format("\"{}\" is not a valid container id", spec.container_id));
  if (!images_->has_rootfs(spec.image_digest))
    return Error::not_found(
        fmt::format("image {} of revision \"{}\" is not unpacked in the image store; re-import it "
                    "with 'elafros image import'",
                    spec.image_digest, spec.revision));
  auto image = images_->config(spec.image_digest);
  if (!image) return image.error();
  std::string lower = images_->rootfs_path(spec.image_digest);
  auto process = resolve_process(*image, spec, lower);
  if (!process) return process.error();
  const bool userns = options_.user_namespace && !spec.build_step;
  if (userns) {
    auto shifted = shifted_rootfs(spec.image_digest, lower);
    if (!shifted) return shifted.error();
    lower = std::move(shifted.value());
  }

  std::string dir = instance_dir(spec.container_id);
  std::string merged = dir + "/rootfs";
  // emptyDirs are the pod's: under the serving container's dir, shared by its sidecars.
  const std::string& volume_dir = pod ? pod->dir : dir;
  std::error_code ec;
  for (const char* sub : {"/upper", "/work", "/rootfs"}) fs::create_directories(dir + sub, ec);
  if (ec) return Error::internal(fmt::format("cannot create {}: {}", dir, errno_text(ec)));
  if (userns) {
    // runc's init runs as the mapped root: it must reach the bundle (traverse only), and the
    // overlay's root takes the upper directory's owner, the image root's shifted one.
    struct stat root {};
    if (::chmod(dir.c_str(), 0711) != 0 || ::stat(lower.c_str(), &root) != 0 ||
        ::chown((dir + "/upper").c_str(), root.st_uid, root.st_gid) != 0 ||
        ::chmod((dir + "/upper").c_str(), root.st_mode & 07777) != 0) {
      int err = errno;
      (void)cleanup_files(spec.container_id);
      return Error::internal(
          fmt::format("preparing {} for the user namespace failed: {}", dir, errno_text(err)));
    }
  }

  auto fail = [&](Error e) -> Result<int> {
    if (!pod) (void)cleanup_files(spec.container_id);  // a pod's start_pod removes it all
    return e;
  };

  std::string opts = fmt::format("lowerdir={},upperdir={}/upper,workdir={}/work", lower, dir, dir);
  if (::mount("overlay", merged.c_str(), "overlay", MS_NODEV, opts.c_str()) != 0)
    return fail(Error::internal(fmt::format("mounting the overlay root filesystem at {} failed: {}",
                                            merged, errno_text(errno))));

  BundleSpec bundle;
  bundle.process = std::move(process.value());
  bundle.rootfs = merged;
  bundle.hostname = spec.service;
  bundle.cgroups_path = "/" + options_.cgroup_parent + "/" + spec.container_id;
  bundle.binds = spec.binds;
  // secure-pod-defaults are Serving's (Knative's config-features): build steps keep theirs.
  SecurityPolicy policy = options_.security;
  if (spec.build_step) policy.secure_pod_defaults = "disabled";
  if (auto sec = resolve_security(spec.container.security_context, policy,
                                  spec.build_step ? 0 : spec.container.port(), bundle);
      !sec)
    return fail(sec.error());
  {
    std::lock_guard lock(claims_mutex_);
    for (const auto& v : spec.volumes)
      if (!v.claim_uid.empty()) claim_mounts_[v.claim_uid] = std::chrono::system_clock::now();
    if (auto v = prepare_volumes(dir, volume_dir, spec.volumes, bundle.binds, options_); !v)
      return fail(v.error());
  }
  if (userns) {
    bundle.user_namespace = options_.user_namespace;
    // emptyDir volumes belong to the container's root, as they would in its namespace.
    for (const auto& b : bundle.binds)
      if ((b.source.rfind(dir + "/", 0) == 0 || b.source.rfind(volume_dir + "/", 0) == 0) &&
          ::chown(b.source.c_str(), options_.user_namespace->host_base,
                  options_.user_namespace->host_base) != 0)
        return fail(Error::internal(
            fmt::format("giving the volume {} to the user namespace failed: {}", b.source,
                        errno_text(errno))));
  }
  bundle.pids_limit = options_.pids_limit;
  bundle.memory_limit_bytes = parse_memory_bytes(spec.container.limits.memory).value_or(0);
  bundle.cpu_limit_millis = parse_cpu_millis(spec.container.limits.cpu).value_or(0);
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max != RLIM_INFINITY)
    bundle.nofile_limit = std::min<std::uint64_t>(bundle.nofile_limit, nofile.rlim_max);
  if (fs::exists("/etc/resolv.conf"))
    bundle.readonly_files.emplace_back("/etc/resolv.conf", "/etc/resolv.conf");
  // The host's /etc/hosts, plus the *.localhost names the instance's environment points at
  // (K_SINK: a broker's ingress, a service): RFC 6761 puts them on the loopback, which the
  // proxy listens on, but not every resolver knows it.
  // In a network namespace of its own, the proxy is at the bridge's gateway, not on loopback.
  if (pod && pod->slot) {
    bundle.netns_path = pod->slot->netns_path;
    if (userns) bundle.userns_path = pod->slot->userns_path;
  } else if (network_ && !spec.build_step && !pod) {
    auto slot = network_->acquire(spec.container_id);
    if (!slot) return fail(slot.error());
    bundle.netns_path = slot->netns_path;
    if (userns) bundle.userns_path = slot->userns_path;
  }
  if (auto hosts = write_hosts_file(
          dir + "/hosts", spec.container.env,
          network_ && !spec.build_step ? network_->gateway() : std::string("127.0.0.1"));
      !hosts)
    return fail(hosts.error());
  bundle.readonly_files.emplace_back(dir + "/hosts", "/etc/hosts");
  if (auto r = write_file_atomic(dir + "/config.json", json::serialize(make_runtime_spec(bundle)));
      !r)
    return fail(r.error());

  // The container inherits these descriptors: plain files, so it never gets SIGPIPE or blocks
  // when the daemon is gone.
  int out = ::open(
      spool_path(options_.data_dir, spec.namespace_, spec.service, spec.container_id, "stdout")
          .c_str(),
      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  int err = ::open(
      spool_path(options_.data_dir, spec.namespace_, spec.service, spec.container_id, "stderr")
          .c_str(),
      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (out < 0 || err < 0) {
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
    return fail(Error::internal(
        fmt::format("cannot open the log files of {}: {}", spec.container_id, errno_text(errno))));
  }
  ProcessOptions po;
  po.stdout_fd = out;
  po.stderr_fd = err;
  if (how == Run::kToEnd) {
    // An init container: runc waits for its end (and then deletes its state).
    po.timeout = options_.init_timeout;
    auto done = runner_->run(runc_argv({"--log", dir + "/runc.log", "--log-format", "json", "run",
                                        "--bundle", dir, spec.container_id}),
                             po);
    ::close(out);
    ::close(err);
    if (!done && done.error().code == ErrorCode::kUnavailable)
      return Error::unavailable(fmt::format(
          "init container \"{}\" ran longer than {} s and was killed; make it finish sooner, or "
          "move that work into the app's own start",
          spec.container_name,
          std::chrono::duration_cast<std::chrono::seconds>(options_.init_timeout).count()));
    if (!done) return done.error();
    if (done->exit_code != 0 && done->exit_code < 128) {
      std::string why = runc_log_message(dir + "/runc.log");
      if (!why.empty() && tail_logs(spec.container_id, 1).empty())
        return Error::internal(fmt::format("runc could not start init container \"{}\": {}",
                                           spec.container_name, why));
    }
    return done->exit_code;
  }
  const bool created = how == Run::kCreated;
  auto run =
      created
          ? run_runc("create " + spec.container_id,
                     runc_argv({"--log", dir + "/runc.log", "--log-format", "json", "create",
                                "--bundle", dir, "--pid-file", dir + "/pid", spec.container_id}),
                     po)
          : run_runc(
                "run " + spec.container_id,
                runc_argv({"--log", dir + "/runc.log", "--log-format", "json", "run", "--detach",
                           "--bundle", dir, "--pid-file", dir + "/pid", spec.container_id}),
                po);
  ::close(out);
  ::close(err);
  if (!run) return fail(run.error());
  if (run->exit_code != 0) {
    std::string why = runc_log_message(dir + "/runc.log");
    if (why.empty()) why = tail_logs(spec.container_id, 5);
    if (why.empty())
      why = "runc gave no reason; run elafrosd with --log-level debug and look at its log";
    return fail(Error::internal(
        fmt::format("runc could not {} the container of revision \"{}\" (exit {}): {}",
                    created ? "create" : "start", spec.revision, run->exit_code, why)));
  }
  std::ifstream pid_file(dir + "/pid");
  int pid = 0;
  pid_file >> pid;
  if (pid <= 0)
    return fail(
        Error::internal(fmt::format("runc started {} but wrote no pid file", spec.container_id)));
  return pid;
}

Result<void> RuncRuntime::kill(const std::string& id, int signal) {
  if (!is_container_id(id)) return {};
  for (const auto& child : children(id))
    (void)run_runc("kill " + child, runc_argv({"kill", child, std::to_string(signal)}));
  auto r = run_runc("kill " + id, runc_argv({"kill", id, std::to_string(signal)}));
  if (!r) return r.error();
  if (r->exit_code != 0 && status(id).running)
    return Error::internal(fmt::format("runc kill {} failed: {}", id, r->err));
  return {};
}

Result<void> RuncRuntime::remove(const std::string& id) {
  if (!is_container_id(id)) return {};
  if (id.find('_') == std::string::npos)
    for (const auto& child : children(id))
      if (auto r = remove(child); !r) return r;
  std::string state = state_root_ + "/" + id;
  std::error_code ec;
  if (fs::exists(state, ec)) {
    auto r = run_runc("delete " + id, runc_argv({"delete", "--force", id}));
    if (!r) return r.error();
    if (r->exit_code != 0 && fs::exists(state, ec)) {
      // A runc killed while creating it leaves a state directory without state.json, which
      // runc itself cannot delete: its processes are in the cgroups, removed below.
      std::string why = r->err.empty() ? r->out : r->err;
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      if (fs::exists(state + "/state.json", ec))
        return Error::internal(fmt::format("runc delete {} failed (exit {}): {}", id, r->exit_code,
                                           why.empty() ? "no reason given" : why));
      if (auto c = remove_cgroups(id); !c) return c.error();
      fs::remove_all(state, ec);
      if (ec) return Error::internal(fmt::format("cannot remove {}: {}", state, errno_text(ec)));
    }
  }
  if (auto c = remove_cgroups(id); !c) return c.error();
  return cleanup_files(id);
}

// The instance's cgroup in every hierarchy that has one (cgroups_path /elafros/<id>).
std::vector<std::string> RuncRuntime::cgroup_dirs(const std::string& id) const {
  std::vector<std::string> dirs;
  std::set<std::string> seen;
  std::error_code ec;
  auto consider = [&](const fs::path& hierarchy) {
    fs::path dir = hierarchy / options_.cgroup_parent / id;
    if (!fs::is_directory(dir, ec)) return;
    auto canonical = fs::canonical(dir, ec);
    if (!ec && seen.insert(canonical.string()).second) dirs.push_back(canonical.string());
  };
  consider(options_.cgroup_root);  // the unified (v2) hierarchy
  for (const auto& e : fs::directory_iterator(options_.cgroup_root, ec))
    if (e.is_directory(ec)) consider(e.path());
  return dirs;
}

Result<void> RuncRuntime::remove_cgroups(const std::string& id) {
  for (const auto& dir : cgroup_dirs(id)) {
    bool gone = false;
    for (int attempt = 0; attempt < 50 && !gone; ++attempt) {
      std::ifstream procs(dir + "/cgroup.procs");
      for (int pid = 0; procs >> pid;)
        if (pid > 0) ::kill(pid, SIGKILL);
      gone = ::rmdir(dir.c_str()) == 0 || errno == ENOENT;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!gone)
      return Error::internal(
          fmt::format("cannot remove the cgroup {} of {}: {}", dir, id, errno_text(errno)));
  }
  return {};
}

Result<void> RuncRuntime::cleanup_files(const std::string& id) {
  if (network_) network_->release(id);  // its namespace, once the container is gone
  std::string dir = instance_dir(id);
  std::string merged = dir + "/rootfs";
  // Unmount until nothing is mounted there (a failed start may have mounted once).
  int err = 0;
  for (int i = 0; i < 4; ++i) {
    if (::umount2(merged.c_str(), MNT_DETACH) == 0) continue;
    err = errno;
    break;
  }
  std::error_code ec;
  if (err != EINVAL && err != ENOENT && err != 0)
    return Error::internal(fmt::format("cannot unmount {}: {}", merged, errno_text(err)));
  // The volumes' tmpfs mounts go before their directories (remove_all must not walk into one).
  std::vector<std::string> mounts{dir + "/volumes"};
  for (const auto& e : fs::directory_iterator(dir + "/emptydir", ec)) mounts.push_back(e.path());
  ec.clear();
  for (const auto& m : mounts)
    for (int i = 0; i < 4 && ::umount2(m.c_str(), MNT_DETACH) == 0; ++i) {
    }
  fs::remove_all(dir, ec);
  if (ec) return Error::internal(fmt::format("cannot remove {}: {}", dir, errno_text(ec)));
  finish_spools(id);
  return {};
}

ContainerStatus RuncRuntime::status(const std::string& id) {
  ContainerStatus s;
  if (!is_container_id(id)) return s;
  auto r = run_runc("state " + id, runc_argv({"state", id}));
  if (!r || r->exit_code != 0) return s;
  boost::system::error_code ec;
  auto v = json::parse(r->out, ec);
  if (ec || !v.is_object()) return s;
  s.exists = true;
  const auto& o = v.get_object();
  if (const auto* st = o.if_contains("status"); st && st->is_string()) {
    s.running = st->get_string() == "running";
    s.created = st->get_string() == "created";
  }
  if (const auto* pid = o.if_contains("pid"); pid && pid->is_number())
    s.pid = static_cast<int>(pid->to_number<std::int64_t>());
  return s;
}

std::vector<std::string> RuncRuntime::list() {
  std::vector<std::string> ids;
  std::error_code ec;
  // A sidecar or init container ("<id>_<name>") is listed as its instance, which removes it.
  auto add = [&ids](std::string id) {
    if (auto u = id.find('_'); u != std::string::npos) id.resize(u);
    if (is_container_id(id) && std::find(ids.begin(), ids.end(), id) == ids.end())
      ids.push_back(std::move(id));
  };
  for (const auto& e : fs::directory_iterator(state_root_, ec))
    if (e.is_directory()) add(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(options_.data_dir + "/instances", ec))
    add(e.path().filename().string());
  // Not the cgroups: /elafros/ holds every daemon's on this machine. Ours have a bundle until
  // remove() has removed them, so they are found by it.
  return ids;
}

namespace {

// "key value" lines (memory.oom_control, memory.events, cpu.stat): the value of `key`.
std::optional<std::uint64_t> keyed_value(const std::string& path, std::string_view key) {
  std::ifstream in(path);
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return std::nullopt;
}

std::optional<std::uint64_t> single_value(const std::string& path) {
  std::ifstream in(path);
  std::uint64_t v = 0;
  if (in >> v) return v;
  return std::nullopt;
}

}  // namespace

// The instance's cgroup (cgroups_path /elafros/<id>): v1 hierarchies, or the v2 unified one.
ResourceUsage RuncRuntime::usage(const std::string& id) {
  ResourceUsage u = cgroup_usage(id);
  if (id.find('_') == std::string::npos)
    for (const auto& child : children(id)) {  // an instance's sidecars count as the instance
      ResourceUsage c = cgroup_usage(child);
      u.memory_bytes += c.memory_bytes;
      u.cpu_seconds += c.cpu_seconds;
      u.oom_kills += c.oom_kills;
    }
  return u;
}

ResourceUsage RuncRuntime::cgroup_usage(const std::string& id) const {
  ResourceUsage u;
  if (!is_container_id(id)) return u;
  const std::string rel = "/" + options_.cgroup_parent + "/" + id;
  const std::string v1 = "/sys/fs/cgroup";
  if (auto mem = single_value(v1 + "/memory" + rel + "/memory.usage_in_bytes")) {
    u.known = true;
    u.memory_bytes = *mem;
    u.oom_kills = keyed_value(v1 + "/memory" + rel + "/memory.oom_control", "oom_kill").value_or(0);
    for (const char* hierarchy : {"/cpu,cpuacct", "/cpuacct", "/cpu"})
      if (auto ns = single_value(v1 + hierarchy + rel + "/cpuacct.usage")) {
        u.cpu_seconds = static_cast<double>(*ns) / 1e9;
        break;
      }
    return u;
  }
  for (const char* root : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    if (auto mem = single_value(std::string(root) + rel + "/memory.current")) {
      u.known = true;
      u.memory_bytes = *mem;
      u.oom_kills = keyed_value(std::string(root) + rel + "/memory.events", "oom_kill").value_or(0);
      if (auto us = keyed_value(std::string(root) + rel + "/cpu.stat", "usage_usec"))
        u.cpu_seconds = static_cast<double>(*us) / 1e6;
      return u;
    }
  return u;
}

std::vector<std::pair<std::string, int>> RuncRuntime::sidecar_pids(const std::string& id) {
  std::vector<std::pair<std::string, int>> out;
  if (!is_container_id(id) || id.find('_') != std::string::npos) return out;
  for (const auto& child : children(id)) {
    std::ifstream pid_file(instance_dir(child) + "/pid");  // detached ones have it
    int pid = 0;
    if (pid_file >> pid && pid > 0) out.emplace_back(child.substr(id.size() + 1), pid);
  }
  return out;
}

std::string RuncRuntime::tail_logs(const std::string& id, std::size_t lines) {
  return spool_tail(options_.data_dir, id, lines);
}

std::vector<std::string> RuncRuntime::sweep_claims(
    const std::set<std::string>& claims, std::chrono::system_clock::time_point listed_at) {
  std::vector<std::string> removed;
  std::error_code ec;
  std::lock_guard lock(claims_mutex_);
  for (const auto& e : fs::directory_iterator(options_.data_dir + "/volumes", ec)) {
    std::string uid = e.path().filename().string();
    if (claims.count(uid)) continue;
    if (auto it = claim_mounts_.find(uid); it != claim_mounts_.end() && it->second >= listed_at)
      continue;  // a claim made after the list, already mounted
    claim_mounts_.erase(uid);
    std::error_code rec;
    fs::remove_all(e.path(), rec);
    if (rec)
      spdlog::warn("removing the data of deleted volume claim {} failed: {}", uid, errno_text(rec));
    else
      removed.push_back(uid);
  }
  return removed;
}

Result<ProcessResult> RuncRuntime::exec(const std::string& id,
                                        const std::vector<std::string>& command,
                                        std::chrono::milliseconds timeout) {
  if (!is_container_id(id)) return Error::invalid(fmt::format("\"{}\" is not an instance", id));
  std::vector<std::string> argv = runc_argv({"exec", id});
  argv.insert(argv.end(), command.begin(), command.end());
  ProcessOptions po;
  po.timeout = timeout;
  auto r = runner_->run(argv, po);
  if (!r && r.error().code == ErrorCode::kUnavailable)
    return Error::unavailable(
        fmt::format("it ran longer than {} ms (timeoutSeconds)", timeout.count()));
  if (!r) return Error::internal(fmt::format("runc exec failed: {}", r.error().message));
  return r;
}

bool RuncRuntime::isolated_network() const {
  return network_ != nullptr;
}

std::string RuncRuntime::address(const std::string& container_id) {
  return network_ ? network_->address_of(container_id) : std::string();
}

Result<void> RuncRuntime::adopt_network(const std::string& container_id,
                                        const std::string& address) {
  if (!network_) return {};
  if (address.empty())
    return Error::not_found("it ran on the host's network; it is replaced by one in a namespace");
  auto slot = network_->adopt(container_id, address);
  if (!slot) return slot.error();
  return {};
}

Result<void> RuncRuntime::sweep_networks() {
  if (!network_) return {};
  network_->remove_unused();
  network_->start_refilling();
  return {};
}

}  // namespace elafros
