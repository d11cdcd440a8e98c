#!/usr/bin/env bash
# Who may send events to a broker, end to end: Bearer tokens through RBAC (brokers/publish),
# anonymous senders as broker-anonymous-publish says, EventPolicies (subjects, refs, filters),
# default-authorization-mode for brokers no policy selects, the daemon's own senders (a
# PingSource of another namespace, a Trigger forwarding to another namespace's broker), and
# triggers/bind for a Trigger on another namespace's broker.
#   tests/e2e/event_policy_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

echo "broker-anonymous-publish: none" >"$work/daemon.yml"
daemon_args=(--config "$work/daemon.yml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
ingress=http://broker-ingress.localhost:$port
start_subscriber
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# received PATH TYPE: events of TYPE the subscriber got at PATH.
received() { python3 - "$work/received.jsonl" "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"path"' in l]
print(sum(1 for r in rows if r["path"] == sys.argv[2] and r.get("event", {}).get("type") == sys.argv[3]))
PY
}
got() { [ "$(received "$1" "$2")" -ge "${3:-1}" ]; }
# post NS/BROKER TOKEN TYPE: the ingress's status code; its body in $work/body, headers in $work/head.
post() {
  local auth=()
  [ -n "$2" ] && auth=(-H "Authorization: Bearer $2")
  curl -s -o "$work/body" -D "$work/head" -w '%{http_code}' -X POST "${auth[@]}" \
    -H "Host: broker-ingress.localhost" -H 'ce-specversion: 1.0' -H "ce-type: $3" \
    -H 'ce-source: /e2e' -H "ce-id: $RANDOM$RANDOM" -H 'content-type: application/json' -d '{}' \
    "http://127.0.0.1:$port/$1"
}
answers() { local want=$1; shift; local got; got=$(post "$@"); [ "$got" = "$want" ] || { echo "# got $got: $(cat "$work/body")"; return 1; }; }
body_says() { grep -qF -- "$1" "$work/body" || { echo "# body: $(cat "$work/body")"; return 1; }; }

for ns in team-a team-b; do e namespace create "$ns" >/dev/null; done
e broker create b -n team-a >/dev/null
e broker create open -n team-a >/dev/null
e trigger create to-b -n team-a --broker b --sink "$sub/b" >/dev/null
e trigger create to-open -n team-a --broker open --sink "$sub/open" >/dev/null
edit=$(e token create pub-edit --role edit -n team-a -o json | json_field token)
view=$(e token create pub-view --role view -n team-a -o json | json_field token)
other=$(e token create pub-other --role edit -n team-b -o json | json_field token)
ci=$(e token create ci-bot --role edit -n team-a -o json | json_field token)
gone=$(e token create pub-gone --role edit -n team-a -o json | json_field token)
e token revoke pub-gone >/dev/null

# --- Tokens and RBAC ------------------------------------------------------------------------------
check "without a token, broker-anonymous-publish none answers 401" answers 401 team-a/b "" t.anon
check "...saying what to send" body_says "needs a token: send Authorization: Bearer elf_"
check "...with a Bearer challenge" grep -qi '^WWW-Authenticate: Bearer' "$work/head"
check "a malformed token gets 401" answers 401 team-a/b "elf_nonsense" t.bad
check "a revoked token gets 401" answers 401 team-a/b "$gone" t.bad
check "a token whose role cannot publish (view) gets 403" answers 403 team-a/b "$view" t.view
check "...naming brokers/publish, the user and the namespace" body_says 'user "pub-view" (token elf_'
check "...'cannot create brokers/publish in namespace \"team-a\"'" body_says 'cannot create brokers/publish in namespace "team-a"'
check "a token of another namespace gets 403" answers 403 team-a/b "$other" t.other
check "an edit token publishes (202)" answers 202 team-a/b "$edit" t.edit
check "...and its event is delivered" wait_until 10 got /b t.edit
check "the token's secret is in no log" bash -c "! grep -qF '${edit##*_}' '$work/daemon.log'"

# --- EventPolicy: subjects and filters ------------------------------------------------------------
cat >"$work/policy.yaml" <<'EOF'
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: ci-only, namespace: team-a}
spec:
  to:
    - ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: b}
  from:
    - sub: "ci-*"
  filters:
    - exact: {type: com.example.ok}
