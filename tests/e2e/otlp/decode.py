#!/usr/bin/python3
"""Decodes OTLP/HTTP JSON bodies with protobuf's own JSON parser (strict: an unknown field, a
wrong type or a bad enum fails) against the messages in this folder, compiled by protoc, and
prints each log record as one JSON line: {"resource": {...}, "scope": ..., "time": ns,
"severity": n, "body": ..., "attributes": {...}}.
  decode.py GENERATED_DIR FILE..."""
import json, sys

sys.path.insert(0, sys.argv[1])
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.logs.v1 import logs_pb2  # noqa: E402


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


for path in sys.argv[2:]:
    req = logs_pb2.ExportLogsServiceRequest()
    json_format.Parse(open(path).read(), req)  # raises on anything off-spec
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                print(json.dumps({"resource": attrs(rl.resource.attributes), "scope": sl.scope.name,
                                  "version": sl.scope.version, "time": r.time_unix_nano,
                                  "severity": r.severity_number, "severity_text": r.severity_text,
                                  "body": value(r.body), "attributes": attrs(r.attributes)}))
