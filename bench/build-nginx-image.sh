#!/usr/bin/env bash
# Builds a fast backend image from the host's nginx binary and its libraries (offline, umoci):
# it answers every request with a short 200 on $PORT (every address), one worker.
#   bench/build-nginx-image.sh OUT_DIR
set -euo pipefail
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$out/index.json" ] || umoci init --layout "$out"
umoci new --image "$out:latest"
umoci unpack --image "$out:latest" "$work/bundle" >/dev/null
root=$work/bundle/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/var/log/nginx" "$root/var/lib/nginx"
chmod 1777 "$root/tmp"
install -m 0755 /bin/busybox "$root/bin/busybox"
for applet in sh sed; do ln -sf busybox "$root/bin/$applet"; done
install -D -m 0755 /usr/sbin/nginx "$root/usr/sbin/nginx"
for lib in $(ldd /usr/sbin/nginx | grep -o '/[^ ]*'); do install -D -m 0755 "$lib" "$root$lib"; done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
cat >"$root/etc/nginx.conf.in" <<'CONF'
daemon off;
master_process off;
worker_processes 1;
user root;
error_log stderr warn;
pid /tmp/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;
  keepalive_requests 1000000;
  server {
    listen PORT;
    location / { return 200 "hello from nginx\n"; }
  }
}
CONF
cat >"$root/bin/start" <<'SH'
#!/bin/sh
sed "s/PORT/${PORT:-8080}/" /etc/nginx.conf.in >/tmp/nginx.conf
trap 'kill -QUIT $pid; wait $pid; exit 0' TERM INT
/usr/sbin/nginx -c /tmp/nginx.conf &
pid=$!
wait $pid
SH
chmod 0755 "$root/bin/start"
umoci repack --image "$out:latest" "$work/bundle" >/dev/null
umoci config --image "$out:latest" --config.entrypoint /bin/start --config.env PATH=/bin:/usr/sbin >/dev/null
echo "built $out:latest"
