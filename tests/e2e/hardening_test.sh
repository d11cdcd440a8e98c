#!/usr/bin/env bash
# End-to-end for container hardening (docs/architecture.md, "Isolation"), against a real elafrosd
# and runc: every instance runs under the RuntimeDefault seccomp profile (Seccomp: 2, EPERM for
# unshare, keyctl and AF_VSOCK) and no_new_privs, a busybox and a Python app serve under it;
# each securityContext field is checked from the host's /proc and inside the instance (runc
# exec); forbidden values are refused naming the field; with user-namespaces, container root is
# host uid 100000 on a chowned copy of the image, made once.
#   tests/e2e/hardening_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/tests/e2e/apps/build-rawecho.sh" "$work/image" >/dev/null
"$src/examples/buildpacks/build-builder.sh" "$work/python" >/dev/null
# rawecho, pid 1, ignores SIGTERM: a short grace period keeps the deletes below quick.
printf 'stop-grace-seconds: 1\n' >"$work/daemon.yml"
daemon_args=(--network bridge --config "$work/daemon.yml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
img="oci:$work/image:latest"
runc_exec() { runc --root "$data/runc" exec "$@"; }
# instance_of SERVICE: its (first) instance's id and pid
instance_of() { e instance list -o json | /usr/bin/python3 -c "import json,sys; i=[x for x in json.load(sys.stdin)['items'] if x['service']=='$1' and x['phase']=='ready'][0]; print(i['id'], i['pid'])"; }
status_of() { grep "^$2:" "/proc/$1/status" | awk '{print $2}'; }

# apply_service NAME [SECURITY_CONTEXT_JSON] [IMAGE] [COMMAND_JSON]: a service with that context
apply_service() {
  e apply -f - <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: $1}
spec:
  template:
    spec:
      containers:
        - image: ${3:-$img}
          ${4:+command: $4}
          ${2:+securityContext: $2}
YAML
}

# The default: RuntimeDefault seccomp, no_new_privs, Docker's capabilities (none for nobody).
e service create plain --image "$img" >/dev/null
read -r id pid <<<"$(instance_of plain)"
check "an instance runs under seccomp in filter mode (Seccomp: 2)" test "$(status_of "$pid" Seccomp)" = 2
check "...with no_new_privs" test "$(status_of "$pid" NoNewPrivs)" = 1
out=$(runc_exec "$id" /bin/rawecho syscalls)
check "unshare(CLONE_NEWNS) fails with EPERM inside" contains "$out" "unshare=EPERM"
check "keyctl fails with EPERM inside" contains "$out" "keyctl=EPERM"
check "an AF_VSOCK socket fails with EPERM inside" contains "$out" "socket_vsock=EPERM"
check "allowed calls still work" contains "$out" "getpid=0"
check "busybox runs normally under it" test "$(runc_exec "$id" sh -c 'echo hi | cat; ls / >/dev/null && echo ok')" = "hi
ok"
check "the app serves" contains "$(curl -sS "http://plain.default.localhost:$port/env")" "PORT="

# A Python app (the builder image's python3.11) serves under the profile.
apply_service python "" "oci:$work/python:latest" '[sh, -c, "exec python3 -m http.server $PORT"]' >/dev/null
check "a Python app serves under RuntimeDefault" contains "$(curl -sS "http://python.default.localhost:$port/")" "Directory listing"
read -r _ pypid <<<"$(instance_of python)"
check "...and it is filtered too" test "$(status_of "$pypid" Seccomp)" = 2

