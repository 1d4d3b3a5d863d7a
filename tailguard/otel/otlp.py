"""OTLP trace export requests (JSON and protobuf) into flat ``Span`` records.

One decoder per encoding, one output shape: ``Span`` (ids as lowercase hex, attributes as a
plain dict, the resource's attributes shared by reference). Everything downstream (the span
mapping, the customer resolver) sees spans, never the wire.

JSON follows the OTLP/JSON rules and what real exporters write beside them:

- ids in hex (the OTLP/JSON rule) or base64 (the protobuf JSON mapping; told apart by length:
  32/16 hex characters, 24/12 base64 characters);
- ``intValue`` (and the ``*UnixNano`` times) as a string or a number;
- field names in lowerCamelCase (the rule) or snake_case (protobuf's own names).

A malformed request raises ``OtlpError`` with the path of the bad field
(``resourceSpans[0].scopeSpans[1].spans[3].traceId: ...``), which the receiver answers with
400 and the file ingest reports with its line number. So does a JSON object that gives a key
twice (a parser keeps one of the two values silently; which one was meant?), as the event
readers refuse it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import msgspec

from tailguard.errors import TailguardError

_dec = msgspec.json.Decoder()
_HEX = frozenset("0123456789abcdefABCDEF")
_KEY_MARK = re.compile(rb'"\s*:')  # the end of a key (or, rarely, a mark inside a string)


class OtlpError(TailguardError):
    """An OTLP request that cannot be read (the reason names the field)."""


def _count_keys(v: Any) -> int:
    """The number of keys of every object in the decoded JSON value ``v`` (a dict or a list;
    recursive, visiting containers only: twice as fast as a stack of every value)."""
    if type(v) is dict:
        n = len(v)
        for y in v.values():
            t = type(y)
            if t is dict or t is list:
                n += _count_keys(y)
        return n
    n = 0
    for y in v:
        t = type(y)
        if t is dict or t is list:
            n += _count_keys(y)
    return n


def _key_marks(raw: bytes) -> int:
    """How many ``":`` (whitespace allowed between) ``raw`` holds: a count in C when no quote
    is followed by whitespace (the wire's compact JSON), else the regex."""
    if b'" ' in raw or b'"\n' in raw or b'"\t' in raw or b'"\r' in raw:
        return len(_KEY_MARK.findall(raw))
    return raw.count(b'":')


def _repeated_key(raw: bytes, decoded: Any) -> str | None:
    """The first key some object of the JSON text ``raw`` gives twice, or None.

    Every key ends with ``":``; when the text holds no more such marks than ``decoded`` (its
    msgspec decoding, which keeps one value per key) has keys, no key repeats: the common
    case costs a regex scan and a walk. More marks (a repeat, or ``":`` inside a string) are
    decided exactly by the standard library's parser, which sees every pair."""
    try:
        if not isinstance(decoded, dict | list) or _key_marks(raw) <= _count_keys(decoded):
            return None
    except RecursionError:
        raise OtlpError("objects nested too deeply") from None
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if not found:
            seen: set[str] = set()
            for k, _ in items:
                if k in seen:
                    found.append(k)
                    break
                seen.add(k)
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)
    return found[0] if found else None


class Span:
    """One span, decoded. ``parent_id`` is None for a root span."""

    __slots__ = (
        "attrs",
        "end_ns",
        "kind",
        "name",
        "parent_id",
        "resource",
        "span_id",
        "start_ns",
        "status_code",
        "status_message",
        "trace_id",
    )

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        parent_id: str | None,
        name: str,
        kind: int,
        start_ns: int,
        end_ns: int,
        attrs: dict[str, Any],
        status_code: int,
        status_message: str,
        resource: dict[str, Any],
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attrs = attrs
        self.status_code = status_code
        self.status_message = status_message
        self.resource = resource

    def __repr__(self) -> str:
        return f"<Span {self.name!r} {self.trace_id}/{self.span_id}>"


# --- JSON --------------------------------------------------------------------------------------


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    v = d.get(camel)
    return d.get(snake) if v is None else v


