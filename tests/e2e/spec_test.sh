#!/usr/bin/env bash
# The rest of the pod spec Knative takes, end to end on runc: liveness probes (HTTP and exec)
# restart an instance that fails them, with the reason in describe; a startup probe holds
# readiness back; an exec readiness probe runs in the instance. Volumes: an emptyDir is each
# instance's own; a hostPath mounts only below host-path-prefixes (symbolic links resolved); a
# persistentVolumeClaim ('elafros volume') keeps its data across revisions and loses it when
# deleted, which is refused while an instance mounts it. DomainMappings route a host name of your
# own to a service; the oldest mapping of a name holds it. Several containers: init containers
# run first and leave files in an emptyDir the app reads; a sidecar shares the instance's
# localhost; each container's log lines carry its name; a failing init container is the reason.
#   tests/e2e/spec_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
"$src/examples/hello/build-image.sh" "$work/hello" latest >/dev/null
mkdir -p "$work/host/shared"
chmod 0777 "$work/host/shared"
echo from-host >"$work/host/shared/greeting"
ln -s /etc "$work/host/escape"
cat >"$work/config.yaml" <<YAML
host-path-prefixes: [$work/host]
YAML
daemon_args=(--config "$work/config.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
e image import "oci:$work/hello:latest" --name hello-img >/dev/null
get() { curl -sS --max-time 10 "http://$1.default.localhost:$port$2"; }
# ksvc NAME MIN_SCALE: a Knative Service's YAML down to its template's spec, which the caller goes on.
ksvc() {
  printf 'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  template:\n    metadata:\n      annotations:\n        autoscaling.knative.dev/min-scale: "%s"\n    spec:\n' "$1" "$2"
}
instance_of() { running_ids | grep "^$1-" || true; }

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
check "...and the new one is healthy and serves" wait_until 10 eval 'test "$(get live /cgi-bin/health 2>/dev/null)" = ok'
out=$(e service describe live)
check "describe shows the restart and its reason" \
  grep -qE "Restarts: +1, the last .* ago: LivenessProbeFailed: the liveness probe \(GET /cgi-bin/health on port 8080\) failed 2 times in a row, 1 s apart \(failureThreshold 2\): it answered 503 Service Unavailable" <<<"$out"
rev=$(e revision describe live-00001 -o json)
check "the revision's containerStatuses carry lastState.terminated, as Kubernetes' do" \
  contains "$(tr -d ' \n' <<<"$rev")" '"lastState":{"terminated":{"reason":"LivenessProbeFailed"'

# A probe's httpHeaders reach the app: /cgi-bin/health?need-header is 503 without X-Probe: yes.
probe_yaml() {  # NAME readinessProbe|livenessProbe [HEADERS]
  ksvc "$1" 1
  cat <<YAML
      containers:
        - image: hello-img
          $2:
            periodSeconds: 1
            failureThreshold: 1
            initialDelaySeconds: $([ "$2" = livenessProbe ] && echo 1 || echo 0)
            httpGet:
              path: /cgi-bin/health?need-header
              ${3:+httpHeaders: $3}
YAML
}
probe_yaml headered readinessProbe '[{name: X-Probe, value: "yes"}]' | e apply -f - --no-wait >/dev/null
probe_yaml bare livenessProbe | e apply -f - --no-wait >/dev/null
check "a readiness probe with httpHeaders sends them: the instance is ready" \
  wait_until 20 eval 'contains "$(get headered / 2>/dev/null)" "Hello from headered"'
check "...and the same path probed without them fails, the app's answer in the reason" \
  wait_until 20 eval 'e service describe bare | grep -q "LivenessProbeFailed: .*answered 503 Service Unavailable"'
e service delete headered >/dev/null; e service delete bare >/dev/null

# An exec liveness probe and a startup probe, from YAML
{
  ksvc execlive 1
  cat <<'YAML'
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
} >"$work/execlive.yaml"
e apply -f "$work/execlive.yaml" >/dev/null
check "a service with a startup probe becomes Ready" wait_until 20 eval 'contains "$(e service list)" "execlive"'
check "...and serves" wait_until 10 eval 'contains "$(get execlive / 2>/dev/null)" "Hello from execlive"'
first=$(instance_of execlive)
curl -sS -X POST "http://execlive.default.localhost:$port/cgi-bin/health?fail" >/dev/null
replaced() { local now; now=$(instance_of execlive); [ -n "$now" ] && [ "$now" != "$first" ]; }
check "an instance failing an exec liveness probe is replaced" wait_until 20 replaced
exec_reason() {
  grep -qF "LivenessProbeFailed: the liveness probe (exec 'test ! -e /tmp/unhealthy') failed once (failureThreshold 1): it exited with code 1" \
    <<<"$(e service describe execlive)"
}
check "describe names the command and its exit code" wait_until 5 exec_reason

# Bad probes are refused naming the field, and nothing is written
sed 's/failureThreshold: 1$/successThreshold: 2/' "$work/execlive.yaml" >"$work/bad.yaml"
if out=$(e apply -f "$work/bad.yaml" 2>&1); then fail "a liveness probe with successThreshold 2 is refused"; else
  check "a liveness probe with successThreshold 2 is refused naming the field" \
    contains "$out" "livenessProbe.successThreshold: must be 1"; fi
check "...and nothing was written" test "$(e revision list -s execlive | grep -c execlive-)" = 1

e service delete live >/dev/null; e service delete execlive >/dev/null

# --- volumes -------------------------------------------------------------------------------

# emptyDir: each instance has its own
{
  ksvc scratch 2
  cat <<'YAML'
      containers:
        - image: hello-img
          command: [sh, -c, 'cat /proc/sys/kernel/random/uuid >/scratch/id; exec /bin/hello']
          volumeMounts: [{name: scratch, mountPath: /scratch}]
      volumes:
        - name: scratch
          emptyDir: {}
YAML
} >"$work/scratch.yaml"
e apply -f "$work/scratch.yaml" >/dev/null
ids() { cat "$data"/instances/scratch-*/emptydir/scratch/id 2>/dev/null | sort -u | wc -l; }
if wait_until 20 eval 'test "$(ids)" = 2'; then pass "two instances write two different ids into their emptyDirs"; else
  fail "two instances write two different ids into their emptyDirs"
  (set +e; for f in "$data"/instances/scratch-*/emptydir/scratch/id; do echo "$f: $(cat "$f")"; done; ls -la "$data"/instances/ "$data"/instances/scratch-*/emptydir/scratch/; runc --root "$data/runc" list); fi
e service delete scratch >/dev/null

# hostPath below the allowed prefix: the host's files in, the instance's writes out
hostpath_yaml() {  # NAME PATH
  ksvc "$1" 1
  cat <<YAML
      containers:
        - image: hello-img
          command: [sh, -c, 'echo "\$K_REVISION was here" >>/tmp/www/host/visits; exec /bin/hello']
          volumeMounts: [{name: shared, mountPath: /tmp/www/host}]
      volumes:
        - name: shared
          hostPath: {path: $2, type: Directory}
YAML
}
hostpath_yaml hostvol "$work/host/shared" | e apply -f - >/dev/null
check "a hostPath volume shows the host's files" wait_until 20 eval 'test "$(get hostvol /host/greeting 2>/dev/null)" = from-host'
check "...and the instance's writes reach the host" grep -qx "hostvol-00001 was here" "$work/host/shared/visits"
if out=$(hostpath_yaml badhost /etc | e apply -f - 2>&1); then fail "a hostPath outside host-path-prefixes is refused"; else
  check "a hostPath outside host-path-prefixes is refused naming the field and the prefixes" \
    contains "$out" "volumes[0].hostPath.path: \"/etc\" is not below the daemon's host-path-prefixes ($work/host)"; fi
check "...and nothing was written" test "$(e service list | grep -c badhost)" = 0
if out=$(hostpath_yaml escape "$work/host/escape" | e apply -f - 2>&1); then fail "a hostPath whose link leaves the prefixes does not start"; else
  check "a hostPath whose symbolic link leaves the prefixes does not start, and says why" \
    contains "$out" "resolves to /etc"; fi
e service delete hostvol >/dev/null; e service delete escape >/dev/null

# persistentVolumeClaim: a named volume that outlives revisions
out=$(e volume create data --size 2Gi)
check "volume create says how to mount it" contains "$out" "--mount /DIR=pvc:data"
{
  ksvc keeper 1
  cat <<'YAML'
      containers:
        - image: hello-img
          command: [sh, -c, 'echo "$K_REVISION" >>/tmp/www/data/revisions; exec /bin/hello']
          volumeMounts: [{name: data, mountPath: /tmp/www/data}]
      volumes:
        - name: data
          persistentVolumeClaim: {claimName: data}
YAML
} >"$work/pvc.yaml"
e apply -f "$work/pvc.yaml" >/dev/null
check "a claim's volume is mounted" wait_until 20 eval 'contains "$(get keeper /data/revisions 2>/dev/null)" "keeper-00001"'
e service update keeper -e ROUND=2 >/dev/null
both() { local r; r=$(get keeper /data/revisions 2>/dev/null); contains "$r" keeper-00001 && contains "$r" keeper-00002; }
check "a new revision sees what the last one wrote" wait_until 20 both
check "volume list shows it Bound, its size, and who mounts it" \
  grep -qE "^data +Bound +2Gi +ReadWriteOnce +keeper " <<<"$(e volume list)"
check "the API lists it as a v1 PersistentVolumeClaim, Bound" \
  contains "$(curl -s --unix-socket "$sock" http://elafrosd/api/v1/namespaces/default/persistentvolumeclaims | tr -d ' \n')" '"status":{"phase":"Bound"'
uid=$(e volume describe data | sed -n 's/^UID: *//p')
check "its data is a directory named by the claim's uid" test -s "$data/volumes/$uid/revisions"
if out=$(e volume delete data 2>&1); then fail "deleting a mounted volume is refused"; else
  check "deleting a mounted volume is refused naming the instances" contains "$out" "is mounted by running instances (keeper-"; fi
sed 's/claimName: data/claimName: nothing/; s/name: keeper/name: orphan/' "$work/pvc.yaml" >"$work/orphan.yaml"
if out=$(e apply -f "$work/orphan.yaml" 2>&1); then fail "a missing claim keeps the revision from starting"; else
  check "a missing claim is the revision's reason, with what to do" \
    contains "$out" "persistentvolumeclaim \"nothing\" not found in namespace \"default\" (for volume data); create it ('elafros volume create nothing -n default')"; fi
e service delete orphan >/dev/null; e service delete keeper >/dev/null
check "once nothing mounts it, the volume deletes" wait_until 20 e volume delete data
check "...and its data goes" wait_until 10 test ! -e "$data/volumes/$uid"
if out=$(e volume create bad --size lots 2>&1); then fail "a bad size is refused"; else
  check "a bad size is refused naming the field" contains "$out" 'spec.resources.requests.storage: "lots" is not a quantity'; fi

# --- several containers --------------------------------------------------------------------

pod_yaml() {  # NAME INIT_COMMAND
  ksvc "$1" 1
  cat <<YAML
      initContainers:
        - name: setup
          image: hello-img
          command: [sh, -c, '$2']
          volumeMounts: [{name: shared, mountPath: /shared}]
      containers:
        - name: side
          image: hello-img
          command: [sh, -c, 'mkdir -p /tmp/side; echo from the sidecar >/tmp/side/index.html; echo in memory >/mem/fromside; echo side up; exec httpd -f -p 9091 -h /tmp/side']
          volumeMounts: [{name: mem, mountPath: /mem}]
        - name: app
          image: hello-img
          ports: [{containerPort: 8080}]
          command: [sh, -c, 'mkdir -p /tmp/www; cp /shared/note /tmp/www/note; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do wget -q -O /tmp/www/side http://127.0.0.1:9091/ && break; sleep 0.1; done; cp /mem/fromside /tmp/www/fromside; grep " /mem " /proc/mounts >/tmp/www/memmount; exec /bin/hello']
          volumeMounts: [{name: shared, mountPath: /shared}, {name: mem, mountPath: /mem}]
      volumes:
        - name: shared
          emptyDir: {}
        - name: mem
          emptyDir: {medium: Memory, sizeLimit: 8Mi}
YAML
}
pod_yaml pod 'echo prepared by init >/shared/note; echo init says hi' | e apply -f - >/dev/null
check "an init container's file, in an emptyDir, is seen by the app" \
  wait_until 20 eval 'test "$(get pod /note 2>/dev/null)" = "prepared by init"'
check "a sidecar is reachable on localhost from the serving container" test "$(get pod /side)" = "from the sidecar"
check "a Memory emptyDir is shared by the sidecar and the serving container" test "$(get pod /fromside)" = "in memory"
check "...and it is a tmpfs" contains "$(get pod /memmount)" " /mem tmpfs "
check "the sidecar runs as a container of the instance" grep -qE "^pod-00001-[0-9a-f]{6}_side$" <<<"$(runc --root "$data/runc" list -q)"
check "...and the init container is gone once it finished" test "$(runc --root "$data/runc" list -q | grep -c _setup || true)" = 0
logs_have() { contains "$(e logs pod 2>&1)" "$1"; }
check "a sidecar's log lines carry its name" wait_until 10 eval 'e logs pod 2>&1 | grep -qE "^\[pod-00001-[0-9a-f]{6}/side\] side up$"'
check "...and so do an init container's" wait_until 10 eval 'e logs pod 2>&1 | grep -qE "^\[pod-00001-[0-9a-f]{6}/setup\] init says hi$"'
out=$(e service describe pod)
check "describe lists the sidecar and the init container with their pinned images" \
  eval 'grep -qE "Sidecar: +side \(sha256:" <<<"$out" && grep -qE "Init: +setup \(sha256:" <<<"$out"'
# A sidecar's own image is in use: image prune keeps it.
"$src/examples/hello/build-image.sh" "$work/side" latest Side >/dev/null
e image import "oci:$work/side:latest" --name side-img >/dev/null
{
  ksvc sideimg 0
  cat <<'YAML'
      containers:
        - image: hello-img
          ports: [{containerPort: 8080}]
        - name: helper
          image: side-img
          command: [sleep, '1000']
YAML
} | e apply -f - >/dev/null
find "$data/images" -mindepth 1 -exec touch -h -d '2 hours ago' {} +  # past prune's grace
out=$(e image prune)
check "image prune keeps an image only a sidecar uses" eval '! contains "$out" "side-img" && contains "$(e image list)" "side-img"'
e service delete sideimg >/dev/null
check "the revision pins every container's image" \
  test "$(e revision describe pod-00001 -o json | tr -d ' \n' | grep -o '"imageDigest":"sha256:[0-9a-f]*"' | wc -l)" = 3
if out=$(pod_yaml broken 'echo cannot prepare >&2; exit 3' | e apply -f - 2>&1); then fail "a failing init container keeps the revision from Ready"; else
  check "a failing init container is the revision's reason, with its exit code and output" \
    grep -qE 'InitContainerFailed: .*init container "setup" exited with code 3; last output:' <<<"$out"
  check "...its last lines" contains "$out" "cannot prepare"; fi
check "...and leaves no container behind" wait_until 10 eval 'test "$(instances broken)" = 0'
e service delete broken >/dev/null; e service delete pod >/dev/null
check "the instance's sidecar goes with it" wait_until 20 eval 'test "$(instances pod)" = 0'
{
  ksvc sidequit 1
  cat <<'YAML'
      containers:
        - image: hello-img
          ports: [{containerPort: 8080}]
        - name: quitter
          image: hello-img
          command: [sh, -c, 'sleep 1; echo quitter leaves; exit 4']
YAML
} >"$work/sidequit.yaml"
e apply -f "$work/sidequit.yaml" >/dev/null
check "a sidecar that exits fails its instance, which is replaced, with the reason" \
  wait_until 20 eval 'e service describe sidequit | grep -qE "Restarts: +[1-9][0-9]*, the last .* ago: ExitCode: sidecar \"quitter\" exited with code 4; last output:"'
e service delete sidequit >/dev/null
check "...and nothing of it is left" wait_until 20 eval 'test "$(instances sidequit)" = 0'
pod_yaml twoports 'true' | sed 's/^        - name: side$/        - name: side\n          ports: [{containerPort: 9091}]/' >"$work/twoports.yaml"
if out=$(e apply -f "$work/twoports.yaml" 2>&1); then fail "two containers with ports are refused"; else
  check "two containers with ports are refused, saying which one serves" \
    contains "$out" "with several containers, exactly one has ports: the one requests go to (2 of 2 have)"; fi

# --- domain mappings -----------------------------------------------------------------------

at() { curl -sS --max-time 10 --resolve "$1:$port:127.0.0.1" "http://$1:$port$2"; }
e service create mapped --image hello-img >/dev/null
out=$(e domain create app.example.test --ref mapped)
check "domain create names the domain's URL" contains "$out" "http://app.example.test:$port serves service 'mapped'"
check "a mapped domain serves the service" wait_until 10 eval 'contains "$(at app.example.test / 2>/dev/null)" "Hello from mapped"'
check "domain list shows it Ready" grep -qE "^app.example.test +http://app.example.test:$port +mapped +True " <<<"$(e domain list)"
e namespace create other >/dev/null
e -n other service create mapped --image hello-img -e GREETING=Other >/dev/null
e -n other domain create app.example.test --ref mapped >/dev/null
check "the same domain mapped in another namespace is not Ready, naming the holder" \
  contains "$(e -n other domain describe app.example.test)" "DomainAlreadyClaimed: the domain \"app.example.test\" is already mapped in namespace \"default\""
check "...and the first mapping keeps serving" contains "$(at app.example.test /)" "Hello from mapped"
e domain delete app.example.test >/dev/null
check "once the first goes, the other namespace's mapping holds the domain" \
  wait_until 10 eval 'contains "$(at app.example.test / 2>/dev/null)" "Other from mapped"'
e domain create late.example.test --ref notyet >/dev/null
check "a mapping to a missing service says so" \
  contains "$(e domain describe late.example.test)" "ResolveFailed: service \"notyet\" not found in namespace \"default\""
e service create notyet --image hello-img >/dev/null
check "...and serves once the service exists" wait_until 10 eval 'contains "$(at late.example.test / 2>/dev/null)" "Hello from notyet"'
for bad in "x.default.localhost --ref mapped" "Bad_Name.example --ref mapped"; do
  # shellcheck disable=SC2086
  if out=$(e domain create $bad 2>&1); then fail "domain create $bad is refused"; else
    check "domain create $bad is refused saying why" grep -qE "the domain elafros names services by|is not a host name" <<<"$out"; fi
done
check "...and nothing was written" test "$(e domain list | wc -l)" = 2
e domain delete late.example.test >/dev/null
check "a deleted mapping no longer routes" test "$(curl -s -o /dev/null -w '%{http_code}' --resolve "late.example.test:$port:127.0.0.1" "http://late.example.test:$port/")" = 404
e service delete mapped >/dev/null; e service delete notyet >/dev/null; e namespace delete other >/dev/null

check "the services' instances are gone" wait_until 20 eval 'test "$(instances live)$(instances execlive)$(instances keeper)$(instances hostvol)$(instances mapped)$(instances notyet)" = 000000'
finish
