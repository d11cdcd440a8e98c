#!/usr/bin/env bash
# The rest of the pod spec Knative takes, end to end on runc: liveness probes (HTTP and exec)
# restart an instance that fails them, with the reason in describe; a startup probe holds
# readiness back; an exec readiness probe runs in the instance.
#   tests/e2e/spec_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
"$src/examples/hello/build-image.sh" "$work/hello" latest >/dev/null
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
e image import "oci:$work/hello:latest" --name hello-img >/dev/null
get() { curl -sS --max-time 10 "http://$1.default.localhost:$port$2"; }
instance_of() { runc --root "$data/runc" list -q 2>/dev/null | grep "^$1-" || true; }

# --- probes --------------------------------------------------------------------------------

# An HTTP liveness probe, through kn's flags: failing twice a second apart restarts the instance
e service create live --image hello-img --scale-min 1 \
  --probe-liveness http:::/cgi-bin/health --probe-liveness-opts PeriodSeconds=1,FailureThreshold=2 \
  --probe-readiness exec:cat,/tmp/www/index.html >/dev/null
check "an exec readiness probe lets the instance serve" contains "$(get live /)" "Hello from live"
first=$(instance_of live)
check "the liveness probe passes while the app is healthy" test "$(get live /cgi-bin/health)" = ok
curl -sS -X POST "http://live.default.localhost:$port/cgi-bin/health?fail" >/dev/null
replaced() { local now; now=$(instance_of live); [ -n "$now" ] && [ "$now" != "$first" ]; }
check "an instance failing its liveness probe is replaced" wait_until 20 replaced
check "...and the new one is healthy and serves" wait_until 10 test "$(get live /cgi-bin/health 2>/dev/null)" = ok
out=$(e service describe live)
check "describe shows the restart and its reason" \
  grep -qE "Restarts: +1, the last .* ago: LivenessProbeFailed: the liveness probe \(GET /cgi-bin/health on port 8080\) failed 2 times in a row, 1 s apart \(failureThreshold 2\): it answered 503 Service Unavailable" <<<"$out"
rev=$(e revision describe live-00001 -o json)
check "the revision's containerStatuses carry lastState.terminated, as Kubernetes' do" \
  contains "$(tr -d ' \n' <<<"$rev")" '"lastState":{"terminated":{"reason":"LivenessProbeFailed"'

# An exec liveness probe and a startup probe, from YAML
cat >"$work/execlive.yaml" <<'YAML'
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: execlive
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
    spec:
      containers:
        - image: hello-img
          startupProbe:
            httpGet: {path: /index.html}
            periodSeconds: 1
            failureThreshold: 30
          livenessProbe:
            exec:
              command: [test, '!', -e, /tmp/unhealthy]
            periodSeconds: 1
            failureThreshold: 1
YAML
e apply -f "$work/execlive.yaml" >/dev/null
check "a service with a startup probe becomes Ready" wait_until 20 contains "$(e service list)" "execlive"
check "...and serves" wait_until 10 contains "$(get execlive / 2>/dev/null)" "Hello from execlive"
first=$(instance_of execlive)
curl -sS -X POST "http://execlive.default.localhost:$port/cgi-bin/health?fail" >/dev/null
replaced() { local now; now=$(instance_of execlive); [ -n "$now" ] && [ "$now" != "$first" ]; }
check "an instance failing an exec liveness probe is replaced" wait_until 20 replaced
check "describe names the command and its exit code" wait_until 5 \
  grep -qF "LivenessProbeFailed: the liveness probe (exec 'test ! -e /tmp/unhealthy') failed once (failureThreshold 1): it exited with code 1" \
  <<<"$(e service describe execlive)"

# Bad probes are refused naming the field, and nothing is written
sed 's/failureThreshold: 1$/successThreshold: 2/' "$work/execlive.yaml" >"$work/bad.yaml"
if out=$(e apply -f "$work/bad.yaml" 2>&1); then fail "a liveness probe with successThreshold 2 is refused"; else
  check "a liveness probe with successThreshold 2 is refused naming the field" \
    contains "$out" "livenessProbe.successThreshold: must be 1"; fi
check "...and nothing was written" test "$(e revision list -s execlive | grep -c execlive-)" = 1

e service delete live >/dev/null; e service delete execlive >/dev/null
check "the services' instances are gone" wait_until 20 test "$(instances live)$(instances execlive)" = 00
finish
