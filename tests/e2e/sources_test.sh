#!/usr/bin/env bash
# Event sources end to end, through the CLI: a PingSource on a seconds schedule; an
# ApiServerSource turning a Service's add, update and delete into events; a SinkBinding whose
# K_SINK the app sees (and loses once the binding goes); a ContainerSource whose container posts
# events to its K_SINK; EventTypes the ingress registers; list-types; and bad input refused.
#   tests/e2e/sources_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
image=oci:$work/image:latest
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')

start_subscriber
# count PATH KEY VALUE: events received at PATH whose attribute KEY is VALUE.
count() { python3 - "$work/received.jsonl" "$@" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"path"' in l]
path, key, want = sys.argv[2], sys.argv[3], sys.argv[4]
print(sum(1 for r in rows if r["path"] == path and r.get("event", {}).get(key) == want))
PY
}
at_least() { [ "$(count "$1" "$2" "$3")" -ge "$4" ]; }
app() { curl -s -H "Host: $1.default.localhost" "http://127.0.0.1:$port$2"; }

e broker create default >/dev/null
e trigger create all --sink "$sub/all" >/dev/null

# --- PingSource: a seconds schedule, about one a second ------------------------------------------
out=$(e source ping create tick --schedule '* * * * * *' --data '{"n":1}' --content-type application/json \
  --ce-override env=test --sink broker:default)
