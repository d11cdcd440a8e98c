#!/usr/bin/env bash
# A full disk, made by the test itself: the data dir is a 48 MiB tmpfs, filled while an app logs
# a numbered line every 50 ms and a client creates services and imports an image. Writes are
# refused with a clear error and leave nothing half-written; once space is freed, everything
# resumes without a restart and no line the app got into its spool is missing.
#   tests/e2e/disk_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
# An image too big for what is left: 12 MiB that gzip cannot shrink.
cp -r "$work/image" "$work/big"
umoci unpack --image "$work/big:latest" "$work/big-bundle" >/dev/null
head -c $((12 << 20)) /dev/urandom >"$work/big-bundle/rootfs/blob"
umoci repack --image "$work/big:latest" "$work/big-bundle" >/dev/null
rm -rf "$work/big-bundle"

mkdir -p "$data"
mount -t tmpfs -o size=48m elafros-e2e-disk "$data"
cat >"$work/config.yaml" <<YAML
disk-free-warning-bytes: 8388608
access-log: $data/access.log
YAML
daemon_args=(--config "$work/config.yaml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
check "status shows the data dir's free space" contains "$(e status)" "Disk:"
check "...with no warning while there is room" bash -c "! '$elafros_bin' --socket '$sock' status | grep -q Warning"

# Lines of 100 bytes, numbered, every 50 ms, each by its own process: a shell builtin would stop
# for good at its first failed write (stdio keeps the error).
pad=$(printf '%090d' 0)
e service create ticker --image "oci:$work/image:latest" --cmd sh --arg -c \
  --arg "i=0; while true; do i=\$((i+1)); env echo \"tick \$i $pad\"; sleep 0.05; done & exec /bin/hello" >/dev/null
spool=$(ls "$data"/logs/spool/default_ticker_*.stdout)
has_ticks() { e logs ticker 2>/dev/null | grep -q ' tick 5 '; }
check "the app's lines reach the logs" wait_until 10 has_ticks

# Fill the disk.
echo "# before the fill: $(grep -ac 'tick ' "$spool") lines in the spool"
dd if=/dev/zero of="$data/filler" bs=1M count=64 2>/dev/null || true
dd if=/dev/zero of="$data/filler-pages" bs=4096 count=4096 2>/dev/null || true
echo "# free after the fill: $(df --output=avail -B1 "$data" | tail -1) bytes"
check "the disk is full" test "$(df --output=avail -B1 "$data" | tail -1)" -eq 0
sink_failing() { e status -o json | grep -q '"healthy": false'; }
check "the file log sink fails, and status says so" wait_until 20 sink_failing
check "...with a warning about the disk" contains "$(e status)" "below disk-free-warning-bytes"
refused=0
for i in 1 2 3; do
  if out=$(e service create "full-$i" --image "oci:$work/image:latest" --no-wait 2>&1); then
    fail "creating a service on a full disk is refused"
  else
    refused=$((refused + 1))
  fi
done
check "creating services on a full disk is refused ($refused of 3)" test "$refused" = 3
check "...saying to free disk space" contains "$out" "free disk space"
if out=$(e image import "oci:$work/big:latest" --name big 2>&1); then
  fail "importing an image on a full disk fails"
else
  check "importing an image on a full disk fails, saying why" contains "$out" "No space left on device"
fi
ls -A "$data/images/tmp" | sed "s/^/# scratch: /"
check "...and leaves no scratch behind" test -z "$(ls -A "$data/images/tmp")"
check "...and no image" bash -c "! '$elafros_bin' --socket '$sock' image list | grep -q '^big '"
served() { test "$(curl -s -m 5 -H 'Host: ticker.default.localhost' "http://127.0.0.1:$port/")" = "Hello from ticker (revision ticker-00001)"; }
check "the app keeps serving on a full disk" served
# Requests on a full disk: their access lines are kept until they can be written.
for i in $(seq 50); do curl -s -m 5 -o /dev/null -H 'Host: ticker.default.localhost' "http://127.0.0.1:$port/full-$i"; done
access_failing() { e status -o json | python3 -c 'import json,sys; s=[x for x in json.load(sys.stdin)["logSinks"] if x["name"]=="access-log"]; sys.exit(0 if s and not s[0]["healthy"] else 1)'; }
check "the access log's writes fail, and status says so" wait_until 10 access_failing


# Free the space: everything resumes without a restart.
echo "# before the free: $(grep -ac 'tick ' "$spool") lines in the spool"
rm -f "$data/filler" "$data/filler-pages"
sink_working() { e status -o json | grep -q '"healthy": true'; }
check "the log sink works again" wait_until 20 sink_working
check "...and the disk warning is gone" bash -c "! '$elafros_bin' --socket '$sock' status | grep -q 'below disk-free'"
all_access() { [ "$(grep -c '"path":"/full-' "$data/access.log")" = 50 ]; }
check "every request's access line is written once space is back, each once" wait_until 10 all_access
check "creating a service works again" bash -c "'$elafros_bin' --socket '$sock' service create after --image 'oci:$work/image:latest' >/dev/null"

# Every line the app got into its spool is in the logs, in order, none missing and none twice.
wait_until 5 bash -c "[ \$(grep -ac 'tick ' '$spool') -gt $(grep -ac 'tick ' "$spool") ]" || true
echo "# after the free: $(grep -ac 'tick ' "$spool") lines in the spool"
grep -a 'tick ' "$spool" | tr -d '\0' >"$work/spool.lines" || true
last=$(tail -1 "$work/spool.lines" | cut -d' ' -f2)
caught_up() { e logs ticker 2>/dev/null | grep -q " tick $last "; }
check "the logs catch up with the spool (to tick $last)" wait_until 20 caught_up
# sed quits at the last line, so `e logs` may die of SIGPIPE: the cmp below is the check.
e logs ticker 2>/dev/null | sed -n 's/^\[ticker-00001-[0-9a-f]*\] //p' | grep '^tick ' |
  sed "/^tick $last /q" >"$work/logs.lines" || true
n=$(wc -l <"$work/spool.lines")
check "the logs hold the spool's $n lines exactly" cmp -s "$work/spool.lines" "$work/logs.lines"
check "...each once" test -z "$(cut -d' ' -f2 "$work/logs.lines" | sort -n | uniq -d)"

# Nothing half-written: the store is sound, and every revision has its service.
check "the store passes SQLite's integrity check, with no orphan rows" python3 - "$data/elafros.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
services = {u for (u,) in db.execute("SELECT uid FROM objects WHERE kind = 'Service'")}
names = {n for (n,) in db.execute("SELECT name FROM objects WHERE kind = 'Service'")}
assert "ticker" in names and "after" in names and not any(n.startswith("full-") for n in names), names
for (owner,) in db.execute("SELECT json_extract(owner_references, '$[0].uid') FROM objects WHERE kind = 'Revision'"):
    assert owner in services, owner
PY
check "no blob is half-stored" bash -c "! ls '$data/images/tmp' '$data'/images/blobs/sha256 2>/dev/null | grep -q -- '-tmp\|\.tmp'"

tail -c 300 "$spool" | tr "\0" "@" | sed "s/^/# spool tail: /"
e service delete ticker >/dev/null
e service delete after >/dev/null
if stop_daemon; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0"; fi
umount "$data"
finish
