#!/usr/bin/env bash
# End-to-end for ResourceQuota, LimitRange and usage accounting, against a real elafrosd and runc:
# a create past a
# count quota is refused in Kubernetes' words; min-scale × limits counts at create; a compute
# quota needs limits, which a LimitRange fills in and bounds; status.used follows; a burst past
# the instances quota scales to the quota and no further, and ResourcesAvailable says why;
# kubectl manages quotas; a bad quantity is refused naming the field.
#   tests/e2e/quotas_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
daemon_args=(--api-listen 127.0.0.1:0)
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
e namespace create team >/dev/null
e apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ResourceQuota
metadata: {name: team-quota, namespace: team}
spec:
  hard: {count/services.serving.knative.dev: "2", instances: "2", limits.memory: 256Mi}
---
apiVersion: v1
kind: LimitRange
metadata: {name: container-limits, namespace: team}
spec:
  limits: [{type: Container, default: {memory: 64Mi}, max: {memory: 128Mi}}]
YAML
img="oci:$work/image:latest"
out=$(e service create big -n team --image "$img" --limit memory=256Mi 2>&1 || true)
check "a LimitRange's max refuses a larger limit" contains "$out" "maximum memory usage per Container is 128Mi, but limit is 256Mi"
out=$(e service create floor -n team --image "$img" --scale-min 3 2>&1 || true)
check "min-scale × limits counts at create, in Kubernetes' words" contains "$out" "exceeded quota: team-quota, requested: instances=3, used: instances=0, limited: instances=2"
out=$(e service create floor -n team --image "$img" --annotation-revision autoscaling.knative.dev/minScale=3 2>&1 || true)
check "...spelled as Knative's minScale alias too" contains "$out" "exceeded quota: team-quota, requested: instances=3, used: instances=0, limited: instances=2"
e service create burst -n team --image "$img" --scale-target 1 --scale-max 5 --scale-window 6s >/dev/null
check "a LimitRange's default fills in the container's limit" test "$(e service describe burst -n team -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])')" = 64Mi
e service create other -n team --image "$img" --no-wait >/dev/null
out=$(e service create third -n team --image "$img" 2>&1 || true)
check "a create past a count quota is refused" contains "$out" "exceeded quota: team-quota, requested: count/services.serving.knative.dev=1, used: count/services.serving.knative.dev=2, limited: count/services.serving.knative.dev=2"
e service delete other -n team >/dev/null
used() { curl -s --unix-socket "$sock" http://x/api/v1/namespaces/team/resourcequotas/team-quota | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status", {}).get("used", {}).get(sys.argv[1], ""))' "$1"; }
one_service() { test "$(used count/services.serving.knative.dev)" = 1; }
check "status.used follows the namespace" wait_until 10 one_service

# A burst wants 5 instances (target 1); the quota allows 2.
burst_instances() { instances burst; }
pids=()
for _ in $(seq 8); do curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -H "Host: burst.team.localhost" "http://127.0.0.1:$port/cgi-bin/sleep?3" >>"$work/codes" & pids+=($!); done
# Watched for as long as the burst runs (bounded): the most instances it ever had, and what
# ResourcesAvailable said while the quota held it back.
resources() { curl -s --unix-socket "$sock" http://x/apis/serving.knative.dev/v1/namespaces/team/revisions/burst-00001 | python3 -c '
import json, sys
c = [c for c in json.load(sys.stdin)["status"]["conditions"] if c["type"] == "ResourcesAvailable"][0]
print(c["status"], c.get("reason", ""), c.get("message", ""))'; }
most=0 said=""
running() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
for _ in $(seq 300); do
  n=$(burst_instances); [ "$n" -gt "$most" ] && most=$n
  [ -z "$said" ] && [ "$most" -ge 2 ] && { r=$(resources); grep -q QuotaExceeded <<<"$r" && said=$r; }
  running || break
  sleep 0.1
done
wait "${pids[@]}"
echo "     burst of 8 × 3 s at target 1 under an instances quota of 2: scaled to $most"
check "the burst scaled to the quota and not beyond" test "$most" = 2
check "ResourcesAvailable says the quota limits it" grep -qE "^False QuotaExceeded wanted [3-9], quota allows 2 \(instances 2 \(team-quota\)\)" <<<"$said"
check "every request of the burst was served" test "$(sort "$work/codes" | uniq -c | tr -s ' ')" = " 8 200"
check "status.used shows the live instances' limits" contains "$(used limits.memory)" "Mi"
# The 8 requests of 3 s were all in flight together (2 instances, no concurrency cap): the
# revision was active about 3 s of the burst, however many requests it had.
active_seconds() { e usage -n team --by service -o json | python3 -c '
import json, sys
print(sum(i["active_seconds"] for i in json.load(sys.stdin)["items"] if i["service"] == "burst"))'; }
active() { python3 -c "import sys; sys.exit(0 if 3 <= $(active_seconds) <= 15 else 1)"; }
check "usage counts the seconds the burst had a request in flight (active seconds)" wait_until 25 active
echo "     the burst's active seconds: $(active_seconds)"

# Usage: a CPU burner limited to 0.5 CPU is accounted within 10%, allocation exactly.
e namespace create acct >/dev/null
created=$(date +%s%N)
e service create burner -n acct --image "$img" --limit cpu=500m,memory=64Mi \
  --cmd /bin/sh --arg -c --arg 'while :; do :; done & exec /bin/hello' >/dev/null
report() { e usage -n acct --by revision -o json | python3 -c '
import json, sys
items = [i for i in json.load(sys.stdin)["items"] if i["service"] == "burner"]
print(" ".join(str(round(sum(i[k] for i in items), 3)) for k in ("instance_seconds", "cpu_seconds_used", "vcpu_seconds_alloc")) if items else "0 0 0")'; }
sampled() { read -r inst _ _ <<<"$(report)"; python3 -c "import sys; sys.exit(0 if $inst >= 8 else 1)"; }
check "a live instance is sampled every 10 s" wait_until 25 sampled
prom_usage() { curl -s --unix-socket "$sock" http://x/metrics | python3 -c '
import re, sys
text = sys.stdin.read()
def v(name):
    m = re.search(r"^%s\{namespace=\"acct\",service=\"burner\",revision=\"burner-00001\"\} (\S+)$" % name, text, re.M)
    return float(m.group(1)) if m else None
inst = v("elafros_revision_instance_seconds_total")
cpu = v("elafros_revision_vcpu_seconds_allocated_total")
mem = v("elafros_revision_memory_gib_seconds_allocated_total")
assert inst and inst >= 8, inst
assert abs(cpu - 0.5 * inst) <= 0.01 * inst and abs(mem - inst / 16) <= 0.01 * inst, (inst, cpu, mem)
print("     /metrics: %.1f instance-seconds, %.2f vCPU-seconds and %.3f GiB-seconds allocated" % (inst, cpu, mem))'; }
check "/metrics counts usage too: instance-seconds, and vCPU- and GiB-seconds allocated" prom_usage
e service delete burner -n acct >/dev/null
wall=$(( ($(date +%s%N) - created) / 1000000 ))
read -r inst cpu alloc <<<"$(report)"
echo "     burner at 0.5 CPU: $inst instance-seconds ($wall ms of wall time), $cpu cpu-seconds used, $alloc vCPU-seconds allocated"
check "cpu-seconds used are 0.5 × its lifetime, within 10%" python3 -c "import sys; sys.exit(0 if abs($cpu - 0.5 * $inst) <= 0.05 * $inst else 1)"
check "vCPU-seconds allocated are its limit × its lifetime" python3 -c "import sys; sys.exit(0 if abs($alloc - 0.5 * $inst) <= 0.01 * $inst + 0.01 else 1)"
check "its lifetime agrees with the wall time (the final sample is taken at stop)" python3 -c "import sys; sys.exit(0 if abs($inst * 1000 - $wall) <= 1500 + 0.1 * $wall else 1)"
csv=$(e usage -n acct --by service -o csv)
check "usage -o csv has the fixed header (RFC 4180, CRLF)" test "$(head -1 <<<"$csv" | tr -d '\r')" = "window_start,window_end,namespace,service,revision,requests,errors_5xx,cold_starts,instance_seconds,active_seconds,cpu_seconds_used,vcpu_seconds_alloc,gib_seconds_used,gib_seconds_alloc,peak_memory_bytes,build_seconds,events_delivered"
check "...and a row per hour and service" python3 -c "
import csv, io, sys
rows = list(csv.DictReader(io.StringIO(sys.argv[1])))
sys.exit(0 if any(r['service'] == 'burner' and r['namespace'] == 'acct' and float(r['cpu_seconds_used']) > 0 for r in rows) else 1)" "$csv"

# kubectl manages quotas; a bad quantity is refused, naming the field.
e kubeconfig >"$work/kubeconfig"
k() { kubectl --kubeconfig "$work/kubeconfig" --request-timeout=30s "$@"; }
check "kubectl create quota (protobuf)" contains "$(k create quota small -n team --hard=instances=4,limits.cpu=2 2>&1)" "resourcequota/small created"
check "...with its hard limits" test "$(k get resourcequota small -n team -o jsonpath='{.spec.hard.instances} {.spec.hard.limits\.cpu}')" = "4 2"
check "kubectl get resourcequota lists it" contains "$(k get resourcequota -n team 2>&1)" "small"
check "kubectl delete resourcequota" contains "$(k delete resourcequota small -n team 2>&1)" "deleted"
out=$(e apply -f - 2>&1 <<YAML || true
apiVersion: v1
kind: ResourceQuota
metadata: {name: bad, namespace: team}
spec: {hard: {limits.memory: lots}}
YAML
)
check "a quota with a bad quantity is refused, naming the field" contains "$out" 'spec.hard.limits.memory: "lots" is not a quantity'

# The machine's cap: max-instances bounds every namespace together, and the condition says so.
for svc in $(e service list -n team -o json | python3 -c 'import json,sys; print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))'); do
  e service delete "$svc" -n team >/dev/null
done
none_left() { [ -z "$(runc --root "$data/runc" list -q 2>/dev/null)" ]; }
check "with the services deleted, no instance is left" wait_until 20 none_left
stop_daemon
printf 'max-instances: 1\nactivator-queue-size: 1\n' >"$work/capped.yml"
daemon_args=(--api-listen 127.0.0.1:0 --config "$work/capped.yml")
start_daemon
e namespace create capns >/dev/null
e service create capped -n capns --image "$img" --scale-min 3 --concurrency-limit 1 --no-wait >/dev/null
capped_said() { curl -s --unix-socket "$sock" http://x/apis/serving.knative.dev/v1/namespaces/capns/revisions/capped-00001 | python3 -c '
import json, sys
c = [c for c in json.load(sys.stdin)["status"]["conditions"] if c["type"] == "ResourcesAvailable"][0]
print(c["status"], c.get("reason", ""), c.get("message", ""))' 2>/dev/null | grep -qF "False QuotaExceeded wanted 3, quota allows 1 (the machine's max-instances 1)"; }
check "max-instances caps a revision, and ResourcesAvailable says so" wait_until 15 capped_said
capped_count() { instances capped; }
check "...it runs the one instance the cap leaves, not three" test "$(capped_count)" = 1
# Its one instance takes one request at a time (concurrency 1) and the activator holds one more:
# the next is refused at once, with what holds the revision back.
capped_ready() { curl -s -o /dev/null -w '%{http_code}' -H "Host: capped.capns.localhost" "http://127.0.0.1:$port/" | grep -q 200; }
check "...and it serves" wait_until 15 capped_ready
slow=()
for _ in 1 2; do curl -s -o /dev/null --max-time 30 -H "Host: capped.capns.localhost" "http://127.0.0.1:$port/cgi-bin/sleep?3" & slow+=($!); done
queued() { [ "$(curl -s --unix-socket "$sock" http://x/metrics | sed -n 's/^elafros_activator_queue_depth{namespace="capns",service="capped",revision="capped-00001"} //p')" = 1 ]; }
check "...two slow requests: one served, one waiting in the activator" wait_until 10 queued
full=$(curl -s -w ' %{http_code}' -H "Host: capped.capns.localhost" "http://127.0.0.1:$port/")
echo "     past the queue: $full"
check "a request past the activator's queue gets 503" test "${full##* }" = 503
check "...naming the limit that holds the revision back" contains "$full" "and it cannot scale further: wanted 3, quota allows 1 (the machine's max-instances 1); retry shortly"
wait "${slow[@]}"
e service delete capped -n capns >/dev/null

finish
