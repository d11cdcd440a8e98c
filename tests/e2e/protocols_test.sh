#!/usr/bin/env bash
# The data plane's other protocols through the proxy, against independent clients and servers:
# WebSocket (python3-websockets on both ends) echoes 1,000 messages, also to a service that
# was at zero; an upgraded connection is cut at idleTimeoutSeconds without a byte and at
# timeoutSeconds in any case, as in Knative; an upgrade the app declines is an ordinary answer
# on a connection that stays usable. Server-sent events stream as they are written, past
# idleTimeoutSeconds while events flow, count as in flight, and a gap or a late start is cut.
#   tests/e2e/protocols_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
py=(/usr/bin/python3 "$src/tests/e2e/stream_client.py")

"$src/tests/e2e/apps/build-pyapp.sh" "$work/ws" "$src/tests/e2e/apps/wsecho.py" websockets
"$src/examples/hello/build-image.sh" "$work/hello" latest >/dev/null
cat >"$work/config.yaml" <<YAML
scale-to-zero-grace-period-seconds: 2
access-log: $work/access.log
YAML
daemon_args=(--config "$work/config.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
json_field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))" "$1" "$2"; }

service_yaml() {  # NAME IMAGE TIMEOUT [IDLE [START [COMMAND]]]
  cat <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: $1
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/window: 6s
    spec:
      timeoutSeconds: $3
      ${4:+idleTimeoutSeconds: $4}
      ${5:+responseStartTimeoutSeconds: $5}
      containers:
        - image: $2
          ${6:+command: $6}
YAML
}
service_yaml ws "oci:$work/ws:latest" 300 >"$work/ws.yaml"
service_yaml wsidle "oci:$work/ws:latest" 300 2 >"$work/wsidle.yaml"
service_yaml wsshort "oci:$work/ws:latest" 3 >"$work/wsshort.yaml"
service_yaml sse "oci:$work/ws:latest" 30 2 2 '[python3, /app/sse.py]' >"$work/sse.yaml"
for s in ws wsidle wsshort sse; do e apply -f "$work/$s.yaml" >/dev/null; done

# WebSocket: 1,000 messages, text and binary up to 64 KiB, each checked
out=$("${py[@]}" echo "127.0.0.1:$port" ws.default.localhost 1000)
echo "     1,000 WebSocket round trips through the proxy: $out"
check "a WebSocket client echoes 1,000 messages through the proxy" \
  test "$(json_field "$out" sent)/$(json_field "$out" bad)" = "1000/0"
check "the upgraded connection counts as one request answered 101 (/metrics)" \
  grep -qE '^elafros_requests_total\{[^}]*revision="ws-00001"[^}]*code="1xx"\} 1$' \
  <<<"$(curl -s --unix-socket "$sock" http://elafrosd/metrics)"

# The same at zero: the activator holds the upgrade until an instance is ready
at_zero() { test "$(instances "$1")" = 0; }
check "the WebSocket service scaled to zero" wait_until 20 at_zero ws
out=$("${py[@]}" echo "127.0.0.1:$port" ws.default.localhost 1000)
check "the first connection to a service at zero upgrades and echoes 1,000 messages ($out)" \
  test "$(json_field "$out" sent)/$(json_field "$out" bad)" = "1000/0"

# Bounds, as Knative's: nothing moves for idleTimeoutSeconds (2 s); timeoutSeconds (3 s) even
# while messages flow
between() { /usr/bin/python3 -c "import sys; s=sys.argv[1]; sys.exit(0 if s != 'None' and $1 <= float(s) <= $2 else 1)" "$3"; }
secs=$(json_field "$("${py[@]}" idle "127.0.0.1:$port" wsidle.default.localhost 10)" closed_after_s)
check "an idle upgraded connection is closed at idleTimeoutSeconds, 2 s (after $secs s)" between 1.5 4 "$secs"
secs=$(json_field "$("${py[@]}" chatter "127.0.0.1:$port" wsshort.default.localhost 10)" closed_after_s)
check "a busy upgraded connection is closed at timeoutSeconds, 3 s (after $secs s)" between 2.5 5 "$secs"

# Server-sent events: 12 events 0.5 s apart (6 s, past the 2 s idleTimeoutSeconds) arrive as
# they are written, and the stream counts as a request in flight while it lasts
"${py[@]}" sse "127.0.0.1:$port" sse.default.localhost "/events?n=12&gap=0.5" >"$work/sse.out" &
sse_pid=$!
inflight=""
for _ in $(seq 50); do
  grep -qE '^elafros_requests_in_flight\{[^}]*revision="sse-00001"[^}]*\} 1$' \
    <<<"$(curl -s --unix-socket "$sock" http://elafrosd/metrics)" && { inflight=yes; break; }
  sleep 0.1
done
wait "$sse_pid"
out=$(cat "$work/sse.out")
echo "     server-sent events (arrival times, s): $out"
if ! grep -q '"complete": true' <<<"$out"; then
  echo "the app's log:"; e logs sse --timestamps | tail -20
  echo "instances:"; e instance list
  echo "connections tracked for the bridge's subnet:"; grep -F "${net_subnet%.0/24}." /proc/net/nf_conntrack | head -20 || true
  wait_until 2 grep -q sse.default.localhost "$work/access.log" || true; tail -3 "$work/access.log"
fi
check "the stream counts as one request in flight while it lasts" test -n "$inflight"
check "all 12 events arrive and the stream ends properly" \
  test "$(json_field "$out" complete)/$(/usr/bin/python3 -c "import json,sys; print(len(json.loads(sys.argv[1])['events']))" "$out")" = "True/12"
check "each event arrives as it is written (the first within 1 s, the last after 5 s)" \
  /usr/bin/python3 -c "import json,sys; e=json.loads(sys.argv[1])['events']; sys.exit(0 if e[0] < 1 and e[-1] >= 5 else 1)" "$out"
out=$("${py[@]}" sse "127.0.0.1:$port" sse.default.localhost "/events?n=3&gap=4")
check "a stream that pauses past idleTimeoutSeconds is cut after its first event ($out)" \
  /usr/bin/python3 -c "import json,sys; o=json.loads(sys.argv[1]); sys.exit(0 if len(o['events']) == 1 and not o['complete'] and 1.5 <= o.get('head_s', 0) + 2 else 1)" "$out"
out=$("${py[@]}" sse "127.0.0.1:$port" sse.default.localhost "/events?wait=4")
check "an answer that has not started within responseStartTimeoutSeconds gets 504 saying so ($out)" \
  /usr/bin/python3 -c "import json,sys; o=json.loads(sys.argv[1]); sys.exit(0 if o['status'] == 504 and 'responseStartTimeoutSeconds' in o.get('body', '') and o['head_s'] < 3.5 else 1)" "$out"

# An app that declines the upgrade (busybox httpd): its answer comes back on a connection that
# stays open for the next request
e service create hello --image "oci:$work/hello:latest" >/dev/null
codes=$(curl -s -o /dev/null -w '%{http_code} %{num_connects}\n' -H "Host: hello.default.localhost" \
  -H "Connection: Upgrade" -H "Upgrade: websocket" "http://127.0.0.1:$port/" \
  -o /dev/null -H "Host: hello.default.localhost" "http://127.0.0.1:$port/" | tr '\n' ' ')
check "a declined upgrade is an ordinary answer, and the connection serves the next request ($codes)" \
  test "$codes" = "200 1 200 0 "

for s in ws wsidle wsshort sse hello; do e service delete "$s" >/dev/null; done
check "no containers remain" test -z "$(runc --root "$data/runc" list -q)"
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
