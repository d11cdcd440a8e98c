#!/usr/bin/env bash
# End-to-end for identities and RBAC, against a real elafrosd: a matrix of the built-in roles ×
# verbs × kinds, over the unix socket (the peer's uid, bound as uid:N) and over HTTPS (Bearer
# tokens), every answer checked against what the role means; kubectl auth can-i agreeing with
# it; escalation refused; bad roles and bindings refused naming the field; tokens that are
# expired, revoked, malformed or wrong refused; the token's secret nowhere on disk or in logs.
#   tests/e2e/rbac_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

printf 'metrics-anonymous: false\n' >"$work/daemon.yml"
daemon_args=(--api-listen 127.0.0.1:0 --config "$work/daemon.yml")
chmod 0711 "$work"  # other uids reach the socket; what they may do is RBAC's to say
start_daemon
e kubeconfig >"$work/kubeconfig"
api=$(sed -n 's/^ *server: *//p' "$work/kubeconfig" | tr -d '"')
sed -n 's/^ *certificate-authority-data: *//p' "$work/kubeconfig" | tr -d '"' | base64 -d >"$work/ca.crt"
admin_token=$(cat "$data/tokens/admin.token")
e namespace create team >/dev/null

roles=(view edit admin auditor billing none cluster-admin)
declare -A uid=([view]=1001 [edit]=1002 [admin]=1003 [auditor]=1004 [billing]=1005 [none]=1006 [cluster-admin]=0)
declare -A token=([cluster-admin]=$admin_token)
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
for r in view edit admin; do
  token[$r]=$(e token create "tok-$r" --role "$r" -n team -o json | json_field token)
  e apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: uid-$r, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $r}
subjects: [{kind: User, name: "uid:${uid[$r]}"}]
YAML
done
for r in auditor billing; do
  token[$r]=$(e token create "tok-$r" --cluster-role "$r" -o json | json_field token)
  e apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: uid-$r}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: $r}
subjects: [{kind: User, name: "uid:${uid[$r]}"}]
YAML
done
token[none]=$(e token create tok-none -o json | json_field token)
check "tokens look like elf_ACCESSOR_SECRET" grep -qE '^elf_[0-9A-Za-z]{16}_[0-9A-Za-z]{32}$' <<<"${token[edit]}"

S=/apis/serving.knative.dev/v1/namespaces/team/services
svc='{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"s1"},"spec":{"template":{"spec":{"containers":[{"image":"nosuch:latest"}]}}}}'
broker='{"apiVersion":"eventing.knative.dev/v1","kind":"Broker","metadata":{"name":"b1"}}'
rb='{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rb1"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},"subjects":[{"kind":"User","name":"someone"}]}'
ns='{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"n1"}}'
# what|METHOD|path|body|the roles that may (everyone else gets 403)
matrix=(
  "list services|GET|$S||view edit admin auditor cluster-admin"
  "get a service|GET|$S/nosuch||view edit admin auditor cluster-admin"
  "create a service|POST|$S?dryRun=All|$svc|edit admin cluster-admin"
  "delete a service|DELETE|$S/nosuch||edit admin cluster-admin"
  "read a service's logs|GET|/apis/elafros.dev/v1/namespaces/team/services/nosuch/logs||view edit admin auditor cluster-admin"
  "list brokers|GET|/apis/eventing.knative.dev/v1/namespaces/team/brokers||view edit admin auditor cluster-admin"
  "create a broker|POST|/apis/eventing.knative.dev/v1/namespaces/team/brokers?dryRun=All|$broker|edit admin cluster-admin"
  "list builds|GET|/apis/build.knative.dev/v1alpha1/namespaces/team/builds||view edit admin auditor cluster-admin"
  "delete a build|DELETE|/apis/build.knative.dev/v1alpha1/namespaces/team/builds/nosuch||edit admin cluster-admin"
  "list rolebindings|GET|/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings||admin auditor cluster-admin"
  "create a rolebinding|POST|/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings?dryRun=All|$rb|admin cluster-admin"
  "list namespaces|GET|/api/v1/namespaces||auditor billing cluster-admin"
  "create a namespace|POST|/api/v1/namespaces?dryRun=All|$ns|cluster-admin"
  "list images|GET|/apis/elafros.dev/v1/images||auditor cluster-admin"
  "read the daemon's status|GET|/apis/elafros.dev/v1/status||auditor cluster-admin"
  "list tokens|GET|/apis/elafros.dev/v1/tokens||auditor cluster-admin"
  "read usage|GET|/apis/elafros.dev/v1/usage||auditor billing cluster-admin"
  "read /metrics|GET|/metrics||auditor billing cluster-admin"
  "stop all instances|POST|/apis/elafros.dev/v1/system/stop-all|{}|cluster-admin"
  "read the audit log|GET|/apis/elafros.dev/v1/audit?since=1m||auditor cluster-admin"
  "verify the audit log|GET|/apis/elafros.dev/v1/audit/verify||auditor cluster-admin"
)
as_uid() { if [ "$1" -eq 0 ]; then shift; "$@"; else local u=$1; shift; setpriv --reuid "$u" --regid "$u" --clear-groups "$@"; fi; }
code() {  # code TRANSPORT ROLE METHOD PATH BODY: the HTTP status
  local args=(-s -o /dev/null -w '%{http_code}' -X "$3" -H 'Content-Type: application/json')
  [ -n "$5" ] && args+=(--data "$5")
  if [ "$1" = socket ]; then
    as_uid "${uid[$2]}" curl "${args[@]}" --unix-socket "$sock" "http://elafrosd$4"
  else
    curl "${args[@]}" --cacert "$work/ca.crt" -H "Authorization: Bearer ${token[$2]}" "$api$4"
  fi
}
unexpected=0 answers=0
for transport in socket https; do
  for cell in "${matrix[@]}"; do
    IFS='|' read -r what method path body allowed <<<"$cell"
    for r in "${roles[@]}"; do
      got=$(code "$transport" "$r" "$method" "$path" "$body")
      answers=$((answers + 1))
      if [[ " $allowed " == *" $r "* ]]; then
        [ "$got" != 403 ] && [ "$got" != 401 ] && continue
      else
        [ "$got" = 403 ] && continue
      fi
      unexpected=$((unexpected + 1))
      echo "  unexpected: $r over $transport may not? $what ($method $path) answered $got"
    done
  done
