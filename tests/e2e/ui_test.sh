#!/usr/bin/env bash
# The dashboard (issue 17's first slice) in a real browser: Debian's chromium, headless, driven
# by puppeteer-core (tests/e2e/ui/dashboard.test.js) against elafrosd's HTTPS API listener.
# Screenshots are kept in $UI_OUT (default: the test's work folder, removed).
#   tests/e2e/ui_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

# Chromium aborts requests in flight with ERR_NETWORK_CHANGED when an interface comes or goes,
# and the suites beside this one add bridges and veths all the time. So the browser, and the
# daemon it talks to, run in a network namespace of their own with only loopback, and the
# daemon's instances share it (network: host): nothing changes under the browser.
if [ -z "${ELAFROS_UI_NETNS:-}" ]; then
  exec env ELAFROS_UI_NETNS=1 unshare --net -- "$0" "$@"
fi
ip link set lo up

source "$(dirname "$0")/lib.sh"
ui=$src/tests/e2e/ui
[ -d "$ui/node_modules/puppeteer-core" ] || { echo "puppeteer-core is missing; run packaging/install-deps.sh"; exit 1; }
[ -x /usr/bin/chromium ] || { echo "chromium is missing; run packaging/install-deps.sh"; exit 1; }

"$src/examples/hello/build-image.sh" "$work/hello" latest >/dev/null
api_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
daemon_args=(--api-listen "127.0.0.1:$api_port" --network host)
start_daemon
e image import "oci:$work/hello:latest" --name hello >/dev/null
token=$(e kubeconfig -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["users"][0]["user"]["token"])')
# Chromium trusts the API's certificate by its key (the SPKI pin), not by a CA import.
spki=$(openssl x509 -in "$data/tls/server.crt" -pubkey -noout | openssl pkey -pubin -outform der |
  openssl dgst -sha256 -binary | base64)
out=${UI_OUT:-$work/screenshots}
rc=0
UI_URL="https://localhost:$api_port" UI_TOKEN="$token" UI_SPKI="$spki" UI_OUT="$out" \
  ELAFROS="$elafros_bin" ELAFROS_SOCKET="$sock" ELAFROSD_PID="$daemon_pid" timeout 240 node "$ui/dashboard.test.js" >"$work/ui.out" 2>&1 || rc=$?
cat "$work/ui.out"
rm -rf /tmp/elafros-ui-chromium-* 2>/dev/null || true
check "the dashboard's browser run passed every check (exit $rc)" test "$rc" -eq 0
saved=0
for view in signin services services-dark service events build usage audit viewer; do [ -s "$out/$view.png" ] && saved=$((saved + 1)); done
check "it saved a screenshot of each view ($saved of 9)" test "$saved" -eq 9
finish
