#pragma once
// The RuntimeDefault seccomp profile (docs/architecture.md, "Isolation"): the semantics of
// Docker's default profile (moby profiles/seccomp/default.json), resolved for one container and
// flattened into the OCI runtime spec's `linux.seccomp` (runtime-spec config-linux.md), which
// has no includes or excludes. An allowlist; anything else fails with EPERM. Syscalls that
// need a capability are allowed only when the container is granted it; without CAP_SYS_ADMIN,
// clone may not make namespaces and clone3 answers ENOSYS (so that glibc falls back to clone);
// socket may not open AF_VSOCK; personality takes only the harmless values.

#include <boost/json/fwd.hpp>
#include <string>
#include <vector>

namespace elafros {

// The profile for a container granted `capabilities` ("CAP_…") on this machine's architecture
// (x86_64, with its 32-bit and x32 ABIs; or aarch64 with arm).
boost::json::object runtime_default_seccomp(const std::vector<std::string>& capabilities);

}  // namespace elafros
