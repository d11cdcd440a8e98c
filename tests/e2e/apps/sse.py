"""Server-sent events on $PORT (Python's http.server, HTTP/1.1, chunked):
  GET /events?n=N&gap=S&wait=W   waits W seconds, then sends N events S seconds apart, each
                                 flushed as it is written
  GET /                          200 "ok"
SIGTERM ends it."""
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/events":
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        q = {k: float(v[0]) for k, v in parse_qs(url.query).items()}
        time.sleep(q.get("wait", 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        n = int(q.get("n", 5))
        for i in range(n):
            event = f"id: {i}\ndata: event {i}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            if i < n - 1:
                time.sleep(q.get("gap", 0.5))
        self.wfile.write(b"0\r\n\r\n")


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
