#!/usr/bin/python3
"""Requests for the HTTP front end's tests (tests/e2e/http_framing.py) and its fuzz seeds.

HOSTILE: requests a front end must refuse, with the status it must answer and then close:
CL.TE, TE.CL and TE.TE obfuscations, bad lengths and chunk sizes, bare CR and LF, bytes that
don't belong in names or values, folding, too many or too large fields (RFC 9112 §2.2, §5, §6,
§7.1; RFC 9110 §5.5). Derived from the attack classes in PortSwigger's, defparam/smuggler's and
http-garden's write-ups, written here. Each is sent with a pipelined follow-up request, which
must never be answered.

VALID: requests the proxy must forward, each parsed by h11 on both sides of the proxy to the
same method, target, fields and body.

  corpus.py --write-seeds DIR   writes every request to DIR, one file each (fuzz seeds)
"""
import sys

HOST = "raw.default.localhost"


def req(head, body=b""):
    """A request from a head of lines (str, \\r\\n added) and a body (bytes)."""
    text = "".join(line + "\r\n" for line in head) + "\r\n"
    return text.encode("latin-1") + body


def post(*fields, body=b"", version="1.1"):
    return req([f"POST / HTTP/{version}", f"Host: {HOST}", *fields], body)


SMUGGLED = f"GET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
CHUNKED = b"5\r\nhello\r\n0\r\n\r\n"

