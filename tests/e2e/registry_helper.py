#!/usr/bin/env python3
"""Small servers the registry e2e test starts on loopback, next to a real docker-registry.

  token    --key K --cert C --issuer I --service S --user U --password P
           A Docker token service: GET /token?service=S&scope=repository:NAME:ACTIONS answers
           {"token": JWT} signed RS256 (with openssl) by K, with C in the x5c header, as
           docker-registry's token auth verifies. The right Basic login gets every requested
           action; anonymous callers get pull on public/* only; a wrong login gets 401; the
           user "blocked" gets 403.
  front    --upstream HOST:PORT [--delay SECONDS]
           A registry front: manifests are proxied to the upstream, blobs are answered with a
           307 to the upstream (as registries that keep blobs in object storage do). Repository
           corrupt/NAME serves upstream team/NAME, with every blob's last byte flipped.
           slow/NAME is team/NAME with --delay before each blob redirect.
  silent   Accepts connections and never answers (timeouts).

Each writes its port to --port-file once listening, logs requests to stdout, and stops on
SIGTERM.
"""
import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(args, subject, access):
    der = subprocess.run(["openssl", "x509", "-in", args.cert, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    now = int(time.time())
    claims = {"iss": args.issuer, "sub": subject, "aud": args.service, "exp": now + 300,
              "nbf": now - 10, "iat": now, "jti": base64.b16encode(os.urandom(8)).decode(),
              "access": access}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.key],
                         input=signing_input.encode(), check=True, capture_output=True).stdout
    return signing_input + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    args = None

    def log_message(self, fmt, *a):
        sys.stdout.write("%s %s\n" % (self.args.mode, fmt % a))
        sys.stdout.flush()

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        getattr(self, "get_" + self.args.mode)()

    def get_token(self):
        url = urlparse(self.path)
        if url.path != "/token":
            return self.reply(404)
        q = parse_qs(url.query)
        if q.get("service", [""])[0] != self.args.service:
            return self.reply(400, b'{"details":"wrong service"}')
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if u == "blocked":  # a known account without rights
                return self.reply(403, b'{"details":"access denied"}')
            if (u, p) != (self.args.user, self.args.password):
                return self.reply(401, b'{"details":"wrong login"}')
            user = u
        access = []
        for scope in q.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = actions.split(",")
            granted = wanted if user else [a for a in wanted if a == "pull" and name.startswith("public/")]
            access.append({"type": kind, "name": name, "actions": granted})
        body = json.dumps({"token": make_token(self.args, user or "", access),
                           "expires_in": 300}).encode()
        self.reply(200, body, {"Content-Type": "application/json"})

    def get_front(self):
        up = self.args.upstream
        parts = self.path.split("/")
        if self.path == "/v2/":
            return self.reply(200, b"{}", {"Content-Type": "application/json"})
        # /v2/<repo...>/<manifests|blobs>/<ref>
        if len(parts) < 5 or parts[1] != "v2":
            return self.reply(404)
        kind, ref = parts[-2], parts[-1]
        repo = "/".join(parts[2:-2])
        mode, _, name = repo.partition("/")
        upstream_path = "/v2/team/%s/%s/%s" % (name, kind, ref)
        if kind == "manifests":
            req = urllib.request.Request("http://%s%s" % (up, upstream_path),
                                         headers={"Accept": self.headers.get("Accept", "")})
            try:
                with urllib.request.urlopen(req) as r:
                    return self.reply(200, r.read(), {"Content-Type": r.headers["Content-Type"]})
            except urllib.error.HTTPError as e:
                return self.reply(e.code, e.read(), {"Content-Type": "application/json"})
        if kind != "blobs":
            return self.reply(404)
        if mode == "corrupt":
            with urllib.request.urlopen("http://%s%s" % (up, upstream_path)) as r:
                data = bytearray(r.read())
            data[-1] ^= 0xFF
            return self.reply(200, bytes(data), {"Content-Type": "application/octet-stream"})
        if mode == "slow":
            time.sleep(self.args.delay)
        self.reply(307, b"", {"Location": "http://%s%s" % (up, upstream_path)})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["token", "front", "silent"])
    p.add_argument("--port-file", required=True)
    p.add_argument("--key")
    p.add_argument("--cert")
    p.add_argument("--issuer")
    p.add_argument("--service")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--upstream")
    p.add_argument("--delay", type=float, default=1.0)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    if args.mode == "silent":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(s.getsockname()[1]))
        os.rename(args.port_file + ".tmp", args.port_file)
        held = []
        deadline = time.time() + 600  # bounded, like every loop in the tests
        while time.time() < deadline:
            s.settimeout(1)
            try:
                held.append(s.accept()[0])
            except socket.timeout:
                pass
        return

    Handler.args = args
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    threading.Timer(600, lambda: os._exit(0)).start()  # bounded
    server.serve_forever()


if __name__ == "__main__":
    main()