check "source ping create says so, as kn does" contains "$out" "Ping source 'tick' created in namespace 'default'."
check "six ping events arrive through the broker" wait_until 15 at_least /all type dev.knative.sources.ping 6
check "...about one a second, with their data, source and override" python3 - "$work/received.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"path"' in l]
pings = [r for r in rows if r.get("event", {}).get("type") == "dev.knative.sources.ping"]
times = sorted(r["event"]["time"] for r in pings)
from datetime import datetime
ts = [datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in times]
gaps = [b - a for a, b in zip(ts, ts[1:])]
print("# ping gaps (s):", [round(g, 3) for g in gaps])
assert all(abs(g - 1.0) < 0.01 for g in gaps), gaps  # the ticks: whole seconds apart
arrivals = sorted(r["time"] for r in pings)
span = (arrivals[-1] - arrivals[0]) / 1000.0
rate = (len(arrivals) - 1) / span
print("# ping arrival rate: %.2f/s over %.1f s" % (rate, span))
assert 0.7 < rate < 1.4, rate
e = pings[0]["event"]
assert e["source"] == "/apis/v1/namespaces/default/pingsources/tick", e
assert e["data"] == {"n": 1} and e["env"] == "test", e
assert e["datacontenttype"] == "application/json", e
assert all(r["valid"] for r in pings)
PY
check "the ping source is Ready with its sink URI" bash -c "'$elafros_bin' --socket '$sock' source ping describe tick | grep -q 'Sink URI:     http://broker-ingress.localhost:$port/default/default'"
e source ping delete tick >/dev/null
e source ping create refused --schedule '* * * * * *' --sink "$sub/bad" >/dev/null
lost() { curl -s --unix-socket "$sock" http://elafrosd/metrics | grep -qE '^elafros_source_events_total\{outcome="lost"\} [1-9]'; }
check "a ping its sink refuses (400, not retried) is counted lost" wait_until 10 lost
check "...and logged with what to check" wait_until 5 grep -q "is lost: .*answered 400.*check that its sink" "$work/daemon.log"
e source ping delete refused >/dev/null

# --- EventTypes: the ingress registered the ping type -------------------------------------------
et_listed() { e eventtype list | grep -q "dev.knative.sources.ping .*/apis/v1/namespaces/default/pingsources/tick *Broker:default .*True"; }
check "the ingress registered an EventType for the ping events, Ready" wait_until 10 et_listed
out=$(e eventtype create manual -t com.example.manual --source /manual -b nosuch)
check "eventtype create says so, as kn does" contains "$out" "Eventtype 'manual' successfully created in namespace 'default'."
et_missing() { e eventtype describe manual | grep -q "ResourceDoesNotExist"; }
check "an EventType of a missing broker is not Ready, saying why" wait_until 10 et_missing
out=$(e eventtype delete manual)
check "eventtype delete says so" contains "$out" "Eventtype 'manual' successfully deleted in namespace 'default'."

# --- ApiServerSource: a Service's changes become events ------------------------------------------
e source apiserver create watch --resource Service:serving.knative.dev/v1 --sink "$sub/api" >/dev/null
e source apiserver create whole --mode Resource --resource Service:serving.knative.dev/v1:tier=web \
  --sink "$sub/whole" >/dev/null
api_ready() { e source apiserver list | grep -q "^watch .*True" && e source apiserver list | grep -q "^whole .*True"; }
check "the apiserver sources are Ready" wait_until 10 api_ready
e service create web --image "$image" --label tier=web >/dev/null
check "a Service's creation is a dev.knative.apiserver.ref.add event" wait_until 15 at_least /api type dev.knative.apiserver.ref.add 1
e service update web --env GREETING=Hi >/dev/null
check "its update is ref.update" wait_until 15 at_least /api type dev.knative.apiserver.ref.update 1
check "in Resource mode, with a selector, the event is resource.add" wait_until 15 at_least /whole type dev.knative.apiserver.resource.add 1
check "...whose data is the whole Service" python3 - "$work/received.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"/whole"' in l]
add = [r["event"] for r in rows if r.get("event", {}).get("type") == "dev.knative.apiserver.resource.add"][0]
assert add["data"]["kind"] == "Service" and add["data"]["metadata"]["name"] == "web", add
assert add["data"]["metadata"]["labels"]["tier"] == "web", add
PY
check "...and the event refers to the Service" python3 - "$work/received.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"path": "/api"' in l or '"path":"/api"' in l]
add = [r["event"] for r in rows if r.get("event", {}).get("type") == "dev.knative.apiserver.ref.add"][0]
assert add["subject"] == "/apis/serving.knative.dev/v1/namespaces/default/services/web", add
assert add["data"] == {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "web", "namespace": "default"}, add
PY

# --- SinkBinding: K_SINK in the app, then out again ----------------------------------------------
web_env() { app web /cgi-bin/env | grep -q "^K_SINK=http://broker-ingress.localhost:$port/default/default$"; }
no_k_sink() { ! app web /cgi-bin/env | grep -q K_SINK && app web /cgi-bin/env | grep -q '^PORT='; }
check "before any binding the app has no K_SINK" wait_until 30 no_k_sink
out=$(e source binding create bind --subject Service:serving.knative.dev/v1:web --sink broker:default --ce-override team=web)
check "source binding create says so" contains "$out" "Sink binding 'bind' created in namespace 'default'."
check "the bound Service's app sees K_SINK (a new revision)" wait_until 30 web_env
check "...and K_CE_OVERRIDES" bash -c "curl -s -H 'Host: web.default.localhost' http://127.0.0.1:$port/cgi-bin/env | grep -q '^K_CE_OVERRIDES={\"extensions\":{\"team\":\"web\"}}$'"
e source binding delete bind >/dev/null
check "once the binding is deleted, a new revision has no K_SINK" wait_until 30 no_k_sink
e source binding create early --subject Service:serving.knative.dev/v1:late --sink "$sub/all" >/dev/null
missing() { e source binding describe early | grep -q SubjectMissing; }
check "a binding of a missing Service says so" wait_until 10 missing
e service create late --image "$image" >/dev/null
late_env() { app late /cgi-bin/env | grep -q "^K_SINK=$sub/all$"; }
check "a Service created after its binding has K_SINK from its first revision" wait_until 30 late_env
check "...in one revision" test "$(e revision list | grep -c '^late-')" = 1
e service delete web >/dev/null
check "a Service's deletion is a ref.delete event" wait_until 30 at_least /api type dev.knative.apiserver.ref.delete 1
e source apiserver delete watch >/dev/null
e source apiserver delete whole >/dev/null

# --- ContainerSource: its container posts to K_SINK ----------------------------------------------
script='httpd -p $PORT -h /srv/www; i=0; while [ $i -lt 600 ]; do i=$((i+1)); busybox wget -q -O /dev/null --header "ce-specversion: 1.0" --header "ce-id: beat-$i" --header "ce-type: dev.example.beat" --header "ce-source: /beat" --header "content-type: application/json" --post-data "{\"n\":$i}" "$K_SINK"; sleep 1; done'
out=$(e source container create beat --image "$image" --cmd /bin/sh --arg -c --arg "$script" --sink broker:default)
check "source container create says so" contains "$out" "Container source 'beat' created in namespace 'default'."
check "its container's events reach the broker's trigger" wait_until 30 at_least /all type dev.example.beat 2
check "it runs as the Service beat-source, owned by it" bash -c "'$elafros_bin' --socket '$sock' service list | grep -q '^beat-source '"
container_ready() { e source container list | grep -q '^beat .*True'; }
check "the container source is Ready" wait_until 10 container_ready
e source container delete beat >/dev/null
gone() { ! e service list | grep -q '^beat-source '; }
check "deleting it deletes its Service" wait_until 30 gone

# --- list, list-types ----------------------------------------------------------------------------
out=$(e source list-types)
four_kinds() { local k; for k in ApiServerSource SinkBinding PingSource ContainerSource; do grep -q "^$k " <<<"$out" || return 1; done; }
check "list-types lists the four source kinds" four_kinds
check "...with the event types they emit" contains "$out" "dev.knative.sources.ping"
out=$(e source list)
check "source list shows every source" contains "$out" "early"

# --- bad input: refused by path, nothing written -------------------------------------------------
out=$(e source ping create bad --schedule '61 * * * *' --sink broker:default 2>&1) && fail "a bad schedule is refused" || pass "a bad schedule is refused"
check "...naming the field and position" contains "$out" "spec.schedule: \"61\" at position 1 (minute field)"
out=$(e source ping create bad --timezone Mars/Olympus --sink broker:default 2>&1) || true
check "an unknown time zone is refused" contains "$out" "spec.timezone: \"Mars/Olympus\" is not an IANA time zone"
check "...and nothing was created" bash -c "! '$elafros_bin' --socket '$sock' source ping describe bad >/dev/null 2>&1"
out=$(e source binding create b2 --subject Deployment:apps/v1:x --sink broker:default 2>&1) || true
check "a binding to a kind elafros cannot bind is refused" contains "$out" "the subject is a serving.knative.dev/v1 Service"

e service delete late >/dev/null
finish
