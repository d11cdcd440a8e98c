#!/usr/bin/env bash
# Builds elafros's builder image, offline, from Debian's own files: busybox-static for the shell
# and its tools, python3.11 with its standard library and the libraries it links, and the
# buildpacks under examples/buildpacks (Heroku's v2 contract: bin/detect, bin/compile,
# bin/release) at /buildpacks/<name>, tried in the order of /buildpacks/order. Built apps run on
# it too (their layer goes on top), so an app finds python3 and httpd where it was built.
#   examples/buildpacks/build-builder.sh [OUT_DIR] [TAG]   (defaults: examples/buildpacks/image latest)
# Then:  elafros image import oci:OUT_DIR:TAG --name elafros-builder:latest
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/image}
tag=${2:-latest}
busybox=/bin/busybox
python=/usr/bin/python3.11
command -v umoci >/dev/null || { echo "build-builder: umoci not found; run packaging/install-deps.sh" >&2; exit 1; }
[ -x "$python" ] || { echo "build-builder: $python not found; install python3 (apt-get install python3)" >&2; exit 1; }
ldd "$busybox" >/dev/null 2>&1 && { echo "build-builder: $busybox is not static; install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

[ -f "$out/index.json" ] || umoci init --layout "$out"
umoci new --image "$out:$tag"
umoci unpack --image "$out:$tag" "$work/bundle" >/dev/null
root=$work/bundle/rootfs
mkdir -p "$root/bin" "$root/usr/bin" "$root/etc" "$root/tmp" "$root/buildpacks" "$root/workspace"
chmod 1777 "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# python3 and what it loads: the interpreter, the standard library (without its tests and GUI
# parts), and every shared library they link, at the paths Debian gives them.
copy_libs() {
  ldd "$@" 2>/dev/null | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u | while read -r lib; do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
install -m 0755 "$python" "$root/usr/bin/python3.11"
ln -s python3.11 "$root/usr/bin/python3"
mkdir -p "$root/usr/lib"
tar -C /usr/lib --exclude='python3.11/test' --exclude='python3.11/idlelib' \
  --exclude='python3.11/tkinter' --exclude='python3.11/turtledemo' --exclude='python3.11/lib2to3' \
  --exclude='python3.11/ensurepip' --exclude='python3.11/pydoc_data' --exclude='python3.11/config-*' \
  --exclude='python3.11/distutils' --exclude='python3.11/site-packages' \
  -cf - python3.11 | tar -C "$root/usr/lib" -xf -
copy_libs "$python" /usr/lib/python3.11/lib-dynload/*.so

for bp in "$here"/*/; do
  name=$(basename "$bp")
  [ -d "$bp/bin" ] || continue
  mkdir -p "$root/buildpacks/$name/bin"
  install -m 0755 "$bp"/bin/* "$root/buildpacks/$name/bin/"
done
printf 'python\ncgi\nstatic\n' >"$root/buildpacks/order"
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
umoci repack --image "$out:$tag" "$work/bundle" >/dev/null
umoci config --image "$out:$tag" \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin \
  --config.env LANG=C.UTF-8 \
  --config.workingdir /workspace \
  --config.cmd /bin/sh >/dev/null
echo "built $out:$tag"
