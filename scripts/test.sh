#!/usr/bin/env bash
# Installs the dependencies, builds, and runs the whole test suite (unit, integration with real
# runc, end-to-end with the built binaries). Run as root: the integration and e2e tests start
# containers.
set -euo pipefail
cd "$(dirname "$0")/.."

./packaging/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
# Two suites at a time; the timing-sensitive ones run alone (RUN_SERIAL in tests/CMakeLists.txt).
# JUnit XML for any CI, and a per-suite summary at the end.
status=0
ctest --test-dir build -j2 --output-on-failure --output-junit test-results.xml || status=$?
echo
echo "Per-suite summary (JUnit XML: build/test-results.xml):"
python3 - build/test-results.xml <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for case in root.iter("testcase"):
    state = case.get("status", "run")
    failed = case.find("failure") is not None or state == "fail"
    print(f"  {'FAIL' if failed else 'ok  '}  {case.get('name'):<16} {float(case.get('time', 0)):7.1f} s")
PY
exit $status
