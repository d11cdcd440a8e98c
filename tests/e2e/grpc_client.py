#!/usr/bin/python3
# gRPC calls through the proxy with Debian's python3-grpcio as the client, against
# tests/e2e/apps/grpcecho.py: unary, server streaming, bidirectional streaming, and a status
# carried in trailers. Prints one JSON object of what came back.
#   grpc_client.py ADDRESS:PORT AUTHORITY [CA_FILE]   (a CA file: TLS, h2 by ALPN; else h2c)
import json
import sys

import grpc

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
