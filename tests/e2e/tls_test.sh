#!/usr/bin/env bash
# HTTPS, HTTP/2 and gRPC through the proxy, against independent clients and servers (curl with
# OpenSSL and nghttp2, h2load, Debian's python3-grpcio on both ends):
#  - certificates from the daemon's local CA ('elafros system trust') for NAME.NS.localhost and
#    for a mapped domain, from the operator's directory (an exact host and a wildcard), and from
#    a DomainMapping's kubernetes.io/tls Secret, each verified against the CA that issued it;
#  - h2 by ALPN and h2c with prior knowledge, a body streamed both ways over each;
#  - gRPC to an app whose port is named h2c: unary, server and bidirectional streaming, a
#    status in trailers, over h2c and over TLS, and from an HTTP/1.1 client (trailers chunked);
#  - refusals that name what to fix.
#   tests/e2e/tls_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

# An operator's own CA (openssl, not ours) and the certificates it issues.
own=$work/own
mkdir -p "$own" "$work/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=own test CA" \
  -keyout "$own/ca.key" -out "$own/ca.crt" 2>/dev/null
issue() {  # NAME HOST: $own/NAME.crt and .key for HOST
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$own/$1.key" -out "$own/$1.csr" 2>/dev/null
  openssl x509 -req -in "$own/$1.csr" -CA "$own/ca.crt" -CAkey "$own/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=DNS:%s\n' "$2") -out "$own/$1.crt" 2>/dev/null
}
issue files files.example.test
issue wild '*.wild.example.test'
issue mapped mapped.example.test
cp "$own/files.crt" "$work/certs/files.example.test.crt"
cp "$own/files.key" "$work/certs/files.example.test.key"
cp "$own/wild.crt" "$work/certs/_.wild.example.test.crt"
cp "$own/wild.key" "$work/certs/_.wild.example.test.key"

