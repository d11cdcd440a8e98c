#!/usr/bin/env bash
# The main job, from a fresh clone: install, build, start elafrosd on a local data dir (embedded
# SQLite), deploy examples/hello, and show it serving. elafrosd keeps running afterwards.
#   sudo ./scripts/quickstart.sh            (LISTEN=127.0.0.1:8080 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
listen=${LISTEN:-127.0.0.1:8080}
data=$top/data
sock=$top/elafros.sock

./packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
./examples/hello/build-image.sh >/dev/null

elafros() { "$top/build/src/elafros" --socket "$sock" "$@"; }

mkdir -p "$data"
if elafros status >/dev/null 2>&1; then
  echo "elafrosd is already running on $sock"
else
  echo "Starting elafrosd (data dir $data, API socket $sock, proxy on $listen; log in $data/elafrosd.log)"
  nohup "$top/build/src/elafrosd" --data-dir "$data" --socket "$sock" --listen "$listen" >>"$data/elafrosd.log" 2>&1 &
  for _ in $(seq 100); do elafros status >/dev/null 2>&1 && break; sleep 0.1; done
  elafros status >/dev/null || { echo "elafrosd did not start:"; tail -20 "$data/elafrosd.log"; exit 1; }
fi

if elafros service describe hello >/dev/null 2>&1; then
  echo "Service 'hello' already exists."
else
  elafros service create hello --image oci:./examples/hello/image:latest
fi
url=$(elafros service describe hello -o json | sed -n 's/^ *"url": "\(.*\)",\{0,1\}$/\1/p' | head -1)
echo
echo "\$ curl $url/"
curl -sS "$url/"
echo
elafros service list
cat <<EOT

elafrosd keeps running. Try:
  $top/build/src/elafros --socket $sock service describe hello
  $top/build/src/elafros --socket $sock service delete hello
Stop it with:  kill \$(cat $data/elafrosd.lock)   (instances keep running; delete services first to stop them)
EOT
