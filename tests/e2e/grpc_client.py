#!/usr/bin/python3
# gRPC calls through the proxy with Debian's python3-grpcio as the client, against
# tests/e2e/apps/grpcecho.py: unary, server streaming, bidirectional streaming, and a status
# carried in trailers. Prints one JSON object of what came back.
#   grpc_client.py ADDRESS:PORT AUTHORITY [CA_FILE]   (a CA file: TLS, h2 by ALPN; else h2c)
#   grpc_client.py --latency N ADDRESS:PORT AUTHORITY  N unary calls one after another on one
#                                                      channel: p50 and p99 in ms (bench/)
import json
import sys
import time

import grpc

latency = 0
if sys.argv[1] == "--latency":
    latency = int(sys.argv[2])
    del sys.argv[1:3]
target, authority = sys.argv[1], sys.argv[2]
options = [("grpc.default_authority", authority)]
if len(sys.argv) > 3:
    with open(sys.argv[3], "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    options.append(("grpc.ssl_target_name_override", authority))
    channel = grpc.secure_channel(target, credentials, options=options)
else:
    channel = grpc.insecure_channel(target, options=options)

out = {}
say = channel.unary_unary("/echo.Echo/Say")
if latency:
    say(b"warm", timeout=20)
    times = []
    for _ in range(latency):
        t = time.perf_counter()
        say(b"hello", timeout=20)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({"calls": latency, "p50_ms": times[len(times) // 2],
                      "p99_ms": times[min(len(times) - 1, len(times) * 99 // 100)]}))
    sys.exit(0)
out["say"] = say(b"hello", timeout=20).decode()
count = channel.unary_stream("/echo.Echo/Count")
out["count"] = [m.decode() for m in count(b"50", timeout=20)]
chat = channel.stream_stream("/echo.Echo/Chat")
sent = [("message %d " % i).encode() * (1 + i % 50) for i in range(200)]
got = list(chat(iter(sent), timeout=20))
out["chat_sent"] = len(sent)
out["chat_matched"] = sum(1 for a, b in zip(sent, got) if a.upper() == b)
out["chat_received"] = len(got)
fail = channel.unary_unary("/echo.Echo/Fail")
try:
    fail(b"x", timeout=20)
    out["fail"] = "no error"
except grpc.RpcError as e:
    out["fail"] = "%s: %s" % (e.code().name, e.details())
print(json.dumps(out))