done
check "RBAC matrix: $answers answers (roles × verbs × kinds × socket and HTTPS), 0 unexpected" test "$unexpected" -eq 0

# kubectl auth can-i (SelfSubjectAccessReview, sent as protobuf) agrees with the matrix.
k() { kubectl --kubeconfig "$work/kubeconfig" --request-timeout=30s "$@"; }
disagree=0
for q in "list services.serving.knative.dev|view edit admin auditor cluster-admin" \
         "create services.serving.knative.dev|edit admin cluster-admin" \
         "delete builds.build.knative.dev|edit admin cluster-admin" \
         "create rolebindings|admin cluster-admin" \
         "list rolebindings|admin auditor cluster-admin"; do
  IFS='|' read -r query allowed <<<"$q"
  for r in "${roles[@]}"; do
    # shellcheck disable=SC2086
    got=$(k --token "${token[$r]}" auth can-i $query -n team 2>&1 || true)
    want=no
    [[ " $allowed " == *" $r "* ]] && want=yes
    [ "$got" = "$want" ] && continue
    disagree=$((disagree + 1))
    echo "  kubectl auth can-i $query -n team as $r: $got, expected $want"
  done
done
check "kubectl auth can-i agrees with the matrix for every role" test "$disagree" -eq 0
check "elafros auth can-i says no, and exits 1" test "$(as_uid 1001 "$elafros_bin" --socket "$sock" auth can-i create services -n team || echo "rc=$?")" = $'no\nrc=1'
check "elafros auth can-i says yes" test "$(as_uid 1002 "$elafros_bin" --socket "$sock" auth can-i create services -n team)" = yes
check "elafros auth whoami names the socket's uid" contains "$(as_uid 1003 "$elafros_bin" --socket "$sock" auth whoami)" "uid:1003"
check "kubectl auth can-i --list (SelfSubjectRulesReview) lists the role's rules" grep -qE "^services.serving.knative.dev +\[\] +\[\] +\[get list watch create update patch delete deletecollection\]" <<<"$(k --token "${token[edit]}" auth can-i --list -n team 2>&1)"
check "kubectl auth whoami names the token's user" contains "$(k --token "${token[edit]}" auth whoami 2>&1)" "tok-edit"

