#!/usr/bin/env bash
# Shared by the end-to-end tests: a temporary data dir, socket and port for a real elafrosd,
# helpers to drive it through the CLI, and a cleanup that runs even when a test fails.
#   source lib.sh ELAFROSD ELAFROS SOURCE_DIR
elafrosd=$(realpath "$1")
elafros_bin=$(realpath "$2")
src=$3
[ "$(id -u)" -eq 0 ] || { echo "e2e: must run as root (runc, overlay mounts, cgroups)"; exit 1; }

work=$(mktemp -d /tmp/elafros-e2e-XXXXXX)
port=""
daemon_args=()
data=$work/data
sock=$work/elafros.sock
daemon_pid=""
failures=0
extra_pids=()  # processes a test started besides the daemon (a subscriber): ended by cleanup
# Each test's daemon has a bridge and a /24 of its own, so that tests run side by side.
net_bridge=elt$(($$ % 1000000))
net_subnet=10.$((200 + $$ % 50)).$(($$ / 50 % 256)).0/24

# A command that fails outside a check ends the test through set -e; the ERR trap remembers
# which, so that the cleanup can say where it stopped and show the daemon's log.
set -o errtrace
aborted_at=""
trap 'aborted_at="${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND (exit $?)"' ERR

cleanup() {
  local rc=$?
  set +e
  trap - ERR
  if [ "$rc" -ne 0 ] && [ -n "$aborted_at" ] && [ -f "$work/daemon.log" ]; then
    echo "e2e: stopped by a failing command at $aborted_at; the daemon log's end:"
    tail -n 60 "$work/daemon.log"
  fi
  local p
  for p in "${extra_pids[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon_pid" 2>/dev/null
  fi
  # Containers the daemon leaves running on purpose (they outlive it) and anything a failure left.
  local root
  for root in "$data/runc" "$data/builds/runc"; do
    [ -d "$root" ] || continue
    for id in $(runc --root "$root" list -q 2>/dev/null); do runc --root "$root" delete --force "$id" >/dev/null 2>&1; done
  done
  grep -o "$work/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  # What a killed daemon left of its network: namespaces (their veths go with them), the user
  # namespace that owns them, the nftables table, the bridge.
  local ns
  for ns in /run/elafros/"$net_bridge"/netns/*; do
    [ -e "$ns" ] || continue
    umount -l "$ns" 2>/dev/null; rm -f "$ns"
  done
  umount -l /run/elafros/"$net_bridge"/userns 2>/dev/null  # user-namespaces' (a killed daemon's)
  rm -rf /run/elafros/"$net_bridge"
  nft delete table ip "elafros_$net_bridge" 2>/dev/null
  ip link delete "$net_bridge" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

e() { "$elafros_bin" --socket "$sock" "$@"; }
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
contains() { grep -qF -- "$2" <<<"$1"; }
# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds or SECONDS pass (then fails).
wait_until() {
  local tries=$(($1 * 10)); shift
  for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
  "$@"
}

# running_ids: the ids of the containers runc lists as started, not the standbys made ahead and
# waiting (runc's "created"). runc list can fail while a container is being created or deleted;
# retry rather than read that as none.
running_ids() {
  local out=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    out=$(runc --root "$data/runc" list 2>/dev/null) && break
    sleep 0.05
  done
  awk 'NR > 1 && $3 != "created" {print $1}' <<<"$out"
}
# standby_ids: the standbys' ids.
standby_ids() { runc --root "$data/runc" list 2>/dev/null | awk 'NR > 1 && $3 == "created" {print $1}'; }
# instances SERVICE: how many started containers of SERVICE runc lists.
instances() { running_ids | grep -c "^$1-" || true; }

# start_subscriber: the CloudEvents SDK subscriber (tests/e2e/cloudevents/subscriber.js) on a
# free loopback port, recording what it receives to $work/received.jsonl; $sub is its URL.
start_subscriber() {
  local sdk=$src/tests/e2e/cloudevents port
  [ -d "$sdk/node_modules/cloudevents" ] || { echo "the CloudEvents SDK is missing; run packaging/install-deps.sh"; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  node "$sdk/subscriber.js" "$port" "$work/received.jsonl" &
  extra_pids+=($!)
  wait_until 10 grep -q listening "$work/received.jsonl"
  sub=http://127.0.0.1:$port
}

start_daemon() {
  "$elafrosd" --data-dir "$data" --socket "$sock" --listen "127.0.0.1:${port:-0}" \
    --network-bridge "$net_bridge" --network-subnet "$net_subnet" "${daemon_args[@]}" >>"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do
    e status >/dev/null 2>&1 && return 0
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "elafrosd did not come up:"; cat "$work/daemon.log"; exit 1
}

stop_daemon() {
  kill -TERM "$daemon_pid"
  local rc=0
  wait "$daemon_pid" || rc=$?
  daemon_pid=""
  return $rc
}

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed; daemon log:"; cat "$work/daemon.log"
    exit 1
  fi
  echo "all checks passed"
}
