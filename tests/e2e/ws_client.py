"""A WebSocket client (Debian's python3-websockets) against the proxy, with the Host of a
service. Prints one JSON line of what it saw.
  ws_client.py echo ADDR:PORT HOST N [SIZE]  N messages, text and binary, of growing size (1 B to
                                     64 KiB) or all of SIZE bytes, each checked as it comes
                                     back; round-trip times in ms
  ws_client.py idle ADDR:PORT HOST SECS      connects, sends one message, then waits up to SECS
                                     for the far end to close; how long it took
"""
import asyncio
import json
import sys
import time

import websockets


def connect(address, host):
    addr, port = address.rsplit(":", 1)
    return websockets.connect(f"ws://{host}:{port}/", host=addr, port=int(port),
                              max_size=2**22, open_timeout=60, ping_interval=None)


async def echo(address, host, n, fixed):
    times, bad = [], 0
    async with connect(address, host) as ws:
        for i in range(n):
            size = fixed or 1 + (i * 997) % 65536
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


async def idle(address, host, seconds):
    async with connect(address, host) as ws:
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


mode, address, host, arg = sys.argv[1:5]
size = int(sys.argv[5]) if len(sys.argv) > 5 else 0
run = echo(address, host, int(arg), size) if mode == "echo" else idle(address, host, float(arg))
print(json.dumps(asyncio.run(run)))