def _id(v: Any, nbytes: int, where: str, *, optional: bool = False) -> str | None:
    if v is None or v == "":
        if optional:
            return None
        raise OtlpError(f"{where}: missing")
    if not isinstance(v, str):
        raise OtlpError(f"{where}: an id must be a string, got {type(v).__name__}")
    if len(v) == 2 * nbytes and _HEX.issuperset(v):
        out = v.lower()
    else:
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise OtlpError(f"{where}: {v!r} is neither hex nor base64") from None
        if len(raw) != nbytes:
            raise OtlpError(f"{where}: {v!r} is {len(raw)} bytes, expected {nbytes}")
        out = raw.hex()
    if optional and out == "0" * (2 * nbytes):
        return None
    if out == "0" * (2 * nbytes):
        raise OtlpError(f"{where}: an all-zero id is invalid")
    return out


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool):
        raise OtlpError(f"{where}: expected an integer, got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise OtlpError(f"{where}: expected an integer (number or string), got {v!r}")


def any_value(v: Any, where: str) -> Any:
    """An OTLP/JSON ``AnyValue`` as a Python value."""
    if not isinstance(v, dict):
        raise OtlpError(f"{where}: expected an AnyValue object")
    if "stringValue" in v or "string_value" in v:
        return _get(v, "stringValue", "string_value")
    if "intValue" in v or "int_value" in v:
        return _int(_get(v, "intValue", "int_value"), where)
    if "doubleValue" in v or "double_value" in v:
        d = _get(v, "doubleValue", "double_value")
        if isinstance(d, str):  # NaN / Infinity are strings in the protobuf JSON mapping
            try:
                return float(d)
            except ValueError:
                raise OtlpError(f"{where}: bad doubleValue {d!r}") from None
        if not isinstance(d, int | float) or isinstance(d, bool):
            raise OtlpError(f"{where}: bad doubleValue {d!r}")
        return float(d)
    if "boolValue" in v or "bool_value" in v:
        return bool(_get(v, "boolValue", "bool_value"))
    if "arrayValue" in v or "array_value" in v:
        vals = (_get(v, "arrayValue", "array_value") or {}).get("values") or []
        return [any_value(x, f"{where}[{i}]") for i, x in enumerate(vals)]
    if "kvlistValue" in v or "kvlist_value" in v:
        return attributes((_get(v, "kvlistValue", "kvlist_value") or {}).get("values"), where)
    if "bytesValue" in v or "bytes_value" in v:
        return _get(v, "bytesValue", "bytes_value")
    return None  # an empty AnyValue is allowed: no value


def attributes(kvs: Any, where: str, keep: frozenset[str] | None = None) -> dict[str, Any]:
    """Attributes as a dict; with ``keep``, only those names (the rest is never decoded)."""
    if kvs is None:
        return {}
    if not isinstance(kvs, list):
        raise OtlpError(f"{where}.attributes: expected a list")
    out: dict[str, Any] = {}
    for i, kv in enumerate(kvs):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise OtlpError(f"{where}.attributes[{i}]: expected {{key, value}}")
        if keep is not None and kv["key"] not in keep:
            continue
        out[kv["key"]] = any_value(kv.get("value") or {}, f"{where}.attributes[{i}]")
    return out


def spans_from_json(
    body: bytes | str | dict[str, Any], keep: frozenset[str] | None = None
) -> list[Span]:
    """Every span of one OTLP/JSON ``ExportTraceServiceRequest`` (attributes: see ``keep``)."""
    if isinstance(body, dict):
        req = body
    else:
        try:
            req = _dec.decode(body)
        except msgspec.DecodeError as exc:
            raise OtlpError(f"not JSON: {exc}") from None
        except RecursionError:  # msgspec's own depth guard: a request, not a server, fault
            raise OtlpError("objects nested too deeply") from None
        key = _repeated_key(body.encode() if isinstance(body, str) else body, req)
        if key is not None:
            raise OtlpError(f"{key}: key given twice in one object (which value is meant?)")
    if not isinstance(req, dict):
        raise OtlpError("expected an ExportTraceServiceRequest object")
    out: list[Span] = []
    rss = _get(req, "resourceSpans", "resource_spans") or []
    if not isinstance(rss, list):
        raise OtlpError("resourceSpans: expected a list")
    for i, rs in enumerate(rss):
        w = f"resourceSpans[{i}]"
        if not isinstance(rs, dict):
            raise OtlpError(f"{w}: expected an object")
        resource = attributes((rs.get("resource") or {}).get("attributes"), f"{w}.resource", keep)
        sss = _get(rs, "scopeSpans", "scope_spans") or []
        for j, ss in enumerate(sss):
            for k, s in enumerate((ss or {}).get("spans") or []):
                ws = f"{w}.scopeSpans[{j}].spans[{k}]"
                if not isinstance(s, dict):
                    raise OtlpError(f"{ws}: expected an object")
                status = s.get("status") or {}
                out.append(
                    Span(
                        _id(_get(s, "traceId", "trace_id"), 16, f"{ws}.traceId") or "",
                        _id(_get(s, "spanId", "span_id"), 8, f"{ws}.spanId") or "",
                        _id(
                            _get(s, "parentSpanId", "parent_span_id"),
                            8,
                            f"{ws}.parentSpanId",
                            optional=True,
                        ),
                        str(s.get("name") or ""),
                        _kind(s.get("kind")),
                        _int(_get(s, "startTimeUnixNano", "start_time_unix_nano") or 0, ws),
                        _int(_get(s, "endTimeUnixNano", "end_time_unix_nano") or 0, ws),
                        attributes(s.get("attributes"), ws, keep),
                        _status(status.get("code")),
                        str(status.get("message") or ""),
                        resource,
                    )
                )
    return out


_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _kind(v: Any) -> int:
    if isinstance(v, int):
        return v
    return _KINDS.get(str(v), 0) if v is not None else 0


def _status(v: Any) -> int:
    if isinstance(v, int):
        return v
    return _STATUS.get(str(v), 0) if v is not None else 0


# --- protobuf ----------------------------------------------------------------------------------


def spans_from_protobuf(body: bytes, keep: frozenset[str] | None = None) -> list[Span]:
    """Every span of one binary protobuf ``ExportTraceServiceRequest`` (needs the otel extra).

    With ``keep``, only those attribute names are decoded: the rest (prompts, messages, HTTP
    details) costs one string comparison each.
    """
    try:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:
        from tailguard.errors import MissingDependencyError

        raise MissingDependencyError("opentelemetry-proto", "otel") from None
    from google.protobuf.message import DecodeError

    try:
        req = ExportTraceServiceRequest.FromString(body)
    except DecodeError as exc:
        raise OtlpError(f"not an ExportTraceServiceRequest: {exc}") from None
    out: list[Span] = []
    for rs in req.resource_spans:
        resource = _pb_attrs(rs.resource.attributes, keep)
        for ss in rs.scope_spans:
            for s in ss.spans:
                if len(s.trace_id) != 16 or len(s.span_id) != 8:
                    raise OtlpError(
                        f"span {s.name!r}: trace_id must be 16 bytes and span_id 8 "
                        f"(got {len(s.trace_id)} and {len(s.span_id)})"
                    )
                parent = s.parent_span_id.hex() if s.parent_span_id else None
                out.append(
                    Span(
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        parent if parent and parent != "0" * 16 else None,
                        s.name,
                        s.kind,
                        s.start_time_unix_nano,
                        s.end_time_unix_nano,
                        _pb_attrs(s.attributes, keep),
                        s.status.code,
                        s.status.message,
                        resource,
                    )
                )
    return out


def _pb_attrs(kvs: Any, keep: frozenset[str] | None) -> dict[str, Any]:
    if keep is None:
        return {kv.key: _pb_value(kv.value) for kv in kvs}
    out: dict[str, Any] = {}
    for kv in kvs:
        k = kv.key
        if k in keep:
            out[k] = _pb_value(kv.value)
    return out


def _pb_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which)
