"""OTLP decoding: hex or base64 ids, intValue as a string or a number, snake_case names,
protobuf; a malformed request names the bad field."""

from __future__ import annotations

import base64
import json

import pytest

from tailguard.otel.otlp import OtlpError, spans_from_json, spans_from_protobuf
from tests.otel.otlp_builders import CHILD, ROOT, TRACE, request, span


def test_hex_and_base64_ids_agree() -> None:
    hexreq = request([span(TRACE, CHILD, ROOT, "c", {"n": 1})])
    b64 = json.loads(json.dumps(hexreq))
    s = b64["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    s["traceId"] = base64.b64encode(bytes.fromhex(TRACE)).decode()
    s["spanId"] = base64.b64encode(bytes.fromhex(CHILD)).decode()
    s["parentSpanId"] = base64.b64encode(bytes.fromhex(ROOT)).decode()
    s["attributes"][0]["value"] = {"intValue": 1}  # a number, not a string
    (a,) = spans_from_json(json.dumps(hexreq))
    (b,) = spans_from_json(json.dumps(b64))
    assert (a.trace_id, a.span_id, a.parent_id) == (TRACE, CHILD, ROOT)
    assert (b.trace_id, b.span_id, b.parent_id) == (TRACE, CHILD, ROOT)
    assert a.attrs == b.attrs == {"n": 1}


def test_snake_case_and_nested_values() -> None:
    body = {
        "resource_spans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "tailguard.customer_id", "value": {"string_value": "acme"}}
                    ]
                },
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": TRACE,
                                "span_id": CHILD,
                                "name": "x",
                                "start_time_unix_nano": 5,
                                "end_time_unix_nano": "7",
                                "attributes": [
                                    {
                                        "key": "l",
                                        "value": {
                                            "arrayValue": {
                                                "values": [{"intValue": "2"}, {"boolValue": True}]
                                            }
                                        },
                                    },
                                    {"key": "d", "value": {"doubleValue": 0.5}},
                                ],
                                "status": {"code": "STATUS_CODE_ERROR"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    (s,) = spans_from_json(json.dumps(body))
    assert s.resource == {"tailguard.customer_id": "acme"}
    assert s.attrs == {"l": [2, True], "d": 0.5}
    assert (s.start_ns, s.end_ns, s.status_code, s.parent_id) == (5, 7, 2, None)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda s: s.update(traceId="xyz"),
            r"spans\[0\]\.traceId: 'xyz' is neither hex nor base64",
        ),
        (lambda s: s.update(spanId=""), r"spans\[0\]\.spanId: missing"),
        (lambda s: s.update(startTimeUnixNano="soon"), r"expected an integer"),
        (
            lambda s: s["attributes"].append({"value": {}}),
            r"attributes\[\d\]: expected \{key, value\}",
        ),
    ],
)
def test_malformed_names_the_field(mutate: object, reason: str) -> None:
    req = request([span(TRACE, CHILD, None, "c", {"n": 1})])
    mutate(req["resourceSpans"][0]["scopeSpans"][0]["spans"][0])  # type: ignore[operator]
    with pytest.raises(OtlpError, match=reason):
        spans_from_json(json.dumps(req))


def test_not_json() -> None:
    with pytest.raises(OtlpError, match="not JSON"):
        spans_from_json(b"{nope")


def test_protobuf_round_trip() -> None:
    """The same request encoded by the official protobuf classes decodes to the same spans."""
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = request([span(TRACE, CHILD, ROOT, "c", {"n": 3, "s": "x", "f": 1.5, "b": False})])
    # protobuf's JSON mapping wants base64 bytes for ids
    s = req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for k in ("traceId", "spanId", "parentSpanId"):
        s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    pb = ParseDict(req, ExportTraceServiceRequest()).SerializeToString()
    (a,) = spans_from_protobuf(pb)
    (b,) = spans_from_json(json.dumps(req))
    for f in (
        "trace_id",
        "span_id",
        "parent_id",
        "name",
        "start_ns",
        "end_ns",
        "attrs",
        "resource",
    ):
        assert getattr(a, f) == getattr(b, f), f
    with pytest.raises(OtlpError, match="not an ExportTraceServiceRequest"):
        spans_from_protobuf(b"\xff\xff\xff")
