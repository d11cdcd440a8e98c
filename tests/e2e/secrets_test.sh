#!/usr/bin/env bash
# End-to-end for Secrets and ConfigMaps, against a real elafrosd and runc: values reach an
# instance as environment (valueFrom, envFrom) and as read-only files (secret and configMap
# volumes, items, modes) on a tmpfs, and an emptyDir; nothing of a Secret is in the database or
# its WAL in plaintext (or base64); describe hides values; a missing key keeps the revision from
# Ready with a reason naming it, until the key exists; rotate-key reseals; changing a Secret
# restarts nothing.
#   tests/e2e/secrets_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" v1 >/dev/null
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')

marker=P1-plaintext-MARK-$$
printf 'a=1\nb=2\n' >"$work/app.conf"
check "secret create generic" contains "$(e secret create generic db --from-literal "password=$marker" --from-literal user=admin)" "Secret 'db' created"
check "configmap create, from a literal and a file" contains "$(e configmap create conf --from-literal greeting=hi-from-cm --from-file "app.conf=$work/app.conf")" "ConfigMap 'conf' created"
check "secret list shows its keys' count" grep -qE "^db +Opaque +2 " <<<"$(e secret list)"
out=$(e secret describe db)
check "secret describe shows the keys and sizes" contains "$out" "password:  ${#marker} bytes"
check "...never the values" bash -c "! grep -qF '$marker' <<<'$out'"
check "configmap describe shows its data" contains "$(e configmap describe conf)" "hi-from-cm"

e service create hello --image "oci:$work/image:v1" \
  --env-value-from GREETING=cm:conf:greeting --env-value-from PASS=secret:db:password \
  --env-from secret:db --mount /etc/db=secret:db --mount /etc/conf=cm:conf --mount /scratch=ed:scratch >/dev/null
check "a value from a ConfigMap reaches the app" test "$(curl -s "http://hello.default.localhost:$port/")" = "hi-from-cm from hello (revision hello-00001)"
pid=$(e instance list -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["pid"])')
environ=$(tr '\0' '\n' <"/proc/$pid/environ")
check "valueFrom secretKeyRef sets the variable" grep -qx "PASS=$marker" <<<"$environ"
check "envFrom sets every key" grep -qx "user=admin" <<<"$environ"
check "a secret volume holds its keys as files" test "$(nsenter -t "$pid" -m cat /etc/db/password)" = "$marker"
check "a configMap volume holds a file's content" test "$(nsenter -t "$pid" -m cat /etc/conf/app.conf)" = "$(cat "$work/app.conf")"
check "secret and configMap volumes are read-only" bash -c "! nsenter -t $pid -m sh -c 'echo x >/etc/conf/new' 2>/dev/null"
check "an emptyDir is writable" nsenter -t "$pid" -m sh -c 'echo x >/scratch/new'
check "the secret's files are on a tmpfs" grep -qE "^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /etc/db ro,.* - tmpfs " "/proc/$pid/mountinfo"

b64=$(printf '%s' "$marker" | base64 -w0)
check "the database and its WAL hold no secret in plaintext or base64" \
  bash -c "! grep -qaF -e '$marker' -e '$b64' '$data/elafros.db' '$data/elafros.db-wal'"

# A missing key keeps the revision from Ready, naming it; adding the key lets it start.
e service create broken --image "oci:$work/image:v1" --env-value-from X=secret:db:token --no-wait >/dev/null
reason() { e service describe broken -o json | python3 -c '
import json, sys
o = json.load(sys.stdin)
c = [c for c in o.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
print(c[0].get("reason", "") + ": " + c[0].get("message", "") if c else "")'; }
named() { contains "$(reason)" "couldn't find key token in Secret default/db"; }
check "a missing key fails the revision with CreateContainerConfigError, naming it" wait_until 20 named
check "...the revision's reason is CreateContainerConfigError" contains "$(curl -s --unix-socket "$sock" http://x/apis/serving.knative.dev/v1/namespaces/default/revisions/broken-00001)" '"reason":"CreateContainerConfigError"'
e apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: "$marker", user: admin, token: t0k}
YAML
ready() { test "$(e service describe broken -o json | python3 -c 'import json,sys; o=json.load(sys.stdin); print([c["status"] for c in o["status"]["conditions"] if c["type"]=="Ready"][0])')" = True; }
check "...and once the key exists, it becomes Ready" wait_until 30 ready
out=$(e service create nosecret --image "oci:$work/image:v1" --env-from secret:nosuch --wait-timeout 20 2>&1 || true)
check "a missing secret is named" contains "$out" 'secret "nosuch" not found in namespace "default"'

# Changing a Secret restarts nothing (values are read when an instance starts).
check "the instance kept running through the Secret's change" test "$(e instance list -o json | python3 -c 'import json,sys; print(" ".join(str(i["pid"]) for i in json.load(sys.stdin)["items"] if i["service"]=="hello"))')" = "$pid"

old_key=$(grep -v '^#' "$data/keys/secrets.keys" | cut -d' ' -f1)
check "system rotate-key reseals every Secret" contains "$(e system rotate-key)" "1 resealed"
check "...under a new key, the old one dropped" test "$(grep -v '^#' "$data/keys/secrets.keys" | cut -d' ' -f1)" != "$old_key"
check "...and the Secret still reads" contains "$(e secret describe db)" "token:  3 bytes"
check "the key file is 0600" test "$(stat -c %a "$data/keys/secrets.keys")" = 600

out=$(curl -s --unix-socket "$sock" -X POST -H 'Content-Type: application/json' -d '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"bad"},"data":{"k":"not base64!"}}' http://x/api/v1/namespaces/default/secrets)
check "a Secret value that is not base64 is refused, naming the key" contains "$out" "data.k: is not base64"
out=$(e service create badref --image "oci:$work/image:v1" --mount /x=nosuch 2>&1 || true)
check "a mount of a volume that does not exist is refused, naming the field" contains "$out" 'volumeMounts[0].name: no volume is named "nosuch"'

e service delete hello >/dev/null
gone() { ! grep -q "$data/instances/hello-" /proc/mounts; }
check "deleting the service unmounts its volumes" wait_until 10 gone
finish
