#!/usr/bin/env bash
# End-to-end: the daemon as operators run it. Workloads outlive it (kill -9 included), a restart
# adopts them, acknowledged writes survive kill -9, SIGTERM drains in-flight requests, one daemon
# per data dir, systemd's notify protocol, stop-all, a damaged database, and a chaos run that
# kills the daemon at random points and checks the invariants after every restart.
#   tests/e2e/daemon_test.sh ELAFROSD ELAFROS SOURCE_DIR [CHAOS_ROUNDS]
set -euo pipefail

source "$(dirname "$0")/lib.sh"
rounds=${4:-20}

helpers=()
stop_helpers() {
  for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  helpers=()
}
trap 'stop_helpers; cleanup' EXIT

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
img="oci:$work/image:latest"
cat >"$work/daemon.yml" <<YAML
stop-grace-seconds: 2
shutdown-timeout-seconds: 10
socket-group: nogroup
YAML
daemon_args=(--config "$work/daemon.yml")

# The notify protocol: a datagram socket standing in for systemd.
python3 - "$work/notify.sock" >"$work/notify.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
deadline = time.time() + 300
while time.time() < deadline:
    try:
        print(s.recv(4096).decode().replace("\n", " "), flush=True)
    except socket.timeout:
        pass
PY
helpers+=("$!")
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
export NOTIFY_SOCKET="$work/notify.sock"  # every start below runs "under systemd"
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
check "READY=1 reaches systemd's notify socket once serving" grep -q "READY=1" "$work/notify.log"
check "socket-group owns the API socket" test "$(stat -c %G:%a "$sock")" = nogroup:666
printf 'socket-group: no-such-group-here\n' >"$work/badgroup.yml"
if out=$("$elafrosd" --config "$work/badgroup.yml" --data-dir "$work/other" --socket "$work/other.sock" --listen 127.0.0.1:0 2>&1); then
  fail "an unknown socket-group is refused"; else
  check "an unknown socket-group is refused, saying how to create it" contains "$out" "groupadd --system no-such-group-here"; fi

kill9() {
  kill -KILL "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
}
containers() { runc --root "$data/runc" list -f json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin) or []; print("\n".join(sorted("%s %s" % (c["id"], c["pid"]) for c in d if c["status"] == "running")))'; }
served() { curl -s -o /dev/null -w '%{http_code}' -H "Host: $1.default.localhost" "http://127.0.0.1:$port/"; }

# One daemon per data dir.
if out=$("$elafrosd" --data-dir "$data" --socket "$work/second.sock" --listen 127.0.0.1:0 2>&1); then
  fail "a second daemon on the same data dir refuses to start"; else
  check "a second daemon on the same data dir refuses, saying why" contains "$out" "another elafrosd is already running on data dir"; fi

# Workloads outlive kill -9; the restart adopts the same containers (same pids), no duplicates.
e service create one --image "$img" >/dev/null
e service create two --image "$img" --scale-min 2 >/dev/null
# Ready means one instance serves; min-scale's second one may still be starting.
three() { test "$(containers | wc -l)" = 3; }
wait_until 10 three || true
before=$(containers)
check "three instances run" test "$(wc -l <<<"$before")" = 3
check "instance list shows them with pid, port and phase" \
  test "$(e instance list | grep -cE '^(one|two)-00001-[0-9a-f]{6} +(one|two) +(one|two)-00001 +[0-9]+ +[0-9]+ +ready$')" = 3
kill9
check "kill -9 of the daemon stops no container" test "$(containers)" = "$before"
start_daemon
after=$(containers)
check "after restart the same containers serve (same ids and pids)" test "$after" = "$before"
[ "$after" = "$before" ] || diff <(echo "$before") <(echo "$after") | sed "s/^/     diff: /" || true
check "service one answers" test "$(served one)" = 200
check "service two answers" test "$(served two)" = 200
check "no duplicate instance was started" bash -c "! grep -q 'started instance' <(sed -n '/adopted instance/,\$p' '$work/daemon.log')"

# Acknowledged writes survive kill -9: create, and kill the daemon the moment it answers.
for n in 1 2 3; do
  e service create "durable$n" --image "$img" --no-wait >/dev/null
  kill9
  start_daemon
  check "an acknowledged create survives kill -9 (round $n)" contains "$(e service list)" "durable$n"
done
for n in 1 2 3; do e service delete "durable$n" >/dev/null; done

# SIGTERM: stop accepting, let in-flight requests finish, exit 0, leave workloads running.
before=$(containers)
curl -s -o "$work/slow.out" -w '%{http_code}' -H "Host: one.default.localhost" \
  "http://127.0.0.1:$port/cgi-bin/sleep?2" >"$work/slow.code" &
