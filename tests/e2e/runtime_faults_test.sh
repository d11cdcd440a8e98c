#!/usr/bin/env bash
# A failing runtime, made by the test itself: --runtime is a wrapper that fails 30% of runc calls
# and hangs in 3% past the runtime deadline, while creates, scales and deletes churn and the
# daemon is killed with SIGKILL 20 times midway. Afterwards the daemon converges: its instances
# are runc's containers and the overlay mounts, failing revisions say why, the orphan sweep
# removes a container no instance tracks, and deleting everything leaves nothing behind.
#   tests/e2e/runtime_faults_test.sh ELAFROSD ELAFROS SOURCE_DIR [ROUNDS]
set -euo pipefail

source "$(dirname "$0")/lib.sh"
rounds=${4:-20}

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
real_runc=$(command -v runc)
cat >"$work/flaky-runc" <<SH
#!/bin/sh
# Every call but --version: 30% fail at once, 3% hang past the deadline and then fail.
case "\$1" in --version) exec "$real_runc" "\$@" ;; esac
case " \$* " in *" delete "*) [ -e "$work/fail-deletes" ] && { echo "flaky-runc: deletes refused" >&2; exit 1; } ;; esac
r=\$(( \$(od -An -N2 -tu2 /dev/urandom) % 100 ))
if [ "\$r" -lt 30 ]; then echo "flaky-runc: injected failure of \$*" >&2; exit 1; fi
if [ "\$r" -lt 33 ]; then sleep 6; echo "flaky-runc: injected hang" >&2; exit 1; fi
exec "$real_runc" "\$@"
SH
chmod +x "$work/flaky-runc"
cat >"$work/config.yaml" <<YAML
runtime-timeout-seconds: 3
orphan-sweep-seconds: 2
stop-grace-seconds: 1
YAML
daemon_args=(--config "$work/config.yaml" --runtime "$work/flaky-runc")
runc_ids() { runc --root "$data/runc" list -q 2>/dev/null | sort; }

# Churn, with a SIGKILL in the middle of each round. Every loop is bounded in count.
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
created=0
for round in $(seq "$rounds"); do
  [ -n "$daemon_pid" ] || start_daemon
  for op in 1 2; do
    k=$(( (RANDOM % 6) + 1 ))
    case $(( RANDOM % 4 )) in
      0 | 1) e service create "churn-$k" --image "oci:$work/image:latest" --scale-min 1 --no-wait >/dev/null 2>&1 && created=$((created + 1)) || true ;;
      2) e service update "churn-$k" --scale-min 2 --no-wait >/dev/null 2>&1 || true ;;
      3) e service delete "churn-$k" >/dev/null 2>&1 || true ;;
    esac
  done
  sleep "0.$(( RANDOM % 8 ))"
  kill -KILL "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
done
pass "$rounds SIGKILL rounds of churn ($created creates)"

start_daemon
# Two services stay, the rest go.
for k in 1 2; do
  e service create "churn-$k" --image "oci:$work/image:latest" --scale-min 1 --no-wait >/dev/null 2>&1 || true
done
for k in 3 4 5 6; do e service delete "churn-$k" >/dev/null 2>&1 || true; done

# Every revision that is not Ready says why.
check "every service that is not Ready has a reason" python3 - "$elafros_bin" "$sock" <<'PY'
import json, subprocess, sys
items = json.loads(subprocess.check_output([sys.argv[1], "--socket", sys.argv[2], "service", "list", "-o", "json"]))["items"]
for s in items:
    for c in s.get("status", {}).get("conditions", []):
        if c["type"] == "Ready" and c["status"] != "True":
            assert c.get("reason"), (s["metadata"]["name"], c)
PY

# The daemon converges: each service serves, and instances = containers = mounts = bundles.
serves() { curl -s -m 5 -H "Host: churn-$1.default.localhost" "http://127.0.0.1:$port/" | grep -q "Hello from churn-$1"; }
converged() {
  local inst
  inst=$(e instance list --standbys -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
assert all(i["phase"] in ("ready", "standby") for i in items), [(i["id"], i["phase"]) for i in items]
print("\n".join(sorted(i["id"] for i in items)))') || return 1
  [ -n "$inst" ] &&
    [ "$(runc_ids)" = "$inst" ] &&
    [ "$(grep -o "$data/instances/[^/]*/rootfs" /proc/mounts | cut -d/ -f6 | sort)" = "$inst" ] &&
    [ "$(ls "$data/instances" | sort)" = "$inst" ] &&
    serves 1 && serves 2
}
check "the daemon converges: instances = runc's containers = overlay mounts = bundles" wait_until 90 converged
e instance list | sed 's/^/# /'

# A container no instance tracks, in the daemon's runc root: the sweep removes it.
umoci unpack --image "$work/image:latest" "$work/stray" >/dev/null
python3 - "$work/stray/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/sleep", "1000"]
c["process"]["terminal"] = False
json.dump(c, open(sys.argv[1], "w"))
PY
# The sweep may catch it while runc still creates it (it is in the root from the start) and delete
# it under runc's feet: then run it again, a bounded number of times.
for attempt in 1 2 3 4 5; do
  if "$real_runc" --root "$data/runc" run --detach --bundle "$work/stray" stray-e2e >/dev/null 2>"$work/stray.err"; then break; fi
  echo "# runc run stray-e2e failed (attempt $attempt): $(tail -n 2 "$work/stray.err")"
  "$real_runc" --root "$data/runc" delete --force stray-e2e >/dev/null 2>&1 || true
done
check "a stray container runs in the daemon's runc root" bash -c "runc --root '$data/runc' list -q | grep -qx stray-e2e"
swept() { ! runc_ids | grep -qx stray-e2e; }
# Its removal goes through the flaky runc too: a failed one is retried (1 s doubling to 30 s).
check "...and the orphan sweep removes it" wait_until 90 swept
check "...saying so" grep -q "removing stray container stray-e2e" "$work/daemon.log"
both_serve() { serves 1 && serves 2; }
check "the services kept serving" both_serve

# A removal that keeps failing: the instance stays terminating, shown with the error, until it
# succeeds.
touch "$work/fail-deletes"
e service delete churn-1 >/dev/null
terminating() { e instance list | grep -q "churn-1-.*terminating.*deletes refused (attempt"; }
check "an instance whose removal fails is listed as terminating, with the last error" wait_until 30 terminating
check "...and status warns about it" contains "$(e status)" "could not be removed yet and are retried"
rm -f "$work/fail-deletes"
removed() { ! e instance list | grep -q "churn-1-"; }
check "...until a retry removes it" wait_until 60 removed

# Deleting everything leaves no container, mount, bundle or cgroup.
e service delete churn-2 >/dev/null
empty() {
  [ -z "$(runc_ids)" ] && ! grep -q "$data/instances/" /proc/mounts &&
    [ -z "$(ls "$data/instances")" ] && [ -z "$(e instance list -o json | grep '"id"')" ] &&
    [ -z "$(find /sys/fs/cgroup/ -maxdepth 3 -path '*/elafros/churn-*' 2>/dev/null)" ]
}
check "deleting the services leaves no container, mount, bundle, cgroup or instance" wait_until 90 empty
echo "# in the daemon's log: $(grep -c 'injected failure' "$work/daemon.log") injected failures," \
  "$(grep -c ' hung: ' "$work/daemon.log") hung calls killed," \
  "$(grep -c 'stays terminating' "$work/daemon.log") removals kept terminating," \
  "$(grep -c 'removing stray container' "$work/daemon.log") strays swept," \
  "$(grep -c 'ContainerStartFailed' "$work/daemon.log") failed starts"
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
