#!/usr/bin/env bash
# End-to-end for the Kubernetes-style API: kubectl and python3-kubernetes (independent clients)
# against a real elafrosd over HTTPS with its generated CA and a Bearer token.
#   tests/e2e/kubectl_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" v1 >/dev/null
# A small watch cache, so that a watch from an old version is answered 410 within this test.
printf 'watch-cache-size: 16\n' >"$work/daemon.yml"
daemon_args=(--api-listen 127.0.0.1:0 --config "$work/daemon.yml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')

e kubeconfig >"$work/kubeconfig"
api=$(sed -n 's/^ *server: *//p' "$work/kubeconfig" | tr -d '"')
check "elafros kubeconfig names the HTTPS server" contains "$api" "https://127.0.0.1:"
k() { kubectl --kubeconfig "$work/kubeconfig" --request-timeout=60s "$@"; }
sed -n 's/^ *certificate-authority-data: *//p' "$work/kubeconfig" | tr -d '"' | base64 -d >"$work/ca.crt"
token=$(cat "$data/tokens/admin.token")
check "the admin token file is 0600" test "$(stat -c %a "$data/tokens/admin.token")" = 600
check "the token is stored only as an HMAC" bash -c "! grep -rqF '$token' '$data/tokens/tokens.json' '$data/elafros.db' '$work/daemon.log'"

# The HTTPS API speaks HTTP/2 by ALPN (kubectl and browsers take it), HTTP/1.1 to whoever asks.
h2=$(curl -sS --http2 --cacert "$work/ca.crt" -H "Authorization: Bearer $token" -o "$work/h2.json" -w '%{http_version}' "$api/version")
check "the HTTPS API answers over HTTP/2 (h2 by ALPN)" test "$h2" = 2 -a -s "$work/h2.json"
h1=$(curl -sS --http1.1 --cacert "$work/ca.crt" -H "Authorization: Bearer $token" -o /dev/null -w '%{http_version}' "$api/version")
check "...and over HTTP/1.1 to a client that offers only that" test "$h1" = 1.1
code=$(curl -sS --http2 --cacert "$work/ca.crt" -o "$work/h2.json" -w '%{http_code}' "$api/apis")
check "...where a request without a token is refused 401 as well" test "$code" = 401
big=$(head -c 5000000 /dev/zero | tr '\0' x)
code=$(printf '{"a":"%s"}' "$big" | curl -sS --http2 --cacert "$work/ca.crt" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' --data-binary @- -o "$work/h2.json" -w '%{http_code}' \
  "$api/apis/serving.knative.dev/v1/namespaces/default/services" || true)
check "...and a body over the limit is refused 413 over HTTP/2, saying so ($code)" \
  bash -c "test '$code' = 413 && grep -q 'over the limit' '$work/h2.json'"

cat >"$work/hello.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containers:
        - image: oci:$work/image:v1
          env:
            - name: GREETING
              value: Howdy
YAML
printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kns\n' >"$work/ns.yaml"
check "kubectl apply of a Namespace creates it" contains "$(k apply -f "$work/ns.yaml" 2>&1)" "namespace/kns created"
check "kubectl create namespace (a protobuf body) creates it" contains "$(k create namespace kns2 2>&1)" "namespace/kns2 created"
check "kubectl create secret generic (protobuf)" contains "$(k create secret generic s1 --from-literal=pw=kubectl-MARK 2>&1)" "secret/s1 created"
check "kubectl create configmap (protobuf)" contains "$(k create configmap c1 --from-literal=a=b 2>&1)" "configmap/c1 created"
check "kubectl get secret shows its type" grep -qE "^s1 +Opaque " <<<"$(k get secret s1 2>&1)"
check "...and its value, base64" test "$(k get secret s1 -o jsonpath='{.data.pw}' | base64 -d)" = kubectl-MARK
check "kubectl get configmap" test "$(k get configmap c1 -o jsonpath='{.data.a}')" = b
check "kubectl get ns shows it Active" grep -qE "^kns +Active" <<<"$(k get ns 2>&1)"
printf 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: kdata\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 3Gi\n' >"$work/pvc.yaml"
check "kubectl apply of a PersistentVolumeClaim creates it" contains "$(k apply -f "$work/pvc.yaml" 2>&1)" "persistentvolumeclaim/kdata created"
check "kubectl get pvc shows it Bound with its capacity" grep -qE "^kdata +Bound +3Gi +\[?\"?ReadWriteOnce" <<<"$(k get pvc 2>&1)"
check "kubectl delete pvc deletes it" contains "$(k delete pvc kdata 2>&1)" 'persistentvolumeclaim "kdata" deleted'
check "kubectl delete namespace deletes it" contains "$(k delete namespace kns 2>&1)" 'namespace "kns" deleted'
out=$(k apply -f "$work/hello.yaml" 2>&1)
check "kubectl apply creates the service" contains "$out" "service.serving.knative.dev/hello created"
k wait ksvc/hello --for=condition=Ready --timeout=60s >/dev/null
check "kubectl wait sees it Ready, and it serves" test "$(curl -sS "http://hello.default.localhost:$port/")" = "Howdy from hello (revision hello-00001)"
printf 'apiVersion: serving.knative.dev/v1beta1\nkind: DomainMapping\nmetadata:\n  name: hello.example.test\nspec:\n  ref:\n    apiVersion: serving.knative.dev/v1\n    kind: Service\n    name: hello\n' >"$work/dm.yaml"
check "kubectl apply of a DomainMapping creates it" contains "$(k apply -f "$work/dm.yaml" 2>&1)" "domainmapping.serving.knative.dev/hello.example.test created"
check "kubectl wait sees the DomainMapping Ready" contains "$(k wait --for=condition=Ready domainmapping/hello.example.test --timeout=30s 2>&1)" "condition met"
check "...and the domain serves the service" test "$(curl -sS --resolve "hello.example.test:$port:127.0.0.1" "http://hello.example.test:$port/")" = "Howdy from hello (revision hello-00001)"
out=$(k apply -f "$work/hello.yaml" 2>&1)
check "applying it again says unchanged" contains "$out" "service.serving.knative.dev/hello unchanged"

out=$(k get ksvc)
check "kubectl get ksvc shows Knative's columns" test "$(head -1 <<<"$out" | tr -s ' ')" = "NAME URL LATESTCREATED LATESTREADY READY REASON"
check "...with the service's row" contains "$(sed -n 2p <<<"$out" | tr -s ' ')" "hello http://hello.default.localhost:$port hello-00001 hello-00001 True"
out=$(k get ksvc hello -o yaml)
check "kubectl get ksvc NAME -o yaml" contains "$out" "kind: Service"
check "...with a resourceVersion" grep -q "resourceVersion: \"[0-9]*\"" <<<"$out"
check "kubectl get revisions" contains "$(k get revisions)" "hello-00001"
check "kubectl get rev by short name, with the label selector" contains "$(k get rev -l serving.knative.dev/service=hello -o name)" "revision.serving.knative.dev/hello-00001"

# A watch streams the change a patch makes.
k get ksvc -w --output-watch-events >"$work/watch.out" 2>&1 &
watcher=$!
wait_until 10 grep -q hello "$work/watch.out" || true
out=$(k patch ksvc hello --type merge -p '{"spec":{"template":{"spec":{"containers":[{"image":"oci:'"$work"'/image:v1","env":[{"name":"GREETING","value":"Patched"}]}]}}}}' 2>&1)
check "kubectl patch --type merge" contains "$out" "service.serving.knative.dev/hello patched"
ready_event() { grep -qE "MODIFIED +hello +http\S+ +hello-00002 +hello-00002 +True" "$work/watch.out"; }
wait_until 20 ready_event || true
kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null || true
check "kubectl get ksvc -w streams the change, naming the new revision" grep -q "MODIFIED *hello .*hello-00002" "$work/watch.out"
check "...and then its status: the new revision Ready (a status write is a watch event)" ready_event
patched() { test "$(curl -sS "http://hello.default.localhost:$port/")" = "Patched from hello (revision hello-00002)"; }
check "the patch made a new revision that serves" wait_until 10 patched

# Lists in pages: limit/continue, as kubectl's --chunk-size uses them.
check "kubectl pages through revisions with limit/continue (--chunk-size=1)" \
  test "$(k get rev --chunk-size=1 -o name | tr '\n' ' ')" = "revision.serving.knative.dev/hello-00001 revision.serving.knative.dev/hello-00002 "
revs="http://x/apis/serving.knative.dev/v1/namespaces/default/revisions"
page=$(curl -s --unix-socket "$sock" "$revs?limit=1")
paged=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(len(d["items"]), d["metadata"].get("continue",""))' "$page")
check "limit=1 answers one item and a continue token" test "${paged%% *}" = 1 -a -n "${paged#* }"
last=$(curl -s --unix-socket "$sock" "$revs?limit=1&continue=${paged#* }")
check "...and continue answers the next page, the last" \
  test "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["items"][0]["metadata"]["name"], "continue" in d["metadata"])' "$last")" = "hello-00002 False"
code=$(curl -s -o "$work/resp" -w '%{http_code}' --unix-socket "$sock" "$revs?limit=1&continue=bogus")
check "a continue token the server did not give: 400 saying to list again" test "$code" = 400 -a -n "$(grep -F 'list again' "$work/resp")"
# More changes than the cache keeps (labels only: no new revision).
for i in $(seq 17); do
  curl -s -o /dev/null --unix-socket "$sock" -X PATCH -H 'Content-Type: application/merge-patch+json' \
    -d "{\"metadata\":{\"labels\":{\"round\":\"$i\"}}}" "http://x/apis/serving.knative.dev/v1/namespaces/default/services/hello"
done
code=$(curl -s -o "$work/resp" -w '%{http_code}' --max-time 10 --unix-socket "$sock" "$revs?watch=true&resourceVersion=1" || true)
check "a watch from a version older than the watch cache keeps: 410 Expired" \
  test "$code" = 410 -a -n "$(grep -F '"reason":"Expired"' "$work/resp")"
latest=$(curl -s --unix-socket "$sock" "$revs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["metadata"]["resourceVersion"])')
code=$(curl -s -o "$work/resp" -w '%{http_code}' --max-time 10 --unix-socket "$sock" "$revs?watch=true&resourceVersion=$latest&timeoutSeconds=1" || true)
check "...while one from the list's version streams, and ends at its timeoutSeconds" test "$code" = 200

out=$(k api-resources --api-group=serving.knative.dev)
check "kubectl api-resources lists services with short names" grep -qE "^services +kservice,ksvc +serving.knative.dev/v1 +true +Service" <<<"$out"
check "...and revisions" grep -qE "^revisions +rev +serving.knative.dev/v1 +true +Revision" <<<"$out"
out=$(k explain ksvc.spec.template 2>&1)
check "kubectl explain ksvc.spec.template prints its fields" grep -qE "^  spec\b" <<<"$out"
check "...with their descriptions" contains "$out" "every change to it creates a new"
check "kubectl explain goes deeper" contains "$(k explain ksvc.spec.template.spec.containers.image 2>&1 | tr -s " \n" "  ")" "The revision pins its digest"

# A stale resourceVersion is refused with 409 and changes nothing.
k get ksvc hello -o json >"$work/current.json"
rv=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["resourceVersion"])' "$work/current.json")
python3 - "$work/current.json" "$work/stale.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
o["metadata"]["resourceVersion"] = str(int(o["metadata"]["resourceVersion"]) - 1)
o["metadata"].setdefault("labels", {})["stale"] = "yes"
json.dump(o, open(sys.argv[2], "w"))
PY
if out=$(k replace -f "$work/stale.json" 2>&1); then fail "a stale update is refused"; else
  check "a stale resourceVersion is refused with Conflict" contains "$out" "the object has been modified"; fi
code=$(curl -s -o "$work/resp" -w '%{http_code}' --cacert "$work/ca.crt" -H "Authorization: Bearer $token" \
  -X PUT -H 'Content-Type: application/json' --data-binary @"$work/stale.json" "$api/apis/serving.knative.dev/v1/namespaces/default/services/hello")
check "...as HTTP 409 with reason Conflict" test "$code" = 409 -a -n "$(grep -F '"reason":"Conflict"' "$work/resp")"

# Bad credentials and bad input: refused, and nothing changes.
get_hello() { curl -s -o "$work/resp" -w '%{http_code}' --cacert "$work/ca.crt" "$@" "$api/apis/serving.knative.dev/v1/namespaces/default/services/hello"; }
check "no token: 401" test "$(get_hello)" = 401
check "...a Status saying what to send" grep -qF '"reason":"Unauthorized"' "$work/resp"
check "a wrong token: 401" test "$(get_hello -H 'Authorization: Bearer 0123456789abcdef')" = 401
short=$(e token create brief --role view --ttl 2s -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
check "a fresh token works" test "$(get_hello -H "Authorization: Bearer $short")" = 200
expired() { test "$(get_hello -H "Authorization: Bearer $short")" = 401; }
check "an expired token: 401" wait_until 6 expired
check "...saying it expired" grep -qF 'has expired' "$work/resp"
check "TLS below 1.2 is refused" bash -c "! curl -s -o /dev/null --cacert '$work/ca.crt' --tls-max 1.1 '$api/version'"
code=$(curl -s -o "$work/resp" -w '%{http_code}' --cacert "$work/ca.crt" -H "Authorization: Bearer $token" \
  -X PATCH -H 'Content-Type: application/merge-patch+json' -d '{bad' "$api/apis/serving.knative.dev/v1/namespaces/default/services/hello")
check "a malformed patch: 400 BadRequest Status" test "$code" = 400 -a -n "$(grep -F '"reason":"BadRequest"' "$work/resp")"
code=$(curl -s -o "$work/resp" -w '%{http_code}' --cacert "$work/ca.crt" -H "Authorization: Bearer $token" \
  -X PATCH -H 'Content-Type: application/merge-patch+json' -d '{"spec":{"template":{"spec":{"containers":[{"image":"x","imagePullSecretz":1}]}}}}' "$api/apis/serving.knative.dev/v1/namespaces/default/services/hello")
check "an unknown field: 422 Invalid" test "$code" = 422 -a -n "$(grep -F '"reason":"Invalid"' "$work/resp")"
check "...naming the field" grep -qF '"field":"spec.template.spec.containers[0].imagePullSecretz"' "$work/resp"
code=$(curl -s -o "$work/resp" -w '%{http_code}' --cacert "$work/ca.crt" -H "Authorization: Bearer $token" \
  -X PATCH -H 'Content-Type: application/json-patch+json' -d '[{"op":"replace","path":"/spec/nothere/x","value":1}]' "$api/apis/serving.knative.dev/v1/namespaces/default/services/hello")
check "a JSON patch that cannot apply: 400" test "$code" = 400
check "none of them changed anything" test "$(k get ksvc hello -o jsonpath='{.metadata.resourceVersion}')" = "$rv"
out=$(k apply --dry-run=server -f "$work/hello.yaml" 2>&1)
check "server-side dry run" contains "$out" "(server dry run)"
check "...changes nothing" test "$(k get ksvc hello -o jsonpath='{.metadata.resourceVersion}')" = "$rv"

# A second independent client: python3-kubernetes' dynamic client.
out=$(/usr/bin/python3 - "$work/kubeconfig" "$work/image" <<'PY' 2>&1 || true
import sys
from kubernetes import config, dynamic
from kubernetes.client import api_client
client = dynamic.DynamicClient(api_client.ApiClient(configuration=config.load_kube_config(config_file=sys.argv[1])))
ksvc = client.resources.get(api_version="serving.knative.dev/v1", kind="Service")
body = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "fromsdk"},
        "spec": {"template": {"spec": {"containers": [{"image": "oci:" + sys.argv[2] + ":v1"}]}}}}
created = ksvc.create(body=body, namespace="default")
print("created", created.metadata.name, created.metadata.uid != None)
got = ksvc.get(name="fromsdk", namespace="default")
print("got", got.spec.template.spec.containers[0].image.startswith("oci:"))
names = sorted(i.metadata.name for i in ksvc.get(namespace="default").items)
print("listed", ",".join(names))
ksvc.delete(name="fromsdk", namespace="default")
print("deleted")
PY
)
check "python3-kubernetes creates" contains "$out" "created fromsdk True"
check "...gets" contains "$out" "got True"
check "...lists" contains "$out" "listed fromsdk,hello"
check "...and deletes" contains "$out" "deleted"

# Knative Eventing's kinds through the same machinery.
cat >"$work/eventing.yaml" <<YAML
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: to-hello
spec:
  broker: default
  filter:
    attributes:
      type: greeting
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: hello
YAML
out=$(k apply -f "$work/eventing.yaml" 2>&1)
check "kubectl apply creates a broker and a trigger" \
  bash -c "grep -q 'broker.eventing.knative.dev/default created' <<<'$out' && grep -q 'trigger.eventing.knative.dev/to-hello created' <<<'$out'"
k wait trigger/to-hello --for=condition=Ready --timeout=30s >/dev/null 2>&1 || true
out=$(k get triggers 2>&1)
check "kubectl get triggers shows the broker and the subscriber's URI" \
  bash -c "grep -q 'to-hello *default *http://hello.default.localhost:$port/ *True' <<<'$out'"
out=$(k patch trigger to-hello --type merge -p '{"spec":{"broker":"other"}}' 2>&1 || true)
check "spec.broker is immutable" contains "$out" "spec.broker: field is immutable"
cat >"$work/ping.yaml" <<YAML
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: every-minute
spec:
  schedule: "0 * * * * *"
  timezone: America/New_York
  data: '{"hi":1}'
  contentType: application/json
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: default
YAML
out=$(k apply -f "$work/ping.yaml" 2>&1)
check "kubectl apply creates a PingSource" contains "$out" "pingsource.sources.knative.dev/every-minute created"
k wait pingsource/every-minute --for=condition=Ready --timeout=30s >/dev/null 2>&1 || true
out=$(k get pingsources 2>&1)
check "kubectl get pingsources shows its schedule and sink, Ready" \
  bash -c "grep -q 'every-minute *0 \* \* \* \* \* *http://broker-ingress.localhost:$port/default/default *True' <<<'$out'"
out=$(k patch pingsource every-minute --type merge -p '{"spec":{"schedule":"* * 32 * *"}}' 2>&1 || true)
check "a bad schedule is refused with its position" contains "$out" "spec.schedule: \"32\" at position 5 (day of month field)"
out=$(k api-resources --api-group=sources.knative.dev 2>&1)
source_kinds() { local r; for r in apiserversources containersources pingsources sinkbindings; do grep -qE "^$r +sources.knative.dev/v1 +true" <<<"$out" || return 1; done; }
check "kubectl api-resources lists the source kinds" source_kinds
k delete -f "$work/ping.yaml" >/dev/null
k delete -f "$work/eventing.yaml" >/dev/null

out=$(k delete ksvc hello 2>&1)
check "kubectl delete ksvc" contains "$out" 'service.serving.knative.dev "hello" deleted'
check "...its revisions are gone" test -z "$(k get revisions -o name)"
k wait ksvc/fromsdk --for=delete --timeout=60s >/dev/null 2>&1 || true
check "...and its instances" test -z "$(runc --root "$data/runc" list -q)"
finish
