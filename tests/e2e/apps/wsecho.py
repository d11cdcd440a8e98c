"""A WebSocket echo server (Debian's python3-websockets) on $PORT: every message comes back
unchanged. A request without an upgrade gets 200 "ok", so that HTTP probes and plain GETs
work. SIGTERM ends it (as PID 1 of its container it gets no default handling)."""
import asyncio
import os
import signal

import websockets


async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)


def plain(path, headers):
    if "upgrade" not in headers.get("Connection", "").lower():
        return 200, [("Content-Type", "text/plain")], b"ok\n"
    return None


async def main():
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    port = int(os.environ.get("PORT", "8080"))
    async with websockets.serve(echo, "0.0.0.0", port, process_request=plain, max_size=2**22):
        print(f"wsecho: listening on {port}", flush=True)
        await stop


asyncio.run(main())
