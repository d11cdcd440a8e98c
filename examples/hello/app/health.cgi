#!/bin/sh
# GET /cgi-bin/health answers 200 "ok" while the instance is healthy, and 503 once a
# POST /cgi-bin/health?fail has marked it unhealthy: a livenessProbe on it restarts the instance
# (a new one starts healthy, with a /tmp of its own). GET /cgi-bin/health?need-header answers
# 503 unless the request carries "X-Probe: yes" (a probe's httpHeaders).
[ "$REQUEST_METHOD" = POST ] && [ "$QUERY_STRING" = fail ] && : >/tmp/unhealthy
if [ "$QUERY_STRING" = need-header ] && [ "$HTTP_X_PROBE" != yes ]; then
  printf 'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nno X-Probe: yes\n'
elif [ -e /tmp/unhealthy ]; then
  printf 'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nunhealthy\n'
else
  printf 'Content-Type: text/plain\r\n\r\nok\n'
fi