slow=$!
sleep 0.5
start=$(date +%s%N)
rc=0; stop_daemon || rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$slow" || true
check "SIGTERM exits 0" test "$rc" = 0
check "an in-flight request finished with 200 (the daemon waited ${ms} ms for it)" test "$(cat "$work/slow.code")" = 200
check "STOPPING=1 reaches systemd" grep -q "STOPPING=1" "$work/notify.log"
check "workloads keep running after a graceful stop" test "$(containers)" = "$before"
start_daemon

# SIGTERM during a pull from a registry that never answers (timeout 60 s): the pull is cancelled
# and the daemon exits without waiting for it.
python3 "$src/tests/e2e/registry_helper.py" silent --port-file "$work/silent.port" >/dev/null 2>&1 &
helpers+=("$!")
for _ in $(seq 50); do [ -s "$work/silent.port" ] && break; sleep 0.1; done
e image pull "127.0.0.1:$(cat "$work/silent.port")/team/app:v1" >"$work/pull.out" 2>&1 &
puller=$!
sleep 0.5
start=$(date +%s)
rc=0; stop_daemon || rc=$?
took=$(( $(date +%s) - start ))
wait "$puller" || true
check "SIGTERM during a pull exits 0 without waiting out the registry timeout (${took} s)" test "$rc" = 0 -a "$took" -lt 20
check "...the pull says the daemon went away" contains "$(cat "$work/pull.out")" "elafrosd closed the connection"
check "...and leaves no scratch files" test -z "$(ls -A "$data/images/tmp")"
start_daemon
# kill -9 during a pull leaves a scratch layout; the next start clears it.
e image pull "127.0.0.1:$(cat "$work/silent.port")/team/app:v2" >/dev/null 2>&1 &
puller=$!
for _ in $(seq 50); do [ -n "$(ls -A "$data/images/tmp")" ] && break; sleep 0.1; done
check "a pull in progress works in images/tmp" test -n "$(ls -A "$data/images/tmp")"
kill9
wait "$puller" || true
start_daemon
check "after kill -9 mid-pull, the restart clears what the pull left" test -z "$(ls -A "$data/images/tmp")"

# stop-all: everything down and nothing restarts, until start-all.
out=$(e system stop-all)
check "stop-all says what it did" contains "$out" "Every instance is stopped"
check "stop-all leaves no container" test -z "$(containers)"
code=$(served one)
check "requests get 503 while halted" test "$code" = 503
check "...saying how to resume" contains "$(curl -s -H 'Host: one.default.localhost' "http://127.0.0.1:$port/")" "elafros system start-all"
check "status shows it" contains "$(e status)" "Halted:"
sleep 1.5
check "nothing restarts meanwhile (min-scale 2 included)" test -z "$(containers)"
e system start-all >/dev/null
ok=""
for _ in $(seq 100); do [ "$(served one)" = 200 ] && [ "$(served two)" = 200 ] && { ok=yes; break; }; sleep 0.1; done
check "start-all brings the services back" test -n "$ok"
n=""
for _ in $(seq 50); do n=$(containers | wc -l); [ "$n" = 3 ] && break; sleep 0.1; done
check "...two has its 2 instances again (3 containers, found $n)" test "$n" = 3

# A damaged database: refuse to start, say what to do, touch nothing.
stop_daemon >/dev/null || true
mkdir -p "$work/bad"
head -c 65536 /dev/urandom >"$work/bad/elafros.db"
sum=$(md5sum <"$work/bad/elafros.db")
if out=$("$elafrosd" --data-dir "$work/bad" --socket "$work/bad.sock" --listen 127.0.0.1:0 2>&1); then
  fail "a damaged database is refused"; else
  check "a damaged database is refused with what to do" contains "$out" "is damaged"; fi
check "...and left as it was" test "$(md5sum <"$work/bad/elafros.db")" = "$sum"
start_daemon

