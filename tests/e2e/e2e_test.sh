#!/usr/bin/env bash
# End-to-end: start the built elafrosd on a temporary data dir, socket and port, and drive it
# only through the elafros CLI and curl, as a user would.
#   tests/e2e/e2e_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null

start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
[ -n "$port" ] || { echo "cannot learn the proxy port"; e status -o json; exit 1; }
pass "elafrosd started (proxy on port $port)"
check "socket has mode 0666 (requests are authorized by the peer's uid)" test "$(stat -c %a "$sock")" = 666
check "database is at <data-dir>/elafros.db" test -f "$data/elafros.db"

# Images
out=$(e image import "oci:$work/image:latest" --name hello-img)
check "image import names the image" contains "$out" "Image 'hello-img' imported: sha256:"
check "image list shows it" contains "$(e image list)" "hello-img"
if out=$(e image import "oci:$work/missing:latest" 2>&1); then fail "importing a missing layout fails"; else
  check "importing a missing layout says what is wrong" contains "$out" "not found"; fi

# Archives as docker save and skopeo write them deploy directly
skopeo copy -q "oci:$work/image:latest" "docker-archive:$work/hello-docker.tar:hello:v1"
out=$(cd "$work" && e service create fromarchive --image docker-archive:hello-docker.tar)
check "a service deploys from a docker-archive (relative path)" \
  test "$(curl -sS "http://fromarchive.default.localhost:$port/")" = "Hello from fromarchive (revision fromarchive-00001)"
check "the archive's image is stored under its tag" contains "$(e image list)" "hello:v1"
e service delete fromarchive >/dev/null

# Create and serve
start=$(date +%s%N)
out=$(e service create hello --image "oci:$work/image:latest" -e GREETING=Howdy)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
url="http://hello.default.localhost:$port"
check "service create waits for Ready and prints the URL" test "$(tail -1 <<<"$out")" = "$url"
echo "     create -> Ready took ${ms} ms"
check "the proxy serves the service from a runc container" test "$(curl -sS "$url/")" = "Howdy from hello (revision hello-00001)"
check "Host matching ignores case" test "$(curl -sS -H "Host: HELLO.default.localhost:$port" "http://127.0.0.1:$port/")" = "Howdy from hello (revision hello-00001)"
two=$(curl -sS -v "$url/" "$url/" 2>&1)
check "keep-alive: two requests on one connection" contains "$two" "Re-using existing connection"
head -c 3000000 /dev/urandom >"$work/body"
check "a 3 MB request body streams through and back unchanged" \
  test "$(curl -sS --data-binary @"$work/body" -H 'Content-Type: application/octet-stream' "$url/cgi-bin/echo" | sha256sum)" = "$(sha256sum <"$work/body")"
check "an unknown host gets 404" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: nope.default.localhost' "http://127.0.0.1:$port/")" = 404
check "a request with both Content-Length and Transfer-Encoding is rejected" \
  contains "$(printf 'POST / HTTP/1.1\r\nHost: hello.default.localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n' | timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; cat >&3; cat <&3" || true)" "400 Bad Request"

big_header=$(head -c 40000 /dev/zero | tr '\0' a)
check "a 40 KB header gets 431" test "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big_header" "$url/")" = 431
check "HTTP/1.0 clients are served" test "$(curl -sS --http1.0 "$url/")" = "Howdy from hello (revision hello-00001)"
check "HEAD gets headers and no body" contains "$(curl -sS -I "$url/")" "200 OK"

# Inspect
check "service list shows it Ready" contains "$(e service list)" "hello-00001"
json=$(e service describe hello -o json)
check "describe -o json is a Knative Service" contains "$json" '"kind": "Service"'
check "describe -o json has the ready revision" contains "$json" '"latestReadyRevisionName": "hello-00001"'
check "describe -o json has the URL" contains "$json" "\"url\": \"$url\""
check "describe -o yaml works" contains "$(e service describe hello -o yaml)" "apiVersion: serving.knative.dev/v1"
check "describe shows the pinned digest" contains "$(e service describe hello)" "pinned to sha256:"
check "status counts the instance" contains "$(e status)" "Instances:   1 (1 ready)"
check "an image from the store can be used by name" contains "$(e service create byname --image hello-img)" "http://byname.default.localhost:$port"

# kn's flags: -f FILE with flags on top, --env-file, labels and annotations on the service and
# the revision, a tag at create, a readiness probe and a pull policy; --force replaces.
cat >"$work/flags.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: flags
spec:
  template:
    spec:
      containers:
        - image: hello-img
          env: [{name: GREETING, value: FromFile}]
