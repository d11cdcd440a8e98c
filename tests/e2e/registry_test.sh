#!/usr/bin/env bash
# End-to-end pulls from real registries: Debian's docker-registry on loopback ports (plain, with
# htpasswd Basic auth, with token auth against a token service this test starts, and with TLS),
# images pushed with skopeo in OCI and Docker v2s2 formats, pulled and deployed through elafros.
# A small front server redirects blobs elsewhere, corrupts them or delays them; a silent one
# never answers.
#   tests/e2e/registry_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

helper="$src/tests/e2e/registry_helper.py"
pids=()
stop_servers() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=()
}
netns=""
remove_netns() { if [ -n "$netns" ]; then ip netns del "$netns" 2>/dev/null || true; fi; }
trap 'stop_servers; remove_netns; cleanup' EXIT

# start_registry NAME EXTRA_YAML: a docker-registry on a free loopback port; sets reg_port.
start_registry() {
  local name=$1 extra=$2 candidate scheme=http
  reg_port=""
  grep -q "tls:" <<<"$extra" && scheme=https
  for _ in $(seq 20); do
    candidate=$((20000 + RANDOM % 20000))
    cat >"$work/$name.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/$name
$extra
http:
  addr: 127.0.0.1:$candidate
YAML
    if grep -q "tls:" <<<"$extra"; then
      printf '  tls:\n    certificate: %s\n    key: %s\n' "$work/tls.crt" "$work/tls.key" >>"$work/$name.yml"
    fi
    docker-registry serve "$work/$name.yml" >>"$work/$name.log" 2>&1 &
    local pid=$!
    for _ in $(seq 50); do
      code=$(curl -sk -o /dev/null -w '%{http_code}' "$scheme://127.0.0.1:$candidate/v2/" || true)
      if [ "$code" = 200 ] || [ "$code" = 401 ]; then reg_port=$candidate; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if [ -n "$reg_port" ]; then pids+=("$pid"); return 0; fi
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  done
  echo "docker-registry $name did not start:"; cat "$work/$name.log"; exit 1
}

# A registry that is not on loopback: in a network namespace of this test, behind a veth pair.
# It speaks verified TLS on :5000 (its CA goes into a certs.d directory), and plain HTTP on :5001
# (listed as insecure) and :5002 (not listed).
start_remote_registries() {
  netns=elafros-reg-$$
  local a=elr$$a b=elr$$b sub=$((RANDOM % 250 + 1))
  ip netns add "$netns"
  ip link add "$a" type veth peer name "$b"
  ip link set "$b" netns "$netns"
  ip addr add "10.213.$sub.1/30" dev "$a"
  ip link set "$a" up
  ip netns exec "$netns" ip addr add "10.213.$sub.2/30" dev "$b"
  ip netns exec "$netns" ip link set "$b" up
  ip netns exec "$netns" ip link set lo up
  remote=10.213.$sub.2
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/remote.key" -out "$work/remote.crt" \
    -days 1 -subj "/CN=$remote" -addext "subjectAltName=IP:$remote" 2>/dev/null
  for p in 5000 5001 5002; do
    cat >"$work/remote$p.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/remote
http:
  addr: $remote:$p
YAML
    [ "$p" = 5000 ] && printf '  tls:\n    certificate: %s\n    key: %s\n' "$work/remote.crt" "$work/remote.key" >>"$work/remote$p.yml"
    ip netns exec "$netns" docker-registry serve "$work/remote$p.yml" >>"$work/remote.log" 2>&1 &
    pids+=("$!")
  done
  for _ in $(seq 100); do
    curl -sf --cacert "$work/remote.crt" "https://$remote:5000/v2/" >/dev/null &&
      curl -sf "http://$remote:5001/v2/" >/dev/null && curl -sf "http://$remote:5002/v2/" >/dev/null && return 0
    sleep 0.1
  done
  echo "the registries in $netns did not start:"; cat "$work/remote.log"; exit 1
}

