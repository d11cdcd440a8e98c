#!/bin/sh
# The hello app: an HTTP server on $PORT (the Knative runtime contract) that greets with
# $GREETING and names the revision that serves it.
mkdir -p /tmp/www
cp -r /srv/www/cgi-bin /tmp/www/
printf '%s from %s (revision %s)\n' "${GREETING:-Hello}" "${K_SERVICE:-?}" "${K_REVISION:-?}" >/tmp/www/index.html
# As PID 1 of its container, the shell gets no default signal handling: stop on SIGTERM
# explicitly, so elafros need not wait out the grace period.
echo "hello: serving revision ${K_REVISION:-?} on port ${PORT:-8080}"
# -v: a line per request on stderr, for 'elafros logs'.
httpd -f -v -p "${PORT:-8080}" -h /tmp/www &
server=$!
trap 'kill -TERM "$server"; wait "$server"; exit 0' TERM INT
wait "$server"
