#!/usr/bin/env bash
# Events end to end: brokers and triggers through the CLI, CloudEvents from the official
# JavaScript SDK (tests/e2e/cloudevents) in binary and structured mode, delivered to an SDK
# subscriber that replies; raw HTTP for the binding's edge cases; filters; retries and their
# gaps; dead letters; a reply loop stopped by the TTL; a cold start of a service at zero.
#   tests/e2e/events_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
sdk=$src/tests/e2e/cloudevents
[ -d "$sdk/node_modules/cloudevents" ] || { echo "events: the CloudEvents SDK is missing; run packaging/install-deps.sh"; exit 1; }

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
printf 'stable-window-seconds: 6\nscale-to-zero-grace-period-seconds: 0\n' >"$work/config.yaml"
daemon_args=(--config "$work/config.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')

# The SDK subscriber.
start_subscriber
got() { python3 - "$work/received.jsonl" "$@" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"path"' in l]
path, key, want = sys.argv[2], sys.argv[3], sys.argv[4]
n = sum(1 for r in rows if r["path"] == path and r.get("event", {}).get(key) == want)
print(n)
PY
}
# The controller publishes a Trigger to the ingress in the same pass that writes it Ready.
triggers_ready() { local t; for t; do e trigger list | grep -q "^$t .*True" || return 1; done; }
count_is() { [ "$(got "$@")" = "${*: -1:1}" ] 2>/dev/null; }

out=$(e broker create default --retry 3 --backoff-policy linear --backoff-delay PT0.3S)
check "broker create says so, as kn does" contains "$out" "Broker 'default' successfully created in namespace 'default'."
url=$(e broker describe default -o url)
check "the broker's address is the ingress URL" test "$url" = "http://broker-ingress.localhost:$port/default/default"
check "broker list shows it Ready" bash -c "'$elafros_bin' --socket '$sock' broker list | grep -q '^default .*True'"

e trigger create sdk --broker default --filter type=com.example.sdk --sink "$sub/reply" >/dev/null
e trigger create replies --filter type=com.example.reply --sink "$sub/ok" >/dev/null
e trigger create raw --filter type=raw --sink "$sub/ok" >/dev/null
check "trigger list shows them" bash -c "[ \$('$elafros_bin' --socket '$sock' trigger list | grep -c 'default ') = 3 ]"
out=$(e trigger create lost --broker nosuch --sink "$sub/ok")
lost_reason() { e trigger describe lost | grep -q "BrokerDoesNotExist"; }
check "a trigger of a missing broker is not Ready, saying why" wait_until 5 lost_reason

# The SDK sends, binary and structured; each is 202; each reaches the subscriber, which replies.
sent=$(node "$sdk/send.js" "$url" com.example.sdk 2)
echo "# sent: $sent"
check "the SDK's 4 events (binary and structured) are each answered 202" \
  test "$(grep -o '"status":202' <<<"$sent" | wc -l)" = 4
sdk_in() { [ "$(got /reply type com.example.sdk)" = 4 ]; }
check "...and delivered to the SDK subscriber, valid to its validate()" wait_until 10 sdk_in
check "...with data, extensions and content type intact" python3 - "$work/received.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"path": "/reply"' in l or '"path":"/reply"' in l]
assert len(rows) == 4, rows
for r in rows:
    e = r["event"]
    assert r["valid"], r
    assert e["datacontenttype"].startswith("application/json"), e
    assert e["data"]["mode"] in ("binary", "structured") and e["myext"].startswith("v"), e
    assert e["subject"] == "sdk" and e["source"] == "/sdk/sender", e
    assert "knativearrivaltime" in e and "knativebrokerttl" not in e, e
    assert r["prefer"] == "reply", r
PY
replies_in() { [ "$(got /ok type com.example.reply)" = 4 ]; }
check "the subscriber's replies re-enter the broker and reach the second trigger" wait_until 10 replies_in
check "...with their data and extensions" python3 - "$work/received.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"com.example.reply"' in l]
assert rows and all(r["event"]["data"]["ok"] is True and r["event"]["replyext"] == "yes" for r in rows), rows
PY

# Raw HTTP: the binding's edge cases.
post() { curl -s -o "$work/answer" -w '%{http_code}' -X "${METHOD:-POST}" "http://127.0.0.1:$port${P:-/default/default}" \
  -H 'Host: broker-ingress.localhost' "$@" || true; }
ce=(-H 'ce-id: r1' -H 'ce-source: /raw' -H 'ce-specversion: 1.0' -H 'ce-type: raw')
check "a missing id is 400" test "$(post -H 'ce-source: /raw' -H 'ce-specversion: 1.0' -H 'ce-type: raw')" = 400
check "...saying what is missing" grep -q "the event has no id" "$work/answer"
check "specversion 0.3 is 400" test "$(post -H 'ce-id: x' -H 'ce-source: /raw' -H 'ce-specversion: 0.3' -H 'ce-type: raw')" = 400
check "an invalid extension name is 400" test "$(post "${ce[@]}" -H 'ce-my_ext: x')" = 400
check "invalid UTF-8 in a header is 400" test "$(post "${ce[@]}" -H 'ce-subject: %C0%A0')" = 400
check "a percent-encoded subject is accepted (202)" test "$(post "${ce[@]}" -H 'ce-subject: Euro%20%E2%82%AC')" = 202
# The dispatcher percent-encodes it again, as the binding says; the JS SDK does not decode.
euro() { [ "$(got /ok subject 'Euro%20%E2%82%AC')" = 1 ]; }
check "...decoded once, and sent on encoded again" wait_until 10 euro
check "structured mode with data_base64 is 202" test "$(post -H 'Content-Type: application/cloudevents+json' \
  -d '{"specversion":"1.0","id":"b64","source":"/raw","type":"raw","datacontenttype":"text/plain","data_base64":"aGVsbG8="}')" = 202
b64() { python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$work/received.jsonl') if '\"b64\"' in l]
sys.exit(0 if rows and rows[0]['event'].get('data') == 'hello' else 1)"; }
check "...and its data arrives decoded" wait_until 10 b64
check "batched mode is 400" test "$(post -H 'Content-Type: application/cloudevents-batch+json' -d '[]')" = 400
check "an unknown broker is 404" test "$(P=/default/nosuch post "${ce[@]}")" = 404
check "a path that is not /NAMESPACE/BROKER is 400" test "$(P=/a/b/c post "${ce[@]}")" = 400
check "GET is 405" test "$(METHOD=GET post)" = 405
check "OPTIONS is 200 with Allow" bash -c "curl -s -i -X OPTIONS -H 'Host: broker-ingress.localhost' http://127.0.0.1:$port/default/default | grep -qi '^allow: POST, OPTIONS'"
check "a body over the limit is 413" test "$(post "${ce[@]}" --data-binary @<(head -c 1100000 /dev/zero))" = 413

# Retries: 503 twice, then accepted: exactly 3 attempts, linear gaps of 0.3 s and 0.6 s.
e trigger create retry --filter type=retry --sink "$sub/fail?n=2" >/dev/null
wait_until 5 triggers_ready retry
e event send --type retry --source /raw --id retry-1 >/dev/null
three() { [ "$(got /fail id retry-1)" = 3 ]; }
check "a subscriber answering 503 twice gets exactly 3 attempts" wait_until 15 three
check "...0.3 s then 0.6 s apart (linear), within tolerance" python3 - "$work/received.jsonl" <<'PY'
import json, sys
t = [json.loads(l)["time"] for l in open(sys.argv[1]) if '"retry-1"' in l]
gaps = [(b - a) / 1000 for a, b in zip(t, t[1:])]
print("# gaps:", gaps)
assert len(gaps) == 2 and 0.25 <= gaps[0] <= 1.0 and 0.55 <= gaps[1] <= 1.4, gaps
PY
retry_final() { e broker events default --limit 1000 | grep -q "^retry-1 .*retry:delivered(3)"; }
check "...its delivery is final after those 3 attempts" wait_until 5 retry_final
check "...and no more after it succeeded" test "$(got /fail id retry-1)" = 3

# 429 is retried; 400 is not, and goes to the dead-letter sink with the error extensions.
e trigger create busy --filter type=busy --sink "$sub/fail?n=1&code=429" >/dev/null
e trigger create refuse --filter type=refuse --sink "$sub/bad" --dl-sink "$sub/dls" --retry 2 --backoff-delay PT0.1S >/dev/null
e trigger create notce --filter type=notce --sink "$sub/notce" --dl-sink "$sub/dls" --retry 1 --backoff-delay PT0.1S >/dev/null
wait_until 5 triggers_ready busy refuse notce
e event send --type busy --source /raw --id busy-1 >/dev/null
e event send --type refuse --source /raw --id refuse-1 -d '{"x":1}' >/dev/null
e event send --type notce --source /raw --id notce-1 >/dev/null
busy2() { [ "$(got /fail id busy-1)" = 2 ]; }
check "429 is retried" wait_until 10 busy2
dead() { [ "$(got /dls id refuse-1)" = 1 ]; }
check "400 is not retried: the dead-letter sink gets the original event" wait_until 10 dead
check "...after a single attempt" test "$(got /bad id refuse-1)" = 1
check "...with knativeerrorcode, knativeerrordest and knativeerrordata" python3 - "$work/received.jsonl" "$sub" <<'PY'
import base64, json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if '"refuse-1"' in l and '"/dls"' in l][0]["event"]
assert r["knativeerrorcode"] == "400", r
assert r["knativeerrordest"] == sys.argv[2] + "/bad", r
assert base64.b64decode(r["knativeerrordata"]) == b"bad input", r
assert r["data"] == {"x": 1}, r
PY
notce_dead() { [ "$(got /dls id notce-1)" = 1 ]; }
check "a 2xx with a body that is not a CloudEvent is a failure (retried, then dead-lettered)" wait_until 10 notce_dead
check "...after 2 attempts" test "$(got /notce id notce-1)" = 2

# A reply loop stops at the TTL: sent with knativebrokerttl 5, it is delivered 5 times.
e trigger create loop --filter type=loop --sink "$sub/loop" >/dev/null
wait_until 5 triggers_ready loop
check "an event with a TTL of 5 is accepted" test "$(post -H 'ce-id: l1' -H 'ce-source: /raw' -H 'ce-specversion: 1.0' -H 'ce-type: loop' -H 'ce-knativebrokerttl: 5')" = 202
five() { [ "$(got /loop type loop)" = 5 ]; }
check "a reply loop stops at the TTL (5 deliveries)" wait_until 10 five
ttl_dropped() { curl -s --unix-socket "$sock" http://elafrosd/metrics | grep -qE '^elafros_event_replies_ttl_dropped_total [1-9]'; }
check "...the last reply is dropped for its TTL" wait_until 5 ttl_dropped
check "...and stays stopped" test "$(got /loop type loop)" = 5
check "...saying so in the log" grep -q "knativebrokerttl ran out" "$work/daemon.log"
check "an exhausted TTL at the ingress is 400" test "$(post -H 'ce-id: l2' -H 'ce-source: /raw' -H 'ce-specversion: 1.0' -H 'ce-type: loop' -H 'ce-knativebrokerttl: 0')" = 400

# delivery.format json: the subscriber gets structured mode, which its SDK parses.
curl -s --unix-socket "$sock" -X POST -H 'Content-Type: application/json' \
  http://elafrosd/apis/eventing.knative.dev/v1/namespaces/default/triggers -d '{
  "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "structured"},
  "spec": {"broker": "default", "filter": {"attributes": {"type": "structured"}},
           "subscriber": {"uri": "'"$sub"'/ok"}, "delivery": {"format": "json"}}}' >/dev/null
wait_until 5 triggers_ready structured
e event send --type structured --source /raw --id st-1 -d '{"k":"v"}' >/dev/null
structured() { python3 -c "
import json,sys
rows=[json.loads(l) for l in open('$work/received.jsonl') if '\"st-1\"' in l]
ok = rows and rows[0]['valid'] and rows[0]['contentType'].startswith('application/cloudevents+json') and rows[0]['event']['data'] == {'k': 'v'}
sys.exit(0 if ok else 1)"; }
check "delivery.format json delivers in structured mode, which the SDK parses" wait_until 10 structured

# Filters dialects end to end: prefix, suffix, not, any, and CESQL.
cat >"$work/filters.yaml" <<'YAML'
- prefix: {type: com.shop.}
- any: [{suffix: {subject: .png}}, {exact: {subject: cover}}]
- not: {exact: {source: /spam}}
- cesql: "LENGTH(subject) > 4 AND source LIKE '/shop%'"
YAML
e trigger create shop --filters-file "$work/filters.yaml" --sink "$sub/ok" >/dev/null
if out=$(e trigger create badsql --filters-file <(printf -- '- cesql: "type = "\n') --sink "$sub/ok" 2>&1); then
  fail "a trigger whose CESQL does not parse is refused"
else
  check "a trigger whose CESQL does not parse is refused, with the position" contains "$out" "spec.filters[0].cesql: at 8"
fi
wait_until 5 triggers_ready shop
for spec in "in1 /shop/a cat.png" "in2 /shop/b cover" "out1 /spam cat.png" "out2 /shop/c cat.jpg" "out3 /shop/d .png"; do
  set -- $spec
  e event send --type com.shop.order --source "$2" --id "$1" -e "subject=$3" >/dev/null
done
shop_in() { [ "$(got /ok id in1)" = 1 ] && [ "$(got /ok id in2)" = 1 ]; }
check "the filters let through what matches" wait_until 10 shop_in
unmatched() {
  local id; for id in out1 out2 out3; do
    e broker events default --limit 1000 | grep -q "^$id .*(no trigger matched)" || return 1; done
}
check "...the others matched no trigger at the ingress" wait_until 5 unmatched
check "...and nothing else" test "$(( $(got /ok id out1) + $(got /ok id out2) + $(got /ok id out3) ))" = 0

# A service at zero is cold-started by an event.
e service create coldsub --image "oci:$work/image:latest" >/dev/null
zero() { [ -z "$(e instance list -s coldsub -o json | grep '"id"')" ]; }
check "the subscriber service scales to zero" wait_until 40 zero
# A ref with a relative uri: the service's event handler, /cgi-bin/event (as Knative resolves it).
curl -s --unix-socket "$sock" -X POST -H 'Content-Type: application/json' \
  http://elafrosd/apis/eventing.knative.dev/v1/namespaces/default/triggers -d '{
  "apiVersion": "eventing.knative.dev/v1", "kind": "Trigger", "metadata": {"name": "cold"},
  "spec": {"broker": "default", "filter": {"attributes": {"type": "cold"}},
           "subscriber": {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "coldsub"},
                          "uri": "/cgi-bin/event"}}}' >/dev/null
