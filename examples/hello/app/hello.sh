#!/bin/sh
# The hello app: an HTTP server on $PORT (the Knative runtime contract) that greets with
# $GREETING and names the revision that serves it.
mkdir -p /tmp/www
printf '%s from %s (revision %s)\n' "${GREETING:-Hello}" "${K_SERVICE:-?}" "${K_REVISION:-?}" >/tmp/www/index.html
exec httpd -f -p "127.0.0.1:${PORT:-8080}" -h /tmp/www
