#!/usr/bin/env bash
# Builds a Python test app as an OCI image layout, offline: the builder image's python3.11
# (examples/buildpacks/build-builder.sh), APP.py and the other Python files beside it at /app/
# (APP.py is what runs unless a service gives a command), and the Debian packages they import
# copied from /usr/lib/python3/dist-packages.
#   tests/e2e/apps/build-pyapp.sh OUT_DIR APP.py [PACKAGE...]   (e.g. websockets, grpc)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
app=$2
shift 2
for p in "$@"; do
  [ -e "/usr/lib/python3/dist-packages/$p" ] ||
    { echo "build-pyapp: /usr/lib/python3/dist-packages/$p is missing; run packaging/install-deps.sh" >&2; exit 1; }
done
"$here/../../../examples/buildpacks/build-builder.sh" "$out" latest >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umoci unpack --image "$out:latest" "$work/bundle" >/dev/null
root=$work/bundle/rootfs
mkdir -p "$root/app" "$root/usr/lib/python3/dist-packages"
install -m 0644 "$(dirname "$app")"/*.py "$root/app/"
for p in "$@"; do cp -a "/usr/lib/python3/dist-packages/$p" "$root/usr/lib/python3/dist-packages/"; done
# The shared libraries the packages' extensions link (grpc's cygrpc: libgrpc, abseil, re2…),
# at Debian's paths, unless the builder image has them already.
find "$root/usr/lib/python3/dist-packages" -name '*.so' -print0 | xargs -0 -r ldd 2>/dev/null |
  awk '/=> \//{print $3}' | sort -u | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
umoci repack --image "$out:latest" "$work/bundle" >/dev/null
umoci config --image "$out:latest" --config.entrypoint python3 \
  --config.cmd "/app/$(basename "$app")" --config.workingdir /app --config.user 65534:65534 >/dev/null
