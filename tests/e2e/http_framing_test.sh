#!/usr/bin/env bash
# End-to-end for the HTTP front end (docs/architecture.md, "HTTP front end"): the proxy and the
# API listener refuse every hostile request of tests/http/corpus.py with 400 (431, 413) and a
# closed connection, never answering a pipelined follow-up; what the proxy forwards parses under
# h11 (an independent parser) to what the client sent; slowloris connections are cut at the
# header deadline while normal requests go on; max-connections-per-client holds on the proxy
# and the API's HTTPS listener; an answer
# streams back while its request body still streams in.
#   tests/e2e/http_framing_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import h11' 2>/dev/null || { echo "python3-h11 is missing; run packaging/install-deps.sh"; exit 1; }

"$src/tests/e2e/apps/build-rawecho.sh" "$work/image" >/dev/null
cat >"$work/daemon.yml" <<YAML
header-timeout-seconds: 3
max-connections-per-client: 230
YAML
daemon_args=(--config "$work/daemon.yml" --api-listen 127.0.0.1:0)
start_daemon
e kubeconfig >"$work/kubeconfig"
api=$(sed -n 's/^ *server: *//p' "$work/kubeconfig" | tr -d '"')
sed -n 's/^ *certificate-authority-data: *//p' "$work/kubeconfig" | tr -d '"' | base64 -d >"$work/ca.crt"
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
e service create raw --image "oci:$work/image:latest" >/dev/null
check "the rawecho app serves" contains "$(curl -sS "http://raw.default.localhost:$port/env")" "PORT="

py=(/usr/bin/python3 "$src/tests/e2e/http_framing.py")
"${py[@]}" corpus "$port" || failures=$((failures + 1))
"${py[@]}" api "$sock" || failures=$((failures + 1))
"${py[@]}" slowloris "$port" 200 3 || failures=$((failures + 1))
"${py[@]}" cap "$port" 230 || failures=$((failures + 1))
"${py[@]}" duplex "$port" || failures=$((failures + 1))
"${py[@]}" apicap "$api" 230 "$work/ca.crt" || failures=$((failures + 1))
check "the daemon logged no crash" test -z "$(grep -i 'terminate\|assert\|sanitizer' "$work/daemon.log")"
check "elafrosd still serves after all of it" contains "$(curl -sS "http://raw.default.localhost:$port/env")" "PORT="
finish
