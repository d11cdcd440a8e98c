#!/usr/bin/env bash
# Builds the rawecho test app (rawecho.c, static) as an OCI image layout, with busybox beside it
# for the checks that run inside an instance (runc exec).
#   tests/e2e/apps/build-rawecho.sh OUT_DIR [TAG]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
tag=${2:-latest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -static -O2 -o "$work/rawecho" "$here/rawecho.c"
[ -f "$out/index.json" ] || umoci init --layout "$out"
umoci new --image "$out:$tag"
umoci unpack --image "$out:$tag" "$work/bundle" >/dev/null
root=$work/bundle/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in sh cat echo env id ls nc wget sleep; do ln -sf busybox "$root/bin/$applet"; done
install -m 0755 "$work/rawecho" "$root/bin/rawecho"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
umoci repack --image "$out:$tag" "$work/bundle" >/dev/null
umoci config --image "$out:$tag" --config.entrypoint /bin/rawecho --config.env PATH=/bin \
  --config.workingdir / --config.user 65534:65534 >/dev/null
