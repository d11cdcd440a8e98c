#!/bin/sh
# GET /cgi-bin/env lists the app's environment (K_SINK and K_CE_OVERRIDES when a SinkBinding
# binds the service).
printf 'Content-Type: text/plain\r\n\r\n'
exec env
