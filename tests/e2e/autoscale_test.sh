#!/usr/bin/env bash
# End-to-end autoscaling with real containers: a burst scales out with no failed request, idle
# revisions go to zero, the next request is served through the activator, the breaker
# serialises requests, and min-scale holds. Short windows keep it quick: a 6 s stable window
# (the minimum) and a 2 s scale-to-zero grace period from the daemon config.
#   tests/e2e/autoscale_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
cat >"$work/config.yaml" <<YAML
scale-to-zero-grace-period-seconds: 2
activator-queue-size: 3
YAML
daemon_args=(--config "$work/config.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
curl_host() { curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -H "Host: $1.default.localhost" "http://127.0.0.1:$port$2"; }

# A burst of slow requests scales out, and none fails
e service create burst --image "oci:$work/image:latest" --scale-target 1 --scale-max 5 --scale-window 6s >/dev/null
check "a new revision starts at its initial scale (1)" test "$(instances burst)" = 1
pids=()
for _ in $(seq 10); do curl_host burst "/cgi-bin/sleep?3" >>"$work/burst.codes" & pids+=($!); done
most=0
for _ in $(seq 60); do
  n=$(instances burst); [ "$n" -gt "$most" ] && most=$n
  sleep 0.1
done
wait "${pids[@]}"  # (a bare wait would wait for elafrosd too)
echo "     burst of 10 × 3 s requests at target 1: scaled to $most instances"
check "the burst scaled the revision out to several instances (≥ 3, max-scale 5)" test "$most" -ge 3 -a "$most" -le 5
check "no request of the burst failed" test "$(sort "$work/burst.codes" | uniq -c | tr -s ' ')" = " 10 200"
check "describe shows the instances" contains "$(e service describe burst)" "Instances: "

# Idle, it goes to zero: stable window (6 s) + grace (2 s), decided on a 2 s tick
zero=""
for _ in $(seq 200); do
  [ "$(instances burst)" = 0 ] && { zero=yes; break; }
  sleep 0.1
done
check "an idle revision scales to zero" test -n "$zero"
check "its status says 0 desired" contains "$(e revision describe burst-00001)" "Instances:    0 ready of 0 desired"

# The next request is served: the activator holds it while an instance starts
start=$(date +%s%N)
code=$(curl_host burst /)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "     request at zero answered in $ms ms (cold start through the activator)"
check "the next request at zero is served" test "$code" = 200
n_after=$(instances burst)
# (one request in flight at target 1 × 70% utilisation wants ceil(1 / 0.7) = 2 instances)
check "... by new instances (found $n_after)" test "$n_after" -ge 1 -a "$n_after" -le 2
metrics=$(curl -s --unix-socket "$sock" http://elafrosd/metrics)
check "/metrics counts the cold start" \
  grep -q '^elafros_cold_starts_total{namespace="default",service="burst",revision="burst-00001"} 1$' <<<"$metrics"
check "...and its latency" \
  grep -q '^elafros_cold_start_duration_seconds_count{namespace="default",service="burst",revision="burst-00001"} 1$' <<<"$metrics"
check "describe shows the cold start and its latency" grep -qE "Cold starts: 1 in that window, p50 [0-9.]+ ms" <<<"$(e service describe burst)"

# The breaker: --concurrency-limit 1 --scale-max 1 serialises concurrent requests
e service create serial --image "oci:$work/image:latest" --concurrency-limit 1 --scale-max 1 >/dev/null
start=$(date +%s%N)
pids=()
for _ in $(seq 4); do
  { curl -s --max-time 60 -H "Host: serial.default.localhost" "http://127.0.0.1:$port/cgi-bin/sleep?0.5" ||
      echo "curl failed with exit code $? after $(( ($(date +%s%N) - start) / 1000000 )) ms"; } >>"$work/serial.out" &
  pids+=($!)
done
wait "${pids[@]}"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "     4 concurrent 0.5 s requests with concurrency limit 1: $ms ms"
others=$(grep -v '^slept 0.5' "$work/serial.out" | tr '\n' ' ' || true)
check "every serialised request succeeded${others:+ (not: $others)}" test "$(grep -c 'slept 0.5' "$work/serial.out")" = 4
check "no two requests ran at once in the instance" test -z "$(grep 'overlap=yes' "$work/serial.out" || true)"
check "they ran one after another (≥ 2 s for 4 × 0.5 s)" test "$ms" -ge 2000
check "max-scale 1 kept one instance" test "$(instances serial)" = 1

# min-scale keeps instances through idleness, spelled as the CLI writes it and as Knative's
# samples do (the camelCase alias); activation-scale sets the least scale of a start from zero.
e service create floor --image "oci:$work/image:latest" --scale-min 2 --scale-window 6s >/dev/null
knative_yaml() {  # NAME ANNOTATION VALUE
  cat <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: $1
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/$2: "$3"
        autoscaling.knative.dev/window: 6s
    spec:
      containers:
        - image: oci:$work/image:latest
YAML
}
knative_yaml camel minScale 2 | e apply -f - >/dev/null
knative_yaml activation activation-scale 3 | e apply -f - >/dev/null
has() { test "$(instances "$2")" = "$1"; }  # has N SERVICE
check "min-scale 2 and minScale: \"2\" each start 2 instances" wait_until 10 eval 'has 2 floor && has 2 camel'
# activation was created last, with the same window and grace: once it is at zero, floor and
# camel have been idle past their window and grace too.
check "activation-scale 3 still scales to zero when idle" wait_until 20 has 0 activation
check "min-scale 2 keeps 2 instances past the window and grace" has 2 floor
check "minScale: \"2\" (Knative's alias) keeps 2 instances past the window and grace" has 2 camel
check "a request at zero is served" test "$(curl_host activation /)" = 200
check "activation-scale 3: one request at zero starts 3 instances" wait_until 10 has 3 activation

# The activator's deadline and bound: an instance that takes 4 s to listen, a 2 s timeoutSeconds
cat >"$work/slow.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: slow
spec:
  template:
    spec:
      timeoutSeconds: 2
      containers:
        - image: oci:$work/image:latest
          command: ["/bin/sh", "-c", "sleep 4; exec /bin/hello"]
YAML
e apply -f "$work/slow.yaml" --no-wait >/dev/null
pids=()
for i in 1 2 3 4; do
  curl -s -w '\n%{http_code}\n' --max-time 30 -H "Host: slow.default.localhost" "http://127.0.0.1:$port/" >"$work/slow-out.$i" &
  pids+=($!)
  sleep 0.2
done
wait "${pids[@]}"
codes=$(tail -qn1 "$work"/slow-out.* | sort | tr '\n' ' ')
check "requests waiting past timeoutSeconds get 504, one past the queue bound gets 503 (got $codes)" test "$codes" = "503 504 504 504 "
check "the 504 says why" grep -qF 'could take the request within 2 s' "$work/slow-out.1"
check "the 503 says the queue is full" grep -qF 'too many requests are waiting for revision "slow-00001"' "$work/slow-out.4"

for s in burst serial floor camel activation slow; do e service delete "$s" >/dev/null; done
check "no containers remain" test -z "$(runc --root "$data/runc" list -q)"
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
