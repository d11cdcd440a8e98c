#!/usr/bin/python3
"""The HTTP front end against hostile and valid requests (tests/http/corpus.py).

  http_framing.py corpus PORT        every hostile request is refused with its status and a
                                     closed connection, its pipelined follow-up never answered;
                                     every valid one is forwarded to the rawecho app
                                     (tests/e2e/apps/rawecho.c) as bytes that h11 parses to the
                                     same method, target, fields and body as the client's
  http_framing.py api SOCKET         the API listener (on its unix socket) refuses the framing
                                     attacks the same way
  http_framing.py slowloris PORT N SECONDS
                                     N connections that send one header byte a second are cut
                                     near the header deadline (SECONDS), while normal requests
                                     go on; prints their p99 with and without the attack
  http_framing.py cap PORT LIMIT     connections past max-connections-per-client get 503
  http_framing.py apicap URL LIMIT CA the API's HTTPS listener answers connection LIMIT+1 from
                                     one address 503 naming max-connections-per-client (the
                                     held ones never finish a TLS handshake: counted from the
                                     accept)
  http_framing.py duplex PORT        the proxy relays an answer while the request body still
                                     streams: the rawecho app's POST /early answers before
                                     reading any of a 64 MB body, POST /stream echoes 24 MB
                                     as it arrives; a one-way relay deadlocks on both

Prints "ok   - ..." or "FAIL - ..." lines; exits 1 on any failure.
"""
import os
import socket
import sys
import threading
import time

import h11

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import corpus  # noqa: E402

failures = 0


def report(ok, what):
    global failures
    print(("ok   - " if ok else "FAIL - ") + what, flush=True)
    if not ok:
        failures += 1


def read_responses(sock, deadline=5.0):
    """Every response the server sends before closing: [(status, headers, body)], closed."""
    sock.settimeout(deadline)
    data = b""
    closed = False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    return parse_responses(data), closed


