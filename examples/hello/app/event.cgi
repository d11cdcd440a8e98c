#!/bin/sh
# POST /cgi-bin/event takes a CloudEvent (binary mode), answers 202 Accepted, and says which one
# on stderr, for 'elafros logs'.
cat >/dev/null
echo "event: id=${HTTP_CE_ID:-?} type=${HTTP_CE_TYPE:-?} source=${HTTP_CE_SOURCE:-?}" >&2
printf 'HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n'
