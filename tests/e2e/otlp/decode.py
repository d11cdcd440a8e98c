#!/usr/bin/python3
"""Decodes OTLP/HTTP JSON bodies with protobuf's own JSON parser (strict: an unknown field, a
wrong type or a bad enum fails) against the messages in this folder, compiled by protoc, and
prints one JSON line per log record, span or data point. OTLP's JSON writes trace and span ids
as hex where protobuf's mapping has base64: they are checked (lowercase hex of the right
length) and turned into base64 before the parse.
  decode.py GENERATED_DIR logs|traces|metrics FILE..."""
import base64, json, re, sys

sys.path.insert(0, sys.argv[1])
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.logs.v1 import logs_pb2  # noqa: E402
from opentelemetry.proto.metrics.v1 import metrics_pb2  # noqa: E402
from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def attrs(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def hex_ids(doc):
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key, size in (("traceId", 32), ("spanId", 16), ("parentSpanId", 16)):
                    if key in span:
                        assert re.fullmatch("[0-9a-f]{%d}" % size, span[key]), (key, span[key])
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return doc


signal = sys.argv[2]
for path in sys.argv[3:]:
    doc = json.load(open(path))
    if signal == "logs":
        req = logs_pb2.ExportLogsServiceRequest()
        json_format.Parse(json.dumps(doc), req)  # raises on anything off-spec
        for rl in req.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    print(json.dumps({"resource": attrs(rl.resource.attributes), "scope": sl.scope.name,
                                      "time": r.time_unix_nano, "severity": r.severity_number,
                                      "severity_text": r.severity_text, "body": value(r.body),
                                      "attributes": attrs(r.attributes)}))
    elif signal == "traces":
        req = trace_pb2.ExportTraceServiceRequest()
        json_format.Parse(json.dumps(hex_ids(doc)), req)
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    print(json.dumps({"resource": attrs(rs.resource.attributes), "name": s.name,
                                      "kind": s.kind, "trace": s.trace_id.hex(), "span": s.span_id.hex(),
                                      "parent": s.parent_span_id.hex(), "start": s.start_time_unix_nano,
                                      "end": s.end_time_unix_nano, "status": s.status.code,
                                      "attributes": attrs(s.attributes)}))
    else:
        req = metrics_pb2.ExportMetricsServiceRequest()
        json_format.Parse(json.dumps(doc), req)
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    for p in data.data_points:
                        row = {"name": m.name, "kind": kind, "unit": m.unit, "attributes": attrs(p.attributes)}
                        if kind == "histogram":
                            row.update(count=p.count, sum=p.sum, buckets=list(p.bucket_counts),
                                       bounds=list(p.explicit_bounds),
                                       temporality=data.aggregation_temporality)
                        else:
                            row["value"] = p.as_double
                            if kind == "sum":
                                row.update(monotonic=data.is_monotonic,
                                           temporality=data.aggregation_temporality)
                        print(json.dumps(row))
