#!/usr/bin/env python3
"""elafros soak: a long mixed run that looks for leaks, not speed.

For --minutes (30 by default) one daemon (a network namespace per instance, standbys on) serves:
a steady service under constant load; a service that scales to zero and is cold-started every
minute; a service updated (a new revision) every 5 minutes. Every 5 minutes the daemon is also
killed with SIGKILL and started again on the same data dir. Every 10 s it samples the daemon's
resident memory, open descriptors, zombie children and containers.

It reports: RSS growth after warm-up within each daemon's life (the goal: under 5%), descriptors
(flat), zombies (0), and errors outside the killed moments (0). It writes a "Soak" section into
bench/README.md (or --out). Run it through bench/soak.sh, as root; everything it starts, it stops.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the Daemon helper and friends)

ROOT = bench.ROOT
WARMUP_S = 60  # of each daemon's life, before its RSS counts


class Soak:
    def __init__(self, work, minutes, kill_every, update_every, cycle_every):
        self.work = work
        self.deadline = time.time() + minutes * 60
        self.kill_every, self.update_every, self.cycle_every = kill_every, update_every, cycle_every
        self.config = ("scale-to-zero-grace-period-seconds: 0\nnetwork: bridge\n"
                       "network-bridge: elfsoak0\nnetwork-subnet: 10.198.0.0/24\n")
        self.lock = threading.Lock()
        self.daemon = None
        self.lives = []  # per daemon: start time, and its samples (t, rss_kib, fds, zombies, containers)
        self.killed = []  # (from, to): a kill until the restarted daemon serves again, plus 3 s
        self.chunks = []  # load runs: (start, end, service, codes {status: n}, transport errors)
        self.stop = threading.Event()

    def start_daemon(self):
        d = bench.Daemon(os.path.join(self.work, "soak"), self.config)
        with self.lock:
            self.daemon = d
            self.lives.append({"start": time.time(), "pid": d.proc.pid, "samples": []})
        return d

    def port(self):
        with self.lock:
            return self.daemon.port

    def load(self, service, seconds=None, requests=None, clients=4, rate=None):
        start = time.time()
        cmd = ["hey", "-c", str(clients), "-host", f"{service}.default.localhost", "-t", "10"]
        cmd += ["-z", f"{seconds}s"] if seconds else ["-n", str(requests)]
        if rate:
            cmd += ["-q", str(rate)]
        r = subprocess.run(cmd + [f"http://127.0.0.1:{self.port()}/"], capture_output=True, text=True)
        codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", r.stdout)}
        m = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)+)", r.stdout)
        transport = sum(int(n) for n in re.findall(r"\[(\d+)\]", m.group(1))) if m else 0
        with self.lock:
            self.chunks.append((start, time.time(), service, codes, transport))

    def steady_load(self):
        while not self.stop.is_set():
            self.load("steady", seconds=10, clients=4, rate=50)

    def sample(self):
        with self.lock:
            life = self.lives[-1]
            pid = life["pid"]
        try:
            with open(f"/proc/{pid}/status") as f:
                rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, AttributeError):
            return
        ps = subprocess.run(["ps", "--ppid", str(pid), "-o", "stat="], capture_output=True, text=True).stdout
        zombies = sum(1 for s in ps.split() if s.startswith("Z"))
        containers = len(self.daemon.containers())
        with self.lock:
            life["samples"].append((time.time(), rss, fds, zombies, containers))

    def kill_and_restart(self):
        with self.lock:
            d = self.daemon
        began = time.time()
        d.proc.kill()
        d.proc.wait(timeout=30)
        d = self.start_daemon()
        bench.wait_for(lambda: self.served("steady"), 30)
        with self.lock:
            self.killed.append((began, time.time() + 3))

    def served(self, service):
        try:
            return bench.first_byte(self.port(), f"{service}.default.localhost", timeout=5) is not None
        except OSError:
            return False

    def run(self):
        hello = os.path.join(self.work, "hello-image")
        bench.run([os.path.join(ROOT, "examples", "hello", "build-image.sh"), hello, "latest"])
        d = self.start_daemon()
        image = f"oci:{hello}:latest"
        d.cli("service", "create", "steady", "--image", image, "--scale-min", "1")
        d.cli("service", "create", "cyclic", "--image", image, "--scale-window", "6s")
        d.cli("service", "create", "updated", "--image", image, "--scale-window", "6s")
        loader = threading.Thread(target=self.steady_load, daemon=True)
        loader.start()
        began = time.time()
        # Updates halfway between kills, so that an update's requests do not fall in a killed moment.
        next_kill, next_cycle = began + self.kill_every, began
        next_update = began + self.update_every / 2
        next_sample, updates = began, 0
        while time.time() < self.deadline:
            now = time.time()
            if now >= next_sample:
                self.sample()
                next_sample += 10
            if now >= next_cycle:  # a cold start: the cyclic service is at zero by now
                threading.Thread(target=self.load, args=("cyclic",), kwargs={"requests": 200, "clients": 10},
                                 daemon=True).start()
                next_cycle += self.cycle_every
            if now >= next_update:
                updates += 1
                with self.lock:
                    cli = self.daemon.cli
                cli("service", "update", "updated", "-e", f"ROUND={updates}", check=False)
                threading.Thread(target=self.load, args=("updated",), kwargs={"requests": 200},
                                 daemon=True).start()
                next_update += self.update_every
            if now >= next_kill:
                self.kill_and_restart()
                next_kill += self.kill_every
            time.sleep(0.2)
        self.stop.set()
        loader.join(timeout=30)
        time.sleep(1)
        with self.lock:
            d = self.daemon
        # Deleting the services must leave no container (standbys included) before anything is
        # forced away.
        for name in ("steady", "cyclic", "updated"):
            d.cli("service", "delete", name, check=False)
        bench.wait_for(lambda: not d.containers(), 30)
        left = d.containers()
        d.stop()
        return self.report(updates, left)

    def report(self, updates, left):
        def overlaps(c):
            return any(c[0] < to and c[1] > fr for fr, to in self.killed)
        kept = [c for c in self.chunks if not overlaps(c)]
        errors = sum(sum(n for s, n in c[3].items() if s != 200) + c[4] for c in kept)
        answered = sum(sum(c[3].values()) for c in kept)
        excluded = len(self.chunks) - len(kept)
        growth, fd_drift, zombies, rows = [], [], 0, []
        for i, life in enumerate(self.lives):
            s = life["samples"]
            zombies = max([zombies] + [x[3] for x in s])
            warm = [x for x in s if x[0] - life["start"] >= WARMUP_S]
            if len(warm) < 2:
                continue
            rss0, fds0 = warm[0][1], warm[0][2]
            rss_max, fds_max = max(x[1] for x in warm), max(x[2] for x in warm)
            growth.append(100.0 * (rss_max - rss0) / rss0)
            fd_drift.append(fds_max - fds0)
            rows.append(f"| {i + 1} | {(s[-1][0] - life['start']) / 60:.1f} | {rss0 / 1024:.1f} | "
                        f"{rss_max / 1024:.1f} | {growth[-1]:+.1f}% | {fds0} → {fds_max} | "
                        f"{max(x[3] for x in s)} | {max(x[4] for x in s)} |")
        minutes = (max(c[1] for c in self.chunks) - min(c[0] for c in self.chunks)) / 60 if self.chunks else 0
        lines = [
            "## Soak (bench/soak.sh)",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {minutes:.0f} minutes: a steady service under "
            f"hey -c 4 -q 50 in 10 s runs; a service cold-started from zero every {self.cycle_every:.0f} s "
            f"(200 requests, 10 clients); a service updated every {self.update_every / 60:.0f} minutes "
            f"({updates} updates, each a new revision, then 200 requests); elafrosd killed with SIGKILL and "
            f"restarted every {self.kill_every / 60:.0f} minutes ({len(self.killed)} kills). Samples every 10 s; "
            f"each daemon's first {WARMUP_S} s are its warm-up.",
            "",
            "| daemon | lived min | RSS after warm-up MiB | RSS max MiB | growth | open fds (after warm-up → max) | "
            "zombies | containers (max) |",
            "|---|---|---|---|---|---|---|---|",
        ] + rows + [
            "",
            f"Requests answered outside the killed moments: {answered}; errors among them: **{errors}** "
            f"({excluded} load runs overlapping a kill, until the restarted daemon served again + 3 s, left out). "
            f"Worst RSS growth after warm-up: **{max(growth) if growth else 0:+.1f}%**; worst descriptor drift: "
            f"**{max(fd_drift) if fd_drift else 0}**; zombies: **{zombies}**. Containers left after the services "
            f"were deleted: {len(left)}.",
            "",
            "Goals: RSS growth < 5% after warm-up, descriptors flat, 0 zombies, 0 errors outside the killed moments.",
            "",
        ]
        return lines


def write_section(path, lines):
    text = open(path).read() if os.path.exists(path) else ""
    section = "\n".join(lines)
    if "## Soak (bench/soak.sh)" in text:
        head, rest = text.split("## Soak (bench/soak.sh)", 1)
        tail = rest.find("\n## ")
        text = head + section + (rest[tail:] if tail >= 0 else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--kill-every", type=float, default=300, help="seconds between SIGKILLs")
    ap.add_argument("--update-every", type=float, default=300, help="seconds between updates")
    ap.add_argument("--cycle-every", type=float, default=60, help="seconds between cold starts")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "README.md"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="elafros-soak-")
    try:
        lines = Soak(work, args.minutes, args.kill_every, args.update_every, args.cycle_every).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", "elfsoak0"], capture_output=True)
    print("\n".join(lines))
    write_section(args.out, lines)


if __name__ == "__main__":
    main()