YAML
printf '# settings\nGREETING=FromEnvFile\nEXTRA=1\n' >"$work/app.env"
out=$(e service create flags -f "$work/flags.yaml" --env-file "$work/app.env" -l team=web \
  --label-revision stage=canary -a owner=me --annotation-service contact=ops --tag @latest=current \
  --probe-readiness http:::/ --probe-readiness-opts PeriodSeconds=1 --pull-policy never)
check "service create -f FILE with flags on top waits for Ready" contains "$out" "http://flags.default.localhost:$port"
check "--env-file overrides the file's environment" \
  test "$(curl -sS "http://flags.default.localhost:$port/")" = "FromEnvFile from flags (revision flags-00001)"
check "--tag at create gives the tag its own URL" \
  test "$(curl -sS "http://current-flags.default.localhost:$port/")" = "FromEnvFile from flags (revision flags-00001)"
svc=$(e service describe flags -o json)
rev=$(e revision describe flags-00001 -o json)
meta() { python3 -c 'import json,sys; m=json.loads(sys.argv[1])["metadata"]; print(sorted(m.get(sys.argv[2],{}).items()))' "$1" "$2"; }
check "-l and --annotation-service label and annotate the service" \
  test "$(meta "$svc" labels) $(meta "$svc" annotations)" = "[('team', 'web')] [('contact', 'ops'), ('owner', 'me')]"
check "-l, --label-revision and -a label and annotate the revision" \
  contains "$(meta "$rev" labels) $(meta "$rev" annotations)" "('stage', 'canary'), ('team', 'web')] [('owner', 'me')]"
check "--probe-readiness sets an HTTP probe with its options" contains "$(tr -d ' \n' <<<"$rev")" '"readinessProbe":{"httpGet":{"path":"/"},"periodSeconds":1}'
check "--pull-policy is stored as Kubernetes spells it" contains "$rev" '"imagePullPolicy": "Never"'
check "labels select revisions" contains "$(curl -s --unix-socket "$sock" "http://x/apis/serving.knative.dev/v1/namespaces/default/revisions?labelSelector=stage%3Dcanary")" '"name":"flags-00001"'
if out=$(e service create flags --image hello-img 2>&1); then fail "creating an existing service fails"; else
  check "creating an existing service says to update it or use --force" contains "$out" "replace it with --force"; fi
out=$(e service create flags --image hello-img -e GREETING=Forced --force)
check "--force replaces the service" contains "$out" "Service 'flags' replaced to latest revision 'flags-00002'"
check "...and the replacement serves" test "$(curl -sS "http://flags.default.localhost:$port/")" = "Forced from flags (revision flags-00002)"
for bad in "--probe-readiness exec:" "--pull-policy sometimes" "--env-file $work/nothing.env" "-l =x"; do
  # shellcheck disable=SC2086
  if out=$(e service update flags $bad 2>&1); then fail "service update $bad fails"; else
    check "service update $bad says what to fix" grep -qE "the command is missing|Always, Never and IfNotPresent|cannot read|KEY=VALUE" <<<"$out"; fi
done
check "...and changed nothing" test "$(e revision list -s flags | wc -l)" = 3
e service delete flags >/dev/null

# Image management: an image a revision uses stays
check "image list names the revisions using an image" contains "$(e image list)" "default/byname-00001"
if out=$(e image rm hello-img 2>&1); then fail "removing an image in use fails"; else
  check "removing an image in use names its revisions" contains "$out" "is used by revision(s)"; fi

# Bad input changes nothing
if out=$(e service create hello --image "oci:$work/image:latest" 2>&1); then fail "duplicate create fails"; else
  check "duplicate create says it exists" contains "$out" "already exists"; fi
if out=$(e service create Bad_Name --image hello-img 2>&1); then fail "invalid name fails"; else
  check "invalid name says what to fix" contains "$out" "must start with a lowercase letter"; fi
if out=$(e service describe ghost 2>&1); then fail "unknown service fails"; else
  check "unknown service says not found" contains "$out" 'service "ghost" not found'; fi
if out=$(e service create noimg --image no-such-image 2>&1); then fail "unknown image fails"; else
  check "unknown image says it is not in the store and what to do" contains "$out" "is not in the image store"
  check "... naming the registry reference it would be" contains "$out" "docker.io/library/no-such-image:latest"; fi
