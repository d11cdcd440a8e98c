"""Long-lived exchanges against the proxy, with the Host of a service: a WebSocket client
(Debian's python3-websockets) and a server-sent events reader. Prints one JSON line of what it
saw.
  stream_client.py echo ADDR:PORT HOST N [SIZE]  N messages, text and binary, of growing size (1 B to
                                     64 KiB) or all of SIZE bytes, each checked as it comes
                                     back; round-trip times in ms
  stream_client.py idle ADDR:PORT HOST SECS      connects, sends one message, then waits up to SECS
                                     for the far end to close; how long it took
  stream_client.py chatter ADDR:PORT HOST SECS   a message every 0.2 s for up to SECS; how long
                                     until the far end closed, if it did
  stream_client.py sse ADDR:PORT HOST PATH       GET PATH and read its events as they come: when
                                     the head and each event arrived, and whether it ended
With ELAFROS_CA=FILE in the environment, WebSockets go over TLS (wss://), verified against FILE.
"""
import http.client
import asyncio
import json
import os
import ssl
import sys
import time

import websockets


def connect(address, host):
    addr, port = address.rsplit(":", 1)
    ca = os.environ.get("ELAFROS_CA")
    if ca:
        context = ssl.create_default_context(cafile=ca)
        return websockets.connect(f"wss://{host}:{port}/", host=addr, port=int(port), ssl=context,
                                  server_hostname=host, max_size=2**22, open_timeout=60,
                                  ping_interval=None)
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


async def chatter(address, host, seconds):
    start = time.perf_counter()
    async with connect(address, host) as ws:
        try:
            while time.perf_counter() - start < seconds:
                await ws.send("tick")
                assert await ws.recv() == "tick"
                await asyncio.sleep(0.2)
        except websockets.ConnectionClosed:
            return {"closed_after_s": round(time.perf_counter() - start, 2)}
    return {"closed_after_s": None}


def sse(address, host, path):
    addr, port = address.rsplit(":", 1)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(addr, int(port), timeout=60)
    conn.request("GET", path, headers={"Host": host, "Accept": "text/event-stream"})
    res = conn.getresponse()
    out = {"status": res.status, "head_s": round(time.perf_counter() - start, 2), "events": [],
           "complete": False}
    body = b""
    try:
        while True:
            # read1, not readline: readline's peek takes a cut chunked body for its end
            piece = res.read1(65536)
            if not piece:
                out["complete"] = True  # the last chunk came: a cut raises instead
                break
            body += piece
            for _ in range(body.count(b"data:") - len(out["events"])):
                out["events"].append(round(time.perf_counter() - start, 2))
    except (http.client.IncompleteRead, ConnectionError, OSError) as e:
        out["error"] = type(e).__name__
    out["ended_s"] = round(time.perf_counter() - start, 2)
    if res.status != 200:
        out["body"] = body.decode(errors="replace")
    return out


mode, address, host, arg = sys.argv[1:5]
if mode == "sse":
    print(json.dumps(sse(address, host, arg)))
    sys.exit(0)
size = int(sys.argv[5]) if len(sys.argv) > 5 else 0
runs = {"echo": lambda: echo(address, host, int(arg), size),
        "idle": lambda: idle(address, host, float(arg)),
        "chatter": lambda: chatter(address, host, float(arg))}
run = runs[mode]()
print(json.dumps(asyncio.run(run)))
