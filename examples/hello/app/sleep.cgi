#!/bin/sh
# GET /cgi-bin/sleep?SECONDS answers after SECONDS (default 1). It says overlap=yes when another
# such request was in progress in the same instance, which lets tests check the breaker.
overlap=no
mkdir /tmp/busy 2>/dev/null || overlap=yes
sleep "${QUERY_STRING:-1}"
[ "$overlap" = no ] && rmdir /tmp/busy
printf 'Content-Type: text/plain\r\n\r\nslept %s on port %s overlap=%s\n' "${QUERY_STRING:-1}" "${PORT:-?}" "$overlap"
