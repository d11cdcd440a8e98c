#!/usr/bin/env bash
# Standby instances with real runc, each instance in a network namespace of its own: a container
# made ahead (runc's "created") beside the first instance; a cold start from zero starting it;
# another made for the next; after kill -9 of the daemon, the waiting one adopted, the same
# process; a superseded revision's standby removed and the new revision's made; the annotation
# asking for none, and a bad one refused; deleting leaves no container.
#   tests/e2e/standby_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
printf 'scale-to-zero-grace-period-seconds: 0\n' >"$work/config.yaml"
daemon_args=(--config "$work/config.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
get() { curl -sS -m 10 -H "Host: hello.default.localhost" "http://127.0.0.1:$port/"; }
standby_of() { standby_ids | grep "^$1-" || true; }
has_standby() { [ -n "$(standby_of "$1")" ]; }
status_of() { runc --root "$data/runc" state "$1" 2>/dev/null | sed -n 's/.*"status": "\([a-z]*\)".*/\1/p'; }
pid_of() { runc --root "$data/runc" state "$1" 2>/dev/null | sed -n 's/.*"pid": \([0-9]*\).*/\1/p'; }

e service create hello --image "oci:$work/image:latest" --scale-window 6s >/dev/null
check "the service serves" test "$(get)" = "Hello from hello (revision hello-00001)"
check "a standby is made beside the first instance" wait_until 10 has_standby hello-00001
sb=$(standby_of hello-00001)
check "...a container runc lists as created: made, its process waiting" test "$(status_of "$sb")" = created
check "...its process has not run the app (runc init waits on its exec fifo)" \
  grep -q "runc" "/proc/$(pid_of "$sb")/cmdline"
check "'instance list --standbys' shows it as a standby" bash -c "'$elafros_bin' --socket '$sock' instance list --standbys | grep '$sb' | grep -qw standby"
check "...and 'instance list' shows only the instance" bash -c "! '$elafros_bin' --socket '$sock' instance list | grep -q '$sb'"
json=$(e status -o json)
check "status counts it apart from the instances" \
  bash -c "grep -q '\"standbyInstances\": 1' <<<'$json' && grep -q '\"instances\": 1,' <<<'$json'"

at_zero() { [ "$(instances hello)" = 0 ]; }
check "the service scales to zero" wait_until 40 at_zero
check "...and the standby stays" test "$(standby_of hello-00001)" = "$sb"
check "a request at zero is served" test "$(get)" = "Hello from hello (revision hello-00001)"
check "...by the standby, started" bash -c "[ \"\$(runc --root '$data/runc' state '$sb' | sed -n 's/.*\"status\": \"\\([a-z]*\\)\".*/\\1/p')\" = running ]"
check "...the daemon says so" grep -q "started instance $sb of revision hello-00001 .* from standby" "$work/daemon.log"
next_standby() { local s; s=$(standby_of hello-00001); [ -n "$s" ] && [ "$s" != "$sb" ]; }
check "another standby is made for the next cold start" wait_until 10 next_standby
sb2=$(standby_of hello-00001)
pid2=$(pid_of "$sb2")
# Back at zero, with the standby's record written just after it was made, the daemon dies
# without a word.
check "back at zero" wait_until 40 at_zero
wait_until 5 grep -q "made standby instance $sb2" "$work/daemon.log"
kill -KILL "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
start_daemon
check "after kill -9, the restart adopts the waiting standby" wait_until 10 grep -q "adopted standby instance $sb2" "$work/daemon.log"
now_pid=$(pid_of "$sb2") now_status=$(status_of "$sb2")
check "...the same process, still waiting ($now_pid, $now_status)" bash -c "[ '$now_pid' = '$pid2' ] && [ '$now_status' = created ]"
check "...and a cold start after the restart starts it" test "$(get)" = "Hello from hello (revision hello-00001)"
check "...from standby" grep -q "started instance $sb2 .* from standby" "$work/daemon.log"

# A new revision takes the traffic: the old one's standby goes, the new one gets one.
e service update hello -e GREETING=Howdy >/dev/null
check "the update serves" test "$(get)" = "Howdy from hello (revision hello-00002)"
no_old() { ! has_standby hello-00001; }
check "the superseded revision's standby is removed" wait_until 15 no_old
check "...the new revision gets its own" wait_until 15 has_standby hello-00002

# The annotation: none for one, and a bad value refused with what to write.
e service create quiet --image "oci:$work/image:latest" -a autoscaling.elafros.dev/standby=0 >/dev/null
e service create eager --image "oci:$work/image:latest" -a autoscaling.elafros.dev/standby=1 >/dev/null
check "a revision asking for one gets it" wait_until 10 has_standby eager-00001
check "...one asking for none, made at the same ticks, has none" test -z "$(standby_of quiet-00001)"
out=$(e service create bad --image "oci:$work/image:latest" -a autoscaling.elafros.dev/standby=lots 2>&1) && rc=0 || rc=$?
check "a bad standby annotation is refused" bash -c "[ $rc -ne 0 ] && grep -qF 'must be a whole number from 0 to 64' <<<'$out'"
check "...and nothing is created" bash -c "! '$elafros_bin' --socket '$sock' service list | grep -q '^bad '"

for s in hello quiet eager; do e service delete "$s" >/dev/null; done
check "deleting the services leaves no container, standbys included" test -z "$(runc --root "$data/runc" list -q)"
check "...and no overlay mount" bash -c "! grep -q '$data/instances/' /proc/mounts"
finish
