#include "seccomp_profile.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace json = boost::json;

namespace elafros {
namespace {

// Allowed to every container, whatever its capabilities (names of every ABI: runc skips a name
// that the architecture does not have).
constexpr std::string_view kAlways[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
    "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
    "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr",
    "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
    "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
    "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
    "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
    "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev",
    // Linux 4.8 made these safe without CAP_SYS_PTRACE (the seccomp bypass through ptrace was
    // closed); every kernel elafros runs on is newer.
    "process_vm_readv", "process_vm_writev", "ptrace"};

// Allowed only to a container granted the capability.
struct CapabilityRule {
  std::string_view capability;
  std::vector<std::string_view> names;
};

const std::vector<CapabilityRule>& capability_rules() {
  static const std::vector<CapabilityRule> rules = {
      {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
      {"CAP_SYS_ADMIN",
       {"bpf",           "clone",         "clone3",      "fanotify_init",   "fsconfig",
        "fsmount",       "fsopen",        "fspick",      "lookup_dcookie",  "mount",
        "mount_setattr", "move_mount",    "open_tree",   "perf_event_open", "quotactl",
        "quotactl_fd",   "setdomainname", "sethostname", "setns",           "syslog",
        "umount",        "umount2",       "unshare"}},
      {"CAP_SYS_BOOT", {"reboot"}},
      {"CAP_SYS_CHROOT", {"chroot"}},
      {"CAP_SYS_MODULE", {"delete_module", "init_module", "finit_module"}},
      {"CAP_SYS_PACCT", {"acct"}},
      {"CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}},
      {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
      {"CAP_SYS_TIME", {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
      {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
      {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
      {"CAP_SYSLOG", {"syslog"}},
      {"CAP_BPF", {"bpf"}},
      {"CAP_PERFMON", {"perf_event_open"}},
  };
  return rules;
}

// The namespace flags of clone (CLONE_NEWNS … CLONE_NEWCGROUP, CLONE_NEWUSER): 0x7E020000.
constexpr std::uint64_t kCloneNamespaceFlags = 2114060288;
constexpr std::uint64_t kAfVsock = 40;
constexpr int kEnosys = 38;
// personality(2) values that change nothing a container should not: PER_LINUX, PER_LINUX32,
// UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (a query).
constexpr std::uint64_t kPersonalities[] = {0, 8, 0x20000, 0x20008, 0xffffffff};

json::object allow(const std::vector<std::string_view>& names) {
  json::array a;
  for (auto n : names) a.emplace_back(n);
  return json::object{{"names", std::move(a)}, {"action", "SCMP_ACT_ALLOW"}};
}

json::object arg(unsigned index, std::uint64_t value, std::string_view op,
                 std::uint64_t value_two = 0) {
  json::object o{{"index", index}, {"value", value}, {"op", op}};
  if (value_two != 0 || op == "SCMP_CMP_MASKED_EQ") o["valueTwo"] = value_two;
  return o;
}

}  // namespace

json::object runtime_default_seccomp(const std::vector<std::string>& capabilities) {
  auto granted = [&capabilities](std::string_view cap) {
    return std::find(capabilities.begin(), capabilities.end(), cap) != capabilities.end();
  };
  utsname u{};
  ::uname(&u);
  bool arm = std::strcmp(u.machine, "aarch64") == 0;

  std::vector<std::string_view> always(std::begin(kAlways), std::end(kAlways));
  if (arm) {
    for (auto n : {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                   "cacheflush", "set_tls"})
      always.emplace_back(n);
  } else {
    always.emplace_back("arch_prctl");
    always.emplace_back("modify_ldt");
  }
  json::array rules;
  rules.push_back(allow(always));
  // socket, except AF_VSOCK (a channel to the hypervisor).
  json::object socket = allow({"socket"});
  socket["args"] = json::array{arg(0, kAfVsock, "SCMP_CMP_NE")};
  rules.push_back(std::move(socket));
  for (auto value : kPersonalities) {
    json::object p = allow({"personality"});
    p["args"] = json::array{arg(0, value, "SCMP_CMP_EQ")};
    rules.push_back(std::move(p));
  }
  std::vector<std::string_view> by_capability;
  for (const auto& rule : capability_rules())
    if (granted(rule.capability))
      for (auto n : rule.names)
        if (std::find(by_capability.begin(), by_capability.end(), n) == by_capability.end())
          by_capability.push_back(n);
  if (!by_capability.empty()) rules.push_back(allow(by_capability));
  if (!granted("CAP_SYS_ADMIN")) {
    // clone without namespace flags; clone3, whose flags sit in memory seccomp cannot read,
    // answers ENOSYS, and glibc falls back to clone.
    json::object clone = allow({"clone"});
    clone["args"] = json::array{arg(0, kCloneNamespaceFlags, "SCMP_CMP_MASKED_EQ", 0)};
    rules.push_back(std::move(clone));
    rules.push_back(json::object{
        {"names", json::array{"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", kEnosys}});
  }
  json::array arches = arm ? json::array{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"}
                           : json::array{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  return json::object{{"defaultAction", "SCMP_ACT_ERRNO"},
                      {"defaultErrnoRet", 1},  // EPERM
                      {"architectures", std::move(arches)},
                      {"syscalls", std::move(rules)}};
}

}  // namespace elafros