# runAsUser, runAsGroup, readOnlyRootFilesystem, allowPrivilegeEscalation
apply_service user '{runAsUser: 1234, runAsGroup: 2345, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}' >/dev/null
read -r id pid <<<"$(instance_of user)"
check "runAsUser: id -u inside is 1234" test "$(runc_exec "$id" id -u)" = 1234
check "runAsGroup: id -g inside is 2345" test "$(runc_exec "$id" id -g)" = 2345
check "runAsUser: the host sees uid 1234" test "$(status_of "$pid" Uid)" = 1234
out=$(runc_exec "$id" sh -c 'echo x > /written' 2>&1 || true)
check "readOnlyRootFilesystem: a write to / fails with EROFS" contains "$out" "Read-only file system"
check "readOnlyRootFilesystem: /tmp stays writable" test "$(runc_exec "$id" sh -c 'echo x > /tmp/ok && cat /tmp/ok')" = x
check "allowPrivilegeEscalation false: no_new_privs" test "$(status_of "$pid" NoNewPrivs)" = 1
check "the service still serves" contains "$(curl -sS "http://user.default.localhost:$port/env")" "PORT="
check "describe shows the securityContext as given" contains "$(e service describe user -o json)" '"readOnlyRootFilesystem": true'

# capabilities (as root, where they are effective): Docker's 14; drop; drop ALL + add
apply_service root '{runAsUser: 0}' >/dev/null
read -r _ pid <<<"$(instance_of root)"
check "root gets Docker's 14 capabilities (CapEff a80425fb)" test "$(status_of "$pid" CapEff)" = 00000000a80425fb
apply_service dropraw '{runAsUser: 0, capabilities: {drop: [NET_RAW, CHOWN]}}' >/dev/null
read -r _ pid <<<"$(instance_of dropraw)"
check "capabilities.drop removes NET_RAW and CHOWN (CapEff a80405fa)" test "$(status_of "$pid" CapEff)" = 00000000a80405fa
apply_service bindonly '{runAsUser: 0, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}, allowPrivilegeEscalation: true}' >/dev/null
read -r id pid <<<"$(instance_of bindonly)"
check "drop ALL + add NET_BIND_SERVICE leaves only it (CapEff 400)" test "$(status_of "$pid" CapEff)" = 0000000000000400
check "allowPrivilegeEscalation true: no no_new_privs" test "$(status_of "$pid" NoNewPrivs)" = 0
apply_service nonrootbind '{runAsUser: 1234, capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}' >/dev/null
read -r _ pid <<<"$(instance_of nonrootbind)"
check "a non-root user keeps an added NET_BIND_SERVICE (ambient)" test "$(status_of "$pid" CapEff)" = 0000000000000400

# Refused, naming the field
refused() { local out; out=$(apply_service "$1" "$2" 2>&1 || true); contains "$out" "$3"; }
check "capabilities.add beyond NET_BIND_SERVICE is refused" refused bad1 '{capabilities: {add: [SYS_ADMIN]}}' 'securityContext.capabilities.add[0]: "SYS_ADMIN" cannot be added'
check "an unknown capability to drop is refused" refused bad2 '{capabilities: {drop: [NOPE]}}' 'securityContext.capabilities.drop[0]: "NOPE" is not a capability'
check "privileged: true is refused" refused bad3 '{privileged: true}' 'securityContext.privileged: privileged containers are not allowed'
check "a Localhost seccomp profile is refused" refused bad4 '{seccompProfile: {type: Localhost}}' 'securityContext.seccompProfile.type: "Localhost" is not supported'
check "runAsNonRoot with runAsUser 0 is refused" refused bad5 '{runAsNonRoot: true, runAsUser: 0}' 'securityContext.runAsNonRoot: runAsNonRoot is true but runAsUser is 0'
check "an unknown securityContext field is refused" refused bad6 '{sysctls: []}' 'securityContext.sysctls: unknown field'
check "nothing refused was created" test -z "$(e service list | grep -E '^bad[0-9]' || true)"
out=$(e apply -f - 2>&1 <<YAML || true
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: podlevel}
spec:
  template:
    spec:
      securityContext: {runAsUser: 1000}
      containers: [{image: "$img"}]
