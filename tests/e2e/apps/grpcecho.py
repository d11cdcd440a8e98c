# A gRPC server over h2c (HTTP/2 with prior knowledge) on $PORT, on Debian's python3-grpcio
# with generic handlers of raw bytes (no generated code):
#   /echo.Echo/Say    unary: b"echo:" + the request
#   /echo.Echo/Count  server streaming: the request is a number N, the answer N messages 0..N-1
#   /echo.Echo/Chat   bidirectional: each message comes back upper-cased as it arrives
#   /echo.Echo/Fail   unary: fails with INVALID_ARGUMENT "no such thing" (a status in trailers)
import os
from concurrent import futures

import grpc


def say(request, context):
    return b"echo:" + request


def count(request, context):
    for i in range(int(request)):
        yield str(i).encode()


def chat(requests, context):
    for message in requests:
        yield message.upper()


def fail(request, context):
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no such thing")


handlers = {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Count": grpc.unary_stream_rpc_method_handler(count),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
server.add_insecure_port("0.0.0.0:" + os.environ.get("PORT", "8080"))
server.start()
server.wait_for_termination()