def parse_responses(data):
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            out.append((-1, {}, data))
            break
        head = data[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = data[end + 4:end + 4 + length]
        data = data[end + 4 + length:]
        if 100 <= status < 200:
            continue
        out.append((status, headers, body))
    return out


def exchange(port, payload, deadline=5.0, family=socket.AF_INET, address=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.connect(address or ("127.0.0.1", port))
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        return read_responses(s, deadline)
    finally:
        s.close()


def h11_request(data):
    """Method, target, fields (lowercase names, in order) and body, as h11 reads them."""
    conn = h11.Connection(h11.SERVER)
    while data.startswith(b"\r\n"):  # RFC 9112 §2.2: ignored before a request line
        data = data[2:]
    conn.receive_data(data)
    request, body = None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            raise ValueError("incomplete request")
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
    fields = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in request.headers]
    return request.method.decode(), request.target.decode("latin-1"), fields, body


HOP_BY_HOP = {"connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection",
              "proxy-authorization", "proxy-authenticate"}
FRAMING = {"content-length", "transfer-encoding"}
ADDED = {"x-forwarded-for", "x-forwarded-proto", "traceparent"}


def expected_fields(fields):
    named = set()
    for n, v in fields:
        if n == "connection":
            named |= {t.strip().lower() for t in v.split(",")} - FRAMING - {"host"}
    return [(n, v) for n, v in fields
            if n not in HOP_BY_HOP | FRAMING | named | {"expect"}]


def corpus_checks(port):
    refused = 0
    for name, payload, statuses in corpus.HOSTILE:
        responses, closed = exchange(port, payload + corpus.SMUGGLED)
        got = [r[0] for r in responses]
        ok = len(responses) == 1 and got[0] in statuses and closed
        if ok:
            refused += 1
        else:
            report(False, f"hostile {name}: want one of {sorted(statuses)} and a close, got "
                          f"{got} closed={closed} {responses[:1]}")
    report(refused == len(corpus.HOSTILE),
           f"{refused}/{len(corpus.HOSTILE)} hostile requests refused (400/431/413/505), each "
           "connection closed, no pipelined follow-up answered")

    forwarded = 0
    for name, payload in corpus.VALID:
        responses, _ = exchange(port, payload, deadline=2.0)
        if len(responses) != 1 or responses[0][0] != 200:
            report(False, f"valid {name}: want one 200, got {[r[0] for r in responses]} "
                          f"{responses[:1]}")
            continue
        sent = h11_request(payload)
        try:
            got = h11_request(responses[0][2])
        except Exception as e:  # h11 refused what the proxy forwarded
            report(False, f"valid {name}: h11 cannot parse what the proxy forwarded: {e!r}: "
                          f"{responses[0][2][:300]!r}")
            continue
        want_fields = expected_fields(sent[2])
        got_fields = [(n, v) for n, v in got[2] if n not in ADDED | FRAMING]
        framed = {n for n, _ in got[2]} & FRAMING
        problems = []
        if got[0] != sent[0]:
            problems.append(f"method {got[0]} != {sent[0]}")
        if got[1] != sent[1]:
            problems.append(f"target {got[1]} != {sent[1]}")
        if got[3] != sent[3]:
            problems.append(f"body of {len(got[3])} bytes != {len(sent[3])}")
        if got_fields != want_fields:
            problems.append(f"fields {got_fields} != {want_fields}")
        if sent[3] and len(framed) != 1:
            problems.append(f"the forwarded body is framed by {sorted(framed)}")
        if problems:
            report(False, f"valid {name}: " + "; ".join(problems))
        else:
            forwarded += 1
    report(forwarded == len(corpus.VALID),
           f"{forwarded}/{len(corpus.VALID)} valid requests forwarded with fresh framing; h11 "
           "reads the same method, target, fields and body on both sides")

    # Two requests in one write: both answered, in order.
    two = corpus.req(["GET /one HTTP/1.1", f"Host: {corpus.HOST}"]) + \
        corpus.req(["GET /two HTTP/1.1", f"Host: {corpus.HOST}", "Connection: close"])
    responses, _ = exchange(port, two, deadline=3.0)
    targets = [h11_request(r[2])[1] for r in responses if r[0] == 200]
    report(targets == ["/one", "/two"], f"pipelined requests are answered in order ({targets})")


def api_checks(path):
    cases = [
        ("te-gzip", b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
         + b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
        ("cl-te", b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
        ("te-http10", b"POST /api/v1/namespaces HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", {400}),
        ("chunk-0x", b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
         b"\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", {400}),
        ("obs-fold", b"GET /version HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", {400}),
        ("nul", b"GET /version HTTP/1.1\r\nHost: x\r\nX-A: a\x00\r\n\r\n", {400}),
        ("trailer-fields", b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Type: "
         b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
         b"Authorization: Bearer forged\r\n\r\n", {400}),
        ("cl-duplicate", b"POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
         b"Content-Length: 2\r\n\r\n{}", {400}),
    ]
    for name, payload, statuses in cases:
        responses, closed = exchange(0, payload, family=socket.AF_UNIX, address=path)
        got = [r[0] for r in responses]
        report(len(responses) == 1 and got[0] in statuses and closed and
               b'"kind":"Status"' in responses[0][2],
               f"the API refuses {name} with a Status {got} and closes (closed={closed})")


def timed_get(port):
    t = time.monotonic()
    responses, _ = exchange(port, corpus.req(["GET /env HTTP/1.1", f"Host: {corpus.HOST}",
                                              "Connection: close"]), deadline=10)
    ok = len(responses) == 1 and responses[0][0] == 200
    return ok, time.monotonic() - t


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def slowloris(port, n, deadline):
    base = [timed_get(port) for _ in range(100)]
    cut = []
    lock = threading.Lock()
    connected = threading.Semaphore(0)

    def attacker():
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        connected.release()
        start = time.monotonic()
        line = f"GET / HTTP/1.1\r\nHost: {corpus.HOST}\r\nX-Slow: ".encode() + b"a" * 100
        try:
            for i in range(int(deadline) + 10):  # bounded: the deadline plus 10 bytes
                s.send(line[i:i + 1])
                s.settimeout(1.0)
                try:
                    if s.recv(4096) == b"":
                        break
                except socket.timeout:
                    continue
        except (BrokenPipeError, ConnectionResetError):
            pass
        with lock:
            cut.append(time.monotonic() - start)
        s.close()

    threads = [threading.Thread(target=attacker) for _ in range(n)]
    for t in threads:
        t.start()
    for _ in range(n):  # measure once every attack connection is open
        connected.acquire(timeout=10)
    attacked = [timed_get(port) for _ in range(100)]
    for t in threads:
        t.join()
    report(all(ok for ok, _ in base + attacked),
           "normal requests are answered during the attack")
    late = [c for c in cut if c > deadline + 2.5]
    report(len(cut) == n and not late,
           f"{n} slowloris connections are cut at the header deadline of {deadline} s "
           f"(latest after {max(cut):.1f} s)")
    b, a = p99([d for _, d in base]), p99([d for _, d in attacked])
    print(f"     p99 of normal requests: {b * 1000:.1f} ms alone, {a * 1000:.1f} ms under the "
          f"attack ({a / b:.2f}x)")


def hold_and_check(address, limit, get, what):
    """Holds `limit` idle connections to address, then `get()` (its responses) must be one 503
    naming max-connections-per-client; once they close, get() is served again."""
    held = []
    try:
        for _ in range(limit):
            held.append(socket.create_connection(address))
        responses = get()
        got = [r[0] for r in responses]
        report(got == [503] and b"max-connections-per-client" in responses[0][2],
               f"{what} connection {limit + 1} from one address gets 503 naming "
               f"max-connections-per-client ({got})")
    finally:
        for s in held:
            s.close()
    ok = False
    for _ in range(50):  # bounded: until the listener has seen the closes
        got = get()
        ok = len(got) == 1 and got[0][0] != 503
        if ok:
            break
        time.sleep(0.1)
    report(ok, f"...and the {what} serves the address again once they close")


def cap(port, limit):
    def get():
        return exchange(port, corpus.req(["GET /env HTTP/1.1", f"Host: {corpus.HOST}"]))[0]
    hold_and_check(("127.0.0.1", port), limit, get, "proxy")


def push(sock, head, body, pieces=1 << 16):
    """Sends head and body from a thread, then half-closes; returns the thread."""
    def run():
        try:
            sock.sendall(head)
            for i in range(0, len(body), pieces):
                sock.sendall(body[i:i + pieces])
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def duplex(port):
    size = 64 << 20
    s = socket.create_connection(("127.0.0.1", port))
    head = f"POST /early HTTP/1.1\r\nHost: {corpus.HOST}\r\nContent-Length: {size}\r\n\r\n"
    t = push(s, head.encode(), b"x" * size)
    responses, closed = read_responses(s, 30.0)
    s.close()
    t.join(10)
    got = [(r[0], r[2]) for r in responses]
    report(got == [(200, b"early\n")],
           f"an answer before the body is relayed at once, the 64 MB body unread ({got[:2]})")
    report(closed, "...and the connection closes after it (the body was never read)")

    size = 24 << 20
    body = os.urandom(size)
    s = socket.create_connection(("127.0.0.1", port))
    head = f"POST /stream HTTP/1.1\r\nHost: {corpus.HOST}\r\nContent-Length: {size}\r\n\r\n"
    t = push(s, head.encode(), body)
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="POST", target="/stream",
                          headers=[("Host", corpus.HOST), ("Content-Length", str(size))]))
    conn.send(h11.Data(data=body))
    conn.send(h11.EndOfMessage())
    s.settimeout(30.0)
    status, echoed, done = None, bytearray(), False
    try:
        while not done:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(s.recv(1 << 16))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                echoed += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                done = isinstance(event, h11.EndOfMessage)
                break
    except (socket.timeout, h11.RemoteProtocolError) as e:
        print(f"     /stream: {e!r} after {len(echoed)} bytes")
    s.close()
    t.join(10)
    report(status == 200 and done and bytes(echoed) == body,
           f"a 24 MB body echoed while it streams comes back whole ({status}, {len(echoed)} bytes)")
    ok, _ = timed_get(port)
    report(ok, "...and the next request is served")


def apicap(url, limit, ca):
    import ssl
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)

    def get():
        with socket.create_connection((u.hostname, u.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=u.hostname) as s:
                s.sendall(f"GET /version HTTP/1.1\r\nHost: {u.hostname}\r\nConnection: close\r\n\r\n".encode())
                return read_responses(s, 10)[0]
    hold_and_check((u.hostname, u.port), limit, get, "API")


def main():
    mode = sys.argv[1]
    if mode == "corpus":
        corpus_checks(int(sys.argv[2]))
    elif mode == "api":
        api_checks(sys.argv[2])
    elif mode == "slowloris":
        slowloris(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif mode == "cap":
        cap(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "apicap":
        apicap(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "duplex":
        duplex(int(sys.argv[2]))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
