#!/usr/bin/env python3
"""elafros benchmark suite: measures side by side, in one run, and writes a Markdown report.

Rows (issue 4): cold start vs. the raw runc floor; proxy throughput and latency vs. direct and
vs. nginx as a reverse proxy; a burst from zero; the idle footprint with 100 services at zero;
the API (issue 11); the proxy near its open-files limit (issue 20).
Run it through bench/run.sh, as root. Everything it starts, it stops; nothing is downloaded.
"""
import argparse
import json
import resource
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, check=True, **kw):
    return subprocess.run(args, check=check, text=True, capture_output=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def first_byte(port, host, path="/", timeout=30.0):
    """Seconds from sending a request until its first response byte; None on failure."""
    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                data = s.recv(1)
                if data:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.001)
    return None


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Daemon:
    def __init__(self, work, config=None, prefix=()):
        self.work = work
        self.data = os.path.join(work, "data")
        self.sock = os.path.join(work, "elafros.sock")
        os.makedirs(self.data, exist_ok=True)
        args = [*prefix, os.path.join(ROOT, "build/src/elafrosd"), "--data-dir", self.data, "--socket", self.sock,
                "--listen", "127.0.0.1:0"]
        # The host's network unless a row asks for namespaces (its backends are loopback ports).
        config = (config or "") + ("" if "network:" in (config or "") else "network: host\n")
        if config:
            path = os.path.join(work, "config.yaml")
            with open(path, "w") as f:
                f.write(config)
            args += ["--config", path]
        self.log = open(os.path.join(work, "daemon.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log)
        for _ in range(100):
            r = self.cli("status", "-o", "json", check=False)
            if r.returncode == 0:
                self.port = int(json.loads(r.stdout)["listen"].rsplit(":", 1)[1])
                return
            time.sleep(0.05)
        raise RuntimeError("elafrosd did not start; see " + self.log.name)

    def cli(self, *args, check=True):
        return run([os.path.join(ROOT, "build/src/elafros"), "--socket", self.sock, *args], check=check)

    def containers(self, prefix="", running=False):
        """Container ids; with running=True, only started ones (not the standbys, "created")."""
        r = run(["runc", "--root", os.path.join(self.data, "runc"), "list"], check=False)
        rows = [line.split() for line in r.stdout.splitlines()[1:]]
        return [c[0] for c in rows if c and c[0].startswith(prefix) and (not running or c[2] != "created")]

    def standbys(self, prefix=""):
        r = run(["runc", "--root", os.path.join(self.data, "runc"), "list"], check=False)
        rows = [line.split() for line in r.stdout.splitlines()[1:]]
        return [(c[0], int(c[1])) for c in rows if c and c[0].startswith(prefix) and c[2] == "created"]

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def stop(self, delete_services=True):
        if delete_services:
            listed = self.cli("service", "list", "-o", "json", check=False).stdout or '{"items":[]}'
            for s in json.loads(listed).get("items", []):
                self.cli("service", "delete", s["metadata"]["name"], check=False)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        runc_root = os.path.join(self.data, "runc")
        for c in self.containers():
            run(["runc", "--root", runc_root, "delete", "--force", c], check=False)
        with open("/proc/mounts") as f:
            for line in f:
                target = line.split()[1]
                if target.startswith(self.work):
                    run(["umount", "-l", target], check=False)


def wait_for(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def instance_port(daemon, prefix):
    for c in daemon.containers(prefix):
        with open(os.path.join(daemon.data, "instances", c, "config.json")) as f:
            for kv in json.load(f)["process"]["env"]:
                if kv.startswith("PORT="):
                    return int(kv[5:])
    raise RuntimeError("no instance of " + prefix)


# --- 1. cold start ------------------------------------------------------------------------------

def standby_memory(d, cid, pid):
    """What one standby holds: its waiting process's resident memory and its cgroup's charge."""
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024
    charged = None
    for path in (f"/sys/fs/cgroup/memory/elafros/{cid}/memory.usage_in_bytes",
                 f"/sys/fs/cgroup/elafros/{cid}/memory.current"):
        if os.path.exists(path):
            with open(path) as f:
                charged = int(f.read())
            break
    return rss, charged


def cold_start(work, image, cycles, network="host", userns=False, standby=True):
    config = "scale-to-zero-grace-period-seconds: 0\n"
    if not standby:
        config += "standby-max: 0\n"
    if network == "bridge":  # a bridge and subnet of the bench's own, the pool's default size
        config += "network: bridge\nnetwork-bridge: elfbench0\nnetwork-subnet: 10.199.0.0/24\n"
    if userns:
        config += "user-namespaces: true\n"
        os.chmod(work, 0o711)  # the mapped root must reach the data dir
    d = Daemon(os.path.join(work, "cold-" + network + ("-userns" if userns else "") +
                            ("" if standby else "-nostandby")), config)
    d.standby_mem = None
    try:
        t0 = time.perf_counter()
        d.cli("service", "create", "cold", "--image", f"oci:{image}:latest", "--scale-window", "6s")
        d.create_s = time.perf_counter() - t0
        host = "cold.default.localhost"
        # The floor's bundle: elafros's own config.json for this image, run by hand on the
        # shared unpacked rootfs (read-only; the app writes only to its /tmp tmpfs).
        cid = d.containers("cold-")[0]
        with open(os.path.join(d.data, "instances", cid, "config.json")) as f:
            spec = json.load(f)
        times = []
        for _ in range(cycles):
            if not wait_for(lambda: not d.containers("cold-", running=True), 60):
                raise RuntimeError("cold did not scale to zero")
            if standby and d.standby_mem is None and d.standbys("cold-"):
                d.standby_mem = standby_memory(d, *d.standbys("cold-")[0])
            t = first_byte(d.port, host)
            if t is None:
                raise RuntimeError("cold start request failed")
            times.append(t)
        log = open(os.path.join(d.work, "daemon.log")).read()
        starts = [int(m) for m in re.findall(r"started instance cold-\S+ [^\n]*\) in (\d+) ms", log)]
        d.from_standby = len(re.findall(r"started instance cold-\S+ .* from standby", log))
        copies = [int(m) for m in re.findall(r"root filesystem for user namespace ids .* in (\d+) ms", log)]
        d.copy_ms = copies[0] if copies else None
    finally:
        d.stop()
    return times, starts, spec, d


def cold_floor(work, spec, d, cycles):
    """The floor: runc run -d + first byte of the same unpacked image, no daemon."""
    rootfs = spec["root"]["path"]
    image_rootfs = None
    images = os.path.join(d.data, "images", "rootfs")
    if os.path.isdir(images):
        image_rootfs = os.path.join(images, os.listdir(images)[0])
    floor = []
    bundle = os.path.join(work, "floor")
    runc_root = os.path.join(work, "floor-runc")
    os.makedirs(bundle, exist_ok=True)
    spec["root"] = {"path": image_rootfs or rootfs, "readonly": True}
    # The instance's own /etc/hosts went with it: the floor binds the host's.
    for m in spec["mounts"]:
        if m.get("destination") == "/etc/hosts":
            m["source"] = "/etc/hosts"
    # The floor runs on the host's network: no namespace to make or wire.
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    for i in range(cycles):
        port = free_port()
        spec["process"]["env"] = [e if not e.startswith("PORT=") else f"PORT={port}" for e in spec["process"]["env"]]
        cid = f"elafros-bench-floor-{i}"
        spec["linux"]["cgroupsPath"] = f"/elafros-bench/{cid}"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        # runc's stderr goes to a file: a pipe would be inherited by the detached container and
        # never reach end of file.
        with open(os.devnull, "w") as null, open(os.path.join(work, "floor-runc.err"), "w+") as err:
            start = time.perf_counter()
            r = subprocess.run(["runc", "--root", runc_root, "run", "--detach", "--bundle", bundle, cid],
                               stdin=subprocess.DEVNULL, stdout=null, stderr=err)
            if r.returncode != 0:
                err.seek(0)
                raise RuntimeError("the floor's runc run failed: " + err.read().strip())
            t = first_byte(port, "floor")
            elapsed = time.perf_counter() - start
        run(["runc", "--root", runc_root, "delete", "--force", cid], check=False)
        if t is None:
            raise RuntimeError("floor container did not answer")
        floor.append(elapsed)
    return floor


def cold_bench(work, image, cycles):
    """Scale from zero with a namespace per instance (bridge) and on the host's network, and the
    raw runc floor, one after the other in the same run."""
    host, _, spec, d = cold_start(work, image, cycles, "host")
    host_off, starts, _, d_off = cold_start(work, image, cycles, "host", standby=False)
    bridge, _, _, db = cold_start(work, image, cycles, "bridge")
    bridge_off, bridge_starts, _, db_off = cold_start(work, image, cycles, "bridge", standby=False)
    userns, _, _, du = cold_start(work, image, cycles, "bridge", userns=True)
    floor = cold_floor(work, spec, d, cycles)
    return {"host": host, "host_off": host_off, "bridge": bridge, "bridge_off": bridge_off,
            "userns": userns, "floor": floor, "starts": starts, "bridge_starts": bridge_starts,
            "create": db_off.create_s, "userns_create": du.create_s, "copy_ms": du.copy_ms,
            "from_standby": {"host": d.from_standby, "bridge": db.from_standby, "userns": du.from_standby},
            "standby_mem": db.standby_mem}


def proxy_lines(px, px_bridge, seconds, rounds):
    def best(rows, key):
        return max(r[key] for r in rows) if key == "rps" else min(r[key] for r in rows)

    lines = [
        f"## 2. Proxy throughput and latency (wrk -t1 -c16, {seconds} s × {rounds} rounds, best round)",
        "",
        "| path | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for where, results in [("loopback", px), ("veth", px_bridge)]:
        if not results:
            continue
        for name, label in [("direct", "direct to the instance"), ("elafrosd", "through elafrosd (1 proxy thread)"),
                            ("nginx", "through nginx reverse proxy (1 worker, upstream keepalive)")]:
            rows = results[name]
            lines.append(f"| {where}: {label} | {best(rows, 'rps'):.0f} | {best(rows, 'p50'):.2f} | "
                         f"{best(rows, 'p99'):.2f} | {sum(r['errors'] for r in rows)} |")
        e, n = results["elafrosd"], results["nginx"]
        lines.append(f"| **{where}: elafrosd / nginx** | **{best(e, 'rps') / best(n, 'rps'):.2f}×** | "
                     f"{best(e, 'p50') / best(n, 'p50'):.2f}× | **{best(e, 'p99') / best(n, 'p99'):.2f}×** | |")
    if px and px_bridge:
        e, b = px["elafrosd"], px_bridge["elafrosd"]
        lines.append(f"| **elafrosd, veth / loopback** | **{best(b, 'rps') / best(e, 'rps'):.2f}×** | "
                     f"{best(b, 'p50') / best(e, 'p50'):.2f}× | {best(b, 'p99') / best(e, 'p99'):.2f}× | |")
    lines += [
        "",
        "Loopback: the instance on the host's network (`network: host`); veth: in its own namespace "
        "(`network: bridge`), nginx proxying to the same address. Targets: ≥ 0.9× nginx's requests/s, "
        "p99 ≤ 1.5× nginx's.",
        "",
    ]
    return lines


def cold_lines(c):
    def ms(v):
        return f"{v * 1000:.1f}"

    def row(label, xs):
        return f"| {label} | {len(xs)} | {ms(percentile(xs, 50))} | {ms(percentile(xs, 90))} | {ms(percentile(xs, 99))} |"

    def ratio(label, a, b):
        return (f"| **{label}** | | **{percentile(a, 50) / percentile(b, 50):.2f}×** | "
                f"{percentile(a, 90) / percentile(b, 90):.2f}× | {percentile(a, 99) / percentile(b, 99):.2f}× |")

    host, bridge, floor = c["host"], c["bridge"], c["floor"]
    med = lambda xs: statistics.median(xs) if xs else 0  # noqa: E731
    mem = c["standby_mem"]
    mem_text = "not measured (no standby was waiting)" if not mem else (
        f"its waiting process (runc init) held {mem[0] / 2**20:.1f} MiB resident"
        + ("" if mem[1] is None else f", its cgroup was charged {mem[1] / 2**20:.1f} MiB"))
    fs = c["from_standby"]
    return [
        "## 1. Cold start (request at zero → first byte), nginx backend image",
        "",
        "| path | runs | p50 ms | p90 ms | p99 ms |",
        "|---|---|---|---|---|",
        row("elafrosd, a network namespace per instance (`network: bridge`, the default), standby on (the default)", bridge),
        row("elafrosd, bridge, standby off (`standby-max: 0`)", c["bridge_off"]),
        row("elafrosd on the host's network (`network: host`), standby on", host),
        row("elafrosd, host, standby off", c["host_off"]),
        row("elafrosd, bridge and `user-namespaces: true`, standby on", c["userns"]),
        row("floor: `runc run -d` of the same unpacked image + first byte, no daemon, host network", floor),
        ratio("ratio bridge, standby / floor", bridge, floor),
        ratio("ratio host, standby / floor", host, floor),
        ratio("ratio bridge, standby off / floor", c["bridge_off"], floor),
        ratio("ratio host, standby off / floor", c["host_off"], floor),
        ratio("ratio user namespaces, standby / floor", c["userns"], floor),
        "",
        f"Cold starts served by a standby: {fs['bridge']} of {len(bridge)} (bridge), {fs['host']} of "
        f"{len(host)} (host), {fs['userns']} of {len(c['userns'])} (user namespaces). A standby is a "
        f"container made ahead (`runc create`: overlay, config, cgroup, network namespace) whose "
        f"process waits on its exec fifo; the cold start opens that fifo (no runc fork), and the "
        f"app's own start and the first probe remain. What one costs while it waits: {mem_text}.",
        "",
        f"The first start of an image with user namespaces also copies its rootfs with shifted owners: "
        f"{c['copy_ms']} ms for this image (daemon log); `service create` → Ready took "
        f"{c['userns_create'] * 1000:.0f} ms with the copy and {c['create'] * 1000:.0f} ms without "
        f"(bridge mode, the same image).",
        "",
        "Targets: standby on, p50 ≤ 0.6× the floor (below what a runtime that creates the container on "
        "demand can reach). With standby off, `runc run --detach` "
        f"(with the overlay mount and config.json) took a median {med(c['bridge_starts']):.0f} ms of each "
        f"cold start in bridge mode and {med(c['starts']):.0f} ms in host mode (daemon log).",
        "",
    ]


# --- 2. proxy -------------------------------------------------------------------------------------

def wrk(url, host=None, seconds=10, connections=16, close=False):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if host:
        args[1:1] = ["-H", f"Host: {host}"]
    if close:  # a new connection per request
        args[1:1] = ["-H", "Connection: close"]
    out = run(args).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    errors += non2xx
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(x) for x in m.groups()) if m else 0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "errors": errors, "non2xx": non2xx, "total": total}


def start_nginx(ngdir, connections, http_extra, location):
    """nginx with one worker on a free loopback port, proxying / over HTTP/1.1 as `location`
    says (with `http_extra` in its http block): the reference the proxy rows compare with."""
    os.makedirs(ngdir, exist_ok=True)
    port = free_port()
    with open(os.path.join(ngdir, "nginx.conf"), "w") as f:
        f.write(f"""daemon off; worker_processes 1; error_log stderr warn; pid {ngdir}/nginx.pid;
events {{ worker_connections {connections}; }}
http {{
  access_log off;
  client_body_temp_path {ngdir}/b; proxy_temp_path {ngdir}/p; fastcgi_temp_path {ngdir}/f;
  uwsgi_temp_path {ngdir}/u; scgi_temp_path {ngdir}/s;
  {http_extra}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_http_version 1.1; {location} }}
  }}
}}
""")
    ng = subprocess.Popen(["nginx", "-c", os.path.join(ngdir, "nginx.conf"), "-p", ngdir],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if first_byte(port, "x", timeout=5) is None:
        stop_nginx(ng)
        raise RuntimeError("nginx did not start; run it by hand with -c " + os.path.join(ngdir, "nginx.conf"))
    return ng, port


def stop_nginx(ng):
    if ng:
        ng.send_signal(signal.SIGQUIT)
        ng.wait(timeout=10)


def instance_address(daemon):
    listed = json.loads(daemon.cli("instance", "list", "-o", "json").stdout)
    items = listed["items"] if isinstance(listed, dict) else listed
    return items[0]["address"]


def proxy(work, image, seconds, rounds, network="host"):
    """wrk straight to the instance, through elafrosd and through nginx proxying to the same
    address: with network host the instance's loopback port, with bridge its veth's address."""
    config = None
    if network == "bridge":
        config = "network: bridge\nnetwork-bridge: elfbench1\nnetwork-subnet: 10.198.0.0/24\n"
    d = Daemon(os.path.join(work, "proxy-" + network), config)
    ng = None
    try:
        d.cli("service", "create", "fast", "--image", f"oci:{image}:latest", "--scale-min", "1", "--scale-max", "1")
        if network == "bridge":
            target = f"{instance_address(d)}:8080"
        else:
            target = f"127.0.0.1:{instance_port(d, 'fast-')}"
        ng, ngport = start_nginx(os.path.join(work, "nginx-" + network), 4096,
                                 f"upstream backend {{ server {target}; keepalive 64; }}",
                                 'proxy_pass http://backend; proxy_set_header Connection "";')
        host = "fast.default.localhost"
        results = {"direct": [], "elafrosd": [], "nginx": []}
        wrk(f"http://127.0.0.1:{d.port}/", host, 2)  # warm-up
        for _ in range(rounds):
            results["direct"].append(wrk(f"http://{target}/", None, seconds))
            results["elafrosd"].append(wrk(f"http://127.0.0.1:{d.port}/", host, seconds))
            results["nginx"].append(wrk(f"http://127.0.0.1:{ngport}/", None, seconds))
        return results
    finally:
        stop_nginx(ng)
        d.stop()


# --- protocols: WebSocket -------------------------------------------------------------------------

def ws_echo(address, host, n, size):
    out = run(["/usr/bin/python3", os.path.join(ROOT, "tests", "e2e", "stream_client.py"), "echo", address, host,
               str(n), str(size)]).stdout
    r = json.loads(out)
    if r["bad"]:
        raise RuntimeError(f"{r['bad']} WebSocket echoes came back wrong via {address}")
    return r


def protocols_bench(work, rounds, messages=2000, size=64):
    """WebSocket echo round trips (python3-websockets on both ends): straight to the instance's
    address, through elafrosd, and through nginx proxying the upgrade to the same address."""
    image = os.path.join(work, "ws-image")
    run([os.path.join(ROOT, "tests", "e2e", "apps", "build-pyapp.sh"), image,
         os.path.join(ROOT, "tests", "e2e", "apps", "wsecho.py"), "websockets"])
    d = Daemon(os.path.join(work, "protocols"),
               "network: bridge\nnetwork-bridge: elfbench2\nnetwork-subnet: 10.198.1.0/24\n")
    ng = None
    try:
        d.cli("service", "create", "ws", "--image", f"oci:{image}:latest", "--scale-min", "1", "--scale-max", "1")
        target = f"{instance_address(d)}:8080"
        ng, ngport = start_nginx(os.path.join(work, "nginx-ws"), 1024, "",
                                 f"proxy_pass http://{target}; proxy_set_header Upgrade $http_upgrade; "
                                 'proxy_set_header Connection "upgrade";')
        host = "ws.default.localhost"
        results = {"direct": [], "elafrosd": [], "nginx": []}
        ws_echo(f"127.0.0.1:{d.port}", host, 200, size)  # warm-up
        for _ in range(rounds):
            results["direct"].append(ws_echo(target, host, messages, size))
            results["elafrosd"].append(ws_echo(f"127.0.0.1:{d.port}", host, messages, size))
            results["nginx"].append(ws_echo(f"127.0.0.1:{ngport}", host, messages, size))
        results["messages"], results["size"] = messages, size
        return results
    finally:
        stop_nginx(ng)
        d.stop()


def protocol_lines(p, rounds):
    def best(path, key):
        return min(r[key] for r in p[path])
    lines = [
        f"## 10. WebSocket echo round trip ({p['messages']} messages of {p['size']} B on one connection, "
        f"best of {rounds} rounds)",
        "",
        "python3-websockets on both ends; the app is `tests/e2e/apps/wsecho.py` in its own network namespace. "
        "nginx proxies the upgrade to the same instance address. Measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| path | p50 | p99 | p50 vs direct | p50 vs nginx |",
        "|---|---|---|---|---|",
    ]
    for path in ("direct", "elafrosd", "nginx"):
        p50, p99 = best(path, "p50_ms"), best(path, "p99_ms")
        lines.append(f"| {path} | {p50:.3f} ms | {p99:.3f} ms | {p50 / best('direct', 'p50_ms'):.2f}× | "
                     f"{p50 / best('nginx', 'p50_ms'):.2f}× |")
    lines.append("")
    return lines


# --- protocols: HTTP/2 and gRPC --------------------------------------------------------------------

def h2load(url, n, clients, streams, extra=()):
    """h2load (nghttp2): requests/s, and p50/p99 from its per-request log."""
    fd, log = tempfile.mkstemp(prefix="h2load-")
    os.close(fd)
    try:
        out = run(["h2load", "-n", str(n), "-c", str(clients), "-m", str(streams), "--log-file", log,
                   *extra, url]).stdout
        rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
        ok = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
        with open(log) as f:
            us = sorted(int(line.split("\t")[2]) for line in f if line.strip())
    finally:
        os.unlink(log)
    return {"rps": rps, "p50": percentile(us, 50) / 1000, "p99": percentile(us, 99) / 1000,
            "errors": n - ok}


def start_nginx_h2(ngdir, target, grpc_target, cert, key):
    """nginx with one worker: h2c (prior knowledge) and h2 over TLS on free loopback ports,
    proxy_pass to `target` (upstream keepalive) and grpc_pass to `grpc_target` by host."""
    os.makedirs(ngdir, exist_ok=True)
    h2c, tls = free_port(), free_port()
    locations = ("location / { proxy_http_version 1.1; proxy_pass http://backend; "
                 'proxy_set_header Connection ""; }')
    grpc_locations = "location / { grpc_pass grpc://grpcbackend; }"
    with open(os.path.join(ngdir, "nginx.conf"), "w") as f:
        f.write(f"""daemon off; worker_processes 1; error_log stderr warn; pid {ngdir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {ngdir}/b; proxy_temp_path {ngdir}/p; fastcgi_temp_path {ngdir}/f;
  uwsgi_temp_path {ngdir}/u; scgi_temp_path {ngdir}/s;
  keepalive_requests 10000000;  # nginx closes a client connection after 1,000 requests otherwise
  upstream backend {{ server {target}; keepalive 64; }}
  upstream grpcbackend {{ server {grpc_target}; keepalive 64; }}
  server {{ listen 127.0.0.1:{h2c} http2; server_name fast.default.localhost; {locations} }}
  server {{ listen 127.0.0.1:{h2c} http2; server_name grpc.default.localhost; {grpc_locations} }}
  server {{ listen 127.0.0.1:{tls} ssl http2; server_name fast.default.localhost;
           ssl_certificate {cert}; ssl_certificate_key {key}; {locations} }}
}}
""")
    ng = subprocess.Popen(["nginx", "-c", os.path.join(ngdir, "nginx.conf"), "-p", ngdir],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "--http2-prior-knowledge",
                            "-H", "Host: fast.default.localhost", f"http://127.0.0.1:{h2c}/"])
        if r.returncode == 0:
            return ng, h2c, tls
        time.sleep(0.05)
    stop_nginx(ng)
    raise RuntimeError("nginx did not start; run it by hand with -c " + os.path.join(ngdir, "nginx.conf"))


def http2_bench(work, image, rounds, n=20000):
    """h2load through elafrosd and through nginx's http2 listeners, both proxying to the same
    instance over HTTP/1.1 (h2c with prior knowledge, and h2 over TLS); gRPC unary latency
    (python3-grpcio) through elafrosd and through nginx's grpc_pass to the same h2c instance."""
    grpc_image = os.path.join(work, "grpc-image")
    run([os.path.join(ROOT, "tests", "e2e", "apps", "build-pyapp.sh"), grpc_image,
         os.path.join(ROOT, "tests", "e2e", "apps", "grpcecho.py"), "grpc"])
    tls_port = free_port()
    d = Daemon(os.path.join(work, "http2"), f"listen-tls: 127.0.0.1:{tls_port}\n")
    ng = None
    try:
        d.cli("service", "create", "fast", "--image", f"oci:{image}:latest", "--scale-min", "1", "--scale-max", "1")
        with open(os.path.join(work, "grpc.yaml"), "w") as f:
            f.write(f"""apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: grpc}}
spec:
  template:
    metadata: {{annotations: {{autoscaling.knative.dev/min-scale: "1", autoscaling.knative.dev/max-scale: "1"}}}}
    spec:
      containers:
        - image: oci:{grpc_image}:latest
          ports: [{{name: h2c, containerPort: 8080}}]
""")
        d.cli("apply", "-f", os.path.join(work, "grpc.yaml"))
        target = f"127.0.0.1:{instance_port(d, 'fast-')}"
        grpc_target = f"127.0.0.1:{instance_port(d, 'grpc-')}"
        cert, key = os.path.join(work, "nginx.crt"), os.path.join(work, "nginx.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
             "-subj", "/CN=fast.default.localhost", "-keyout", key, "-out", cert])
        ng, ng_h2c, ng_tls = start_nginx_h2(os.path.join(work, "nginx-h2"), target, grpc_target, cert, key)
        host = "fast.default.localhost"
        results = {k: [] for k in ("elafrosd h2c", "nginx h2c", "elafrosd h2", "nginx h2",
                                   "elafrosd grpc", "nginx grpc")}
        h2load(f"http://127.0.0.1:{d.port}/", 2000, 4, 10, ["-H", f":authority: {host}"])  # warm-up
        grpc_client = ["/usr/bin/python3", os.path.join(ROOT, "tests", "e2e", "grpc_client.py"), "--latency", "2000"]
        for _ in range(rounds):
            results["elafrosd h2c"].append(h2load(f"http://127.0.0.1:{d.port}/", n, 4, 10, ["-H", f":authority: {host}"]))
            results["nginx h2c"].append(h2load(f"http://127.0.0.1:{ng_h2c}/", n, 4, 10, ["-H", f":authority: {host}"]))
            results["elafrosd h2"].append(h2load(f"https://{host}:{tls_port}/", n, 4, 10, [f"--connect-to=127.0.0.1:{tls_port}"]))
            results["nginx h2"].append(h2load(f"https://{host}:{ng_tls}/", n, 4, 10, [f"--connect-to=127.0.0.1:{ng_tls}"]))
            results["elafrosd grpc"].append(json.loads(run(grpc_client + [f"127.0.0.1:{d.port}", "grpc.default.localhost"]).stdout))
            results["nginx grpc"].append(json.loads(run(grpc_client + [f"127.0.0.1:{ng_h2c}", "grpc.default.localhost"]).stdout))
        results["n"] = n
        return results
    finally:
        stop_nginx(ng)
        d.stop()


def http2_lines(h, rounds):
    def best(path, key):
        return max(r[key] for r in h[path]) if key == "rps" else min(r[key] for r in h[path])
    lines = [
        f"## 11. HTTP/2 and gRPC (h2load -n {h['n']} -c 4 -m 10, best of {rounds} rounds)",
        "",
        "Both proxies pass HTTP/2 from h2load to the same nginx instance over HTTP/1.1 (elafrosd's pooled "
        "connections, nginx's upstream keepalive 64), one thread or worker each. gRPC: 2,000 unary calls one "
        "after another (python3-grpcio) to `tests/e2e/apps/grpcecho.py`, whose port is named h2c, through "
        "elafrosd and through nginx's `grpc_pass`. Measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| path | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for path in ("elafrosd h2c", "nginx h2c", "elafrosd h2", "nginx h2"):
        lines.append(f"| {path} | {best(path, 'rps'):.0f} | {best(path, 'p50'):.2f} | {best(path, 'p99'):.2f} | "
                     f"{sum(r['errors'] for r in h[path])} |")
    for kind in ("h2c", "h2"):
        e, g = f"elafrosd {kind}", f"nginx {kind}"
        lines.append(f"| **{kind}: elafrosd / nginx** | **{best(e, 'rps') / best(g, 'rps'):.2f}×** | "
                     f"{best(e, 'p50') / best(g, 'p50'):.2f}× | **{best(e, 'p99') / best(g, 'p99'):.2f}×** | |")
    lines += ["", "| gRPC unary | p50 ms | p99 ms |", "|---|---|---|"]
    for path in ("elafrosd grpc", "nginx grpc"):
        lines.append(f"| {path.split()[0]} | {best(path, 'p50_ms'):.3f} | {best(path, 'p99_ms'):.3f} |")
    lines.append(f"| **elafrosd / nginx** | **{best('elafrosd grpc', 'p50_ms') / best('nginx grpc', 'p50_ms'):.2f}×** | "
                 f"**{best('elafrosd grpc', 'p99_ms') / best('nginx grpc', 'p99_ms'):.2f}×** |")
    lines.append("")
    return lines


# --- 6. descriptors --------------------------------------------------------------------------------

def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def hold(d, held, target):
    """Idle connections to the API socket until the daemon has `target` descriptors open."""
    while open_fds(d.proc.pid) < target:
        c = socket.socket(socket.AF_UNIX)
        c.connect(d.sock)
        held.append(c)
        if len(held) % 50 == 0:
            time.sleep(0.05)  # let the daemon accept them
    time.sleep(0.2)
    return open_fds(d.proc.pid)


def descriptors(work, image, seconds, rounds, limit=1024):
    """The proxy under a hard open-files limit of `limit`: the same load with descriptors to spare,
    and with idle API connections holding 90% of them (the first few closed again, so that the
    load's own connections fit). New connections at 90% are shed with 503."""
    d = Daemon(os.path.join(work, "descriptors"), prefix=("prlimit", f"--nofile={limit}:{limit}"))
    held = []
    try:
        d.cli("service", "create", "fast", "--image", f"oci:{image}:latest", "--scale-min", "1", "--scale-max", "1")
        host = "fast.default.localhost"
        url = f"http://127.0.0.1:{d.port}/"
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        wrk(url, host, 2)  # warm-up: the upstream pool fills
        spare, pressed, shed = [], [], []
        fds_at = 0
        for _ in range(rounds):
            spare.append(wrk(url, host, seconds))
            fds_at = hold(d, held, int(limit * 0.9))
            for c in held[:40]:  # the lowest descriptors again free: room for the load and its upstreams
                c.close()
            del held[:40]
            time.sleep(0.2)
            pressed.append(wrk(url, host, seconds))
            hold(d, held, int(limit * 0.9))  # no room left below the threshold: new connections are shed
            shed.append(wrk(url, host, seconds, close=True))
            for c in held:
                c.close()
            held.clear()
            time.sleep(0.5)
        return {"limit": limit, "fds": fds_at, "spare": spare, "pressed": pressed, "shed": shed}
    finally:
        for c in held:
            c.close()
        d.stop()


def descriptor_lines(x, seconds, rounds):
    def best(rows, key):
        return max(r[key] for r in rows) if key == "rps" else min(r[key] for r in rows)
    s, p, sh = x["spare"], x["pressed"], x["shed"]
    return [
        f"## 6. Descriptors: the proxy at 90% of its open-files limit (wrk -t1 -c16, {seconds} s × {rounds} rounds, best round)",
        "",
        f"elafrosd under `prlimit --nofile={x['limit']}:{x['limit']}` (nothing to raise to). Under pressure, idle API "
        f"connections hold {x['fds']} of its {x['limit']} descriptors; 40 of the lowest are freed for the keep-alive "
        "load, then taken again for the connection-per-request load, whose connections mostly land past the shedding "
        "threshold and get a fast 503 with Retry-After.",
        "",
        "| load | requests/s | p50 ms | p99 ms | non-2xx | requests |",
        "|---|---|---|---|---|---|",
        f"| keep-alive, descriptors to spare | {best(s, 'rps'):.0f} | {best(s, 'p50'):.2f} | {best(s, 'p99'):.2f} | "
        f"{sum(r['non2xx'] for r in s)} | {sum(r['total'] for r in s)} |",
        f"| keep-alive, at 90% of the limit (admitted) | {best(p, 'rps'):.0f} | {best(p, 'p50'):.2f} | {best(p, 'p99'):.2f} | "
        f"{sum(r['non2xx'] for r in p)} | {sum(r['total'] for r in p)} |",
        f"| a new connection per request, at 90% (shed) | {best(sh, 'rps'):.0f} | {best(sh, 'p50'):.2f} | "
        f"{best(sh, 'p99'):.2f} | {sum(r['non2xx'] for r in sh)} | {sum(r['total'] for r in sh)} |",
        f"| **p99 at 90% / p99 with descriptors to spare** | {best(p, 'rps') / best(s, 'rps'):.2f}× | | "
        f"**{best(p, 'p99') / best(s, 'p99'):.2f}×** | | |",
        "",
        "Target: the admitted requests' p99 within 2× of normal.",
        "",
    ]


# --- 7. events -------------------------------------------------------------------------------------

def events_floor(work, commits):
    """What the ingress commits per event (the event row and one delivery row), one transaction
    with synchronous=FULL per event, one after another: the bare SQLite loop."""
    import sqlite3
    db = sqlite3.connect(os.path.join(work, "events-floor.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, attributes TEXT, data BLOB)")
    db.execute("CREATE TABLE deliveries (seq INTEGER, trigger TEXT, state TEXT, PRIMARY KEY (seq, trigger))")
    attrs = json.dumps({"id": "x", "source": "/bench", "specversion": "1.0", "type": "bench"})
    start = time.perf_counter()
    for i in range(commits):
        db.execute("BEGIN")
        cur = db.execute("INSERT INTO events (attributes, data) VALUES (?, ?)", (attrs, b'{"n":1}'))
        db.execute("INSERT INTO deliveries VALUES (?, 'all', 'pending')", (cur.lastrowid,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return commits / elapsed


class Subscriber:
    """An in-process HTTP subscriber that notes when each event id arrives."""
    def __init__(self):
        import http.server
        import threading
        self.seen = {}
        self.posts = 0
        self.cond = threading.Condition()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                self.rfile.read(n)
                eid = self.headers.get("ce-id", "")
                with outer.cond:
                    outer.posts += 1
                    outer.seen.setdefault(eid, time.perf_counter())
                    outer.cond.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, eid, timeout=10):
        with self.cond:
            self.cond.wait_for(lambda: eid in self.seen, timeout)
            return self.seen.get(eid)

    def stop(self):
        self.server.shutdown()


def events_bench(work, producers=16, events=20000, latency_events=300):
    import http.client
    d = Daemon(os.path.join(work, "events"))
    sub = Subscriber()
    try:
        d.cli("broker", "create", "default")
        d.cli("trigger", "create", "all", "--sink", f"http://127.0.0.1:{sub.port}/")
        wait_for(lambda: "True" in d.cli("trigger", "list").stdout, 10)
        headers = {"Host": "broker-ingress.localhost", "ce-source": "/bench", "ce-specversion": "1.0",
                   "ce-type": "bench", "Content-Type": "application/json"}

        # Publish → the subscriber has it, one event at a time, against a direct POST.
        def one(conn, path, eid, host):
            h = dict(headers, **{"ce-id": eid, "Host": host})
            t0 = time.perf_counter()
            conn.request("POST", path, body=b'{"n":1}', headers=h)
            conn.getresponse().read()
            got = sub.wait(eid)
            return (got - t0) if got else 10.0
        broker = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        direct = http.client.HTTPConnection("127.0.0.1", sub.port, timeout=10)
        via, raw = [], []
        for i in range(latency_events):
            via.append(one(broker, "/default/default", f"lat-{i}", "broker-ingress.localhost"))
            raw.append(one(direct, "/", f"direct-{i}", f"127.0.0.1:{sub.port}"))

        # Durable 202s per second from 16 producers, and how fast they are all delivered.
        body_file = os.path.join(work, "event.json")
        with open(body_file, "w") as f:
            f.write('{"n":1}')
        before_posts = sub.posts
        start = time.perf_counter()
        out = run(["hey", "-n", str(events), "-c", str(producers), "-m", "POST", "-host", "broker-ingress.localhost",
                   "-H", "ce-id: bulk", "-H", "ce-source: /bench", "-H", "ce-specversion: 1.0", "-H", "ce-type: bench",
                   "-T", "application/json", "-D", body_file, f"http://127.0.0.1:{d.port}/default/default"]).stdout
        ingress_seconds = time.perf_counter() - start
        accepted = int(re.search(r"\[202\]\s+(\d+) responses", out).group(1)) if "[202]" in out else 0
        # Every copy of "bulk" is one delivery: the subscriber counts its POSTs.
        wait_for(lambda: sub.posts - before_posts >= accepted, 120, 0.05)
        delivery_seconds = time.perf_counter() - start
        delivered = sub.posts - before_posts
        floor = events_floor(work, 2000)
        return {"via": via, "direct": raw, "accepted": accepted, "events": events, "producers": producers,
                "ingress_rate": accepted / ingress_seconds, "floor": floor,
                "delivered": delivered, "delivery_rate": delivered / delivery_seconds}
    finally:
        sub.stop()
        d.stop()


def event_lines(x):
    def ms(v):
        return f"{v * 1000:.2f}"
    return [
        "## 7. Events: durable ingress, end-to-end latency, delivery",
        "",
        f"Ingress: {x['producers']} producers (hey) POST {x['events']} binary-mode CloudEvents to a broker with one "
        "Trigger; each 202 is sent only once the event and its delivery are committed (WAL, synchronous=FULL). "
        "The floor commits the same two rows per event, one transaction each, one after another (Python's sqlite3).",
        "",
        "| path | events/s | |",
        "|---|---|---|",
        f"| elafrosd ingress, {x['producers']} producers, durable 202s | {x['ingress_rate']:.0f} | {x['accepted']} accepted |",
        f"| bare SQLite loop, one commit per event | {x['floor']:.0f} | |",
        f"| **ratio ingress / SQLite loop** | **{x['ingress_rate'] / x['floor']:.2f}×** | |",
        f"| delivered to a fast subscriber (publish start → last delivery) | {x['delivery_rate']:.0f} | {x['delivered']:.0f} delivered |",
        "",
        f"| one event at a time, {len(x['via'])} each | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| publish → the subscriber has it, through the broker | {ms(percentile(x['via'], 50))} | {ms(percentile(x['via'], 99))} |",
        f"| a direct POST to the same subscriber | {ms(percentile(x['direct'], 50))} | {ms(percentile(x['direct'], 99))} |",
        "",
    ]


# --- 3. burst -------------------------------------------------------------------------------------

# --- builds: source to Ready, against buildah ------------------------------------------------

def builds_bench(work, rounds):
    """Source → Ready for the Python example: elafros's buildpacks build (upload, detect, compile,
    release, export, deploy by digest), uncached then cached; against buildah building the same
    app directory onto the same base (FROM, COPY), pushing it to an OCI layout and deploying that.
    A fresh daemon (and buildah store) per round, so that "uncached" is uncached."""
    builder = os.path.join(work, "builder-image")
    run([os.path.join(ROOT, "examples", "buildpacks", "build-builder.sh"), builder, "latest"])
    app = os.path.join(ROOT, "examples", "apps", "python-app")
    rows = {k: [] for k in ("elafros_uncached", "elafros_cached", "buildah_uncached", "buildah_cached")}
    for r in range(rounds):
        d = Daemon(os.path.join(work, f"builds{r}"))
        storage = os.path.join(work, f"buildah{r}")
        bah = ["buildah", "--root", storage + "/root", "--runroot", storage + "/run",
               "--storage-driver", "overlay"]
        try:
            d.cli("image", "import", f"oci:{builder}:latest", "--name", "elafros-builder:latest")
            for key, verb in (("elafros_uncached", "create"), ("elafros_cached", "update")):
                t = time.time()
                d.cli("service", verb, "py", "--source", app)
                rows[key].append(time.time() - t)
                if first_byte(d.port, "py.default.localhost") is None:
                    raise RuntimeError("the built Python app does not serve")
            ctx = os.path.join(storage, "ctx")
            shutil.copytree(app, os.path.join(ctx, "app"))
            with open(os.path.join(ctx, "Containerfile"), "w") as f:
                f.write(f"FROM oci:{builder}:latest\nCOPY app /workspace\n")
            out = os.path.join(storage, "layout")
            for key, verb in (("buildah_uncached", "create"), ("buildah_cached", "update")):
                tag = key.split("_")[1]
                t = time.time()
                run([*bah, "bud", "--layers", "-q", "-t", "localhost/pyapp:latest",
                     "-f", os.path.join(ctx, "Containerfile"), ctx])
                run([*bah, "push", "-q", "localhost/pyapp:latest", f"oci:{out}:{tag}"])
                d.cli("service", verb, "pyb", "--image", f"oci:{out}:{tag}", "--cmd", "python3",
                      "--arg", "/workspace/app.py", "-e", "PYTHONPATH=/workspace/vendor")
                rows[key].append(time.time() - t)
                if first_byte(d.port, "pyb.default.localhost") is None:
                    raise RuntimeError("the buildah-built app does not serve")
        finally:
            d.stop()
            run([*bah, "rm", "-a"], check=False)
            run([*bah, "rmi", "-a", "-f"], check=False)
            with open("/proc/mounts") as f:
                for line in f:
                    if line.split()[1].startswith(storage):
                        run(["umount", "-l", line.split()[1]], check=False)
    return rows


def build_lines(rows):
    med = {k: statistics.median(v) for k, v in rows.items()}
    n = len(rows["elafros_cached"])
    return [
        f"## 8. Builds: source → Ready, the Python example ({n} rounds, median)",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `bench/bench.py --only builds`. "
        "elafros: `service create|update --source examples/apps/python-app` (upload, the buildpacks "
        "template's detect, compile and release steps in runc, the reproducible app layer on the builder "
        "image, import, deploy by digest, Ready). buildah: `buildah bud --layers` of a two-line "
        "Containerfile (`FROM` the same builder image as an OCI layout, `COPY` the app to /workspace), "
        "`buildah push` to an OCI layout, then `service create|update --image` of it until Ready. "
        "Each round uses a fresh daemon and a fresh buildah store (overlay driver).",
        "",
        "| path | uncached s | cached s |",
        "|---|---|---|",
        f"| elafros, source → Ready | {med['elafros_uncached']:.2f} | {med['elafros_cached']:.2f} |",
        f"| buildah bud + push + deploy → Ready | {med['buildah_uncached']:.2f} | {med['buildah_cached']:.2f} |",
        f"| **ratio elafros / buildah** | {med['elafros_uncached'] / med['buildah_uncached']:.2f}× | "
        f"**{med['elafros_cached'] / med['buildah_cached']:.2f}×** |",
        "",
        "Goal: elafros's cached path is faster than buildah's (ratio below 1). elafros's build also "
        "compiles the app and installs its vendored package; buildah's only copies it.",
        "",
    ]


def burst(work, hello_image, clients, seconds):
    d = Daemon(os.path.join(work, "burst"), "scale-to-zero-grace-period-seconds: 0\n")
    try:
        d.cli("service", "create", "burst", "--image", f"oci:{hello_image}:latest", "--scale-target", "10",
              "--scale-window", "6s", "--scale-max", "20")
        if not wait_for(lambda: not d.containers("burst-", running=True), 60):
            raise RuntimeError("burst did not scale to zero")
        hey = subprocess.Popen(["hey", "-z", f"{seconds}s", "-c", str(clients), "-host", "burst.default.localhost",
                                f"http://127.0.0.1:{d.port}/cgi-bin/sleep?0.5"], stdout=subprocess.PIPE, text=True)
        start = time.time()
        trace = []
        while hey.poll() is None:
            r = json.loads(d.cli("revision", "describe", "burst-00001", "-o", "json").stdout)["status"]
            trace.append((time.time() - start, r.get("desiredReplicas", 0), r.get("actualReplicas", 0)))
            time.sleep(0.05)
        out = hey.stdout.read()
    finally:
        d.stop()
    peak = max(t[1] for t in trace)
    reached = next((t[0] for t in trace if t[2] >= peak), None)
    desired_at = next((t[0] for t in trace if t[1] >= peak), None)
    p99 = re.search(r"99%+ in ([0-9.]+) secs", out)
    codes = dict((int(c), int(n)) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    errors = sum(n for c, n in codes.items() if c != 200)
    m = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", out)
    if m:
        errors += sum(int(n) for n in re.findall(r"\[(\d+)\]", m.group(1)))
    return {"peak": peak, "reached": reached, "desired_at": desired_at, "responses": sum(codes.values()),
            "errors": errors, "p99": float(p99.group(1)) if p99 else None}


def burst_lines(b, seconds):
    def secs(v):
        return "not reached" if v is None else f"{v:.2f} s"
    p99 = "-" if b["p99"] is None else f"{b['p99'] * 1000:.0f} ms"
    return [
        f"## 3. Burst from zero (hey, 50 clients, {seconds} s of 0.5 s requests, target 10 per instance)",
        "",
        "| desired scale | set within | all of it ready within | responses | errors | p99 |",
        "|---|---|---|---|---|---|",
        f"| {b['peak']} | {secs(b['desired_at'])} | {secs(b['reached'])} | {b['responses']} | {b['errors']} | "
        f"{p99} |",
        "",
        "Times from the first request, read every 50 ms from `revision describe` (desiredReplicas, "
        "actualReplicas). The proxy pokes the autoscaler with the requests in flight while the ready "
        "instances' spare capacity is below the target burst capacity (211), and the poke's scale holds "
        "for a panic window. Targets: the desired scale set within 1 s; 0 errors.",
        "",
    ]


# --- 4. idle footprint ----------------------------------------------------------------------------

def footprint(work, hello_image, services):
    d = Daemon(os.path.join(work, "idle"), "scale-to-zero-grace-period-seconds: 0\n")
    try:
        empty = d.rss_kib()
        d.cli("image", "import", f"oci:{hello_image}:latest", "--name", "hello")
        for i in range(services):
            d.cli("service", "create", f"s{i:03d}", "--image", "hello", "--scale-window", "6s", "--no-wait")
        if not wait_for(lambda: len(d.containers("s", running=True)) == services, 300, 0.2):
            raise RuntimeError("not every service started")
        if not wait_for(lambda: not d.containers("s", running=True), 300, 0.5):
            raise RuntimeError("services did not scale to zero")
        time.sleep(3)
        return empty, d.rss_kib()
    finally:
        d.stop()


# --- density: many services defined, some live ------------------------------------------------------

def density(work, nginx_image, hello_image, services, live, seconds, rounds):
    """The proxy's requests/s to one service with only it defined, then with `services` defined
    and `live` instances running (the rest at zero), on the same daemon."""
    d = Daemon(os.path.join(work, "density"), "scale-to-zero-grace-period-seconds: 0\nstandby-max: 0\n")
    try:
        d.cli("service", "create", "fast", "--image", f"oci:{nginx_image}:latest", "--scale-min", "1",
              "--scale-max", "1")
        host, url = "fast.default.localhost", f"http://127.0.0.1:{d.port}/"
        wrk(url, host, 2)  # warm-up
        one = [wrk(url, host, seconds) for _ in range(rounds)]
        d.cli("image", "import", f"oci:{hello_image}:latest", "--name", "hello")
        t0 = time.time()
        for i in range(services - 1):
            args = ["service", "create", f"d{i:04d}", "--image", "hello", "--scale-window", "6s", "--no-wait"]
            d.cli(*(args + (["--scale-min", "1"] if i < live - 1 else [])))
        created_s = time.time() - t0
        if not wait_for(lambda: len(d.containers("d", running=True)) == live - 1, 600, 0.5):
            raise RuntimeError("the services did not settle at %d live instances" % live)
        settled_s = time.time() - t0
        wrk(url, host, 2)
        many = [wrk(url, host, seconds) for _ in range(rounds)]
        return {"one": one, "many": many, "rss": d.rss_kib(), "created_s": created_s, "settled_s": settled_s}
    finally:
        d.stop()


def density_lines(x, empty, idle, services, live, idle_services, seconds, rounds):
    def best(rows, key):
        return max(r[key] for r in rows) if key == "rps" else min(r[key] for r in rows)

    def row(label, rows):
        return f"| {label} | {best(rows, 'rps'):.0f} | {best(rows, 'p50'):.2f} | {best(rows, 'p99'):.2f} | " \
               f"{sum(r['errors'] for r in rows)} |"
    one, many = x["one"], x["many"]
    return [
        f"## 12. Density: {services} services, {live} instances (wrk -t1 -c16 to one of them, {seconds} s × "
        f"{rounds} rounds, best round)",
        "",
        "| the daemon holds | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
        row("1 service", one),
        row(f"{services} services, {live} instances live, the rest at zero", many),
        f"| **{services} services / 1 service** | **{best(many, 'rps') / best(one, 'rps'):.2f}×** | "
        f"{best(many, 'p50') / best(one, 'p50'):.2f}× | {best(many, 'p99') / best(one, 'p99'):.2f}× | |",
        "",
        f"The {services - 1} services were created in {x['created_s']:.0f} s (one CLI call each) and settled at "
        f"{live} live instances {x['settled_s']:.0f} s after the first; elafrosd's RSS then: {x['rss'] / 1024:.1f} MiB. "
        f"Idle, on a daemon of its own: {idle / 1024:.1f} MiB with {idle_services} services at zero, "
        f"{empty / 1024:.1f} MiB with none: {(idle - empty) / idle_services:.1f} KiB per idle service.",
        "",
        "Targets: ≥ 0.95× the requests/s with one service; idle RSS with 1,000 services at zero ≤ 40 MiB.",
        "",
    ]


# --- 5. API: durable writes, list latency, watch fan-out -----------------------------------------

class UnixHTTP:
    """One keep-alive HTTP/1.1 connection to the API socket."""

    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)
        self.buf = b""

    def request(self, method, target, body=None, accept="application/json"):
        if self.sock is None:
            self._connect()
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {target} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
        self.sock.sendall(head.encode() + data)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the API closed the connection")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buf = rest[length:]
        return status, rest[:length]


SERVICES = "/apis/serving.knative.dev/v1/namespaces/default/services"


def service_body(name, value):
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"image": "hello", "env": [{"name": "V", "value": value}]}]}}}}