# (name, request, statuses it may get)
HOSTILE = [
    # CL.TE and TE.CL: both framings on one request
    ("cl-te", post("Content-Length: 6", "Transfer-Encoding: chunked", body=b"0\r\n\r\nG"), {400}),
    ("te-cl", post("Transfer-Encoding: chunked", "Content-Length: 3",
                   body=b"8\r\nSMUGGLED\r\n0\r\n\r\n"), {400}),
    ("te-cl-zero", post("Transfer-Encoding: chunked", "Content-Length: 0", body=CHUNKED), {400}),
    ("te-identity-cl", post("Transfer-Encoding: identity", "Content-Length: 5", body=b"hello"), {400}),
    # Transfer-Encoding that does not end in chunked: no body delimiter at all
    ("te-gzip", post("Transfer-Encoding: gzip", body=SMUGGLED), {400}),
    ("te-identity", post("Transfer-Encoding: identity", body=SMUGGLED), {400}),
    ("te-chunked-identity", post("Transfer-Encoding: chunked, identity", body=CHUNKED), {400}),
    ("te-xchunked", post("Transfer-Encoding: xchunked", body=CHUNKED), {400}),
    ("te-chunkedx", post("Transfer-Encoding: chunkedx", body=CHUNKED), {400}),
    ("te-quoted", post('Transfer-Encoding: "chunked"', body=CHUNKED), {400}),
    ("te-nonascii", post("Transfer-Encoding: ch\xfcnked", body=CHUNKED), {400}),
    ("te-dup-gzip-last", post("Transfer-Encoding: chunked", "Transfer-Encoding: gzip",
                              body=CHUNKED), {400}),
    ("te-duplicate", post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked",
                          body=CHUNKED), {400}),
    ("te-chunked-twice", post("Transfer-Encoding: chunked, chunked", body=CHUNKED), {400}),
    ("te-comma-prefix", post("Transfer-Encoding: ,chunked", body=CHUNKED), {400}),
    ("te-comma-suffix", post("Transfer-Encoding: chunked,", body=CHUNKED), {400}),
    ("te-http10", post("Transfer-Encoding: chunked", body=CHUNKED, version="1.0"), {400}),
    # TE.TE: obfuscated names and values
    ("te-space-before-colon", post("Transfer-Encoding : chunked", body=CHUNKED), {400}),
    ("te-tab-before-colon", post("Transfer-Encoding\t: chunked", body=CHUNKED), {400}),
    ("te-vtab-prefix", post("Transfer-Encoding: \x0bchunked", body=CHUNKED), {400}),
    ("te-vtab-suffix", post("Transfer-Encoding: chunked\x0b", body=CHUNKED), {400}),
    ("te-ff-prefix", post("Transfer-Encoding: \x0cchunked", body=CHUNKED), {400}),
    ("te-nul-suffix", post("Transfer-Encoding: chunked\x00", body=CHUNKED), {400}),
    ("te-cr-inside", post("Transfer-Encoding: chu\rnked", body=CHUNKED), {400}),
    ("te-obs-fold", post("Transfer-Encoding:", " chunked", body=CHUNKED), {400}),
    ("te-folded-line", post("X-Pad: a", " Transfer-Encoding: chunked", body=CHUNKED), {400}),
    ("te-leading-space-name", req(["POST / HTTP/1.1", " Transfer-Encoding: chunked",
                                   f"Host: {HOST}"], CHUNKED), {400}),
    ("te-name-nonascii", post("Transfer-Encoding\xff: chunked", body=CHUNKED), {400}),
    # Content-Length that is not one decimal number
    ("cl-duplicate-same", post("Content-Length: 5", "Content-Length: 5", body=b"hello"), {400}),
    ("cl-duplicate-differ", post("Content-Length: 5", "Content-Length: 6", body=b"hello!"), {400}),
    ("cl-list", post("Content-Length: 5, 5", body=b"hello"), {400}),
    ("cl-plus", post("Content-Length: +5", body=b"hello"), {400}),
    ("cl-negative", post("Content-Length: -1", body=b"hello"), {400}),
    ("cl-hex", post("Content-Length: 0x5", body=b"hello"), {400}),
    ("cl-empty", post("Content-Length: ", body=b"hello"), {400}),
    ("cl-space-inside", post("Content-Length: 5 5", body=b"hello"), {400}),
    ("cl-underscore", post("Content-Length: 1_0", body=b"helloworld"), {400}),
    ("cl-overflow", post("Content-Length: 99999999999999999999999", body=b"hello"), {400, 413}),
    ("cl-space-before-colon", post("Content-Length : 5", body=b"hello"), {400}),
    ("cl-nul", post("Content-Length: 5\x00", body=b"hello"), {400}),
    ("cl-obs-fold", post("Content-Length:", " 5", body=b"hello"), {400}),
    # chunk sizes: 1*HEXDIG, and nothing else (RFC 9112 §7.1)
    ("chunk-0x", post("Transfer-Encoding: chunked", body=b"0x5\r\nhello\r\n0\r\n\r\n"), {400}),
    ("chunk-plus", post("Transfer-Encoding: chunked", body=b"+5\r\nhello\r\n0\r\n\r\n"), {400}),
    ("chunk-minus", post("Transfer-Encoding: chunked", body=b"-5\r\nhello\r\n0\r\n\r\n"), {400}),
    ("chunk-space-prefix", post("Transfer-Encoding: chunked", body=b" 5\r\nhello\r\n0\r\n\r\n"),
     {400}),
    ("chunk-underscore", post("Transfer-Encoding: chunked", body=b"5_0\r\nhello\r\n0\r\n\r\n"),
     {400}),
    ("chunk-overflow", post("Transfer-Encoding: chunked",
                            body=b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), {400, 413}),
    ("chunk-empty-size", post("Transfer-Encoding: chunked", body=b"\r\nhello\r\n0\r\n\r\n"), {400}),
    ("chunk-long-extension", post("Transfer-Encoding: chunked",
                                  body=b"5;" + b"a" * 1000 + b"\r\nhello\r\n0\r\n\r\n"), {400}),
    ("chunk-bare-lf", post("Transfer-Encoding: chunked", body=b"5\nhello\n0\n\n"), {400}),
    ("chunk-bad-terminator", post("Transfer-Encoding: chunked", body=b"5\r\nhello\rX0\r\n\r\n"),
     {400}),
    ("chunk-data-too-long", post("Transfer-Encoding: chunked", body=b"3\r\nhello\r\n0\r\n\r\n"),
     {400}),
    # the head's bytes
    ("bare-lf-head", f"GET / HTTP/1.1\nHost: {HOST}\n\n".encode(), {400}),
    ("bare-cr-head", f"GET / HTTP/1.1\r\nHost: {HOST}\rX-A: b\r\n\r\n".encode(), {400}),
    ("nul-in-value", req(["GET / HTTP/1.1", f"Host: {HOST}", "X-A: a\x00b"]), {400}),
    ("del-in-value", req(["GET / HTTP/1.1", f"Host: {HOST}", "X-A: a\x7fb"]), {400}),
    ("space-in-name", req(["GET / HTTP/1.1", f"Host: {HOST}", "X A: b"]), {400}),
    ("nonascii-name", req(["GET / HTTP/1.1", f"Host: {HOST}", "X-\xffA: b"]), {400}),
    ("empty-name", req(["GET / HTTP/1.1", f"Host: {HOST}", ": b"]), {400}),
    ("no-colon", req(["GET / HTTP/1.1", f"Host: {HOST}", "X-A b"]), {400}),
    ("obs-fold", req(["GET / HTTP/1.1", f"Host: {HOST}", "X-A: a", " b"]), {400}),
    ("request-line-double-space", req(["GET  / HTTP/1.1", f"Host: {HOST}"]), {400}),
    ("request-line-tab", req(["GET\t/ HTTP/1.1", f"Host: {HOST}"]), {400}),
    ("request-line-control", req(["GET /\x01 HTTP/1.1", f"Host: {HOST}"]), {400}),
    ("request-line-trailing-space", req(["GET / HTTP/1.1 ", f"Host: {HOST}"]), {400}),
    ("host-missing", req(["GET / HTTP/1.1", "X-A: b"]), {400}),
    ("host-twice", req(["GET / HTTP/1.1", f"Host: {HOST}", f"Host: {HOST}"]), {400}),
    ("host-space-before-colon", req(["GET / HTTP/1.1", f"Host : {HOST}"]), {400}),
    ("too-many-fields", req(["GET / HTTP/1.1", f"Host: {HOST}"] +
                            [f"X-F{i}: v" for i in range(120)]), {431}),
    ("header-too-large", req(["GET / HTTP/1.1", f"Host: {HOST}", "X-Big: " + "a" * 40000]),
     {431}),
    ("version-2", req(["GET / HTTP/2.0", f"Host: {HOST}"]), {400, 505}),
]

