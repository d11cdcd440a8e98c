#!/usr/bin/env bash
# End-to-end pulls from a real registry: Debian's docker-registry on a loopback port, images
# pushed with skopeo in OCI and Docker v2s2 formats, pulled and deployed through elafros.
#   tests/e2e/registry_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

registry_pid=""
stop_registry() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  registry_pid=""
}
trap 'stop_registry; cleanup' EXIT

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
reg_port=""
for _ in $(seq 20); do
  candidate=$((20000 + RANDOM % 20000))
  cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$candidate
YAML
  docker-registry serve "$work/registry.yml" >>"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$candidate/v2/" >/dev/null && { reg_port=$candidate; break; }; sleep 0.1; done
  [ -n "$reg_port" ] && break
  stop_registry
done
[ -n "$reg_port" ] || { echo "docker-registry did not start:"; cat "$work/registry.log"; exit 1; }
registry="127.0.0.1:$reg_port"
skopeo copy -q --dest-tls-verify=false "oci:$work/image:latest" "docker://$registry/team/hello:oci"
skopeo copy -q --dest-tls-verify=false --format v2s2 "oci:$work/image:latest" "docker://$registry/team/hello:v2s2"

start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')

out=$(e image import "docker://$registry/team/hello:oci")
check "an OCI image pulls from the registry" contains "$out" "Image '$registry/team/hello:oci' pulled: sha256:"
out=$(e service create fromreg --image "$registry/team/hello:v2s2")
check "a Docker v2s2 image pulls by its bare name and deploys" \
  test "$(curl -sS "http://fromreg.default.localhost:$port/")" = "Hello from fromreg (revision fromreg-00001)"
check "the pulled image is listed under its reference" contains "$(e image list)" "$registry/team/hello:v2s2"
if out=$(e image import "docker://$registry/team/hello:nope" 2>&1); then fail "an unknown tag fails"; else
  check "an unknown tag names the registry and the reference" contains "$out" "$registry/team/hello:nope not found"; fi
if out=$(e image import "docker://$registry/team/Bad:tag" 2>&1); then fail "a malformed reference fails"; else
  check "a malformed reference says what is wrong" contains "$out" "lowercase"; fi
stop_registry
if out=$(e image import "docker://$registry/team/hello:oci2" 2>&1); then fail "an unreachable registry fails"; else
  check "an unreachable registry is named" contains "$out" "registry $registry cannot be reached"; fi
check "failed pulls leave nothing in the image store's scratch space" test -z "$(ls -A "$data/images/tmp")"

e service delete fromreg >/dev/null
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
