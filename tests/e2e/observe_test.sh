#!/usr/bin/env bash
# End-to-end: debugging and monitoring with real containers. Logs (merged, streamed with -f,
# surviving restarts, rotated), failure reasons (exit code and output, crash-loop backoff, OOM
# kills), and metrics.
#   tests/e2e/observe_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

follower=""
stop_follower() { if [ -n "$follower" ]; then kill "$follower" 2>/dev/null || true; wait "$follower" 2>/dev/null || true; follower=""; fi; }
trap 'stop_follower; cleanup' EXIT

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
img="oci:$work/image:latest"
cat >"$work/daemon.yml" <<YAML
log-max-file-bytes: 65536
log-max-files: 2
metrics-listen: 127.0.0.1:0
access-log: $work/access.log
log-sinks: [file, stdout]
readiness-timeout-seconds: 2
stop-grace-seconds: 2
YAML
daemon_args=(--config "$work/daemon.yml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')

# until SECONDS COMMAND...: retries a check (bounded) until it passes.
until_ok() { local n=$(( $1 * 10 )); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; "$@"; }
logs_contain() { e logs "$1" 2>&1 | grep -qF -- "$2"; }

# Logs: a line the app writes shows up, with its instance; stderr lines go to stderr.
e service create talk --image "$img" >/dev/null
curl -sS "http://talk.default.localhost:$port/" >/dev/null
out=$(e logs talk 2>/dev/null)
check "a line the app writes to stdout shows up in logs, with its instance" \
  grep -qE '^\[talk-00001-[0-9a-f]{6}\] hello: serving revision talk-00001' <<<"$out"
check "stderr lines go to stderr" until_ok 5 bash -c "'$elafros_bin' --socket '$sock' logs talk 2>&1 >/dev/null | grep -q 'response:200'"
check "--timestamps prefixes RFC 3339 UTC times" \
  grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{15}Z \[talk-' <<<"$(e logs talk --timestamps 2>/dev/null)"
check "-o json carries the time, stream and instance" \
  grep -q '"stream":"stdout","message":"hello: serving' <<<"$(e logs talk -o json)"
check "--tail 1 gives one line" test "$(e logs talk --tail 1 2>&1 | wc -l)" = 1
check "--since 1h keeps them" test "$(e logs talk --since 1h 2>&1 | wc -l)" -ge 2
check "...and --since 0s (from now on) has none of them" test -z "$(e logs talk --since 0s 2>&1)"
if out=$(e logs talk --since 10x 2>&1); then fail "a bad --since fails"; else
  check "a bad --since says how to write one" contains "$out" "e.g. 30s, 10m, 1h30m"; fi
id=$(e logs talk 2>/dev/null | sed -n 's/^\[\(talk-00001-[0-9a-f]*\)\].*/\1/p' | head -1)
check "--instance keeps that instance's lines" test "$(e logs talk --instance "$id" 2>&1 | grep -vc "^\[$id\]")" = 0
check "the stdout sink forwards lines as JSON to the daemon's stdout" \
  grep -q '"service":"talk","revision":"talk-00001","instance":"talk-00001-[0-9a-f]*","stream":"stdout","message":"hello: serving' "$work/daemon.log"
if out=$(e logs nosuch 2>&1); then fail "logs of an unknown service fail"; else
  check "logs of an unknown service say so" contains "$out" 'service "nosuch" not found'; fi

# -f streams new lines, and follows the instances of a new revision.
e logs talk -f >"$work/follow.out" 2>&1 &
follower=$!
sleep 0.5
curl -sS "http://talk.default.localhost:$port/" >/dev/null
e service update talk -e GREETING=Hi >/dev/null
check "-f streams lines from the new revision's instance" until_ok 5 grep -q 'hello: serving revision talk-00002' "$work/follow.out"
stop_follower
check "-f showed the backlog first" test "$(grep -c 'serving revision talk-00001' "$work/follow.out")" -ge 1

# Lines survive instance removal and a daemon restart; an app that writes while the daemon is
# down neither dies nor blocks, and nothing it wrote meanwhile is lost.
e service create ticker --image "$img" --cmd sh --arg -c \
  --arg 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.05; done & exec /bin/hello' >/dev/null
pid_before=$(grep -o 'started instance ticker-00001-[0-9a-f]* of revision ticker-00001 (pid [0-9]*' "$work/daemon.log" | grep -o '[0-9]*$')
stop_daemon >/dev/null || true
sleep 2
start_daemon
check "lines survive a daemon restart" until_ok 5 logs_contain talk "hello: serving revision talk-00001"
check "the app that wrote while the daemon was down still runs (adopted, pid $pid_before)" \
  grep -q "adopted instance ticker-00001-[0-9a-f]* of revision ticker-00001 (pid $pid_before," "$work/daemon.log"
e logs ticker 2>/dev/null | sed -n 's/.* tick \([0-9]*\)$/\1/p' >"$work/ticks"
last=$(tail -1 "$work/ticks")
check "it kept writing while the daemon was down (tick $last, ~40 expected from 2 s)" test "${last:-0}" -ge 30
check "...and no line was lost: ticks 0..$last, each once" test "$(sort -n "$work/ticks" | uniq | wc -l)" = "$((last + 1))"
e service delete ticker >/dev/null
check "...and --revision picks one revision" test -z "$(e logs talk --revision talk-00002 2>&1 | grep talk-00001 || true)"

# A crashing image fails 'service create' with its exit code and its output.
if out=$(e service create crash --image "$img" --cmd sh --arg -c --arg 'echo "about to fail: missing DB_URL" >&2; exit 3' 2>&1); then
  fail "a crashing image fails service create"; else
  check "the failure names the reason, the revision and the exit code" contains "$out" "ExitCode: revision 'crash-00001': container exited with code 3"
  check "...and shows the app's last output" contains "$out" "about to fail: missing DB_URL"; fi
check "the crash's output is in its logs" until_ok 5 logs_contain crash "about to fail: missing DB_URL"
# It keeps being restarted, but with exponential backoff: a crash loop.
check "a crash loop is reported as CrashLoopBackOff" until_ok 8 bash -c "'$elafros_bin' --socket '$sock' service describe crash | grep -q CrashLoopBackOff"
out=$(e service describe crash)
check "...with the restart count and the next retry" grep -qE 'restarted [0-9]+ times; the next start is in [0-9]+ s, at 20' <<<"$out"
sleep 3
starts=$(grep -c "started instance crash-00001" "$work/daemon.log" || true)
check "the crash loop backs off: $starts starts in ~6 s, not a hot loop" test "$starts" -le 4
e service delete crash >/dev/null

# An app that never listens on $PORT fails its readiness probe, saying what was probed.
if out=$(e service create deaf --image "$img" --cmd sh --arg -c --arg 'exec sleep 1000' 2>&1); then
  fail "an app that never listens fails"; else
  check "an app that never listens fails with ReadinessProbeFailed, what was probed and the deadline" \
    grep -qE "ReadinessProbeFailed: revision 'deaf-00001': nothing accepted TCP connections on port [0-9]+ .* within 2 s" <<<"$out"; fi
e service delete deaf >/dev/null
# An image that cannot be pulled says so, with the registry's error.
if out=$(e service create nopull --image 127.0.0.1:1/team/app:v1 2>&1); then fail "an unpullable image fails"; else
  check "an unpullable image fails with ImagePullFailed and the registry's error" contains "$out" "ImagePullFailed: image \"127.0.0.1:1/team/app:v1\""
  check "...naming the registry" contains "$out" "registry 127.0.0.1:1 cannot be reached"; fi

# An app that exceeds its memory limit is OOMKilled.
cat >"$work/hog.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hog
spec:
  template:
    spec:
      containers:
        - image: $img
          command: ["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=\$x\$x; done"]
          resources:
            limits:
              memory: 32Mi
YAML
if out=$(e apply -f "$work/hog.yaml" 2>&1); then fail "a memory hog fails"; else
  check "an app over its memory limit is OOMKilled" contains "$out" "OOMKilled"
  check "...and the message names the limit" contains "$out" "more memory than its limit of 32Mi"; fi
e service delete hog >/dev/null

# Rotation caps disk use: an app that writes fast cannot fill the disk. It writes while it
# serves, so that its readiness does not wait on 200000 lines of a shell loop.
e service create chatty --image "$img" --cmd sh --arg -c \
  --arg 'i=0; (while [ $i -lt 200000 ]; do echo "line $i: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"; i=$((i+1)); done) & exec /bin/hello' >/dev/null
check "the chatty app's last lines arrive" until_ok 30 logs_contain chatty "line 199999:"
store_bytes=$(du -sb "$data/logs/store/default/chatty" | cut -f1)
check "its stored logs stay within 2 x 64 KiB ($store_bytes bytes)" test "$store_bytes" -le $((2 * 65536 + 8192))
spool_blocks=$(du -sk "$data/logs/spool" | cut -f1)
check "the spools stay small on disk (${spool_blocks} KiB for ~17 MB written)" test "$spool_blocks" -le 4096
e service delete chatty >/dev/null
check "deleting a service deletes its logs" test ! -e "$data/logs/store/default/chatty"

# Metrics: valid Prometheus text, requests counted per revision and status class.
e service create metered --image "$img" >/dev/null
for _ in $(seq 7); do curl -s -o /dev/null "http://metered.default.localhost:$port/"; done
for _ in $(seq 3); do curl -s -o /dev/null "http://metered.default.localhost:$port/missing"; done
curl -s -o /dev/null "http://talk.default.localhost:$port/"
curl -s --unix-socket "$sock" http://elafrosd/metrics >"$work/metrics.txt"
check "/metrics passes promtool check metrics" promtool check metrics <"$work/metrics.txt"
sel='namespace="default",service="metered",revision="metered-00001"'
check "2xx requests are counted per revision" grep -qx "elafros_requests_total{$sel,code=\"2xx\"} 7" "$work/metrics.txt"
check "4xx requests are counted apart" grep -qx "elafros_requests_total{$sel,code=\"4xx\"} 3" "$work/metrics.txt"
check "the latency histogram counts all 10" grep -qx "elafros_request_duration_seconds_count{$sel} 10" "$work/metrics.txt"
check "another revision's requests are not mixed in" grep -qx 'elafros_requests_total{namespace="default",service="talk",revision="talk-00002",code="2xx"} 1' "$work/metrics.txt"
for m in elafros_requests_in_flight elafros_activator_queue_depth elafros_instances_desired \
  elafros_instances_ready elafros_autoscaler_panic elafros_cold_start_duration_seconds_bucket \
  elafros_container_restarts_total elafros_instance_cpu_seconds_total \
  elafros_instance_memory_bytes process_cpu_seconds_total process_resident_memory_bytes; do
  check "/metrics has $m" grep -q "^$m{\?" "$work/metrics.txt"
done
mport=$(sed -n 's|.*serving GET /metrics on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$work/daemon.log" | tail -1)
check "--metrics-listen serves the same over TCP" \
  grep -q "elafros_requests_total{$sel" <<<"$(curl -s "http://127.0.0.1:$mport/metrics")"
check "...and nothing else: another path is 404 even to the admin token" test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$data/tokens/admin.token")" "http://127.0.0.1:$mport/api/v1/status")" = 404
check "...and 403 to an anonymous scraper, which may read /metrics only" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/api/v1/status")" = 403
out=$(e service describe metered)
check "describe shows live traffic per revision (4xx are not errors)" \
  grep -qE "Traffic: +[0-9.]+ req/s over the last [0-9.]+ s, p50 [0-9.]+ ms, p99 [0-9.]+ ms, 0.0% errors" <<<"$out"
check "describe shows cold starts" contains "$out" "Cold starts: 0 in that window"
e service delete metered >/dev/null
check "a deleted revision's series go away" bash -c "! curl -s --unix-socket '$sock' http://elafrosd/metrics | grep -q metered"

# Request logs: JSON lines with the revision, the instance and the activator flag.
check "the access log has a line per request" until_ok 3 bash -c "test \$(grep -c '\"service\":\"metered\"' '$work/access.log') -eq 10"
check "...with status, bytes, duration, revision and instance" grep -qE '"method":"GET","host":"metered.default.localhost:[0-9]+","path":"/missing","status":404,"bytes":[0-9]+,"namespace":"default","service":"metered","revision":"metered-00001","instance":"metered-00001-[0-9a-f]{6}","activator":false,"durationMs":[0-9]+\.[0-9]{3}}' "$work/access.log"

# A follow ends, successfully, when its service is deleted.
e logs talk -f >"$work/follow2.out" 2>&1 &
follower=$!
sleep 0.5
e service delete talk >/dev/null
ended=""
for _ in $(seq 50); do kill -0 "$follower" 2>/dev/null || { ended=yes; break; }; sleep 0.1; done
rc=0; wait "$follower" || rc=$?
follower=""
check "logs -f ends with status 0 when its service is deleted" test -n "$ended" -a "$rc" = 0
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
