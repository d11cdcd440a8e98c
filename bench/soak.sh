#!/usr/bin/env bash
# The soak, one command:  sudo bench/soak.sh [--minutes 30]
# Installs what it needs from Debian, builds elafros, runs bench/soak.py (30 minutes by default)
# and writes its "Soak" section into bench/README.md. Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
dpkg-query -W -f='${Status}' hey 2>/dev/null | grep -q 'install ok installed' ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hey
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
exec /usr/bin/python3 bench/soak.py "$@"