# CLI contexts: a server over HTTPS with its CA, a token and a namespace, kept 0600.
export HOME=$work/home XDG_CONFIG_HOME=""
cli() { "$elafros_bin" "$@"; }
check "context add" contains "$(cli context add remote --server "$api" --ca "$work/ca.crt" --token "${token[edit]}" --default-namespace team --use)" "Context 'remote' added and in use"
check "the config file is 0600" test "$(stat -c %a "$HOME/.config/elafros/config.yaml")" = 600
check "a command goes through the context: its server, token and namespace" contains "$(cli auth whoami)" "tok-edit"
check "...in the context's namespace" test "$(cli auth can-i create services)" = yes
check "context list shows it current, not its token" grep -qE "^\* +remote +https://127.0.0.1:[0-9]+ +team +yes$" <<<"$(cli context list)"
debug=$(cli --debug auth whoami 2>&1 >/dev/null)
check "--debug shows the requests" contains "$debug" "> POST $api/apis/authentication.k8s.io/v1/selfsubjectreviews"
check "...with the token's accessor but not its secret" bash -c "grep -qF '${token[edit]:0:21}…' <<<'$debug' && ! grep -qF '${token[edit]##*_}' <<<'$debug'"
check "ELAFROS_SERVER and ELAFROS_TOKEN override the context" contains "$(ELAFROS_SERVER="$api" ELAFROS_CACERT="$work/ca.crt" ELAFROS_TOKEN="${token[admin]}" cli auth whoami)" "tok-admin"
check "--context picks another context" contains "$(cli context add local --server "unix://$sock" >/dev/null; cli --context local auth whoami)" "uid:0"
out=$(cli context add bad --server "https://127.0.0.1:1" 2>&1 && cli --context bad auth whoami 2>&1 || true)
check "an unreachable server says so" contains "$out" "cannot reach elafrosd at https://127.0.0.1:1"
cli context use local >/dev/null

out=$(as_uid 1006 curl -s --unix-socket "$sock" "http://elafrosd$S")
check "a denial is a 403 Status naming the verb, the resource and the identity" \
  contains "$out" 'User \"uid:1006\" cannot list resource \"services\" in API group \"serving.knative.dev\" in the namespace \"team\"'
check "...with reason Forbidden" contains "$out" '"reason":"Forbidden"'