# start_helper NAME ARGS...: registry_helper.py on a free loopback port; sets helper_port.
start_helper() {
  local name=$1; shift
  python3 "$helper" "$@" --port-file "$work/$name.port" >>"$work/$name.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do [ -s "$work/$name.port" ] && break; sleep 0.05; done
  helper_port=$(cat "$work/$name.port")
}

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/token.key" -out "$work/token.crt" \
  -days 1 -subj /CN=elafros-test-token 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
htpasswd -Bbn alice 'pw-Alice-1' >"$work/htpasswd" 2>/dev/null

start_registry plain ""
plain="127.0.0.1:$reg_port"
start_registry basic "auth:
  htpasswd:
    realm: elafros-test
    path: $work/htpasswd"
basic="127.0.0.1:$reg_port"
start_helper token token --key "$work/token.key" --cert "$work/token.crt" --issuer elafros-test \
  --service elafros-registry --user tok --password 'pw-Tok-2'
token_port=$helper_port
start_registry token "auth:
  token:
    realm: http://127.0.0.1:$token_port/token
    service: elafros-registry
    issuer: elafros-test
    rootcertbundle: $work/token.crt"
tokreg="127.0.0.1:$reg_port"
start_registry tls "tls: yes"
tlsreg="127.0.0.1:$reg_port"
start_helper front front --upstream "$plain" --delay 0.4
front="127.0.0.1:$helper_port"
start_helper silent silent
silent="127.0.0.1:$helper_port"

push() { skopeo copy -q --dest-tls-verify=false "$@"; }
push "oci:$work/image:latest" "docker://$plain/team/hello:oci"
push --format v2s2 "oci:$work/image:latest" "docker://$plain/team/hello:v2s2"
push --dest-creds 'alice:pw-Alice-1' "oci:$work/image:latest" "docker://$basic/team/hello:v1"
push --dest-creds 'tok:pw-Tok-2' "oci:$work/image:latest" "docker://$tokreg/public/hello:v1"
push --dest-creds 'tok:pw-Tok-2' "oci:$work/image:latest" "docker://$tokreg/private/hello:v1"
push "oci:$work/image:latest" "docker://$tlsreg/team/hello:v1"
# Multi-arch images: an index listing this image for arm64 and amd64, and one without amd64.
cp -a "$work/image" "$work/multi"
python3 "$src/tests/e2e/make_index.py" "$work/multi" latest multi linux/arm64 linux/amd64 >/dev/null
python3 "$src/tests/e2e/make_index.py" "$work/multi" latest armonly linux/arm64 linux/s390x >/dev/null
push --all "oci:$work/multi:multi" "docker://$plain/team/multi:v1"
push --all "oci:$work/multi:armonly" "docker://$plain/team/multi:armonly"
start_remote_registries
push "oci:$work/image:latest" "docker://$remote:5000/team/hello:v1"  # one storage for all three

