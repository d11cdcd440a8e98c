#!/usr/bin/env bash
# End-to-end for revisions, traffic, tags, rollback and Knative YAML, driven through the CLI and
# HTTP against a real elafrosd with runc containers, plus a wrk load run during updates.
#   tests/e2e/revisions_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" v1 >/dev/null
"$src/examples/hello/build-image.sh" "$work/image" v2 Bonjour >/dev/null

start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
url="http://hello.default.localhost:$port"
get() { curl -sS "$url/"; }
generation() { e service describe hello -o json | sed -n 's/^    "generation": \([0-9]*\),*$/\1/p'; }

e service create hello --image "oci:$work/image:v1" >/dev/null
check "v1 serves" test "$(get)" = "Hello from hello (revision hello-00001)"

# Updates make revisions; no-op updates do not
e service update hello -e GREETING=two >/dev/null
check "env update makes hello-00002 and traffic follows @latest" test "$(get)" = "two from hello (revision hello-00002)"
e service update hello -e GREETING- >/dev/null
check "unsetting env makes hello-00003 with the image's value" test "$(get)" = "Hello from hello (revision hello-00003)"
e service update hello --image "oci:$work/image:v2" >/dev/null
check "image update makes hello-00004 on the v2 image" test "$(get)" = "Bonjour from hello (revision hello-00004)"
digest4=$(e revision describe hello-00004 -o json | sed -n 's/.*"imageDigest": "\(sha256:[0-9a-f]*\)".*/\1/p')
check "the revision pins a digest" test -n "$digest4"
gen=$(generation)
e service update hello --image "oci:$work/image:v2" >/dev/null
check "an update that changes nothing makes no revision" test "$(e revision list -s hello | grep -c '^hello-')" = 4
check "... and no new generation" test "$(generation)" = "$gen"
# Retag v2 with other content: the revision keeps the digest it pinned.
"$src/examples/hello/build-image.sh" "$work/image" v2 Hola >/dev/null
check "a moved tag does not change a revision's digest" \
  test "$(e revision describe hello-00004 -o json | sed -n 's/.*"imageDigest": "\(sha256:[0-9a-f]*\)".*/\1/p')" = "$digest4"
check "... and the revision keeps serving what it pinned" test "$(get)" = "Bonjour from hello (revision hello-00004)"
check "stale revisions keep no instances" test "$(instances hello)" = 1

# Rollback
out=$(e service rollback hello)
check "rollback goes to the previous ready revision" contains "$out" "revision 'hello-00003'"
check "rollback serves hello-00003" test "$(get)" = "Hello from hello (revision hello-00003)"
e service rollback hello --to hello-00001 >/dev/null
check "rollback --to serves the named revision" test "$(get)" = "Hello from hello (revision hello-00001)"
if out=$(e service rollback hello 2>&1); then fail "rollback with nothing older fails"; else
  check "rollback with nothing older says so" contains "$out" "no Ready revision older than 'hello-00001'"; fi
if out=$(e service rollback hello --to hello-00009 2>&1); then fail "rollback to an unknown revision fails"; else
  check "rollback to an unknown revision says so" contains "$out" "has no revision 'hello-00009'"; fi

# Traffic split and tags
e service update hello --traffic hello-00001=50,@latest=50 --tag hello-00004=candidate --tag @latest=current >/dev/null
ones=0; fours=0
for _ in $(seq 200); do
  case "$(get)" in
    *hello-00001*) ones=$((ones + 1)) ;;
    *hello-00004*) fours=$((fours + 1)) ;;
  esac
done
echo "     50/50 split over 200 requests: hello-00001=$ones hello-00004=$fours"
check "a 50/50 split sends both revisions a fair share (each 70..130 of 200)" \
  test "$ones" -ge 70 -a "$ones" -le 130 -a "$fours" -ge 70 -a "$fours" -le 130 -a $((ones + fours)) -eq 200
check "the tag URL always hits its revision" \
  test "$(for _ in $(seq 20); do curl -s "http://candidate-hello.default.localhost:$port/"; done | sort -u)" = "Bonjour from hello (revision hello-00004)"
check "a tag on @latest follows the latest revision" test "$(curl -s "http://current-hello.default.localhost:$port/")" = "Bonjour from hello (revision hello-00004)"
json=$(e service describe hello -o json)
check "status.traffic shows a url per tag" contains "$json" "\"url\": \"http://candidate-hello.default.localhost:$port\""

# Validation: refused updates change nothing
gen=$(generation)
refuse() { # what, expected message, update args...
  local what=$1 msg=$2; shift 2
  local out
  if out=$(e service update hello "$@" 2>&1); then fail "$what is refused"; else check "$what is refused: $msg" contains "$out" "$msg"; fi
}
refuse "percents not summing to 100" "must sum to 100" --traffic hello-00001=60,@latest=60
refuse "an unknown revision" 'revision "hello-00042" does not exist' --traffic hello-00042=100
refuse "an unknown tag" "no such tag" --untag nope
refuse "a duplicate tag" 'tag "candidate" is already used' --tag hello-00001=candidate
refuse "a tag that is not a DNS label" "must start with a lowercase letter" --tag hello-00001=Bad_Tag
refuse "a reserved env name" "K_SERVICE is set by elafros" -e K_SERVICE=x
check "refused updates changed nothing" test "$(generation)" = "$gen"

