#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the whole test suite (unit, integration with real
# runc, end-to-end with the built binaries). Run as root: the integration and e2e tests start
# containers.
set -euo pipefail
cd "$(dirname "$0")/.."

./packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
ctest --test-dir build --output-on-failure