mkdir -p "$work/certs.d"
cat >"$work/daemon.yml" <<YAML
registry-timeout-seconds: 1
registry-certs-dir: $work/certs.d
insecure-registries: ["$remote:5001"]
YAML
daemon_args=(--config "$work/daemon.yml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
blobs="$data/images/blobs/sha256"

# Integrity first, while the store is empty: a corrupt blob fails the pull and leaves nothing.
if out=$(e image pull "$front/corrupt/hello:oci" 2>&1); then fail "a corrupt blob fails the pull"; else
  check "a corrupt blob is refused, naming the registry and the reference" \
    contains "$out" "registry $front sent config blob"
  check "...and saying what the content hashes to" contains "$out" "of $front/corrupt/hello:oci with content that hashes to sha256:"; fi
check "a failed pull leaves no blob behind" test -z "$(ls -A "$blobs")"
check "a failed pull leaves no scratch files behind" test -z "$(ls -A "$data/images/tmp")"

# Two pulls of one image at once are coalesced into one download. The front delays each blob,
# then redirects it (307) to the registry that holds it.
e image pull "$front/slow/hello:oci" >"$work/pull1.out" 2>&1 &
p1=$!
sleep 0.3
e image pull "$front/slow/hello:oci" >"$work/pull2.out" 2>&1 &
p2=$!
r1=0; r2=0; wait "$p1" || r1=$?; wait "$p2" || r2=$?
check "two pulls of one image at once both succeed" test "$r1$r2" = 00
check "the second joined the first instead of downloading again" grep -q "joining the import of docker://$front/slow/hello:oci" "$work/daemon.log"
requests=$(grep -c '"GET /v2/slow/hello/blobs/' "$work/front.log" || true)
expected=$(skopeo inspect --raw --tls-verify=false "docker://$plain/team/hello:oci" |
  python3 -c 'import json, sys; print(1 + len(json.load(sys.stdin)["layers"]))')  # config + layers
check "each blob was fetched once ($requests requests for $expected blobs)" test "$requests" -eq "$expected"
check "blob redirects were followed" grep -q '"GET /v2/slow/hello/blobs/sha256:[0-9a-f]* HTTP/1.1" 307' "$work/front.log"
check "progress reports each layer's download" grep -q "layer  downloaded" "$work/pull1.out"
check "the joined pull shows the same progress" grep -q "layer  downloaded" "$work/pull2.out"
out=$(e image pull "$front/redirect/hello:oci")
check "blobs already stored are not downloaded again" contains "$out" "layer  already stored"
out=$(script -qec "$elafros_bin --socket $sock image pull $plain/team/hello:v2s2" /dev/null)
check "a terminal gets progress redrawn in place" contains "$out" $'\x1b[2K'

# An image index resolves to linux and this machine's architecture.
arch=$(dpkg --print-architecture)
out=$(e image pull "$plain/team/multi:v1")
check "an image index resolves to linux/$arch and pulls" contains "$out" "Image '$plain/team/multi:v1' pulled"
check "...to the very manifest listed for it" test "$(e image list -o json | python3 -c '
import json, sys
items = {i["name"]: i["digest"] for i in json.load(sys.stdin)["items"]}
print(items.get(sys.argv[1]) == items.get(sys.argv[2]))' "$plain/team/multi:v1" "$front/redirect/hello:oci")" = True
if out=$(e image pull "$plain/team/multi:armonly" 2>&1); then fail "an index without this architecture fails"; else
  check "an index without this architecture says so" contains "$out" "has no image for linux/$arch"; fi

# Deploying by bare name, from OCI and v2s2 manifests.
out=$(e image import "docker://$plain/team/hello:oci")
check "an OCI image pulls with image import" contains "$out" "Image '$plain/team/hello:oci' pulled: sha256:"
out=$(e service create fromreg --image "$plain/team/hello:v2s2")
check "a Docker v2s2 image pulls by its bare name and deploys" \
  test "$(curl -sS "http://fromreg.default.localhost:$port/")" = "Hello from fromreg (revision fromreg-00001)"
check "the pulled image is listed under its reference" contains "$(e image list)" "$plain/team/hello:v2s2"

# Pull policies. Never: only a stored image; Always: pulled again for every new revision, so a
# moved tag is followed; IfNotPresent (the default) keeps using what was pulled (until a pull,
# by anyone, moves the stored name, as a node's image cache does).
push "oci:$work/image:latest" "docker://$plain/team/hello:moving"
if out=$(e service create never --image "$plain/team/hello:moving" --pull-policy Never 2>&1); then
  fail "--pull-policy Never with an image not stored fails"; else
  check "--pull-policy Never with an image not stored says to pull it first" contains "$out" "imagePullPolicy is Never; pull it first"; fi
check "...and pulls nothing" test -z "$(e image list | grep -F "$plain/team/hello:moving" || true)"
e service create always --image "$plain/team/hello:moving" --pull-policy Always >/dev/null
e service create cached --image "$plain/team/hello:moving" >/dev/null
pinned() { e revision describe "$1" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["containerStatuses"][0]["imageDigest"])'; }
first=$(pinned always-00001)
umoci config --image "$work/image:latest" --tag moved --config.env MOVED=1
push "oci:$work/image:moved" "docker://$plain/team/hello:moving"
e service update cached -e V=2 >/dev/null
e service update always -e V=2 >/dev/null
check "--pull-policy Always follows a moved tag at the next revision" test "$(pinned always-00002)" != "$first"
check "...while the default keeps the image it pulled" test "$(pinned cached-00002)" = "$first"
check "...to the manifest the tag names now" \
  test "sha256:$(skopeo inspect --tls-verify=false --raw "docker://$plain/team/hello:moving" | sha256sum | cut -c1-64)" = "$(pinned always-00002)"
check "a pulled image's source is its registry reference" contains "$(e image list)" "docker://$plain/team/hello:moving"
e service delete always >/dev/null
e service delete cached >/dev/null

# TLS on a loopback registry (not verified for loopback, as Docker treats localhost).
out=$(e image pull "$tlsreg/team/hello:v1")
check "a TLS registry pulls" contains "$out" "Image '$tlsreg/team/hello:v1' pulled"

# A registry off loopback: TLS verified against the system CAs and certs.d; plain HTTP only when
# listed in insecure-registries.
if out=$(e image pull "$remote:5000/team/hello:v1" 2>&1); then fail "an unknown CA is refused"; else
  check "a certificate from an unknown CA is refused" contains "$out" "certificate verify failed"
  check "...saying where its CA goes" contains "$out" "$work/certs.d/$remote:5000/ca.crt"; fi
mkdir -p "$work/certs.d/$remote:5000"
cp "$work/remote.crt" "$work/certs.d/$remote:5000/ca.crt"
out=$(e image pull "$remote:5000/team/hello:v1")
check "with its CA in certs.d, the TLS registry pulls" contains "$out" "pulled"
out=$(e image pull "$remote:5001/team/hello:v1")
check "a plain-HTTP registry listed as insecure pulls" contains "$out" "pulled"
if out=$(e image pull "$remote:5002/team/hello:v1" 2>&1); then fail "plain HTTP off loopback is refused"; else
  check "a plain-HTTP registry not listed as insecure is refused" contains "$out" "TLS handshake with registry $remote:5002 failed"
  check "...saying how to allow it" contains "$out" "insecure-registries"; fi

# Basic auth: refused without a login, with a wrong one; works after 'registry login'.
if out=$(e image pull "$basic/team/hello:v1" 2>&1); then fail "a Basic-auth registry refuses anonymous pulls"; else
  check "an anonymous pull from a Basic-auth registry says to log in" contains "$out" "registry $basic needs a login (401)"
  check "...and how" contains "$out" "elafros registry login $basic"; fi
# imagePullSecrets: a kubernetes.io/dockerconfigjson Secret's login pulls a revision's image,
# without becoming the daemon's login.
pull_yaml() {  # NAME SECRET
  printf 'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  template:\n    spec:\n      imagePullSecrets: [{name: %s}]\n      containers:\n        - image: %s\n' "$1" "$2" "$basic/team/hello:v1"
}
if out=$(pull_yaml nosecret nothing | e apply -f - 2>&1); then fail "an imagePullSecret that does not exist is refused"; else
  check "an imagePullSecret that does not exist is refused saying how to make it" \
    contains "$out" "imagePullSecrets[0]: secret \"nothing\" not found in namespace \"default\"; create it ('elafros secret create docker-registry nothing"; fi
out=$(echo 'pw-Alice-1' | e secret create docker-registry regcred --docker-server "$basic" --docker-username alice --docker-password-stdin)
check "secret create docker-registry makes a kubernetes.io/dockerconfigjson Secret" \
  contains "$(e secret list)" "regcred   kubernetes.io/dockerconfigjson"
check "a service whose imagePullSecrets hold the login pulls its image and becomes Ready" \
  eval 'pull_yaml secretpull regcred | e apply -f - >/dev/null'
check "...the image is stored" contains "$(e image list)" "$basic/team/hello:v1"
check "...and the login was not kept as the daemon's" test ! -e "$data/registries/auth.json"
e service delete secretpull >/dev/null
if out=$(echo 'wrong' | e registry login "$basic" --username alice --password-stdin 2>&1); then fail "a wrong password is refused"; else
  check "a wrong password is refused at login" contains "$out" "refused the login of \"alice\""; fi
check "a refused login is not stored" test ! -e "$data/registries/auth.json"
out=$(echo 'pw-Alice-1' | e registry login "$basic" --username alice --password-stdin)
check "registry login succeeds" contains "$out" "Login to $basic as alice succeeded"
check "the login is stored mode 0600" test "$(stat -c %a "$data/registries/auth.json")" = 600
check "registry list shows the user, not the password" test "$(e registry list | grep -c "$basic *alice")" = 1
out=$(e image pull "$basic/team/hello:v1")
check "a Basic-auth pull works after login" contains "$out" "pulled"
if out=$(e registry login "$basic" --username alice 2>&1 </dev/null); then fail "login needs --password-stdin"; else
  check "login without --password-stdin says how" contains "$out" "--password-stdin"; fi

# Token auth (Bearer): anonymous tokens for public repositories, a login for private ones.
out=$(e image pull "$tokreg/public/hello:v1")
check "an anonymous Bearer-token pull works" contains "$out" "pulled"
if out=$(e image pull "$tokreg/private/hello:v1" 2>&1); then fail "a private repository needs a login"; else
  check "a private repository without a login says to log in" contains "$out" "needs a login (401)"; fi
if out=$(echo 'nope' | e registry login "$tokreg" -u tok --password-stdin 2>&1); then fail "a wrong token-service password is refused"; else
  check "a wrong password is refused by the token service" contains "$out" "refused the login of \"tok\""; fi
if out=$(echo 'any' | e registry login "$tokreg" -u blocked --password-stdin 2>&1); then fail "a 403 is refused"; else
  check "a 403 says access is denied and whose rights to check" contains "$out" "registry $tokreg denied access (403)"
  check "...naming the account" contains "$out" 'the account "blocked" may lack pull rights'; fi
echo 'pw-Tok-2' | e registry login "$tokreg" -u tok --password-stdin >/dev/null
out=$(e image pull "$tokreg/private/hello:v1")
check "a Bearer-token pull with a login works" contains "$out" "pulled"

# Pushes (the OCI distribution push flow), read back by skopeo with the same digest.
digest_of() { e image list -o json | python3 -c 'import json, sys; print([i["digest"] for i in json.load(sys.stdin)["items"] if i["name"] == sys.argv[1]][0])' "$1"; }
remote_digest() { skopeo inspect --tls-verify=false "$@" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Digest"])'; }
e image import "oci:$work/image:latest" --name pushme:latest >/dev/null
mine=$(digest_of pushme:latest)
out=$(e image push pushme:latest "$plain/pushed/hello:v1")
check "image push to a registry without auth" contains "$out" "Image 'pushme:latest' pushed to $plain/pushed/hello:v1: $mine"
check "...skopeo inspect finds the same digest there" test "$(remote_digest "docker://$plain/pushed/hello:v1")" = "$mine"
skopeo copy -q --src-tls-verify=false "docker://$plain/pushed/hello:v1" "oci:$work/copied:v1"
check "...and skopeo copy reads it back whole, with that digest" test "$(skopeo inspect "oci:$work/copied:v1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Digest"])')" = "$mine"
check "pushing again finds every blob there" test "$(e image push pushme:latest "$plain/pushed/hello:v1" | grep -c "already in the registry")" -ge 2
check "pushing to another repository mounts the blobs instead of uploading them" contains "$(e image push pushme:latest "$plain/other/hello:v1")" "mounted from another repository"
out=$(e image push pushme:latest "$basic/team/pushed:v1")
check "image push with the stored Basic login" contains "$out" "pushed to $basic/team/pushed:v1: $mine"
check "...skopeo with the same credentials finds the same digest" test "$(remote_digest --creds 'alice:pw-Alice-1' "docker://$basic/team/pushed:v1")" = "$mine"
"$src/examples/buildpacks/build-builder.sh" "$work/builder" latest >/dev/null
e image import "oci:$work/builder:latest" --name big:latest >/dev/null
out=$(e image push big:latest "$plain/big/builder:v1")
check "a blob bigger than one chunk is pushed in PATCHes" test "$(remote_digest "docker://$plain/big/builder:v1")" = "$(digest_of big:latest)"
check "...(it was: the registry saw PATCHes)" grep -q "PATCH /v2/big/builder/blobs/uploads/" "$work/plain.log"
if out=$(e image push nosuch:latest "$plain/x/y:v1" 2>&1); then fail "pushing a missing image fails"; else
  check "pushing a missing image says so" contains "$out" 'image "nosuch:latest" is not in the image store'; fi
if out=$(e image push pushme:latest "$plain/x/y@sha256:$(printf %064d 0)" 2>&1); then fail "pushing to a digest fails"; else
  check "pushing to a digest says to give a tag" contains "$out" "push to a tag, not a digest"; fi
e build create pushed --step-image pushme:latest --script 'echo built >/workspace/out.txt' \
  --output-image pushed:latest --push "$plain/built/app:v1" -f >"$work/build-push.out" 2>&1
check "a Build with spec.output.push pushes its image" contains "$(cat "$work/build-push.out")" "pushed to $plain/built/app:v1"
check "...with the digest it stored" test "$(remote_digest "docker://$plain/built/app:v1")" = "$(digest_of pushed:latest)"

# Logins survive a restart; logout removes them.
stop_daemon >/dev/null || true
start_daemon
check "logins survive a daemon restart" test "$(e registry list | grep -c alice)" = 1
out=$(e registry logout "$basic")
check "registry logout removes the login" contains "$out" "Removed the login for $basic"
if e image pull "$basic/team/hello:v1" >/dev/null 2>&1; then fail "after logout, pulls are anonymous again"; else
  pass "after logout, pulls are anonymous again"; fi
check "no password or token is logged" bash -c "! grep -qE 'pw-Alice-1|pw-Tok-2|Bearer |$(printf alice:pw-Alice-1 | base64)' '$work/daemon.log'"

# Failures name the registry and the reference.
if out=$(e image import "docker://$plain/team/hello:nope" 2>&1); then fail "an unknown tag fails"; else
  check "an unknown tag names the registry and the reference" contains "$out" "$plain/team/hello:nope not found"; fi
if out=$(e image pull "$plain/team/nothere:v1" 2>&1); then fail "an unknown repository fails"; else
  check "an unknown repository names it" contains "$out" "$plain/team/nothere:v1 not found"; fi
if out=$(e image import "docker://$plain/team/Bad:tag" 2>&1); then fail "a malformed reference fails"; else
  check "a malformed reference says what is wrong" contains "$out" "lowercase"; fi
start=$(date +%s)
if out=$(timeout 30 "$elafros_bin" --socket "$sock" image pull "$silent/team/hello:v1" 2>&1); then fail "a silent registry times out"; else
  check "a silent registry times out with the configured timeout" contains "$out" "no answer within 1 s"; fi
check "...promptly" test $(( $(date +%s) - start )) -le 10
stop_servers
if out=$(e image pull "$plain/team/hello:oci2" 2>&1); then fail "an unreachable registry fails"; else
  check "an unreachable registry is named" contains "$out" "registry $plain cannot be reached"; fi
check "failed pulls leave nothing in the image store's scratch space" test -z "$(ls -A "$data/images/tmp")"

e service delete fromreg >/dev/null
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
