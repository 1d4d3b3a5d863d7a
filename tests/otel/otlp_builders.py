"""Hand-written OTLP/JSON, as the collector's file exporter writes it (for the otel tests)."""

from __future__ import annotations

import json
from typing import Any

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns


def value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # OTLP/JSON writes int64 as a string
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": value(v)} for k, v in d.items()]


def span(
    trace: str,
    sid: str,
    parent: str | None,
    name: str,
    a: dict[str, Any],
    *,
    start_ms: int = 0,
    dur_ms: int = 100,
    error: bool = False,
) -> dict[str, Any]:
    s: dict[str, Any] = {
        "traceId": trace,
        "spanId": sid,
        "parentSpanId": parent or "",
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(T0 + start_ms * 1_000_000),
        "endTimeUnixNano": str(T0 + (start_ms + dur_ms) * 1_000_000),
        "attributes": attrs(a),
        "status": {"code": 2 if error else 0},
    }
    return s


def request(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attrs(resource or {"service.name": "app"})},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
        ]
    }


def line(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> str:
    return json.dumps(request(spans, resource)) + "\n"


TRACE = "5b8efff798038103d269b633813fc60c"
ROOT = "eee19b7ec3c1b174"
CHILD = "eee19b7ec3c1b173"
CHILD2 = "eee19b7ec3c1b172"