# Escalation: nobody grants more than they hold.
post_as() { curl -s --cacert "$work/ca.crt" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' -X POST --data "$3" "$api$2"; }
RB=/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings
out=$(post_as "${token[admin]}" "$RB" '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"grab"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"tok-admin"}]}')
check "an admin may not bind cluster-admin in its namespace" contains "$out" 'may not grant ClusterRole \"cluster-admin\"'
out=$(post_as "${token[admin]}" /apis/rbac.authorization.k8s.io/v1/namespaces/team/roles '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"super"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}')
check "an admin may not write a Role with rights it lacks" contains "$out" "attempting to grant RBAC permissions not currently held"
out=$(post_as "${token[admin]}" "$RB" '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"helper"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},"subjects":[{"kind":"User","name":"helper"}]}')
check "...but may bind edit, which it holds" contains "$out" '"name":"helper"'

# Bad input is refused, naming the field, and creates nothing.
out=$(post_as "$admin_token" /apis/rbac.authorization.k8s.io/v1/namespaces/team/roles '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"bad"},"rules":[{"apiGroups":[""],"resources":["namespaces"],"verbs":["get","frob"]}]}')
check "a rule with an unknown verb is refused, naming it" contains "$out" 'rules[0].verbs[1]: unknown verb \"frob\"'
out=$(post_as "$admin_token" "$RB" '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"dangling"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"nosuch"}}')
check "a binding to a missing role is refused, naming roleRef.name" contains "$out" 'roleRef.name: Role \"nosuch\" not found in namespace \"team\"'
check "...and neither was created" test "$(code socket cluster-admin GET "$RB/dangling" "")$(code socket cluster-admin GET /apis/rbac.authorization.k8s.io/v1/namespaces/team/roles/bad "")" = 404404

# kubectl manages roles and bindings (its typed commands send protobuf).
check "kubectl create role" contains "$(k create role reader --verb=get --resource=services.serving.knative.dev -n team 2>&1)" "role.rbac.authorization.k8s.io/reader created"
check "kubectl create rolebinding" contains "$(k create rolebinding reader-1006 --role=reader --user=uid:1006 -n team 2>&1)" "rolebinding.rbac.authorization.k8s.io/reader-1006 created"
get_as_1006_is() { test "$(code socket none GET "$S/nosuch" "")" = "$1"; }
wait_until 5 get_as_1006_is 404 || true
check "...which lets uid 1006 get a service" test "$(code socket none GET "$S/nosuch" "")" = 404
check "...but not list them" test "$(code socket none GET "$S" "")" = 403
check "kubectl get rolebindings lists it, with its role" grep -qE "^reader-1006 +reader " <<<"$(k get rolebindings -n team 2>&1)"
check "kubectl delete rolebinding" contains "$(k delete rolebinding reader-1006 -n team 2>&1)" 'deleted'
wait_until 5 get_as_1006_is 403 || true
check "...and the right is gone" test "$(code socket none GET "$S/nosuch" "")" = 403

# Tokens: expired, revoked, malformed and wrong-secret tokens get 401.
short=$(e token create short --ttl 3s -o json | json_field token)
bearer_code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.crt" -H "Authorization: Bearer $1" "$api/apis"; }
check "a fresh token authenticates" test "$(bearer_code "$short")" = 200
expired() { test "$(bearer_code "$short")" = 401; }
check "an expired token gets 401" wait_until 8 expired
e token revoke tok-view >/dev/null
check "a revoked token gets 401" test "$(bearer_code "${token[view]}")" = 401
check "a malformed token gets 401" test "$(bearer_code "not-a-token")" = 401
wrong=${token[edit]%?}x
[ "$wrong" = "${token[edit]}" ] && wrong=${token[edit]%?}y
check "a token with a wrong secret gets 401" test "$(bearer_code "$wrong")" = 401
check "no token over HTTPS gets 401" test "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$work/ca.crt" "$api/apis")" = 401
check "token list shows the revoked one" grep -qE "^tok-view +elf_[0-9A-Za-z]+ +tok-view .* Revoked$" <<<"$(e token list)"
secret=${token[edit]##*_}
check "no token's secret is in the data dir or the daemon's log" bash -c "! grep -rqaF '$secret' '$data' '$work/daemon.log'"
check "...but the log names its accessor" grep -qF "${token[edit]:0:20}" "$work/daemon.log"
# Audit: each mutation and each denial is recorded once, reads are not, and tampering is caught.
code socket none DELETE "$S/audit-probe" "" >/dev/null
code socket cluster-admin GET "$S/audit-read-probe" "" >/dev/null
e namespace create audited >/dev/null
records() { python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if sys.argv[2] in e["requestURI"] or e.get("objectRef", {}).get("name") == sys.argv[2]:
        n += 1
        last = e
print(n, last["user"]["username"] if n else "", last["responseStatus"]["code"] if n else "",
      last["annotations"].get("authorization.k8s.io/decision", "") if n else "")
' "$data/audit/audit.log" "$1"; }
check "a denial is audited once, with the user, 403 and the decision" test "$(records audit-probe)" = "1 uid:1006 403 forbid"
check "a mutation is audited once" test "$(records audited)" = "1 uid:0 201 allow"
check "a read is not audited" test "$(records audit-read-probe | cut -d' ' -f1)" = 0
check "audit list --user shows the denial" grep -qE "uid:1006 +delete +services +team +audit-probe +403 +forbid" <<<"$(e audit list --user uid:1006)"
curl -s -o /dev/null --cacert "$work/ca.crt" -H "Authorization: Bearer elf_nosuchtoken" "$api/apis/audit-signin-probe"
check "a failed sign-in is audited as system:anonymous with 401" test "$(records audit-signin-probe)" = "1 system:anonymous 401 "
check "audit verify finds the chain intact" contains "$(e audit verify)" "The audit log is intact"
check "no audit record holds a token's secret" bash -c "! grep -qF '$secret' '$data/audit/audit.log'"
line=$(grep -n '"name":"audited"' "$data/audit/audit.log" | head -1 | cut -d: -f1)
sed -i "${line}s/\"name\":\"audited\"/\"name\":\"innocent\"/" "$data/audit/audit.log"
out=$(e audit verify || echo "rc=$?")
check "an edited record is caught, naming its line" contains "$out" "audit.log line $line"
check "...and audit verify exits 1" contains "$out" "rc=1"

# Rotation: a small audit-max-file-bytes rotates the log; the chain carries across the files and
# across a restart, whose start logs the chain's head.
stop_daemon
printf 'metrics-anonymous: false\naudit-dir: %s\naudit-max-file-bytes: 4096\naudit-max-files: 50\n' "$work/audit2" >"$work/daemon.yml"
start_daemon
for i in $(seq 12); do e namespace create "rot-$i" >/dev/null; done
check "the audit log rotates at audit-max-file-bytes" test -f "$work/audit2/audit.log.2"
check "audit verify checks the chain across the rotated files" contains "$(e audit verify)" "The audit log is intact"
last_hash() { tail -1 "$work/audit2/audit.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hash"])'; }
e token create unused -o json >/dev/null
head=$(last_hash)
stop_daemon
start_daemon
last_used() { e token list -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)
items = items.get("items", items) if isinstance(items, dict) else items
print([t for t in items if t["name"] == sys.argv[1]][0].get("lastUsed") or "")' "$1"; }
check "a token's lastUsed, written at stop, survives the restart" bash -c "[[ '$(last_used tok-edit)' =~ ^20[0-9]{2}-[0-9]{2}-[0-9]{2}T ]]"
check "...and a token never used has none" test "$(last_used unused)" = ""
check "at start the daemon logs the chain's head" grep -qF "audit log $work/audit2/audit.log, head $head" "$work/daemon.log"
e namespace create rot-after >/dev/null
first_after() { grep '"name":"rot-after"' "$work/audit2/audit.log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["prevHash"])'; }
check "the first record after the restart chains onto that head" test "$(first_after)" = "$head"
check "...and audit verify is still intact" contains "$(e audit verify)" "The audit log is intact"

finish
