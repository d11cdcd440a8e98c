#!/bin/sh
# POST /cgi-bin/echo returns the request body unchanged.
printf 'Content-Type: application/octet-stream\r\n\r\n'
exec cat
