#!/usr/bin/env bash
# Builds the hello app as an OCI image layout, offline, from Debian's busybox-static and umoci.
#   examples/hello/build-image.sh [OUT_DIR] [TAG] [GREETING]
#   (defaults: examples/hello/image latest Hello)
# The result can be deployed with:  elafros service create hello --image oci:OUT_DIR:TAG
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/image}
tag=${2:-latest}
greeting=${3:-Hello}
busybox=/bin/busybox   # from busybox-static: one static binary, no libraries to copy
command -v umoci >/dev/null || { echo "build-image: umoci not found; run packaging/install-deps.sh" >&2; exit 1; }
ldd "$busybox" >/dev/null 2>&1 && { echo "build-image: $busybox is not static; install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -f "$out/index.json" ] || umoci init --layout "$out"
umoci new --image "$out:$tag"
umoci unpack --image "$out:$tag" "$work/bundle" >/dev/null
root=$work/bundle/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
chmod 1777 "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in sh httpd cat cp echo env ls mkdir rmdir sleep test wget; do ln -sf busybox "$root/bin/$applet"; done
install -m 0755 "$here/app/hello.sh" "$root/bin/hello"
install -D -m 0755 "$here/app/echo.cgi" "$root/srv/www/cgi-bin/echo"
install -D -m 0755 "$here/app/sleep.cgi" "$root/srv/www/cgi-bin/sleep"
install -D -m 0755 "$here/app/event.cgi" "$root/srv/www/cgi-bin/event"
install -D -m 0755 "$here/app/env.cgi" "$root/srv/www/cgi-bin/env"
install -D -m 0755 "$here/app/health.cgi" "$root/srv/www/cgi-bin/health"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
umoci repack --image "$out:$tag" "$work/bundle" >/dev/null
umoci config --image "$out:$tag" \
  --config.entrypoint /bin/hello \
  --config.env PATH=/bin \
  --config.env "GREETING=$greeting" \
  --config.workingdir / \
  --config.user 65534:65534 >/dev/null
echo "built $out:$tag"