resolved() { e trigger describe cold | grep -q "http://coldsub.default.localhost:$port/cgi-bin/event"; }
check "the trigger resolves the service's URL, through the proxy" wait_until 5 resolved
e event send --type cold --source /raw --id cold-1 >/dev/null
cold_logged() { e logs coldsub 2>&1 | grep -q "event: id=cold-1 type=cold"; }
check "an event for a service at zero cold-starts it and is delivered" wait_until 30 cold_logged || {
  grep -i "cold" "$work/daemon.log" | tail -5; e logs coldsub | tail -5; }

# What became of them: broker events, describe's recent failures, metrics.

check "broker events lists an event with its deliveries" \
  bash -c "'$elafros_bin' --socket '$sock' broker events default | grep -q 'refuse-1 .*refuse:deadlettered(1)'"
check "broker describe shows recent failures and dead letters, with the last error" \
  bash -c "'$elafros_bin' --socket '$sock' broker describe default | grep -A20 'Recent failures' | grep -q 'refuse-1 .*deadlettered'"
# Followed: the list now, then again once an event changes it.
feed=/apis/elafros.dev/v1/namespaces/default/brokers/default/events
curl -sN --max-time 8 --unix-socket "$sock" "http://elafrosd$feed?limit=5&follow=true" >"$work/feed.jsonl" &
feed_pid=$!
extra_pids+=("$feed_pid")
wait_until 5 test -s "$work/feed.jsonl"
e event send --type raw --source /raw --id followed-1 >/dev/null
followed() { [ "$(wc -l <"$work/feed.jsonl")" -ge 2 ] && tail -1 "$work/feed.jsonl" | grep -q '"id":"followed-1"'; }
check "broker events with follow=true sends the list again when an event arrives" wait_until 6 followed
kill "$feed_pid" 2>/dev/null || true
code=$(curl -s -o "$work/answer" -w '%{http_code}' --unix-socket "$sock" "http://elafrosd$feed?follow=maybe")
check "...and refuses a follow= that is not true or false (400, saying so)" \
  bash -c "test '$code' = 400 && grep -q 'follow must be true or false' '$work/answer'"