EOF
e apply -f "$work/policy.yaml" >/dev/null
policy_ready() { curl -s --unix-socket "$sock" http://elafrosd/apis/eventing.knative.dev/v1alpha1/namespaces/team-a/eventpolicies/ci-only | python3 -c '
import json, sys
o = json.load(sys.stdin)
ready = [c for c in o["status"].get("conditions", []) if c["type"] == "Ready"]
assert ready and ready[0]["status"] == "True", o["status"]
assert o["status"]["from"] == ["ci-*"], o["status"]' 2>/dev/null; }
check "the EventPolicy is Ready, its subjects in status.from" wait_until 10 policy_ready
named_sends() { answers 202 team-a/b "$ci" com.example.ok; }
check "a sender the policy names, with an event its filter passes, gets 202" wait_until 5 named_sends
check "...and it is delivered" wait_until 10 got /b com.example.ok
check "the named sender's event the filter refuses gets 403" answers 403 team-a/b "$ci" com.example.other
check "...naming the policy and the event's type" body_says 'EventPolicy "ci-only" allows the sender only events that pass its filters (type "com.example.other"'
check "a sender no policy names gets 403, though RBAC lets it publish" answers 403 team-a/b "$edit" com.example.ok
check "...saying to add it to spec.from" body_says "no EventPolicy of it (ci-only) names the sender"
check "a broker the policy does not select still takes the edit token" answers 202 team-a/open "$edit" t.open
forbidden_count() { curl -s --unix-socket "$sock" http://elafrosd/metrics | sed -n 's/^elafros_broker_events_rejected_total{reason="forbidden"} //p'; }
n_forbidden=$(forbidden_count)
echo "     403s counted so far: ${n_forbidden:-none}"
check "refusals are counted by reason on /metrics (four 403s so far, at least)" test "${n_forbidden:-0}" -ge 4
out=$(e apply -f - 2>&1 <<'EOF' || true
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: bad, namespace: team-a}
spec:
  from:
    - ref: {apiVersion: sources.knative.dev/v1, kind: ContainerSource, name: c}
EOF
)
check "an EventPolicy naming a sender without an identity is refused, naming the field" contains "$out" "spec.from[0].ref: sources.knative.dev/v1 ContainerSource does not send with an identity of its own"

# --- The daemon's own senders: a PingSource of another namespace ----------------------------------
e source ping create near -n team-a --schedule '* * * * * *' --sink broker:open >/dev/null
e source ping create far -n team-b --schedule '* * * * * *' --sink "$ingress/team-a/open" >/dev/null
check "a PingSource of the broker's namespace is let in (allow-same-namespace)" wait_until 10 got /open dev.knative.sources.ping
far_refused() { grep -q "event .* of pingsource team-b/far is lost: .*answered 403.*its own namespace only" "$work/daemon.log"; }
check "a PingSource of another namespace is refused (403), and says why" wait_until 10 far_refused
far_pings() { python3 - "$work/received.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"path"' in l]
print(sum(1 for r in rows if r["path"] == "/open" and r["event"].get("source", "").endswith("/team-b/pingsources/far")))
PY
}
check "...none of its pings arrived" test "$(far_pings)" -eq 0
e apply -f - >/dev/null <<'EOF'
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: from-far, namespace: team-a}
spec:
  to:
    - ref: {kind: Broker, name: open}
  from:
    - ref: {apiVersion: sources.knative.dev/v1, kind: PingSource, name: far, namespace: team-b}
    - ref: {kind: PingSource, name: near}
    - sub: pub-edit
