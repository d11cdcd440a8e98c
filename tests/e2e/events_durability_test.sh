#!/usr/bin/env bash
# Durable delivery across SIGKILL: 8 producers publish EVENTS events (10,000 by default) while
# elafrosd is killed with SIGKILL 5 times at random moments and restarted. Every event answered
# 202 reaches the subscriber at least once: none is lost; duplicates are counted and reported.
#   tests/e2e/events_durability_test.sh ELAFROSD ELAFROS SOURCE_DIR [EVENTS]
set -euo pipefail

source "$(dirname "$0")/lib.sh"
total=${4:-10000}

start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')  # kept across restarts
start_subscriber
producers_pid=""
stop_all() {
  set +e
  [ -n "$producers_pid" ] && kill "$producers_pid" 2>/dev/null
  cleanup
}
trap stop_all EXIT
e broker create default --retry 20 --backoff-delay PT0.1S >/dev/null
e trigger create all --sink "$sub/ok" >/dev/null
ready() { e trigger list | grep -q "^all .*True"; }
wait_until 10 ready

# 8 producers on keep-alive connections; an event not answered 202 (the daemon is down) is sent
# again, for up to 20 s; those answered 202 are the acknowledged ones.
python3 - "$port" "$total" "$work/acked" >"$work/producers.out" 2>&1 <<'PY' &
import http.client, sys, threading, time
port, total, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
per = total // 8
acked, given_up, lock = [], [0], threading.Lock()
def producer(k):
    conn = None
    for i in range(per):
        eid = f"p{k}-{i}"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/default/default", body=b'{"n":1}', headers={
                    "Host": "broker-ingress.localhost", "ce-id": eid, "ce-source": "/durability",
                    "ce-specversion": "1.0", "ce-type": "durability", "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 202:
                    with lock:
                        acked.append(eid)
                    break
            except Exception:
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        else:
            with lock:
                given_up[0] += 1
threads = [threading.Thread(target=producer, args=(k,)) for k in range(8)]
start = time.time()
for t in threads: t.start()
for t in threads: t.join()
open(out, "w").write("\n".join(acked) + "\n")
print(f"acked={len(acked)} given_up={given_up[0]} seconds={time.time() - start:.1f}")
PY
producers_pid=$!

# 5 SIGKILLs at random moments while they publish.
for round in 1 2 3 4 5; do
  sleep "0.$(( (RANDOM % 7) + 3 ))"
  kill -KILL "$daemon_pid"
  wait "$daemon_pid" 2>/dev/null || true
  daemon_pid=""
  start_daemon
done
pass "5 SIGKILL rounds while 8 producers published"
wait "$producers_pid"
producers_pid=""
echo "# producers: $(cat "$work/producers.out")"
acked=$(wc -l <"$work/acked")
check "the producers' events were acknowledged ($acked of $total)" test "$acked" -ge $((total * 9 / 10))

delivered() {
  python3 - "$work/acked" "$work/received.jsonl" <<'PY'
import json, sys
acked = set(l.strip() for l in open(sys.argv[1]) if l.strip())
got = [json.loads(l)["event"]["id"] for l in open(sys.argv[2]) if '"durability"' in l]
missing = acked - set(got)
print(f"lost={len(missing)} received={len(got)} unique={len(set(got))} duplicates={len(got) - len(set(got))}")
sys.exit(0 if not missing else 1)
PY
}
check "every acknowledged event is delivered at least once: 0 lost" wait_until 90 delivered
echo "# $(delivered || true)"
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
finish
