#!/usr/bin/env bash
# The data plane's other protocols through the proxy, against independent clients and servers:
# WebSocket (python3-websockets on both ends) echoes 1,000 messages, also to a service that
# was at zero; an idle upgraded connection is cut at its revision's timeoutSeconds; an upgrade
# the app declines is an ordinary answer on a connection that stays usable.
#   tests/e2e/protocols_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
py=(/usr/bin/python3 "$src/tests/e2e/ws_client.py")

"$src/tests/e2e/apps/build-pyapp.sh" "$work/ws" "$src/tests/e2e/apps/wsecho.py" websockets
"$src/examples/hello/build-image.sh" "$work/hello" latest >/dev/null
cat >"$work/config.yaml" <<YAML
scale-to-zero-grace-period-seconds: 2
YAML
daemon_args=(--config "$work/config.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
json_field() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))" "$1" "$2"; }
instances() { runc --root "$data/runc" list -q 2>/dev/null | grep -c "^$1-" || true; }

service_yaml() {  # NAME IMAGE TIMEOUT
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
      containers:
        - image: $2
YAML
}
service_yaml ws "oci:$work/ws:latest" 300 >"$work/ws.yaml"
service_yaml wsidle "oci:$work/ws:latest" 2 >"$work/wsidle.yaml"
e apply -f "$work/ws.yaml" >/dev/null
e apply -f "$work/wsidle.yaml" >/dev/null

# WebSocket: 1,000 messages, text and binary up to 64 KiB, each checked
out=$("${py[@]}" echo "127.0.0.1:$port" ws.default.localhost 1000)
echo "     1,000 WebSocket round trips through the proxy: $out"
check "a WebSocket client echoes 1,000 messages through the proxy" \
  test "$(json_field "$out" sent)/$(json_field "$out" bad)" = "1000/0"
check "the upgraded connection counts as one request answered 101 (/metrics)" \
  grep -qE '^elafros_requests_total\{[^}]*revision="ws-00001"[^}]*code="1xx"\} 1$' \
  <<<"$(curl -s --unix-socket "$sock" http://elafrosd/metrics)"

# The same at zero: the activator holds the upgrade until an instance is ready
zero=""
for _ in $(seq 200); do [ "$(instances ws)" = 0 ] && { zero=yes; break; }; sleep 0.1; done
check "the WebSocket service scaled to zero" test -n "$zero"
out=$("${py[@]}" echo "127.0.0.1:$port" ws.default.localhost 1000)
check "the first connection to a service at zero upgrades and echoes 1,000 messages ($out)" \
  test "$(json_field "$out" sent)/$(json_field "$out" bad)" = "1000/0"

# Idle: nothing moves for timeoutSeconds (2 s), and the proxy closes both sides
out=$("${py[@]}" idle "127.0.0.1:$port" wsidle.default.localhost 10)
secs=$(json_field "$out" closed_after_s)
check "an idle upgraded connection is closed at its revision's timeoutSeconds (after $secs s)" \
  /usr/bin/python3 -c "import sys; s=sys.argv[1]; sys.exit(0 if s != 'None' and 1.5 <= float(s) <= 5 else 1)" "$secs"

# An app that declines the upgrade (busybox httpd): its answer comes back on a connection that
# stays open for the next request
e service create hello --image "oci:$work/hello:latest" >/dev/null
codes=$(curl -s -o /dev/null -w '%{http_code} %{num_connects}\n' -H "Host: hello.default.localhost" \
  -H "Connection: Upgrade" -H "Upgrade: websocket" "http://127.0.0.1:$port/" \
  -o /dev/null -H "Host: hello.default.localhost" "http://127.0.0.1:$port/" | tr '\n' ' ')
check "a declined upgrade is an ordinary answer, and the connection serves the next request ($codes)" \
  test "$codes" = "200 1 200 0 "

for s in ws wsidle hello; do e service delete "$s" >/dev/null; done
check "no containers remain" test -z "$(runc --root "$data/runc" list -q)"
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