# Revision delete rules
if out=$(e revision delete hello-00001 2>&1); then fail "deleting a routed revision fails"; else
  check "deleting a routed revision names the route" contains "$out" 'routed by service "hello" (50% of its traffic)'; fi
if out=$(e revision delete hello-00004 2>&1); then fail "deleting a tagged revision fails"; else
  check "deleting a tagged revision names the tag" contains "$out" 'tag "candidate"'; fi
check "an unrouted revision can be deleted" contains "$(e revision delete hello-00002)" "Revision 'hello-00002' deleted"
check "revision list no longer shows it" test -z "$(e revision list -s hello | grep hello-00002 || true)"

# Export, apply, re-apply
e service export hello >"$work/hello.yaml"
check "export has no status or server fields" test -z "$(grep -E '^status:|uid:|generation:|creationTimestamp:' "$work/hello.yaml" || true)"
gen=$(generation)
out=$(e apply -f "$work/hello.yaml")
check "re-applying the export changes nothing" contains "$out" "Service 'hello' unchanged"
check "... no new generation" test "$(generation)" = "$gen"
e service export hello --with-revisions | sed 's/namespace: default/namespace: copy/' >"$work/copy.yaml"
e namespace create copy >/dev/null
out=$(e apply -f "$work/copy.yaml")
check "apply of an export with revisions recreates the service elsewhere" contains "$out" "Service 'hello' created in namespace 'copy'"
check "... with the same revision names" \
  test "$(e revision list -n copy -s hello | awk 'NR>1 {print $1}' | sort | tr '\n' ' ')" = "hello-00001 hello-00003 hello-00004 "
# (v2 has moved to "Hola" since: the copy's revisions resolve the tags they name afresh)
check "... and the same tags" test "$(curl -s "http://candidate-hello.copy.localhost:$port/")" = "Hola from hello (revision hello-00004)"
cat >"$work/multi.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: alpha
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "10"
    spec:
      containerConcurrency: 10
      timeoutSeconds: 30
      containers:
        - image: oci:$work/image:v1
          env:
            - name: GREETING
              value: "Alpha"
          ports:
            - containerPort: 8080
          resources:
            limits:
              memory: 64Mi
              cpu: 500m
          readinessProbe:
            httpGet:
              path: /
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: beta
spec:
  template:
    spec:
      containers:
        - image: oci:$work/image:v1
YAML
out=$(e apply -f "$work/multi.yaml")
check "multi-document apply creates both services" contains "$out" "Service 'beta' created"
check "the first one serves its env" test "$(curl -s "http://alpha.default.localhost:$port/")" = "Alpha from alpha (revision alpha-00001)"
alpha_id=$(running_ids | grep '^alpha-')
check "resources.limits.memory is the container's cgroup memory limit" \
  test "$(cat "/sys/fs/cgroup/memory/elafros/$alpha_id/memory.limit_in_bytes" 2>/dev/null || cat "/sys/fs/cgroup/elafros/$alpha_id/memory.max")" = 67108864
check "resources.limits.cpu is its CFS quota" \
  test "$(cat "/sys/fs/cgroup/cpu/elafros/$alpha_id/cpu.cfs_quota_us" 2>/dev/null || cut -d' ' -f1 "/sys/fs/cgroup/elafros/$alpha_id/cpu.max")" = 50000
out=$(e apply -f "$work/multi.yaml")
check "re-applying the same YAML creates no revision" test "$(e revision list | grep -c '^alpha-')" = 1
cat >"$work/bad.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: gamma
spec:
  template:
    spec:
      containers:
        - image: oci:$work/image:v1
          stdin: true
YAML
if out=$(e apply -f "$work/bad.yaml" 2>&1); then fail "an unsupported field is refused"; else
  check "an unsupported field is refused by name" contains "$out" "spec.template.spec.containers[0].stdin: is not supported: an instance has no terminal or stdin"; fi
check "... and nothing was created" test -z "$(e service list | grep gamma || true)"
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n' >"$work/cm.yaml"
if out=$(e apply -f "$work/cm.yaml" 2>&1); then fail "a kind elafros does not serve is refused"; else
  check "a kind elafros does not serve is refused" contains "$out" 'kind "Pod"'; fi
e service delete alpha >/dev/null
e service delete beta >/dev/null
e service delete hello -n copy >/dev/null

# Zero downtime: a load run while the service is updated, rolled back and re-split
e service update hello --traffic @latest=100 --untag candidate --untag current >/dev/null
wrk -t1 -c4 -d6s -H "Host: hello.default.localhost" "http://127.0.0.1:$port/" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 0.5
e service update hello -e GREETING=under-load >/dev/null
e service rollback hello >/dev/null
e service update hello --traffic hello-00001=50,@latest=50 >/dev/null
e service update hello --image "oci:$work/image:v1" >/dev/null
e service update hello --traffic @latest=100 >/dev/null
wait "$wrk_pid"
requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk.txt")
echo "     load run during 5 changes: $requests requests; $(grep -E 'Requests/sec' "$work/wrk.txt")"
check "the load run served requests" test "${requests:-0}" -gt 100
check "no request failed during updates, rollback and traffic changes" \
  test -z "$(grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" || true)"
grep -E 'Non-2xx|Socket errors' "$work/wrk.txt" || true

e service delete hello >/dev/null
check "no containers remain" test -z "$(runc --root "$data/runc" list -q)"
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