"$src/examples/hello/build-image.sh" "$work/hello" latest >/dev/null
"$src/tests/e2e/apps/build-pyapp.sh" "$work/grpc" "$src/tests/e2e/apps/grpcecho.py" grpc
"$src/tests/e2e/apps/build-pyapp.sh" "$work/ws" "$src/tests/e2e/apps/wsecho.py" websockets
echo "scale-to-zero-grace-period-seconds: 2" >"$work/config.yaml"
daemon_args=(--listen-tls 127.0.0.1:0 --tls-cert-dir "$work/certs" --config "$work/config.yaml")
start_daemon
status=$(e status -o json)
port=$(sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p' <<<"$status")
tls=$(sed -n 's/.*"listenTls": "127.0.0.1:\([0-9]*\)".*/\1/p' <<<"$status")
[ -n "$tls" ] || { echo "status shows no listenTls: $status"; exit 1; }
e system trust --pem >"$work/local-ca.crt"
check "'elafros system trust' explains how to trust the CA" contains "$(e system trust)" "update-ca-certificates"

e image import "oci:$work/hello:latest" --name hello >/dev/null
e service create hello --image hello >/dev/null
host=hello.default.localhost
https() {  # CA HOST PATH [curl args...]: an HTTPS request to the proxy for HOST
  local ca=$1 h=$2 path=$3; shift 3
  curl -sS --cacert "$ca" --resolve "$h:$tls:127.0.0.1" "$@" "https://$h:$tls$path"
}

check "curl verifies NAME.NS.localhost's certificate against the local CA, and is served" \
  test "$(https "$work/local-ca.crt" $host / --http1.1)" = "Hello from hello (revision hello-00001)"
check "...with HTTP/2 by ALPN (curl --http2)" \
  test "$(https "$work/local-ca.crt" $host / --http2 -o /dev/null -w '%{http_version} %{http_code}')" = "2 200"
check "a client that does not trust the CA is refused by its own verification (curl exit 60)" \
  bash -c 'curl -sS --resolve "$1:$2:127.0.0.1" "https://$1:$2/" >/dev/null 2>&1; test $? -eq 60' _ $host "$tls"
check "HTTP/2 with prior knowledge on the plain listener (curl --http2-prior-knowledge)" \
  test "$(curl -sS --http2-prior-knowledge --resolve "$host:$port:127.0.0.1" -o "$work/h2c.out" -w '%{http_version}' "http://$host:$port/") $(cat "$work/h2c.out")" = "2 Hello from hello (revision hello-00001)"
out=$(/usr/bin/python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\nHost: hello.default.localhost\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print(got.decode(errors="replace"))
PY
)
check "HTTP/2's preface after an HTTP/1.1 request on the same connection is refused (505)" \
  bash -c 'grep -q "^HTTP/1.1 200" <<<"$1" && grep -q "^HTTP/1.1 505" <<<"$1"' _ "$out"
check "X-Forwarded-Proto is https over TLS" \
  contains "$(https "$work/local-ca.crt" $host /cgi-bin/env --http2)" "HTTP_X_FORWARDED_PROTO=https"

# A body both ways: 3 MiB echoed, over h2 (TLS) and h2c, flow control end to end.
head -c 3145728 /dev/urandom >"$work/body"
want=$(sha256sum <"$work/body")
check "h2 over TLS streams a 3 MiB body to the app and back unchanged" \
  test "$(https "$work/local-ca.crt" $host /cgi-bin/echo --http2 --data-binary @"$work/body" | sha256sum)" = "$want"
check "...and so does h2c" \
  test "$(curl -sS --http2-prior-knowledge --resolve "$host:$port:127.0.0.1" --data-binary @"$work/body" "http://$host:$port/cgi-bin/echo" | sha256sum)" = "$want"
check "HTTP/2 to a host no service serves is a 404 that says where the URLs are" \
  contains "$(curl -sS --http2-prior-knowledge --resolve "nope.localhost:$port:127.0.0.1" "http://nope.localhost:$port/")" "'elafros service list' shows the URLs"
out=$(h2load -n 400 -c 4 -m 8 --connect-to="127.0.0.1:$tls" "https://$host:$tls/" 2>&1 || true)
check "h2load (nghttp2) multiplexes 400 requests over 4 TLS connections, all 2xx" \
  contains "$out" "status codes: 400 2xx"

# WebSocket over TLS (wss://): the upgraded connection is relayed through the TLS stream.
e image import "oci:$work/ws:latest" --name wsecho >/dev/null
e service create ws --image wsecho >/dev/null
out=$(ELAFROS_CA="$work/local-ca.crt" timeout 120 /usr/bin/python3 "$src/tests/e2e/stream_client.py" echo "127.0.0.1:$tls" ws.default.localhost 300 2>&1 || true)
check "a wss:// client echoes 300 messages through the HTTPS listener" \
  test "$(/usr/bin/python3 -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["sent"], o["bad"])' "$out" 2>/dev/null)" = "300 0"

# gRPC: the app's port is named h2c, so the proxy speaks HTTP/2 to it.
e image import "oci:$work/grpc:latest" --name grpcecho >/dev/null
cat >"$work/grpc.yaml" <<YAML
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: grpc
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/window: 6s
    spec:
      containers:
        - image: grpcecho
          ports:
            - name: h2c
              containerPort: 8080
YAML
e apply -f "$work/grpc.yaml" >/dev/null
grpc_field() { /usr/bin/python3 -c 'import json,sys; o=json.loads(sys.argv[1]); v=o[sys.argv[2]]; print(",".join(v) if isinstance(v,list) else v)' "$1" "$2"; }
for via in h2c tls; do
  if [ $via = h2c ]; then
    out=$(timeout 60 /usr/bin/python3 "$src/tests/e2e/grpc_client.py" "127.0.0.1:$port" grpc.default.localhost 2>&1 || true)
  else
    out=$(timeout 60 /usr/bin/python3 "$src/tests/e2e/grpc_client.py" "127.0.0.1:$tls" grpc.default.localhost "$work/local-ca.crt" 2>&1 || true)
  fi
  echo "     gRPC over $via: ${out:0:160}…"
  check "gRPC ($via): a unary call is answered" test "$(grpc_field "$out" say)" = "echo:hello"
  check "gRPC ($via): a server stream brings 50 messages in order" \
    test "$(grpc_field "$out" count)" = "$(seq -s, 0 49)"
  check "gRPC ($via): a bidirectional stream echoes 200 messages, each matched" \
    test "$(grpc_field "$out" chat_matched)/$(grpc_field "$out" chat_received)" = "200/200"
  check "gRPC ($via): a failing call's status and message come through in trailers" \
    test "$(grpc_field "$out" fail)" = "INVALID_ARGUMENT: no such thing"
done
printf '\0\0\0\0\5hello' >"$work/grpc.msg"
out=$(curl -sS --http1.1 --raw --resolve "grpc.default.localhost:$port:127.0.0.1" -H 'content-type: application/grpc' \
  -H 'te: trailers' --data-binary @"$work/grpc.msg" "http://grpc.default.localhost:$port/echo.Echo/Say" | tr -d '\0' || true)
check "an HTTP/1.1 client reaches the h2c app; its trailers come in the last chunk" \
  bash -c 'grep -q "echo:hello" <<<"$1" && grep -q "^grpc-status: 0" <<<"$1"' _ "$out"
out=$(/usr/bin/python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
s.sendall(b"POST /echo.Echo/Say HTTP/1.1\r\nHost: grpc.default.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print(got.decode(errors="replace"))
PY
)
check "an HTTP/1.1 body with a malformed chunk, to the h2c app, is answered 400 saying so" \
  bash -c 'grep -q "^HTTP/1.1 400" <<<"$1" && grep -qi "chunk" <<<"$1"' _ "$out"
no_grpc_instances() { [ "$(instances grpc)" -eq 0 ]; }
wait_until 40 no_grpc_instances
check "the gRPC service scaled to zero (6 s window, 2 s grace)" no_grpc_instances
out=$(timeout 60 /usr/bin/python3 "$src/tests/e2e/grpc_client.py" "127.0.0.1:$tls" grpc.default.localhost "$work/local-ca.crt" 2>&1 || true)
check "gRPC at zero: the call waits in the activator for a cold start, and is answered" \
  test "$(grpc_field "$out" say)/$(grpc_field "$out" chat_matched)" = "echo:hello/200"

# Certificates of the operator's directory, and a DomainMapping's own.
e domain create files.example.test --ref hello >/dev/null
e domain create a.wild.example.test --ref hello >/dev/null
e domain create plain.example.test --ref hello >/dev/null
check "the directory's certificate for its exact host (verified against the operator's CA)" \
  test "$(https "$own/ca.crt" files.example.test / --http2)" = "Hello from hello (revision hello-00001)"
check "the directory's wildcard (_.wild.example.test.crt) for a host under it" \
  test "$(https "$own/ca.crt" a.wild.example.test / --http2)" = "Hello from hello (revision hello-00001)"
check "a mapped domain without a certificate of its own gets one from the local CA" \
  test "$(https "$work/local-ca.crt" plain.example.test /)" = "Hello from hello (revision hello-00001)"

e domain create mapped.example.test --ref hello --tls mapped-cert >/dev/null
dm() { e domain describe mapped.example.test -o json; }
cert_condition() {
  /usr/bin/python3 -c 'import json,sys; o=json.load(sys.stdin); c=[c for c in o["status"]["conditions"] if c["type"]=="CertificateProvisioned"][0]; print(c["status"], c.get("message",""))'
}
wait_until 10 eval 'dm | cert_condition | grep -q "^False"'
check "a DomainMapping whose secret is missing says so in CertificateProvisioned" \
  contains "$(dm | cert_condition)" "secret \"mapped-cert\" not found"
# A certificate with someone else's key: accepted as a Secret, refused for serving.
e secret create tls mapped-cert --cert "$own/mapped.crt" --key "$own/files.key" >/dev/null
wait_until 10 eval 'dm | cert_condition | grep -q "not the certificate"'
check "a secret whose key is not the certificate's is not served, and says why" \
  contains "$(dm | cert_condition)" "the key is not the certificate's"
e secret delete mapped-cert >/dev/null
e secret create tls mapped-cert --cert "$own/mapped.crt" --key "$own/mapped.key" >/dev/null
wait_until 10 eval 'dm | cert_condition | grep -q "^True"'
check "with the right secret the condition turns True and the URL is https" \
  test "$(dm | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["url"])')" = "https://mapped.example.test:$tls"
check "curl verifies the DomainMapping's own certificate (the operator's CA)" \
  test "$(https "$own/ca.crt" mapped.example.test / --http2)" = "Hello from hello (revision hello-00001)"

# After a restart, the mappings and their certificates are served again (recovered, reloaded).
stop_daemon
start_daemon
status=$(e status -o json)
tls=$(sed -n 's/.*"listenTls": "127.0.0.1:\([0-9]*\)".*/\1/p' <<<"$status")
check "after a restart the DomainMapping's own certificate is served again" \
  wait_until 10 eval 'test "$(https "$own/ca.crt" mapped.example.test / --http2 2>/dev/null)" = "Hello from hello (revision hello-00001)"'
check "...and a mapped domain's certificate from the same local CA as before" \
  test "$(https "$work/local-ca.crt" plain.example.test /)" = "Hello from hello (revision hello-00001)"

# Refusals: nothing is written.
out=$(e secret create generic half --type kubernetes.io/tls --from-literal tls.crt=x 2>&1 || true)
check "a kubernetes.io/tls Secret without tls.key is refused, naming it" contains "$out" "data.tls.key"
check "...and is not created" bash -c '! "$@" secret describe half >/dev/null 2>&1' _ "$elafros_bin" --socket "$sock"
out=$(e secret create tls nocert --cert /nonexistent --key "$own/mapped.key" 2>&1 || true)
check "secret create tls with an unreadable --cert says which file" contains "$out" "--cert: cannot read /nonexistent"
stop_daemon
mkdir -p "$work/badcerts" && cp "$own/files.crt" "$work/badcerts/lonely.example.test.crt"
out=$("$elafrosd" --data-dir "$data" --socket "$sock" --listen 127.0.0.1:0 --listen-tls 127.0.0.1:0 \
  --tls-cert-dir "$work/badcerts" --network-bridge "$net_bridge" --network-subnet "$net_subnet" 2>&1 || true)
check "a certificate directory with a .crt and no .key stops the daemon, naming the key file" \
  contains "$out" "lonely.example.test.key"

finish
