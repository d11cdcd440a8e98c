#!/usr/bin/env python3
"""A loopback OTLP/HTTP receiver for the tests: every POST body to /v1/logs, /v1/metrics or
/v1/traces is saved as DIR/<signal>-<n>.json and answered 200 with an empty partial success.
  capture.py PORT DIR"""
import http.server, os, sys, threading

port, out = int(sys.argv[1]), sys.argv[2]
count = {"n": 0}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        signal = self.path.rsplit("/", 1)[-1]
        if self.path not in ("/v1/logs", "/v1/metrics", "/v1/traces"):
            self.send_response(404)
            self.end_headers()
            return
        if self.headers.get("content-type", "").split(";")[0] != "application/json":
            self.send_response(415)
            self.end_headers()
            return
        with lock:
            count["n"] += 1
            name = os.path.join(out, "%s-%05d.json" % (signal, count["n"]))
        with open(name + ".tmp", "wb") as f:
            f.write(body)
        os.rename(name + ".tmp", name)
        reply = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
print("listening", flush=True)
server.serve_forever()
