#!/usr/bin/env bash
# The logging and monitoring plugins, each against an independent receiver: rsyslogd (RFC 5424
# over TCP with octet counting, over UDP, and on a unix socket), systemd-journal-remote and
# journalctl (the journal's native encoding, taken from a test socket), an OTLP/HTTP capture
# decoded by protobuf against the OTLP messages, and Prometheus scraping /metrics. Several sinks
# at once; a receiver that is down at first gets the records once it is up; bad settings refused.
#   tests/e2e/sinks_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

for tool in rsyslogd journalctl protoc prometheus promtool /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "sinks: $tool is missing; run packaging/install-deps.sh"; exit 1; }
done
journal_remote=/lib/systemd/systemd-journal-remote
[ -x "$journal_remote" ] || { echo "sinks: systemd-journal-remote is missing; run packaging/install-deps.sh"; exit 1; }
free_port() { python3 -c 'import socket,sys; s=socket.socket(type=socket.SOCK_DGRAM if sys.argv[1]=="udp" else socket.SOCK_STREAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
tcp_port=$(free_port tcp); udp_port=$(free_port udp); otlp_port=$(free_port tcp)
metrics_port=$(free_port tcp); prom_port=$(free_port tcp)

# --- The receivers: rsyslogd and the journal's socket ---------------------------------------------
mkdir -p "$work/rsyslog"
cat >"$work/rsyslog.conf" <<EOF
global(workDirectory="$work/rsyslog")
module(load="imtcp")
module(load="imudp")
module(load="imuxsock" SysSock.Use="off")
input(type="imtcp" address="127.0.0.1" port="$tcp_port" ruleset="tcp")
input(type="imudp" address="127.0.0.1" port="$udp_port" ruleset="udp")
input(type="imuxsock" Socket="$work/syslog.sock" UseSpecialParser="off" ParseHostname="on" Ruleset="unix")
template(name="fields" type="string" string="%syslogfacility-text%.%syslogseverity-text%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
ruleset(name="tcp") { action(type="omfile" file="$work/syslog-tcp.log" template="fields") }
ruleset(name="udp") { action(type="omfile" file="$work/syslog-udp.log" template="fields") }
ruleset(name="unix") { action(type="omfile" file="$work/syslog-unix.log" template="fields") }
EOF
rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslog.pid" >"$work/rsyslog.out" 2>&1 &
extra_pids+=($!)
tcp_up() { (exec 3<>"/dev/tcp/127.0.0.1/$tcp_port") 2>/dev/null; }
wait_until 10 tcp_up || { echo "rsyslogd did not start:"; cat "$work/rsyslog.out"; exit 1; }
python3 "$src/tests/e2e/journal_sink.py" "$work/journal.sock" "$work/journal.export" >"$work/journal.out" 2>&1 &
extra_pids+=($!)
wait_until 10 grep -q listening "$work/journal.out"

# The OTLP receiver starts later: until then its records wait and are retried.
cat >"$work/daemon.yml" <<EOF
log-sinks: [file, journald, syslog, otlp]
journald-socket: $work/journal.sock
syslog-address: tcp://127.0.0.1:$tcp_port
syslog-facility: local3
otlp-endpoint: http://127.0.0.1:$otlp_port
metrics-listen: 127.0.0.1:$metrics_port
tracing-protocol: http/json
tracing-sampling-rate: 1
metrics-protocol: http/json
metrics-export-interval-seconds: 1
scale-to-zero-grace-period-seconds: 1
EOF
daemon_args=(--config "$work/daemon.yml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
e service create hello --image "oci:$work/image:latest" >/dev/null
# A second service goes to zero meanwhile, for a traced cold start below.
e service create cold --image "oci:$work/image:latest" --scale-window 6s >/dev/null
curl -sf -H 'Host: cold.default.localhost' "http://127.0.0.1:$port/" >/dev/null
for _ in 1 2 3; do curl -sf -H 'Host: hello.default.localhost' "http://127.0.0.1:$port/" >/dev/null; done

# --- syslog over TCP: rsyslogd parsed the octet-counted RFC 5424 messages -------------------------
has() { grep -qF -- "$2" "$1" 2>/dev/null; }
app_line='local3.info|hello|hello-00001-'
check "rsyslogd got the app's line over TCP, as RFC 5424 (facility, app-name, procid, msgid)" wait_until 10 has "$work/syslog-tcp.log" "$app_line"
check "...with elafros's structured data" grep -qE '\|app\|\[elafros@32473 namespace="default" service="hello" revision="hello-00001" instance="hello-00001-[a-z0-9]+" stream="stdout"\]\|hello: serving revision hello-00001' "$work/syslog-tcp.log"
access_seen() { grep -qE '^local3\.info\|hello\|hello-00001-[a-z0-9]+\|access\|.*"status":200' "$work/syslog-tcp.log"; }
check "...the access log's lines" wait_until 10 access_seen
daemon_pid_line() { grep -qE "^local3\.info\|elafrosd\|$daemon_pid\|daemon\|-\|.*created Service default/hello" "$work/syslog-tcp.log"; }
check "...and the daemon's own, under its pid" wait_until 10 daemon_pid_line
check "...each message whole: nothing rsyslogd split off" bash -c "! grep -qvE '^local3\.[a-z]+\|' '$work/syslog-tcp.log'"

# --- journald: the native encoding, read back by systemd-journal-remote and journalctl ------------
journal_has_app() {
  rm -f "$work/remote.journal"
  "$journal_remote" --output="$work/remote.journal" - <"$work/journal.export" 2>/dev/null || return 1
  journalctl --file "$work/remote.journal" -o json 2>/dev/null >"$work/journal.json" || return 1
  python3 - "$work/journal.json" 2>"$work/journal.err" <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
app = [e for e in entries if e.get("ELAFROS_SOURCE") == "app" and e.get("MESSAGE", "").startswith("hello: serving revision hello-")]
assert app, "no app entry among %d" % len(entries)
e = app[0]
assert e["ELAFROS_NAMESPACE"] == "default" and e["ELAFROS_SERVICE"] == "hello", e
assert e["ELAFROS_REVISION"] == "hello-00001" and e["ELAFROS_INSTANCE"].startswith("hello-00001-"), e
assert e["ELAFROS_STREAM"] == "stdout" and e["PRIORITY"] == "6" and e["SYSLOG_IDENTIFIER"] == "hello", e
assert any(x.get("ELAFROS_SOURCE") == "daemon" and x.get("SYSLOG_IDENTIFIER") == "elafrosd" for x in entries)
assert any(x.get("ELAFROS_SOURCE") == "access" for x in entries)
PY
}
check "journalctl reads the app's, the access and the daemon's entries with their ELAFROS_ fields" wait_until 10 journal_has_app

# --- OTLP/HTTP JSON: down at first, then up; decoded by protobuf against the OTLP messages --------
mkdir -p "$work/otlp" "$work/gen"
protoc -I "$src/tests/e2e/otlp" --python_out="$work/gen" $(cd "$src/tests/e2e/otlp" && find opentelemetry -name '*.proto')
otlp_retried() { curl -s "http://127.0.0.1:$metrics_port/metrics" | grep -qE '^elafros_log_sink_retries_total\{sink="otlp"\} [1-9]'; }
check "while the OTLP receiver is down, the sink retries (counted)" wait_until 10 otlp_retried
python3 "$src/tests/e2e/otlp/capture.py" "$otlp_port" "$work/otlp" >"$work/capture.out" 2>&1 &
extra_pids+=($!)
decoded() {
  compgen -G "$work/otlp/logs-*.json" >/dev/null || return 1
  /usr/bin/python3 "$src/tests/e2e/otlp/decode.py" "$work/gen" logs "$work"/otlp/logs-*.json >"$work/otlp.jsonl" || return 1
  python3 - "$work/otlp.jsonl" 2>"$work/otlp.err" <<'PY'
import json, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
app = [r for r in rows if (r["body"] or "").startswith("hello: serving revision hello-")]
assert app, "no app record among %d" % len(rows)
r = app[0]
assert r["resource"]["service.name"] == "hello" and r["resource"]["service.namespace"] == "default", r
assert r["resource"]["faas.version"] == "hello-00001" and r["attributes"]["log.iostream"] == "stdout", r
assert r["severity"] == 9 and r["severity_text"] == "INFO" and r["scope"] == "elafros", r
assert abs(r["time"] / 1e9 - time.time()) < 600, r["time"]
assert any(x["resource"]["service.name"] == "elafrosd" and "created Service default/hello" in x["body"] for x in rows)
assert any(x["attributes"].get("elafros.source") == "access" for x in rows)
PY
}
check "once it is up, the waiting records arrive, and protobuf's strict JSON parser takes them" wait_until 15 decoded
check "...valid OTLP in every body (an unknown field or a bad type would have failed the parse)" test -s "$work/otlp.jsonl"

# --- Traces: the caller's traceparent continued to the app; spans for the request ------------------
trace=4bf92f3577b34da6a3ce929d0e0e4736
caller_span=00f067aa0ba902b7
app_env=$(curl -sf -H 'Host: hello.default.localhost' -H "traceparent: 00-$trace-$caller_span-01" \
  "http://127.0.0.1:$port/cgi-bin/env")
app_tp=$(sed -n 's/^HTTP_TRACEPARENT=//p' <<<"$app_env" | tr -d '\r')
check "the app gets a traceparent in the caller's trace, naming the proxy's span" \
  bash -c "[[ '$app_tp' =~ ^00-$trace-[0-9a-f]{16}-01\$ ]] && [ '${app_tp:36:16}' != '$caller_span' ]"
proxy_span=${app_tp:36:16}
fresh=$(curl -sf -H 'Host: hello.default.localhost' "http://127.0.0.1:$port/cgi-bin/env" | sed -n 's/^HTTP_TRACEPARENT=//p' | tr -d '\r')
check "a request without one starts a new trace (sampled at rate 1)" bash -c "[[ '$fresh' =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-01\$ ]] && [[ '$fresh' != 00-$trace-* ]]"
spans_ok() {
  compgen -G "$work/otlp/traces-*.json" >/dev/null || return 1
  /usr/bin/python3 "$src/tests/e2e/otlp/decode.py" "$work/gen" traces "$work"/otlp/traces-*.json >"$work/spans.jsonl" || return 1
  python3 - "$work/spans.jsonl" "$trace" "$caller_span" "$proxy_span" 2>/dev/null <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
trace, caller, proxy = sys.argv[2:5]
s = [r for r in rows if r["trace"] == trace]
assert s, "no span of the trace among %d" % len(rows)
s = s[0]
assert s["span"] == proxy and s["parent"] == caller and s["kind"] == 2, s
assert s["attributes"]["http.response.status_code"] == 200 and s["attributes"]["url.path"] == "/cgi-bin/env", s
assert s["attributes"]["faas.coldstart"] is False and s["resource"]["service.name"] == "hello", s
assert s["resource"]["faas.version"] == "hello-00001" and s["end"] > s["start"] > 0, s
PY
}
check "the request's SERVER span reaches OTLP, parented on the caller's span, decoded by protobuf" wait_until 10 spans_ok
at_zero() { [ "$(instances cold)" = 0 ]; }
check "the second service went to zero" wait_until 30 at_zero
cold_trace=0af7651916cd43dd8448eb211c80319c
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H 'Host: cold.default.localhost' \
  -H "traceparent: 00-$cold_trace-b7ad6b7169203331-01" "http://127.0.0.1:$port/")
check "a request at zero is served" test "$code" = 200
cold_spans() {
  /usr/bin/python3 "$src/tests/e2e/otlp/decode.py" "$work/gen" traces "$work"/otlp/traces-*.json >"$work/spans.jsonl" || return 1
  python3 - "$work/spans.jsonl" "$cold_trace" 2>"$work/cold.err" <<'PY'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if r["trace"] == sys.argv[2]]
by = {r["name"]: r for r in rows}
server, wait, cold = by.get("GET"), by.get("activator wait"), by.get("cold start")
assert server and wait and cold, [r["name"] for r in rows]
assert server["attributes"]["faas.coldstart"] is True, server
assert wait["parent"] == server["span"] and cold["parent"] == wait["span"] and wait["kind"] == 1, rows
assert server["start"] <= wait["start"] <= wait["end"] <= server["end"], rows
print("# cold start span: %.0f ms" % ((cold["end"] - cold["start"]) / 1e6))
PY
}
check "...with child spans for the activator's wait and the cold start" wait_until 10 cold_spans

# --- Metrics pushed as OTLP, with the FaaS names ----------------------------------------------------
metrics_ok() {
  compgen -G "$work/otlp/metrics-*.json" >/dev/null || return 1
  latest=$(ls "$work"/otlp/metrics-*.json | tail -1)
  /usr/bin/python3 "$src/tests/e2e/otlp/decode.py" "$work/gen" metrics "$latest" >"$work/points.jsonl" || return 1
  python3 - "$work/points.jsonl" 2>"$work/points.err" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
inv = [r for r in rows if r["name"] == "faas.invocations" and r["attributes"].get("faas.name") == "hello"]
assert inv and inv[0]["kind"] == "sum" and inv[0]["monotonic"] and inv[0]["temporality"] == 2, inv
assert inv[0]["value"] >= 5 and inv[0]["attributes"]["faas.version"] == "hello-00001", inv
dur = [r for r in rows if r["name"] == "faas.invoke_duration" and r["attributes"].get("faas.name") == "hello"]
assert dur and dur[0]["kind"] == "histogram" and dur[0]["unit"] == "s", dur
d = dur[0]
assert sum(d["buckets"]) == d["count"] and len(d["buckets"]) == len(d["bounds"]) + 1, d
assert any(r["name"] == "faas.coldstarts" and r["attributes"].get("faas.name") == "cold" and r["value"] >= 1 for r in rows)
assert any(r["name"] == "elafros_requests_total" for r in rows)
PY
}
check "metrics are pushed as OTLP: faas.invocations, faas.invoke_duration (per-bucket counts), faas.coldstarts" wait_until 10 metrics_ok

# --- Prometheus scrapes /metrics ----------------------------------------------------------------
curl -s "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.txt"
check "promtool accepts /metrics" bash -c "promtool check metrics <'$work/metrics.txt' 2>&1 | { ! grep -qi error; }"
cat >"$work/prometheus.yml" <<EOF
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: elafros
    static_configs: [{targets: ["127.0.0.1:$metrics_port"]}]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.out" 2>&1 &
extra_pids+=($!)
scraped() {
  curl -s "http://127.0.0.1:$prom_port/api/v1/query" \
    --data-urlencode 'query=elafros_log_sink_records_total{sink="syslog",outcome="sent"}' |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; assert r and float(r[0]["value"][1]) > 0, r' 2>/dev/null
}
check "Prometheus scrapes elafrosd and answers a query on its sink counters" wait_until 20 scraped
healthy() { e status -o json | python3 -c '
import json, sys
s = {x["name"]: x for x in json.load(sys.stdin)["logSinks"]}
assert s["syslog"]["healthy"] and s["journald"]["healthy"] and s["otlp"]["healthy"], s' 2>/dev/null; }
check "status lists the sinks, healthy" wait_until 10 healthy
e service delete cold >/dev/null

# --- syslog over UDP and a unix socket: the daemon's own lines ----------------------------------
for transport in "udp://127.0.0.1:$udp_port" "unix://$work/syslog.sock"; do
  stop_daemon
  printf 'log-sinks: [file, syslog]\nlog-sink-sources: [daemon]\nsyslog-address: %s\n' "$transport" >"$work/daemon.yml"
  start_daemon
  name=${transport%%:*}
  seen() { grep -qE "^daemon\.info\|elafrosd\|$daemon_pid\|daemon\|-\|elafrosd .* serving" "$work/syslog-$1.log" 2>/dev/null; }
  check "over $name, rsyslogd got the daemon's lines as RFC 5424" wait_until 10 seen "$name"
done
check "...and no app lines, which log-sink-sources left out" bash -c "! grep -q '|app|' '$work/syslog-udp.log' '$work/syslog-unix.log'"

# --- Bad settings are refused, naming the key -----------------------------------------------------
refused() {  # CONFIG-TEXT EXPECTED
  printf '%s\n' "$1" >"$work/bad.yml"
  local out
  out=$("$elafrosd" --config "$work/bad.yml" --data-dir "$work/bad" --socket "$work/bad.sock" 2>&1 || true)
  contains "$out" "$2" || { echo "# got: $out"; return 1; }
}
check "an unknown sink" refused 'log-sinks: [file, kafka]' 'log-sinks has "kafka"; the sinks are file, stdout, journald, syslog and otlp'
check "a bad syslog address" refused $'log-sinks: [syslog]\nsyslog-address: http://x' 'syslog-address "http://x" is not unix:///PATH, udp://HOST:PORT or tcp://HOST:PORT'
check "a bad facility" refused $'log-sinks: [syslog]\nsyslog-facility: locl0' 'syslog-facility "locl0" is not a syslog facility'
check "a bad OTLP endpoint" refused $'log-sinks: [otlp]\notlp-endpoint: grpc://x:4317' 'otlp-endpoint "grpc://x:4317" is not an http://HOST:PORT URL'
check "an unknown source" refused 'log-sink-sources: [app, kernel]' 'log-sink-sources has "kernel"; the sources are app, access and daemon'

finish