EOF
far_arrives() { [ "$(far_pings)" -ge 2 ]; }
check "an EventPolicy naming it (from.ref) lets the far PingSource's pings in" wait_until 10 far_arrives
e source ping delete far -n team-b >/dev/null
e source ping delete near -n team-a >/dev/null

# --- A Trigger forwarding to another namespace's broker ------------------------------------------
e broker create inbox -n team-b >/dev/null
e trigger create to-inbox -n team-b --broker inbox --sink "$sub/inbox" >/dev/null
e trigger create fwd -n team-a --broker open --filter type=fwd.me --sink "$ingress/team-b/inbox" >/dev/null
check "an event for the forwarding trigger is accepted" answers 202 team-a/open "$edit" fwd.me
fwd_logged() { e broker events open -n team-a -o json 2>/dev/null | grep -q 'takes events from its own namespace only'; }
check "...its delivery to team-b's broker is refused with 403 (not same-namespace)" wait_until 10 fwd_logged
check "...and nothing reached team-b's subscriber" test "$(received /inbox fwd.me)" -eq 0
e apply -f - >/dev/null <<'EOF'
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata: {name: from-team-a, namespace: team-b}
spec:
  from:
    - ref: {apiVersion: eventing.knative.dev/v1, kind: Trigger, name: fwd, namespace: team-a}
EOF
# Until the policy is in force a forwarded event is refused for good: send another each try.
fwd_through() { got /inbox fwd.me || { post team-a/open "$edit" fwd.me >/dev/null; false; }; }
check "an EventPolicy naming the Trigger lets its deliveries in" wait_until 10 fwd_through

# --- triggers/bind: a Trigger on another namespace's broker ---------------------------------------
cross() { ELAFROS_TOKEN=$other "$elafros_bin" --socket "$sock" trigger create xb -n team-b \
  --broker b --broker-namespace team-a --sink "$sub/xb" 2>&1; }
out=$(cross || true)
check "binding to another namespace's broker without triggers/bind there is refused" contains "$out" 'user "pub-other" cannot create triggers/bind in namespace "team-a"'
check "...and nothing was made" bash -c "! '$elafros_bin' --socket '$sock' trigger describe xb -n team-b >/dev/null 2>&1"
e apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: binder, namespace: team-a}
rules:
  - {apiGroups: [eventing.knative.dev], resources: [triggers/bind], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: pub-other-binds, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: pub-other}
EOF
out=$(cross)
check "with triggers/bind granted in the broker's namespace, it is created" contains "$out" "Trigger 'xb' successfully created in namespace 'team-b'."
xb_ready() { e trigger describe xb -n team-b | grep -q 'Broker: *team-a/b' && e trigger list -n team-b | grep -q '^xb .*True'; }
check "...shows its broker as team-a/b, and is Ready" wait_until 10 xb_ready
check "an event for broker team-a/b is accepted" answers 202 team-a/b "$ci" com.example.ok
check "...and the trigger of team-b delivers it to its subscriber" wait_until 10 got /xb com.example.ok

# --- default-authorization-mode: deny-all ---------------------------------------------------------
stop_daemon
printf 'broker-anonymous-publish: loopback\ndefault-authorization-mode: deny-all\n' >"$work/daemon.yml"
start_daemon
e broker create c -n team-a >/dev/null
c_denied() { answers 403 team-a/c "" t.deny; }
check "with deny-all, a broker no EventPolicy selects refuses even anonymous loopback senders" wait_until 5 c_denied
check "...saying to create an EventPolicy" body_says "default-authorization-mode is deny-all; create an EventPolicy"
check "...while a policy's sender still gets in" answers 202 team-a/b "$ci" com.example.ok
printf 'default-authorization-mode: deny-some\n' >"$work/bad.yml"
out=$("$elafrosd" --config "$work/bad.yml" --data-dir "$work/other" --socket "$work/other.sock" 2>&1 || true)
check "a bad mode in the config is refused, listing the modes" contains "$out" 'default-authorization-mode "deny-some" is not one of allow-same-namespace, allow-all, deny-all'

finish
