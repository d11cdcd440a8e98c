#!/usr/bin/env bash
# Faults and exhaustion, made by the test itself: elafrosd under a small open-files limit sheds
# new proxy connections with a fast 503 instead of hanging or losing track of containers, and
# max-connections caps what each listener holds.
#   tests/e2e/faults_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null

# ulimit -n 256 sets the soft and the hard limit: nothing to raise to.
real_daemon=$elafrosd
printf '#!/bin/sh\nulimit -n 256\nexec "%s" "$@"\n' "$real_daemon" >"$work/elafrosd-256"
chmod +x "$work/elafrosd-256"
elafrosd=$work/elafrosd-256
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
check "status reports the open-files limit" contains "$(e status)" "Open files:  limit 256"
check "...and the daemon warns about it" grep -q "the open-files limit is 256" "$work/daemon.log"

e service create slow --image "oci:$work/image:latest" --scale-max 3 >/dev/null
host=slow.default.localhost

# 600 requests at once, each to an app that answers after 0.3 s; each must get an answer (200,
# or 503 with Retry-After when the daemon sheds) within its 20 s deadline.
out=$(python3 - "$port" "$host" <<'PY'
import asyncio, resource, sys, time
port, host = int(sys.argv[1]), sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
async def one():
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 20)
        w.write(f"GET /cgi-bin/sleep?0.3 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = await asyncio.wait_for(r.read(), 20)
        w.close()
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        code = head.split(" ", 2)[1] if head.startswith("HTTP/") else "none"
        if code == "503" and "retry-after: 1" not in head.lower():
            return "503-without-retry-after"
        return code
    except asyncio.TimeoutError:
        return "timeout"
    except OSError as e:
        return "error"
async def main():
    start = time.time()
    results = await asyncio.gather(*[one() for _ in range(600)])
    counts = {}
    for r in results:
        counts[r] = counts.get(r, 0) + 1
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())), f"in {time.time() - start:.1f}s")
asyncio.run(main())
PY
)
echo "# 600 concurrent requests: $out"
check "every request is answered 200 or 503 with Retry-After, none hangs" \
  bash -c "grep -qE '^(200=[0-9]+ ?)?(503=[0-9]+ )?in ' <<<'$out'"
check "...and some are served while it sheds the rest" bash -c "[ \$(sed -n 's/.*200=\([0-9]*\).*/\1/p' <<<'$out') -ge 10 ]"
served() { test "$(curl -s -m 10 -H "Host: $host" "http://127.0.0.1:$port/")" = "Hello from slow (revision slow-00001)"; }
check "afterwards it serves normally" wait_until 10 served
containers=$(runc --root "$data/runc" list -q | wc -l)
instances=$(e instance list --standbys -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
check "runc's containers are the daemon's instances ($containers = $instances)" test "$containers" = "$instances"
check "the API kept working" contains "$(e service list)" "slow"
e service delete slow >/dev/null
no_container() { test -z "$(runc --root "$data/runc" list -q)"; }
check "deleting the service leaves no container (a failed removal is retried)" wait_until 30 no_container

if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi

# With only the soft limit low, the daemon raises it to the hard one at start.
hard=$(ulimit -Hn)
printf '#!/bin/sh\nulimit -Sn 256\nexec "%s" "$@"\n' "$real_daemon" >"$work/elafrosd-soft"
chmod +x "$work/elafrosd-soft"
elafrosd=$work/elafrosd-soft
printf 'max-connections: 3\napi-max-connections: 3\n' >"$work/limits.yaml"
daemon_args=(--config "$work/limits.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
if [ "$hard" = unlimited ] || [ "$hard" -le 256 ]; then
  pass "(the hard limit is $hard: nothing to raise here)"
else
  check "a low soft limit is raised to the hard one ($hard)" contains "$(e status)" "Open files:  limit $hard"
  check "...and the daemon says so" grep -q "raised the open-files limit from 256 to $hard" "$work/daemon.log"
fi

# max-connections: three idle connections held, a fourth is answered 503 with Retry-After, on the
# proxy and on the API socket; once they close, both serve again.
out=$(python3 - "$port" "$sock" <<'PY'
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
def ask(s, host):
    s.settimeout(10)
    s.sendall(f"GET /apis/elafros.dev/v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode().lower()
    return (head.split(" ", 2)[1] + ("+retry-after" if "retry-after: 1" in head else "") +
            ("+says-why" if b"max-connections" in data else ""))
def tcp():
    return socket.create_connection(("127.0.0.1", port), 10)
def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return s
for name, connect in (("proxy", tcp), ("api", unix)):
    held = [connect() for _ in range(3)]
    over = ask(connect(), "nosuch.default.localhost")
    for h in held:
        h.close()
    print(f"{name}:{over}")
PY
)
echo "# a fourth connection: $out"
check "the proxy answers a connection over max-connections 503 with Retry-After" contains "$out" "proxy:503+retry-after+says-why"
check "...and the API one over api-max-connections too" contains "$out" "api:503+retry-after+says-why"
check "...and the API serves again once they close" wait_until 5 bash -c "'$elafros_bin' --socket '$sock' status >/dev/null"
if stop_daemon; then pass "SIGTERM exits 0 again"; else fail "SIGTERM exits 0 again"; fi
finish
