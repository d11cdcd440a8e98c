"""A WebSocket client (Debian's python3-websockets) against the proxy, with the Host of a
service. Prints one JSON line of what it saw.
  ws_client.py echo PORT HOST N      N messages of growing size, each checked as it comes back;
                                     round-trip times in ms
  ws_client.py idle PORT HOST SECS   connects, sends one message, then waits up to SECS for the
                                     far end to close; how long it took
"""
import asyncio
import json
import sys
import time

import websockets


def connect(port, host):
    return websockets.connect(f"ws://{host}:{port}/", host="127.0.0.1", port=port,
                              max_size=2**22, open_timeout=60, ping_interval=None)


async def echo(port, host, n):
    times, bad = [], 0
    async with connect(port, host) as ws:
        for i in range(n):
            # text and binary, 1 byte to 64 KiB
            size = 1 + (i * 997) % 65536
            message = (f"{i}:" + "x" * size) if i % 2 else bytes([i % 256]) * size
            start = time.perf_counter()
            await ws.send(message)
            back = await ws.recv()
            times.append((time.perf_counter() - start) * 1e3)
            if back != message:
                bad += 1
    times.sort()
    return {"sent": n, "bad": bad, "p50_ms": round(times[len(times) // 2], 3),
            "p99_ms": round(times[int(len(times) * 0.99) - 1], 3)}


async def idle(port, host, seconds):
    async with connect(port, host) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        start = time.perf_counter()
        try:
            await asyncio.wait_for(ws.recv(), seconds)
            return {"closed_after_s": None, "error": "a message came instead of a close"}
        except websockets.ConnectionClosed:
            return {"closed_after_s": round(time.perf_counter() - start, 2)}
        except asyncio.TimeoutError:
            return {"closed_after_s": None}


mode, port, host, arg = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
run = echo(port, host, int(arg)) if mode == "echo" else idle(port, host, float(arg))
print(json.dumps(asyncio.run(run)))