code=$(curl -s -o "$work/resp" -w '%{http_code}' --unix-socket "$sock" -X POST -d '{not json' http://x/apis/serving.knative.dev/v1/namespaces/default/services)
check "malformed JSON gets 400 with a BadRequest Status" test "$code" = 400 -a -n "$(grep -F '"reason":"BadRequest"' "$work/resp")"
code=$(curl -s -o "$work/resp" -w '%{http_code}' --unix-socket "$sock" -X POST \
  -d '{"metadata":{"name":"typed"},"spec":{"template":{"spec":{"containers":[{"image":["x"]}]}}}}' \
  http://x/apis/serving.knative.dev/v1/namespaces/default/services)
check "a field of the wrong type gets 422 Invalid naming it" test "$code" = 422 -a -n "$(grep -F '"field":"spec.template.spec.containers[0].image"' "$work/resp")"
check "...and says what is wrong" grep -qF 'containers[0].image: expected a string' "$work/resp"
names=$(e service list | awk 'NR>1 {print $1}' | sort | tr '\n' ' ')
check "only the two good services exist" test "$names" = "byname hello "

# A service that cannot become ready says why and exits non-zero
if out=$(e service create broken --image hello-img --cmd /no/such/app --wait-timeout 30 2>&1); then fail "broken service create fails"; else
  check "broken service create prints the reason" contains "$out" "/no/such/app"; fi
code=$(curl -s -o "$work/broken.txt" -w '%{http_code}' --max-time 10 "http://broken.default.localhost:$port/")
check "a request to a service that cannot start gets 503 at once, with the reason" \
  test "$code" = 503 -a -n "$(grep -F 'cannot serve' "$work/broken.txt")"
e service delete broken >/dev/null

# Deleting a service whose instance is still starting stops that instance too
# (it never listens on $PORT, so it stays in its readiness probe; it exits on SIGTERM)
e service create slow --image hello-img --cmd /bin/sh --arg -c --arg 'trap "exit 0" TERM; sleep 1000 & wait' --no-wait >/dev/null
sleep 0.3
e service delete slow >/dev/null
check "a service deleted while starting leaves no container" test -z "$(runc --root "$data/runc" list | awk '$1 ~ /^slow-/')"

# An instance that dies is replaced, after a backoff
victim=$(runc --root "$data/runc" list | awk '$1 ~ /^hello-00001-/ && $3 == "running" {print $2}')
kill -KILL "$victim"
served=""
for _ in $(seq 100); do
  served=$(curl -s "$url/" || true)
  [ "$served" = "Howdy from hello (revision hello-00001)" ] && kill -0 "$victim" 2>/dev/null || [ "$served" != "Howdy from hello (revision hello-00001)" ] || break
  sleep 0.1
done
check "a killed instance is replaced and the service serves again" test "$served" = "Howdy from hello (revision hello-00001)"
check "the replacement is a new process" test "$(runc --root "$data/runc" list | awk '$1 ~ /^hello-00001-/ && $3 == "running" {print $2}')" != "$victim"
check "the crash is recorded with its exit code" contains "$(cat "$work/daemon.log")" "exited with code 137"

# Restart: the same services are served again, by the same container
pid_before=$(runc --root "$data/runc" state "$(running_ids | head -1)" | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
if stop_daemon; then pass "SIGTERM stops elafrosd with exit status 0"; else fail "SIGTERM stops elafrosd with exit status 0"; fi
start_daemon
check "after a restart the service is served again" test "$(curl -sS "$url/")" = "Howdy from hello (revision hello-00001)"
check "after a restart the running container was adopted, not restarted" \
  contains "$(runc --root "$data/runc" list)" "$pid_before"
check "after a restart describe still shows Ready" contains "$(e service list)" "True"

# Delete removes container, overlay, mounts and bundle
e service delete byname >/dev/null
out=$(e service delete hello)
check "service delete confirms" contains "$out" "Service 'hello' successfully deleted"
check "no containers remain" test -z "$(runc --root "$data/runc" list -q)"
check "no mounts remain" test -z "$(grep -F "$work" /proc/mounts || true)"
check "no instance bundles remain" test -z "$(ls -A "$data/instances")"
check "a deleted service's host gets 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$url/")" = 404
if out=$(e service delete hello 2>&1); then fail "deleting twice fails"; else check "deleting twice says not found" contains "$out" "not found"; fi

# With no revision left, prune removes every image and frees their blobs and root filesystems.
# (Files younger than a minute are spared, for imports not yet recorded: age them.)
find "$data/images" -mindepth 1 -exec touch -h -d '2 hours ago' {} +
out=$(e image prune)
check "image prune removes unused images" contains "$out" "Removed image hello-img"
check "image prune says how much it freed" test -z "$(grep -F 'Freed 0 B' <<<"$out" || true)" -a -n "$(grep -F 'Freed ' <<<"$out")"
check "no blobs or root filesystems remain" \
  test -z "$(ls -A "$data/images/blobs/sha256")" -a -z "$(ls -A "$data/images/rootfs")"
check "image list is empty" test "$(e image list | wc -l)" = 1
if out=$(e image rm nothing-here 2>&1); then fail "removing an unknown image fails"; else
  check "removing an unknown image says so" contains "$out" 'image "nothing-here" not found'; fi

if stop_daemon; then pass "final SIGTERM exits 0"; else fail "final SIGTERM exits 0"; fi
finish
