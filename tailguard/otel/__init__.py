"""OpenTelemetry in: OTLP trace exports into ledger events.

Modules, in the order a span flows: ``otlp`` (JSON and protobuf requests into ``Span``
records), ``attribution`` (the customer from the span, its ancestors, the resource; spans held
until an ancestor arrives), ``mapping`` (which spans are calls; token conventions normalised),
``ingest`` (``tailguard ingest --format otlp``), ``receiver`` (``tailguard collect``: OTLP/HTTP).
``config`` reads the ``[otel]`` table. See ``docs/otel.md``.
"""

from __future__ import annotations

from tailguard.otel.config import OtelConfig, load_otel_config
from tailguard.otel.ingest import OtlpIngestResult, ingest_otlp
from tailguard.otel.otlp import OtlpError, Span, spans_from_json, spans_from_protobuf

__all__ = [
    "OtelConfig",
    "OtlpError",
    "OtlpIngestResult",
    "Span",
    "ingest_otlp",
    "load_otel_config",
    "spans_from_json",
    "spans_from_protobuf",
]