# (name, request): forwarded, and compared under h11
VALID = [
    ("get", req(["GET / HTTP/1.1", f"Host: {HOST}"])),
    ("get-query-fields", req(["GET /a/b?c=d&e=%20f HTTP/1.1", f"Host: {HOST}", "Accept: */*",
                              "X-Tab:\tvalue\twith tabs\t", "X-Obs-Text: caf\xe9",
                              "Cookie: a=1", "Cookie: b=2"])),
    ("post-length", post("Content-Type: text/plain", "Content-Length: 11", body=b"hello world")),
    ("post-length-zero", post("Content-Length: 0")),
    ("post-chunked", post("Transfer-Encoding: chunked",
                          body=b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")),
    ("post-chunked-upper", post("Transfer-Encoding: Chunked", body=b"A\r\n0123456789\r\n0\r\n\r\n")),
    ("post-chunked-extension", post("Transfer-Encoding: chunked",
                                    body=b"5;name=value\r\nhello\r\n0\r\n\r\n")),
    ("post-chunked-trailer", post("Transfer-Encoding: chunked", "Trailer: X-Sum",
                                  body=b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n")),
    ("post-chunked-large", post("Transfer-Encoding: chunked",
                                body=b"".join(b"%x\r\n%s\r\n" % (1000, b"z" * 1000)
                                              for _ in range(100)) + b"0\r\n\r\n")),
    ("http10-get", req(["GET / HTTP/1.0", f"Host: {HOST}"])),
    ("http10-post", post("Content-Length: 4", body=b"abcd", version="1.0")),
    ("connection-names-length", post("Connection: Content-Length", "Content-Length: %d" % len(SMUGGLED),
                                     body=SMUGGLED)),
    ("connection-names-field", req(["GET / HTTP/1.1", f"Host: {HOST}", "Connection: X-Secret",
                                    "X-Secret: hop", "X-Kept: end"])),
    ("hop-by-hop", req(["GET / HTTP/1.1", f"Host: {HOST}", "Keep-Alive: timeout=5", "TE: trailers",
                        "Proxy-Authorization: Basic eDp5", "Upgrade: h2c", "X-Kept: yes"])),
    ("leading-crlf", b"\r\n" + req(["GET /after-crlf HTTP/1.1", f"Host: {HOST}"])),
    ("expect-continue", post("Expect: 100-continue", "Content-Length: 5", body=b"hello")),
]


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        import os
        out = sys.argv[2]
        os.makedirs(out, exist_ok=True)
        for name, data, *_ in HOSTILE + VALID:
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
        print(f"wrote {len(HOSTILE) + len(VALID)} seeds to {out}")
        return
    print(f"{len(HOSTILE)} hostile and {len(VALID)} valid requests")


if __name__ == "__main__":
    main()
