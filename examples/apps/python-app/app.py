"""A small web app on Python's standard library; it listens on $PORT (Knative's contract)."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import greeting


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (greeting.hello(os.environ.get("K_SERVICE", "python")) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8080"))
    print("listening on port %d" % port, flush=True)
    ThreadingHTTPServer(("", port), Handler).serve_forever()