# Chaos: kill -9 at random points of deploys, updates, deletes and scale events; after every
# restart the recorded instances, runc's containers, the overlay mounts and the network
# namespaces agree, and there is no zombie.
# Zombies the daemon leaves unreaped (its children; orphans of a killed daemon are init's).
zombies() { ps --ppid "$daemon_pid" -o stat= 2>/dev/null | grep -c '^Z' || true; }
z0=0
agree() {
  local recorded running mounts
  recorded=$(e_json_instances)
  running=$(containers | cut -d' ' -f1)
  mounts=$(grep -c " $data/instances/[^ ]*/rootfs overlay" /proc/mounts || true)
  # Every container has its overlay: the instances and the standbys made ahead.
  [ "$recorded" = "$running" ] && [ "$mounts" = "$(runc --root "$data/runc" list -q 2>/dev/null | grep -c . || true)" ]
}
# The network agrees too: every running container is in one of the daemon's namespaces, no more
# are left than its containers and the pool's 8, and the bridge holds one veth per namespace.
netns_inodes() {
  local f
  for f in /run/elafros/"$net_bridge"/netns/*; do [ -e "$f" ] && stat -L -c %i "$f"; done | sort
  return 0
}
net_agree() {
  local inodes pid n
  inodes=$(netns_inodes)
  for pid in $(containers | cut -d' ' -f2); do
    grep -qx "$(readlink "/proc/$pid/ns/net" | tr -dc 0-9)" <<<"$inodes" || return 1
  done
  n=$(grep -c . <<<"$inodes" || true)
  # The instances', the standbys' and the pool's 8.
  [ "$n" -le $(($(runc --root "$data/runc" list -q 2>/dev/null | grep -c . || true) + 8)) ] &&
    [ "$(ip -o link show master "$net_bridge" type veth | wc -l)" = "$n" ]
}
e_json_instances() {
  curl -s --unix-socket "$sock" http://elafrosd/api/v1/instances |
    python3 -c 'import json,sys; print("\n".join(sorted(i["id"] for i in json.load(sys.stdin)["items"] if i["phase"] in ("ready",))))'
}
settle() {  # until nothing is starting or stopping, bounded
  for _ in $(seq 100); do
    phases=$(curl -s --unix-socket "$sock" http://elafrosd/api/v1/instances |
      python3 -c 'import json,sys; print(" ".join(i["phase"] for i in json.load(sys.stdin)["items"]))')
    grep -qE "starting|stopping|exited" <<<"$phases" || return 0
    sleep 0.1
  done
  return 1
}
# A runc call a killed daemon left running (an orphan, its parent gone) is ended by the next
# start; one the test runs itself on the same root is left alone. Stand-ins whose argv reads
# like runc_argv's, so the check does not depend on when a real one would finish.
kill9
stand_in='import time; time.sleep(120)'  # one process; its argv goes on: runc --root ROOT ...
( python3 -c "$stand_in" runc --root "$data/runc" run --detach left-behind >/dev/null 2>&1 & echo $! >"$work/orphan.pid" )
python3 -c "$stand_in" runc --root "$data/runc" list >/dev/null 2>&1 &
operator_runc=$!
extra_pids+=("$(cat "$work/orphan.pid")" "$operator_runc")
start_daemon
running() { [ -e "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }  # a zombie has ended
ended() { ! running "$1"; }
check "a start ends the runc call a killed predecessor left running" ended "$(cat "$work/orphan.pid")"
check "...and says so" grep -q "ending runc (pid $(cat "$work/orphan.pid")) that a previous elafrosd left running" "$work/daemon.log"
check "...but leaves a runc the test itself runs on the same root" running "$operator_runc"
kill "$operator_runc" 2>/dev/null || true

bad_rounds=0
for r in $(seq "$rounds"); do
  ops=()
  case $((RANDOM % 5)) in
    0) e service create "chaos$r" --image "$img" --no-wait >/dev/null 2>&1 & ops+=($!) ;;
    1) e service update one -e "ROUND=$r" --no-wait >/dev/null 2>&1 & ops+=($!) ;;
    2) e service update two --scale-min $((1 + RANDOM % 3)) --no-wait >/dev/null 2>&1 & ops+=($!) ;;
    3) victim=$(e service list 2>/dev/null | awk 'NR > 1 && $1 ~ /^chaos/ {print $1}' | head -1)
       if [ -n "$victim" ]; then e service delete "$victim" >/dev/null 2>&1 & ops+=($!); fi ;;
    4) for _ in 1 2 3; do curl -s -o /dev/null --max-time 10 -H "Host: one.default.localhost" "http://127.0.0.1:$port/" & ops+=($!); done ;;
  esac
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  kill9
  for op in "${ops[@]}"; do wait "$op" 2>/dev/null || true; done  # (never a bare wait)
  start_daemon
  if settle && agree && wait_until 5 net_agree && [ "$(zombies)" -le "$z0" ]; then :; else
    bad_rounds=$((bad_rounds + 1))
    echo "     round $r: recorded=[$(e_json_instances | tr '\n' ' ')] running=[$(containers | cut -d' ' -f1 | tr '\n' ' ')] zombies=$(zombies)"
    echo "     namespaces=[$(netns_inodes | tr '\n' ' ')] veths=$(ip -o link show master "$net_bridge" type veth | wc -l)"
  fi
done
check "chaos: $rounds kill -9 rounds, the store, runc, the mounts and the network namespaces agreed after every restart" test "$bad_rounds" = 0

for s in $(e service list | awk 'NR > 1 {print $1}'); do e service delete "$s" >/dev/null; done
check "after deleting everything no container is left" test -z "$(containers)"
check "...and no overlay mount" test "$(grep -c " $data/instances/" /proc/mounts || true)" = 0
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
check "...and leaves no namespace, bridge or nftables table" \
  test -z "$(netns_inodes)$(ip -o link show "$net_bridge" 2>/dev/null)$(nft list table ip "elafros_$net_bridge" 2>/dev/null)"
finish
