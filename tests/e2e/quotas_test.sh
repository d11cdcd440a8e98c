#!/usr/bin/env bash
# End-to-end for ResourceQuota and LimitRange, against a real elafrosd and runc: a create past a
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
instances() { runc --root "$data/runc" list -q 2>/dev/null | grep -c "^burst-" || true; }
pids=()
for _ in $(seq 8); do curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -H "Host: burst.team.localhost" "http://127.0.0.1:$port/cgi-bin/sleep?3" >>"$work/codes" & pids+=($!); done
most=0
for _ in $(seq 50); do n=$(instances); [ "$n" -gt "$most" ] && most=$n; sleep 0.1; done
resources() { curl -s --unix-socket "$sock" http://x/apis/serving.knative.dev/v1/namespaces/team/revisions/burst-00001 | python3 -c '
import json, sys
c = [c for c in json.load(sys.stdin)["status"]["conditions"] if c["type"] == "ResourcesAvailable"][0]
print(c["status"], c.get("reason", ""), c.get("message", ""))'; }
said=$(resources)
wait "${pids[@]}"
echo "     burst of 8 × 3 s at target 1 under an instances quota of 2: scaled to $most"
check "the burst scaled to the quota and not beyond" test "$most" = 2
check "ResourcesAvailable says the quota limits it" grep -qE "^False QuotaExceeded wanted [3-9], quota allows 2 \(instances 2 \(team-quota\)\)" <<<"$said"
check "every request of the burst was served" test "$(sort "$work/codes" | uniq -c | tr -s ' ')" = " 8 200"
check "status.used shows the live instances' limits" contains "$(used limits.memory)" "Mi"

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
finish