YAML
)
check "a pod-level securityContext is refused, saying where to put it" contains "$out" "spec.template.spec.securityContext: a pod-level securityContext is not supported"
# Checked against the image at start: the Python image runs as root.
out=$(apply_service nonroot '{runAsNonRoot: true}' "oci:$work/python:latest" '[sh, -c, "exec python3 -m http.server $PORT"]' 2>&1 || true)
check "runAsNonRoot with an image that runs as root fails the revision, saying why" contains "$out" "runAsNonRoot: is true, but the image runs as root (uid 0)"
out=$(apply_service unconfined '{seccompProfile: {type: Unconfined}}' 2>&1 || true)
check "Unconfined is refused unless seccomp-unconfined allows it" contains "$out" "Unconfined is not allowed on this machine"

# User namespaces: container root is host uid 100000, on a chowned copy of the image made once.
for svc in $(e service list | awk 'NR > 1 {print $1}'); do e service delete "$svc" >/dev/null; done
stop_daemon >/dev/null || true
printf 'user-namespaces: true\nstop-grace-seconds: 1\n' >"$work/userns.yml"
mkdir -m 0700 "$work/locked"
out=$("$elafrosd" --data-dir "$work/locked/data" --socket "$work/locked.sock" --listen 127.0.0.1:0 \
  --config "$work/userns.yml" --network host 2>&1 || true)
check "a data dir the mapped root cannot reach is refused, naming the directory" contains "$out" "which cannot traverse $work/locked (mode 0700)"
chmod 0711 "$work"  # the test's own dir: traversable, as /var/lib is
daemon_args=(--network bridge --config "$work/userns.yml")
# What a crash or another mapping left: removed at start.
mkdir -p "$data/userns/100000-65536/$(printf '0%.0s' $(seq 64))" "$data/userns/200000-65536/x"
start_daemon
check "a start removes chowned copies of gone images and other mappings" test -z "$(ls "$data/userns/100000-65536")" -a ! -e "$data/userns/200000-65536"
t0=$(date +%s%N)
e service create mapped --image "oci:$work/python:latest" --cmd sh --arg=-c --arg 'exec python3 -m http.server $PORT' >/dev/null
t1=$(date +%s%N)
e service create mapped2 --image "oci:$work/python:latest" --cmd sh --arg=-c --arg 'exec python3 -m http.server $PORT' >/dev/null
t2=$(date +%s%N)
echo "     create -> Ready with the image's chowned copy made: $(((t1 - t0) / 1000000)) ms; with it cached: $(((t2 - t1) / 1000000)) ms"
grep "root filesystem for user namespace" "$work/daemon.log" | sed 's/^/     /'
read -r id pid <<<"$(instance_of mapped)"
ns_exec() { runc_exec "$id" "$@"; }  # the network namespace is the user namespace's: runc exec enters both
check "the instance's uid_map is 0 100000 65536" test "$(awk '{print $1, $2, $3}' "/proc/$pid/uid_map")" = "0 100000 65536"
check "...and its gid_map" test "$(awk '{print $1, $2, $3}' "/proc/$pid/gid_map")" = "0 100000 65536"
check "its root is host uid 100000" test "$(status_of "$pid" Uid | cut -f1)" = 100000
check "...and uid 0 inside" test "$(ns_exec id -u)" = 0
check "the Python app serves" contains "$(curl -sS "http://mapped.default.localhost:$port/")" "Directory listing"
check "its /sys is a sysfs of its own network (lo and eth0 only)" test "$(ns_exec ls /sys/class/net | tr '\n' ' ')" = "eth0 lo "
check "root may write to its overlay (the upper dir is the mapped root's)" test "$(ns_exec sh -c 'echo w >/written && cat /written')" = w
check "...which the host sees owned by 100000" test "$(stat -c %u "$data/instances/$id/upper/written")" = 100000
check "the image's files are the mapped root's" test "$(ns_exec stat -L -c %u /bin/sh)" = 0
check "the copy was made once for both services" test "$(grep -c "root filesystem for user namespace" "$work/daemon.log")" = 1
e service create nobody --image "$img" >/dev/null
read -r _ pid <<<"$(instance_of nobody)"
check "an image user 65534 is host uid 165534" test "$(status_of "$pid" Uid | cut -f1)" = 165534
check "...and its app serves" contains "$(curl -sS "http://nobody.default.localhost:$port/env")" "PORT="
finish
