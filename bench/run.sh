#!/usr/bin/env bash
# The benchmark suite, one command:  sudo bench/run.sh
# Installs what it needs from Debian, builds elafros, runs every benchmark side by side and
# rewrites bench/README.md with the figures. Not part of the tests; takes about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
missing=()
for p in nginx-light wrk hey python3 buildah; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
exec /usr/bin/python3 bench/bench.py "$@"