metrics=$(curl -s --unix-socket "$sock" http://elafrosd/metrics)
check "/metrics counts accepted events" grep -qE '^elafros_broker_events_total\{outcome="accepted"\} [1-9]' <<<"$metrics"
dead_and_retried() {
  grep -qE '^elafros_event_deliveries_total\{outcome="dead_lettered"\} [1-9]' <<<"$metrics" &&
    grep -qE '^elafros_event_delivery_retries_total [1-9]' <<<"$metrics"
}
check "...dead letters and retries" dead_and_retried
check "...and the queue" grep -q '^elafros_event_deliveries_pending ' <<<"$metrics"
check "...rejections by reason" grep -qE '^elafros_broker_events_rejected_total\{reason="invalid_event"\} [1-9]' <<<"$metrics"
check "...per broker" grep -qE '^elafros_broker_ingress_events_total\{namespace="default",broker="default",outcome="accepted"\} [1-9]' <<<"$metrics"
check "...per trigger, dead letters" grep -qE '^elafros_trigger_deliveries_total\{namespace="default",broker="default",trigger="refuse",outcome="dead_lettered"\} [1-9]' <<<"$metrics"
latency_histogram() {
  python3 -c '
import re, sys
text = sys.stdin.read()
lab = "namespace=\"default\",broker=\"default\",trigger=\"sdk\""
count = re.search("^elafros_trigger_delivery_latency_seconds_count[{]" + lab + "[}] (\\S+)", text, re.M)
inf = re.search("^elafros_trigger_delivery_latency_seconds_bucket[{]" + lab + ",le=\"[+]Inf\"[}] (\\S+)", text, re.M)
assert count and inf, "no histogram"
assert float(count.group(1)) >= 4 and inf.group(1) == count.group(1), (count.group(1), inf.group(1))
' <<<"$metrics"
}
check "...and a delivery latency histogram per trigger" latency_histogram
check "kubectl-style reads work for the new kinds (a Table of triggers)" bash -c \
  "curl -s --unix-socket '$sock' -H 'Accept: application/json;as=Table;v=v1;g=meta.k8s.io' http://elafrosd/apis/eventing.knative.dev/v1/namespaces/default/triggers | grep -q '\"Subscriber_URI\"'"
e trigger delete lost >/dev/null
check "trigger delete says so" bash -c "! '$elafros_bin' --socket '$sock' trigger list | grep -q '^lost '"

# A slow subscriber cannot starve the others: 300 events queue for a Trigger whose subscriber
# takes a second each (16 at a time), and an event for another Trigger is delivered meanwhile.
e trigger create slow --filter type=slow --sink "$sub/slow" >/dev/null
e trigger create fast --filter type=fast --sink "$sub/ok" >/dev/null
wait_until 5 triggers_ready slow fast
python3 - "$port" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(300):
    c.request("POST", "/default/default", body=b"{}", headers={"Host": "broker-ingress.localhost",
              "ce-id": f"slow-{i}", "ce-source": "/raw", "ce-specversion": "1.0", "ce-type": "slow",
              "Content-Type": "application/json"})
    assert c.getresponse().read() == b"" or True
PY
e event send --type fast --source /raw --id fast-1 >/dev/null
fast() { [ "$(got /ok id fast-1)" = 1 ]; }
check "a slow Trigger's backlog does not hold up another Trigger's event" wait_until 3 fast
check "...while the slow one still has most of its 300 waiting" test "$(got /slow type slow)" -lt 100
e trigger delete slow >/dev/null  # what it still had is dropped at once ("the trigger was deleted")

# Usage: every delivery is counted once, in the broker's namespace, with its outcome's commit.
usage_delivered() { e usage -n default --by namespace -o json | python3 -c 'import json,sys; print(sum(i["events_delivered"] for i in json.load(sys.stdin)["items"]))'; }
metric_delivered() { curl -s --unix-socket "$sock" http://x/metrics | sed -n 's/^elafros_event_deliveries_total{outcome="delivered"} //p'; }
same_count() { local u m; u=$(usage_delivered); m=$(metric_delivered); [ "$u" -ge 1 ] && [ "$u" = "$m" ]; }
check "usage counts the events delivered, as many as the dispatcher delivered" wait_until 5 same_count
echo "     events delivered, by usage: $(usage_delivered); by /metrics: $(metric_delivered)"

if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