def sqlite_floor(work, commits):
    """The same number of single-row commits, one after another, WAL with synchronous=FULL."""
    import sqlite3
    db = sqlite3.connect(os.path.join(work, "floor.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    payload = json.dumps(service_body("floor", "x"))
    start = time.perf_counter()
    for i in range(commits):
        db.execute("BEGIN")
        db.execute("INSERT INTO t (body) VALUES (?)", (payload,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return commits / elapsed


def api_bench(work, hello_image, clients, services, watchers, rounds):
    import threading
    d = Daemon(os.path.join(work, "api"))
    try:
        d.cli("image", "import", f"oci:{hello_image}:latest", "--name", "hello")
        # Halted, the writes are stored and nothing starts: the API and the store are measured.
        d.cli("system", "stop-all")
        per_client = services // clients
        errors = []

        def writer(c):
            conn = UnixHTTP(d.sock)
            for i in range(per_client):
                name = f"w{c:02d}-{i:03d}"
                st, body = conn.request("POST", SERVICES, service_body(name, "1"))
                if st != 201:
                    errors.append((st, body[:200]))
                st, body = conn.request("PUT", f"{SERVICES}/{name}", service_body(name, "2"))
                if st != 200:
                    errors.append((st, body[:200]))

        before = metric(d, "elafros_store_transactions_total"), metric(d, "elafros_store_write_groups_total")
        threads = [threading.Thread(target=writer, args=(c,)) for c in range(clients)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        if errors:
            raise RuntimeError(f"{len(errors)} writes failed, e.g. {errors[0]}")
        writes = per_client * clients * 2
        after = metric(d, "elafros_store_transactions_total"), metric(d, "elafros_store_write_groups_total")
        floor = sqlite_floor(work, writes)

        # List latency with every service stored (JSON, and kubectl's Table form).
        conn = UnixHTTP(d.sock)
        def timed(target, accept="application/json"):
            samples = []
            for _ in range(20):
                t0 = time.perf_counter()
                st, body = conn.request("GET", target, accept=accept)
                samples.append(time.perf_counter() - t0)
                if st != 200:
                    raise RuntimeError(f"list answered {st}")
            return samples, body
        listed, body = timed(SERVICES)
        count = len(json.loads(body)["items"])
        tabled, _ = timed(SERVICES, "application/json;as=Table;v=v1;g=meta.k8s.io")

        # Watch fan-out: a write, then the time until each of the watchers has its event.
        import selectors
        sel = selectors.DefaultSelector()
        st, body = conn.request("GET", SERVICES + "?limit=1")
        rv = json.loads(body)["metadata"]["resourceVersion"]
        socks = []
        for i in range(watchers):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            s.sendall(f"GET {SERVICES}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dw00-000 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, {"buf": b""})
            socks.append(s)
        last, first, write_ms = [], [], []
        for r in range(rounds):
            marker = f"round-{r}-{time.time_ns()}"
            t0 = time.perf_counter()
            st, _ = conn.request("PUT", f"{SERVICES}/w00-000", service_body("w00-000", marker))
            write_ms.append(time.perf_counter() - t0)
            if st != 200:
                raise RuntimeError(f"fan-out write answered {st}")
            seen, t_first = set(), None
            deadline = t0 + 10
            while len(seen) < watchers and time.perf_counter() < deadline:
                for key, _ in sel.select(timeout=1):
                    chunk = key.fileobj.recv(1 << 20)
                    key.data["buf"] += chunk
                    if marker.encode() in key.data["buf"]:
                        key.data["buf"] = b""
                        if key.fileobj not in seen:
                            seen.add(key.fileobj)
                            t_first = t_first or time.perf_counter()
            if len(seen) < watchers:
                raise RuntimeError(f"only {len(seen)} of {watchers} watchers saw round {r}")
            first.append(t_first - t0)
            last.append(time.perf_counter() - t0)
        for s in socks:
            sel.unregister(s)
            s.close()
        return {"writes": writes, "elapsed": elapsed, "floor": floor, "clients": clients,
                "transactions": after[0] - before[0], "groups": after[1] - before[1],
                "count": count, "list": listed, "table": tabled, "first": first, "last": last, "write": write_ms}
    finally:
        d.stop(delete_services=False)  # halted: nothing runs, and the data dir goes


def api_lines(a):
    def ms(v):
        return f"{v * 1000:.1f}"
    rate = a["writes"] / a["elapsed"]
    return [
        f"## 5. The API: durable writes, lists and watches",
        "",
        f"Durable writes: {a['clients']} clients over the unix socket, each creating and then updating services "
        f"(every write mints a revision: two objects), {a['writes']} writes, acknowledged only once committed "
        "(WAL, synchronous=FULL), with the daemon halted so that nothing starts. The floor does the same number of "
        "single-row `synchronous=FULL` commits one after another (Python's sqlite3).",
        "",
        "| path | writes/s | transactions | write groups |",
        "|---|---|---|---|",
        f"| elafrosd API, {a['clients']} clients | {rate:.0f} | {a['transactions']:.0f} | {a['groups']:.0f} |",
        f"| bare SQLite loop, one commit per write | {a['floor']:.0f} | {a['writes']} | |",
        f"| **ratio API / SQLite loop** | **{rate / a['floor']:.2f}×** | | |",
        "",
        f"The write groups include the controller's status writes; {a['groups'] / max(a['transactions'], 1):.1f} groups per transaction (one fsync).",
        "",
        f"| list of {a['count']} services (GET, JSON) | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| 20 lists on one connection | {ms(percentile(a['list'], 50))} | {ms(percentile(a['list'], 99))} |",
        f"| 20 lists as a Table (`kubectl get ksvc`) | {ms(percentile(a['table'], 50))} | {ms(percentile(a['table'], 99))} |",
        "",
        f"| watch fan-out, 100 watchers, {len(a['last'])} writes | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| the write itself (PUT → 200) | {ms(percentile(a['write'], 50))} | {ms(percentile(a['write'], 99))} |",
        f"| write sent → first watcher has the event | {ms(percentile(a['first'], 50))} | {ms(percentile(a['first'], 99))} |",
        f"| write sent → last of 100 watchers has it | {ms(percentile(a['last'], 50))} | {ms(percentile(a['last'], 99))} |",
        "",
    ]


def metric(d, name):
    conn = UnixHTTP(d.sock)
    st, body = conn.request("GET", "/metrics")
    m = re.search(rf"^{name} (\S+)$", body.decode(), re.M)
    return float(m.group(1)) if m else 0.0


# --- 8. telemetry sinks: a dead receiver does not slow the proxy --------------------------------

class DeadReceiver:
    """Accepts TCP connections and never reads from them: a syslog receiver that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.sock.close()
        for c in self.held:
            c.close()


class LiveReceiver:
    """Takes what the sinks send and throws it away: a TCP drain for syslog, and an HTTP server
    answering 200 for OTLP."""

    def __init__(self):
        import http.server
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.syslog_port = self.tcp.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

        class Ok(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", "0")))
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        self.otlp_port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn):
        while conn.recv(1 << 16):
            pass

    def stop(self):
        self.tcp.close()
        self.http.shutdown()


def sinks_bench(work, hello_image, seconds, rounds):
    dead, live = DeadReceiver(), LiveReceiver()
    config = """log-sinks: [file, syslog, otlp]
syslog-address: tcp://127.0.0.1:{syslog}
otlp-endpoint: http://127.0.0.1:{otlp}
tracing-protocol: http/json
tracing-sampling-rate: 1
"""
    daemons = {
        "off": Daemon(os.path.join(work, "sinks-off")),
        "live": Daemon(os.path.join(work, "sinks-live"),
                       config.format(syslog=live.syslog_port, otlp=live.otlp_port)),
        # The dead receiver: syslog to a listener that never reads, OTLP where nothing listens.
        "dead": Daemon(os.path.join(work, "sinks-dead"), config.format(syslog=dead.port, otlp=free_port())),
    }
    results = {k: [] for k in daemons}
    try:
        for d in daemons.values():
            d.cli("service", "create", "fast", "--image", f"oci:{hello_image}:latest", "--scale-min", "1",
                  "--scale-max", "1")
        host = "fast.default.localhost"
        for d in daemons.values():
            wrk(f"http://127.0.0.1:{d.port}/", host, 2)  # warm-up
        for _ in range(rounds):
            for k, d in daemons.items():
                results[k].append(wrk(f"http://127.0.0.1:{d.port}/", host, seconds))
        for k in ("live", "dead"):
            results[k + "-status"] = json.loads(daemons[k].cli("status", "-o", "json").stdout).get("logSinks", [])
    finally:
        for d in daemons.values():
            d.stop()
        dead.stop()
        live.stop()
    return results


def sink_lines(x, seconds, rounds):
    def best(rows, key):
        return max(r[key] for r in rows) if key == "rps" else min(r[key] for r in rows)

    def row(label, rows):
        return (f"| {label} | {best(rows, 'rps'):.0f} | {best(rows, 'p50'):.2f} | {best(rows, 'p99'):.2f} | "
                f"{sum(r['errors'] for r in rows)} |")

    def status(rows):
        return "; ".join(f"{s['name']}: healthy {str(s['healthy']).lower()}, {s['droppedLines']} dropped or refused"
                         for s in rows if s["name"] not in ("file", "telemetry"))
    off, live, dead = x["off"], x["live"], x["dead"]
    return [
        f"## 8. Telemetry sinks: a dead receiver does not slow the proxy (wrk -t1 -c16 to the hello app, {seconds} s × "
        f"{rounds} rounds, the three daemons in turn, best round)",
        "",
        "The same sinks in both sink rows: syslog over TCP, OTLP logs, and OTLP traces of every request (sampling rate "
        "1), fed with the access record of every request. Live: receivers that take everything; dead: a syslog "
        "listener that accepts and never reads, and an OTLP port where nothing listens.",
        "",
        "| daemon | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
        row("no network sinks, no tracing", off),
        row("sinks, receivers live", live),
        row("sinks, receivers dead", dead),
        f"| **dead / live** | **{best(dead, 'rps') / best(live, 'rps'):.2f}×** | {best(dead, 'p50') / best(live, 'p50'):.2f}× | "
        f"**{best(dead, 'p99') / best(live, 'p99'):.2f}×** | |",
        f"| live / none (what the sinks and 100% tracing cost) | {best(live, 'rps') / best(off, 'rps'):.2f}× | "
        f"{best(live, 'p50') / best(off, 'p50'):.2f}× | {best(live, 'p99') / best(off, 'p99'):.2f}× | |",
        "",
        "Meanwhile, live: " + status(x["live-status"]) + ". Dead: " + status(x["dead-status"]) + ".",
        "",
        "Target: dead ≥ 0.95× live's requests/s (nothing waits on a receiver).",
        "",
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "README.md"))
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--build-rounds", type=int, default=3)
    ap.add_argument("--api-services", type=int, default=1008)  # 16 clients × 63
    ap.add_argument("--only", choices=["cold", "burst", "density", "proxy", "api", "descriptors", "events", "builds", "sinks",
                                       "protocols", "http2"],
                    help="run only this benchmark (and report only it)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="elafros-bench-")
    try:
        nginx_image = os.path.join(work, "nginx-image")
        hello_image = os.path.join(work, "hello-image")
        run([os.path.join(ROOT, "examples", "hello", "build-image.sh"), hello_image, "latest"])
        if args.only == "density":
            run([os.path.join(ROOT, "bench", "build-nginx-image.sh"), nginx_image])
            x = density(work, nginx_image, hello_image, 1000, 200, args.seconds, args.rounds)
            empty, idle = footprint(work, hello_image, 1000)
            print("\n".join(density_lines(x, empty, idle, 1000, 200, 1000, args.seconds, args.rounds)))
            return
        if args.only == "burst":
            print("\n".join(burst_lines(burst(work, hello_image, 50, args.seconds), args.seconds)))
            return
        if args.only == "builds":
            print("\n".join(build_lines(builds_bench(work, args.build_rounds))))
            return
        if args.only == "events":
            print("\n".join(event_lines(events_bench(work))))
            return
        if args.only == "protocols":
            print("\n".join(protocol_lines(protocols_bench(work, args.rounds), args.rounds)))
            return
        if args.only == "sinks":
            print("\n".join(sink_lines(sinks_bench(work, hello_image, args.seconds, args.rounds),
                                       args.seconds, args.rounds)))
            return
        if args.only == "http2":
            run([os.path.join(ROOT, "bench", "build-nginx-image.sh"), nginx_image])
            print("\n".join(http2_lines(http2_bench(work, nginx_image, args.rounds), args.rounds)))
            return
        if args.only in ("cold", "proxy"):
            run([os.path.join(ROOT, "bench", "build-nginx-image.sh"), nginx_image])
            if args.only == "cold":
                print("\n".join(cold_lines(cold_bench(work, nginx_image, args.cycles))))
            else:
                print("\n".join(proxy_lines(proxy(work, nginx_image, args.seconds, args.rounds),
                                             proxy(work, nginx_image, args.seconds, args.rounds, "bridge"),
                                             args.seconds, args.rounds)))
            return
        if args.only == "descriptors":
            run([os.path.join(ROOT, "bench", "build-nginx-image.sh"), nginx_image])
            x = descriptors(work, nginx_image, args.seconds, args.rounds)
            print("\n".join(descriptor_lines(x, args.seconds, args.rounds)))
            return
        print("API…", file=sys.stderr)
        api = api_bench(work, hello_image, 16, args.api_services, 100, 20)
        if args.only == "api":
            print("\n".join(api_lines(api)))
            return
        run([os.path.join(ROOT, "bench", "build-nginx-image.sh"), nginx_image])
        print("cold start…", file=sys.stderr)
        cold = cold_bench(work, nginx_image, args.cycles)
        print("proxy…", file=sys.stderr)
        px = proxy(work, nginx_image, args.seconds, args.rounds)
        px_bridge = proxy(work, nginx_image, args.seconds, args.rounds, "bridge")
        print("burst…", file=sys.stderr)
        b = burst(work, hello_image, 50, args.seconds)
        print("idle footprint…", file=sys.stderr)
        empty, idle = footprint(work, hello_image, args.services)
        print("descriptors…", file=sys.stderr)
        fds = descriptors(work, nginx_image, args.seconds, args.rounds)
        print("events…", file=sys.stderr)
        ev = events_bench(work)
        print("sinks…", file=sys.stderr)
        sk = sinks_bench(work, hello_image, args.seconds, args.rounds)
        print("protocols…", file=sys.stderr)
        pr = protocols_bench(work, args.rounds)
        print("HTTP/2…", file=sys.stderr)
        h2 = http2_bench(work, nginx_image, args.rounds)
        print("density…", file=sys.stderr)
        dn = density(work, nginx_image, hello_image, 1000, 200, args.seconds, args.rounds)
        dn_empty, dn_idle = footprint(work, hello_image, 1000)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def ms(v):
        return f"{v * 1000:.1f}"

    def best(rows, key):
        return max(r[key] for r in rows) if key == "rps" else min(r[key] for r in rows)

    cpu = re.search(r"model name\s+:\s+(.*)", open("/proc/cpuinfo").read())
    lines = [
        "# elafros benchmarks",
        "",
        "Run: `sudo bench/run.sh` (builds, installs nginx, wrk, hey and python3 from Debian, and rewrites this file).",
        "Every row is measured side by side in the same run; ratios compare with the reference of that run.",
        "",
        f"Machine: {os.cpu_count()} CPUs ({cpu.group(1) if cpu else platform.machine()}), kernel {platform.release()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. A shared, noisy machine: compare ratios, not absolutes.",
        "",
    ] + cold_lines(cold) + proxy_lines(px, px_bridge, args.seconds, args.rounds) + [
    ] + burst_lines(b, args.seconds) + [
        f"## 4. Idle footprint ({args.services} services, all scaled to zero)",
        "",
        "| elafrosd RSS, no services | elafrosd RSS, services at zero | target |",
        "|---|---|---|",
        f"| {empty / 1024:.1f} MiB | {idle / 1024:.1f} MiB | ≤ 30 MB |",
        "",
    ] + api_lines(api) + descriptor_lines(fds, args.seconds, args.rounds) + event_lines(ev) + \
        sink_lines(sk, args.seconds, args.rounds) + protocol_lines(pr, args.rounds) + http2_lines(h2, args.rounds) + \
        density_lines(dn, dn_empty, dn_idle, 1000, 200, 1000, args.seconds, args.rounds)
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
